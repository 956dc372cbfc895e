// AdamW, the warmup + cosine schedule and global-norm clipping, each with
// the order of operations of its PyTorch 1.13 counterpart, so that the two
// agree to f32 rounding (tests/trainer/optimizer_test.cpp).
#include "trainer/optimizer.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace yuan::train {

AdamW::AdamW(const AdamWOptions& options, const std::vector<Param>& params)
    : options_(options) {
  m_.reserve(params.size());
  v_.reserve(params.size());
  for (const Param& p : params) {
    m_.emplace_back(p.value.size(), 0.0f);
    v_.emplace_back(p.value.size(), 0.0f);
  }
}

void AdamW::Step(std::vector<Param>* params, float lr, ThreadPool* pool) {
  if (params == nullptr) return;
  std::vector<Param>& ps = *params;
  // Step returns nothing, so a mismatch between the state and the params
  // (a caller bug, or a checkpoint whose shapes were not checked) must not
  // index out of bounds: the state follows the params, new elements at 0,
  // and only elements that have both a value and a grad move.
  if (m_.size() != ps.size()) m_.resize(ps.size());
  if (v_.size() != ps.size()) v_.resize(ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    if (m_[i].size() != ps[i].value.size()) m_[i].resize(ps[i].value.size(), 0.0f);
    if (v_[i].size() != ps[i].value.size()) v_[i].resize(ps[i].value.size(), 0.0f);
  }
  ++step_;

  // Scalars as torch computes them: Python floats (double) from the f32
  // options, rounded to f32 where they meet a tensor.
  const double beta1 = options_.beta1, beta2 = options_.beta2;
  const double t = static_cast<double>(step_);
  const double bias_correction1 = 1.0 - std::pow(beta1, t);
  const double bias_correction2 = 1.0 - std::pow(beta2, t);
  const float f_beta1 = options_.beta1;
  const float f_beta2 = options_.beta2;
  const float one_minus_beta1 = static_cast<float>(1.0 - beta1);
  const float one_minus_beta2 = static_cast<float>(1.0 - beta2);
  const float neg_step_size = static_cast<float>(-(static_cast<double>(lr) / bias_correction1));
  const float bc2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  const float eps = options_.eps;
  const float decay_factor =
      static_cast<float>(1.0 - static_cast<double>(lr) * static_cast<double>(options_.weight_decay));

  // All elements of all params form one index space [0, total), split by
  // the pool; each element is updated by one thread with the same
  // arithmetic, so the result does not depend on the thread count.
  std::vector<int64_t> offset(ps.size() + 1, 0);
  for (size_t i = 0; i < ps.size(); ++i) {
    const size_t n = std::min(ps[i].value.size(), ps[i].grad.size());
    offset[i + 1] = offset[i] + static_cast<int64_t>(n);
  }
  const int64_t total = offset.back();

  auto update = [&](int64_t begin, int64_t end) {
    // The param holding `begin`: the last offset <= begin among params.
    size_t i = static_cast<size_t>(std::upper_bound(offset.begin(), offset.end(), begin) -
                                   offset.begin()) - 1;
    for (int64_t g = begin; g < end && i < ps.size(); ++i) {
      const int64_t lo = g - offset[i];
      const int64_t hi = std::min(end, offset[i + 1]) - offset[i];
      Param& p = ps[i];
      float* value = p.value.data();
      const float* grad = p.grad.data();
      float* m = m_[i].data();
      float* v = v_[i].data();
      const float decay = p.decay ? decay_factor : 1.0f;
      for (int64_t j = lo; j < hi; ++j) {
        const float gj = grad[j];
        // param.mul_(1 - lr * weight_decay)
        float pj = value[j] * decay;
        // exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        const float mj = m[j] * f_beta1 + one_minus_beta1 * gj;
        // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        const float vj = v[j] * f_beta2 + one_minus_beta2 * (gj * gj);
        // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        const float denom = std::sqrt(vj) / bc2_sqrt + eps;
        // param.addcdiv_(exp_avg, denom, value=-step_size)
        pj = pj + neg_step_size * mj / denom;
        m[j] = mj;
        v[j] = vj;
        value[j] = pj;
      }
      g = offset[i] + hi;
    }
  };
  // Below this many elements a hand-off to the pool costs more than it saves.
  constexpr int64_t kGrain = 1 << 14;
  if (pool != nullptr && pool->size() > 1 && total > kGrain) {
    pool->ParallelFor(total, kGrain, update);
  } else if (total > 0) {
    update(0, total);
  }
}

float ScheduledLr(float lr, const ScheduleOptions& schedule, int64_t step) {
  const int64_t warmup = std::max<int64_t>(0, schedule.warmup_steps);
  if (step < 0) step = 0;
  if (step < warmup) {
    return static_cast<float>(static_cast<double>(lr) * static_cast<double>(step + 1) /
                              static_cast<double>(warmup));
  }
  const int64_t span = std::max<int64_t>(1, schedule.total_steps - warmup);
  // Past total_steps the rate stays at the floor (transformers' cosine would
  // climb back up).
  const double progress =
      std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(span));
  const double min_ratio = schedule.min_lr_ratio;
  const double factor =
      min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return static_cast<float>(static_cast<double>(lr) * factor);
}

double ClipGradNorm(std::vector<Param>* params, double max_norm) {
  if (params == nullptr) return 0.0;
  double sum = 0.0;
  for (const Param& p : *params) {
    for (float g : p.grad) sum += static_cast<double>(g) * static_cast<double>(g);
  }
  const double norm = std::sqrt(sum);
  // A non-finite norm leaves the grads alone (torch would multiply them by
  // NaN or 0): the caller sees the norm and decides, e.g. skips the step.
  if (!(max_norm > 0.0) || !std::isfinite(norm)) return norm;
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    const float c = static_cast<float>(coef);
    for (Param& p : *params) {
      for (float& g : p.grad) g *= c;
    }
  }
  return norm;
}

}  // namespace yuan::train

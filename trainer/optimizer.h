// Optimisation: AdamW, the learning-rate schedule and gradient clipping,
// with PyTorch's definitions so the two can be compared number for number
// (tests/trainer/optimizer_test.cpp checks against torch.optim.AdamW,
// torch.nn.utils.clip_grad_norm_ and a LambdaLR warmup + cosine schedule).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "trainer/model.h"

namespace yuan::train {

struct AdamWOptions {
  float lr = 1e-4f;          // peak learning rate
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f; // decoupled; only for Param::decay tensors
};

// torch.optim.AdamW, step by step:
//   t += 1
//   p -= lr * weight_decay * p                       (if decay)
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
// in f32 per element, m and v f32.
class AdamW {
 public:
  AdamW(const AdamWOptions& options, const std::vector<Param>& params);
  // One update of every param with its grad, at learning rate `lr` (the
  // schedule's value for this step).
  void Step(std::vector<Param>* params, float lr, ThreadPool* pool = nullptr);

  int64_t step() const { return step_; }
  const AdamWOptions& options() const { return options_; }
  // The state, for checkpoints: m and v per param, in params() order.
  std::vector<std::vector<float>>& m() { return m_; }
  std::vector<std::vector<float>>& v() { return v_; }
  void set_step(int64_t step) { step_ = step; }

 private:
  AdamWOptions options_;
  int64_t step_ = 0;
  std::vector<std::vector<float>> m_, v_;
};

struct ScheduleOptions {
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  float min_lr_ratio = 0.0f;  // the cosine ends at lr * min_lr_ratio
};

// The learning rate of optimizer step `step` (0-based): linear warmup from
// lr / warmup_steps (step 0) to lr (step warmup_steps - 1), then a cosine
// from lr down to lr * min_lr_ratio at total_steps, i.e. for step >= warmup
//   progress = (step - warmup) / max(1, total - warmup)
//   lr * (min + (1 - min) * 0.5 * (1 + cos(pi * progress)))
// (transformers' get_cosine_schedule_with_warmup with a floor; its warmup
// gives lr * (step + 1) / warmup, which is what we use).
float ScheduledLr(float lr, const ScheduleOptions& schedule, int64_t step);

// The global L2 norm of all grads (summed in double), and when it exceeds
// max_norm > 0, every grad scaled by max_norm / (norm + 1e-6) as
// torch.nn.utils.clip_grad_norm_ does. Returns the norm before clipping.
double ClipGradNorm(std::vector<Param>* params, double max_norm);

}  // namespace yuan::train

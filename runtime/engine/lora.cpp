#include "runtime/engine/lora.h"

#include <charconv>
#include <cmath>
#include <string>
#include <string_view>

#include "runtime/core/status.h"

namespace yuan {
namespace {

// "blk.N.<suffix>.weight" -> (N, projection); false for anything else.
bool ParseTarget(std::string_view name, int* layer, LoraProj* proj) {
  constexpr std::string_view kBlk = "blk.", kWeight = ".weight";
  if (name.substr(0, kBlk.size()) != kBlk || name.size() <= kBlk.size() + kWeight.size() ||
      name.substr(name.size() - kWeight.size()) != kWeight) {
    return false;
  }
  std::string_view rest = name.substr(kBlk.size(), name.size() - kBlk.size() - kWeight.size());
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  int n = -1;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + dot, n);
  if (ec != std::errc() || end != rest.data() + dot || n < 0) return false;
  const std::string_view suffix = rest.substr(dot + 1);
  static constexpr std::pair<std::string_view, LoraProj> kNames[] = {
      {"attn_q", LoraProj::kQ},      {"attn_k", LoraProj::kK},       {"attn_v", LoraProj::kV},
      {"attn_output", LoraProj::kO}, {"ffn_gate", LoraProj::kGate}, {"ffn_up", LoraProj::kUp},
      {"ffn_down", LoraProj::kDown}};
  for (const auto& [s, p] : kNames) {
    if (suffix == s) {
      *layer = n;
      *proj = p;
      return true;
    }
  }
  return false;
}

const Weight& BaseWeight(const LayerWeights& L, LoraProj p) {
  switch (p) {
    case LoraProj::kQ: return L.wq;
    case LoraProj::kK: return L.wk;
    case LoraProj::kV: return L.wv;
    case LoraProj::kO: return L.wo;
    case LoraProj::kGate: return L.w_gate;
    case LoraProj::kUp: return L.w_up;
    case LoraProj::kDown: return L.w_down;
  }
  return L.wq;
}

// A dot product with a fixed order of operations (8 partial sums, then the
// tail), which the compiler may vectorize; the same for every caller.
inline float Dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const LoraBinding>> LoraBinding::Create(
    std::shared_ptr<const LoraAdapter> adapter, const Model& model) {
  if (adapter == nullptr) return absl::InvalidArgumentError("no adapter");
  const ModelConfig& c = model.config();
  if (!adapter->base.architecture.empty() && adapter->base.architecture != c.arch) {
    return absl::FailedPreconditionError(absl::StrCat("the adapter was made for architecture '",
                                                      adapter->base.architecture,
                                                      "', the model is '", c.arch, "'"));
  }
  if (adapter->rank <= 0) {
    return absl::FailedPreconditionError(absl::StrCat("the adapter's rank ", adapter->rank,
                                                      " is not positive"));
  }
  const float scaling = adapter->scaling();
  if (!std::isfinite(scaling)) {
    return absl::FailedPreconditionError("the adapter's scaling (alpha / rank) is not finite");
  }
  // The llama q/k rows: the model's GGUF order is llama.cpp's permuted one.
  bool has_qk = false;
  for (const LoraTensor& t : adapter->tensors) {
    int layer;
    LoraProj p;
    if (ParseTarget(t.target, &layer, &p) && (p == LoraProj::kQ || p == LoraProj::kK)) has_qk = true;
  }
  const bool want_permuted = c.arch == "llama" && c.rope_style == RopeStyle::kNormal;
  if (has_qk && adapter->base.qk_permuted != want_permuted) {
    auto copy = std::make_shared<LoraAdapter>(*adapter);
    absl::Status st = FillFingerprint(model, copy.get());  // reorders q/k, checks shapes
    if (!st.ok()) return st;
    adapter = std::move(copy);
  }

  std::shared_ptr<LoraBinding> b(new LoraBinding());
  b->adapter_ = adapter;
  b->model_ = &model;
  b->rank_ = adapter->rank;
  b->scaling_ = scaling;
  b->pairs_.resize(static_cast<size_t>(c.n_layer));
  const int64_t rank = adapter->rank;
  for (const LoraTensor& t : adapter->tensors) {
    int layer = -1;
    LoraProj p;
    if (!ParseTarget(t.target, &layer, &p)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the adapter targets '", t.target,
          "', which is not an attention or MLP projection (q, k, v, o, gate, up, down)"));
    }
    if (layer >= c.n_layer) {
      return absl::FailedPreconditionError(absl::StrCat("the adapter targets '", t.target,
                                                        "' but the model has only ", c.n_layer,
                                                        " layers"));
    }
    const Weight& w = BaseWeight(model.weights().layers[static_cast<size_t>(layer)], p);
    if (w.cols != t.in || w.rows != t.out) {
      return absl::FailedPreconditionError(absl::StrCat("'", t.target, "' is ", w.rows, "x", w.cols,
                                                        " in the model, ", t.out, "x", t.in,
                                                        " in the adapter"));
    }
    if (static_cast<int64_t>(t.a.size()) != rank * t.in ||
        static_cast<int64_t>(t.b.size()) != t.out * rank) {
      return absl::FailedPreconditionError(absl::StrCat(
          "'", t.target, "': A has ", t.a.size(), " values and B ", t.b.size(), ", expected ",
          rank * t.in, " and ", t.out * rank, " for rank ", rank));
    }
    LoraPair& slot = b->pairs_[static_cast<size_t>(layer)][static_cast<size_t>(p)];
    if (slot.a != nullptr) {
      return absl::FailedPreconditionError(absl::StrCat("the adapter targets '", t.target, "' twice"));
    }
    slot = LoraPair{t.a.data(), t.b.data(), t.in, t.out};
  }
  return std::shared_ptr<const LoraBinding>(std::move(b));
}

absl::Status CheckLoraSet(const LoraSet& set, const Model& model) {
  for (const LoraChoice& ch : set) {
    if (ch.lora == nullptr) return absl::InvalidArgumentError("an adapter choice has no adapter");
    if (ch.lora->model() != &model) {
      return absl::InvalidArgumentError("an adapter was bound to another model");
    }
    if (!std::isfinite(ch.scale)) return absl::InvalidArgumentError("an adapter scale is not finite");
  }
  return absl::OkStatus();
}

namespace {

// The two halves of LoraApply over a range of their work items. Out of line
// so that the inline and the pooled paths run the very same code (no
// per-call-site contraction or vectorization differences).
// u[i] = A[i % R] . x[i / R] for i in [i0, i1)
[[gnu::noinline]] void LoraDown(const LoraPair& p, int64_t R, const float* x, float* u, int64_t i0,
                                int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) u[i] = Dot(p.a + (i % R) * p.in, x + (i / R) * p.in, p.in);
}
// y[t][o] += s * (B[o] . u[t]) for o in [o0, o1), t < T
[[gnu::noinline]] void LoraUp(const LoraPair& p, int64_t R, float s, const float* u, int64_t T,
                              float* y, int64_t o0, int64_t o1) {
  for (int64_t t = 0; t < T; ++t) {
    float* yt = y + t * p.out;
    const float* ut = u + t * R;
    for (int64_t o = o0; o < o1; ++o) yt[o] += s * Dot(p.b + o * R, ut, R);
  }
}

}  // namespace

void LoraApply(const LoraPair& p, int32_t rank, float s, const float* x, int64_t n_tokens,
               float* y, std::vector<float>* tmp, ThreadPool* pool) {
  const int64_t R = rank, T = n_tokens;
  tmp->resize(static_cast<size_t>(T * R));
  float* u = tmp->data();
  // Decoding steps (a few thousand multiply-adds) stay on this thread: a
  // pool hand-off costs microseconds and runs 7 x n_layer times per token.
  const bool parallel =
      pool != nullptr && pool->size() > 1 && T * (p.in + p.out) * R > (int64_t{1} << 16);
  if (!parallel) {
    LoraDown(p, R, x, u, 0, T * R);
    LoraUp(p, R, s, u, T, y, 0, p.out);
    return;
  }
  pool->ParallelFor(T * R, 1, [&](int64_t i0, int64_t i1) { LoraDown(p, R, x, u, i0, i1); });
  pool->ParallelFor(p.out, 16, [&](int64_t o0, int64_t o1) { LoraUp(p, R, s, u, T, y, o0, o1); });
}

}  // namespace yuan

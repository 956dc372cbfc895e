// LoRA adapters applied at run time, on top of untouched base weights (also
// when those are repacked or quantized): after a projection y = x W^T the
// forward pass adds, for the tokens of each sequence that chose adapters,
//   y += scale * scaling * (x A^T) B^T
// for every chosen adapter. Nothing is merged, so requests with different
// adapters (and none) share one batch and one copy of the base.
//
// A LoraBinding is made once per (adapter, model): it finds, for each layer
// and projection, the adapter's A/B (or none), after checking every target
// against the model's tensor names and shapes.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/adapter/adapter.h"
#include "runtime/core/thread_pool.h"
#include "runtime/model/model.h"

namespace yuan {

// The seven projections of a decoder layer that adapters can target.
enum class LoraProj : int { kQ = 0, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kLoraProjCount = 7;

// One A/B pair: A is [rank x in], B is [out x rank], row-major float32.
struct LoraPair {
  const float* a = nullptr;
  const float* b = nullptr;
  int64_t in = 0;
  int64_t out = 0;
};

class LoraBinding {
 public:
  // Checks that every target of `adapter` is one of the seven projections of
  // a layer of `model` with the adapter's shapes (FailedPrecondition naming
  // the tensor otherwise) and that the architectures agree. An adapter whose
  // llama q/k rows are in HF's order (a PEFT import) is brought to the
  // model's order on a private copy. The binding keeps the adapter alive; it
  // refers to the model, which must outlive it.
  static absl::StatusOr<std::shared_ptr<const LoraBinding>> Create(
      std::shared_ptr<const LoraAdapter> adapter, const Model& model);

  // The pair for `layer`'s projection, or nullptr when the adapter leaves it alone.
  const LoraPair* pair(int layer, LoraProj p) const {
    const LoraPair& q = pairs_[static_cast<size_t>(layer)][static_cast<size_t>(p)];
    return q.a != nullptr ? &q : nullptr;
  }
  int32_t rank() const { return rank_; }
  float scaling() const { return scaling_; }
  const LoraAdapter& adapter() const { return *adapter_; }
  const Model* model() const { return model_; }

 private:
  LoraBinding() = default;
  std::shared_ptr<const LoraAdapter> adapter_;
  const Model* model_ = nullptr;
  int32_t rank_ = 0;
  float scaling_ = 0;
  std::vector<std::array<LoraPair, kLoraProjCount>> pairs_;  // [layer][proj]
};

// One adapter chosen for a sequence, with its strength (1: as trained).
struct LoraChoice {
  std::shared_ptr<const LoraBinding> lora;
  float scale = 1.0f;
  bool operator==(const LoraChoice& o) const { return lora == o.lora && scale == o.scale; }
};
// The adapters of one sequence, applied together (their deltas add up).
using LoraSet = std::vector<LoraChoice>;

// Checks a set before use: every binding present, made for `model`, with a
// finite scale.
absl::Status CheckLoraSet(const LoraSet& set, const Model& model);

// y[t][p.out] += s * B (A x[t]) for t < n_tokens, with x rows of p.in floats.
// `tmp` is scratch (resized to n_tokens * rank). Each output element is
// computed the same way whatever n_tokens and the pool, so a sequence gets
// bit-identical results alone or in a batch. Uses the pool only when the
// work is large enough to pay for the hand-off.
void LoraApply(const LoraPair& p, int32_t rank, float s, const float* x, int64_t n_tokens,
               float* y, std::vector<float>* tmp, ThreadPool* pool);

}  // namespace yuan

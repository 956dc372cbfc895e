// LoRA adapters applied at run time, on top of untouched base weights (also
// when those are repacked or quantized): after a projection y = x W^T the
// forward pass adds, for the tokens of each sequence that chose adapters,
//   y += scale * scaling * (x A^T) B^T
// for every chosen adapter. Nothing is merged, so requests with different
// adapters (and none) share one batch and one copy of the base.
//
// A LoraBinding is made once per (adapter, model): it finds, for each layer
// and projection, the adapter's A/B (or none), after checking every target
// against the model's tensor names and shapes, and keeps them in the form
// the kernels read fastest (LoraStorage): decoding reads every A and B once
// per token, so their bytes, and the work of widening them, are most of what
// an adapter costs.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/adapter/adapter.h"
#include "runtime/core/malloc_ptr.h"
#include "runtime/core/thread_pool.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/matmul.h"
#include "runtime/model/model.h"

namespace yuan {

// The seven projections of a decoder layer that adapters can target.
enum class LoraProj : int { kQ = 0, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kLoraProjCount = 7;

// How a binding keeps A and B.
enum class LoraStorage {
  // The default. Beside a quantized base projection (Q8_0, Q4_0, k-quants)
  // with a multiple of 32 inputs, int8: A as Q8_0 rows (interleaved by 8
  // rows when the rank allows) meeting x quantized to Q8_0 blocks, as the
  // base projection's own kernel does, and B as int8 with one f16 scale per
  // output row (kernels::LoraUpQ8Index) meeting the rank-sized intermediate
  // quantized to int8 per token. That is llama.cpp's arithmetic for a Q8_0
  // adapter, adds about the activation rounding the base's kernel already
  // has, and reads half the bytes of F16 with int8 multiplies. Beside an
  // F32/F16/BF16 projection, F16 as below.
  kMatchBase,
  // F16 everywhere: A and B rounded to 11 significant bits (2^-11 relative,
  // far below what an adapter's training moves); f32 activations.
  kF16,
  // F32 everywhere: exact, twice F16's bytes.
  kF32,
};

// One A/B pair: A as a weight matrix [rank x in] (F16, F32 or Q8_0 in a
// binding; any MatMul dtype works) and B [out x rank] in b_type: F16 or F32
// in lora_up's blocks of 8 outputs (kernels::LoraUpIndex), or kQ8_0 for
// lora_up_q8's int8 blocks (kernels::LoraUpQ8Index).
struct LoraPair {
  MatRef a;
  const void* b = nullptr;
  DType b_type = DType::kF16;
  int64_t in = 0;
  int64_t out = 0;
};

class LoraBinding {
 public:
  // Checks that every target of `adapter` is one of the seven projections of
  // a layer of `model` with the adapter's shapes (FailedPrecondition naming
  // the tensor otherwise) and that the architectures agree. An adapter whose
  // llama q/k rows are in HF's order (a PEFT import) is brought to the
  // model's order on a private copy. The binding keeps the adapter's
  // description (adapter(): everything but the A/B values, which it holds
  // only in the kernels' form); it refers to the model, which must outlive it.
  // `storage`: see LoraStorage.
  static absl::StatusOr<std::shared_ptr<const LoraBinding>> Create(
      std::shared_ptr<const LoraAdapter> adapter, const Model& model,
      LoraStorage storage = LoraStorage::kMatchBase);

  // The pair for `layer`'s projection, or nullptr when the adapter leaves it alone.
  const LoraPair* pair(int layer, LoraProj p) const {
    const LoraPair& q = pairs_[static_cast<size_t>(layer)][static_cast<size_t>(p)];
    return q.a.data != nullptr ? &q : nullptr;
  }
  int32_t rank() const { return rank_; }
  float scaling() const { return scaling_; }
  // The adapter bound: rank, alpha, targets with their shapes, fingerprint
  // and provenance; its tensors' a and b are empty.
  const LoraAdapter& adapter() const { return *adapter_; }
  // Bytes of A and B as the kernels read them: what decoding reads per token.
  uint64_t storage_bytes() const { return arena_bytes_; }
  const Model* model() const { return model_; }

 private:
  LoraBinding() = default;
  // Lays out every pair's A and B in the form storage_ picks for it in one
  // arena, in the order decoding reads them: layer by layer, and in a
  // layer the A's then the B's of each group of projections that share an
  // input (q,k,v; o; gate,up; down). Decoding then reads the adapter as one
  // stream rather than 224 scattered allocations. src[layer][proj] is the
  // adapter's tensor or null.
  void Lay(const std::vector<std::array<const LoraTensor*, kLoraProjCount>>& src);
  std::shared_ptr<const LoraAdapter> adapter_;
  const Model* model_ = nullptr;
  int32_t rank_ = 0;
  float scaling_ = 0;
  std::vector<std::array<LoraPair, kLoraProjCount>> pairs_;  // [layer][proj]
  LoraStorage storage_ = LoraStorage::kMatchBase;
  MallocPtr<uint8_t> arena_;  // the storage behind pairs_
  uint64_t arena_bytes_ = 0;
};

// Loads an adapter file of any format (.yadp, PEFT folder, GGUF LoRA) for
// `model`: LoadAdapter (the model fills a PEFT import's missing
// fingerprint), CheckAdapterMatchesBase (FailedPrecondition naming the
// mismatch), then Create. What `yuan serve --adapter`, yuan_adapter_load
// and `yuan bench --lora` do.
absl::StatusOr<std::shared_ptr<const LoraBinding>> LoadLora(const std::string& path,
                                                            const Model& model);

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

// One LoRA delta to add: y[t][pair.out] += scale * B (A x[t]) for
// t < n_tokens, with x rows of pair.in floats.
struct LoraTask {
  const LoraPair* pair = nullptr;
  int32_t rank = 0;
  float scale = 0;  // the request's scale times the adapter's scaling()
  const float* x = nullptr;
  int64_t n_tokens = 0;
  float* y = nullptr;
};

// LoraApply's work items of one phase, weighted by cost: the items of
// family i are rows[i] rows of cost[i] each (down: the rows, or bands of 8
// rows, of a task's A; up: the output rows of the tasks that add to one y),
// cut into runs of about equal cost, one per worker.
struct LoraItems {
  std::vector<int64_t> first;  // first global item of each family (+ the total at the end)
  std::vector<int64_t> cost;   // cost of one item of each family
  std::vector<int64_t> cum;    // cost of all items of families before i
  void Add(int64_t rows, int64_t item_cost);
  void Clear();
  int64_t total_items() const { return first.empty() ? 0 : first.back(); }
  int64_t total_cost() const { return cum.empty() ? 0 : cum.back(); }
};

// Scratch reused by LoraApply across calls, so that decoding does not
// allocate its bookkeeping again for every projection group.
struct LoraScratch {
  std::vector<float> u;  // every task's x A^T, [tokens][rank]
  std::vector<kernels::Acts> xq;  // inputs quantized for Q8_0 A's, one per distinct x
  // LoraApply's bookkeeping
  std::vector<int64_t> u_off, task_xq, group_of, group_first, group_tasks;
  LoraItems down, up;
};

// Adds every task's delta with one hand-off to the pool (tasks may share an
// output, e.g. two adapters on one projection: they are added in task
// order; outputs must otherwise not overlap): the workers split the down-projections (u = x A^T),
// meet at a barrier, then split the up-projections' output rows. Each
// output element is one kernel dot product with a fixed order, whoever
// computes it and however many tokens or tasks come along, so a sequence
// gets bit-identical results alone or in a batch.
void LoraApply(const LoraTask* tasks, int64_t n_tasks, LoraScratch* scratch, ThreadPool* pool);

// One task on its own (tests, tools).
void LoraApply(const LoraPair& p, int32_t rank, float s, const float* x, int64_t n_tokens,
               float* y, LoraScratch* scratch, ThreadPool* pool);

}  // namespace yuan

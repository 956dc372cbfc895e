// The decoder forward pass on the CPU: tokens in, logits out, K/V appended to
// the session's cache. One function for every architecture in the registry;
// the optional tensors in LayerWeights (biases, q/k norms) switch their steps
// on, so architectures differ in data, not in code paths.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "runtime/core/thread_pool.h"
#include "runtime/engine/kv_cache.h"
#include "runtime/engine/lora.h"
#include "runtime/model/model.h"

namespace yuan {

// Scratch buffers reused across calls (sized for the largest batch seen).
struct ForwardScratch {
  std::vector<float> x, xn, gate;
  // q, k, v, att_out and att lie in `work`, and `up` at its start (set by
  // each Forward call): up lives from the gate/up product to SiLU, while
  // the other five are dead (att_out and att from the residual add before
  // it, q, k and v since attention; down writes att after SiLU). A 512-token
  // batch of bench-1b holds 11.5 MiB less than with up on its own.
  std::vector<float> work;
  float *q = nullptr, *k = nullptr, *v = nullptr, *att_out = nullptr, *att = nullptr, *up = nullptr;
  std::vector<float> rope;  // [n_tokens][n_rot]: (cos, sin) of each rotary pair
  std::vector<int64_t> pos;   // [n_tokens]: each token's position in its sequence
  std::vector<int32_t> seq;   // [n_tokens]: each token's slice
  std::vector<int64_t> out_rows;  // tokens whose logits are wanted
  std::vector<const void*> kv_pages;  // per layer: [slice][K/V][kv head][page]
  std::vector<std::vector<float>> attn;  // per attention worker: AttendTile's scratch
  std::vector<std::pair<int64_t, int64_t>> attn_tiles;  // attention's token tiles: [first, count]
  std::vector<LoraTask> lora_tasks;  // one projection group's LoRA deltas
  LoraScratch lora_scratch;
};

// One sequence's part of a batch: n_tokens consecutive tokens of the batch,
// at positions pos0, pos0 + 1, ... of that sequence, whose earlier positions
// [0, pos0) are already in the cache.
struct SeqSlice {
  int64_t n_tokens = 0;
  int64_t pos0 = 0;
  // Its page table in a paged cache (covering pos0 + n_tokens positions);
  // nullptr: pages 0, 1, 2, ... (a session's own cache).
  const int32_t* pages = nullptr;
  bool logits = true;  // wants the logits after its last token
  // Its LoRA adapters (lora.h), applied after each projection of its tokens;
  // nullptr or empty: the base model. Owned by the caller.
  const std::vector<LoraChoice>* loras = nullptr;
};

// The steps of a forward pass, in the order they run, for timing where a
// pass's time goes (`yuan bench --steps`). Each product's step includes
// quantizing its input, the hand-off to the pool and its LoRA deltas.
enum class ForwardStep : int {
  kEmbed = 0,   // checks, embedding rows, RoPE table, the first RMSNorm
  kQkv,         // q, k, v products
  kRope,        // RoPE (and q/k norms), K and V rows into the cache
  kAttention,   // attention over the cache
  kO,           // output projection
  kFfnNorm,     // residual, RMSNorm before the feed-forward
  kGateUp,      // gate and up products
  kSilu,        // SiLU(gate) * up
  kDown,        // down product
  kResidual,    // residual, the next layer's RMSNorm
  kHead,        // final RMSNorm, logits
  kCount,
};
constexpr int kForwardSteps = static_cast<int>(ForwardStep::kCount);

// Short name of a step ("q/k/v", "attention", ...).
const char* ForwardStepName(ForwardStep step);

// Wall time per step, summed over the passes that were given it (every
// layer's share of a step goes to the same entry).
struct ForwardStepTimes {
  double seconds[kForwardSteps] = {};
  int64_t passes = 0;
};

struct ForwardArgs {
  const int32_t* tokens = nullptr;
  int64_t n_tokens = 0;
  int64_t pos0 = 0;            // position of tokens[0]; cache holds [0, pos0)
  bool all_logits = false;     // logits for every token (else only the last)
  const std::atomic<bool>* cancel = nullptr;  // checked between layers
  // Several sequences in one batch (continuous batching): the slices in
  // order cover the n_tokens tokens, and pos0 / all_logits are unused.
  // Empty: one sequence {n_tokens, pos0, identity pages}.
  const SeqSlice* seqs = nullptr;
  int64_t n_seqs = 0;
  // When set, each step's wall time is added to it (one clock read per
  // step and layer).
  ForwardStepTimes* step_times = nullptr;
};

// Evaluates the tokens. `logits` receives n_vocab floats per sequence that
// wants them, in order (or n_tokens * n_vocab with all_logits). Cancelled
// when *cancel became true (the cache then holds an incomplete step: the
// caller discards the positions this call was adding).
absl::Status Forward(const Model& model, const ForwardArgs& args, KvCache* cache,
                     ForwardScratch* scratch, ThreadPool* pool, std::vector<float>* logits);

}  // namespace yuan

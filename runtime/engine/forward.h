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
#include "runtime/model/model.h"

namespace yuan {

// Scratch buffers reused across calls (sized for the largest batch seen).
struct ForwardScratch {
  std::vector<float> x, xn, q, k, v, att, att_out, gate, up;
  std::vector<float> rope;  // [n_tokens][n_rot]: (cos, sin) of each rotary pair
};

struct ForwardArgs {
  const int32_t* tokens = nullptr;
  int64_t n_tokens = 0;
  int64_t pos0 = 0;            // position of tokens[0]; cache holds [0, pos0)
  bool all_logits = false;     // logits for every token (else only the last)
  const std::atomic<bool>* cancel = nullptr;  // checked between layers
};

// Evaluates the tokens. `logits` receives n_vocab floats (or n_tokens *
// n_vocab with all_logits). Cancelled when *cancel became true (the cache
// then holds an incomplete step: the caller discards positions >= pos0).
absl::Status Forward(const Model& model, const ForwardArgs& args, KvCache* cache,
                     ForwardScratch* scratch, ThreadPool* pool, std::vector<float>* logits);

}  // namespace yuan

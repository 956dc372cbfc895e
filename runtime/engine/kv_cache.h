// Per-session key/value cache: for each layer, K and V rows of kv_dim values
// for positions [0, capacity), stored as f16 (as llama.cpp does by default:
// half the memory and bandwidth of f32, and the same numerics as the
// reference outputs we test against). A contiguous block per session for now; the
// paged cache shared across sessions (continuous batching) replaces it behind
// the same accessors.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/model.h"

namespace yuan {

class KvCache {
 public:
  // ResourceExhausted when the cache would not fit in memory.
  static absl::StatusOr<KvCache> Create(const ModelConfig& config, int32_t capacity);

  int32_t capacity() const { return capacity_; }
  int64_t kv_dim() const { return kv_dim_; }
  size_t bytes() const { return (k_.size() + v_.size()) * sizeof(uint16_t); }

  uint16_t* k(int layer, int64_t pos) { return &k_[(layer * int64_t{capacity_} + pos) * kv_dim_]; }
  uint16_t* v(int layer, int64_t pos) { return &v_[(layer * int64_t{capacity_} + pos) * kv_dim_]; }

 private:
  int32_t capacity_ = 0;
  int64_t kv_dim_ = 0;
  std::vector<uint16_t> k_, v_;  // f16 bits
};

}  // namespace yuan

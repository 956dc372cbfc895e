// Per-session key/value cache: for each layer, K and V rows of kv_dim values
// for positions [0, capacity). Stored as f16 by default (as llama.cpp does:
// half the memory and bandwidth of f32, and the numerics of the reference
// outputs we test against) or as f32 (exact attention, e.g. to compare with
// an f32 reference implementation). A contiguous block per session for now;
// the paged cache shared across sessions (continuous batching) replaces it
// behind the same accessors.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/core/dtype.h"
#include "runtime/model/model.h"

namespace yuan {

class KvCache {
 public:
  // `type` is kF16 or kF32. ResourceExhausted when it would not fit in memory.
  static absl::StatusOr<KvCache> Create(const ModelConfig& config, int32_t capacity,
                                        DType type = DType::kF16);

  int32_t capacity() const { return capacity_; }
  int64_t kv_dim() const { return kv_dim_; }
  DType type() const { return type_; }
  size_t elem_bytes() const { return elem_; }  // bytes per value: 2 (f16) or 4 (f32)
  size_t row_bytes() const { return static_cast<size_t>(kv_dim_) * elem_; }
  size_t bytes() const { return k_.size() + v_.size(); }

  // Row of position `pos` in `layer` (contiguous for consecutive positions).
  void* k(int layer, int64_t pos) { return &k_[Offset(layer, pos)]; }
  void* v(int layer, int64_t pos) { return &v_[Offset(layer, pos)]; }
  const void* k(int layer, int64_t pos) const { return &k_[Offset(layer, pos)]; }
  const void* v(int layer, int64_t pos) const { return &v_[Offset(layer, pos)]; }

 private:
  size_t Offset(int layer, int64_t pos) const {
    return static_cast<size_t>((layer * int64_t{capacity_} + pos) * kv_dim_) * elem_;
  }
  int32_t capacity_ = 0;
  int64_t kv_dim_ = 0;
  DType type_ = DType::kF16;
  size_t elem_ = 2;  // bytes per value
  std::vector<uint8_t> k_, v_;
};

}  // namespace yuan

#include "runtime/engine/kv_cache.h"

#include <cstdlib>

#include "runtime/core/status.h"
#include "runtime/cpu/attention.h"

namespace yuan {

absl::StatusOr<KvCache> KvCache::Create(const ModelConfig& c, int32_t capacity, DType type) {
  if (capacity <= 0) return absl::InvalidArgumentError("context size must be positive");
  return CreatePaged(c, 1, capacity, type);
}

absl::StatusOr<KvCache> KvCache::CreatePaged(const ModelConfig& c, int32_t n_pages,
                                             int32_t page_size, DType type) {
  if (n_pages <= 0 || page_size <= 0) {
    return absl::InvalidArgumentError("KV cache size must be positive");
  }
  if (n_pages > 1 && page_size % kAttnPageMultiple != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV page size ", page_size, " is not a multiple of ", kAttnPageMultiple));
  }
  if (type != DType::kF16 && type != DType::kF32) {
    return absl::InvalidArgumentError("the KV cache type must be f16 or f32");
  }
  KvCache cache;
  cache.type_ = type;
  cache.elem_ = type == DType::kF16 ? 2 : 4;
  cache.n_pages_ = n_pages;
  cache.page_size_ = page_size;
  cache.kv_dim_ = int64_t{c.n_head_kv} * c.head_dim;
  const uint64_t positions = uint64_t{static_cast<uint32_t>(n_pages)} * page_size;
  const uint64_t n = uint64_t{static_cast<uint32_t>(c.n_layer)} * positions * cache.kv_dim_;
  constexpr uint64_t kMaxValues = uint64_t{1} << 36;  // 128 GiB per tensor: surely a mistake
  if (positions > (uint64_t{1} << 31) - 1 || n > kMaxValues) {
    return absl::ResourceExhaustedError(absl::StrCat("KV cache for ", positions,
                                                     " positions is too large"));
  }
  cache.bytes_ = static_cast<size_t>(n * cache.elem_);
  cache.k_ = HugePageBuffer::Allocate(cache.bytes_);
  cache.v_ = HugePageBuffer::Allocate(cache.bytes_);
  if (cache.k_.data() == nullptr || cache.v_.data() == nullptr) {  // a huge request is plausible: report it
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot allocate the KV cache (%d positions, %.1f MiB)", positions,
                        2.0 * n * cache.elem_ / (1 << 20)));
  }
  return cache;
}

}  // namespace yuan

#include "runtime/engine/kv_cache.h"

#include <new>

#include "runtime/core/status.h"

namespace yuan {

absl::StatusOr<KvCache> KvCache::Create(const ModelConfig& c, int32_t capacity, DType type) {
  if (capacity <= 0) return absl::InvalidArgumentError("context size must be positive");
  if (type != DType::kF16 && type != DType::kF32) {
    return absl::InvalidArgumentError("the KV cache type must be f16 or f32");
  }
  KvCache cache;
  cache.type_ = type;
  cache.elem_ = type == DType::kF16 ? 2 : 4;
  cache.capacity_ = capacity;
  cache.kv_dim_ = int64_t{c.n_head_kv} * c.head_dim;
  const uint64_t n = uint64_t{static_cast<uint32_t>(c.n_layer)} * capacity * cache.kv_dim_;
  constexpr uint64_t kMaxValues = uint64_t{1} << 36;  // 128 GiB per tensor: surely a mistake
  if (n > kMaxValues) {
    return absl::ResourceExhaustedError(absl::StrCat("KV cache for ", capacity,
                                                     " positions is too large"));
  }
  try {  // the one place a huge allocation is plausible: report it, don't abort
    cache.k_.assign(n * cache.elem_, 0);
    cache.v_.assign(n * cache.elem_, 0);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot allocate the KV cache (%d positions, %.1f MiB)", capacity,
                        2.0 * n * cache.elem_ / (1 << 20)));
  }
  return cache;
}

}  // namespace yuan

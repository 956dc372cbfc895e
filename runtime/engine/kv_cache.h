// Key/value cache: for each layer, K and V rows of kv_dim values per
// position. Stored as f16 by default (as llama.cpp does: half the memory and
// bandwidth of f32, and the numerics of the reference outputs we test
// against) or as f32 (exact attention, e.g. to compare with an f32 reference
// implementation).
//
// The cache is a set of pages of page_size positions. A session's own cache
// (Create) is one page as long as its context; the cache the scheduler
// shares between concurrent sequences (CreatePaged) has many small pages,
// and each sequence holds a page table: position p of a sequence is row
// p % page_size of page table[p / page_size]. Within a page and layer the
// rows of consecutive positions are contiguous (the attention kernel reads
// them a block at a time).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "absl/status/statusor.h"
#include "runtime/core/dtype.h"
#include "runtime/core/huge_pages.h"
#include "runtime/model/model.h"

namespace yuan {

// Positions per page of the shared cache (a multiple of kAttnPageMultiple).
constexpr int32_t kKvPageSize = 64;

class KvCache {
 public:
  // One contiguous sequence of `capacity` positions. `type` is kF16 or kF32.
  // ResourceExhausted when it would not fit in memory.
  static absl::StatusOr<KvCache> Create(const ModelConfig& config, int32_t capacity,
                                        DType type = DType::kF16);
  // n_pages pages of page_size positions (page_size a multiple of 64).
  static absl::StatusOr<KvCache> CreatePaged(const ModelConfig& config, int32_t n_pages,
                                             int32_t page_size, DType type = DType::kF16);

  int32_t capacity() const { return n_pages_ * page_size_; }  // positions in all pages
  int32_t n_pages() const { return n_pages_; }
  int32_t page_size() const { return page_size_; }
  int64_t kv_dim() const { return kv_dim_; }
  DType type() const { return type_; }
  size_t elem_bytes() const { return elem_; }  // bytes per value: 2 (f16) or 4 (f32)
  size_t row_bytes() const { return static_cast<size_t>(kv_dim_) * elem_; }
  size_t bytes() const { return 2 * bytes_; }

  // Row `row` of `page` in `layer`.
  void* k(int layer, int32_t page, int64_t row) { return &k_[Offset(layer, page, row)]; }
  void* v(int layer, int32_t page, int64_t row) { return &v_[Offset(layer, page, row)]; }
  // Position `pos` of the sequence whose page table is 0, 1, 2, ... (a
  // session's own cache): contiguous for consecutive positions of one page.
  void* k(int layer, int64_t pos) { return k(layer, Page(pos), pos % page_size_); }
  void* v(int layer, int64_t pos) { return v(layer, Page(pos), pos % page_size_); }
  const void* k(int layer, int64_t pos) const {
    return &k_[Offset(layer, Page(pos), pos % page_size_)];
  }
  const void* v(int layer, int64_t pos) const {
    return &v_[Offset(layer, Page(pos), pos % page_size_)];
  }

 private:
  int32_t Page(int64_t pos) const { return static_cast<int32_t>(pos / page_size_); }
  size_t Offset(int layer, int32_t page, int64_t row) const {
    return static_cast<size_t>(((layer * int64_t{n_pages_} + page) * page_size_ + row) * kv_dim_) *
           elem_;
  }
  int32_t n_pages_ = 0;
  int32_t page_size_ = 0;
  int64_t kv_dim_ = 0;
  DType type_ = DType::kF16;
  size_t elem_ = 2;  // bytes per value
  // Zero-filled on demand: the pages of a large shared cache are not
  // resident until a sequence writes to them. Huge pages, for the TLB (see
  // huge_pages.h): decoding bench-0.3b Q4_0 ran 2-4 % faster with them.
  size_t bytes_ = 0;  // of K (and of V)
  HugePageBuffer k_, v_;
};

}  // namespace yuan

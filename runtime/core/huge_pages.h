// Zero-filled memory for a large buffer that is read over and over (the KV
// cache): an anonymous mapping, 2 MiB aligned and advised as transparent
// huge pages when it is at least that large.
//
// Decoding reads every layer's K and V rows at every step, between passes
// over hundreds of MiB of weights that evict them from the caches and the
// TLB. With 4 KiB pages each K or V page it touches costs a TLB miss, on a
// virtual machine a two-level page walk; with 2 MiB pages a whole layer's
// rows usually share one. Pages become resident only when first written, as
// with calloc, so a large shared cache costs memory only for what its
// sequences use (in 2 MiB steps when huge pages are granted).
//
// Under AddressSanitizer the buffer comes from calloc instead: mapped
// memory has no redzones, and an access past the end of the KV cache should
// still be caught in the sanitizer build.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#define YUAN_HUGE_PAGES_FROM_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define YUAN_HUGE_PAGES_FROM_HEAP 1
#endif
#endif
#ifndef YUAN_HUGE_PAGES_FROM_HEAP
#define YUAN_HUGE_PAGES_FROM_HEAP 0
#endif

namespace yuan {

class HugePageBuffer {
 public:
  // Buffers from this size up are aligned to it and advised as huge pages.
  static constexpr size_t kHugePage = size_t{2} << 20;
  // calloc'ed (sanitizer builds), not mapped: no alignment, no huge pages.
  static constexpr bool kFromHeap = YUAN_HUGE_PAGES_FROM_HEAP;

  HugePageBuffer() = default;
  // `bytes` of zeros; an empty buffer (data() == nullptr) when the system
  // refuses the mapping or bytes is 0.
  static HugePageBuffer Allocate(size_t bytes);

  ~HugePageBuffer();
  HugePageBuffer(HugePageBuffer&& other) noexcept;
  HugePageBuffer& operator=(HugePageBuffer&& other) noexcept;
  HugePageBuffer(const HugePageBuffer&) = delete;
  HugePageBuffer& operator=(const HugePageBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }  // as asked for
  uint8_t& operator[](size_t i) const { return data_[i]; }

 private:
  void Release();  // frees what data_ holds (not the fields)

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // bytes mapped at data_ (size_ rounded up to pages); 0 if calloc'ed
};

}  // namespace yuan

#include "runtime/core/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

namespace yuan {

HugePageBuffer HugePageBuffer::Allocate(size_t bytes) {
  HugePageBuffer b;
  if (bytes == 0) return b;
  if constexpr (kFromHeap) {
    b.data_ = static_cast<uint8_t*>(std::calloc(bytes, 1));
    b.size_ = b.data_ != nullptr ? bytes : 0;
    return b;
  }
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const bool huge = bytes >= kHugePage;
  const size_t unit = huge ? kHugePage : page;
  if (bytes > SIZE_MAX - 2 * unit) return b;
  const size_t size = (bytes + unit - 1) / unit * unit;
  // Map one huge page more than needed and unmap the ends around the
  // first 2 MiB boundary, so the buffer starts on one.
  const size_t over = huge ? size + kHugePage : size;
  void* p = ::mmap(nullptr, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return b;
  uint8_t* base = static_cast<uint8_t*>(p);
  uint8_t* start = base;
  if (huge) {
    start = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + kHugePage - 1) & ~(kHugePage - 1));
    if (start > base) ::munmap(base, static_cast<size_t>(start - base));
    const size_t tail = static_cast<size_t>(base + over - (start + size));
    if (tail > 0) ::munmap(start + size, tail);
#ifdef MADV_HUGEPAGE
    ::madvise(start, size, MADV_HUGEPAGE);  // a hint; without it only speed is lost
#endif
  }
  b.data_ = start;
  b.size_ = bytes;
  b.mapped_ = size;
  return b;
}

void HugePageBuffer::Release() {
  if (data_ == nullptr) return;
  if (mapped_ > 0) {
    ::munmap(data_, mapped_);
  } else {
    std::free(data_);
  }
}

HugePageBuffer::~HugePageBuffer() { Release(); }

HugePageBuffer::HugePageBuffer(HugePageBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

HugePageBuffer& HugePageBuffer::operator=(HugePageBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

}  // namespace yuan

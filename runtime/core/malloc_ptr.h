// Ownership of memory from std::malloc / calloc / aligned_alloc, released
// with std::free: repacked weights, the KV cache, a LoRA binding's arena.
#pragma once

#include <cstdlib>
#include <memory>

namespace yuan {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

template <class T>
using MallocPtr = std::unique_ptr<T, FreeDeleter>;

}  // namespace yuan

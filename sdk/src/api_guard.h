// Shared machinery of the extern "C" layer: the thread-local last error,
// absl::Status -> yuan_status mapping, the guard that keeps every exception
// inside the library, live-handle registries, and struct_size handling.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "yuan/yuan.h"

namespace yuan::api {

// Records `status` as this thread's last error and returns its code.
yuan_status Fail(const absl::Status& status);
yuan_status Fail(yuan_status code, std::string message);
// Clears the last error (successful calls leave it empty).
yuan_status Ok();
yuan_status ToYuanStatus(const absl::Status& status);
const char* LastError();

// Every extern "C" body is wrapped in YUAN_API_BEGIN / YUAN_API_END so that
// no exception (bad_alloc included) crosses the C boundary.
#define YUAN_API_BEGIN try {
#define YUAN_API_END                                                          \
  }                                                                           \
  catch (const std::bad_alloc&) {                                             \
    return ::yuan::api::Fail(YUAN_ERR_RESOURCE_EXHAUSTED, "out of memory");   \
  }                                                                           \
  catch (const std::exception& e) {                                           \
    return ::yuan::api::Fail(YUAN_ERR_INTERNAL, std::string("internal error: ") + e.what()); \
  }                                                                           \
  catch (...) {                                                               \
    return ::yuan::api::Fail(YUAN_ERR_INTERNAL, "internal error: unknown exception"); \
  }

// The set of live handles of one type, so that NULL, freed and foreign
// pointers are refused with an error instead of being dereferenced.
template <typename T>
class HandleRegistry {
 public:
  void Add(const T* h) {
    std::lock_guard<std::mutex> lock(mu_);
    live_.insert(h);
  }
  // True if it was live (and is now removed).
  bool Remove(const T* h) {
    std::lock_guard<std::mutex> lock(mu_);
    return live_.erase(h) > 0;
  }
  bool Contains(const T* h) {
    std::lock_guard<std::mutex> lock(mu_);
    return h != nullptr && live_.contains(h);
  }

 private:
  std::mutex mu_;
  absl::flat_hash_set<const T*> live_;
};

// Largest struct_size we believe: anything bigger is an uninitialised struct.
constexpr uint32_t kMaxStructSize = 4096;

// Copies a caller's options struct into `out` (pre-filled with defaults),
// honouring its struct_size: fields beyond it keep their defaults, fields
// beyond ours (a newer caller) are ignored. `v1_size` is the smallest size
// ever released.
template <typename T>
yuan_status ReadStruct(const T* in, size_t v1_size, const char* type_name, T* out) {
  if (in == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, std::string(type_name) + " is NULL");
  if (in->struct_size < v1_size || in->struct_size > kMaxStructSize) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT,
                std::string(type_name) + ".struct_size is " + std::to_string(in->struct_size) +
                    ", expected at least " + std::to_string(v1_size) +
                    " (call the matching *_init function first)");
  }
  const size_t n = in->struct_size < sizeof(T) ? in->struct_size : sizeof(T);
  std::memcpy(static_cast<void*>(out), in, n);
  out->struct_size = static_cast<uint32_t>(sizeof(T));
  return YUAN_OK;
}

// Writes `value` into a caller's result struct, only as far as its
// struct_size reaches.
template <typename T>
yuan_status WriteStruct(const T& value, size_t v1_size, const char* type_name, T* out) {
  if (out == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, std::string(type_name) + " is NULL");
  const uint32_t size = out->struct_size;
  if (size < v1_size || size > kMaxStructSize) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT,
                std::string(type_name) + ".struct_size is " + std::to_string(size) +
                    ", expected at least " + std::to_string(v1_size) +
                    " (call the matching *_init function first)");
  }
  std::memcpy(static_cast<void*>(out), &value, size < sizeof(T) ? size : sizeof(T));
  out->struct_size = size;
  return YUAN_OK;
}

// Size protocol for text results: *needed = text size; copies with a NUL
// when it fits, else BUFFER_TOO_SMALL.
yuan_status CopyText(const std::string& text, char* buffer, size_t capacity, size_t* needed);

}  // namespace yuan::api

// Hand-built GGUF bytes for the reader tests. GgufWriter only writes valid
// files and a subset of the value types; this builder writes any field with
// any value, so a test can change exactly one thing and see it rejected.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/model/gguf.h"

namespace yuan::testing {

class GgufBytes {
 public:
  GgufBytes& Raw(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }
  template <typename T>
  GgufBytes& Le(T v) {  // little-endian (the tests run on little-endian hosts)
    return Raw(&v, sizeof v);
  }
  GgufBytes& U8(uint8_t v) { return Le(v); }
  GgufBytes& U32(uint32_t v) { return Le(v); }
  GgufBytes& U64(uint64_t v) { return Le(v); }
  GgufBytes& Type(GgufType t) { return U32(static_cast<uint32_t>(t)); }
  GgufBytes& Str(std::string_view s) {
    U64(s.size());
    return Raw(s.data(), s.size());
  }

  GgufBytes& Header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    Raw("GGUF", 4);
    U32(version);
    U64(n_tensors);
    return U64(n_kv);
  }
  // The key and the value type; the caller appends the value.
  GgufBytes& Key(std::string_view key, GgufType type) {
    Str(key);
    return Type(type);
  }
  GgufBytes& TensorInfo(std::string_view name, const std::vector<int64_t>& ne, uint32_t type,
                        uint64_t offset) {
    Str(name);
    U32(static_cast<uint32_t>(ne.size()));
    for (int64_t d : ne) Le(d);
    U32(type);
    return U64(offset);
  }
  GgufBytes& PadTo(size_t alignment) {
    while (bytes.size() % alignment != 0) bytes.push_back(0);
    return *this;
  }
  GgufBytes& Fill(size_t n, uint8_t v = 0) {
    bytes.insert(bytes.end(), n, v);
    return *this;
  }

  std::vector<uint8_t> bytes;
};

}  // namespace yuan::testing

// Writes GGUF v3 files: the test suite's random models and malformed-file
// cases, and the benchmark models. Output is what llama.cpp's gguf writer
// produces (little-endian, 32-byte aligned tensor data by default).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "runtime/core/dtype.h"
#include "runtime/model/gguf.h"

namespace yuan {

class GgufWriter {
 public:
  GgufWriter() = default;

  void SetAlignment(uint32_t alignment) { alignment_ = alignment; }  // also writes general.alignment when != 32

  void AddUint8(std::string_view key, uint8_t v);
  void AddInt8(std::string_view key, int8_t v);
  void AddUint16(std::string_view key, uint16_t v);
  void AddInt16(std::string_view key, int16_t v);
  void AddUint32(std::string_view key, uint32_t v);
  void AddInt32(std::string_view key, int32_t v);
  void AddUint64(std::string_view key, uint64_t v);
  void AddInt64(std::string_view key, int64_t v);
  void AddFloat32(std::string_view key, float v);
  void AddFloat64(std::string_view key, double v);
  void AddBool(std::string_view key, bool v);
  void AddString(std::string_view key, std::string_view v);
  void AddStringArray(std::string_view key, const std::vector<std::string>& v);
  void AddFloat32Array(std::string_view key, const std::vector<float>& v);
  void AddInt32Array(std::string_view key, const std::vector<int32_t>& v);

  // Adds a tensor whose bytes are already in `type`'s layout; `ne` in ggml
  // order (ne[0] contiguous). The bytes are copied.
  void AddTensor(std::string_view name, DType type, std::vector<int64_t> ne,
                 const void* data, size_t n_bytes);
  // Quantizes f32 values (row length ne[0]) to `type` and adds the tensor.
  void AddTensorF32(std::string_view name, DType type, std::vector<int64_t> ne,
                    const float* values);

  // The whole file as bytes.
  std::vector<uint8_t> Serialize() const;
  absl::Status WriteFile(const std::string& path) const;

 private:
  struct Kv {
    std::string key;
    std::vector<uint8_t> encoded;  // value type + value, as in the file
  };
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
  };
  void AddRaw(std::string_view key, GgufType type, const void* v, size_t n);

  uint32_t alignment_ = 32;
  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace yuan

// Writes .safetensors files the way the reference implementation does: the
// JSON header padded with spaces to a multiple of 8 bytes, then each tensor's
// bytes in the order added. Used by the tests (and later by adapter export).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "runtime/core/dtype.h"

namespace yuan {

class SafetensorsWriter {
 public:
  // `dtype` is a safetensors dtype name ("F32", "BF16", ...); `shape` is
  // row-major (outermost first). The bytes are copied. Serialize() writes
  // exactly what was added (no checks), so tests can build odd files.
  void AddTensor(std::string_view name, std::string_view dtype, std::vector<int64_t> shape,
                 const void* data, size_t n_bytes);
  // The same for a ggml type with a safetensors name (F32, F16, BF16, ...).
  void AddTensor(std::string_view name, DType type, std::vector<int64_t> shape, const void* data,
                 size_t n_bytes);
  // Converts `values` (row-major) to F32, F16 or BF16 and adds them.
  void AddTensorF32(std::string_view name, DType type, std::vector<int64_t> shape,
                    const float* values);
  void AddMetadata(std::string_view key, std::string_view value);

  std::vector<uint8_t> Serialize() const;
  // Serialize() to `path`, after checking each tensor's size against its
  // dtype and shape.
  absl::Status WriteFile(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  std::vector<Tensor> tensors_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

}  // namespace yuan

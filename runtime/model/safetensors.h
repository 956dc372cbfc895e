// Reader for one .safetensors file (https://github.com/huggingface/safetensors):
//
//   u64 little-endian N | N bytes of JSON header | data section
//
// The header maps each tensor name to {"dtype", "shape", "data_offsets":
// [begin, end)} (offsets relative to the data section) and may hold a
// "__metadata__" object of string -> string.
//
// As with the GGUF reader, the file is hostile: the header length, the JSON,
// every dtype, shape and offset are checked before use, and any violation is a
// FormatError whose message starts with "safetensors '<path>':" and names the
// problem. Tensor data is not copied: `data` points into the mapping, valid
// while the SafetensorsFile lives.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "runtime/core/dtype.h"
#include "runtime/core/mapped_file.h"

namespace yuan {

// The largest header accepted (the reference implementation's limit).
inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;
// Shapes with more dimensions are refused (ggml tensors have at most 4).
inline constexpr int kSafetensorsMaxDims = 4;

// Traits of a safetensors dtype name ("F32", "BF16", "I64", ...): its size in
// bytes and the ggml type with the same layout, when there is one. nullopt for
// names the format does not define (or sub-byte types yuan does not read).
struct SafetensorsDTypeInfo {
  std::string_view name;
  int size = 0;                // bytes per element
  std::optional<DType> type;   // F32, F16, BF16, F64, I8, I16, I32, I64
};
std::optional<SafetensorsDTypeInfo> GetSafetensorsDType(std::string_view name);
// The safetensors name of a ggml type ("F32", "F16", "BF16", ...); empty when
// the type has none (quantized types).
std::string_view SafetensorsDTypeName(DType type);

struct SafetensorsTensor {
  std::string name;
  std::string dtype;           // as written in the header, e.g. "BF16"
  int elem_size = 0;           // bytes per element
  std::optional<DType> type;   // the ggml type, when the dtype has one
  std::vector<int64_t> shape;  // row-major, outermost first, as in the header
  uint64_t begin = 0;          // data_offsets, relative to the data section
  uint64_t end = 0;
  const uint8_t* data = nullptr;  // into the mapping

  uint64_t n_bytes() const { return end - begin; }
  int64_t n_elements() const;
  // The shape in ggml order (ne[0] is the contiguous, last safetensors
  // dimension), padded with 1s: [rows, cols] -> {cols, rows, 1, 1}.
  void GgmlNe(int64_t ne[4]) const;
};

class SafetensorsFile {
 public:
  // Maps and parses `path`.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // Parses a buffer that the caller keeps alive (tests, fuzzing).
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> FromBuffer(
      const void* data, size_t size, std::string path = "<memory>");
  // Parses an already opened file; takes ownership.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Parse(std::unique_ptr<MappedFile> file);

  const std::string& path() const { return file_->path(); }
  uint64_t file_size() const { return file_->size(); }
  uint64_t header_size() const { return header_size_; }
  uint64_t data_offset() const { return 8 + header_size_; }

  // "__metadata__" entries, sorted by key.
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
  // Tensors sorted by their offset in the data section.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* Find(std::string_view name) const;

 private:
  SafetensorsFile() = default;
  absl::Status ParseAll();

  std::unique_ptr<MappedFile> file_;
  uint64_t header_size_ = 0;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::vector<SafetensorsTensor> tensors_;
  absl::flat_hash_map<std::string_view, size_t> index_;
};

}  // namespace yuan

// GGUF v2/v3 reader (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
//
// The file is treated as hostile: every count, length, offset and size is
// checked against the bytes that are really there before it is used, and any
// violation is a FormatError (-> YUAN_ERR_FORMAT) whose message names the
// problem and where it was found. Nothing is copied: strings, arrays and
// tensor data are views into the mapping, valid while the GgufFile lives.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "runtime/core/dtype.h"
#include "runtime/core/mapped_file.h"

namespace yuan {

// GGUF metadata value types (gguf_type); values are from the spec.
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
std::string_view GgufTypeName(GgufType type);

// One metadata value. Scalars are decoded; strings and arrays point into the
// mapping. Arrays of strings keep one view per element; arrays of scalars keep
// the raw little-endian bytes (`array_data`) and are read with ArrayAt*.
struct GgufValue {
  GgufType type = GgufType::kUint8;
  // Scalars (every integer type widened; bool is 0/1).
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0.0;
  std::string_view str;  // kString
  // kArray
  GgufType elem_type = GgufType::kUint8;
  uint64_t array_size = 0;
  const uint8_t* array_data = nullptr;      // scalar elements, packed
  std::vector<std::string_view> strings;    // string elements
  std::vector<GgufValue> nested;            // array elements that are arrays

  bool is_integer() const;
  bool is_float() const { return type == GgufType::kFloat32 || type == GgufType::kFloat64; }
  // Scalar element `idx` of a scalar array, converted. Caller checks bounds.
  int64_t ArrayInt(uint64_t idx) const;
  double ArrayFloat(uint64_t idx) const;
};

struct GgufTensor {
  std::string_view name;
  DType type = DType::kF32;
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous dimension
  uint64_t offset = 0;           // from the start of the data section
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

struct GgufKv {
  std::string_view key;
  GgufValue value;
};

// A model assembled in memory rather than read from one GGUF file: the
// Hugging Face folder loader (config.json + safetensors + tokenizer.json)
// translates its inputs into GGUF-convention metadata and tensor names, as
// llama.cpp's converter would, but without copying any weights. Every
// string_view and data pointer in `kvs` / `tensors` must stay valid while
// `keep_alive` lives (it owns the strings and the mappings).
struct GgufParts {
  std::string path;  // shown in messages (e.g. the folder)
  std::vector<GgufKv> kvs;
  std::vector<GgufTensor> tensors;  // data set, n_bytes consistent with type and shape
  std::vector<std::shared_ptr<const void>> keep_alive;
};

class GgufFile {
 public:
  // Maps and parses `path`.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses a buffer that the caller keeps alive (tests, fuzzing).
  static absl::StatusOr<std::unique_ptr<GgufFile>> FromBuffer(const void* data, size_t size);
  // Parses an already opened file; takes ownership.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Parse(std::unique_ptr<MappedFile> file);
  // Builds the view from parts in memory; FormatError on duplicate keys or
  // tensor names, or a tensor whose byte count does not match its shape.
  static absl::StatusOr<std::unique_ptr<GgufFile>> FromParts(GgufParts parts);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return file_->size(); }
  const std::string& path() const { return file_->path(); }
  // Whether the file is memory-mapped (MappedFile::mapped).
  bool mapped() const { return file_->mapped(); }

  // Metadata in file order.
  const std::vector<GgufKv>& metadata() const { return kvs_; }
  const GgufValue* Find(std::string_view key) const;

  // Typed getters. NotFound when absent; FormatError naming the key and both
  // types when present with an incompatible type. Integers convert between
  // widths when the value fits; floats accept any numeric type.
  absl::StatusOr<std::string_view> GetString(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  // The same, with a default when the key is absent (a wrong type is still an error).
  absl::StatusOr<int64_t> GetInt(std::string_view key, int64_t fallback) const;
  absl::StatusOr<double> GetFloat(std::string_view key, double fallback) const;
  absl::StatusOr<bool> GetBool(std::string_view key, bool fallback) const;
  absl::StatusOr<std::string_view> GetString(std::string_view key, std::string_view fallback) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* FindTensor(std::string_view name) const;

 private:
  GgufFile() = default;
  absl::Status ParseAll();

  std::unique_ptr<MappedFile> file_;
  std::vector<std::shared_ptr<const void>> keep_alive_;  // FromParts only
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  absl::flat_hash_map<std::string_view, size_t> kv_index_;
  std::vector<GgufTensor> tensors_;
  absl::flat_hash_map<std::string_view, size_t> tensor_index_;
};

}  // namespace yuan

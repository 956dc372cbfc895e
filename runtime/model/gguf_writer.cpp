#include "runtime/model/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "runtime/core/status.h"

namespace yuan {
namespace {

constexpr uint32_t kVersion = 3;
constexpr uint32_t kDefaultAlignment = 32;
constexpr std::string_view kAlignmentKey = "general.alignment";

// Appends `v` little-endian, whatever the host order.
template <typename T>
void PutLE(std::vector<uint8_t>* out, T v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8);
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);  // low bytes on little-endian hosts, which we build for
  for (size_t i = 0; i < sizeof(T); ++i) out->push_back(static_cast<uint8_t>(bits >> (8 * i)));
}

void PutString(std::vector<uint8_t>* out, std::string_view s) {
  PutLE<uint64_t>(out, s.size());
  out->insert(out->end(), s.begin(), s.end());
}

uint64_t PadTo(uint64_t x, uint64_t alignment) {
  const uint64_t rem = x % alignment;
  return rem == 0 ? 0 : alignment - rem;
}

// Where bytes go: a growing buffer (Serialize) or a FILE (WriteFile, which
// streams so a multi-gigabyte benchmark model is not held twice in memory).
class Sink {
 public:
  explicit Sink(std::vector<uint8_t>* buf) : buf_(buf) {}
  explicit Sink(std::FILE* f) : file_(f) {}

  void Put(const void* p, size_t n) {
    if (n == 0) return;
    if (buf_ != nullptr) {
      const uint8_t* b = static_cast<const uint8_t*>(p);
      buf_->insert(buf_->end(), b, b + n);
    } else if (ok_ && std::fwrite(p, 1, n, file_) != n) {
      ok_ = false;
    }
  }
  void Put(const std::vector<uint8_t>& v) { Put(v.data(), v.size()); }
  void Zeros(uint64_t n) {
    static const uint8_t kZeros[64] = {};
    while (n > 0) {
      const size_t chunk = n < sizeof kZeros ? static_cast<size_t>(n) : sizeof kZeros;
      Put(kZeros, chunk);
      n -= chunk;
    }
  }
  bool ok() const { return ok_; }

 private:
  std::vector<uint8_t>* buf_ = nullptr;
  std::FILE* file_ = nullptr;
  bool ok_ = true;
};

// The file in llama.cpp's layout: header, metadata, tensor infos, padding to
// the alignment, then each tensor's bytes padded to the alignment. `Kvs` and
// `Tensors` are GgufWriter's private vectors (deduced, so they need no name).
template <typename Kvs, typename Tensors>
void Emit(const Kvs& kvs, const Tensors& tensors, uint32_t alignment, Sink& sink) {
  // Zero would divide by zero below; such a file is only ever a test's
  // deliberate corruption, so treat it as unaligned rather than fail.
  const uint64_t align = alignment == 0 ? 1 : alignment;
  bool has_alignment_key = false;
  for (const auto& kv : kvs) has_alignment_key |= kv.key == kAlignmentKey;
  const bool add_alignment_key = alignment != kDefaultAlignment && !has_alignment_key;

  std::vector<uint8_t> head;
  head.insert(head.end(), {'G', 'G', 'U', 'F'});
  PutLE<uint32_t>(&head, kVersion);
  PutLE<uint64_t>(&head, tensors.size());
  PutLE<uint64_t>(&head, kvs.size() + (add_alignment_key ? 1 : 0));
  if (add_alignment_key) {
    PutString(&head, kAlignmentKey);
    PutLE<uint32_t>(&head, static_cast<uint32_t>(GgufType::kUint32));
    PutLE<uint32_t>(&head, alignment);
  }
  for (const auto& kv : kvs) {
    PutString(&head, kv.key);
    head.insert(head.end(), kv.encoded.begin(), kv.encoded.end());
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    PutString(&head, t.name);
    PutLE<uint32_t>(&head, static_cast<uint32_t>(t.ne.size()));
    for (int64_t ne : t.ne) PutLE<int64_t>(&head, ne);
    PutLE<uint32_t>(&head, static_cast<uint32_t>(t.type));
    PutLE<uint64_t>(&head, offset);
    offset += t.data.size() + PadTo(t.data.size(), align);
  }
  sink.Put(head);
  sink.Zeros(PadTo(head.size(), align));
  for (const auto& t : tensors) {
    sink.Put(t.data);
    sink.Zeros(PadTo(t.data.size(), align));
  }
}

// Bytes a tensor of this type and shape must have, or an error naming why the
// shape is impossible.
absl::StatusOr<uint64_t> ExpectedBytes(absl::string_view name, DType type,
                                       const std::vector<int64_t>& ne) {
  if (ne.size() > 4) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': more than 4 dims"));
  }
  int64_t rows = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': ne[", d, "] = ", ne[d]));
    }
    if (d > 0 && __builtin_mul_overflow(rows, ne[d], &rows)) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': size overflows"));
    }
  }
  const int64_t cols = ne.empty() ? 1 : ne[0];
  const std::optional<uint64_t> row = RowBytes(type, cols);
  uint64_t bytes;
  if (!row || __builtin_mul_overflow(*row, static_cast<uint64_t>(rows), &bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': ne[0] = ", cols,
                                                   " does not fit type ", Sv(DTypeName(type))));
  }
  return bytes;
}

}  // namespace

void GgufWriter::AddRaw(std::string_view key, GgufType type, const void* v, size_t n) {
  Kv kv;
  kv.key = std::string(key);
  PutLE<uint32_t>(&kv.encoded, static_cast<uint32_t>(type));
  const uint8_t* b = static_cast<const uint8_t*>(v);
  kv.encoded.insert(kv.encoded.end(), b, b + n);
  // Setting a key again replaces its value in place, as gguf_set_* does in
  // llama.cpp; a file with a duplicate key would not load.
  for (Kv& old : kvs_) {
    if (old.key == key) {
      old = std::move(kv);
      return;
    }
  }
  kvs_.push_back(std::move(kv));
}

namespace {
template <typename T>
std::vector<uint8_t> LE(T v) {
  std::vector<uint8_t> out;
  PutLE(&out, v);
  return out;
}
}  // namespace

#define YUAN_GGUF_ADD_SCALAR(Method, CType, Type)          \
  void GgufWriter::Method(std::string_view key, CType v) { \
    const std::vector<uint8_t> b = LE(v);                  \
    AddRaw(key, Type, b.data(), b.size());                 \
  }
YUAN_GGUF_ADD_SCALAR(AddUint8, uint8_t, GgufType::kUint8)
YUAN_GGUF_ADD_SCALAR(AddInt8, int8_t, GgufType::kInt8)
YUAN_GGUF_ADD_SCALAR(AddUint16, uint16_t, GgufType::kUint16)
YUAN_GGUF_ADD_SCALAR(AddInt16, int16_t, GgufType::kInt16)
YUAN_GGUF_ADD_SCALAR(AddUint32, uint32_t, GgufType::kUint32)
YUAN_GGUF_ADD_SCALAR(AddInt32, int32_t, GgufType::kInt32)
YUAN_GGUF_ADD_SCALAR(AddUint64, uint64_t, GgufType::kUint64)
YUAN_GGUF_ADD_SCALAR(AddInt64, int64_t, GgufType::kInt64)
YUAN_GGUF_ADD_SCALAR(AddFloat32, float, GgufType::kFloat32)
YUAN_GGUF_ADD_SCALAR(AddFloat64, double, GgufType::kFloat64)
#undef YUAN_GGUF_ADD_SCALAR

void GgufWriter::AddBool(std::string_view key, bool v) {
  const uint8_t b = v ? 1 : 0;
  AddRaw(key, GgufType::kBool, &b, 1);
}

void GgufWriter::AddString(std::string_view key, std::string_view v) {
  std::vector<uint8_t> b;
  PutString(&b, v);
  AddRaw(key, GgufType::kString, b.data(), b.size());
}

void GgufWriter::AddStringArray(std::string_view key, const std::vector<std::string>& v) {
  std::vector<uint8_t> b;
  PutLE<uint32_t>(&b, static_cast<uint32_t>(GgufType::kString));
  PutLE<uint64_t>(&b, v.size());
  for (const std::string& s : v) PutString(&b, s);
  AddRaw(key, GgufType::kArray, b.data(), b.size());
}

void GgufWriter::AddFloat32Array(std::string_view key, const std::vector<float>& v) {
  std::vector<uint8_t> b;
  PutLE<uint32_t>(&b, static_cast<uint32_t>(GgufType::kFloat32));
  PutLE<uint64_t>(&b, v.size());
  for (float x : v) PutLE(&b, x);
  AddRaw(key, GgufType::kArray, b.data(), b.size());
}

void GgufWriter::AddInt32Array(std::string_view key, const std::vector<int32_t>& v) {
  std::vector<uint8_t> b;
  PutLE<uint32_t>(&b, static_cast<uint32_t>(GgufType::kInt32));
  PutLE<uint64_t>(&b, v.size());
  for (int32_t x : v) PutLE(&b, x);
  AddRaw(key, GgufType::kArray, b.data(), b.size());
}

void GgufWriter::AddTensor(std::string_view name, DType type, std::vector<int64_t> ne,
                           const void* data, size_t n_bytes) {
  Tensor t{std::string(name), type, std::move(ne), {}};
  const uint8_t* b = static_cast<const uint8_t*>(data);
  if (n_bytes > 0) t.data.assign(b, b + n_bytes);
  for (Tensor& old : tensors_) {  // replace, like AddRaw
    if (old.name == name) {
      old = std::move(t);
      return;
    }
  }
  tensors_.push_back(std::move(t));
}

void GgufWriter::AddTensorF32(std::string_view name, DType type, std::vector<int64_t> ne,
                              const float* values) {
  absl::StatusOr<uint64_t> bytes = ExpectedBytes(Sv(name), type, ne);
  if (!bytes.ok()) {
    // The writer has no error channel per call; an impossible shape is added
    // without data, and WriteFile reports it.
    AddTensor(name, type, std::move(ne), nullptr, 0);
    return;
  }
  const int64_t cols = ne.empty() ? 1 : ne[0];
  const uint64_t row_bytes = *RowBytes(type, cols);
  const uint64_t rows = row_bytes == 0 ? 0 : *bytes / row_bytes;
  std::vector<uint8_t> data(*bytes);
  for (uint64_t r = 0; r < rows; ++r) {
    QuantizeRow(type, values + r * cols, data.data() + r * row_bytes, cols);
  }
  AddTensor(name, type, std::move(ne), data.data(), data.size());
}

std::vector<uint8_t> GgufWriter::Serialize() const {
  std::vector<uint8_t> out;
  Sink sink(&out);
  Emit(kvs_, tensors_, alignment_, sink);
  return out;
}

absl::Status GgufWriter::WriteFile(const std::string& path) const {
  // Serialize() writes whatever was added (tests use that to build broken
  // files); a file on disk must be loadable, so check shapes and sizes first.
  for (const Tensor& t : tensors_) {
    YUAN_ASSIGN_OR_RETURN(uint64_t expected, ExpectedBytes(t.name, t.type, t.ne));
    if (expected != t.data.size()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "' has ", t.data.size(),
                                                     " bytes, its shape and type ",
                                                     Sv(DTypeName(t.type)), " need ", expected));
    }
  }
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("GGUF alignment ", alignment_, " is not a power of two"));
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot create '", path, "': ", std::strerror(errno)));
  }
  Sink sink(f);
  Emit(kvs_, tensors_, alignment_, sink);
  const bool closed = std::fclose(f) == 0;
  if (!sink.ok() || !closed) {
    return absl::UnavailableError(
        absl::StrCat("cannot write '", path, "': ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace yuan

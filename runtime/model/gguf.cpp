#include "runtime/model/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "runtime/core/status.h"

namespace yuan {
namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kDefaultAlignment = 32;
constexpr std::string_view kAlignmentKey = "general.alignment";
constexpr uint32_t kMaxDims = 4;
// The spec allows arrays of arrays without a limit; each level costs a stack
// frame and a GgufValue, so hostile nesting is cut off here.
constexpr int kMaxArrayDepth = 4;

// Smallest possible encodings. A count larger than the remaining bytes divided
// by these cannot be real, and is rejected before any loop or allocation.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // key length, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // name length, n_dims, type, offset
constexpr uint64_t kMinStringBytes = 8;                  // length
constexpr uint64_t kMinArrayBytes = 4 + 8;               // element type, count

bool IsValidType(uint32_t raw) { return raw <= static_cast<uint32_t>(GgufType::kFloat64); }

// Bytes of one scalar value; 0 for strings and arrays.
size_t ScalarSize(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
      return 8;
    case GgufType::kString:
    case GgufType::kArray:
      return 0;
  }
  return 0;
}

bool IsSigned(GgufType type) {
  return type == GgufType::kInt8 || type == GgufType::kInt16 || type == GgufType::kInt32 ||
         type == GgufType::kInt64;
}

bool IsUnsigned(GgufType type) {
  return type == GgufType::kUint8 || type == GgufType::kUint16 || type == GgufType::kUint32 ||
         type == GgufType::kUint64;
}

// Little-endian load of n <= 8 bytes (GGUF v2/v3 as we accept them are LE).
uint64_t LoadLE(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// Decodes one scalar at `p` into the widened fields of `out`.
void DecodeScalar(GgufType type, const uint8_t* p, GgufValue* out) {
  const size_t n = ScalarSize(type);
  const uint64_t bits = LoadLE(p, n);
  out->type = type;
  if (type == GgufType::kFloat32) {
    float f;
    const uint32_t b32 = static_cast<uint32_t>(bits);
    std::memcpy(&f, &b32, sizeof f);
    out->f = f;
  } else if (type == GgufType::kFloat64) {
    std::memcpy(&out->f, &bits, sizeof out->f);
  } else if (type == GgufType::kBool) {
    out->u = bits != 0;
    out->i = static_cast<int64_t>(out->u);
  } else if (IsSigned(type)) {
    const int shift = static_cast<int>(64 - 8 * n);
    out->i = static_cast<int64_t>(bits << shift) >> shift;  // sign-extend
    out->u = static_cast<uint64_t>(out->i);
    out->f = static_cast<double>(out->i);
  } else {
    out->u = bits;
    out->i = static_cast<int64_t>(bits);  // GetInt checks the range before using it
    out->f = static_cast<double>(bits);
  }
}

// A key or name from the file, made safe for an error message.
std::string Printable(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  if (s.size() > kMax) out += "...";
  return out;
}

std::string TypeDesc(const GgufValue& v) {
  if (v.type != GgufType::kArray) return std::string(GgufTypeName(v.type));
  return absl::StrCat(Sv(GgufTypeName(v.elem_type)), "[", v.array_size, "]");
}

uint64_t AlignUp(uint64_t x, uint64_t alignment) {
  const uint64_t rem = x % alignment;
  return rem == 0 ? x : x + (alignment - rem);
}

// Bounds-checked sequential reads over the file. Every read names what it was
// reading, so a truncation error says where the file ends unexpectedly.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  absl::Status Need(uint64_t n, absl::string_view what) const {
    if (n <= remaining()) return absl::OkStatus();
    return FormatError(absl::StrCat("truncated file: ", what, " needs ", n, " bytes at offset ",
                                    pos_, " but only ", remaining(), " remain"));
  }

  absl::Status ReadU32(uint32_t* out, absl::string_view what) {
    YUAN_RETURN_IF_ERROR(Need(4, what));
    *out = static_cast<uint32_t>(LoadLE(data_ + pos_, 4));
    pos_ += 4;
    return absl::OkStatus();
  }

  absl::Status ReadU64(uint64_t* out, absl::string_view what) {
    YUAN_RETURN_IF_ERROR(Need(8, what));
    *out = LoadLE(data_ + pos_, 8);
    pos_ += 8;
    return absl::OkStatus();
  }

  absl::Status ReadString(std::string_view* out, absl::string_view what) {
    uint64_t len;
    YUAN_RETURN_IF_ERROR(ReadU64(&len, what));
    if (len > remaining()) {
      return FormatError(absl::StrCat(what, ": string length ", len, " at offset ", pos_ - 8,
                                      " is larger than the ", remaining(),
                                      " bytes left in the file"));
    }
    *out = std::string_view(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return absl::OkStatus();
  }

  // Returns a pointer to the next n bytes and moves past them; Need(n) first.
  const uint8_t* Take(uint64_t n) {
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

absl::Status ReadValue(Reader& r, GgufType type, int depth, const std::string& what,
                       GgufValue* out);

// Reads an array body (element type, count, elements). `depth` is 1 for a
// top-level array.
absl::Status ReadArray(Reader& r, int depth, const std::string& what, GgufValue* out) {
  if (depth > kMaxArrayDepth) {
    return FormatError(
        absl::StrCat(what, ": arrays nested deeper than ", kMaxArrayDepth, " levels"));
  }
  uint32_t raw_elem;
  YUAN_RETURN_IF_ERROR(r.ReadU32(&raw_elem, what));
  if (!IsValidType(raw_elem)) {
    return FormatError(absl::StrCat(what, ": invalid array element type id ", raw_elem));
  }
  const GgufType elem = static_cast<GgufType>(raw_elem);
  uint64_t count;
  YUAN_RETURN_IF_ERROR(r.ReadU64(&count, what));
  out->type = GgufType::kArray;
  out->elem_type = elem;
  out->array_size = count;

  if (const size_t size = ScalarSize(elem); size != 0) {
    uint64_t bytes;
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(size), &bytes) ||
        bytes > r.remaining()) {
      return FormatError(absl::StrCat(what, ": array length ", count, " of ",
                                      Sv(GgufTypeName(elem)), " is larger than the ", r.remaining(),
                                      " bytes left in the file could hold"));
    }
    out->array_data = r.Take(bytes);
    return absl::OkStatus();
  }
  const uint64_t min_elem = elem == GgufType::kString ? kMinStringBytes : kMinArrayBytes;
  if (count > r.remaining() / min_elem) {
    return FormatError(absl::StrCat(what, ": array length ", count, " of ", Sv(GgufTypeName(elem)),
                                    " is larger than the ", r.remaining(),
                                    " bytes left in the file could hold"));
  }
  // No reserve(count): memory grows only with elements that are really there.
  for (uint64_t i = 0; i < count; ++i) {
    absl::Status status;
    if (elem == GgufType::kString) {
      std::string_view s;
      status = r.ReadString(&s, what);
      out->strings.push_back(s);
    } else {
      GgufValue v;
      status = ReadArray(r, depth + 1, what, &v);
      out->nested.push_back(std::move(v));
    }
    // The element index is only formatted on error: vocabularies have 100k+ strings.
    if (!status.ok()) {
      return FormatError(absl::StrCat("array element ", i, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadValue(Reader& r, GgufType type, int depth, const std::string& what,
                       GgufValue* out) {
  out->type = type;
  if (type == GgufType::kString) return r.ReadString(&out->str, what);
  if (type == GgufType::kArray) return ReadArray(r, depth + 1, what, out);
  const size_t size = ScalarSize(type);
  YUAN_RETURN_IF_ERROR(r.Need(size, what));
  DecodeScalar(type, r.Take(size), out);
  return absl::OkStatus();
}

absl::Status CheckHeader(Reader& r, uint32_t* version) {
  YUAN_RETURN_IF_ERROR(r.Need(4, "magic"));
  const uint8_t* magic = r.Take(4);
  if (std::memcmp(magic, kMagic, 4) != 0) {
    std::string_view got(reinterpret_cast<const char*>(magic), 4);
    return FormatError(
        absl::StrCat("bad magic '", Printable(got), "' (expected 'GGUF'): not a GGUF file"));
  }
  YUAN_RETURN_IF_ERROR(r.ReadU32(version, "version"));
  const uint32_t swapped = __builtin_bswap32(*version);
  if (*version == 1) {
    return FormatError("GGUF version 1 is not supported (only v2 and v3); re-convert the model");
  }
  if (*version != 2 && *version != 3) {
    if (swapped >= 1 && swapped <= 3) {
      return FormatError(absl::StrCat("big-endian GGUF file (version ", swapped,
                                      ") is not supported; use a little-endian file"));
    }
    return FormatError(absl::StrCat("unsupported GGUF version ", *version, " (only v2 and v3)"));
  }
  return absl::OkStatus();
}

absl::Status CheckAlignment(const GgufValue& v, uint32_t* alignment) {
  if (v.type != GgufType::kUint32) {
    return FormatError(absl::StrCat("metadata key '", Sv(kAlignmentKey), "' has type ", TypeDesc(v),
                                    ", expected uint32"));
  }
  const uint64_t a = v.u;
  if (a == 0 || (a & (a - 1)) != 0) {
    return FormatError(
        absl::StrCat("metadata key '", Sv(kAlignmentKey), "' is ", a, ", not a power of two"));
  }
  *alignment = static_cast<uint32_t>(a);
  return absl::OkStatus();
}

// Reads one tensor info and checks everything that does not need the data
// section: dims, type, size and offset alignment.
absl::Status ReadTensorInfo(Reader& r, uint64_t index, uint32_t alignment, GgufTensor* t) {
  YUAN_RETURN_IF_ERROR(r.ReadString(&t->name, absl::StrCat("name of tensor #", index)));
  const std::string what = absl::StrCat("tensor '", Printable(t->name), "'");

  uint32_t n_dims;
  YUAN_RETURN_IF_ERROR(r.ReadU32(&n_dims, what));
  if (n_dims > kMaxDims) {
    return FormatError(absl::StrCat(what, ": n_dims ", n_dims, " is more than ", kMaxDims));
  }
  t->n_dims = static_cast<int>(n_dims);
  int64_t n_elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    uint64_t raw;
    YUAN_RETURN_IF_ERROR(r.ReadU64(&raw, what));
    const int64_t ne = static_cast<int64_t>(raw);
    if (ne <= 0) {
      return FormatError(absl::StrCat(what, ": dimension ne[", d, "] = ", ne, " is not positive"));
    }
    if (__builtin_mul_overflow(n_elements, ne, &n_elements)) {
      return FormatError(
          absl::StrCat(what, ": element count overflows (dimension ne[", d, "] = ", ne, ")"));
    }
    t->ne[d] = ne;
  }

  uint32_t type_id;
  YUAN_RETURN_IF_ERROR(r.ReadU32(&type_id, what));
  const std::optional<DTypeInfo> info = GetDTypeInfo(type_id);
  if (!info) return FormatError(absl::StrCat(what, ": unknown tensor type id ", type_id));
  t->type = static_cast<DType>(type_id);
  if (t->ne[0] % info->block_size != 0) {
    return FormatError(absl::StrCat(what, ": ne[0] = ", t->ne[0],
                                    " is not a multiple of the block size ", info->block_size,
                                    " of type ", Sv(info->name)));
  }
  const std::optional<uint64_t> row = RowBytes(t->type, t->ne[0]);
  const uint64_t rows = static_cast<uint64_t>(n_elements / t->ne[0]);
  if (!row || __builtin_mul_overflow(*row, rows, &t->n_bytes)) {
    return FormatError(absl::StrCat(what, ": byte size overflows"));
  }

  YUAN_RETURN_IF_ERROR(r.ReadU64(&t->offset, what));
  if (t->offset % alignment != 0) {
    return FormatError(absl::StrCat(what, ": offset ", t->offset,
                                    " is not a multiple of the alignment ", alignment));
  }
  return absl::OkStatus();
}

// Tensors must not share bytes; a file where they do is corrupt (or crafted).
absl::Status CheckNoOverlap(const std::vector<GgufTensor>& tensors) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const GgufTensor& prev = tensors[order[i - 1]];
    const GgufTensor& cur = tensors[order[i]];
    if (prev.offset + prev.n_bytes > cur.offset) {  // no overflow: both checked against the file
      return FormatError(absl::StrCat("tensors '", Printable(prev.name), "' and '",
                                      Printable(cur.name), "' overlap in the data section"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view GgufTypeName(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
      return "uint8";
    case GgufType::kInt8:
      return "int8";
    case GgufType::kUint16:
      return "uint16";
    case GgufType::kInt16:
      return "int16";
    case GgufType::kUint32:
      return "uint32";
    case GgufType::kInt32:
      return "int32";
    case GgufType::kFloat32:
      return "float32";
    case GgufType::kBool:
      return "bool";
    case GgufType::kString:
      return "string";
    case GgufType::kArray:
      return "array";
    case GgufType::kUint64:
      return "uint64";
    case GgufType::kInt64:
      return "int64";
    case GgufType::kFloat64:
      return "float64";
  }
  return "invalid";
}

bool GgufValue::is_integer() const { return IsSigned(type) || IsUnsigned(type); }

int64_t GgufValue::ArrayInt(uint64_t idx) const {
  const size_t size = ScalarSize(elem_type);
  if (type != GgufType::kArray || array_data == nullptr || size == 0 || idx >= array_size) {
    return 0;
  }
  GgufValue v;
  DecodeScalar(elem_type, array_data + idx * size, &v);
  if (v.is_float()) {
    // Casting an out-of-range double to an integer is undefined; clamp.
    if (!(v.f > -9.2e18 && v.f < 9.2e18)) return 0;
    return static_cast<int64_t>(v.f);
  }
  return v.i;
}

double GgufValue::ArrayFloat(uint64_t idx) const {
  const size_t size = ScalarSize(elem_type);
  if (type != GgufType::kArray || array_data == nullptr || size == 0 || idx >= array_size) {
    return 0.0;
  }
  GgufValue v;
  DecodeScalar(elem_type, array_data + idx * size, &v);
  if (v.is_float()) return v.f;
  if (IsUnsigned(elem_type)) return static_cast<double>(v.u);
  return static_cast<double>(v.i);
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  YUAN_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
  return Parse(std::move(file));
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBuffer(const void* data, size_t size) {
  static const uint8_t kEmpty[1] = {0};
  // Arithmetic on a null pointer is undefined even with offset 0.
  if (data == nullptr) {
    data = kEmpty;
    size = 0;
  }
  return Parse(MappedFile::Borrow(data, size));
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Parse(std::unique_ptr<MappedFile> file) {
  std::unique_ptr<GgufFile> gguf(new GgufFile());
  gguf->file_ = std::move(file);
  absl::Status status = gguf->ParseAll();
  if (!status.ok()) {
    // Every reader error is a format error; add which file it is about.
    return FormatError(absl::StrCat("GGUF '", gguf->file_->path(), "': ", status.message()));
  }
  return gguf;
}

absl::Status GgufFile::ParseAll() {
  Reader r(file_->data(), file_->size());
  YUAN_RETURN_IF_ERROR(CheckHeader(r, &version_));
  uint64_t n_tensors, n_kv;
  YUAN_RETURN_IF_ERROR(r.ReadU64(&n_tensors, "n_tensors"));
  YUAN_RETURN_IF_ERROR(r.ReadU64(&n_kv, "n_kv"));
  if (n_kv > r.remaining() / kMinKvBytes) {
    return FormatError(absl::StrCat("n_kv ", n_kv, " is larger than the remaining ", r.remaining(),
                                    " bytes could hold"));
  }
  if (n_tensors > r.remaining() / kMinTensorInfoBytes) {
    return FormatError(absl::StrCat("n_tensors ", n_tensors, " is larger than the remaining ",
                                    r.remaining(), " bytes could hold"));
  }

  for (uint64_t i = 0; i < n_kv; ++i) {
    GgufKv kv;
    YUAN_RETURN_IF_ERROR(r.ReadString(&kv.key, absl::StrCat("key of metadata entry #", i)));
    const std::string what = absl::StrCat("metadata key '", Printable(kv.key), "'");
    if (kv.key.empty()) {
      return FormatError(absl::StrCat("metadata entry #", i, " has an empty key"));
    }
    uint32_t raw_type;
    YUAN_RETURN_IF_ERROR(r.ReadU32(&raw_type, what));
    if (!IsValidType(raw_type)) {
      return FormatError(absl::StrCat(what, ": invalid value type id ", raw_type));
    }
    YUAN_RETURN_IF_ERROR(ReadValue(r, static_cast<GgufType>(raw_type), 0, what, &kv.value));
    if (!kv_index_.emplace(kv.key, kvs_.size()).second) {
      return FormatError(absl::StrCat("duplicate metadata key '", Printable(kv.key), "'"));
    }
    kvs_.push_back(std::move(kv));
  }

  alignment_ = kDefaultAlignment;
  if (const GgufValue* a = Find(kAlignmentKey); a != nullptr) {
    YUAN_RETURN_IF_ERROR(CheckAlignment(*a, &alignment_));
  }

  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    YUAN_RETURN_IF_ERROR(ReadTensorInfo(r, i, alignment_, &t));
    if (!tensor_index_.emplace(t.name, tensors_.size()).second) {
      return FormatError(absl::StrCat("duplicate tensor name '", Printable(t.name), "'"));
    }
    tensors_.push_back(t);
  }

  // The data section starts at the next multiple of the alignment. A file
  // without tensors may end before it: there is nothing to pad for.
  data_offset_ = AlignUp(r.pos(), alignment_);
  const uint64_t size = file_->size();
  const uint64_t data_size = data_offset_ <= size ? size - data_offset_ : 0;
  for (GgufTensor& t : tensors_) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      return FormatError(absl::StrCat(
          "tensor '", Printable(t.name), "': data at offset ", t.offset, " with ", t.n_bytes,
          " bytes extends past the end of the file (data section is ", data_size, " bytes)"));
    }
    t.data = file_->data() + data_offset_ + t.offset;
  }
  return CheckNoOverlap(tensors_);
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromParts(GgufParts parts) {
  std::unique_ptr<GgufFile> gguf(new GgufFile());
  gguf->file_ = MappedFile::Borrow(nullptr, 0, parts.path);
  gguf->keep_alive_ = std::move(parts.keep_alive);
  gguf->version_ = 3;
  gguf->kvs_ = std::move(parts.kvs);
  gguf->tensors_ = std::move(parts.tensors);
  for (size_t i = 0; i < gguf->kvs_.size(); ++i) {
    if (!gguf->kv_index_.emplace(gguf->kvs_[i].key, i).second) {
      return FormatError(absl::StrCat("'", parts.path, "': duplicate metadata key '",
                                      Printable(gguf->kvs_[i].key), "'"));
    }
  }
  for (size_t i = 0; i < gguf->tensors_.size(); ++i) {
    const GgufTensor& t = gguf->tensors_[i];
    if (!gguf->tensor_index_.emplace(t.name, i).second) {
      return FormatError(absl::StrCat("'", parts.path, "': duplicate tensor name '",
                                      Printable(t.name), "'"));
    }
    const std::optional<uint64_t> row = RowBytes(t.type, t.ne[0]);
    uint64_t rows = 1;
    for (int d = 1; d < 4; ++d) rows *= static_cast<uint64_t>(t.ne[d]);
    if (!row || t.data == nullptr || *row * rows != t.n_bytes) {
      return FormatError(absl::StrCat("'", parts.path, "': tensor '", Printable(t.name),
                                      "' has inconsistent shape, type and size"));
    }
  }
  return gguf;
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const GgufTensor* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

absl::Status NotFound(std::string_view key) {
  return absl::NotFoundError(absl::StrCat("metadata key '", Sv(key), "' not found"));
}

absl::Status WrongType(std::string_view key, const GgufValue& v, std::string_view expected) {
  return FormatError(absl::StrCat("metadata key '", Sv(key), "' has type ", TypeDesc(v),
                                  ", expected ", Sv(expected)));
}

}  // namespace

absl::StatusOr<std::string_view> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(key);
  if (v->type != GgufType::kString) return WrongType(key, *v, "string");
  return v->str;
}

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(key);
  if (!v->is_integer()) return WrongType(key, *v, "an integer");
  if (IsUnsigned(v->type) && v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return FormatError(
        absl::StrCat("metadata key '", Sv(key), "' value ", v->u, " does not fit in int64"));
  }
  return v->i;
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(key);
  if (!v->is_float() && !v->is_integer()) return WrongType(key, *v, "a number");
  return v->f;
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(key);
  if (v->type != GgufType::kBool) return WrongType(key, *v, "bool");
  return v->u != 0;
}

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key, int64_t fallback) const {
  if (Find(key) == nullptr) return fallback;
  return GetInt(key);
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key, double fallback) const {
  if (Find(key) == nullptr) return fallback;
  return GetFloat(key);
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key, bool fallback) const {
  if (Find(key) == nullptr) return fallback;
  return GetBool(key);
}

absl::StatusOr<std::string_view> GgufFile::GetString(std::string_view key,
                                                     std::string_view fallback) const {
  if (Find(key) == nullptr) return fallback;
  return GetString(key);
}

}  // namespace yuan

#include "runtime/model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

#include "absl/container/flat_hash_set.h"
#include "runtime/core/status.h"
#include "runtime/model/safetensors_internal.h"

namespace yuan {
namespace internal {

// Names and other header strings in messages: printable ASCII, the rest as
// \xNN, cut at 80 bytes.
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

std::string JsonTypeName(const nlohmann::json& j) {
  if (j.is_number_unsigned()) return "unsigned integer";
  if (j.is_number_integer()) return "negative integer";
  if (j.is_number_float()) return "float";
  return j.type_name();  // never throws
}

// Parses JSON text without exceptions. Duplicate keys in any object are an
// error (nlohmann would silently keep one of them); the first is reported.
bool ParseJsonNoThrow(const char* first, const char* last, nlohmann::json* out,
                      std::string* error) {
  using Json = nlohmann::json;
  std::vector<absl::flat_hash_set<std::string>> open_objects;
  std::string duplicate;
  bool has_duplicate = false;
  auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get_ref<const std::string&>()).second &&
            !has_duplicate) {
          has_duplicate = true;
          duplicate = parsed.get_ref<const std::string&>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  try {
    *out = Json::parse(first, last, callback, /*allow_exceptions=*/false);
  } catch (const std::bad_alloc&) {
    *error = "out of memory while parsing JSON";
    return false;
  } catch (...) {
    *error = "invalid JSON";
    return false;
  }
  if (out->is_discarded()) {
    *error = "invalid JSON";
    return false;
  }
  if (has_duplicate) {
    *error = absl::StrCat("duplicate key '", Printable(duplicate), "'");
    return false;
  }
  return true;
}

}  // namespace internal

namespace {

using Json = nlohmann::json;
using internal::JsonTypeName;
using internal::ParseJsonNoThrow;
using internal::Printable;

constexpr SafetensorsDTypeInfo kDTypes[] = {
    {"F32", 4, DType::kF32},      {"F16", 2, DType::kF16},      {"BF16", 2, DType::kBF16},
    {"F64", 8, DType::kF64},      {"I8", 1, DType::kI8},        {"I16", 2, DType::kI16},
    {"I32", 4, DType::kI32},      {"I64", 8, DType::kI64},      {"U8", 1, std::nullopt},
    {"U16", 2, std::nullopt},     {"U32", 4, std::nullopt},     {"U64", 8, std::nullopt},
    {"BOOL", 1, std::nullopt},    {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt},
    {"F8_E8M0", 1, std::nullopt},
};

}  // namespace

std::optional<SafetensorsDTypeInfo> GetSafetensorsDType(std::string_view name) {
  for (const SafetensorsDTypeInfo& info : kDTypes) {
    if (info.name == name) return info;
  }
  return std::nullopt;
}

std::string_view SafetensorsDTypeName(DType type) {
  for (const SafetensorsDTypeInfo& info : kDTypes) {
    if (info.type == type) return info.name;
  }
  return {};
}

int64_t SafetensorsTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // checked against overflow when parsed
  return n;
}

void SafetensorsTensor::GgmlNe(int64_t ne[4]) const {
  for (int i = 0; i < 4; ++i) ne[i] = 1;
  const size_t n = std::min(shape.size(), size_t{4});
  for (size_t i = 0; i < n; ++i) ne[i] = shape[shape.size() - 1 - i];
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
  if (!file.ok()) {
    // An empty file (or a directory in its place) is malformed input.
    if (absl::IsInvalidArgument(file.status())) {
      return FormatError(absl::StrCat("safetensors '", path, "': ", file.status().message()));
    }
    return file.status();
  }
  return Parse(*std::move(file));
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBuffer(const void* data,
                                                                             size_t size,
                                                                             std::string path) {
  return Parse(MappedFile::Borrow(data, size, std::move(path)));
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Parse(
    std::unique_ptr<MappedFile> file) {
  std::unique_ptr<SafetensorsFile> st(new SafetensorsFile());
  st->file_ = std::move(file);
  absl::Status status = st->ParseAll();
  if (!status.ok()) {
    return FormatError(absl::StrCat("safetensors '", st->path(), "': ", status.message()));
  }
  return st;
}

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

// Errors here are bare messages; Parse() prefixes the path and makes them
// FormatErrors.
absl::Status SafetensorsFile::ParseAll() {
  const uint8_t* bytes = file_->data();
  const uint64_t size = file_->size();
  if (size < 8) {
    return absl::InvalidArgumentError(absl::StrCat(
        "file of ", size, " bytes is too small for the 8-byte header length"));
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > kSafetensorsMaxHeader) {
    return absl::InvalidArgumentError(
        absl::StrCat("header length ", n, " is absurd (limit ", kSafetensorsMaxHeader, ")"));
  }
  if (n > size - 8) {
    return absl::InvalidArgumentError(absl::StrCat("header length ", n,
                                                   " runs past the end of the file (",
                                                   size - 8, " bytes follow it)"));
  }
  if (n < 2 || bytes[8] != '{') {
    return absl::InvalidArgumentError(
        "header does not start with '{': not a safetensors file");
  }
  header_size_ = n;
  const char* first = reinterpret_cast<const char*>(bytes + 8);
  Json header;
  std::string error;
  if (!ParseJsonNoThrow(first, first + n, &header, &error)) {
    return absl::InvalidArgumentError(absl::StrCat("header: ", error));
  }
  if (!header.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("header is a JSON ", JsonTypeName(header), ", expected an object"));
  }

  const uint64_t data_size = size - 8 - n;
  const uint8_t* data = bytes + 8 + n;
  std::vector<SafetensorsTensor> tensors;
  for (auto it = header.cbegin(); it != header.cend(); ++it) {
    const std::string& name = it.key();
    const Json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "__metadata__ is a JSON ", JsonTypeName(entry), ", expected an object"));
      }
      for (auto m = entry.cbegin(); m != entry.cend(); ++m) {
        if (!m.value().is_string()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "__metadata__ value '", Printable(m.key()), "' is a JSON ",
              JsonTypeName(m.value()), ", expected a string"));
        }
        metadata_.emplace_back(m.key(), m.value().get_ref<const std::string&>());
      }
      continue;
    }
    const std::string where = absl::StrCat("tensor '", Printable(name), "'");
    if (!entry.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " is a JSON ", JsonTypeName(entry), ", expected an object"));
    }
    SafetensorsTensor t;
    t.name = name;

    auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, " has no string 'dtype'"));
    }
    t.dtype = dtype_it->get_ref<const std::string&>();
    const std::optional<SafetensorsDTypeInfo> info = GetSafetensorsDType(t.dtype);
    if (!info) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " has unknown dtype '", Printable(t.dtype), "'"));
    }
    t.elem_size = info->size;
    t.type = info->type;

    auto shape_it = entry.find("shape");
    if (shape_it == entry.end() || !shape_it->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(where, " has no array 'shape'"));
    }
    if (shape_it->size() > static_cast<size_t>(kSafetensorsMaxDims)) {
      return absl::InvalidArgumentError(absl::StrCat(where, " has ", shape_it->size(),
                                                     " dimensions (at most ",
                                                     kSafetensorsMaxDims, " supported)"));
    }
    uint64_t n_elements = 1;
    for (size_t d = 0; d < shape_it->size(); ++d) {
      const Json& dim = (*shape_it)[d];
      if (!dim.is_number_unsigned()) {
        return absl::InvalidArgumentError(absl::StrCat(where, " shape[", d, "] is a ",
                                                       JsonTypeName(dim),
                                                       ", expected an unsigned integer"));
      }
      const uint64_t v = dim.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(n_elements, v, &n_elements) ||
          n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, " shape overflows 64 bits at dimension ", d));
      }
      t.shape.push_back(static_cast<int64_t>(v));
    }
    uint64_t expected_bytes = 0;
    if (__builtin_mul_overflow(n_elements, static_cast<uint64_t>(t.elem_size), &expected_bytes)) {
      return absl::InvalidArgumentError(absl::StrCat(where, " byte size overflows 64 bits"));
    }

    auto offsets_it = entry.find("data_offsets");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " needs 'data_offsets': [begin, end] of unsigned integers"));
    }
    t.begin = (*offsets_it)[0].get<uint64_t>();
    t.end = (*offsets_it)[1].get<uint64_t>();
    if (t.begin > t.end) {
      return absl::InvalidArgumentError(absl::StrCat(where, " data_offsets [", t.begin, ", ",
                                                     t.end, "] end before they begin"));
    }
    if (t.end > data_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " data_offsets [", t.begin, ", ", t.end,
                       "] run past the end of the data section (", data_size, " bytes)"));
    }
    if (t.end - t.begin != expected_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " data_offsets [", t.begin, ", ", t.end, "] hold ", t.end - t.begin,
          " bytes but dtype ", t.dtype, " x shape needs ", expected_bytes));
    }
    t.data = data + t.begin;
    tensors.push_back(std::move(t));
  }

  std::sort(tensors.begin(), tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.name < b.name;
            });
  // No two tensors may share bytes (empty tensors share nothing).
  const SafetensorsTensor* last = nullptr;
  for (const SafetensorsTensor& t : tensors) {
    if (t.n_bytes() == 0) continue;
    if (last != nullptr && t.begin < last->end) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensors '", Printable(last->name), "' [", last->begin, ", ", last->end,
                       ") and '", Printable(t.name), "' [", t.begin, ", ", t.end, ") overlap"));
    }
    last = &t;
  }
  tensors_ = std::move(tensors);
  index_.reserve(tensors_.size());
  // Names are unique: the JSON parser rejects duplicate keys.
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  return absl::OkStatus();
}

}  // namespace yuan

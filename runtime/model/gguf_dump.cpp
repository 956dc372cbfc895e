#include "runtime/model/gguf_dump.h"

#include "runtime/core/status.h"

#include <algorithm>
#include <charconv>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace yuan {
namespace {

constexpr size_t kMaxStringBytes = 64;   // of a string value before it is cut
constexpr size_t kMaxElementBytes = 24;  // of each string shown inside an array
constexpr int kMaxArrayElements = 8;     // shown per key, over all nesting levels
constexpr size_t kMaxNameWidth = 48;     // tensor name column

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one.
size_t Utf8Len(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// `s` escaped so that one value stays on one line and a terminal shows it
// safely: quotes, backslashes, control bytes and invalid UTF-8 are escaped,
// valid UTF-8 (Chinese tokens, emoji) is kept. Stops after about `max` bytes
// of `s` and sets *cut when it did.
std::string Escape(std::string_view s, size_t max, bool* cut = nullptr) {
  std::string out;
  size_t i = 0;
  while (i < s.size() && i < max) {
    const size_t n = Utf8Len(s, i);
    if (n > 1) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    const char c = s[i++];
    const unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (n == 1 && u >= 0x20 && u != 0x7f) {
          out.push_back(c);
        } else {
          absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
        }
    }
  }
  if (cut != nullptr) *cut = i < s.size();
  return out;
}

// A quoted string; a cut one says its full length after the closing quote,
// so the note is not mistaken for content.
std::string Quoted(std::string_view s, size_t max) {
  bool cut;
  std::string out = absl::StrCat("\"", Escape(s, max, &cut), "\"");
  if (cut) absl::StrAppend(&out, "...(", s.size(), " bytes)");
  return out;
}

// Shortest text that reads back as the same value.
template <typename T>
std::string FormatFloat(T v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

std::string TypeLabel(const GgufValue& v) {
  if (v.type != GgufType::kArray) return std::string(GgufTypeName(v.type));
  return absl::StrCat(Sv(GgufTypeName(v.elem_type)), "[", v.array_size, "]");
}

std::string Scalar(const GgufValue& v) {
  switch (v.type) {
    case GgufType::kFloat32:
      return FormatFloat(static_cast<float>(v.f));
    case GgufType::kFloat64:
      return FormatFloat(v.f);
    case GgufType::kBool:
      return v.u ? "true" : "false";
    case GgufType::kUint8:
    case GgufType::kUint16:
    case GgufType::kUint32:
    case GgufType::kUint64:
      return absl::StrCat(v.u);
    default:
      return absl::StrCat(v.i);
  }
}

// `budget` is how many more elements may be printed for this key.
std::string ArrayText(const GgufValue& v, int& budget) {
  std::string out = "[";
  for (uint64_t i = 0; i < v.array_size; ++i) {
    if (i > 0) out += ", ";
    if (budget <= 0) {
      out += "...";
      break;
    }
    --budget;
    if (v.elem_type == GgufType::kString) {
      out += i < v.strings.size() ? Quoted(v.strings[i], kMaxElementBytes) : "?";
    } else if (v.elem_type == GgufType::kArray) {
      out += i < v.nested.size() ? ArrayText(v.nested[i], budget) : "?";
    } else if (v.elem_type == GgufType::kFloat32 || v.elem_type == GgufType::kFloat64) {
      const double f = v.ArrayFloat(i);
      out +=
          v.elem_type == GgufType::kFloat32 ? FormatFloat(static_cast<float>(f)) : FormatFloat(f);
    } else if (v.elem_type == GgufType::kBool) {
      out += v.ArrayInt(i) ? "true" : "false";
    } else if (v.elem_type == GgufType::kUint64) {
      out += absl::StrCat(static_cast<uint64_t>(v.ArrayInt(i)));  // same bits, unsigned
    } else {
      out += absl::StrCat(v.ArrayInt(i));
    }
  }
  return out + "]";
}

std::string ValueText(const GgufValue& v) {
  if (v.type == GgufType::kString) return Quoted(v.str, kMaxStringBytes);
  if (v.type == GgufType::kArray) {
    int budget = kMaxArrayElements;
    return ArrayText(v, budget);
  }
  return Scalar(v);
}

std::string Shape(const GgufTensor& t) {
  std::string out = "[";
  for (int d = 0; d < t.n_dims; ++d) absl::StrAppend(&out, d ? ", " : "", t.ne[d]);
  return out + "]";
}

// 1234567 -> "1.23 M" (parameters, decimal) or "1.18 MiB" (bytes, binary).
std::string Human(double x, double base, const char* const* units) {
  int u = 0;
  while (x >= base && units[u + 1] != nullptr) {
    x /= base;
    ++u;
  }
  if (u == 0) return absl::StrFormat("%.0f%s", x, units[u]);
  return absl::StrFormat("%.2f%s", x, units[u]);
}

}  // namespace

void DumpGguf(const GgufFile& file, std::ostream& out) {
  out << absl::StrFormat("GGUF v%u: %d tensors, %d metadata keys, alignment %u\n", file.version(),
                         file.tensors().size(), file.metadata().size(), file.alignment());
  out << absl::StrFormat("file size %d bytes, tensor data at offset %d\n", file.file_size(),
                         file.data_offset());

  out << "\nmetadata:\n";
  size_t type_width = 0;
  for (const GgufKv& kv : file.metadata()) {
    type_width = std::max(type_width, TypeLabel(kv.value).size());
  }
  for (const GgufKv& kv : file.metadata()) {
    out << absl::StrFormat("  %-*s %s = %s\n", type_width, TypeLabel(kv.value),
                           Escape(kv.key, kMaxStringBytes), ValueText(kv.value));
  }

  out << "\ntensors:\n";
  size_t name_width = 4, type_width_t = 4, shape_width = 5;
  for (const GgufTensor& t : file.tensors()) {
    name_width =
        std::max(name_width, std::min(Escape(t.name, kMaxNameWidth).size(), kMaxNameWidth));
    type_width_t = std::max(type_width_t, DTypeName(t.type).size());
    shape_width = std::max(shape_width, Shape(t).size());
  }
  out << absl::StrFormat("  %-*s  %-*s  %-*s  %12s  %12s\n", name_width, "name", type_width_t,
                         "type", shape_width, "shape", "offset", "bytes");
  uint64_t params = 0, bytes = 0;
  for (const GgufTensor& t : file.tensors()) {
    out << absl::StrFormat("  %-*s  %-*s  %-*s  %12d  %12d\n", name_width,
                           Escape(t.name, kMaxNameWidth), type_width_t, DTypeName(t.type),
                           shape_width, Shape(t), t.offset, t.n_bytes);
    params += static_cast<uint64_t>(t.n_elements());
    bytes += t.n_bytes;
  }
  static const char* const kCount[] = {"", " K", " M", " B", " T", nullptr};
  static const char* const kBytes[] = {" B", " KiB", " MiB", " GiB", " TiB", nullptr};
  out << absl::StrFormat("\ntotal: %d parameters (%s), %d bytes of tensor data (%s)\n", params,
                         Human(static_cast<double>(params), 1000.0, kCount), bytes,
                         Human(static_cast<double>(bytes), 1024.0, kBytes));
}

}  // namespace yuan

#include "runtime/chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "runtime/chat/jinja_text.h"
#include "runtime/core/status.h"

namespace yuan::jinja {

Value Value::Undefined(std::string hint) {
  Value v;
  v.s_ = std::move(hint);
  return v;
}
Value Value::None() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}
Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}
Value Value::Int(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}
Value Value::Float(double d) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.f_ = d;
  return v;
}
Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.s_ = std::move(s);
  return v;
}
namespace {
uint16_t ChildDepth(int deepest) { return static_cast<uint16_t>(std::min(deepest + 1, 60000)); }
}  // namespace

Value Value::FromList(List items) {
  Value v;
  v.kind_ = Kind::kList;
  int deepest = 0;
  for (const Value& item : items) deepest = std::max(deepest, item.depth());
  v.depth_ = ChildDepth(deepest);
  v.list_ = std::make_shared<const List>(std::move(items));
  return v;
}
Value Value::FromTuple(List items) {
  Value v = FromList(std::move(items));
  v.tuple_ = true;
  return v;
}
Value Value::FromDict(Dict dict) {
  Value v;
  v.kind_ = Kind::kDict;
  int deepest = 0;
  for (const auto& item : dict.items()) deepest = std::max(deepest, item.second.depth());
  v.depth_ = ChildDepth(deepest);
  v.dict_ = std::make_shared<Dict>(std::move(dict));
  return v;
}
Value Value::NewNamespace(Dict attrs) {
  Value v;
  v.kind_ = Kind::kNamespace;
  int deepest = 0;
  for (const auto& item : attrs.items()) deepest = std::max(deepest, item.second.depth());
  v.depth_ = ChildDepth(deepest);
  v.dict_ = std::make_shared<Dict>(std::move(attrs));
  return v;
}
Value Value::Function(std::string name, NativeFunction fn) {
  Value v;
  v.kind_ = Kind::kCallable;
  v.fn_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

double Value::as_double() const {
  switch (kind_) {
    case Kind::kFloat:
      return f_;
    case Kind::kInt:
      return static_cast<double>(i_);
    case Kind::kBool:
      return b_ ? 1.0 : 0.0;
    default:
      return 0.0;
  }
}

bool Value::Truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return b_;
    case Kind::kInt:
      return i_ != 0;
    case Kind::kFloat:
      return f_ != 0.0;
    case Kind::kString:
      return !s_.empty();
    case Kind::kList:
      return !list_->empty();
    case Kind::kDict:
      return !dict_->empty();
    case Kind::kNamespace:
    case Kind::kCallable:
      return true;
  }
  return false;
}

bool Value::Equals(const Value& other, int level) const {
  if (level > kMaxValueDepth) return false;
  if (is_number() && other.is_number()) {
    if (is_float() || other.is_float()) return as_double() == other.as_double();
    return as_int() == other.as_int();
  }
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return s_ == other.s_;
    case Kind::kList: {
      if (tuple_ != other.tuple_) return false;
      const List& a = *list_;
      const List& b = *other.list_;
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!a[i].Equals(b[i], level + 1)) return false;
      }
      return true;
    }
    case Kind::kDict: {
      if (dict_->size() != other.dict_->size()) return false;
      for (const auto& [k, v] : dict_->items()) {
        const Value* o = other.dict_->Find(k);
        if (o == nullptr || !v.Equals(*o, level + 1)) return false;
      }
      return true;
    }
    case Kind::kNamespace:
      return dict_ == other.dict_;
    case Kind::kCallable:
      return fn_ == other.fn_;
    default:
      return false;
  }
}

std::string Value::TypeName() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kNamespace:
      return "Namespace";
    case Kind::kCallable:
      return "function";
  }
  return "object";
}

const Value* Dict::Find(std::string_view key) const {
  for (const auto& item : items_) {
    if (item.first == key) return &item.second;
  }
  return nullptr;
}

void Dict::Set(std::string key, Value value) {
  for (auto& item : items_) {
    if (item.first == key) {
      item.second = std::move(value);
      return;
    }
  }
  items_.emplace_back(std::move(key), std::move(value));
}

std::string FloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  // Shortest round-trip digits in scientific form: "-d.ddde+XX".
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool negative = false;
  size_t pos = 0;
  if (sci[0] == '-') {
    negative = true;
    pos = 1;
  }
  size_t e_pos = sci.find('e');
  std::string digits;
  for (size_t i = pos; i < e_pos; ++i) {
    if (sci[i] != '.') digits.push_back(sci[i]);
  }
  int exp = std::atoi(sci.c_str() + e_pos + 1);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = negative ? "-" : "";
  if (exp >= -5 + 1 && exp < 16) {  // Python's repr: fixed for -4 <= exp < 16
    if (exp >= 0) {
      std::string int_part = digits.substr(0, std::min<size_t>(digits.size(), exp + 1));
      while (int_part.size() < static_cast<size_t>(exp + 1)) int_part.push_back('0');
      std::string frac =
          digits.size() > static_cast<size_t>(exp + 1) ? digits.substr(exp + 1) : "0";
      out += int_part + "." + frac;
    } else {
      out += "0." + std::string(-exp - 1, '0') + digits;
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char ebuf[16];
  std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return out + ebuf;
}

namespace {

// Code points Python's str.isprintable() rejects, so repr() escapes them:
// controls, separators other than ' ' (Zs/Zl/Zp), common format characters
// (Cf), surrogates and private use. Unassigned code points (Cn) are not
// tracked; see docs/chat-templates.md.
bool IsNonPrintable(uint32_t c) {
  if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return true;
  if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
      (c >= 0x205F && c <= 0x2064) || (c >= 0x2066 && c <= 0x206F) || c == 0x3000) {
    return true;
  }
  if ((c >= 0x600 && c <= 0x605) || c == 0x61C || c == 0x6DD || c == 0x70F || c == 0x8E2 ||
      c == 0x180E) {
    return true;
  }
  if (c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) || (c >= 0xD800 && c <= 0xF8FF)) return true;
  if (c == 0x110BD || c == 0x110CD || (c >= 0x1D173 && c <= 0x1D17A) || c == 0xE0001 ||
      (c >= 0xE0020 && c <= 0xE007F) || c >= 0xF0000) {
    return true;
  }
  return false;
}

std::string StrRepr(const std::string& s) {
  // Python: single quotes unless the text has ' and no ".
  char quote = '\'';
  if (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) quote = '"';
  std::string out(1, quote);
  for (uint32_t c : DecodeUtf8(s)) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == static_cast<uint32_t>(quote)) {
      out += '\\';
      out += quote;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (IsNonPrintable(c)) {
      char buf[16];
      if (c < 0x100) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      } else if (c < 0x10000) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      } else {
        std::snprintf(buf, sizeof(buf), "\\U%08x", c);
      }
      out += buf;
    } else {
      AppendUtf8(c, &out);
    }
  }
  out += quote;
  return out;
}

std::string ToStrAt(const Value& v, int level);

std::string ReprAt(const Value& v, int level) {
  if (v.is_string()) return StrRepr(v.str());
  if (v.is_undefined()) return "Undefined";  // repr(jinja2.Undefined())
  return ToStrAt(v, level);
}

std::string ToStrAt(const Value& v, int level) {
  if (level > kMaxValueDepth && (v.is_list() || v.is_dict() || v.is_namespace())) return "...";
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt:
      return std::to_string(v.as_int());
    case Value::Kind::kFloat:
      return FloatRepr(v.as_double());
    case Value::Kind::kString:
      return v.str();
    case Value::Kind::kList: {
      std::string out = v.is_tuple() ? "(" : "[";
      bool first = true;
      for (const Value& item : v.list()) {
        if (!first) out += ", ";
        first = false;
        out += ReprAt(item, level + 1);
      }
      if (v.is_tuple()) return out + (v.list().size() == 1 ? ",)" : ")");
      return out + "]";
    }
    case Value::Kind::kDict:
    case Value::Kind::kNamespace: {
      std::string out = v.is_namespace() ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, item] : v.dict().items()) {
        if (!first) out += ", ";
        first = false;
        out += StrRepr(k) + ": " + ReprAt(item, level + 1);
      }
      return out + (v.is_namespace() ? "}>" : "}");
    }
    case Value::Kind::kCallable:
      return "<function " + v.callable().name + ">";
  }
  return "";
}

}  // namespace

std::string Repr(const Value& v) { return ReprAt(v, 0); }
std::string ToStr(const Value& v) { return ToStrAt(v, 0); }

namespace {

void AppendJsonString(const std::string& s, bool ensure_ascii, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        *out += "\\\"";
        continue;
      case '\\':
        *out += "\\\\";
        continue;
      case '\n':
        *out += "\\n";
        continue;
      case '\r':
        *out += "\\r";
        continue;
      case '\t':
        *out += "\\t";
        continue;
      case '\b':
        *out += "\\b";
        continue;
      case '\f':
        *out += "\\f";
        continue;
      default:
        break;
    }
    char buf[16];
    if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      *out += buf;
    } else if (ensure_ascii && c >= 0x80) {
      // Decode one UTF-8 sequence; escape as \uXXXX (surrogate pairs above the BMP).
      uint32_t cp = 0;
      int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
      cp = extra == 3 ? (c & 0x07) : extra == 2 ? (c & 0x0F) : extra == 1 ? (c & 0x1F) : 0xFFFD;
      for (int k = 0; k < extra && i + 1 < s.size(); ++k) {
        cp = (cp << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F);
      }
      if (cp >= 0x10000) {
        cp -= 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                      0xDC00 + (cp & 0x3FF));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      }
      *out += buf;
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

absl::Status AppendJson(const Value& v, const JsonOptions& o, int level, std::string* out) {
  if (level > 512) return absl::InvalidArgumentError("tojson: value nested too deeply");
  const bool pretty = o.indent >= 0;
  const std::string item_sep = !o.item_separator.empty() ? o.item_separator : (pretty ? "," : ", ");
  const std::string key_sep = !o.key_separator.empty() ? o.key_separator : ": ";
  auto newline = [&](int lvl) {
    if (!pretty) return;
    out->push_back('\n');
    out->append(static_cast<size_t>(o.indent) * lvl, ' ');
  };
  switch (v.kind()) {
    case Value::Kind::kNone:
      *out += "null";
      return absl::OkStatus();
    case Value::Kind::kBool:
      *out += v.as_bool() ? "true" : "false";
      return absl::OkStatus();
    case Value::Kind::kInt:
      *out += std::to_string(v.as_int());
      return absl::OkStatus();
    case Value::Kind::kFloat: {
      double d = v.as_double();
      if (std::isnan(d)) {
        *out += "NaN";
      } else if (std::isinf(d)) {
        *out += d < 0 ? "-Infinity" : "Infinity";
      } else {
        *out += FloatRepr(d);
      }
      return absl::OkStatus();
    }
    case Value::Kind::kString:
      AppendJsonString(v.str(), o.ensure_ascii, out);
      return absl::OkStatus();
    case Value::Kind::kList: {
      if (v.list().empty()) {
        *out += "[]";
        return absl::OkStatus();
      }
      out->push_back('[');
      bool first = true;
      for (const Value& item : v.list()) {
        if (!first) *out += item_sep;
        first = false;
        newline(level + 1);
        YUAN_RETURN_IF_ERROR(AppendJson(item, o, level + 1, out));
      }
      newline(level);
      out->push_back(']');
      return absl::OkStatus();
    }
    case Value::Kind::kDict: {
      if (v.dict().empty()) {
        *out += "{}";
        return absl::OkStatus();
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& item : v.dict().items()) items.push_back(&item);
      if (o.sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](const auto* a, const auto* b) { return a->first < b->first; });
      }
      out->push_back('{');
      bool first = true;
      for (const auto* item : items) {
        if (!first) *out += item_sep;
        first = false;
        newline(level + 1);
        AppendJsonString(item->first, o.ensure_ascii, out);
        *out += key_sep;
        YUAN_RETURN_IF_ERROR(AppendJson(item->second, o, level + 1, out));
      }
      newline(level);
      out->push_back('}');
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("tojson: Object of type ", v.TypeName(), " is not JSON serializable"));
  }
}

// A small recursive JSON reader (RFC 8259), keeping object key order.
class JsonReader {
 public:
  explicit JsonReader(std::string_view s) : s_(s) {}

  absl::StatusOr<Value> ReadDocument() {
    YUAN_ASSIGN_OR_RETURN(Value v, ReadValue(0));
    SkipSpace();
    if (pos_ != s_.size()) return Error("trailing characters");
    return v;
  }

 private:
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("JSON: ", Sv(what), " at offset ", pos_));
  }
  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool Consume(std::string_view word) {
    if (s_.substr(pos_, word.size()) == word) {
      pos_ += word.size();
      return true;
    }
    return false;
  }
  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  absl::StatusOr<uint32_t> ReadHex4() {
    if (pos_ + 4 > s_.size()) return Error("short \\u escape");
    uint32_t cp = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      cp <<= 4;
      if (c >= '0' && c <= '9') {
        cp |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        cp |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        cp |= c - 'A' + 10;
      } else {
        return Error("bad \\u escape");
      }
    }
    return cp;
  }
  absl::StatusOr<std::string> ReadString() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) return Error("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) return Error("unterminated string");
      char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'u': {
          YUAN_ASSIGN_OR_RETURN(uint32_t cp, ReadHex4());
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
            pos_ += 2;
            YUAN_ASSIGN_OR_RETURN(uint32_t lo, ReadHex4());
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(cp, &out);
          break;
        }
        default:
          return Error("bad escape");
      }
    }
  }
  absl::StatusOr<Value> ReadValue(int depth) {
    if (depth > 256) return Error("nested too deeply");
    SkipSpace();
    if (pos_ >= s_.size()) return Error("unexpected end");
    char c = s_[pos_];
    if (c == '{') {
      ++pos_;
      Dict dict;
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return Value::FromDict(std::move(dict));
      }
      while (true) {
        SkipSpace();
        if (pos_ >= s_.size() || s_[pos_] != '"') return Error("expected key");
        YUAN_ASSIGN_OR_RETURN(std::string key, ReadString());
        SkipSpace();
        if (!Consume(":")) return Error("expected ':'");
        YUAN_ASSIGN_OR_RETURN(Value v, ReadValue(depth + 1));
        dict.Set(std::move(key), std::move(v));
        SkipSpace();
        if (Consume(",")) continue;
        if (Consume("}")) return Value::FromDict(std::move(dict));
        return Error("expected ',' or '}'");
      }
    }
    if (c == '[') {
      ++pos_;
      List list;
      SkipSpace();
      if (Consume("]")) return Value::FromList(std::move(list));
      while (true) {
        YUAN_ASSIGN_OR_RETURN(Value v, ReadValue(depth + 1));
        list.push_back(std::move(v));
        SkipSpace();
        if (Consume(",")) continue;
        if (Consume("]")) return Value::FromList(std::move(list));
        return Error("expected ',' or ']'");
      }
    }
    if (c == '"') {
      YUAN_ASSIGN_OR_RETURN(std::string s, ReadString());
      return Value::String(std::move(s));
    }
    if (Consume("true")) return Value::Bool(true);
    if (Consume("false")) return Value::Bool(false);
    if (Consume("null")) return Value::None();
    size_t start = pos_;
    bool is_float = false;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    while (pos_ < s_.size()) {
      char d = s_[pos_];
      if (d >= '0' && d <= '9') {
        ++pos_;
      } else if (d == '.' || d == 'e' || d == 'E' || d == '+' || d == '-') {
        is_float = true;
        ++pos_;
      } else {
        break;
      }
    }
    std::string num(s_.substr(start, pos_ - start));
    if (num.empty() || num == "-") return Error("unexpected character");
    if (!is_float) {
      int64_t i = 0;
      auto r = std::from_chars(num.data(), num.data() + num.size(), i);
      if (r.ec == std::errc() && r.ptr == num.data() + num.size()) return Value::Int(i);
    }
    char* end = nullptr;
    double d = std::strtod(num.c_str(), &end);
    if (end != num.c_str() + num.size()) return Error("bad number");
    return Value::Float(d);
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<std::string> ToJson(const Value& v, const JsonOptions& options) {
  std::string out;
  YUAN_RETURN_IF_ERROR(AppendJson(v, options, 0, &out));
  return out;
}

absl::StatusOr<Value> FromJson(std::string_view json) { return JsonReader(json).ReadDocument(); }

}  // namespace yuan::jinja

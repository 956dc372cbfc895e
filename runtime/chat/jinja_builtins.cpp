#include "runtime/chat/jinja_builtins.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "runtime/chat/jinja_text.h"
#include "runtime/core/status.h"

namespace yuan::jinja {
namespace {

absl::Status TypeError(std::string_view what) { return absl::InvalidArgumentError(Sv(what)); }

// Reads argument `index` / keyword `name` of a call, or `fallback`.
const Value& Arg(const CallArgs& args, size_t index, std::string_view name, const Value& fallback) {
  for (const auto& [k, v] : args.keyword) {
    if (k == name) return v;
  }
  if (index < args.positional.size()) return args.positional[index];
  return fallback;
}

bool HasArg(const CallArgs& args, size_t index, std::string_view name) {
  for (const auto& kv : args.keyword) {
    if (kv.first == name) return true;
  }
  return index < args.positional.size();
}

absl::StatusOr<std::string> StringArg(const CallArgs& args, size_t index, std::string_view name,
                                      std::string_view fn) {
  static const Value kMissing;
  const Value& v = Arg(args, index, name, kMissing);
  if (!v.is_string()) {
    return TypeError(
        absl::StrCat(Sv(fn), "() argument '", Sv(name), "' must be str, not ", v.TypeName()));
  }
  return v.str();
}

const Value kUndef;
const Value kNoneValue = Value::None();

// Follows a dotted attribute path ("function.name") as jinja2's attribute= does.
absl::StatusOr<Value> GetPath(const Value& obj, const std::string& path) {
  Value cur = obj;
  size_t pos = 0;
  while (true) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(),
                                                [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) {
      YUAN_ASSIGN_OR_RETURN(cur, GetItem(cur, Value::Int(std::stoll(part))));
    } else {
      YUAN_ASSIGN_OR_RETURN(cur, GetItem(cur, Value::String(part)));
    }
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

// jinja2's title filter (not str.title): each run split off by
// [-\s({\[<]+ gets its first character upper-cased and the rest lower-cased.
std::string JinjaTitle(const std::string& s) {
  auto is_sep = [](uint32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || IsPyWhitespace(c);
  };
  std::vector<uint32_t> cps = DecodeUtf8(s);
  std::string out;
  size_t i = 0;
  while (i < cps.size()) {
    size_t j = i;
    bool sep = is_sep(cps[i]);
    while (j < cps.size() && is_sep(cps[j]) == sep) ++j;
    out += PyCapitalize(EncodeUtf8(cps, i, j));
    i = j;
  }
  return out;
}

// attribute= may also be an integer index (map(attribute=0)).
bool IsAttribute(const Value& attr) { return attr.is_string() || attr.is_int(); }

absl::StatusOr<Value> GetPath(const Value& obj, const Value& attr) {
  if (attr.is_int()) return GetItem(obj, attr);
  return GetPath(obj, attr.str());
}

// Python's < for sort/min/max.
absl::StatusOr<bool> Less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.as_double() < b.as_double();
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  return TypeError(absl::StrCat("'<' not supported between instances of '", a.TypeName(), "' and '",
                                b.TypeName(), "'"));
}

Value SortKey(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::String(PyLower(v.str()));
  return v;
}

absl::StatusOr<Value> MakeBoundMethod(const Value& self, const std::string& name);

absl::StatusOr<bool> SelectTest(const Value& item, const CallArgs& args, size_t first) {
  if (args.positional.size() <= first) return item.Truthy();
  const Value& test = args.positional[first];
  if (!test.is_string()) return TypeError("select: the test name must be a string");
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + first + 1, args.positional.end());
  rest.keyword = args.keyword;
  return ApplyTest(test.str(), item, rest);
}

absl::StatusOr<Value> Join(const Value& input, const CallArgs& args) {
  static const Value kEmpty = Value::String("");
  const Value& sep = Arg(args, 0, "d", kEmpty);
  const Value& attr = Arg(args, 1, "attribute", kNoneValue);
  YUAN_ASSIGN_OR_RETURN(List items, Iterate(input));
  std::string out;
  bool first = true;
  for (const Value& item : items) {
    if (!first) out += ToStr(sep);
    first = false;
    if (IsAttribute(attr)) {
      YUAN_ASSIGN_OR_RETURN(Value v, GetPath(item, attr));
      out += ToStr(v);
    } else {
      out += ToStr(item);
    }
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> ToJsonFilter(const Value& input, const CallArgs& args) {
  // HF: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
  JsonOptions o;
  o.ensure_ascii = Arg(args, 0, "ensure_ascii", kUndef).Truthy();
  const Value& indent = Arg(args, 1, "indent", kNoneValue);
  if (indent.is_int() || indent.is_bool()) {
    o.indent = static_cast<int>(std::max<int64_t>(0, indent.as_int()));
  } else if (!indent.is_none() && !indent.is_undefined()) {
    return absl::UnimplementedError("tojson: only an integer indent is supported");
  }
  const Value& seps = Arg(args, 2, "separators", kNoneValue);
  if (seps.is_list() && seps.list().size() == 2 && seps.list()[0].is_string() &&
      seps.list()[1].is_string()) {
    o.item_separator = seps.list()[0].str();
    o.key_separator = seps.list()[1].str();
    if (o.item_separator.empty() || o.key_separator.empty()) {
      return absl::UnimplementedError("tojson: empty separators are not supported");
    }
  } else if (!seps.is_none() && !seps.is_undefined()) {
    return TypeError("tojson: separators must be a (item, key) pair of strings");
  }
  o.sort_keys = Arg(args, 3, "sort_keys", kUndef).Truthy();
  YUAN_ASSIGN_OR_RETURN(std::string s, ToJson(input, o));
  return Value::String(std::move(s));
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<Value> Indent(const Value& input, const CallArgs& args) {
  static const Value kFour = Value::Int(4);
  const Value& width = Arg(args, 0, "width", kFour);
  std::string indention =
      width.is_string() ? width.str() : std::string(std::max<int64_t>(0, width.as_int()), ' ');
  bool first = Arg(args, 1, "first", kUndef).Truthy();
  bool blank = Arg(args, 2, "blank", kUndef).Truthy();
  std::string s = ToStr(input) + "\n";
  std::vector<std::string> lines;  // str.splitlines() for \n, \r\n, \r
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      lines.push_back(cur);
      cur.clear();
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      cur.push_back(s[i]);
    }
  }
  if (!cur.empty()) lines.push_back(cur);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i)
      rv += "\n" + (lines[i].empty() ? "" : indention + lines[i]);
  }
  if (first) rv = indention + rv;
  return Value::String(std::move(rv));
}

absl::StatusOr<Value> Sort(const Value& input, const CallArgs& args) {
  bool reverse = Arg(args, 0, "reverse", kUndef).Truthy();
  bool case_sensitive = Arg(args, 1, "case_sensitive", kUndef).Truthy();
  const Value& attr = Arg(args, 2, "attribute", kNoneValue);
  YUAN_ASSIGN_OR_RETURN(List items, Iterate(input));
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : items) {
    Value key = item;
    if (IsAttribute(attr)) {
      YUAN_ASSIGN_OR_RETURN(key, GetPath(item, attr));
    }
    keyed.emplace_back(SortKey(key, case_sensitive), item);
  }
  absl::Status error;
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    auto r = reverse ? Less(b.first, a.first) : Less(a.first, b.first);
    if (!r.ok()) {
      error = r.status();
      return false;
    }
    return *r;
  });
  YUAN_RETURN_IF_ERROR(error);
  List out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::FromList(std::move(out));
}

absl::StatusOr<Value> MinMax(const Value& input, const CallArgs& args, bool want_max) {
  bool case_sensitive = Arg(args, 0, "case_sensitive", kUndef).Truthy();
  const Value& attr = Arg(args, 1, "attribute", kNoneValue);
  YUAN_ASSIGN_OR_RETURN(List items, Iterate(input));
  if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key;
  for (size_t i = 0; i < items.size(); ++i) {
    Value key = items[i];
    if (IsAttribute(attr)) {
      YUAN_ASSIGN_OR_RETURN(key, GetPath(items[i], attr));
    }
    key = SortKey(key, case_sensitive);
    if (i == 0) {
      best_key = key;
      continue;
    }
    YUAN_ASSIGN_OR_RETURN(bool better, want_max ? Less(best_key, key) : Less(key, best_key));
    if (better) {
      best = i;
      best_key = key;
    }
  }
  return items[best];
}

absl::StatusOr<Value> ParseNumber(const Value& input, bool want_float, const Value& fallback) {
  if (input.is_undefined()) return UndefinedError(input);  // int(Undefined) raises
  if (input.is_int() || input.is_bool())
    return want_float ? Value::Float(input.as_double()) : Value::Int(input.as_int());
  if (input.is_float()) {
    return want_float ? input : Value::Int(static_cast<int64_t>(std::trunc(input.as_double())));
  }
  if (input.is_string()) {
    std::string s = PyStrip(input.str(), nullptr, true, true);
    char* end = nullptr;
    if (!want_float) {
      long long i = std::strtoll(s.c_str(), &end, 10);
      if (!s.empty() && end == s.c_str() + s.size()) return Value::Int(i);
    }
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) {
      return want_float ? Value::Float(d) : Value::Int(static_cast<int64_t>(std::trunc(d)));
    }
  }
  return fallback;
}

}  // namespace

absl::Status UndefinedError(const Value& undefined) {
  std::string hint = undefined.str();
  if (hint.empty()) hint = "value is undefined";
  return absl::InvalidArgumentError(hint);
}

absl::StatusOr<List> Iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return List{};
    case Value::Kind::kList:
      return v.list();
    case Value::Kind::kDict: {
      List keys;
      for (const auto& kv : v.dict().items()) keys.push_back(Value::String(kv.first));
      return keys;
    }
    case Value::Kind::kString: {
      List chars;
      std::vector<uint32_t> cps = DecodeUtf8(v.str());
      for (size_t i = 0; i < cps.size(); ++i)
        chars.push_back(Value::String(EncodeUtf8(cps, i, i + 1)));
      return chars;
    }
    default:
      return TypeError(absl::StrCat("'", v.TypeName(), "' object is not iterable"));
  }
}

absl::StatusOr<Value> GetItem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) return UndefinedError(obj);
  if (obj.is_dict() || obj.is_namespace()) {
    if (key.is_string()) {
      if (const Value* v = obj.dict().Find(key.str())) return *v;
      if (obj.is_dict()) {
        YUAN_ASSIGN_OR_RETURN(Value method, MakeBoundMethod(obj, key.str()));
        if (!method.is_undefined()) return method;
      }
      return Value::Undefined(absl::StrCat("'dict object' has no attribute '", key.str(), "'"));
    }
    return Value::Undefined(absl::StrCat("'dict object' has no attribute '", ToStr(key), "'"));
  }
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      int64_t n = static_cast<int64_t>(obj.list().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n)
        return Value::Undefined(absl::StrCat("list object has no element ", key.as_int()));
      return obj.list()[i];
    }
    std::vector<uint32_t> cps = DecodeUtf8(obj.str());
    int64_t n = static_cast<int64_t>(cps.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n)
      return Value::Undefined(absl::StrCat("str object has no element ", key.as_int()));
    return Value::String(EncodeUtf8(cps, i, i + 1));
  }
  if (key.is_string()) {
    YUAN_ASSIGN_OR_RETURN(Value method, MakeBoundMethod(obj, key.str()));
    if (!method.is_undefined()) return method;
    return Value::Undefined(
        absl::StrCat("'", obj.TypeName(), " object' has no attribute '", key.str(), "'"));
  }
  return Value::Undefined(
      absl::StrCat("'", obj.TypeName(), " object' has no element ", ToStr(key)));
}

absl::StatusOr<Value> GetAttr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) return UndefinedError(obj);
  // Python's getattr finds methods before items (d.items is the method).
  YUAN_ASSIGN_OR_RETURN(Value method, MakeBoundMethod(obj, name));
  if (!method.is_undefined()) return method;
  if (obj.is_dict() || obj.is_namespace()) {
    if (const Value* v = obj.dict().Find(name)) return *v;
    return Value::Undefined(absl::StrCat("'", obj.is_dict() ? "dict object" : "Namespace object",
                                         "' has no attribute '", name, "'"));
  }
  return Value::Undefined(
      absl::StrCat("'", obj.TypeName(), " object' has no attribute '", name, "'"));
}

absl::StatusOr<Value> GetSlice(const Value& obj, const Value& start_v, const Value& stop_v,
                               const Value& step_v) {
  if (obj.is_undefined()) return UndefinedError(obj);
  if (!obj.is_list() && !obj.is_string()) {
    return TypeError(absl::StrCat("'", obj.TypeName(), "' object is not subscriptable"));
  }
  auto as_index = [](const Value& v, bool* present) -> absl::StatusOr<int64_t> {
    *present = !(v.is_undefined() || v.is_none());
    if (!*present) return 0;
    if (!v.is_int() && !v.is_bool()) return TypeError("slice indices must be integers or None");
    return v.as_int();
  };
  bool has_start, has_stop, has_step;
  YUAN_ASSIGN_OR_RETURN(int64_t start, as_index(start_v, &has_start));
  YUAN_ASSIGN_OR_RETURN(int64_t stop, as_index(stop_v, &has_stop));
  YUAN_ASSIGN_OR_RETURN(int64_t step, as_index(step_v, &has_step));
  if (!has_step) step = 1;
  if (step == 0) return absl::InvalidArgumentError("slice step cannot be zero");
  std::vector<uint32_t> cps;
  int64_t n = 0;
  if (obj.is_list()) {
    n = static_cast<int64_t>(obj.list().size());
  } else {
    cps = DecodeUtf8(obj.str());
    n = static_cast<int64_t>(cps.size());
  }
  // CPython's PySlice_AdjustIndices.
  auto adjust = [&](int64_t v, bool present, int64_t dflt) {
    if (!present) return dflt;
    if (v < 0) {
      v += n;
      if (v < 0) v = step < 0 ? -1 : 0;
    } else if (v >= n) {
      v = step < 0 ? n - 1 : n;
    }
    return v;
  };
  start = adjust(start, has_start, step < 0 ? n - 1 : 0);
  stop = adjust(stop, has_stop, step < 0 ? -1 : n);
  std::vector<int64_t> idx;
  if (step > 0) {
    for (int64_t i = start; i < stop; i += step) idx.push_back(i);
  } else {
    for (int64_t i = start; i > stop; i += step) idx.push_back(i);
  }
  if (obj.is_list()) {
    List out;
    for (int64_t i : idx) out.push_back(obj.list()[i]);
    return Value::FromList(std::move(out));
  }
  std::string out;
  for (int64_t i : idx) AppendUtf8(cps[i], &out);
  return Value::String(std::move(out));
}

namespace {

// Methods of str and dict that templates call (s.strip(), d.items(), ...).
absl::StatusOr<Value> MakeBoundMethod(const Value& self, const std::string& name) {
  if (self.is_string()) {
    static const char* const kStrMethods[] = {
        "startswith", "endswith", "strip",   "lstrip",     "rstrip",     "split",
        "rsplit",     "upper",    "lower",   "title",      "capitalize", "replace",
        "find",       "count",    "join",    "splitlines", "isdigit",    "isspace",
        "isalpha",    "isalnum",  "islower", "isupper"};
    bool known = false;
    for (const char* m : kStrMethods) known = known || name == m;
    if (!known) return Value();
    std::string s = self.str();
    return Value::Function("str." + name, [s, name](const CallArgs& args) -> absl::StatusOr<Value> {
      if (name == "startswith" || name == "endswith") {
        const Value& p = Arg(args, 0, "prefix", kUndef);
        List options;
        if (p.is_string()) {
          options.push_back(p);
        } else if (p.is_list()) {
          options = p.list();
        } else {
          return TypeError(absl::StrCat(name, " first arg must be str or a tuple of str"));
        }
        for (const Value& o : options) {
          if (!o.is_string())
            return TypeError(absl::StrCat(name, " first arg must be str or a tuple of str"));
          const std::string& x = o.str();
          bool hit = name == "startswith"
                         ? s.compare(0, x.size(), x) == 0 && s.size() >= x.size()
                         : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
          if (hit) return Value::Bool(true);
        }
        return Value::Bool(false);
      }
      if (name == "strip" || name == "lstrip" || name == "rstrip") {
        const Value& chars = Arg(args, 0, "chars", kNoneValue);
        if (!chars.is_none() && !chars.is_string())
          return TypeError(absl::StrCat(name, " arg must be None or str"));
        return Value::String(PyStrip(s, chars.is_string() ? &chars.str() : nullptr,
                                     name != "rstrip", name != "lstrip"));
      }
      if (name == "split" || name == "rsplit") {
        const Value& sep = Arg(args, 0, "sep", kNoneValue);
        static const Value kAll = Value::Int(-1);
        const Value& maxsplit = Arg(args, 1, "maxsplit", kAll);
        if (!sep.is_none() && !sep.is_string()) return TypeError("must be str or None");
        if (sep.is_string() && sep.str().empty())
          return absl::InvalidArgumentError("empty separator");
        if (name == "rsplit" && maxsplit.as_int() >= 0) {
          return absl::UnimplementedError("str.rsplit with maxsplit is not supported");
        }
        List out;
        for (std::string& part :
             PySplit(s, sep.is_string() ? &sep.str() : nullptr, maxsplit.as_int())) {
          out.push_back(Value::String(std::move(part)));
        }
        return Value::FromList(std::move(out));
      }
      if (name == "upper") return Value::String(PyUpper(s));
      if (name == "lower") return Value::String(PyLower(s));
      if (name == "title") return Value::String(PyTitle(s));
      if (name == "capitalize") return Value::String(PyCapitalize(s));
      if (name == "replace") {
        YUAN_ASSIGN_OR_RETURN(std::string from, StringArg(args, 0, "old", "replace"));
        YUAN_ASSIGN_OR_RETURN(std::string to, StringArg(args, 1, "new", "replace"));
        static const Value kAll = Value::Int(-1);
        return Value::String(PyReplace(s, from, to, Arg(args, 2, "count", kAll).as_int()));
      }
      if (name == "find" || name == "count") {
        YUAN_ASSIGN_OR_RETURN(std::string sub, StringArg(args, 0, "sub", name));
        if (name == "find") {
          size_t hit = s.find(sub);
          if (hit == std::string::npos) return Value::Int(-1);
          return Value::Int(
              static_cast<int64_t>(CodePointCount(std::string_view(s).substr(0, hit))));
        }
        if (sub.empty()) return Value::Int(static_cast<int64_t>(CodePointCount(s) + 1));
        int64_t count = 0;
        for (size_t pos = s.find(sub); pos != std::string::npos;
             pos = s.find(sub, pos + sub.size()))
          ++count;
        return Value::Int(count);
      }
      if (name == "join") {
        YUAN_ASSIGN_OR_RETURN(List items, Iterate(Arg(args, 0, "iterable", kUndef)));
        std::string out;
        for (size_t i = 0; i < items.size(); ++i) {
          if (!items[i].is_string()) return TypeError("sequence item: expected str instance");
          if (i) out += s;
          out += items[i].str();
        }
        return Value::String(std::move(out));
      }
      if (name == "splitlines") {
        List out;
        std::string cur;
        for (size_t i = 0; i < s.size(); ++i) {
          if (s[i] == '\n' || s[i] == '\r') {
            out.push_back(Value::String(cur));
            cur.clear();
            if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
          } else {
            cur.push_back(s[i]);
          }
        }
        if (!cur.empty()) out.push_back(Value::String(cur));
        return Value::FromList(std::move(out));
      }
      // Character classes (ASCII + Python whitespace; enough for templates).
      std::vector<uint32_t> cps = DecodeUtf8(s);
      if (cps.empty()) return Value::Bool(false);
      bool all = true, any_cased = false;
      for (uint32_t c : cps) {
        bool upper = c >= 'A' && c <= 'Z', lower = c >= 'a' && c <= 'z';
        any_cased = any_cased || upper || lower;
        if (name == "isdigit") all = all && c >= '0' && c <= '9';
        if (name == "isspace") all = all && IsPyWhitespace(c);
        if (name == "isalpha") all = all && (upper || lower);
        if (name == "isalnum") all = all && (upper || lower || (c >= '0' && c <= '9'));
        if (name == "islower") all = all && !upper;
        if (name == "isupper") all = all && !lower;
      }
      if (name == "islower" || name == "isupper") all = all && any_cased;
      return Value::Bool(all);
    });
  }
  if (self.is_list()) {
    if (name != "count" && name != "index") return Value();
    Value l = self;
    return Value::Function(
        "list." + name, [l, name](const CallArgs& args) -> absl::StatusOr<Value> {
          const Value& x = Arg(args, 0, "value", kUndef);
          int64_t count = 0;
          for (size_t i = 0; i < l.list().size(); ++i) {
            if (!l.list()[i].Equals(x)) continue;
            if (name == "index") return Value::Int(static_cast<int64_t>(i));
            ++count;
          }
          if (name == "index")
            return absl::InvalidArgumentError(absl::StrCat(ToStr(x), " is not in list"));
          return Value::Int(count);
        });
  }
  if (self.is_dict()) {
    if (name != "items" && name != "keys" && name != "values" && name != "get") return Value();
    Value d = self;
    return Value::Function("dict." + name,
                           [d, name](const CallArgs& args) -> absl::StatusOr<Value> {
                             if (name == "get") {
                               const Value& key = Arg(args, 0, "key", kUndef);
                               const Value& fallback = Arg(args, 1, "default", kNoneValue);
                               if (key.is_string()) {
                                 if (const Value* v = d.dict().Find(key.str())) return *v;
                               }
                               return fallback;
                             }
                             List out;
                             for (const auto& [k, v] : d.dict().items()) {
                               if (name == "items") {
                                 out.push_back(Value::FromTuple({Value::String(k), v}));
                               } else if (name == "keys") {
                                 out.push_back(Value::String(k));
                               } else {
                                 out.push_back(v);
                               }
                             }
                             return Value::FromList(std::move(out));
                           });
  }
  return Value();
}

const char* const kFilters[] = {
    "abs",     "attr",    "capitalize", "count",  "d",      "default",    "dictsort",  "e",
    "escape",  "first",   "float",      "indent", "int",    "items",      "join",      "last",
    "length",  "list",    "lower",      "map",    "max",    "min",        "reject",    "rejectattr",
    "replace", "reverse", "round",      "safe",   "select", "selectattr", "sort",      "string",
    "sum",     "title",   "tojson",     "trim",   "unique", "upper",      "wordcount",
};

const char* const kUnsupportedFilters[] = {
    "batch",    "center",    "filesizeformat", "forceescape", "format",
    "groupby",  "pprint",    "random",         "slice",       "striptags",
    "truncate", "urlencode", "urlize",         "wordwrap",    "xmlattr",
};

const char* const kTests[] = {
    "boolean", "callable", "defined",  "divisibleby", "eq",       "equalto", "escaped",
    "even",    "false",    "filter",   "float",       "ge",       "gt",      "greaterthan",
    "in",      "integer",  "iterable", "le",          "lessthan", "lower",   "lt",
    "mapping", "ne",       "none",     "number",      "odd",      "sameas",  "sequence",
    "string",  "test",     "true",     "undefined",   "upper",
};

}  // namespace

bool IsFilter(std::string_view name) {
  for (const char* f : kFilters) {
    if (name == f) return true;
  }
  return false;
}

bool IsUnsupportedJinjaFilter(std::string_view name) {
  for (const char* f : kUnsupportedFilters) {
    if (name == f) return true;
  }
  return false;
}

bool IsTest(std::string_view name) {
  for (const char* t : kTests) {
    if (name == t) return true;
  }
  return name == "==" || name == "!=" || name == "<" || name == "<=" || name == ">" || name == ">=";
}

absl::StatusOr<bool> ApplyTest(std::string_view name, const Value& v, const CallArgs& args) {
  const Value& other = Arg(args, 0, "other", kUndef);
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "callable") return v.is_callable();
  // Undefined is iterable (empty) and has a length, as in jinja2.
  if (name == "iterable") return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  if (name == "sequence") return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  if (name == "escaped") return false;
  if (name == "sameas") {
    if (v.is_none() || v.is_bool() || v.is_undefined())
      return v.kind() == other.kind() && v.Equals(other);
    return false;
  }
  if (name == "eq" || name == "equalto" || name == "==") return v.Equals(other);
  if (name == "ne" || name == "!=") return !v.Equals(other);
  if (name == "lt" || name == "lessthan" || name == "<") return Less(v, other);
  if (name == "gt" || name == "greaterthan" || name == ">") return Less(other, v);
  if (name == "le" || name == "<=") {
    YUAN_ASSIGN_OR_RETURN(bool gt, Less(other, v));
    return !gt;
  }
  if (name == "ge" || name == ">=") {
    YUAN_ASSIGN_OR_RETURN(bool lt, Less(v, other));
    return !lt;
  }
  if (name == "in") {
    const Value& seq = Arg(args, 0, "seq", kUndef);
    if (seq.is_string()) {
      if (!v.is_string()) return TypeError("'in <string>' requires string as left operand");
      return seq.str().find(v.str()) != std::string::npos;
    }
    if (seq.is_dict()) return v.is_string() && seq.dict().Find(v.str()) != nullptr;
    YUAN_ASSIGN_OR_RETURN(List items, Iterate(seq));
    for (const Value& item : items) {
      if (item.Equals(v)) return true;
    }
    return false;
  }
  if (name == "odd" || name == "even") {
    if (!v.is_number()) return TypeError("odd/even test needs a number");
    double r = std::fmod(v.as_double(), 2.0);
    if (r < 0) r += 2.0;  // Python's % takes the divisor's sign
    return name == "odd" ? r == 1.0 : r == 0.0;
  }
  if (name == "divisibleby") {
    if (!v.is_number() || !other.is_number() || other.as_double() == 0) {
      return TypeError("divisibleby needs numbers and a non-zero divisor");
    }
    return std::fmod(v.as_double(), other.as_double()) == 0;
  }
  if (name == "lower" || name == "upper") {
    std::string s = ToStr(v);
    return name == "lower" ? (PyLower(s) == s && PyUpper(s) != s)
                           : (PyUpper(s) == s && PyLower(s) != s);
  }
  if (name == "filter") return other.is_string() && IsFilter(other.str());
  if (name == "test") return other.is_string() && IsTest(other.str());
  return absl::InvalidArgumentError(absl::StrCat("unknown test '", Sv(name), "'"));
}

absl::StatusOr<Value> ApplyFilter(std::string_view name, const Value& input, const CallArgs& args) {
  if (name == "default" || name == "d") {
    static const Value kEmpty = Value::String("");
    const Value& fallback = Arg(args, 0, "default_value", kEmpty);
    bool boolean = Arg(args, 1, "boolean", kUndef).Truthy();
    if (input.is_undefined() || (boolean && !input.Truthy())) return fallback;
    return input;
  }
  if (name == "safe") return input.is_undefined() ? input : Value::String(ToStr(input));
  if (name == "string") return Value::String(ToStr(input));
  if (name == "length" || name == "count") {
    switch (input.kind()) {
      case Value::Kind::kUndefined:
        return Value::Int(0);
      case Value::Kind::kString:
        return Value::Int(static_cast<int64_t>(CodePointCount(input.str())));
      case Value::Kind::kList:
        return Value::Int(static_cast<int64_t>(input.list().size()));
      case Value::Kind::kDict:
        return Value::Int(static_cast<int64_t>(input.dict().size()));
      default:
        return TypeError(absl::StrCat("object of type '", input.TypeName(), "' has no len()"));
    }
  }
  if (name == "tojson") return ToJsonFilter(input, args);
  if (name == "join") return Join(input, args);
  if (name == "e" || name == "escape") return Value::String(HtmlEscape(ToStr(input)));
  if (name == "indent") return Indent(input, args);
  if (name == "sort") return Sort(input, args);
  if (name == "max" || name == "min") return MinMax(input, args, name == "max");
  if (name == "first" || name == "last") {
    YUAN_ASSIGN_OR_RETURN(List items, Iterate(input));
    if (items.empty())
      return Value::Undefined(absl::StrCat("No ", Sv(name), " item, sequence was empty."));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") {
    YUAN_ASSIGN_OR_RETURN(List items, Iterate(input));
    return Value::FromList(std::move(items));
  }
  if (name == "reverse") {
    if (input.is_string()) {
      std::vector<uint32_t> cps = DecodeUtf8(input.str());
      std::reverse(cps.begin(), cps.end());
      return Value::String(EncodeUtf8(cps, 0, cps.size()));
    }
    YUAN_ASSIGN_OR_RETURN(List items, Iterate(input));
    std::reverse(items.begin(), items.end());
    return Value::FromList(std::move(items));
  }
  if (name == "unique") {
    bool case_sensitive = Arg(args, 0, "case_sensitive", kUndef).Truthy();
    const Value& attr = Arg(args, 1, "attribute", kNoneValue);
    YUAN_ASSIGN_OR_RETURN(List items, Iterate(input));
    List out, seen;
    for (const Value& item : items) {
      Value key = item;
      if (IsAttribute(attr)) {
        YUAN_ASSIGN_OR_RETURN(key, GetPath(item, attr));
      }
      key = SortKey(key, case_sensitive);
      bool dup = false;
      for (const Value& s : seen) dup = dup || s.Equals(key);
      if (!dup) {
        seen.push_back(key);
        out.push_back(item);
      }
    }
    return Value::FromList(std::move(out));
  }
  if (name == "items") {
    if (input.is_undefined()) return Value::FromList({});
    if (!input.is_dict()) return TypeError("Can only get item pairs from a mapping.");
    List out;
    for (const auto& [k, v] : input.dict().items())
      out.push_back(Value::FromTuple({Value::String(k), v}));
    return Value::FromList(std::move(out));
  }
  if (name == "dictsort") {
    if (!input.is_dict()) return TypeError("You can only sort by either \"key\" or \"value\"");
    bool case_sensitive = Arg(args, 0, "case_sensitive", kUndef).Truthy();
    static const Value kKey = Value::String("key");
    bool by_value =
        Arg(args, 1, "by", kKey).is_string() && Arg(args, 1, "by", kKey).str() == "value";
    bool reverse = Arg(args, 2, "reverse", kUndef).Truthy();
    List pairs;
    for (const auto& [k, v] : input.dict().items())
      pairs.push_back(Value::FromTuple({Value::String(k), v}));
    CallArgs sort_args;
    sort_args.keyword = {{"reverse", Value::Bool(reverse)},
                         {"case_sensitive", Value::Bool(case_sensitive)},
                         {"attribute", Value::String(by_value ? "1" : "0")}};
    return Sort(Value::FromList(std::move(pairs)), sort_args);
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    bool attr_mode = name == "selectattr" || name == "rejectattr";
    bool keep_when = name == "select" || name == "selectattr";
    if (!input.Truthy()) return Value::FromList({});  // jinja2: `if value: for item in value`
    YUAN_ASSIGN_OR_RETURN(List items, Iterate(input));
    std::string attr;
    if (attr_mode) {
      if (args.positional.empty() || !args.positional[0].is_string()) {
        return TypeError(absl::StrCat(Sv(name), ": missing attribute name"));
      }
      attr = args.positional[0].str();
    }
    List out;
    for (const Value& item : items) {
      Value subject = item;
      if (attr_mode) {
        YUAN_ASSIGN_OR_RETURN(subject, GetPath(item, attr));
      }
      YUAN_ASSIGN_OR_RETURN(bool pass, SelectTest(subject, args, attr_mode ? 1 : 0));
      if (pass == keep_when) out.push_back(item);
    }
    return Value::FromList(std::move(out));
  }
  if (name == "map") {
    if (!input.Truthy()) return Value::FromList({});  // jinja2: `if value: for item in value`
    YUAN_ASSIGN_OR_RETURN(List items, Iterate(input));
    List out;
    const Value& attr = Arg(args, 99, "attribute", kUndef);
    if (IsAttribute(attr)) {
      const Value& fallback = Arg(args, 99, "default", kUndef);
      for (const Value& item : items) {
        YUAN_ASSIGN_OR_RETURN(Value v, GetPath(item, attr));
        out.push_back(v.is_undefined() && HasArg(args, 99, "default") ? fallback : v);
      }
      return Value::FromList(std::move(out));
    }
    if (args.positional.empty() || !args.positional[0].is_string())
      return TypeError("map: missing filter name");
    const std::string filter = args.positional[0].str();
    if (!IsFilter(filter))
      return absl::InvalidArgumentError(absl::StrCat("unknown filter '", filter, "'"));
    CallArgs rest;
    rest.positional.assign(args.positional.begin() + 1, args.positional.end());
    rest.keyword = args.keyword;
    for (const Value& item : items) {
      YUAN_ASSIGN_OR_RETURN(Value v, ApplyFilter(filter, item, rest));
      out.push_back(std::move(v));
    }
    return Value::FromList(std::move(out));
  }
  if (name == "attr") {
    YUAN_ASSIGN_OR_RETURN(std::string n, StringArg(args, 0, "name", "attr"));
    return GetAttr(input, n);
  }
  if (name == "sum") {
    const Value& attr = Arg(args, 0, "attribute", kNoneValue);
    static const Value kZero = Value::Int(0);
    Value total = Arg(args, 1, "start", kZero);
    YUAN_ASSIGN_OR_RETURN(List items, Iterate(input));
    for (const Value& item : items) {
      Value v = item;
      if (IsAttribute(attr)) {
        YUAN_ASSIGN_OR_RETURN(v, GetPath(item, attr));
      }
      if (!v.is_number() || !total.is_number()) return TypeError("sum: items must be numbers");
      total = (v.is_float() || total.is_float()) ? Value::Float(total.as_double() + v.as_double())
                                                 : Value::Int(total.as_int() + v.as_int());
    }
    return total;
  }
  // Filters below work on the string form (jinja2 calls str() / soft_str()).
  if (name == "abs") {
    if (input.is_undefined()) return UndefinedError(input);
    if (input.is_float()) return Value::Float(std::fabs(input.as_double()));
    if (input.is_int() || input.is_bool()) return Value::Int(std::llabs(input.as_int()));
    return TypeError(absl::StrCat("bad operand type for abs(): '", input.TypeName(), "'"));
  }
  if (name == "int") {
    static const Value kZero = Value::Int(0);
    return ParseNumber(input, false, Arg(args, 0, "default", kZero));
  }
  if (name == "float") {
    static const Value kZero = Value::Float(0.0);
    return ParseNumber(input, true, Arg(args, 0, "default", kZero));
  }
  if (name == "round") {
    static const Value kZero = Value::Int(0);
    static const Value kCommon = Value::String("common");
    int64_t precision = Arg(args, 0, "precision", kZero).as_int();
    const Value& method = Arg(args, 1, "method", kCommon);
    if (!input.is_number()) return TypeError("round: value must be a number");
    double scale = std::pow(10.0, static_cast<double>(precision));
    double x = input.as_double() * scale;
    std::string m = method.is_string() ? method.str() : "common";
    double r = m == "ceil" ? std::ceil(x) : m == "floor" ? std::floor(x) : std::nearbyint(x);
    return Value::Float(r / scale);
  }
  // The rest work on str(input) (Undefined gives ""), as jinja2's soft_str.
  const std::string s = ToStr(input);
  if (name == "trim") {
    const Value& chars = Arg(args, 0, "chars", kNoneValue);
    return Value::String(PyStrip(s, chars.is_string() ? &chars.str() : nullptr, true, true));
  }
  if (name == "upper") return Value::String(PyUpper(s));
  if (name == "lower") return Value::String(PyLower(s));
  if (name == "title") return Value::String(JinjaTitle(s));
  if (name == "capitalize") return Value::String(PyCapitalize(s));
  if (name == "wordcount") return Value::Int(static_cast<int64_t>(PySplit(s, nullptr, -1).size()));
  if (name == "replace") {
    YUAN_ASSIGN_OR_RETURN(std::string from, StringArg(args, 0, "old", "replace"));
    YUAN_ASSIGN_OR_RETURN(std::string to, StringArg(args, 1, "new", "replace"));
    const Value& count = Arg(args, 2, "count", kNoneValue);
    return Value::String(PyReplace(s, from, to, count.is_none() ? -1 : count.as_int()));
  }
  return absl::UnimplementedError(absl::StrCat("filter '", Sv(name), "' is not implemented"));
}

Dict MakeGlobals() {
  Dict g;
  g.Set("range", Value::Function("range", [](const CallArgs& args) -> absl::StatusOr<Value> {
          if (args.positional.empty() || args.positional.size() > 3)
            return TypeError("range expected 1 to 3 arguments");
          for (const Value& a : args.positional) {
            if (!a.is_int() && !a.is_bool()) return TypeError("range() integer arguments expected");
          }
          int64_t start = 0, stop = 0, step = 1;
          if (args.positional.size() == 1) {
            stop = args.positional[0].as_int();
          } else {
            start = args.positional[0].as_int();
            stop = args.positional[1].as_int();
            if (args.positional.size() == 3) step = args.positional[2].as_int();
          }
          if (step == 0) return absl::InvalidArgumentError("range() arg 3 must not be zero");
          double count = std::ceil((static_cast<double>(stop) - start) / step);
          // jinja2's sandbox refuses ranges above MAX_RANGE.
          if (count > 100000) {
            return absl::ResourceExhaustedError(
                "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
          }
          List out;
          for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            out.push_back(Value::Int(i));
          return Value::FromList(std::move(out));
        }));
  auto kwargs_dict = [](const CallArgs& args) -> absl::StatusOr<Dict> {
    Dict d;
    if (args.positional.size() > 1) return TypeError("expected at most 1 positional argument");
    if (args.positional.size() == 1) {
      if (!args.positional[0].is_dict()) return TypeError("expected a mapping");
      d = args.positional[0].dict();
    }
    for (const auto& [k, v] : args.keyword) d.Set(k, v);
    return d;
  };
  g.Set("namespace",
        Value::Function("namespace", [kwargs_dict](const CallArgs& args) -> absl::StatusOr<Value> {
          YUAN_ASSIGN_OR_RETURN(Dict d, kwargs_dict(args));
          return Value::NewNamespace(std::move(d));
        }));
  g.Set("dict",
        Value::Function("dict", [kwargs_dict](const CallArgs& args) -> absl::StatusOr<Value> {
          YUAN_ASSIGN_OR_RETURN(Dict d, kwargs_dict(args));
          return Value::FromDict(std::move(d));
        }));
  g.Set(
      "raise_exception",
      Value::Function("raise_exception", [](const CallArgs& args) -> absl::StatusOr<Value> {
        std::string msg = args.positional.empty() ? "" : ToStr(args.positional[0]);
        return absl::InvalidArgumentError(absl::StrCat("chat template raised an exception: ", msg));
      }));
  g.Set("strftime_now",
        Value::Function("strftime_now", [](const CallArgs& args) -> absl::StatusOr<Value> {
          if (args.positional.empty() || !args.positional[0].is_string()) {
            return TypeError("strftime_now(format) needs a format string");
          }
          std::time_t now = std::time(nullptr);
          std::tm tm{};
          localtime_r(&now, &tm);
          char buf[512];
          size_t n = std::strftime(buf, sizeof(buf), args.positional[0].str().c_str(), &tm);
          return Value::String(std::string(buf, n));
        }));
  return g;
}

}  // namespace yuan::jinja

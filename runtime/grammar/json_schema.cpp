// JSON Schema -> GBNF. One rule per schema node, named after its path
// ("root", "root-name", "root-tags-item", "ref-Item"), plus shared rules for
// the JSON primitives (value, object, array, string, char, number, ...).
#include "runtime/grammar/json_schema.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/grammar/grammar.h"

namespace yuan::grammar {

using nlohmann::json;

std::string GbnfLiteral(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += absl::StrFormat("\\x%02X", c);
        } else {
          out += ch;  // UTF-8 bytes pass through: GBNF literals are UTF-8
        }
    }
  }
  return out + "\"";
}

namespace {

// The shared rules, added to the output only when used.
const std::vector<std::pair<std::string, std::string>>& PrimitiveRules() {
  static const auto* rules = new std::vector<std::pair<std::string, std::string>>{
      // At most one space, so a model cannot loop on whitespace.
      {"ws", R"(" "?)"},
      {"value", R"(object | array | string | number | boolean | null)"},
      {"object", R"("{" ( string ":" ws value ( "," ws string ":" ws value )* )? "}")"},
      {"array", R"("[" ( value ( "," ws value )* )? "]")"},
      {"string", R"("\"" char* "\"")"},
      // Any character but '"', '\' and controls, or an escape; \u escapes
      // exclude surrogates, so every character counts as one code point.
      {"char", R"([^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" ( [0-9a-cA-CefEF] hex hex hex | [dD] [0-7] hex hex ) ))"},
      {"hex", R"([0-9a-fA-F])"},
      {"integer", R"("-"? ( "0" | [1-9] [0-9]* ))"},
      {"number", R"("-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?)"},
      {"boolean", R"("true" | "false")"},
      {"null", R"("null")"},
      {"date", R"([1-9] [0-9] [0-9] [0-9] "-" ( ( "0" [13578] | "1" [02] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) | ( "0" [469] | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) | "02" "-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ) ))"},
      {"time", R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))"},
      {"date-time", R"(date "T" time)"},
      {"uuid", R"(hex{8} "-" hex{4} "-" hex{4} "-" hex{4} "-" hex{12})"},
  };
  return *rules;
}

// Which primitives each primitive uses.
const std::map<std::string, std::vector<std::string>>& PrimitiveDeps() {
  static const auto* deps = new std::map<std::string, std::vector<std::string>>{
      {"value", {"object", "array", "string", "number", "boolean", "null"}},
      {"object", {"string", "ws", "value"}},
      {"array", {"value", "ws"}},
      {"string", {"char"}},
      {"char", {"hex"}},
      {"date-time", {"date", "time"}},
      {"uuid", {"hex"}},
  };
  return *deps;
}

const absl::flat_hash_set<std::string>& Annotations() {
  static const auto* set = new absl::flat_hash_set<std::string>{
      "title", "description", "$schema", "examples", "default", "$id", "$comment", "$anchor",
      "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding",
      "$defs", "definitions", "$vocabulary"};
  return *set;
}

// Keywords that change which documents are valid and that we do not support.
const absl::flat_hash_set<std::string>& Unsupported() {
  static const auto* set = new absl::flat_hash_set<std::string>{
      "not", "if", "then", "else", "dependentSchemas", "dependentRequired", "dependencies",
      "patternProperties", "propertyNames", "minProperties", "maxProperties", "contains",
      "minContains", "maxContains", "unevaluatedProperties", "unevaluatedItems", "multipleOf",
      "$dynamicRef", "$recursiveRef", "additionalItems"};
  return *set;
}

std::string Sanitize(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out += ok ? c : '-';
  }
  if (out.size() > 40) out.resize(40);
  return out.empty() ? "x" : out;
}

std::string Pointer(const std::string& path) { return path.empty() ? "/" : path; }

std::string EscapePointerToken(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

// ---- integer ranges --------------------------------------------------------

std::string DigitClass(char lo, char hi) {
  if (lo == hi) return absl::StrCat("\"", std::string(1, lo), "\"");
  return absl::StrCat("[", std::string(1, lo), "-", std::string(1, hi), "]");
}

std::string AnyDigits(size_t n) {
  if (n == 0) return "";
  return n == 1 ? "[0-9]" : absl::StrFormat("[0-9]{%d}", n);
}

// Decimal strings of equal length with lo <= hi, every one in between.
std::string SameLength(const std::string& lo, const std::string& hi) {
  if (lo.empty()) return "";
  const size_t rest = lo.size() - 1;
  if (lo[0] == hi[0]) {
    const std::string tail = SameLength(lo.substr(1), hi.substr(1));
    return tail.empty() ? DigitClass(lo[0], lo[0]) : DigitClass(lo[0], lo[0]) + " " + tail;
  }
  const std::string lo_tail = lo.substr(1), hi_tail = hi.substr(1);
  const bool lo_zeros = lo_tail == std::string(rest, '0');
  const bool hi_nines = hi_tail == std::string(rest, '9');
  std::vector<std::string> alts;
  auto seq = [](std::string a, const std::string& b) { return b.empty() ? a : a + " " + b; };
  char mid_lo = lo[0], mid_hi = hi[0];
  if (!lo_zeros) {
    alts.push_back(seq(DigitClass(lo[0], lo[0]), SameLength(lo_tail, std::string(rest, '9'))));
    ++mid_lo;
  }
  if (!hi_nines) --mid_hi;
  if (mid_lo <= mid_hi) alts.push_back(seq(DigitClass(mid_lo, mid_hi), AnyDigits(rest)));
  if (!hi_nines) {
    alts.push_back(seq(DigitClass(hi[0], hi[0]), SameLength(std::string(rest, '0'), hi_tail)));
  }
  return alts.size() == 1 ? alts[0] : "( " + absl::StrJoin(alts, " | ") + " )";
}

// Non-negative integers in [a, b] (b absent: unbounded), no leading zeros.
std::string UnsignedRange(uint64_t a, std::optional<uint64_t> b) {
  const std::string as = std::to_string(a);
  const size_t la = as.size();
  const size_t lb = b ? std::to_string(*b).size() : la;
  std::vector<std::string> alts;
  for (size_t len = la; len <= lb; ++len) {
    const std::string lo = len == la ? as : "1" + std::string(len - 1, '0');
    const std::string hi = (b && len == lb) ? std::to_string(*b) : std::string(len, '9');
    alts.push_back(SameLength(lo, hi));
  }
  if (!b) alts.push_back(absl::StrFormat("[1-9] [0-9]{%d,}", la));
  return alts.size() == 1 ? alts[0] : "( " + absl::StrJoin(alts, " | ") + " )";
}

// Integers in [lo, hi]; either bound may be absent. Caller checks lo <= hi.
std::string IntegerRange(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  std::vector<std::string> alts;
  // Negative part: -x for x in [max(1, -hi), -lo].
  const int64_t neg_hi = hi ? std::min<int64_t>(*hi, -1) : -1;
  if (!lo || *lo <= neg_hi) {
    const uint64_t x_lo = static_cast<uint64_t>(-neg_hi);
    std::optional<uint64_t> x_hi;
    if (lo) x_hi = static_cast<uint64_t>(-*lo);
    alts.push_back("\"-\" " + UnsignedRange(x_lo, x_hi));
  }
  const int64_t pos_lo = lo ? std::max<int64_t>(*lo, 0) : 0;
  if (!hi || *hi >= pos_lo) {
    std::optional<uint64_t> h;
    if (hi) h = static_cast<uint64_t>(*hi);
    alts.push_back(UnsignedRange(static_cast<uint64_t>(pos_lo), h));
  }
  return alts.size() == 1 ? alts[0] : "( " + absl::StrJoin(alts, " | ") + " )";
}

// ---- the converter ---------------------------------------------------------

constexpr double kMaxBound = 1e18;
constexpr int kMaxDepth = 64;

// `json` is nlohmann::json or nlohmann::ordered_json (which keeps the
// order of "properties" as written).
template <typename json>
class Converter {
 public:
  explicit Converter(const json& root) : root_(root) { taken_.insert("root"); }

  absl::StatusOr<std::string> Run() {
    absl::StatusOr<std::string> root = Visit(root_, "", "root", 0);
    if (!root.ok()) return root.status();
    std::string out = absl::StrCat("root ::= ", *root, "\n");
    for (const auto& [name, body] : rules_) absl::StrAppend(&out, name, " ::= ", body, "\n");
    // Primitives and what they need, in a fixed order.
    for (bool changed = true; changed;) {
      changed = false;
      for (const std::string& p : std::vector<std::string>(used_.begin(), used_.end())) {
        auto it = PrimitiveDeps().find(p);
        if (it == PrimitiveDeps().end()) continue;
        for (const std::string& d : it->second) changed |= used_.insert(d).second;
      }
    }
    for (const auto& [name, body] : PrimitiveRules()) {
      if (used_.contains(name)) absl::StrAppend(&out, name, " ::= ", body, "\n");
    }
    return out;
  }

 private:
  absl::Status Error(const std::string& path, std::string_view keyword, std::string_view what) {
    return absl::InvalidArgumentError(absl::StrFormat("JSON Schema keyword '%s' at %s: %s", keyword,
                                                      Pointer(path), what));
  }

  std::string Use(const std::string& primitive) {
    used_.insert(primitive);
    return primitive;
  }

  std::string NewRuleName(const std::string& hint) {
    const std::string base = Sanitize(hint);
    std::string name = base;
    for (int n = 2; taken_.contains(name) || PrimitiveDeps().count(name) || name == "ws" ||
                    name == "hex" || name == "integer" || name == "number" || name == "boolean" ||
                    name == "null" || name == "date" || name == "time";
         ++n) {
      name = absl::StrCat(base, "-", n);
    }
    taken_.insert(name);
    return name;
  }

  std::string AddRule(const std::string& hint, const std::string& body) {
    const std::string name = NewRuleName(hint);
    rules_.emplace_back(name, body);
    return name;
  }

  // A GBNF expression for the schema at `path` (a rule name, mostly).
  absl::StatusOr<std::string> Visit(const json& schema, const std::string& path,
                                    const std::string& hint, int depth) {
    if (depth > kMaxDepth) return Error(path, "$ref", "schema nested too deeply");
    if (schema.is_boolean()) {
      if (schema.template get<bool>()) return Use("value");
      return Error(path, "false", "the schema 'false' matches nothing");
    }
    if (!schema.is_object()) return Error(path, "(schema)", "a schema must be an object or a boolean");

    for (const auto& [key, value] : schema.items()) {
      if (Unsupported().contains(key)) return Error(path, key, "not supported");
    }
    if (schema.contains("uniqueItems") && schema["uniqueItems"] == true) {
      return Error(path, "uniqueItems", "not supported");
    }

    // Keys other than annotations.
    std::vector<std::string> keys;
    for (const auto& [key, value] : schema.items()) {
      if (!Annotations().contains(key)) keys.push_back(key);
    }
    auto only = [&](std::initializer_list<const char*> allowed, const char* owner) -> absl::Status {
      for (const std::string& k : keys) {
        if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; }) ==
            allowed.end()) {
          return Error(path, k, absl::StrCat("not supported together with '", owner, "'"));
        }
      }
      return absl::OkStatus();
    };

    if (schema.contains("$ref")) {
      if (absl::Status s = only({"$ref"}, "$ref"); !s.ok()) return s;
      return Ref(schema["$ref"], path, depth);
    }
    if (schema.contains("allOf")) {
      const json& all = schema["allOf"];
      if (!all.is_array() || all.size() != 1) {
        return Error(path, "allOf", "only a single-element allOf is supported");
      }
      if (absl::Status s = only({"allOf"}, "allOf"); !s.ok()) return s;
      return Visit(all[0], path + "/allOf/0", hint, depth + 1);
    }
    for (const char* kw : {"anyOf", "oneOf"}) {
      if (!schema.contains(kw)) continue;
      // oneOf is treated as anyOf: branches should not overlap (documented).
      if (absl::Status s = only({"anyOf", "oneOf"}, kw); !s.ok()) return s;
      const json& branches = schema[kw];
      if (!branches.is_array() || branches.empty()) return Error(path, kw, "must be a non-empty array");
      std::vector<std::string> alts;
      for (size_t i = 0; i < branches.size(); ++i) {
        absl::StatusOr<std::string> b = Visit(branches[i], absl::StrCat(path, "/", kw, "/", i),
                                              absl::StrCat(hint, "-", i), depth + 1);
        if (!b.ok()) return b.status();
        alts.push_back(*b);
      }
      return AddRule(hint, absl::StrJoin(alts, " | "));
    }
    if (schema.contains("const") || schema.contains("enum")) {
      if (absl::Status s = only({"const", "enum", "type"}, schema.contains("const") ? "const" : "enum");
          !s.ok()) {
        return s;
      }
      return Enum(schema, path, hint);
    }

    // The types to allow.
    std::vector<std::string> types;
    if (schema.contains("type")) {
      const json& t = schema["type"];
      if (t.is_string()) {
        types.push_back(t.template get<std::string>());
      } else if (t.is_array() && !t.empty()) {
        for (const json& x : t) {
          if (!x.is_string()) return Error(path, "type", "must name types");
          types.push_back(x.template get<std::string>());
        }
      } else {
        return Error(path, "type", "must be a string or a non-empty array");
      }
    } else {
      // No type: a keyword of one kind means "if it is of that kind"; we
      // generate that kind (a subset of what is valid).
      auto has = [&](std::initializer_list<const char*> ks) {
        for (const char* k : ks) if (schema.contains(k)) return true;
        return false;
      };
      if (has({"properties", "required", "additionalProperties"})) types.push_back("object");
      else if (has({"items", "prefixItems", "minItems", "maxItems"})) types.push_back("array");
      else if (has({"minLength", "maxLength", "pattern", "format"})) types.push_back("string");
      else if (has({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})) types.push_back("number");
      else return Use("value");
    }
    std::vector<std::string> alts;
    for (const std::string& t : types) {
      absl::StatusOr<std::string> alt;
      if (t == "object") alt = Object(schema, path, hint, depth);
      else if (t == "array") alt = Array(schema, path, hint, depth);
      else if (t == "string") alt = String(schema, path);
      else if (t == "integer") alt = Integer(schema, path);
      else if (t == "number") alt = Number(schema, path);
      else if (t == "boolean") alt = Use("boolean");
      else if (t == "null") alt = Use("null");
      else return Error(path, "type", absl::StrCat("unknown type '", t, "'"));
      if (!alt.ok()) return alt.status();
      alts.push_back(*alt);
    }
    if (alts.size() == 1 && used_.contains(alts[0])) return alts[0];  // a bare primitive
    return AddRule(hint, absl::StrJoin(alts, " | "));
  }

  absl::StatusOr<std::string> Ref(const json& ref, const std::string& path, int depth) {
    if (!ref.is_string()) return Error(path, "$ref", "must be a string");
    const std::string r = ref.template get<std::string>();
    if (r.empty() || r[0] != '#') return Error(path, "$ref", absl::StrCat("only local references (\"#...\") are supported, not \"", r, "\""));
    auto known = refs_.find(r);
    if (known != refs_.end()) return known->second;
    const json* target = nullptr;
    try {
      const typename json::json_pointer pointer(r.substr(1));
      if (root_.contains(pointer)) target = &root_.at(pointer);
    } catch (const std::exception&) {
      return Error(path, "$ref", absl::StrCat("bad JSON pointer \"", r, "\""));
    }
    if (target == nullptr) return Error(path, "$ref", absl::StrCat("\"", r, "\" does not exist"));
    // Name the rule first so recursive references find it.
    const size_t slash = r.find_last_of('/');
    const std::string name = NewRuleName(
        r == "#" ? "ref-root" : absl::StrCat("ref-", slash == std::string::npos ? r : r.substr(slash + 1)));
    refs_.emplace(r, name);
    const size_t index = rules_.size();
    rules_.emplace_back(name, "");
    absl::StatusOr<std::string> body = Visit(*target, r.substr(1), name + "-body", depth + 1);
    if (!body.ok()) return body.status();
    rules_[index].second = *body;
    return name;
  }

  absl::StatusOr<std::string> Enum(const json& schema, const std::string& path, const std::string& hint) {
    std::vector<json> values;
    if (schema.contains("const")) values.push_back(schema["const"]);
    if (schema.contains("enum")) {
      if (!schema["enum"].is_array()) return Error(path, "enum", "must be an array");
      for (const json& v : schema["enum"]) values.push_back(v);
    }
    // With "type", keep only the values of that type (others could never validate).
    std::set<std::string> types;
    if (schema.contains("type")) {
      const json& t = schema["type"];
      if (t.is_string()) types.insert(t.template get<std::string>());
      else if (t.is_array()) for (const json& x : t) if (x.is_string()) types.insert(x.template get<std::string>());
    }
    auto type_ok = [&](const json& v) {
      if (types.empty()) return true;
      if (v.is_null()) return types.count("null") > 0;
      if (v.is_boolean()) return types.count("boolean") > 0;
      if (v.is_string()) return types.count("string") > 0;
      if (v.is_object()) return types.count("object") > 0;
      if (v.is_array()) return types.count("array") > 0;
      if (v.is_number_integer() || (v.is_number_float() && std::floor(v.template get<double>()) == v.template get<double>())) {
        return types.count("integer") > 0 || types.count("number") > 0;
      }
      return types.count("number") > 0;
    };
    std::vector<std::string> alts;
    std::set<std::string> seen;
    for (const json& v : values) {
      if (!type_ok(v)) continue;
      const std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
      if (seen.insert(text).second) alts.push_back(GbnfLiteral(text));
    }
    if (alts.empty()) return Error(path, schema.contains("const") ? "const" : "enum", "no value of the allowed type");
    return AddRule(hint, absl::StrJoin(alts, " | "));
  }

  absl::StatusOr<std::string> Object(const json& schema, const std::string& path,
                                     const std::string& hint, int depth) {
    std::vector<std::pair<std::string, std::string>> required, optional;  // (key literal, rule)
    std::set<std::string> required_names;
    if (schema.contains("required")) {
      if (!schema["required"].is_array()) return Error(path, "required", "must be an array");
      for (const json& r : schema["required"]) {
        if (!r.is_string()) return Error(path, "required", "must list strings");
        required_names.insert(r.template get<std::string>());
      }
    }
    std::vector<std::string> declared;
    if (schema.contains("properties")) {
      const json& props = schema["properties"];
      if (!props.is_object()) return Error(path, "properties", "must be an object");
      for (const auto& [name, sub] : props.items()) {
        declared.push_back(name);
        absl::StatusOr<std::string> rule =
            Visit(sub, absl::StrCat(path, "/properties/", EscapePointerToken(name)),
                  absl::StrCat(hint, "-", name), depth + 1);
        if (!rule.ok()) return rule.status();
        const std::string key = GbnfLiteral(json(name).dump(-1, ' ', false, json::error_handler_t::replace));
        (required_names.count(name) ? required : optional).emplace_back(key, *rule);
      }
    }
    // nlohmann orders object keys alphabetically unless the json is ordered;
    // keep "required" first in its own order for stable output either way.
    for (const std::string& name : required_names) {
      if (std::find(declared.begin(), declared.end(), name) != declared.end()) continue;
      if (schema.contains("additionalProperties") && schema["additionalProperties"] == false) {
        return Error(path, "required", absl::StrCat("requires '", name,
                                                    "', which additionalProperties false forbids"));
      }
      // Required but not declared: any value.
      required.emplace_back(GbnfLiteral(json(name).dump()), Use("value"));
    }
    Use("ws");
    auto kv = [](const std::pair<std::string, std::string>& p) {
      return absl::StrCat(p.first, " \":\" ws ", p.second);
    };
    std::string body;
    if (!required.empty() || !optional.empty()) {
      std::vector<std::string> parts;
      for (size_t i = 0; i < required.size(); ++i) parts.push_back((i > 0 ? "\",\" ws " : "") + kv(required[i]));
      if (!required.empty()) {
        // Optional ones after the required: each may be left out.
        std::string tail;
        for (size_t i = optional.size(); i-- > 0;) {
          const std::string here = absl::StrCat("( \",\" ws ", kv(optional[i]), " )?");
          tail = tail.empty() ? here : AddRule(absl::StrCat(hint, "-rest"), here + " " + tail);
        }
        if (!tail.empty()) parts.push_back(tail);
        body = absl::StrJoin(parts, " ");
      } else {
        // No required: the first present one has no comma before it.
        std::vector<std::string> tails(optional.size() + 1);  // tails[i]: any of i.. with commas
        for (size_t i = optional.size(); i-- > 0;) {
          const std::string here = absl::StrCat("( \",\" ws ", kv(optional[i]), " )?");
          tails[i] = tails[i + 1].empty() ? here : AddRule(absl::StrCat(hint, "-rest"), here + " " + tails[i + 1]);
        }
        std::vector<std::string> firsts;
        for (size_t i = 0; i < optional.size(); ++i) {
          firsts.push_back(tails[i + 1].empty() ? kv(optional[i]) : kv(optional[i]) + " " + tails[i + 1]);
        }
        body = "( " + absl::StrJoin(firsts, " | ") + " )?";
      }
    } else if (schema.contains("additionalProperties") && schema["additionalProperties"] != false) {
      // A map: any keys, values of the given schema.
      absl::StatusOr<std::string> value =
          Visit(schema["additionalProperties"], path + "/additionalProperties", hint + "-value", depth + 1);
      if (!value.ok()) return value.status();
      const std::string entry = absl::StrCat(Use("string"), " \":\" ws ", *value);
      body = absl::StrCat("( ", entry, " ( \",\" ws ", entry, " )* )?");
    } else if (!schema.contains("additionalProperties") && !schema.contains("properties")) {
      return Use("object");
    }
    // Declared properties + additionalProperties (true or a schema): only the
    // declared ones are generated, which is valid either way.
    return AddRule(hint, absl::StrCat("\"{\" ", body, " \"}\""));
  }

  absl::StatusOr<std::string> Array(const json& schema, const std::string& path,
                                    const std::string& hint, int depth) {
    std::vector<std::string> prefix;
    if (schema.contains("prefixItems")) {
      const json& p = schema["prefixItems"];
      if (!p.is_array()) return Error(path, "prefixItems", "must be an array");
      for (size_t i = 0; i < p.size(); ++i) {
        absl::StatusOr<std::string> r = Visit(p[i], absl::StrCat(path, "/prefixItems/", i),
                                              absl::StrCat(hint, "-", i), depth + 1);
        if (!r.ok()) return r.status();
        prefix.push_back(*r);
      }
    }
    const size_t k = prefix.size();
    std::optional<std::string> item;  // none: items false
    if (schema.contains("items") && schema["items"] == false) {
      item.reset();
    } else if (schema.contains("items")) {
      absl::StatusOr<std::string> r = Visit(schema["items"], path + "/items", hint + "-item", depth + 1);
      if (!r.ok()) return r.status();
      item = *r;
    } else {
      item = Use("value");
    }
    auto count = [&](const char* kw, int64_t* out) -> absl::Status {
      if (!schema.contains(kw)) return absl::OkStatus();
      const json& v = schema[kw];
      if (!v.is_number() || v.template get<double>() < 0) return Error(path, kw, "must be a non-negative integer");
      const double d = v.template get<double>();
      if (d > kMaxRepetition) return Error(path, kw, absl::StrFormat("over %d is not supported", kMaxRepetition));
      *out = static_cast<int64_t>(std::ceil(d));
      return absl::OkStatus();
    };
    int64_t lo = 0, hi = -1;
    if (absl::Status s = count("minItems", &lo); !s.ok()) return s;
    if (absl::Status s = count("maxItems", &hi); !s.ok()) return s;
    if (!item && (hi < 0 || hi > static_cast<int64_t>(k))) hi = static_cast<int64_t>(k);
    if (hi >= 0 && lo > hi) return Error(path, "minItems", "more than maxItems (or than prefixItems with items false)");
    Use("ws");
    // Elements k.. (all `item`), count in [a, b]; `first` when nothing precedes.
    auto rest = [&](int64_t a, int64_t b, bool first) -> std::string {
      if (b == 0 || !item) return "";
      const std::string sep_item = absl::StrCat("\",\" ws ", *item);
      auto rep = [&](int64_t m, int64_t n) {  // n < 0: unbounded
        if (n == 0) return std::string();
        if (m == n) return absl::StrFormat("( %s ){%d}", sep_item, m);
        return n < 0 ? absl::StrFormat("( %s ){%d,}", sep_item, m)
                     : absl::StrFormat("( %s ){%d,%d}", sep_item, m, n);
      };
      if (!first) return rep(a, b);
      const std::string more = rep(std::max<int64_t>(a - 1, 0), b < 0 ? -1 : b - 1);
      const std::string seq = more.empty() ? *item : *item + " " + more;
      return a == 0 ? "( " + seq + " )?" : seq;
    };
    // Prefix elements, innermost (last) first: each is optional once minItems is met.
    const int64_t a = std::max<int64_t>(lo - static_cast<int64_t>(k), 0);
    const int64_t b = hi < 0 ? -1 : std::max<int64_t>(hi - static_cast<int64_t>(k), 0);
    std::string inner = rest(a, b, k == 0);
    for (size_t i = k; i-- > 0;) {
      if (hi >= 0 && static_cast<int64_t>(i) >= hi) continue;  // beyond maxItems
      std::string here = (i > 0 ? "\",\" ws " : "") + prefix[i];
      if (!inner.empty()) here += " " + inner;
      inner = static_cast<int64_t>(i) >= lo ? "( " + here + " )?" : here;
    }
    return AddRule(hint, absl::StrCat("\"[\" ", inner, " \"]\""));
  }

  absl::StatusOr<std::string> String(const json& schema, const std::string& path) {
    const bool has_len = schema.contains("minLength") || schema.contains("maxLength");
    if (schema.contains("format")) {
      if (has_len || schema.contains("pattern")) return Error(path, "format", "not supported with minLength/maxLength/pattern");
      const json& f = schema["format"];
      const std::string format = f.is_string() ? f.template get<std::string>() : "";
      if (format != "date" && format != "time" && format != "date-time" && format != "uuid") {
        return Error(path, "format", absl::StrCat("format '", format, "' is not supported (date, time, date-time, uuid are)"));
      }
      return absl::StrCat("\"\\\"\" ", Use(format), " \"\\\"\"");
    }
    if (schema.contains("pattern")) {
      if (has_len) return Error(path, "pattern", "not supported with minLength/maxLength");
      if (!schema["pattern"].is_string()) return Error(path, "pattern", "must be a string");
      absl::StatusOr<std::string> p = PatternToGbnf(schema["pattern"].template get<std::string>());
      if (!p.ok()) return Error(path, "pattern", std::string(p.status().message()));
      Use("char");
      return absl::StrCat("\"\\\"\" ", *p, " \"\\\"\"");
    }
    if (!has_len) return Use("string");
    int64_t lo = 0, hi = -1;
    for (const char* kw : {"minLength", "maxLength"}) {
      if (!schema.contains(kw)) continue;
      const json& v = schema[kw];
      if (!v.is_number() || v.template get<double>() < 0) return Error(path, kw, "must be a non-negative integer");
      if (v.template get<double>() > kMaxRepetition) return Error(path, kw, absl::StrFormat("over %d is not supported", kMaxRepetition));
      (std::string(kw) == "minLength" ? lo : hi) = static_cast<int64_t>(std::ceil(v.template get<double>()));
    }
    if (hi >= 0 && lo > hi) return Error(path, "minLength", "more than maxLength");
    Use("char");
    const std::string rep = hi < 0 ? absl::StrFormat("char{%d,}", lo) : absl::StrFormat("char{%d,%d}", lo, hi);
    return absl::StrCat("\"\\\"\" ", rep, " \"\\\"\"");
  }

  // Integer bounds from minimum/maximum/exclusive*; false when unbounded past 1e18.
  absl::Status Bounds(const json& schema, const std::string& path, bool integer,
                      std::optional<int64_t>* lo, std::optional<int64_t>* hi) {
    for (const char* kw : {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}) {
      if (!schema.contains(kw)) continue;
      const json& v = schema[kw];
      if (!v.is_number()) return Error(path, kw, "must be a number");
      const double d = v.template get<double>();
      if (std::fabs(d) > kMaxBound) return Error(path, kw, "bounds past 1e18 are not supported");
      const std::string k = kw;
      if (!integer && std::floor(d) != d) return Error(path, kw, "a non-integer bound on a number is not supported");
      if (k == "minimum") {
        const int64_t b = static_cast<int64_t>(std::ceil(d));
        *lo = *lo ? std::max(**lo, b) : b;
      } else if (k == "exclusiveMinimum") {
        if (!integer) return Error(path, kw, "not supported on type number");
        const int64_t b = static_cast<int64_t>(std::floor(d)) + 1;
        *lo = *lo ? std::max(**lo, b) : b;
      } else if (k == "maximum") {
        const int64_t b = static_cast<int64_t>(std::floor(d));
        *hi = *hi ? std::min(**hi, b) : b;
      } else {
        if (!integer) return Error(path, kw, "not supported on type number");
        const int64_t b = static_cast<int64_t>(std::ceil(d)) - 1;
        *hi = *hi ? std::min(**hi, b) : b;
      }
    }
    if (*lo && *hi && **lo > **hi) return Error(path, "minimum", "greater than maximum");
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Integer(const json& schema, const std::string& path) {
    std::optional<int64_t> lo, hi;
    if (absl::Status s = Bounds(schema, path, true, &lo, &hi); !s.ok()) return s;
    if (!lo && !hi) return Use("integer");
    return "( " + IntegerRange(lo, hi) + " )";
  }

  // Numbers with integer bounds: a lower bound must be >= 0 (so the integer
  // part alone decides "at least"); at the upper bound the fraction must be
  // zero. No exponent when bounded.
  absl::StatusOr<std::string> Number(const json& schema, const std::string& path) {
    std::optional<int64_t> lo, hi;
    if (absl::Status s = Bounds(schema, path, false, &lo, &hi); !s.ok()) return s;
    if (!lo && !hi) return Use("number");
    if (!lo || *lo < 0) return Error(path, lo ? "minimum" : "maximum", "number bounds need a minimum >= 0");
    std::vector<std::string> alts;
    const std::string frac = "( \".\" [0-9]+ )?";
    if (!hi || *hi > *lo) {
      std::optional<int64_t> below;
      if (hi) below = *hi - 1;
      alts.push_back(IntegerRange(lo, below) + " " + frac);
    }
    if (hi) alts.push_back(IntegerRange(*hi, *hi) + " ( \".\" \"0\"+ )?");
    return "( " + absl::StrJoin(alts, " | ") + " )";
  }

  const json& root_;
  std::vector<std::pair<std::string, std::string>> rules_;
  absl::flat_hash_set<std::string> taken_;
  std::map<std::string, std::string> refs_;
  std::set<std::string> used_;
};

}  // namespace

absl::StatusOr<std::string> JsonSchemaToGbnf(const json& schema) {
  try {
    return Converter<json>(schema).Run();
  } catch (const std::exception& e) {  // nlohmann type errors on odd input
    return absl::InvalidArgumentError(absl::StrCat("JSON Schema: ", e.what()));
  }
}

absl::StatusOr<std::string> JsonSchemaToGbnf(const nlohmann::ordered_json& schema) {
  try {
    return Converter<nlohmann::ordered_json>(schema).Run();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("JSON Schema: ", e.what()));
  }
}

absl::StatusOr<std::string> JsonSchemaToGbnf(std::string_view schema_json) {
  nlohmann::ordered_json schema =
      nlohmann::ordered_json::parse(schema_json, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return absl::InvalidArgumentError("JSON Schema: not valid JSON");
  return JsonSchemaToGbnf(schema);
}

std::string JsonObjectGbnf() {
  std::string out = "root ::= object\n";
  for (const auto& [name, body] : PrimitiveRules()) {
    if (name == "date" || name == "time" || name == "date-time" || name == "uuid") continue;
    absl::StrAppend(&out, name, " ::= ", body, "\n");
  }
  return out;
}

}  // namespace yuan::grammar

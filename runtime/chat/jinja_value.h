// Values of the Jinja subset (runtime/chat/jinja.h): a small variant that
// behaves like the Python objects jinja2 sees when Hugging Face transformers
// renders a chat template — None, bool, int, float, str, list, dict
// (insertion-ordered, string keys), jinja2's Undefined, namespace() objects and
// callables. Printing follows Python's str()/repr() and json.dumps, byte for
// byte, because templates are compared against Python's output.
//
// Lists and dicts are immutable once built (HF renders in an
// ImmutableSandboxedEnvironment) and shared between copies; a namespace is the
// one mutable, reference-shared object, as in jinja2.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace yuan::jinja {

class Value;
class Dict;
using List = std::vector<Value>;

// Lists, dicts and namespaces nest at most this deep inside a template (the
// renderer refuses deeper values), and printing/comparing stops there, so a
// hostile template cannot overflow the stack.
inline constexpr int kMaxValueDepth = 256;

// Arguments of a call: f(a, b, key=c).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

using NativeFunction = std::function<absl::StatusOr<Value>(const CallArgs&)>;

struct Callable {
  std::string name;  // for messages: "raise_exception", "str.split", ...
  NativeFunction fn;
};

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kNamespace,
    kCallable,
  };

  Value() = default;  // Undefined
  static Value Undefined(std::string hint = "");
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double d);
  static Value String(std::string s);
  static Value FromList(List items);
  // A Python tuple: behaves as a list but prints as (a, b) and != a list.
  static Value FromTuple(List items);
  static Value FromDict(Dict dict);
  static Value NewNamespace(Dict attrs);
  static Value Function(std::string name, NativeFunction fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  // Python's numbers include bool (True + 1 == 2).
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && tuple_; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return is_bool() ? (b_ ? 1 : 0) : i_; }
  double as_double() const;
  const std::string& str() const { return s_; }  // string value or undefined hint
  const List& list() const { return *list_; }
  const Dict& dict() const { return *dict_; }  // dict or namespace attributes
  // The shared attributes of a namespace: the one value `{% set ns.x %}`
  // mutates in place.
  Dict& mutable_namespace() const { return *dict_; }
  const Callable& callable() const { return *fn_; }

  // Nesting depth: 0 for scalars, 1 + the deepest item for containers (as
  // built; a namespace's later attribute changes are not counted).
  int depth() const { return depth_; }

  // Python truthiness (Undefined is falsy).
  bool Truthy() const;
  // Python == (false beyond kMaxValueDepth levels).
  bool Equals(const Value& other, int level = 0) const;
  // Python's type name for messages ("str", "dict", "NoneType", ...).
  std::string TypeName() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  bool tuple_ = false;
  uint16_t depth_ = 0;
  int64_t i_ = 0;
  double f_ = 0;
  std::string s_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<const Callable> fn_;
};

// Insertion-ordered map from string keys, like a Python dict of str keys.
class Dict {
 public:
  const Value* Find(std::string_view key) const;
  void Set(std::string key, Value value);
  // Replaces the value of the i-th item (i < size()).
  void SetAt(size_t i, Value value) { items_[i].second = std::move(value); }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

// str(v) as jinja2 prints {{ v }} (Undefined prints as "").
std::string ToStr(const Value& v);
// repr(v), used inside printed lists and dicts.
std::string Repr(const Value& v);
// Python's repr(float): shortest round-trip digits, "1.0", "1e+20", "nan".
std::string FloatRepr(double d);

struct JsonOptions {
  int indent = -1;             // < 0: one line; >= 0: pretty, like json.dumps(indent=N)
  std::string item_separator;  // empty: Python's default for the indent mode
  std::string key_separator;   // empty: ": "
  bool sort_keys = false;
  bool ensure_ascii = false;  // HF's tojson passes ensure_ascii=False
};
// json.dumps(v, ...) exactly as Python writes it.
absl::StatusOr<std::string> ToJson(const Value& v, const JsonOptions& options = {});

// Parses JSON text (objects keep their key order) into a Value; used to hand
// tool schemas and other structured extras to templates.
absl::StatusOr<Value> FromJson(std::string_view json);

}  // namespace yuan::jinja

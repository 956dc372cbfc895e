// Tree-walking renderer for the Jinja subset: scopes, statements and
// operators with jinja2 / Python semantics. Filters, tests and methods live in
// jinja_builtins.cpp; parsing in jinja_parser.cpp.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/chat/jinja.h"
#include "runtime/chat/jinja_ast.h"
#include "runtime/chat/jinja_builtins.h"
#include "runtime/chat/jinja_parser.h"
#include "runtime/chat/jinja_text.h"
#include "runtime/core/status.h"

namespace yuan::jinja {
namespace {

absl::Status RenderError(int line, const absl::Status& cause) {
  if (cause.message().rfind("chat template line ", 0) == 0) return cause;
  return absl::Status(cause.code(),
                      absl::StrCat("chat template line ", line, ": ", cause.message()));
}

// Python's binary arithmetic on ints (bool counts as int) and floats.
absl::StatusOr<Value> Arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  if (a.is_number() && b.is_number()) {
    bool floats = a.is_float() || b.is_float();
    if (op == "/") {
      if (b.as_double() == 0) return absl::InvalidArgumentError("division by zero");
      return Value::Float(a.as_double() / b.as_double());
    }
    if (floats) {
      double x = a.as_double(), y = b.as_double();
      if (op == "+") return Value::Float(x + y);
      if (op == "-") return Value::Float(x - y);
      if (op == "*") return Value::Float(x * y);
      if (op == "**") return Value::Float(std::pow(x, y));
      if (y == 0) return absl::InvalidArgumentError("float modulo / floor division by zero");
      if (op == "//") return Value::Float(std::floor(x / y));
      if (op == "%") {
        double m = std::fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        return Value::Float(m);
      }
    } else {
      int64_t x = a.as_int(), y = b.as_int(), r = 0;
      if (op == "+" && !__builtin_add_overflow(x, y, &r)) return Value::Int(r);
      if (op == "-" && !__builtin_sub_overflow(x, y, &r)) return Value::Int(r);
      if (op == "*" && !__builtin_mul_overflow(x, y, &r)) return Value::Int(r);
      if (op == "//" || op == "%") {
        if (y == 0) return absl::InvalidArgumentError("integer division or modulo by zero");
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          --q;
          m += y;
        }
        return Value::Int(op == "//" ? q : m);
      }
      if (op == "**") {
        if (y < 0) return Value::Float(std::pow(static_cast<double>(x), static_cast<double>(y)));
        int64_t acc = 1;
        for (int64_t i = 0; i < y; ++i) {
          if (__builtin_mul_overflow(acc, x, &acc))
            return absl::OutOfRangeError("integer overflow in **");
        }
        return Value::Int(acc);
      }
      return absl::OutOfRangeError(absl::StrCat("integer overflow in ", op));
    }
  }
  if (op == "+" && a.is_string() && b.is_string()) return Value::String(a.str() + b.str());
  if (op == "+" && a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    List out = a.list();
    out.insert(out.end(), b.list().begin(), b.list().end());
    return Value::FromList(std::move(out));
  }
  if (op == "*" && (a.is_int() || a.is_bool()) && (b.is_string() || b.is_list()))
    return Arithmetic(op, b, a);
  if (op == "*" && (a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) {
    // Sequence repetition; bounded so "x" * 10**12 cannot exhaust memory.
    const int64_t times = std::max<int64_t>(0, b.as_int());
    const size_t unit = a.is_string() ? a.str().size() : a.list().size();
    if (unit > 0 && static_cast<uint64_t>(times) > (64u << 20) / unit) {
      return absl::ResourceExhaustedError("sequence repetition result too large");
    }
    if (a.is_string()) {
      std::string out;
      for (int64_t k = 0; k < times; ++k) out += a.str();
      return Value::String(std::move(out));
    }
    List out;
    for (int64_t k = 0; k < times; ++k) out.insert(out.end(), a.list().begin(), a.list().end());
    return a.is_tuple() ? Value::FromTuple(std::move(out)) : Value::FromList(std::move(out));
  }
  if (op == "%" && a.is_string())
    return absl::UnimplementedError("printf-style string formatting ('%s' % x)");
  return absl::InvalidArgumentError(absl::StrCat("unsupported operand type(s) for ", op, ": '",
                                                 a.TypeName(), "' and '", b.TypeName(), "'"));
}

absl::StatusOr<bool> Contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'in <string>' requires string as left operand, not ", item.TypeName()));
    }
    return container.str().find(item.str()) != std::string::npos;
  }
  if (container.is_dict()) return item.is_string() && container.dict().Find(item.str()) != nullptr;
  if (container.is_list()) {
    for (const Value& v : container.list()) {
      if (v.Equals(item)) return true;
    }
    return false;
  }
  if (container.is_undefined()) return false;
  return absl::InvalidArgumentError(
      absl::StrCat("argument of type '", container.TypeName(), "' is not iterable"));
}

// Python's ordering: numbers, strings, and lists/tuples lexicographically.
absl::StatusOr<int> Order(const std::string& op, const Value& a, const Value& b, int level) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    int c = a.str().compare(b.str());  // UTF-8 byte order == code point order
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple() && level < kMaxValueDepth) {
    const List& x = a.list();
    const List& y = b.list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (x[i].Equals(y[i])) continue;
      return Order(op, x[i], y[i], level + 1);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  return absl::InvalidArgumentError(absl::StrCat("'", op, "' not supported between instances of '",
                                                 a.TypeName(), "' and '", b.TypeName(), "'"));
}

absl::StatusOr<Value> Compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return Value::Bool(a.Equals(b));
  if (op == "!=") return Value::Bool(!a.Equals(b));
  if (op == "in" || op == "not in") {
    YUAN_ASSIGN_OR_RETURN(bool in, Contains(b, a));
    return Value::Bool(op == "in" ? in : !in);
  }
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  YUAN_ASSIGN_OR_RETURN(int cmp, Order(op, a, b, 0));
  if (op == "<") return Value::Bool(cmp < 0);
  if (op == ">") return Value::Bool(cmp > 0);
  if (op == "<=") return Value::Bool(cmp <= 0);
  return Value::Bool(cmp >= 0);
}

enum class Flow { kNormal, kBreak, kContinue };

bool HoldsNamespace(const Value& v, int level) {
  if (v.is_namespace() || level > kMaxValueDepth) return true;
  if (v.is_list()) {
    for (const Value& item : v.list()) {
      if (HoldsNamespace(item, level + 1)) return true;
    }
  } else if (v.is_dict()) {
    for (const auto& item : v.dict().items()) {
      if (HoldsNamespace(item.second, level + 1)) return true;
    }
  }
  return false;
}

class Renderer {
 public:
  Renderer(const TemplateLimits& limits, const Dict& context)
      : limits_(limits), globals_(MakeGlobals()) {
    scopes_.emplace_back();
    for (const auto& [k, v] : context.items()) scopes_[0].Set(k, v);
  }

  absl::StatusOr<std::string> Run(const Node& root) {
    std::string out;
    out_ = &out;
    YUAN_RETURN_IF_ERROR(RenderBody(root.body));
    return out;
  }

 private:
  absl::Status Step(int line) {
    if (++steps_ > limits_.max_steps) {
      return absl::ResourceExhaustedError(absl::StrCat("chat template line ", line,
                                                       ": evaluation exceeded the step limit of ",
                                                       limits_.max_steps));
    }
    return absl::OkStatus();
  }

  absl::Status Emit(const std::string& s, int line) {
    if (out_->size() + s.size() > limits_.max_output_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "chat template line ", line, ": output exceeded ", limits_.max_output_bytes, " bytes"));
    }
    out_->append(s);
    return absl::OkStatus();
  }

  // ---- scopes: scopes_[0] holds the context and top-level sets; a for
  // iteration or macro call pushes one. Lookup walks down to frame_base_,
  // then the root scope, then the globals.
  Value Lookup(const std::string& name) const {
    for (size_t i = scopes_.size(); i-- > frame_base_;) {
      if (const Value* v = scopes_[i].Find(name)) return *v;
    }
    if (frame_base_ > 0) {
      if (const Value* v = scopes_[0].Find(name)) return *v;
    }
    if (const Value* v = globals_.Find(name)) return *v;
    return Value::Undefined(absl::StrCat("'", name, "' is undefined"));
  }

  void Assign(const std::string& name, Value v) { scopes_.back().Set(name, std::move(v)); }

  absl::Status AssignTargets(const std::vector<std::string>& targets, const Value& v, int line) {
    if (targets.size() == 1) {
      Assign(targets[0], v);
      return absl::OkStatus();
    }
    if (!v.is_list() || v.list().size() != targets.size()) {
      return RenderError(
          line, absl::InvalidArgumentError(absl::StrCat("cannot unpack ", v.TypeName(), " into ",
                                                        targets.size(), " names")));
    }
    for (size_t i = 0; i < targets.size(); ++i) Assign(targets[i], v.list()[i]);
    return absl::OkStatus();
  }

  absl::Status RenderBody(const NodeList& body) {
    for (const auto& node : body) {
      YUAN_RETURN_IF_ERROR(RenderNode(*node));
      if (flow_ != Flow::kNormal) return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  absl::Status RenderNode(const Node& n) {
    YUAN_RETURN_IF_ERROR(Step(n.line));
    switch (n.kind) {
      case NodeKind::kText:
        return Emit(n.text, n.line);
      case NodeKind::kOutput: {
        YUAN_ASSIGN_OR_RETURN(Value v, Eval(*n.expr));
        return Emit(ToStr(v), n.line);
      }
      case NodeKind::kIf: {
        for (const IfBranch& b : n.branches) {
          YUAN_ASSIGN_OR_RETURN(Value c, Eval(*b.condition));
          if (c.Truthy()) return RenderBody(b.body);
        }
        return RenderBody(n.else_body);
      }
      case NodeKind::kFor:
        return RenderFor(n);
      case NodeKind::kSet: {
        YUAN_ASSIGN_OR_RETURN(Value v, Eval(*n.expr));
        if (!n.attr.empty()) {
          Value ns = Lookup(n.targets[0]);
          if (!ns.is_namespace()) {
            return RenderError(n.line, absl::InvalidArgumentError(
                                           "can only assign attributes of a namespace() object"));
          }
          // Namespaces are the only mutable values; keeping them out of each
          // other rules out reference cycles and unbounded chains.
          if (HoldsNamespace(v, 0)) {
            return RenderError(n.line, absl::UnimplementedError(
                                           "storing a namespace() inside a namespace attribute"));
          }
          ns.mutable_namespace().Set(n.attr, std::move(v));
          return absl::OkStatus();
        }
        return AssignTargets(n.targets, v, n.line);
      }
      case NodeKind::kSetBlock: {
        std::string captured;
        std::string* saved = out_;
        out_ = &captured;
        absl::Status st = RenderBody(n.body);
        out_ = saved;
        YUAN_RETURN_IF_ERROR(st);
        Assign(n.targets[0], Value::String(std::move(captured)));
        return absl::OkStatus();
      }
      case NodeKind::kMacro:
        Assign(n.text, MakeMacro(n));
        return absl::OkStatus();
      case NodeKind::kBreak:
        flow_ = Flow::kBreak;
        return absl::OkStatus();
      case NodeKind::kContinue:
        flow_ = Flow::kContinue;
        return absl::OkStatus();
      case NodeKind::kBlockGroup:
        return RenderBody(n.body);
    }
    return absl::OkStatus();
  }

  absl::Status RenderFor(const Node& n) {
    YUAN_ASSIGN_OR_RETURN(Value iterable, Eval(*n.expr));
    absl::StatusOr<List> items_or = Iterate(iterable);
    if (!items_or.ok()) return RenderError(n.line, items_or.status());
    List items = std::move(items_or).value();
    if (n.filter != nullptr) {
      List kept;
      for (const Value& item : items) {
        YUAN_RETURN_IF_ERROR(Step(n.line));
        scopes_.emplace_back();
        absl::Status st = AssignTargets(n.targets, item, n.line);
        absl::StatusOr<Value> keep = st.ok() ? Eval(*n.filter) : absl::StatusOr<Value>(st);
        scopes_.pop_back();
        if (!keep.ok()) return keep.status();
        if (keep->Truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    const int64_t length = static_cast<int64_t>(items.size());
    // A fresh `loop` snapshot per iteration (values stay immutable), copied
    // from this prototype; the item order below is fixed for SetAt.
    auto index = std::make_shared<int64_t>(0);
    Dict loop_attrs;
    for (const char* key :
         {"index", "index0", "revindex", "revindex0", "first", "last", "previtem", "nextitem"}) {
      loop_attrs.Set(key, Value());
    }
    loop_attrs.Set("length", Value::Int(length));
    loop_attrs.Set("depth", Value::Int(1));
    loop_attrs.Set("depth0", Value::Int(0));
    loop_attrs.Set(
        "cycle",
        Value::Function("loop.cycle", [index](const CallArgs& args) -> absl::StatusOr<Value> {
          if (args.positional.empty())
            return absl::InvalidArgumentError("no items for cycling given");
          return args.positional[*index % args.positional.size()];
        }));
    for (int64_t i = 0; i < length; ++i) {
      YUAN_RETURN_IF_ERROR(Step(n.line));
      *index = i;
      Dict loop = loop_attrs;
      loop.SetAt(0, Value::Int(i + 1));
      loop.SetAt(1, Value::Int(i));
      loop.SetAt(2, Value::Int(length - i));
      loop.SetAt(3, Value::Int(length - i - 1));
      loop.SetAt(4, Value::Bool(i == 0));
      loop.SetAt(5, Value::Bool(i == length - 1));
      loop.SetAt(6, i > 0 ? items[i - 1] : Value::Undefined("there is no previous item"));
      loop.SetAt(7, i + 1 < length ? items[i + 1] : Value::Undefined("there is no next item"));
      scopes_.emplace_back();
      Assign("loop", Value::FromDict(std::move(loop)));
      absl::Status st = AssignTargets(n.targets, items[i], n.line);
      if (st.ok()) st = RenderBody(n.body);
      scopes_.pop_back();
      YUAN_RETURN_IF_ERROR(st);
      Flow flow = flow_;
      flow_ = Flow::kNormal;
      if (flow == Flow::kBreak) break;
    }
    if (length == 0) return RenderBody(n.else_body);
    return absl::OkStatus();
  }

  // A macro sees its parameters, then the variables visible where it was
  // defined (loop variables, captured now, as jinja2's closures do), then the
  // template's top-level variables as they are when it is called.
  Value MakeMacro(const Node& n) {
    auto captured = std::make_shared<Dict>();
    for (size_t i = std::max<size_t>(1, frame_base_); i < scopes_.size(); ++i) {
      for (const auto& [k, v] : scopes_[i].items()) captured->Set(k, v);
    }
    const Node* node = &n;
    return Value::Function(n.text,
                           [this, node, captured](const CallArgs& args) -> absl::StatusOr<Value> {
                             return CallMacro(*node, *captured, args);
                           });
  }

  absl::StatusOr<Value> CallMacro(const Node& n, const Dict& captured, const CallArgs& args) {
    if (call_depth_ >= limits_.max_call_depth) {
      return absl::ResourceExhaustedError(
          absl::StrCat("macro calls nested deeper than ", limits_.max_call_depth));
    }
    if (args.positional.size() > n.targets.size()) {
      return absl::InvalidArgumentError(absl::StrCat("macro '", n.text, "' takes not more than ",
                                                     n.targets.size(), " argument(s)"));
    }
    Dict frame;
    for (size_t i = 0; i < n.targets.size(); ++i) {
      const std::string& param = n.targets[i];
      const Value* given = nullptr;
      for (const auto& [k, v] : args.keyword) {
        if (k == param) given = &v;
      }
      if (i < args.positional.size()) given = &args.positional[i];
      if (given != nullptr) {
        frame.Set(param, *given);
      } else if (n.defaults[i] != nullptr) {
        YUAN_ASSIGN_OR_RETURN(Value d, Eval(*n.defaults[i]));
        frame.Set(param, std::move(d));
      } else {
        frame.Set(param,
                  Value::Undefined(absl::StrCat("parameter '", param, "' was not provided")));
      }
    }
    for (const auto& [k, v] : args.keyword) {
      bool known = false;
      for (const std::string& p : n.targets) known = known || p == k;
      if (!known)
        return absl::InvalidArgumentError(
            absl::StrCat("macro '", n.text, "' takes no keyword argument '", k, "'"));
    }
    std::string output;
    std::string* saved_out = out_;
    size_t saved_base = frame_base_;
    Flow saved_flow = flow_;
    out_ = &output;
    scopes_.push_back(captured);
    frame_base_ = scopes_.size() - 1;
    scopes_.push_back(std::move(frame));
    ++call_depth_;
    absl::Status st = RenderBody(n.body);
    --call_depth_;
    scopes_.pop_back();
    scopes_.pop_back();
    frame_base_ = saved_base;
    out_ = saved_out;
    flow_ = saved_flow;
    YUAN_RETURN_IF_ERROR(st);
    return Value::String(std::move(output));
  }

  absl::StatusOr<CallArgs> EvalArgs(const Expr& e, size_t first) {
    CallArgs args;
    size_t n_kw = e.kwarg_names.size();
    size_t n_pos = e.kids.size() - first - n_kw;
    for (size_t i = 0; i < n_pos; ++i) {
      YUAN_ASSIGN_OR_RETURN(Value v, Eval(*e.kids[first + i]));
      args.positional.push_back(std::move(v));
    }
    for (size_t i = 0; i < n_kw; ++i) {
      YUAN_ASSIGN_OR_RETURN(Value v, Eval(*e.kids[first + n_pos + i]));
      args.keyword.emplace_back(e.kwarg_names[i], std::move(v));
    }
    return args;
  }

  absl::StatusOr<Value> Eval(const Expr& e) {
    absl::StatusOr<Value> v = EvalInner(e);
    if (!v.ok()) return RenderError(e.line, v.status());
    if (v->depth() > kMaxValueDepth) {
      return RenderError(e.line, absl::ResourceExhaustedError(absl::StrCat(
                                     "value nested deeper than the limit of ", kMaxValueDepth)));
    }
    return v;
  }

  absl::StatusOr<Value> EvalInner(const Expr& e) {
    YUAN_RETURN_IF_ERROR(Step(e.line));
    switch (e.kind) {
      case ExprKind::kLiteral:
        return e.value;
      case ExprKind::kName:
        return Lookup(e.name);
      case ExprKind::kList:
      case ExprKind::kTuple: {
        List items;
        for (const auto& kid : e.kids) {
          YUAN_ASSIGN_OR_RETURN(Value v, Eval(*kid));
          items.push_back(std::move(v));
        }
        if (e.kind == ExprKind::kTuple) return Value::FromTuple(std::move(items));
        return Value::FromList(std::move(items));
      }
      case ExprKind::kDict: {
        Dict d;
        for (size_t i = 0; i + 1 < e.kids.size(); i += 2) {
          YUAN_ASSIGN_OR_RETURN(Value k, Eval(*e.kids[i]));
          YUAN_ASSIGN_OR_RETURN(Value v, Eval(*e.kids[i + 1]));
          if (!k.is_string()) return absl::UnimplementedError("dict literal keys must be strings");
          d.Set(k.str(), std::move(v));
        }
        return Value::FromDict(std::move(d));
      }
      case ExprKind::kGetAttr: {
        YUAN_ASSIGN_OR_RETURN(Value obj, Eval(*e.kids[0]));
        return GetAttr(obj, e.name);
      }
      case ExprKind::kGetItem: {
        YUAN_ASSIGN_OR_RETURN(Value obj, Eval(*e.kids[0]));
        YUAN_ASSIGN_OR_RETURN(Value key, Eval(*e.kids[1]));
        return GetItem(obj, key);
      }
      case ExprKind::kSlice: {
        YUAN_ASSIGN_OR_RETURN(Value obj, Eval(*e.kids[0]));
        Value parts[3];
        for (int i = 0; i < 3; ++i) {
          if (e.kids[i + 1] != nullptr) {
            YUAN_ASSIGN_OR_RETURN(parts[i], Eval(*e.kids[i + 1]));
          }
        }
        return GetSlice(obj, parts[0], parts[1], parts[2]);
      }
      case ExprKind::kCall: {
        YUAN_ASSIGN_OR_RETURN(Value fn, Eval(*e.kids[0]));
        if (fn.is_undefined()) return UndefinedError(fn);
        if (!fn.is_callable()) {
          return absl::InvalidArgumentError(
              absl::StrCat("'", fn.TypeName(), "' object is not callable"));
        }
        YUAN_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1));
        return fn.callable().fn(args);
      }
      case ExprKind::kFilter: {
        YUAN_ASSIGN_OR_RETURN(Value input, Eval(*e.kids[0]));
        YUAN_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1));
        return ApplyFilter(e.name, input, args);
      }
      case ExprKind::kTest: {
        YUAN_ASSIGN_OR_RETURN(Value input, Eval(*e.kids[0]));
        YUAN_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1));
        YUAN_ASSIGN_OR_RETURN(bool r, ApplyTest(e.name, input, args));
        return Value::Bool(r != e.negated);
      }
      case ExprKind::kUnary: {
        YUAN_ASSIGN_OR_RETURN(Value v, Eval(*e.kids[0]));
        if (e.name == "not") return Value::Bool(!v.Truthy());
        if (v.is_undefined()) return UndefinedError(v);
        if (!v.is_number()) {
          return absl::InvalidArgumentError(
              absl::StrCat("bad operand type for unary ", e.name, ": '", v.TypeName(), "'"));
        }
        if (e.name == "+") return v.is_float() ? v : Value::Int(v.as_int());
        return v.is_float() ? Value::Float(-v.as_double()) : Value::Int(-v.as_int());
      }
      case ExprKind::kBinary: {
        YUAN_ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
        YUAN_ASSIGN_OR_RETURN(Value b, Eval(*e.kids[1]));
        const std::string& op = e.name;
        if (op == "~") {
          std::string s = ToStr(a) + ToStr(b);
          if (s.size() > limits_.max_output_bytes)
            return absl::ResourceExhaustedError("string too long");
          return Value::String(std::move(s));
        }
        if (op == "==" || op == "!=" || op == "<" || op == ">" || op == "<=" || op == ">=" ||
            op == "in" || op == "not in") {
          return Compare(op, a, b);
        }
        if (op == "+" && a.is_string() && b.is_string() &&
            a.str().size() + b.str().size() > limits_.max_output_bytes) {
          return absl::ResourceExhaustedError("string too long");
        }
        return Arithmetic(op, a, b);
      }
      case ExprKind::kAnd: {
        YUAN_ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
        if (!a.Truthy()) return a;
        return Eval(*e.kids[1]);
      }
      case ExprKind::kOr: {
        YUAN_ASSIGN_OR_RETURN(Value a, Eval(*e.kids[0]));
        if (a.Truthy()) return a;
        return Eval(*e.kids[1]);
      }
      case ExprKind::kCondition: {
        YUAN_ASSIGN_OR_RETURN(Value c, Eval(*e.kids[0]));
        if (c.Truthy()) return Eval(*e.kids[1]);
        if (e.kids[2] == nullptr)
          return Value::Undefined(
              "the inline if expression evaluated to false and no else section was defined");
        return Eval(*e.kids[2]);
      }
    }
    return absl::InternalError("unknown expression kind");
  }

  const TemplateLimits& limits_;
  Dict globals_;
  std::vector<Dict> scopes_;
  size_t frame_base_ = 0;
  std::string* out_ = nullptr;
  int64_t steps_ = 0;
  int call_depth_ = 0;
  Flow flow_ = Flow::kNormal;
};

}  // namespace

absl::StatusOr<Template> Template::Parse(std::string_view source, const TemplateLimits& limits) {
  YUAN_ASSIGN_OR_RETURN(std::unique_ptr<Node> root, ParseTemplate(source, limits));
  Template t;
  t.root_ = std::shared_ptr<const Node>(std::move(root));
  t.limits_ = limits;
  return t;
}

absl::StatusOr<std::string> Template::Render(const Dict& context) const {
  if (root_ == nullptr) return absl::FailedPreconditionError("template was not parsed");
  Renderer renderer(limits_, context);
  return renderer.Run(*root_);
}

}  // namespace yuan::jinja

// Syntax tree of the Jinja subset, produced by jinja_parser.cpp and walked by
// jinja_interp.cpp. Plain structs: one node kind per construct, children owned.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/chat/jinja_value.h"

namespace yuan::jinja {

enum class ExprKind {
  kLiteral,    // value
  kName,       // name
  kList,       // [kids...]
  kTuple,      // (kids...), printed as a list
  kDict,       // {kids[0]: kids[1], ...}
  kGetAttr,    // kids[0].name
  kGetItem,    // kids[0][kids[1]]
  kSlice,      // kids[0][kids[1]:kids[2]:kids[3]] (absent parts are null)
  kCall,       // kids[0](kids[1..]); the last kwarg_names.size() args are keyword
  kFilter,     // kids[0] | name(kids[1..]); kwarg_names as for kCall
  kTest,       // kids[0] is [not] name(kids[1..]); negated
  kUnary,      // op kids[0]: "-", "+", "not"
  kBinary,     // kids[0] op kids[1]: + - * / // % ** ~ == != < > <= >= in "not in"
  kAnd,        // kids[0] and kids[1]
  kOr,         // kids[0] or kids[1]
  kCondition,  // kids[1] if kids[0] else kids[2] (kids[2] may be null)
};

struct Expr {
  ExprKind kind;
  int line = 0;
  std::string name;  // variable, attribute, filter, test or operator
  Value value;       // kLiteral
  bool negated = false;
  std::vector<std::unique_ptr<Expr>> kids;
  std::vector<std::string> kwarg_names;
};

enum class NodeKind {
  kText,      // text
  kOutput,    // {{ expr }}
  kIf,        // branches: (cond, body)...; else_body
  kFor,       // for targets in expr [if filter] body [else else_body]
  kSet,       // set targets = expr  | set ns.attr = expr (attr non-empty)
  kSetBlock,  // set targets %}body{% endset
  kMacro,     // macro name(params=defaults) body
  kBreak,
  kContinue,
  kBlockGroup,  // body rendered as is ({% generation %}, the template root)
};

struct Node;
using NodeList = std::vector<std::unique_ptr<Node>>;

struct IfBranch {
  std::unique_ptr<Expr> condition;
  NodeList body;
};

struct Node {
  NodeKind kind;
  int line = 0;
  std::string text;                  // kText; macro name
  std::vector<std::string> targets;  // for / set targets; macro parameter names
  std::string attr;                  // kSet on a namespace attribute: targets[0].attr
  std::unique_ptr<Expr> expr;        // output, for iterable, set value
  std::unique_ptr<Expr> filter;      // for ... if filter
  std::vector<IfBranch> branches;    // kIf
  NodeList body;
  NodeList else_body;
  std::vector<std::unique_ptr<Expr>> defaults;  // macro parameter defaults (null: none)
};

}  // namespace yuan::jinja

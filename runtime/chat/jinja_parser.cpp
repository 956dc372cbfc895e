#include "runtime/chat/jinja_parser.h"

#include <string>
#include <utility>
#include <vector>

#include "runtime/chat/jinja_builtins.h"
#include "runtime/chat/jinja_lexer.h"
#include "runtime/core/status.h"

namespace yuan::jinja {
namespace {

// --------------------------------------------------------------- parser ----

const char* const kUnsupportedTags[] = {"include", "extends", "import", "from",
                                        "block",   "call",    "with",   "autoescape",
                                        "do",      "filter",  "trans",  "pluralize"};

class Parser {
 public:
  Parser(std::vector<Token> tokens, const TemplateLimits& limits)
      : t_(std::move(tokens)), limits_(limits) {}

  absl::StatusOr<std::unique_ptr<Node>> ParseRoot() {
    auto root = std::make_unique<Node>();
    root->kind = NodeKind::kBlockGroup;
    std::string end;
    YUAN_ASSIGN_OR_RETURN(root->body, ParseBody({}, &end));
    return root;
  }

 private:
  const Token& Cur() const { return t_[p_]; }
  const Token& Peek(size_t k = 1) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  void Next() {
    if (p_ + 1 < t_.size()) ++p_;
  }
  bool IsOp(std::string_view op) const { return Cur().kind == Tok::kOp && Cur().text == op; }
  bool IsName(std::string_view n) const { return Cur().kind == Tok::kName && Cur().text == n; }
  std::string Describe(const Token& t) const {
    switch (t.kind) {
      case Tok::kEof:
        return "end of template";
      case Tok::kBlockEnd:
        return "end of statement block";
      case Tok::kVarEnd:
        return "end of print statement";
      case Tok::kData:
        return "template data";
      case Tok::kString:
        return "string literal";
      default:
        return "'" + t.text + "'";
    }
  }
  absl::Status Unexpected(std::string_view expected) const {
    return SyntaxError(Cur().line,
                       absl::StrCat("expected ", Sv(expected), ", got ", Describe(Cur())));
  }
  absl::Status ExpectOp(std::string_view op) {
    if (!IsOp(op)) return Unexpected(absl::StrCat("'", Sv(op), "'"));
    Next();
    return absl::OkStatus();
  }
  absl::Status ExpectBlockEnd() {
    if (Cur().kind != Tok::kBlockEnd) return Unexpected("end of statement block '%}'");
    Next();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectName() {
    if (Cur().kind != Tok::kName) return Unexpected("a name");
    std::string n = Cur().text;
    Next();
    return n;
  }

  // RAII-free depth guard: call Enter() / Leave() around recursive parses.
  absl::Status Enter() {
    if (++depth_ > limits_.max_nesting) {
      return absl::ResourceExhaustedError(absl::StrCat("chat template line ", Cur().line,
                                                       ": nesting deeper than the limit of ",
                                                       limits_.max_nesting));
    }
    return absl::OkStatus();
  }
  void Leave() { --depth_; }

  // Parses nodes until a `{% <one of ends> %}` tag (consumed up to its name;
  // *found gets the name) or, with no ends, until the end of the template.
  absl::StatusOr<NodeList> ParseBody(std::initializer_list<std::string_view> ends,
                                     std::string* found) {
    YUAN_RETURN_IF_ERROR(Enter());
    NodeList body;
    while (true) {
      const Token& tok = Cur();
      if (tok.kind == Tok::kEof) {
        if (ends.size() == 0) break;
        std::string list;
        for (std::string_view e : ends)
          absl::StrAppend(&list, list.empty() ? "" : " or ", "'", Sv(e), "'");
        return SyntaxError(tok.line, absl::StrCat("unexpected end of template, expected ", list));
      }
      if (tok.kind == Tok::kData) {
        auto n = std::make_unique<Node>();
        n->kind = NodeKind::kText;
        n->line = tok.line;
        n->text = tok.text;
        body.push_back(std::move(n));
        Next();
        continue;
      }
      if (tok.kind == Tok::kVarBegin) {
        auto n = std::make_unique<Node>();
        n->kind = NodeKind::kOutput;
        n->line = tok.line;
        Next();
        YUAN_ASSIGN_OR_RETURN(n->expr, ParseExpression());
        if (Cur().kind != Tok::kVarEnd) return Unexpected("end of print statement '}}'");
        Next();
        body.push_back(std::move(n));
        continue;
      }
      if (tok.kind != Tok::kBlockBegin) return Unexpected("template data or a tag");
      Next();
      if (Cur().kind != Tok::kName) return Unexpected("a statement name");
      const std::string name = Cur().text;
      for (std::string_view e : ends) {
        if (name == e) {
          *found = name;
          Next();
          Leave();
          return body;
        }
      }
      YUAN_ASSIGN_OR_RETURN(std::unique_ptr<Node> node, ParseStatement(name));
      body.push_back(std::move(node));
    }
    Leave();
    return body;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseStatement(const std::string& name) {
    int line = Cur().line;
    auto n = std::make_unique<Node>();
    n->line = line;
    if (name == "if") {
      Next();
      n->kind = NodeKind::kIf;
      while (true) {
        IfBranch branch;
        YUAN_ASSIGN_OR_RETURN(branch.condition, ParseExpression());
        YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
        std::string end;
        YUAN_ASSIGN_OR_RETURN(branch.body, ParseBody({"elif", "else", "endif"}, &end));
        n->branches.push_back(std::move(branch));
        if (end == "elif") continue;
        if (end == "else") {
          YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
          YUAN_ASSIGN_OR_RETURN(n->else_body, ParseBody({"endif"}, &end));
        }
        break;
      }
      YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
      return n;
    }
    if (name == "for") {
      Next();
      n->kind = NodeKind::kFor;
      YUAN_ASSIGN_OR_RETURN(n->targets, ParseTargets());
      if (!IsName("in")) return Unexpected("'in'");
      Next();
      // The iterable has no inline if/else: a trailing `if` filters the loop.
      YUAN_ASSIGN_OR_RETURN(n->expr, ParseOr());
      if (IsName("if")) {
        Next();
        YUAN_ASSIGN_OR_RETURN(n->filter, ParseExpression());
      }
      if (IsName("recursive")) return Unsupported("recursive for loops", Cur().line);
      YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
      ++loop_depth_;
      std::string end;
      YUAN_ASSIGN_OR_RETURN(n->body, ParseBody({"else", "endfor"}, &end));
      --loop_depth_;
      if (end == "else") {
        YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
        YUAN_ASSIGN_OR_RETURN(n->else_body, ParseBody({"endfor"}, &end));
      }
      YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
      return n;
    }
    if (name == "set") {
      Next();
      YUAN_ASSIGN_OR_RETURN(std::string first, ExpectName());
      if (IsOp(".")) {
        Next();
        YUAN_ASSIGN_OR_RETURN(n->attr, ExpectName());
        n->targets.push_back(first);
      } else {
        n->targets.push_back(first);
        while (IsOp(",")) {
          Next();
          YUAN_ASSIGN_OR_RETURN(std::string more, ExpectName());
          n->targets.push_back(more);
        }
      }
      if (IsOp("=")) {
        Next();
        n->kind = NodeKind::kSet;
        YUAN_ASSIGN_OR_RETURN(n->expr, ParseExpression());
        YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
        return n;
      }
      if (!n->attr.empty() || n->targets.size() != 1) return Unexpected("'='");
      if (IsOp("|")) return Unsupported("filtered block set ({% set x | filter %})", Cur().line);
      YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
      n->kind = NodeKind::kSetBlock;
      std::string end;
      YUAN_ASSIGN_OR_RETURN(n->body, ParseBody({"endset"}, &end));
      YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
      return n;
    }
    if (name == "macro") {
      Next();
      n->kind = NodeKind::kMacro;
      YUAN_ASSIGN_OR_RETURN(n->text, ExpectName());
      YUAN_RETURN_IF_ERROR(ExpectOp("("));
      while (!IsOp(")")) {
        YUAN_ASSIGN_OR_RETURN(std::string param, ExpectName());
        n->targets.push_back(param);
        std::unique_ptr<Expr> def;
        if (IsOp("=")) {
          Next();
          YUAN_ASSIGN_OR_RETURN(def, ParseExpression());
        }
        n->defaults.push_back(std::move(def));
        if (!IsOp(",")) break;
        Next();
      }
      YUAN_RETURN_IF_ERROR(ExpectOp(")"));
      YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
      int saved_loops = loop_depth_;
      loop_depth_ = 0;
      std::string end;
      YUAN_ASSIGN_OR_RETURN(n->body, ParseBody({"endmacro"}, &end));
      loop_depth_ = saved_loops;
      if (Cur().kind == Tok::kName) Next();  // {% endmacro name %}
      YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
      return n;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0)
        return SyntaxError(line, absl::StrCat("'", name, "' outside of a for loop"));
      Next();
      n->kind = name == "break" ? NodeKind::kBreak : NodeKind::kContinue;
      YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
      return n;
    }
    if (name == "generation") {  // HF's AssistantTracker: renders its body unchanged
      Next();
      YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
      n->kind = NodeKind::kBlockGroup;
      std::string end;
      YUAN_ASSIGN_OR_RETURN(n->body, ParseBody({"endgeneration"}, &end));
      YUAN_RETURN_IF_ERROR(ExpectBlockEnd());
      return n;
    }
    for (const char* tag : kUnsupportedTags) {
      if (name == tag) return Unsupported(absl::StrCat("'{% ", name, " %}'"), line);
    }
    return SyntaxError(line, absl::StrCat("unknown tag '", name, "'"));
  }

  absl::Status Unsupported(std::string_view what, int line) const {
    return absl::UnimplementedError(
        absl::StrCat("chat template line ", line, ": unsupported Jinja construct ", Sv(what)));
  }

  absl::StatusOr<std::vector<std::string>> ParseTargets() {
    std::vector<std::string> names;
    bool paren = IsOp("(");
    if (paren) Next();
    while (true) {
      YUAN_ASSIGN_OR_RETURN(std::string n, ExpectName());
      names.push_back(n);
      if (!IsOp(",")) break;
      Next();
      if (paren && IsOp(")")) break;
    }
    if (paren) YUAN_RETURN_IF_ERROR(ExpectOp(")"));
    return names;
  }

  // ---- expressions (jinja2's precedence, lowest first) ----

  std::unique_ptr<Expr> Make(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParseExpression() {
    YUAN_RETURN_IF_ERROR(Enter());
    YUAN_ASSIGN_OR_RETURN(auto expr, ParseOr());
    while (IsName("if")) {
      int line = Cur().line;
      Next();
      auto cond = Make(ExprKind::kCondition, line);
      YUAN_ASSIGN_OR_RETURN(auto test, ParseOr());
      std::unique_ptr<Expr> otherwise;
      if (IsName("else")) {
        Next();
        YUAN_ASSIGN_OR_RETURN(otherwise, ParseExpression());
      }
      cond->kids.push_back(std::move(test));
      cond->kids.push_back(std::move(expr));
      cond->kids.push_back(std::move(otherwise));
      expr = std::move(cond);
    }
    Leave();
    return expr;
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParseOr() {
    YUAN_ASSIGN_OR_RETURN(auto left, ParseAnd());
    while (IsName("or")) {
      auto e = Make(ExprKind::kOr, Cur().line);
      Next();
      YUAN_ASSIGN_OR_RETURN(auto right, ParseAnd());
      e->kids.push_back(std::move(left));
      e->kids.push_back(std::move(right));
      left = std::move(e);
    }
    return left;
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParseAnd() {
    YUAN_ASSIGN_OR_RETURN(auto left, ParseNot());
    while (IsName("and")) {
      auto e = Make(ExprKind::kAnd, Cur().line);
      Next();
      YUAN_ASSIGN_OR_RETURN(auto right, ParseNot());
      e->kids.push_back(std::move(left));
      e->kids.push_back(std::move(right));
      left = std::move(e);
    }
    return left;
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParseNot() {
    if (IsName("not")) {
      auto e = Make(ExprKind::kUnary, Cur().line);
      e->name = "not";
      Next();
      YUAN_RETURN_IF_ERROR(Enter());
      YUAN_ASSIGN_OR_RETURN(auto operand, ParseNot());
      Leave();
      e->kids.push_back(std::move(operand));
      return e;
    }
    return ParseCompare();
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParseCompare() {
    YUAN_ASSIGN_OR_RETURN(auto left, ParseMath1());
    int ops = 0;
    while (true) {
      std::string op;
      if (Cur().kind == Tok::kOp &&
          (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" || Cur().text == ">" ||
           Cur().text == "<=" || Cur().text == ">=")) {
        op = Cur().text;
        Next();
      } else if (IsName("in")) {
        op = "in";
        Next();
      } else if (IsName("not") && Peek().kind == Tok::kName && Peek().text == "in") {
        op = "not in";
        Next();
        Next();
      } else {
        break;
      }
      if (++ops > 1) return Unsupported("chained comparison (a < b < c)", Cur().line);
      auto e = Make(ExprKind::kBinary, Cur().line);
      e->name = op;
      YUAN_ASSIGN_OR_RETURN(auto right, ParseMath1());
      e->kids.push_back(std::move(left));
      e->kids.push_back(std::move(right));
      left = std::move(e);
    }
    return left;
  }

  absl::StatusOr<std::unique_ptr<Expr>> Binary(std::unique_ptr<Expr> left,
                                               std::unique_ptr<Expr> right, const std::string& op,
                                               int line) {
    auto e = Make(ExprKind::kBinary, line);
    e->name = op;
    e->kids.push_back(std::move(left));
    e->kids.push_back(std::move(right));
    return e;
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParseMath1() {
    YUAN_ASSIGN_OR_RETURN(auto left, ParseConcat());
    while (IsOp("+") || IsOp("-")) {
      std::string op = Cur().text;
      int line = Cur().line;
      Next();
      YUAN_ASSIGN_OR_RETURN(auto right, ParseConcat());
      YUAN_ASSIGN_OR_RETURN(left, Binary(std::move(left), std::move(right), op, line));
    }
    return left;
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParseConcat() {
    YUAN_ASSIGN_OR_RETURN(auto left, ParseMath2());
    while (IsOp("~")) {
      int line = Cur().line;
      Next();
      YUAN_ASSIGN_OR_RETURN(auto right, ParseMath2());
      YUAN_ASSIGN_OR_RETURN(left, Binary(std::move(left), std::move(right), "~", line));
    }
    return left;
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParseMath2() {
    YUAN_ASSIGN_OR_RETURN(auto left, ParsePow());
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      std::string op = Cur().text;
      int line = Cur().line;
      Next();
      YUAN_ASSIGN_OR_RETURN(auto right, ParsePow());
      YUAN_ASSIGN_OR_RETURN(left, Binary(std::move(left), std::move(right), op, line));
    }
    return left;
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParsePow() {
    YUAN_ASSIGN_OR_RETURN(auto left, ParseUnary(true));
    while (IsOp("**")) {
      int line = Cur().line;
      Next();
      YUAN_ASSIGN_OR_RETURN(auto right, ParseUnary(true));
      YUAN_ASSIGN_OR_RETURN(left, Binary(std::move(left), std::move(right), "**", line));
    }
    return left;
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParseUnary(bool with_filter) {
    YUAN_RETURN_IF_ERROR(Enter());
    std::unique_ptr<Expr> node;
    if (IsOp("-") || IsOp("+")) {
      auto e = Make(ExprKind::kUnary, Cur().line);
      e->name = Cur().text;
      Next();
      YUAN_ASSIGN_OR_RETURN(auto operand, ParseUnary(false));
      e->kids.push_back(std::move(operand));
      node = std::move(e);
    } else {
      YUAN_ASSIGN_OR_RETURN(node, ParsePrimary());
    }
    YUAN_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
    if (with_filter) {
      YUAN_ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
    }
    Leave();
    return node;
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParsePrimary() {
    const Token& tok = Cur();
    int line = tok.line;
    if (tok.kind == Tok::kName) {
      auto e = Make(ExprKind::kLiteral, line);
      if (tok.text == "true" || tok.text == "True") {
        e->value = Value::Bool(true);
      } else if (tok.text == "false" || tok.text == "False") {
        e->value = Value::Bool(false);
      } else if (tok.text == "none" || tok.text == "None") {
        e->value = Value::None();
      } else {
        e->kind = ExprKind::kName;
        e->name = tok.text;
      }
      Next();
      return e;
    }
    if (tok.kind == Tok::kString) {
      std::string s;
      while (Cur().kind == Tok::kString) {  // adjacent literals concatenate
        s += Cur().text;
        Next();
      }
      auto e = Make(ExprKind::kLiteral, line);
      e->value = Value::String(std::move(s));
      return e;
    }
    if (tok.kind == Tok::kInt || tok.kind == Tok::kFloat) {
      auto e = Make(ExprKind::kLiteral, line);
      e->value = tok.kind == Tok::kInt ? Value::Int(tok.i) : Value::Float(tok.f);
      Next();
      return e;
    }
    if (IsOp("(")) {
      Next();
      if (IsOp(")")) {
        Next();
        return Make(ExprKind::kTuple, line);
      }
      YUAN_ASSIGN_OR_RETURN(auto first, ParseExpression());
      if (IsOp(")")) {
        Next();
        return first;
      }
      auto tuple = Make(ExprKind::kTuple, line);
      tuple->kids.push_back(std::move(first));
      while (IsOp(",")) {
        Next();
        if (IsOp(")")) break;
        YUAN_ASSIGN_OR_RETURN(auto item, ParseExpression());
        tuple->kids.push_back(std::move(item));
      }
      YUAN_RETURN_IF_ERROR(ExpectOp(")"));
      return tuple;
    }
    if (IsOp("[")) {
      Next();
      auto list = Make(ExprKind::kList, line);
      while (!IsOp("]")) {
        YUAN_ASSIGN_OR_RETURN(auto item, ParseExpression());
        list->kids.push_back(std::move(item));
        if (!IsOp(",")) break;
        Next();
      }
      YUAN_RETURN_IF_ERROR(ExpectOp("]"));
      return list;
    }
    if (IsOp("{")) {
      Next();
      auto dict = Make(ExprKind::kDict, line);
      while (!IsOp("}")) {
        YUAN_ASSIGN_OR_RETURN(auto key, ParseExpression());
        YUAN_RETURN_IF_ERROR(ExpectOp(":"));
        YUAN_ASSIGN_OR_RETURN(auto value, ParseExpression());
        dict->kids.push_back(std::move(key));
        dict->kids.push_back(std::move(value));
        if (!IsOp(",")) break;
        Next();
      }
      YUAN_RETURN_IF_ERROR(ExpectOp("}"));
      return dict;
    }
    return Unexpected("an expression");
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParsePostfix(std::unique_ptr<Expr> node) {
    while (true) {
      int line = Cur().line;
      if (IsOp(".")) {
        Next();
        if (Cur().kind == Tok::kName) {
          auto e = Make(ExprKind::kGetAttr, line);
          e->name = Cur().text;
          Next();
          e->kids.push_back(std::move(node));
          node = std::move(e);
        } else if (Cur().kind == Tok::kInt) {
          auto e = Make(ExprKind::kGetItem, line);
          auto key = Make(ExprKind::kLiteral, line);
          key->value = Value::Int(Cur().i);
          Next();
          e->kids.push_back(std::move(node));
          e->kids.push_back(std::move(key));
          node = std::move(e);
        } else {
          return Unexpected("an attribute name");
        }
      } else if (IsOp("[")) {
        Next();
        YUAN_ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node), line));
      } else if (IsOp("(")) {
        auto call = Make(ExprKind::kCall, line);
        call->kids.push_back(std::move(node));
        YUAN_RETURN_IF_ERROR(ParseCallArgs(call.get()));
        node = std::move(call);
      } else {
        return node;
      }
    }
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParseSubscript(std::unique_ptr<Expr> node, int line) {
    std::unique_ptr<Expr> parts[3];
    bool is_slice = false;
    if (!IsOp(":")) {
      YUAN_ASSIGN_OR_RETURN(parts[0], ParseExpression());
    }
    if (IsOp(":")) {
      is_slice = true;
      Next();
      if (!IsOp("]") && !IsOp(":")) {
        YUAN_ASSIGN_OR_RETURN(parts[1], ParseExpression());
      }
      if (IsOp(":")) {
        Next();
        if (!IsOp("]")) {
          YUAN_ASSIGN_OR_RETURN(parts[2], ParseExpression());
        }
      }
    }
    if (IsOp(",")) return Unsupported("tuple subscripts (x[a, b])", Cur().line);
    YUAN_RETURN_IF_ERROR(ExpectOp("]"));
    auto e = Make(is_slice ? ExprKind::kSlice : ExprKind::kGetItem, line);
    e->kids.push_back(std::move(node));
    if (is_slice) {
      for (auto& part : parts) e->kids.push_back(std::move(part));
    } else {
      e->kids.push_back(std::move(parts[0]));
    }
    return e;
  }

  // `(` args `)` appended to e->kids after what is already there.
  absl::Status ParseCallArgs(Expr* e) {
    YUAN_RETURN_IF_ERROR(ExpectOp("("));
    while (!IsOp(")")) {
      if (IsOp("*") || IsOp("**")) return Unsupported("*args / **kwargs in calls", Cur().line);
      if (Cur().kind == Tok::kName && Peek().kind == Tok::kOp && Peek().text == "=") {
        e->kwarg_names.push_back(Cur().text);
        Next();
        Next();
      } else if (!e->kwarg_names.empty()) {
        return SyntaxError(Cur().line, "positional argument follows keyword argument");
      }
      YUAN_ASSIGN_OR_RETURN(auto arg, ParseExpression());
      e->kids.push_back(std::move(arg));
      if (!IsOp(",")) break;
      Next();
    }
    return ExpectOp(")");
  }

  absl::StatusOr<std::string> ParseDottedName() {
    YUAN_ASSIGN_OR_RETURN(std::string name, ExpectName());
    while (IsOp(".")) {
      Next();
      YUAN_ASSIGN_OR_RETURN(std::string more, ExpectName());
      name += "." + more;
    }
    return name;
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParseFilterExpr(std::unique_ptr<Expr> node) {
    while (true) {
      int line = Cur().line;
      if (IsOp("|")) {
        Next();
        auto f = Make(ExprKind::kFilter, line);
        YUAN_ASSIGN_OR_RETURN(f->name, ParseDottedName());
        if (!IsFilter(f->name)) {
          if (IsUnsupportedJinjaFilter(f->name)) {
            return Unsupported(absl::StrCat("filter '", f->name, "'"), line);
          }
          return absl::InvalidArgumentError(
              absl::StrCat("chat template line ", line, ": unknown filter '", f->name, "'"));
        }
        f->kids.push_back(std::move(node));
        if (IsOp("(")) YUAN_RETURN_IF_ERROR(ParseCallArgs(f.get()));
        node = std::move(f);
      } else if (IsName("is")) {
        Next();
        auto t = Make(ExprKind::kTest, line);
        if (IsName("not")) {
          t->negated = true;
          Next();
        }
        YUAN_ASSIGN_OR_RETURN(t->name, ParseDottedName());
        if (!IsTest(t->name)) {
          return absl::InvalidArgumentError(
              absl::StrCat("chat template line ", line, ": unknown test '", t->name, "'"));
        }
        t->kids.push_back(std::move(node));
        const Token& c = Cur();
        if (IsOp("(")) {
          YUAN_RETURN_IF_ERROR(ParseCallArgs(t.get()));
        } else if ((c.kind == Tok::kName || c.kind == Tok::kString || c.kind == Tok::kInt ||
                    c.kind == Tok::kFloat || IsOp("[") || IsOp("{")) &&
                   !IsName("else") && !IsName("or") && !IsName("and")) {
          if (IsName("is")) return SyntaxError(c.line, "you cannot chain multiple tests with 'is'");
          YUAN_ASSIGN_OR_RETURN(auto arg, ParsePrimary());
          YUAN_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
          t->kids.push_back(std::move(arg));
        }
        node = std::move(t);
      } else if (IsOp("(")) {
        auto call = Make(ExprKind::kCall, line);
        call->kids.push_back(std::move(node));
        YUAN_RETURN_IF_ERROR(ParseCallArgs(call.get()));
        node = std::move(call);
      } else {
        return node;
      }
    }
  }

  std::vector<Token> t_;
  size_t p_ = 0;
  const TemplateLimits& limits_;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Node>> ParseTemplate(std::string_view source,
                                                    const TemplateLimits& limits) {
  YUAN_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source));
  Parser parser(std::move(tokens), limits);
  return parser.ParseRoot();
}

}  // namespace yuan::jinja

// GBNF text -> GrammarBuilder. A recursive-descent parser over the syntax of
// llama.cpp's grammars/README.md (written from that description):
//
//   grammar   := (rule | comment | blank line)*
//   rule      := name "::=" alternates (newline | end)
//   alternates:= sequence ("|" sequence)*
//   sequence  := (item repetition*)*          -- a newline ends it outside ( )
//   item      := "literal" | [class] | [^class] | . | name | "(" alternates ")"
//   repetition:= * | + | ? | {m} | {m,} | {m,n}
//
// One leniency beyond llama.cpp: a line whose first non-blank character is
// "|" continues the previous rule.
#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/grammar/grammar.h"
#include "runtime/grammar/grammar_builder.h"

namespace yuan::grammar {
namespace {

constexpr int kMaxNesting = 256;  // ( ) depth, so hostile input cannot overflow the C++ stack

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_';
}

class Parser {
 public:
  explicit Parser(std::string_view src) : src_(src) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src.size(); ++i) {
      if (src[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  absl::Status ParseAll() {
    while (true) {
      SkipSpace(/*newlines=*/true);
      if (AtEnd()) break;
      if (absl::Status s = ParseRule(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  GrammarBuilder& builder() { return b_; }

 private:
  // ---- positions and errors ----
  bool AtEnd() const { return pos_ >= src_.size(); }
  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0';
  }
  void LineCol(size_t at, int* line, int* col) const {
    // line_starts_ is sorted: the line is the last start <= at.
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), at);
    const size_t index = static_cast<size_t>(it - line_starts_.begin()) - 1;
    *line = static_cast<int>(index) + 1;
    *col = static_cast<int>(at - line_starts_[index]) + 1;
  }
  absl::Status Error(size_t at, std::string_view what) const {
    int line, col;
    LineCol(at, &line, &col);
    return absl::InvalidArgumentError(absl::StrFormat("line %d, column %d: %s", line, col, what));
  }

  // Spaces, tabs and # comments; newlines too when `newlines`.
  void SkipSpace(bool newlines) {
    while (!AtEnd()) {
      const char c = Peek();
      if (c == ' ' || c == '\t') {
        ++pos_;
      } else if (c == '#') {
        while (!AtEnd() && Peek() != '\n' && Peek() != '\r') ++pos_;
      } else if (newlines && (c == '\n' || c == '\r')) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  // ---- rules ----
  absl::Status ParseRule() {
    const size_t start = pos_;
    const size_t name_begin = pos_;
    while (!AtEnd() && IsNameChar(Peek())) ++pos_;
    if (pos_ == name_begin) return Error(pos_, "expected a rule name");
    const std::string_view name = src_.substr(name_begin, pos_ - name_begin);
    SkipSpace(false);
    if (src_.substr(pos_, 3) != "::=") return Error(pos_, "expected '::=' after the rule name");
    pos_ += 3;
    SkipSpace(true);
    int line, col;
    LineCol(start, &line, &col);
    const int32_t index = b_.RuleIndex(name, line, col);
    if (b_.rule(index).defined) {
      return Error(start, absl::StrFormat("rule '%s' is defined twice", name));
    }
    b_.rule(index).defined = true;
    b_.rule(index).line = line;
    b_.rule(index).col = col;
    std::vector<Sequence> alts;
    if (absl::Status s = ParseAlternates(std::string(name), /*nested=*/false, 0, &alts); !s.ok()) {
      return s;
    }
    b_.rule(index).alts = std::move(alts);
    if (!AtEnd() && Peek() != '\n' && Peek() != '\r') {
      if (Peek() == ')') return Error(pos_, "unmatched ')'");
      return Error(pos_, absl::StrFormat("unexpected '%c'", Peek()));
    }
    return absl::OkStatus();
  }

  // After a sequence outside parentheses: does the rule continue on a line
  // starting with '|'? Moves past the blank space when it does.
  bool ContinuationBar() {
    size_t p = pos_;
    bool newline = false;
    while (p < src_.size()) {
      const char c = src_[p];
      if (c == ' ' || c == '\t' || c == '\r') {
        ++p;
      } else if (c == '\n') {
        newline = true;
        ++p;
      } else if (c == '#') {
        while (p < src_.size() && src_[p] != '\n') ++p;
      } else {
        break;
      }
    }
    if (newline && p < src_.size() && src_[p] == '|') {
      pos_ = p;
      return true;
    }
    return false;
  }

  absl::Status ParseAlternates(const std::string& rule_name, bool nested, int depth,
                               std::vector<Sequence>* alts) {
    if (depth > kMaxNesting) return Error(pos_, "parentheses nested too deeply");
    while (true) {
      Sequence seq;
      if (absl::Status s = ParseSequence(rule_name, nested, depth, &seq); !s.ok()) return s;
      alts->push_back(std::move(seq));
      if (Peek() == '|' || (!nested && ContinuationBar())) {
        ++pos_;
        SkipSpace(true);
        continue;
      }
      return absl::OkStatus();
    }
  }

  absl::Status ParseSequence(const std::string& rule_name, bool nested, int depth, Sequence* seq) {
    while (!AtEnd()) {
      const char c = Peek();
      if (c == '|' || c == ')' || c == '\n' || c == '\r') break;
      const size_t item_pos = pos_;
      Sequence item;
      if (absl::Status s = ParseItem(rule_name, nested, depth, &item); !s.ok()) return s;
      SkipSpace(nested);
      // Postfix repetition operators, possibly several ("a?*" is legal, if odd).
      while (Peek() == '*' || Peek() == '+' || Peek() == '?' || Peek() == '{') {
        int min = 0, max = -1;  // max -1: unbounded
        const size_t op_pos = pos_;
        const char op = Peek();
        ++pos_;
        if (op == '+') {
          min = 1;
        } else if (op == '?') {
          max = 1;
        } else if (op == '{') {
          if (absl::Status s = ParseBraces(&min, &max); !s.ok()) return s;
        }
        if (absl::Status s = Repeat(rule_name, op_pos, min, max, &item); !s.ok()) return s;
        SkipSpace(nested);
        (void)item_pos;
      }
      b_.CountSymbols(item.size());
      if (b_.num_symbols() > kMaxGrammarSymbols) {
        return Error(item_pos, "grammar too large (repetitions expand past the symbol limit)");
      }
      seq->insert(seq->end(), item.begin(), item.end());
    }
    return absl::OkStatus();
  }

  absl::Status ParseInt(int* out) {
    SkipSpace(true);
    const size_t begin = pos_;
    long long v = 0;
    while (Peek() >= '0' && Peek() <= '9') {
      v = v * 10 + (Peek() - '0');
      if (v > kMaxRepetition) return Error(begin, absl::StrFormat("repetition count over %d", kMaxRepetition));
      ++pos_;
    }
    if (pos_ == begin) return Error(pos_, "expected a number in { }");
    *out = static_cast<int>(v);
    SkipSpace(true);
    return absl::OkStatus();
  }

  // After '{': "m}", "m,}" or "m,n}".
  absl::Status ParseBraces(int* min, int* max) {
    if (absl::Status s = ParseInt(min); !s.ok()) return s;
    if (Peek() == '}') {
      ++pos_;
      *max = *min;
      return absl::OkStatus();
    }
    if (Peek() != ',') return Error(pos_, "expected ',' or '}' in a repetition");
    ++pos_;
    SkipSpace(true);
    if (Peek() == '}') {
      ++pos_;
      *max = -1;
      return absl::OkStatus();
    }
    if (absl::Status s = ParseInt(max); !s.ok()) return s;
    if (Peek() != '}') return Error(pos_, "expected '}' to close a repetition");
    ++pos_;
    if (*max < *min) return Error(pos_ - 1, "repetition {m,n} with n < m");
    return absl::OkStatus();
  }

  // A sequence as one symbol: itself when it is one, else a helper rule.
  BuilderSymbol AsSymbol(const std::string& rule_name, size_t at, const Sequence& seq) {
    if (seq.size() == 1) return seq[0];
    int line, col;
    LineCol(at, &line, &col);
    const int32_t r = b_.NewHelperRule(rule_name, line, col);
    b_.rule(r).alts = {seq};
    b_.CountSymbols(seq.size() + 1);
    return {true, static_cast<uint32_t>(r)};
  }

  // Rewrites `item` as item{min,max} (max -1: unbounded) with helper rules:
  //   x*      -> S ::= x S | ""
  //   x{2,4}  -> x x O2,  O2 ::= x O1 | "",  O1 ::= x | ""
  absl::Status Repeat(const std::string& rule_name, size_t at, int min, int max, Sequence* item) {
    if (item->empty()) return absl::OkStatus();  // ""* is ""
    const BuilderSymbol x = AsSymbol(rule_name, at, *item);
    int line, col;
    LineCol(at, &line, &col);
    Sequence out;
    if (static_cast<size_t>(min) + b_.num_symbols() > kMaxGrammarSymbols) {
      return Error(at, "grammar too large (repetitions expand past the symbol limit)");
    }
    for (int i = 0; i < min; ++i) out.push_back(x);
    if (max < 0) {
      const int32_t star = b_.NewHelperRule(rule_name, line, col);
      b_.rule(star).alts = {{x, {true, static_cast<uint32_t>(star)}}, {}};
      b_.CountSymbols(4);
      out.push_back({true, static_cast<uint32_t>(star)});
    } else if (max > min) {
      // Innermost optional first: O1 ::= x | "", Ok ::= x O(k-1) | "".
      int32_t inner = -1;
      for (int k = 1; k <= max - min; ++k) {
        const int32_t opt = b_.NewHelperRule(rule_name, line, col);
        Sequence first = {x};
        if (inner >= 0) first.push_back({true, static_cast<uint32_t>(inner)});
        b_.rule(opt).alts = {first, {}};
        b_.CountSymbols(4);
        inner = opt;
        if (b_.num_symbols() > kMaxGrammarSymbols) {
          return Error(at, "grammar too large (repetitions expand past the symbol limit)");
        }
      }
      out.push_back({true, static_cast<uint32_t>(inner)});
    }
    *item = std::move(out);
    return absl::OkStatus();
  }

  absl::Status ParseItem(const std::string& rule_name, bool nested, int depth, Sequence* item) {
    (void)nested;
    const size_t at = pos_;
    const char c = Peek();
    if (c == '"') {
      ++pos_;
      while (true) {
        if (AtEnd() || Peek() == '\n' || Peek() == '\r') return Error(at, "unterminated string literal");
        if (Peek() == '"') {
          ++pos_;
          break;
        }
        uint32_t cp = 0;
        if (absl::Status s = ParseChar(&cp); !s.ok()) return s;
        item->push_back({false, b_.AddCharset({{cp, cp}}, false)});
      }
      return absl::OkStatus();
    }
    if (c == '[') {
      ++pos_;
      bool negated = false;
      if (Peek() == '^') {
        negated = true;
        ++pos_;
      }
      std::vector<CharRange> ranges;
      while (true) {
        if (AtEnd() || Peek() == '\n' || Peek() == '\r') return Error(at, "unterminated character class");
        if (Peek() == ']') {
          ++pos_;
          break;
        }
        uint32_t lo = 0, hi = 0;
        if (absl::Status s = ParseChar(&lo); !s.ok()) return s;
        hi = lo;
        if (Peek() == '-' && Peek(1) != ']' && pos_ + 1 < src_.size()) {
          ++pos_;
          const size_t range_pos = pos_;
          if (absl::Status s = ParseChar(&hi); !s.ok()) return s;
          if (hi < lo) return Error(range_pos, "character range is out of order");
        }
        ranges.push_back({lo, hi});
      }
      item->push_back({false, b_.AddCharset(std::move(ranges), negated)});
      return absl::OkStatus();
    }
    if (c == '.') {
      ++pos_;
      item->push_back({false, b_.AddCharset({{0, 0x10FFFF}}, false)});
      return absl::OkStatus();
    }
    if (c == '(') {
      ++pos_;
      SkipSpace(true);
      std::vector<Sequence> alts;
      if (absl::Status s = ParseAlternates(rule_name, /*nested=*/true, depth + 1, &alts); !s.ok()) {
        return s;
      }
      if (Peek() != ')') return Error(at, "unclosed '('");
      ++pos_;
      if (alts.size() == 1) {  // a plain group: splice it in
        *item = std::move(alts[0]);
        return absl::OkStatus();
      }
      int line, col;
      LineCol(at, &line, &col);
      const int32_t r = b_.NewHelperRule(rule_name, line, col);
      size_t n = 0;
      for (const Sequence& a : alts) n += a.size() + 1;
      b_.CountSymbols(n);
      b_.rule(r).alts = std::move(alts);
      item->push_back({true, static_cast<uint32_t>(r)});
      return absl::OkStatus();
    }
    if (IsNameChar(c)) {
      const size_t begin = pos_;
      while (!AtEnd() && IsNameChar(Peek())) ++pos_;
      const std::string_view name = src_.substr(begin, pos_ - begin);
      // "name ::=" here means the previous rule lacked its line break.
      size_t p = pos_;
      while (p < src_.size() && (src_[p] == ' ' || src_[p] == '\t')) ++p;
      if (src_.substr(p, 3) == "::=") return Error(begin, "a new rule must start on its own line");
      int line, col;
      LineCol(begin, &line, &col);
      item->push_back({true, static_cast<uint32_t>(b_.RuleIndex(name, line, col))});
      return absl::OkStatus();
    }
    if (c == ')') return Error(at, "unmatched ')'");
    return Error(at, absl::StrFormat("unexpected character '%c'", c));
  }

  // One character of a literal or class: an escape or a UTF-8 sequence.
  absl::Status ParseChar(uint32_t* cp) {
    const size_t at = pos_;
    const unsigned char c = static_cast<unsigned char>(Peek());
    if (c == '\\') {
      ++pos_;
      const char e = Peek();
      ++pos_;
      switch (e) {
        case 'n': *cp = '\n'; return absl::OkStatus();
        case 't': *cp = '\t'; return absl::OkStatus();
        case 'r': *cp = '\r'; return absl::OkStatus();
        case '\\': case '"': case '[': case ']': case '-': case '^': case '/': case '\'':
          *cp = static_cast<unsigned char>(e);
          return absl::OkStatus();
        case 'x': return ParseHex(2, at, cp);
        case 'u': return ParseHex(4, at, cp);
        case 'U': return ParseHex(8, at, cp);
        default:
          if (e == '\0' && pos_ > src_.size()) return Error(at, "escape at end of input");
          return Error(at, absl::StrFormat("unknown escape '\\%c'", e));
      }
    }
    // UTF-8: the lead byte gives the length; continuation bytes are 10xxxxxx.
    int len;
    uint32_t v;
    if (c < 0x80) { len = 1; v = c; }
    else if ((c & 0xE0) == 0xC0) { len = 2; v = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; v = c & 0x07; }
    else return Error(at, "invalid UTF-8");
    for (int i = 1; i < len; ++i) {
      const unsigned char cc = static_cast<unsigned char>(Peek(i));
      if ((cc & 0xC0) != 0x80) return Error(at, "invalid UTF-8");
      v = (v << 6) | (cc & 0x3F);
    }
    pos_ += len;
    if (v > 0x10FFFF) return Error(at, "invalid UTF-8");
    *cp = v;
    return absl::OkStatus();
  }

  absl::Status ParseHex(int digits, size_t at, uint32_t* cp) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const char h = Peek();
      int d;
      if (h >= '0' && h <= '9') d = h - '0';
      else if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
      else return Error(at, absl::StrFormat("expected %d hex digits in the escape", digits));
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    if (v > 0x10FFFF) return Error(at, "code point past U+10FFFF");
    *cp = v;
    return absl::OkStatus();
  }

  std::string_view src_;
  std::vector<size_t> line_starts_;
  size_t pos_ = 0;
  GrammarBuilder b_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const Grammar>> ParseGbnf(std::string_view gbnf,
                                                          std::string_view root) {
  Parser p(gbnf);
  if (absl::Status s = p.ParseAll(); !s.ok()) return s;
  return p.builder().Build(root);
}

}  // namespace yuan::grammar

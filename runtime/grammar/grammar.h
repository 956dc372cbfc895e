// Compiled context-free grammars over Unicode code points, written in
// llama.cpp's GBNF syntax (docs/structured-output.md has the language).
//
// A Grammar is immutable once built and may be shared by any number of
// threads and matchers (matcher.h). Its compiled form is a flat array of
// symbols: every alternative of every rule is a run of symbols closed by a
// kEnd symbol, so a parse position is a single index into symbols().
//
//   root ::= "a" b*        rule 0: alternative at 0: [chars{'a'}, ref 1, end]
//   b    ::= [0-9]         rule 1: alternative at 3: [chars{0-9}, end]
//
// (b* is itself rewritten into a helper rule `R ::= b R | ""`.)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace yuan::grammar {

enum class SymbolKind : uint8_t {
  kEnd,      // end of an alternative: the rule is complete
  kRuleRef,  // value: the rule index to expand here
  kChars,    // value: a character set; matches one code point in it
};

struct Symbol {
  SymbolKind kind;
  uint32_t value;
};

// An inclusive range of Unicode code points.
struct CharRange {
  uint32_t lo;
  uint32_t hi;
};

class Grammar {
 public:
  // The rule a sentence must match.
  int32_t root() const { return root_; }
  int32_t num_rules() const { return static_cast<int32_t>(rule_alts_.size()); }
  // The rule's name in the source ("root", or a generated "name-N" for
  // groups and repetitions).
  const std::string& rule_name(int32_t rule) const { return rule_names_[rule]; }
  // Start positions (indices into symbols()) of the rule's alternatives.
  const std::vector<uint32_t>& alternatives(int32_t rule) const { return rule_alts_[rule]; }
  const std::vector<Symbol>& symbols() const { return symbols_; }

  // Whether code point `cp` is in character set `set` (a kChars value).
  bool CharsetContains(uint32_t set, uint32_t cp) const;
  // Whether some code point in [lo, hi] is in the set: used to drop parse
  // stacks early while a multi-byte UTF-8 character is half read.
  bool CharsetIntersects(uint32_t set, uint32_t lo, uint32_t hi) const;
  // Whether every code point in [lo, hi] is in the set.
  bool CharsetCovers(uint32_t set, uint32_t lo, uint32_t hi) const;
  // The set's sorted, disjoint, non-adjacent ranges.
  std::vector<CharRange> Charset(uint32_t set) const;

  // A readable dump of the compiled rules (for debugging and tests).
  std::string ToString() const;

 private:
  friend class GrammarBuilder;
  int32_t root_ = 0;
  std::vector<std::string> rule_names_;
  std::vector<std::vector<uint32_t>> rule_alts_;
  std::vector<Symbol> symbols_;
  std::vector<CharRange> ranges_;                          // all sets' ranges, back to back
  std::vector<std::pair<uint32_t, uint32_t>> charsets_;    // [begin, end) into ranges_
};

// Limits that keep hostile grammars from exhausting memory; past them
// ParseGbnf returns InvalidArgument.
inline constexpr int kMaxRepetition = 10000;        // m and n in {m,n}
inline constexpr size_t kMaxGrammarSymbols = 1u << 21;

// Parses GBNF text and compiles it.
// `root` names the start rule. Errors (InvalidArgument, with "line L, column
// C" where a position applies): malformed syntax, a rule defined twice, an
// undefined rule, no rule named `root`, left recursion (a rule that can
// reach itself without consuming a character), a grammar past the limits
// above. Never crashes or hangs on any input. Thread-safe.
absl::StatusOr<std::shared_ptr<const Grammar>> ParseGbnf(std::string_view gbnf,
                                                          std::string_view root = "root");

}  // namespace yuan::grammar

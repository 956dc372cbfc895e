// Internal: the rule table a parser fills in, and its compilation into a
// Grammar (checks for undefined rules, the root and left recursion, then
// flattens). Not part of the public API.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "runtime/grammar/grammar.h"

namespace yuan::grammar {

struct BuilderSymbol {
  bool is_ref;     // true: a rule index; false: a character-set index
  uint32_t value;
};
using Sequence = std::vector<BuilderSymbol>;

struct BuilderRule {
  std::string name;
  std::vector<Sequence> alts;
  bool defined = false;
  int line = 0, col = 0;          // where it is defined (or, for a helper, made)
  int ref_line = 0, ref_col = 0;  // its first use, for "undefined rule" errors
};

class GrammarBuilder {
 public:
  // The index of the named rule, made (undefined) on first mention.
  int32_t RuleIndex(std::string_view name, int line, int col);
  // A fresh helper rule for a group or a repetition, named "<base>-<n>".
  int32_t NewHelperRule(std::string_view base, int line, int col);
  BuilderRule& rule(int32_t i) { return rules_[i]; }
  size_t num_symbols() const { return num_symbols_; }
  void CountSymbols(size_t n) { num_symbols_ += n; }

  // A character set from ranges (any order, may overlap); `negated` takes
  // the complement within [0, 0x10FFFF]. Identical sets share an index.
  uint32_t AddCharset(std::vector<CharRange> ranges, bool negated);

  // Checks and compiles; see ParseGbnf for the errors.
  absl::StatusOr<std::shared_ptr<const Grammar>> Build(std::string_view root);

 private:
  std::vector<BuilderRule> rules_;
  absl::flat_hash_map<std::string, int32_t> by_name_;
  std::vector<std::vector<CharRange>> charsets_;
  absl::flat_hash_map<std::string, uint32_t> charset_index_;  // key: the ranges' bytes
  size_t num_symbols_ = 0;
};

}  // namespace yuan::grammar

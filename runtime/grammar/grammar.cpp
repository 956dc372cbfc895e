// The compiled grammar (lookups) and its builder (checks + flattening).
#include "runtime/grammar/grammar.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/grammar/grammar_builder.h"

namespace yuan::grammar {

namespace {
constexpr uint32_t kMaxCodePoint = 0x10FFFF;
}  // namespace

// ---- Grammar -------------------------------------------------------------

bool Grammar::CharsetContains(uint32_t set, uint32_t cp) const {
  const auto [begin, end] = charsets_[set];
  // First range whose hi >= cp; the code point is in it when lo <= cp.
  const CharRange* first = ranges_.data() + begin;
  const CharRange* last = ranges_.data() + end;
  const CharRange* it =
      std::lower_bound(first, last, cp, [](const CharRange& r, uint32_t c) { return r.hi < c; });
  return it != last && it->lo <= cp;
}

bool Grammar::CharsetIntersects(uint32_t set, uint32_t lo, uint32_t hi) const {
  const auto [begin, end] = charsets_[set];
  const CharRange* first = ranges_.data() + begin;
  const CharRange* last = ranges_.data() + end;
  const CharRange* it =
      std::lower_bound(first, last, lo, [](const CharRange& r, uint32_t c) { return r.hi < c; });
  return it != last && it->lo <= hi;
}

bool Grammar::CharsetCovers(uint32_t set, uint32_t lo, uint32_t hi) const {
  // Ranges are merged, so [lo, hi] is covered only by the one range holding lo.
  const auto [begin, end] = charsets_[set];
  const CharRange* first = ranges_.data() + begin;
  const CharRange* last = ranges_.data() + end;
  const CharRange* it =
      std::lower_bound(first, last, lo, [](const CharRange& r, uint32_t c) { return r.hi < c; });
  return it != last && it->lo <= lo && hi <= it->hi;
}

std::vector<CharRange> Grammar::Charset(uint32_t set) const {
  const auto [begin, end] = charsets_[set];
  return std::vector<CharRange>(ranges_.begin() + begin, ranges_.begin() + end);
}

namespace {
std::string CodePointText(uint32_t cp) {
  if (cp >= 0x21 && cp < 0x7F && cp != '\\' && cp != ']' && cp != '-') {
    return std::string(1, static_cast<char>(cp));
  }
  return absl::StrFormat("\\u%04X", cp);
}
}  // namespace

std::string Grammar::ToString() const {
  std::string out;
  for (int32_t r = 0; r < num_rules(); ++r) {
    absl::StrAppend(&out, rule_names_[r], " ::=");
    for (size_t a = 0; a < rule_alts_[r].size(); ++a) {
      if (a > 0) out += " |";
      for (uint32_t p = rule_alts_[r][a]; symbols_[p].kind != SymbolKind::kEnd; ++p) {
        const Symbol& s = symbols_[p];
        if (s.kind == SymbolKind::kRuleRef) {
          absl::StrAppend(&out, " ", rule_names_[s.value]);
        } else {
          out += " [";
          for (const CharRange& cr : Charset(s.value)) {
            out += CodePointText(cr.lo);
            if (cr.hi != cr.lo) absl::StrAppend(&out, "-", CodePointText(cr.hi));
          }
          out += "]";
        }
      }
    }
    out += "\n";
  }
  return out;
}

// ---- GrammarBuilder ------------------------------------------------------

int32_t GrammarBuilder::RuleIndex(std::string_view name, int line, int col) {
  auto it = by_name_.find(std::string(name));
  if (it != by_name_.end()) return it->second;
  const int32_t index = static_cast<int32_t>(rules_.size());
  BuilderRule r;
  r.name = std::string(name);
  r.ref_line = line;
  r.ref_col = col;
  rules_.push_back(std::move(r));
  by_name_.emplace(std::string(name), index);
  return index;
}

int32_t GrammarBuilder::NewHelperRule(std::string_view base, int line, int col) {
  // Source names never contain '~'... but they may look like "x-3", so add a
  // counter until the name is free.
  std::string name;
  for (size_t n = rules_.size();; ++n) {
    name = absl::StrCat(std::string(base), "-", n);
    if (!by_name_.contains(name)) break;
  }
  const int32_t index = RuleIndex(name, line, col);
  rules_[index].defined = true;
  rules_[index].line = line;
  rules_[index].col = col;
  return index;
}

uint32_t GrammarBuilder::AddCharset(std::vector<CharRange> ranges, bool negated) {
  // Normalise: clamp, sort, merge overlapping and adjacent ranges.
  std::vector<CharRange> merged;
  for (CharRange& r : ranges) r.hi = std::min(r.hi, kMaxCodePoint);
  std::sort(ranges.begin(), ranges.end(),
            [](const CharRange& a, const CharRange& b) { return a.lo < b.lo; });
  for (const CharRange& r : ranges) {
    if (r.lo > r.hi) continue;
    if (!merged.empty() && r.lo <= merged.back().hi + 1) {
      merged.back().hi = std::max(merged.back().hi, r.hi);
    } else {
      merged.push_back(r);
    }
  }
  if (negated) {
    std::vector<CharRange> complement;
    uint32_t next = 0;
    for (const CharRange& r : merged) {
      if (r.lo > next) complement.push_back({next, r.lo - 1});
      next = r.hi + 1;
    }
    if (next <= kMaxCodePoint) complement.push_back({next, kMaxCodePoint});
    merged = std::move(complement);
  }
  std::string key(reinterpret_cast<const char*>(merged.data()), merged.size() * sizeof(CharRange));
  auto it = charset_index_.find(key);
  if (it != charset_index_.end()) return it->second;
  const uint32_t index = static_cast<uint32_t>(charsets_.size());
  charsets_.push_back(std::move(merged));
  charset_index_.emplace(std::move(key), index);
  return index;
}

absl::StatusOr<std::shared_ptr<const Grammar>> GrammarBuilder::Build(std::string_view root) {
  // Every mentioned rule must be defined.
  for (const BuilderRule& r : rules_) {
    if (!r.defined) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "line %d, column %d: undefined rule '%s'", r.ref_line, r.ref_col, r.name));
    }
  }
  auto root_it = by_name_.find(std::string(root));
  if (root_it == by_name_.end()) {
    return absl::InvalidArgumentError(absl::StrFormat("no rule named '%s' (the root)", std::string(root)));
  }
  if (num_symbols_ > kMaxGrammarSymbols) {
    return absl::InvalidArgumentError(
        absl::StrFormat("grammar too large (%d symbols after expanding repetitions; limit %d)",
                        num_symbols_, kMaxGrammarSymbols));
  }

  // Nullable rules: those that can match the empty string (fixed point).
  const size_t n = rules_.size();
  std::vector<bool> nullable(n, false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < n; ++r) {
      if (nullable[r]) continue;
      for (const Sequence& alt : rules_[r].alts) {
        bool all = true;
        for (const BuilderSymbol& s : alt) {
          if (!s.is_ref || !nullable[s.value]) {
            all = false;
            break;
          }
        }
        if (all) {
          nullable[r] = true;
          changed = true;
          break;
        }
      }
    }
  }

  // Left recursion: a cycle in the graph "r can start with rule s" (s is
  // preceded only by nullable rules). The matcher expands rules eagerly, so
  // such a cycle would never end. Iterative DFS with colours.
  std::vector<std::vector<uint32_t>> left(n);
  for (size_t r = 0; r < n; ++r) {
    for (const Sequence& alt : rules_[r].alts) {
      for (const BuilderSymbol& s : alt) {
        if (!s.is_ref) break;
        left[r].push_back(s.value);
        if (!nullable[s.value]) break;
      }
    }
  }
  std::vector<uint8_t> colour(n, 0);  // 0 new, 1 on the path, 2 done
  for (size_t start = 0; start < n; ++start) {
    if (colour[start] != 0) continue;
    std::vector<std::pair<uint32_t, size_t>> path = {{static_cast<uint32_t>(start), 0}};
    colour[start] = 1;
    while (!path.empty()) {
      auto& [r, next] = path.back();
      if (next == left[r].size()) {
        colour[r] = 2;
        path.pop_back();
        continue;
      }
      const uint32_t s = left[r][next++];
      if (colour[s] == 1) {
        const BuilderRule& br = rules_[s];
        return absl::InvalidArgumentError(absl::StrFormat(
            "line %d, column %d: left recursion: rule '%s' can reach itself without consuming "
            "a character",
            br.line, br.col, br.name));
      }
      if (colour[s] == 0) {
        colour[s] = 1;
        path.push_back({s, 0});
      }
    }
  }

  // Flatten.
  auto g = std::make_shared<Grammar>();
  g->root_ = root_it->second;
  g->rule_names_.reserve(n);
  g->rule_alts_.resize(n);
  for (size_t r = 0; r < n; ++r) {
    g->rule_names_.push_back(rules_[r].name);
    for (const Sequence& alt : rules_[r].alts) {
      g->rule_alts_[r].push_back(static_cast<uint32_t>(g->symbols_.size()));
      for (const BuilderSymbol& s : alt) {
        g->symbols_.push_back(
            {s.is_ref ? SymbolKind::kRuleRef : SymbolKind::kChars, s.value});
      }
      g->symbols_.push_back({SymbolKind::kEnd, 0});
    }
  }
  for (const std::vector<CharRange>& set : charsets_) {
    const uint32_t begin = static_cast<uint32_t>(g->ranges_.size());
    g->ranges_.insert(g->ranges_.end(), set.begin(), set.end());
    g->charsets_.push_back({begin, static_cast<uint32_t>(g->ranges_.size())});
  }
  return std::shared_ptr<const Grammar>(std::move(g));
}

}  // namespace yuan::grammar

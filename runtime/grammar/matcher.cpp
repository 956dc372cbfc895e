// GrammarMatcher: parse stacks, interned parse states, cached byte
// transitions, and the token-trie walk that builds the mask.
//
// A parse state is the set of stacks alive after the text so far (the
// grammar may be ambiguous, so several parses can be in flight). All stacks
// have read the same bytes, so a half-read UTF-8 character is kept once,
// beside the state (a Position). Consuming one byte:
//   - inside a character: go on while some stack's next character set can
//     still contain a character that starts with the bytes read so far;
//   - completing a character c: every stack whose top set contains c moves
//     one symbol on and is expanded again (rule references replaced by the
//     alternatives of the rule, finished rules popped) until a character set
//     is on top, or the stack is empty (the sentence is complete).
// States are interned (equal sets get equal ids) and each state's transition
// on each character is computed once, so after the first few tokens the trie
// walk is mostly table lookups. Two shortcuts keep large vocabularies cheap
// inside string-like rules, where almost every token fits: "plain"
// characters (not '"', '\\' or controls) share one transition when every
// stack takes all or none of them, and a trie subtree whose tokens add only
// plain characters is allowed in one go when the state survives that many.
#include "runtime/grammar/matcher.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"

namespace yuan::grammar {
namespace {

// Limits on the caches and on pathological grammars. Past kMaxStacks a
// state keeps only the first kMaxStacks stacks: what remains is still a
// valid parse, so the grammar only becomes stricter, never looser.
constexpr size_t kMaxStates = 8192;       // about 0.5 KiB of ASCII transitions each
constexpr size_t kMaxNodes = 1u << 20;
constexpr size_t kMaxMasks = 64;          // cached allowed-token bitmaps
constexpr size_t kMaxStacks = 1024;
constexpr size_t kMaxExpandSteps = 100000;

// UTF-8 decoder state packed in 32 bits; 0 is "between characters".
//   bits 0..20  the bits of the code point read so far
//   bits 24..25 continuation bytes still needed (1..3)
//   bits 28..30 the character's length in bytes (2..4)
uint32_t PackUtf8(uint32_t value, uint32_t need, uint32_t len) {
  return value | (need << 24) | (len << 28);
}
uint32_t Utf8Value(uint32_t s) { return s & 0x1FFFFF; }
uint32_t Utf8Need(uint32_t s) { return (s >> 24) & 3; }
uint32_t Utf8Len(uint32_t s) { return (s >> 28) & 7; }
uint32_t MinCodePoint(uint32_t len) { return len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000; }

}  // namespace

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar,
                               std::shared_ptr<const TokenVocab> vocab)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)) {
  initial_ = InitialState();
  current_ = {initial_, 0};
}

// ---- stacks --------------------------------------------------------------

int32_t GrammarMatcher::InternNode(uint32_t pos, int32_t parent) const {
  const uint64_t key = (static_cast<uint64_t>(pos) << 32) | static_cast<uint32_t>(parent);
  auto [it, inserted] = node_index_.try_emplace(key, static_cast<int32_t>(nodes_.size()));
  if (inserted) {
    nodes_.push_back({pos, parent});
    expansions_.emplace_back();
    expanded_.push_back(false);
  }
  return it->second;
}

void GrammarMatcher::Expand(int32_t stack, std::vector<int32_t>* out) const {
  if (stack != kEmptyStack && expanded_[stack]) {
    out->insert(out->end(), expansions_[stack].begin(), expansions_[stack].end());
    return;
  }
  const std::vector<Symbol>& symbols = grammar_->symbols();
  std::vector<int32_t> result;
  std::vector<int32_t> todo = {stack};
  size_t steps = 0;
  while (!todo.empty() && ++steps < kMaxExpandSteps) {
    const int32_t s = todo.back();
    todo.pop_back();
    if (s == kEmptyStack) {
      result.push_back(s);
      continue;
    }
    const StackNode node = nodes_[s];
    const Symbol& sym = symbols[node.pos];
    switch (sym.kind) {
      case SymbolKind::kChars:
        result.push_back(s);
        break;
      case SymbolKind::kEnd:  // the rule is done: continue in the caller
        todo.push_back(node.parent);
        break;
      case SymbolKind::kRuleRef: {
        // Where to continue after the referenced rule. A reference that
        // ends its alternative continues directly in the caller's caller
        // (tail call), so right recursion such as `S ::= x S | ""` keeps
        // stacks short.
        const int32_t cont = symbols[node.pos + 1].kind == SymbolKind::kEnd
                                 ? node.parent
                                 : InternNode(node.pos + 1, node.parent);
        const std::vector<uint32_t>& alts = grammar_->alternatives(static_cast<int32_t>(sym.value));
        for (auto it = alts.rbegin(); it != alts.rend(); ++it) todo.push_back(InternNode(*it, cont));
        break;
      }
    }
  }
  std::sort(result.begin(), result.end());
  result.erase(std::unique(result.begin(), result.end()), result.end());
  if (result.size() > kMaxStacks) result.resize(kMaxStacks);
  out->insert(out->end(), result.begin(), result.end());
  if (stack != kEmptyStack) {
    expanded_[stack] = true;
    expansions_[stack] = std::move(result);
  }
}

// ---- states --------------------------------------------------------------

int32_t GrammarMatcher::InternState(std::vector<int32_t> stacks) const {
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
  if (stacks.empty()) return kDead;
  if (stacks.size() > kMaxStacks) stacks.resize(kMaxStacks);
  std::string key(stacks.size() * sizeof(int32_t), '\0');
  std::memcpy(key.data(), stacks.data(), stacks.size() * sizeof(int32_t));
  auto [it, inserted] = state_index_.try_emplace(std::move(key), static_cast<int32_t>(states_.size()));
  if (inserted) {
    states_.push_back({std::move(stacks)});
    ascii_next_.resize(states_.size() * 128, kUnknown);
    plain_next_.push_back(kNotComputed);
    plain_run_.push_back(-1);
    plain_exact_.push_back(0);
  }
  return it->second;
}

int32_t GrammarMatcher::InitialState() const {
  std::vector<int32_t> stacks;
  for (const uint32_t alt : grammar_->alternatives(grammar_->root())) {
    Expand(InternNode(alt, kEmptyStack), &stacks);
  }
  return InternState(std::move(stacks));
}

int32_t GrammarMatcher::NextChar(int32_t state, uint32_t cp) const {
  if (cp < 128) {
    const size_t at = static_cast<size_t>(state) * 128 + cp;
    int32_t t = ascii_next_[at];
    if (t == kUnknown) {
      t = ComputeNextChar(state, cp);  // may grow ascii_next_: index again below
      ascii_next_[at] = t;
    }
    return t;
  }
  // Most non-ASCII characters are "plain" (letters, CJK, emoji): when every
  // stack takes all or none of them, they share one transition.
  if (cp != 0x22 && cp != 0x5C && !(cp >= 0xD800 && cp <= 0xDFFF)) {
    const int32_t plain = PlainNext(state);
    if (plain != kUnknown) return plain;
  }
  const uint64_t key = (static_cast<uint64_t>(state) << 21) | cp;
  auto it = char_next_.find(key);
  if (it != char_next_.end()) return it->second;
  const int32_t t = ComputeNextChar(state, cp);
  char_next_.emplace(key, t);
  return t;
}

int32_t GrammarMatcher::ComputeNextChar(int32_t state, uint32_t cp) const {
  const std::vector<int32_t> stacks = states_[state].stacks;  // a copy: states_ may grow below
  std::vector<int32_t> next;
  for (const int32_t s : stacks) {
    if (s == kEmptyStack) continue;
    const StackNode node = nodes_[s];
    const Symbol& sym = grammar_->symbols()[node.pos];
    if (grammar_->CharsetContains(sym.value, cp)) Expand(InternNode(node.pos + 1, node.parent), &next);
  }
  return InternState(std::move(next));
}

GrammarMatcher::Position GrammarMatcher::Step(Position at, uint8_t byte) const {
  if (at.state < 0) return {kDead, 0};
  uint32_t value, need, len;
  if (at.utf8 == 0) {
    if (byte < 0x80) return {NextChar(at.state, byte), 0};
    if (byte >= 0xC2 && byte <= 0xDF) { value = byte & 0x1F; need = 1; len = 2; }
    else if (byte >= 0xE0 && byte <= 0xEF) { value = byte & 0x0F; need = 2; len = 3; }
    else if (byte >= 0xF0 && byte <= 0xF4) { value = byte & 0x07; need = 3; len = 4; }
    else return {kDead, 0};  // a continuation byte, or a lead byte UTF-8 never uses
  } else {
    if ((byte & 0xC0) != 0x80) return {kDead, 0};
    value = (Utf8Value(at.utf8) << 6) | (byte & 0x3F);
    need = Utf8Need(at.utf8) - 1;
    len = Utf8Len(at.utf8);
  }
  if (need > 0) {
    // Half a character: can some stack still take a character it may become?
    const uint32_t shift = 6 * need;
    const uint32_t lo = std::max(value << shift, MinCodePoint(len));
    const uint32_t hi = std::min((value << shift) | ((1u << shift) - 1), 0x10FFFFu);
    if (lo > hi) return {kDead, 0};
    if (lo >= 0xD800 && hi <= 0xDFFF) return {kDead, 0};  // can only end as a surrogate
    // Fast path: a state taking every plain character takes this one.
    if (PlainNext(at.state) >= 0) return {at.state, PackUtf8(value, need, len)};
    for (const int32_t s : states_[at.state].stacks) {
      if (s == kEmptyStack) continue;
      const Symbol& sym = grammar_->symbols()[nodes_[s].pos];
      if (grammar_->CharsetIntersects(sym.value, lo, hi)) return {at.state, PackUtf8(value, need, len)};
    }
    return {kDead, 0};
  }
  const uint32_t cp = value;
  if (cp < MinCodePoint(len)) return {kDead, 0};  // overlong
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {kDead, 0};
  return {NextChar(at.state, cp), 0};
}

GrammarMatcher::Position GrammarMatcher::Walk(Position at, const std::string& bytes) const {
  for (const char c : bytes) {
    if (at.state < 0) break;
    at = Step(at, static_cast<uint8_t>(c));
  }
  return at;
}

int32_t GrammarMatcher::PlainNext(int32_t state) const {
  if (plain_next_[state] != kNotComputed) return plain_next_[state];
  const int32_t next = ComputePlainNext(state);
  plain_next_[state] = next;
  return next;
}

int32_t GrammarMatcher::ComputePlainNext(int32_t state) const {
  const std::vector<int32_t> stacks = states_[state].stacks;  // a copy: states_ may grow below
  std::vector<int32_t> next;
  for (const int32_t s : stacks) {
    if (s == kEmptyStack) continue;
    const StackNode node = nodes_[s];
    const uint32_t set = grammar_->symbols()[node.pos].value;
    bool all = true, none = true;
    for (const CharRange& r : TokenVocab::kPlainRanges) {
      all = all && grammar_->CharsetCovers(set, r.lo, r.hi);
      none = none && !grammar_->CharsetIntersects(set, r.lo, r.hi);
    }
    if (!all && !none) return kUnknown;
    // Exactly what ComputeNext does for any one plain character.
    if (all) Expand(InternNode(node.pos + 1, node.parent), &next);
  }
  return InternState(std::move(next));
}

int32_t GrammarMatcher::PlainRun(int32_t state, bool* exact) const {
  constexpr size_t kMaxChain = 256;  // longer runs are walked as usual
  if (plain_run_[state] < 0) {
    // Follow state -> PlainNext -> ... until a known run, a dead end, a
    // loop or the cap; `run`/`ends` are then those of `s`, and the chain
    // before it is filled in backwards.
    std::vector<int32_t> chain;
    int32_t s = state;
    int32_t run = 0;
    bool ends = false;  // the run is exact
    while (true) {
      if (plain_run_[s] >= 0) {
        run = plain_run_[s];
        ends = plain_exact_[s] != 0;
        break;
      }
      if (std::find(chain.begin(), chain.end(), s) != chain.end()) {  // a loop: no end
        run = kEndless;
        ends = true;
        break;
      }
      if (chain.size() >= kMaxChain) break;  // `s` unknown: count it as 0, inexact
      const int32_t next = PlainNext(s);
      if (next < 0) {
        plain_run_[s] = 0;
        plain_exact_[s] = next == kDead;
        ends = next == kDead;
        break;
      }
      chain.push_back(s);
      s = next;
    }
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      if (run != kEndless) ++run;
      plain_run_[*it] = static_cast<int16_t>(std::min(run, kEndless));
      plain_exact_[*it] = ends;
    }
  }
  *exact = plain_exact_[state] != 0;
  return plain_run_[state];
}

bool GrammarMatcher::Accepts(Position at) const {
  if (at.state < 0 || at.utf8 != 0) return false;
  const State& st = states_[at.state];
  return !st.stacks.empty() && st.stacks.front() == kEmptyStack;
}

void GrammarMatcher::MaybeCompact() const {
  if (states_.size() <= kMaxStates && nodes_.size() <= kMaxNodes && char_next_.size() <= kMaxStates * 16) {
    return;
  }
  // Write the two states we must keep as plain position lists, clear every
  // cache, and intern them again.
  using Exported = std::vector<std::vector<uint32_t>>;  // stacks, bottom to top; {} = kEmptyStack
  auto save = [&](int32_t state) {
    Exported e;
    if (state < 0) return e;  // dead: no stacks
    for (int32_t s : states_[state].stacks) {
      std::vector<uint32_t> positions;
      for (; s != kEmptyStack; s = nodes_[s].parent) positions.push_back(nodes_[s].pos);
      std::reverse(positions.begin(), positions.end());
      e.push_back(std::move(positions));
    }
    return e;
  };
  const Exported cur = save(current_.state);
  const Exported init = save(initial_);
  nodes_.clear();
  node_index_.clear();
  expansions_.clear();
  expanded_.clear();
  states_.clear();
  state_index_.clear();
  ascii_next_.clear();
  char_next_.clear();
  plain_next_.clear();
  plain_run_.clear();
  plain_exact_.clear();
  masks_.clear();
  auto load = [&](const Exported& e) -> int32_t {
    if (e.empty()) return kDead;
    std::vector<int32_t> stacks;
    for (const std::vector<uint32_t>& positions : e) {
      int32_t s = kEmptyStack;
      for (const uint32_t p : positions) s = InternNode(p, s);
      stacks.push_back(s);
    }
    return InternState(std::move(stacks));
  };
  current_.state = load(cur);
  initial_ = load(init);
}

// ---- the public interface ------------------------------------------------

bool GrammarMatcher::IsTokenAllowed(int32_t token) const {
  if (token < 0 || token >= vocab_->n_vocab()) return false;
  if (vocab_->IsEog(token)) return finished_ || Accepts(current_);
  if (finished_) return false;
  const std::string& bytes = vocab_->bytes(token);
  if (bytes.empty()) return false;
  return Walk(current_, bytes).state != kDead;
}

const std::vector<uint64_t>& GrammarMatcher::Allowed() const {
  const uint64_t key = (static_cast<uint64_t>(current_.state) << 32) | current_.utf8;
  auto cached = masks_.find(key);
  if (cached != masks_.end()) return cached->second;
  std::vector<uint64_t> bits((static_cast<size_t>(vocab_->n_vocab()) + 63) / 64, 0);
  const std::vector<TokenVocab::TrieNode>& trie = vocab_->trie();
  const std::vector<int32_t>& tokens = vocab_->trie_tokens();
  const std::vector<uint32_t>& chars = vocab_->trie_token_chars();
  walk_.assign(vocab_->max_depth() + 1, Position{kDead, 0});
  walk_[0] = current_;
  // Pre-order walk: a node's parent position is the latest one a level up;
  // a dead one skips the node's whole subtree.
  for (size_t i = 1; i < trie.size();) {
    const TokenVocab::TrieNode& node = trie[i];
    const Position at = Step(walk_[node.depth - 1], node.byte);
    if (at.state == kDead) {
      i = node.subtree_end;
      continue;
    }
    walk_[node.depth] = at;
    for (uint32_t t = node.tokens_begin; t < node.tokens_end; ++t) {
      bits[static_cast<size_t>(tokens[t]) >> 6] |= uint64_t{1} << (tokens[t] & 63);
    }
    // Inside a string-like rule: when the state survives as many plain
    // characters as any token below adds, all of them are allowed at once;
    // when it survives exactly `run`, those adding at most `run` are.
    if (node.plain_chars > 0 && at.utf8 == 0 && current_.utf8 == 0) {
      bool exact = false;
      const int32_t run = PlainRun(at.state, &exact);
      if (run >= node.plain_chars || exact) {
        const uint32_t limit = node.prefix_chars + static_cast<uint32_t>(run);
        for (uint32_t t = node.tokens_end; t < node.subtree_tokens_end; ++t) {
          if (chars[t] <= limit) bits[static_cast<size_t>(tokens[t]) >> 6] |= uint64_t{1} << (tokens[t] & 63);
        }
        i = node.subtree_end;
        continue;
      }
    }
    ++i;
  }
  if (Accepts(current_)) {
    for (const int32_t t : vocab_->eog_tokens()) bits[static_cast<size_t>(t) >> 6] |= uint64_t{1} << (t & 63);
  }
  if (masks_.size() >= kMaxMasks) masks_.clear();
  return masks_[key] = std::move(bits);
}

void GrammarMatcher::AllowedTokens(std::vector<uint64_t>* bitmap) const {
  if (finished_ || current_.state == kDead) {
    bitmap->assign((static_cast<size_t>(vocab_->n_vocab()) + 63) / 64, 0);
    if (finished_) {
      for (const int32_t t : vocab_->eog_tokens()) (*bitmap)[static_cast<size_t>(t) >> 6] |= uint64_t{1} << (t & 63);
    }
    return;
  }
  MaybeCompact();
  *bitmap = Allowed();
}

void GrammarMatcher::MaskLogits(float* logits, int32_t n_vocab) const {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  if (finished_ || current_.state == kDead) {
    for (int32_t i = 0; i < n_vocab; ++i) {
      if (!(finished_ && vocab_->IsEog(i))) logits[i] = kNegInf;
    }
    return;
  }
  MaybeCompact();
  const std::vector<uint64_t>& bits = Allowed();
  const int32_t known = std::min(n_vocab, vocab_->n_vocab());
  for (int32_t i = 0; i < known; ++i) {
    if (((bits[static_cast<size_t>(i) >> 6] >> (i & 63)) & 1) == 0) logits[i] = kNegInf;
  }
  for (int32_t i = known; i < n_vocab; ++i) logits[i] = kNegInf;
}

absl::Status GrammarMatcher::Accept(int32_t token) {
  if (finished_) return absl::InvalidArgumentError("the constrained sequence already ended (EOG)");
  if (token < 0 || token >= vocab_->n_vocab()) {
    return absl::InvalidArgumentError(absl::StrFormat("token %d is out of the vocabulary", token));
  }
  if (vocab_->IsEog(token)) {
    if (!Accepts(current_)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "end-of-generation token %d before the grammar is complete", token));
    }
    finished_ = true;
    return absl::OkStatus();
  }
  const std::string& bytes = vocab_->bytes(token);
  if (bytes.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("special token %d is not allowed under a grammar", token));
  }
  MaybeCompact();
  const Position next = Walk(current_, bytes);
  if (next.state == kDead) {
    return absl::InvalidArgumentError(
        absl::StrFormat("token %d (\"%s\") does not fit the grammar here", token,
                        absl::CHexEscape(bytes)));
  }
  current_ = next;
  return absl::OkStatus();
}

absl::Status GrammarMatcher::AcceptBytes(std::string_view bytes) {
  if (finished_) return absl::InvalidArgumentError("the constrained sequence already ended (EOG)");
  MaybeCompact();
  const Position next = Walk(current_, std::string(bytes));
  if (next.state == kDead) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "text \"%s\" does not fit the grammar here", absl::CHexEscape(std::string(bytes))));
  }
  current_ = next;
  return absl::OkStatus();
}

bool GrammarMatcher::IsAccepting() const { return finished_ || Accepts(current_); }

bool GrammarMatcher::IsDone() const {
  if (finished_) return true;
  if (!Accepts(current_)) return false;
  return states_[current_.state].stacks.size() == 1;
}

void GrammarMatcher::Reset() {
  current_ = {initial_, 0};
  finished_ = false;
}

}  // namespace yuan::grammar

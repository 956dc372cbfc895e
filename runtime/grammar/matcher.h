// Grammar-constrained decoding, per sequence: which tokens may come next.
//
// TokenVocab is built once per tokenizer (the bytes of every token and a trie
// over them); GrammarMatcher is the state of one sequence: the set of parse
// stacks of the grammar after the text generated so far, plus any half-read
// UTF-8 character (a token may end inside a character; grammars work on
// code points).
//
// How masking stays cheap (docs/structured-output.md): the matcher interns
// every parse state it meets and caches its transition on each character,
// so walking the token trie is mostly table lookups; a subtree of the trie is
// skipped as soon as its prefix leads nowhere, and inside string-like rules
// whole subtrees of plain-text tokens are allowed at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "runtime/grammar/grammar.h"
#include "runtime/tokenizer/tokenizer.h"

namespace yuan::grammar {

// The per-vocabulary precomputation. Immutable after Build; share it across
// threads and matchers (one per model).
class TokenVocab {
 public:
  // Reads every token's bytes with TokenToPiece (byte tokens such as <0xE4>
  // give the raw byte, "▁" a space). Tokens that may appear while
  // constrained: normal and byte tokens with a non-empty piece; EOG tokens
  // are allowed only where the grammar accepts; all other special tokens
  // (control, user-defined, unknown, unused) never.
  static std::shared_ptr<const TokenVocab> Build(const Tokenizer& tok);
  // From the bytes of each token directly (index = token id; "" = never
  // allowed) and the EOG token ids: for vocabularies known only as text
  // (a remote model) and for tests and fuzzing.
  static std::shared_ptr<const TokenVocab> FromBytes(std::vector<std::string> bytes,
                                                     const std::vector<int32_t>& eog_tokens);

  int32_t n_vocab() const { return n_vocab_; }
  bool IsEog(int32_t token) const { return token >= 0 && token < n_vocab_ && is_eog_[token]; }
  // The token's bytes when it may appear under a grammar, else "".
  const std::string& bytes(int32_t token) const { return bytes_[token]; }

  // The trie, nodes in pre-order. Node 0 is the root (empty prefix); every
  // other node adds `byte` to its parent's prefix, sits at `depth` (its
  // prefix length) and its subtree is the nodes [index, subtree_end).
  struct TrieNode {
    uint8_t byte;
    uint32_t depth;
    uint32_t subtree_end;
    uint32_t tokens_begin, tokens_end;  // into trie_tokens(): tokens whose bytes end here
    uint32_t subtree_tokens_end;        // tokens of the nodes below: [tokens_end, this)
    // When every token below this node continues its prefix with whole
    // "plain" characters (kPlainRanges: not '"', '\' or a control), the most
    // such characters any of them adds; -1 otherwise. Lets the matcher allow
    // a whole subtree at once inside string-like rules.
    int32_t plain_chars;
    uint32_t prefix_chars;  // whole characters in this node's prefix
  };
  // Code points that JSON strings (and most text rules) take without escaping.
  static constexpr CharRange kPlainRanges[] = {
      {0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0xD7FF}, {0xE000, 0x10FFFF}};
  const std::vector<TrieNode>& trie() const { return trie_; }
  const std::vector<int32_t>& trie_tokens() const { return trie_tokens_; }
  // Per entry of trie_tokens(): how many whole characters the token has.
  const std::vector<uint32_t>& trie_token_chars() const { return trie_token_chars_; }
  uint32_t max_depth() const { return max_depth_; }
  const std::vector<int32_t>& eog_tokens() const { return eog_tokens_; }

 private:
  void ComputePlainRuns();  // fills subtree_tokens_end and plain_chars

  int32_t n_vocab_ = 0;
  std::vector<std::string> bytes_;
  std::vector<bool> is_eog_;
  std::vector<int32_t> eog_tokens_;
  std::vector<TrieNode> trie_;
  std::vector<int32_t> trie_tokens_;
  std::vector<uint32_t> trie_token_chars_;
  uint32_t max_depth_ = 0;
};

// The state of one constrained sequence. Not thread-safe: one sequence, one
// thread at a time (const methods update internal caches). Cheap to make;
// holds the grammar and vocabulary alive.
class GrammarMatcher {
 public:
  GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenVocab> vocab);

  // Whether `token` may come next (EOG: only when IsAccepting()). Walks only
  // the token's bytes: the cheap check for "sample, then verify".
  bool IsTokenAllowed(int32_t token) const;

  // Sets logits[i] = -INFINITY for every token i < n_vocab that may not come
  // next. Tokens at or past the vocabulary size (padded output layers) are
  // always masked. After an EOG token was accepted only EOG stays allowed.
  // When nothing at all can continue (a grammar needing a character no token
  // has) every logit is -INFINITY; callers should then stop with an error.
  void MaskLogits(float* logits, int32_t n_vocab) const;

  // The allowed tokens as a bitmap (bit i of word i/64), n_vocab bits.
  void AllowedTokens(std::vector<uint64_t>* bitmap) const;

  // Advances past `token`. InvalidArgument (the state unchanged) when it is
  // not allowed; an accepted EOG token ends the sequence.
  absl::Status Accept(int32_t token);
  // Advances past raw bytes (for tests and for text the caller forced, such
  // as a prefilled answer). InvalidArgument, state unchanged, if rejected.
  absl::Status AcceptBytes(std::string_view bytes);

  // The text so far is a complete sentence of the grammar (EOG may come).
  bool IsAccepting() const;
  // Accepting and no further character can follow, or an EOG token was
  // accepted: generation must stop.
  bool IsDone() const;
  // Back to the start of the grammar (keeps the caches).
  void Reset();

  // Statistics, for benchmarks and tests: parse states interned so far.
  size_t num_cached_states() const { return states_.size(); }

 private:
  // ---- parse stacks ----
  // A stack is a chain of interned nodes: `pos` is an index into the
  // grammar's symbols; the top node's pos is the next symbol to match, the
  // nodes below are where to continue in the calling rules. kEmptyStack is
  // the stack with nothing left: the sentence is complete.
  static constexpr int32_t kEmptyStack = -1;
  struct StackNode {
    uint32_t pos;
    int32_t parent;
  };
  int32_t InternNode(uint32_t pos, int32_t parent) const;
  // Rewrites `stack` until every result has a character set on top (or is
  // empty), expanding rule references into their alternatives; appends the
  // results to `out`.
  void Expand(int32_t stack, std::vector<int32_t>* out) const;

  // ---- parse states: sorted sets of stacks, interned ----
  // A state is what the parse looks like between characters; a half-read
  // UTF-8 character is kept beside it (Position), since all stacks have
  // read the same bytes.
  static constexpr int32_t kDead = -1;     // no stack survives
  static constexpr int32_t kUnknown = -2;  // transition not computed yet
  static constexpr int32_t kNotComputed = -3;
  struct State {
    std::vector<int32_t> stacks;  // sorted, unique
  };
  struct Position {
    int32_t state;
    uint32_t utf8;  // 0, or a half-read character (see matcher.cpp)
  };
  int32_t InternState(std::vector<int32_t> stacks) const;
  // The state after code point `cp` (cached: a table for ASCII, a hash map
  // for the rest).
  int32_t NextChar(int32_t state, uint32_t cp) const;
  int32_t ComputeNextChar(int32_t state, uint32_t cp) const;
  // One byte on; state kDead when it cannot fit.
  Position Step(Position at, uint8_t byte) const;
  Position Walk(Position at, const std::string& bytes) const;
  // The state after any one plain character (TokenVocab::kPlainRanges), when
  // all of them lead to the same state (every stack takes all or none of
  // them); kUnknown when they do not, kDead when none survives.
  int32_t PlainNext(int32_t state) const;  // cached
  int32_t ComputePlainNext(int32_t state) const;
  // How many plain characters in a row `state` surely survives (kEndless:
  // any number). *exact: and not one more (the run ends dead or never).
  static constexpr int32_t kEndless = 0x7FFF;
  int32_t PlainRun(int32_t state, bool* exact) const;
  int32_t InitialState() const;
  bool Accepts(Position at) const;
  // Drops every cache when it grew past its limit, keeping the current state.
  void MaybeCompact() const;
  const std::vector<uint64_t>& Allowed() const;

  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const TokenVocab> vocab_;

  mutable std::vector<StackNode> nodes_;
  mutable absl::flat_hash_map<uint64_t, int32_t> node_index_;
  mutable std::vector<std::vector<int32_t>> expansions_;  // per node, once computed
  mutable std::vector<bool> expanded_;

  mutable std::vector<State> states_;
  mutable absl::flat_hash_map<std::string, int32_t> state_index_;  // key: the stacks' bytes
  mutable std::vector<int32_t> ascii_next_;                       // 128 per state
  mutable absl::flat_hash_map<uint64_t, int32_t> char_next_;      // (state, cp) past ASCII
  mutable std::vector<int32_t> plain_next_;                       // per state, kNotComputed or PlainNext
  mutable std::vector<int16_t> plain_run_;                        // per state, -1: not computed
  mutable std::vector<uint8_t> plain_exact_;                      // per state
  mutable absl::flat_hash_map<uint64_t, std::vector<uint64_t>> masks_;  // allowed tokens per position

  mutable Position current_ = {kDead, 0};
  mutable int32_t initial_ = kDead;
  bool finished_ = false;  // an EOG token was accepted
  mutable std::vector<Position> walk_;  // scratch: one position per trie depth
};

}  // namespace yuan::grammar

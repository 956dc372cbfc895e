// TokenVocab: every token's bytes and a pre-order trie over them.
#include <algorithm>
#include <numeric>

#include "runtime/grammar/matcher.h"

namespace yuan::grammar {

std::shared_ptr<const TokenVocab> TokenVocab::Build(const Tokenizer& tok) {
  const int32_t n = tok.n_vocab();
  std::vector<std::string> bytes(n);
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < n; ++id) {
    if (tok.IsEog(id)) {
      eog.push_back(id);
      continue;
    }
    const TokenType type = tok.Type(id);
    if (type != TokenType::kNormal && type != TokenType::kByte) continue;
    bytes[id] = tok.TokenToPiece(id, /*render_special=*/false);
  }
  return FromBytes(std::move(bytes), eog);
}

std::shared_ptr<const TokenVocab> TokenVocab::FromBytes(std::vector<std::string> bytes,
                                                        const std::vector<int32_t>& eog_tokens) {
  auto v = std::make_shared<TokenVocab>();
  const int32_t n = static_cast<int32_t>(bytes.size());
  v->n_vocab_ = n;
  v->bytes_ = std::move(bytes);
  v->is_eog_.assign(n, false);
  for (const int32_t id : eog_tokens) {
    if (id < 0 || id >= n || v->is_eog_[id]) continue;
    v->is_eog_[id] = true;
    v->bytes_[id].clear();  // EOG is judged by the grammar state, not by bytes
    v->eog_tokens_.push_back(id);
  }
  std::vector<int32_t> usable;  // tokens with bytes: the only ones that can advance a grammar
  for (int32_t id = 0; id < n; ++id) {
    if (!v->bytes_[id].empty()) usable.push_back(id);
  }

  // Sorted by bytes, tokens sharing a prefix are neighbours, so the trie is
  // built in pre-order by keeping the path to the previous token.
  std::sort(usable.begin(), usable.end(), [&](int32_t a, int32_t b) {
    return v->bytes_[a] != v->bytes_[b] ? v->bytes_[a] < v->bytes_[b] : a < b;
  });
  v->trie_.push_back({0, 0, 0, 0, 0, 0, 0, 0});
  std::vector<uint32_t> path = {0};  // path[d]: node index of the prefix of length d
  const std::string* prev = nullptr;
  for (const int32_t id : usable) {
    const std::string& s = v->bytes_[id];
    size_t common = 0;
    if (prev != nullptr) {
      while (common < s.size() && common < prev->size() && s[common] == (*prev)[common]) ++common;
    }
    // Close the nodes of the previous token deeper than the shared prefix.
    while (path.size() - 1 > common) {
      v->trie_[path.back()].subtree_end = static_cast<uint32_t>(v->trie_.size());
      path.pop_back();
    }
    for (size_t d = common; d < s.size(); ++d) {
      const uint32_t index = static_cast<uint32_t>(v->trie_.size());
      const uint32_t tokens_at = static_cast<uint32_t>(v->trie_tokens_.size());
      v->trie_.push_back({static_cast<uint8_t>(s[d]), static_cast<uint32_t>(d + 1), 0, tokens_at,
                          tokens_at, 0, 0, 0});
      path.push_back(index);
    }
    // Tokens with equal bytes are adjacent, so each node's tokens are a run.
    TrieNode& node = v->trie_[path.back()];
    if (node.tokens_begin == node.tokens_end) {
      node.tokens_begin = static_cast<uint32_t>(v->trie_tokens_.size());
      node.tokens_end = node.tokens_begin;
    }
    v->trie_tokens_.push_back(id);
    node.tokens_end = static_cast<uint32_t>(v->trie_tokens_.size());
    v->max_depth_ = std::max(v->max_depth_, static_cast<uint32_t>(s.size()));
    prev = &s;
  }
  while (!path.empty()) {
    v->trie_[path.back()].subtree_end = static_cast<uint32_t>(v->trie_.size());
    path.pop_back();
  }
  v->ComputePlainRuns();
  return v;
}

namespace {
bool IsPlain(uint32_t cp) {
  for (const CharRange& r : TokenVocab::kPlainRanges) {
    if (cp >= r.lo && cp <= r.hi) return true;
  }
  return false;
}
}  // namespace

void TokenVocab::ComputePlainRuns() {
  std::vector<TrieNode>& trie = trie_;
  const size_t n = trie.size();
  for (TrieNode& node : trie) {
    node.subtree_tokens_end = node.subtree_end < n ? trie[node.subtree_end].tokens_begin
                                                   : static_cast<uint32_t>(trie_tokens_.size());
  }
  // Decode each node's prefix as UTF-8 (from the root, in pre-order).
  std::vector<uint32_t> parent(n, 0), value(n, 0);
  std::vector<uint8_t> need(n, 0), len(n, 0);
  std::vector<bool> invalid(n, false);
  std::vector<uint32_t> path(max_depth_ + 1, 0);
  for (size_t i = 1; i < n; ++i) {
    const uint32_t p = path[trie[i].depth - 1];
    parent[i] = p;
    path[trie[i].depth] = static_cast<uint32_t>(i);
    const uint8_t b = trie[i].byte;
    if (invalid[p]) {
      invalid[i] = true;
    } else if (need[p] == 0) {
      if (b < 0x80) { value[i] = b; need[i] = 0; len[i] = 1; }
      else if (b >= 0xC2 && b <= 0xDF) { value[i] = b & 0x1F; need[i] = 1; len[i] = 2; }
      else if (b >= 0xE0 && b <= 0xEF) { value[i] = b & 0x0F; need[i] = 2; len[i] = 3; }
      else if (b >= 0xF0 && b <= 0xF4) { value[i] = b & 0x07; need[i] = 3; len[i] = 4; }
      else invalid[i] = true;
    } else if ((b & 0xC0) == 0x80) {
      value[i] = (value[p] << 6) | (b & 0x3F);
      need[i] = need[p] - 1;
      len[i] = len[p];
    } else {
      invalid[i] = true;
    }
    if (!invalid[i] && need[i] == 0 && len[i] > 1) {
      const uint32_t cp = value[i];
      const uint32_t min = len[i] == 2 ? 0x80 : len[i] == 3 ? 0x800 : 0x10000;
      if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) invalid[i] = true;
    }
  }
  // Bottom-up (children come after their parent in pre-order): the most
  // plain characters below each node, or -1 when some token below is not
  // whole plain characters.
  std::vector<int32_t> below(n, 0);
  for (size_t i = n - 1; i >= 1; --i) {
    const TrieNode& node = trie[i];
    const bool has_tokens = node.tokens_end > node.tokens_begin;
    const bool complete = !invalid[i] && need[i] == 0;
    // A token may also end inside a character (byte-level BPE): it then
    // needs one more plain character to be possible, unless the character
    // could be a surrogate (lead byte 0xED), which we leave to the walk.
    bool partial_ok = true;
    if (!invalid[i] && need[i] > 0) {
      const uint32_t shift = 6 * need[i];
      const uint32_t lo = value[i] << shift, hi = lo | ((1u << shift) - 1);
      partial_ok = hi < 0xD800 || lo > 0xDFFF;
    }
    const bool ok = !invalid[i] && below[i] >= 0 && partial_ok && (!complete || IsPlain(value[i]));
    const int32_t via = !ok ? -1
                        : complete ? 1 + below[i]
                                   : std::max(has_tokens ? 1 : 0, below[i]);
    int32_t& up = below[parent[i]];
    if (via < 0) up = -1;
    else if (up >= 0) up = std::max(up, via);
  }
  // Only nodes at a character boundary can skip their subtree.
  for (size_t i = 0; i < n; ++i) {
    const bool boundary = i == 0 || (!invalid[i] && need[i] == 0);
    trie[i].plain_chars = boundary ? below[i] : -1;
  }
  // Whole characters per prefix and per token.
  trie[0].prefix_chars = 0;
  for (size_t i = 1; i < n; ++i) {
    const bool complete = !invalid[i] && need[i] == 0;
    trie[i].prefix_chars = trie[parent[i]].prefix_chars + (complete ? 1 : 0);
  }
  // A token ending inside a character counts that character too.
  trie_token_chars_.assign(trie_tokens_.size(), 0);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t partial = (i > 0 && !invalid[i] && need[i] > 0) ? 1 : 0;
    for (uint32_t t = trie[i].tokens_begin; t < trie[i].tokens_end; ++t) {
      trie_token_chars_[t] = trie[i].prefix_chars + partial;
    }
  }
}

}  // namespace yuan::grammar

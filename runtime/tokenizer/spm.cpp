#include "runtime/tokenizer/spm.h"

#include <algorithm>
#include <cstdio>
#include <queue>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/core/status.h"

namespace yuan {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space

// One piece of the text being merged: a contiguous byte range, linked to its
// neighbours so that a merge is O(1) (llama.cpp's llm_symbol).
struct Symbol {
  int prev;
  int next;
  size_t start;  // into the escaped text
  size_t n;      // 0 once merged into its left neighbour
};

// A candidate merge of two adjacent symbols whose concatenation is a piece.
struct Bigram {
  int left;
  int right;
  float score;
  size_t size;  // bytes of the concatenation, to detect stale entries
};

// Highest score first; on equal scores the leftmost pair first. This is
// llama.cpp's llm_bigram_spm::comparator, which decides every tie.
struct BigramLess {
  bool operator()(const Bigram& l, const Bigram& r) const {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  }
};

// Returns the byte a "<0xNN>" text stands for, or -1.
int ParseByteToken(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(text[3]);
  const int lo = hex(text[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string ReplaceAll(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

absl::Status CheckSpecialId(int32_t id, size_t n_vocab, const char* key) {
  if (id < -1 || (id >= 0 && static_cast<size_t>(id) >= n_vocab)) {
    return FormatError(
        absl::StrCat(key, " = ", id, " is outside the vocabulary of ", n_vocab, " tokens"));
  }
  return absl::OkStatus();
}

}  // namespace

size_t SpmCharLength(std::string_view s, size_t offset) {
  // llama.cpp's unicode_len_utf8: the length is read off the lead byte's high
  // nibble. Unlike llama.cpp we also require the continuation bytes to be
  // there; otherwise the lead byte stands alone, so invalid UTF-8 falls back
  // to one byte token per byte and still round-trips.
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  const size_t len = kLen[static_cast<uint8_t>(s[offset]) >> 4];
  if (len == 1 || offset + len > s.size()) return 1;
  for (size_t i = 1; i < len; ++i) {
    if ((static_cast<uint8_t>(s[offset + i]) & 0xC0) != 0x80) return 1;
  }
  return len;
}

absl::StatusOr<std::unique_ptr<SpmTokenizer>> SpmTokenizer::Create(SpmVocab vocab) {
  std::unique_ptr<SpmTokenizer> tok(new SpmTokenizer());
  tok->vocab_ = std::move(vocab);
  YUAN_RETURN_IF_ERROR(tok->Init());
  return tok;
}

absl::Status SpmTokenizer::Init() {
  SpmVocab& v = vocab_;
  const size_t n = v.tokens.size();
  if (n == 0) return FormatError("tokenizer.ggml.tokens is empty");
  if (n > static_cast<size_t>(INT32_MAX)) {
    return FormatError(absl::StrCat("tokenizer.ggml.tokens has ", n, " entries, too many"));
  }
  if (v.scores.empty()) v.scores.assign(n, 0.0f);
  if (v.scores.size() != n) {
    return FormatError(absl::StrCat("tokenizer.ggml.scores has ", v.scores.size(),
                                    " entries but tokenizer.ggml.tokens has ", n));
  }
  if (v.types.empty()) v.types.assign(n, TokenType::kNormal);
  if (v.types.size() != n) {
    return FormatError(absl::StrCat("tokenizer.ggml.token_type has ", v.types.size(),
                                    " entries but tokenizer.ggml.tokens has ", n));
  }
  YUAN_RETURN_IF_ERROR(CheckSpecialId(v.bos, n, "tokenizer.ggml.bos_token_id"));
  YUAN_RETURN_IF_ERROR(CheckSpecialId(v.eos, n, "tokenizer.ggml.eos_token_id"));
  YUAN_RETURN_IF_ERROR(CheckSpecialId(v.unk, n, "tokenizer.ggml.unknown_token_id"));
  YUAN_RETURN_IF_ERROR(CheckSpecialId(v.eot, n, "tokenizer.ggml.eot_token_id"));
  YUAN_RETURN_IF_ERROR(CheckSpecialId(v.eom, n, "tokenizer.ggml.eom_token_id"));
  if (v.add_bos && v.bos < 0) {
    return FormatError(
        "tokenizer.ggml.add_bos_token is true but there is no BOS token "
        "(tokenizer.ggml.bos_token_id)");
  }
  if (v.add_eos && v.eos < 0) {
    return FormatError(
        "tokenizer.ggml.add_eos_token is true but there is no EOS token "
        "(tokenizer.ggml.eos_token_id)");
  }

  // llama.cpp renames empty pieces so that they can never match (an empty
  // piece would "merge" with nothing and loop).
  for (size_t i = 0; i < n; ++i) {
    if (v.tokens[i].empty()) v.tokens[i] = absl::StrCat("[EMPTY_", i, "]");
  }

  // From here on vocab_.tokens is never modified, so views into it are stable.
  piece_to_id_.reserve(n);
  byte_value_.assign(n, -1);
  for (size_t i = 0; i < n; ++i) {
    const std::string_view text = v.tokens[i];
    const auto [it, inserted] = piece_to_id_.emplace(text, static_cast<int32_t>(i));
    if (!inserted) {
      return FormatError(absl::StrCat("tokenizer.ggml.tokens: duplicate piece '", Sv(text),
                                      "' at ids ", it->second, " and ", i));
    }
    max_piece_len_ = std::max(max_piece_len_, text.size());
    if (v.types[i] == TokenType::kByte) {
      const int b = ParseByteToken(text);
      if (b < 0) {
        return FormatError(absl::StrCat("tokenizer.ggml.token_type: token ", i, " '", Sv(text),
                                        "' is a byte token but is not spelled <0xNN>"));
      }
      byte_value_[i] = static_cast<int16_t>(b);
    }
    if (v.types[i] == TokenType::kControl || v.types[i] == TokenType::kUserDefined ||
        v.types[i] == TokenType::kUnknown) {
      special_ids_.push_back(static_cast<int32_t>(i));
    }
  }

  // llama.cpp's byte_to_token: "<0xNN>", else the byte as a one-character
  // piece. Where llama.cpp would throw we use <unk>, or drop the byte.
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    int32_t id = Find(buf);
    if (id < 0) id = Find(std::string(1, static_cast<char>(b)));
    if (id < 0) id = v.unk;
    byte_fallback_[b] = id;
  }

  // Longest first, as llama.cpp sorts its special-token cache; equal lengths
  // keep id order (llama.cpp's std::sort leaves that order unspecified).
  std::stable_sort(special_ids_.begin(), special_ids_.end(),
                   [&](int32_t a, int32_t b) { return v.tokens[a].size() > v.tokens[b].size(); });
  return absl::OkStatus();
}

int32_t SpmTokenizer::Find(std::string_view piece) const {
  const auto it = piece_to_id_.find(piece);
  return it == piece_to_id_.end() ? -1 : it->second;
}

float SpmTokenizer::Score(int32_t id) const {
  return id >= 0 && id < n_vocab() ? vocab_.scores[id] : 0.0f;
}

bool SpmTokenizer::IsEog(int32_t id) const {
  return id >= 0 && (id == vocab_.eos || id == vocab_.eot || id == vocab_.eom);
}

TokenType SpmTokenizer::Type(int32_t id) const {
  return id >= 0 && id < n_vocab() ? vocab_.types[id] : TokenType::kUndefined;
}

std::string_view SpmTokenizer::Text(int32_t id) const {
  return id >= 0 && id < n_vocab() ? std::string_view(vocab_.tokens[id]) : std::string_view();
}

std::vector<SpmTokenizer::Fragment> SpmTokenizer::Partition(std::string_view text,
                                                            bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, text});
  // llama.cpp's tokenizer_st_partition: each special token in turn (longest
  // first) splits every remaining raw span at each of its occurrences.
  // User-defined tokens are always split out; control and unknown tokens
  // only with parse_special.
  std::vector<Fragment> next;
  for (const int32_t id : special_ids_) {
    const TokenType type = vocab_.types[id];
    if (!parse_special && (type == TokenType::kControl || type == TokenType::kUnknown)) continue;
    const std::string_view piece = vocab_.tokens[id];
    bool found = false;
    for (const Fragment& f : frags) {
      if (f.token < 0 && f.text.find(piece) != std::string_view::npos) {
        found = true;
        break;
      }
    }
    if (!found) continue;
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      std::string_view rest = f.text;
      size_t pos;
      while ((pos = rest.find(piece)) != std::string_view::npos) {
        if (pos > 0) next.push_back({-1, rest.substr(0, pos)});
        next.push_back({id, {}});
        rest.remove_prefix(pos + piece.size());
      }
      if (!rest.empty()) next.push_back({-1, rest});
    }
    frags.swap(next);
  }
  return frags;
}

std::vector<int32_t> SpmTokenizer::Encode(std::string_view text,
                                          const EncodeOptions& options) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 2 + 2);
  // EncodeOptions::add_bos is llama.cpp's add_special: BOS and EOS are added
  // as the vocabulary asks (add_bos_token / add_eos_token).
  const bool add_special = options.add_bos;
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);

  // llama.cpp prefixes a space to the first raw span and to every raw span
  // that follows a special token.
  bool prev_special = !options.continuation;
  for (const Fragment& f : Partition(text, options.parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
    } else {
      EncodeFragment(f.text, vocab_.add_space_prefix && prev_special, &out);
      prev_special = false;
    }
  }

  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  return out;
}

void SpmTokenizer::EncodeFragment(std::string_view raw, bool space_prefix,
                                  std::vector<int32_t>* out) const {
  // Escape: every ' ' becomes "▁", optionally with a leading one.
  std::string text;
  text.reserve(raw.size() + (raw.size() >> 2) + kSpace.size());
  if (space_prefix) text.append(kSpace);
  for (const char c : raw) {
    if (c == ' ') {
      text.append(kSpace);
    } else {
      text.push_back(c);
    }
  }
  if (text.empty()) return;

  // One symbol per character, linked in order.
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t offset = 0; offset < text.size();) {
    const size_t len = SpmCharLength(text, offset);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, offset + len == text.size() ? -1 : index + 1, offset, len});
    offset += len;
  }

  // The bigram of two adjacent symbols, if their concatenation is a piece.
  auto make_bigram = [&](int left, int right, Bigram* out) {
    if (left == -1 || right == -1) return false;
    const size_t size = symbols[left].n + symbols[right].n;
    // No piece is longer than max_piece_len_, so skip the lookup.
    if (size > max_piece_len_) return false;
    const int32_t id = Find(std::string_view(text.data() + symbols[left].start, size));
    if (id < 0) return false;
    *out = {left, right, vocab_.scores[id], size};
    return true;
  };

  // Seed with every adjacent pair; heapifying once is O(n), where n pushes
  // would be O(n log n). The pop order only depends on the comparator, so
  // this gives the same merges as llama.cpp's one-by-one pushes.
  std::vector<Bigram> seed;
  seed.reserve(symbols.size());
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) {
    Bigram b;
    if (make_bigram(i - 1, i, &b)) seed.push_back(b);
  }
  std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue(BigramLess(), std::move(seed));
  auto try_add_bigram = [&](int left, int right) {
    Bigram b;
    if (make_bigram(left, right, &b)) queue.push(b);
  };

  // Merge the best pair until none is left. An entry is stale when either
  // side has since been merged; symbol sizes only grow, so comparing the
  // summed size with the recorded one detects exactly that.
  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    if (left.n == 0 || right.n == 0 || left.n + right.n != bigram.size) continue;

    left.n += right.n;
    right.n = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;

    try_add_bigram(left.prev, bigram.left);
    try_add_bigram(bigram.left, left.next);
  }

  // Every merged symbol is a piece by construction; what is left over is a
  // single character that is not, and falls back to one token per byte.
  // (llama.cpp's resegment also consults a reverse-merge map, but that path
  // is only reachable for merged symbols, which are always pieces.)
  for (int i = 0; i != -1; i = symbols[i].next) {
    const Symbol& sym = symbols[i];
    const std::string_view piece(text.data() + sym.start, sym.n);
    const int32_t id = Find(piece);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    for (const char c : piece) {
      const int32_t b = byte_fallback_[static_cast<uint8_t>(c)];
      if (b >= 0) out->push_back(b);
    }
  }
}

std::string SpmTokenizer::TokenToPiece(int32_t id, bool render_special) const {
  if (id < 0 || id >= n_vocab()) return "";
  const std::string& text = vocab_.tokens[id];
  switch (vocab_.types[id]) {
    case TokenType::kNormal:
      return ReplaceAll(text, kSpace, " ");
    case TokenType::kByte:
      return std::string(1, static_cast<char>(byte_value_[id]));
    case TokenType::kUserDefined:
      return text;
    case TokenType::kControl:
    case TokenType::kUnknown:
      return render_special ? text : std::string();
    case TokenType::kUnused:
    case TokenType::kUndefined:
      // llama.cpp prints nothing for these, even with render_special.
      return "";
  }
  return "";
}

std::string SpmTokenizer::Decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string out;
  size_t i = 0;
  // The space Encode prefixed sits at the start of a text. We know a sequence
  // starts a text when it begins with BOS (or the vocabulary never adds BOS);
  // a continuation such as generated tokens keeps its leading space, as
  // llama.cpp's per-token pieces do.
  const bool starts_text =
      !ids.empty() && ((vocab_.bos >= 0 && ids[0] == vocab_.bos) || !vocab_.add_bos);
  bool strip = vocab_.add_space_prefix && starts_text;
  for (; i < ids.size() && vocab_.bos >= 0 && ids[i] == vocab_.bos; ++i) {
    out += TokenToPiece(ids[i], render_special);
  }
  for (; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= n_vocab()) continue;  // nothing to print, nor to strip
    std::string piece = TokenToPiece(ids[i], render_special);
    if (strip) {
      if (!piece.empty() && piece[0] == ' ') piece.erase(0, 1);
      strip = false;
    }
    out += piece;
  }
  return out;
}

}  // namespace yuan

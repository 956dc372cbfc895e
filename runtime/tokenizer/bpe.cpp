#include "runtime/tokenizer/bpe.h"

#include <utf8proc.h>

#include <algorithm>
#include <queue>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/core/status.h"

namespace yuan {
namespace {

// ---------------------------------------------------------------------------
// Code points and their classes.

enum : uint8_t {
  kL = 1 << 0,        // \p{L}
  kN = 1 << 1,        // \p{N}
  kWs = 1 << 2,       // \s (Unicode White_Space)
  kP = 1 << 3,        // \p{P}
  kS = 1 << 4,        // \p{S}
  kM = 1 << 5,        // \p{M}
  kNl = 1 << 6,       // \r or \n
  kInvalid = 1 << 7,  // a byte that is not valid UTF-8 (no category)
};

struct Cp {
  uint32_t cp;
  uint32_t offset;  // bytes into the text
  uint8_t flags;
};

bool IsWhiteSpace(uint32_t c) {
  // Unicode's White_Space property (what Rust's regex / Oniguruma and
  // llama.cpp call \s).
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

uint8_t ComputeFlags(uint32_t c) {
  uint8_t f = 0;
  if (IsWhiteSpace(c)) f |= kWs;
  if (c == '\r' || c == '\n') f |= kNl;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      f |= kL;
      break;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      f |= kN;
      break;
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      f |= kP;
      break;
    case UTF8PROC_CATEGORY_SM:
    case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO:
      f |= kS;
      break;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
      f |= kM;
      break;
    default:
      break;
  }
  return f;
}

// Flags of the Basic Multilingual Plane, computed once.
const std::vector<uint8_t>& BmpFlags() {
  static const std::vector<uint8_t>* table = [] {
    auto* t = new std::vector<uint8_t>(0x10000);
    for (uint32_t c = 0; c < 0x10000; ++c) (*t)[c] = ComputeFlags(c);
    return t;
  }();
  return *table;
}

uint8_t Flags(uint32_t c) { return c < 0x10000 ? BmpFlags()[c] : ComputeFlags(c); }

// Decodes `text` into code points; each byte of an invalid sequence
// (overlong, surrogate, truncated, > U+10FFFF) is a code point of its own
// with kInvalid and no category.
std::vector<Cp> Decode(std::string_view text) {
  std::vector<Cp> cps;
  cps.reserve(text.size());
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const uint8_t b = s[i];
    if (b < 0x80) {
      cps.push_back({b, static_cast<uint32_t>(i), Flags(b)});
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t c = 0;
    uint32_t min = 0;
    if ((b & 0xE0) == 0xC0) {
      len = 2, c = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3, c = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4, c = b & 0x07, min = 0x10000;
    }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) ok = false;
      c = (c << 6) | (s[i + k] & 0x3F);
    }
    ok = ok && c >= min && c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF);
    if (!ok) {
      cps.push_back({0xFFFD, static_cast<uint32_t>(i), kInvalid});
      ++i;
      continue;
    }
    cps.push_back({c, static_cast<uint32_t>(i), Flags(c)});
    i += len;
  }
  return cps;
}

bool Is(const Cp& c, uint8_t mask) { return (c.flags & mask) != 0; }
char AsciiLower(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return static_cast<char>(c - 'A' + 'a');
  return c < 0x80 ? static_cast<char>(c) : '\0';
}

// Length of a contraction ('s 't 're 've 'm 'll 'd) at i, or 0.
size_t MatchContraction(const std::vector<Cp>& cps, size_t i, size_t e, bool ignore_case) {
  if (cps[i].cp != '\'' || i + 1 >= e) return 0;
  auto ch = [&](size_t k) -> char {
    if (k >= e) return '\0';
    return ignore_case ? AsciiLower(cps[k].cp) : (cps[k].cp < 0x80 ? char(cps[k].cp) : '\0');
  };
  const char c1 = ch(i + 1);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  const char c2 = ch(i + 2);
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

// The common whitespace tail of every rule: \s*[\r\n]+ (when `newlines`),
// then \s+(?!\S), then \s+. Returns the end, or i when cps[i] is not space.
size_t MatchWhitespace(const std::vector<Cp>& cps, size_t i, size_t e, bool newlines) {
  if (!Is(cps[i], kWs)) return i;
  size_t k = i;
  size_t last_nl = e;
  while (k < e && Is(cps[k], kWs)) {
    if (Is(cps[k], kNl)) last_nl = k;
    ++k;
  }
  if (newlines && last_nl != e) return last_nl + 1;  // \s*[\r\n]+
  if (k == e) return k;                              // \s+(?!\S) at the end
  if (k - i >= 2) return k - 1;                      // leave one for the next word
  return k;                                          // \s+
}

using Matcher = size_t (*)(const std::vector<Cp>&, size_t, size_t);

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
template <size_t kMaxDigits>
size_t MatchLlama3(const std::vector<Cp>& cps, size_t i, size_t e) {
  if (size_t n = MatchContraction(cps, i, e, true); n > 0) return i + n;
  const Cp& c = cps[i];
  size_t j = Is(c, kNl | kL | kN) ? i : i + 1;
  if (j < e && Is(cps[j], kL)) {
    while (j < e && Is(cps[j], kL)) ++j;
    return j;
  }
  if (Is(c, kN)) {
    j = i;
    while (j < e && Is(cps[j], kN) && j - i < kMaxDigits) ++j;
    return j;
  }
  j = c.cp == ' ' ? i + 1 : i;
  if (j < e && !Is(cps[j], kWs | kL | kN)) {
    while (j < e && !Is(cps[j], kWs | kL | kN)) ++j;
    while (j < e && Is(cps[j], kNl)) ++j;
    return j;
  }
  return MatchWhitespace(cps, i, e, true);
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
size_t MatchGpt2(const std::vector<Cp>& cps, size_t i, size_t e) {
  if (size_t n = MatchContraction(cps, i, e, false); n > 0) return i + n;
  const size_t j0 = cps[i].cp == ' ' ? i + 1 : i;
  if (j0 < e) {
    for (const uint8_t cls : {uint8_t{kL}, uint8_t{kN}}) {
      if (Is(cps[j0], cls)) {
        size_t j = j0;
        while (j < e && Is(cps[j], cls)) ++j;
        return j;
      }
    }
    if (!Is(cps[j0], kWs | kL | kN)) {
      size_t j = j0;
      while (j < e && !Is(cps[j], kWs | kL | kN)) ++j;
      return j;
    }
  }
  return MatchWhitespace(cps, i, e, false);
}

// \p{N}{1,3}
size_t MatchDigits3(const std::vector<Cp>& cps, size_t i, size_t e) {
  size_t j = i;
  while (j < e && Is(cps[j], kN) && j - i < 3) ++j;
  return j;
}

// [一-龥぀-ゟ゠-ヿ]+
size_t MatchCjkRun(const std::vector<Cp>& cps, size_t i, size_t e) {
  auto cjk = [](uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x3040 && c <= 0x309F) ||
           (c >= 0x30A0 && c <= 0x30FF);
  };
  size_t j = i;
  while (j < e && cjk(cps[j].cp)) ++j;
  return j;
}

// [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|
//  ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
size_t MatchDeepseekWords(const std::vector<Cp>& cps, size_t i, size_t e) {
  auto ascii_alpha = [](uint32_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
  auto ascii_punct = [](uint32_t c) {
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
           (c >= '{' && c <= '~');
  };
  const Cp& c = cps[i];
  if (ascii_punct(c.cp) && i + 1 < e && ascii_alpha(cps[i + 1].cp)) {
    size_t j = i + 1;
    while (j < e && ascii_alpha(cps[j].cp)) ++j;
    return j;
  }
  {
    // The optional prefix may itself be a mark; either way the match runs to
    // the end of the [\p{L}\p{M}] run.
    size_t j = (Is(c, kNl | kL | kP | kS | kM)) ? i : i + 1;
    if (j < e && Is(cps[j], kL | kM)) {
      while (j < e && Is(cps[j], kL | kM)) ++j;
      return j;
    }
  }
  {
    size_t j = c.cp == ' ' ? i + 1 : i;
    if (j < e && Is(cps[j], kP | kS)) {
      while (j < e && Is(cps[j], kP | kS)) ++j;
      while (j < e && Is(cps[j], kNl)) ++j;
      return j;
    }
  }
  return MatchWhitespace(cps, i, e, true);
}

struct Span {
  size_t b, e;  // code point indices
};

// One "Split(pattern, Isolated)" pass: every match and every gap between
// matches becomes a span of its own.
void SplitIsolated(const std::vector<Cp>& cps, const std::vector<Span>& in, Matcher match,
                   std::vector<Span>* out) {
  out->clear();
  for (const Span& s : in) {
    size_t gap = s.b;
    for (size_t i = s.b; i < s.e;) {
      const size_t m = match(cps, i, s.e);
      if (m > i) {
        if (gap < i) out->push_back({gap, i});
        out->push_back({i, m});
        i = m;
        gap = m;
      } else {
        ++i;
      }
    }
    if (gap < s.e) out->push_back({gap, s.e});
  }
}

// GPT-2's bytes_to_unicode.
struct ByteTables {
  std::array<std::string, 256> to_utf8;
  std::array<uint32_t, 256> to_cp;
  ByteTables() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : 256u + n++;
      to_cp[b] = cp;
      // Every such code point is < 0x800: two bytes at most.
      if (cp < 0x80) {
        to_utf8[b] = std::string(1, static_cast<char>(cp));
      } else {
        to_utf8[b] = {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
      }
    }
  }
};

const ByteTables& Bytes() {
  static const ByteTables* t = new ByteTables();
  return *t;
}

absl::Status CheckSpecialId(int32_t id, size_t n_vocab, const char* key) {
  if (id < -1 || (id >= 0 && static_cast<size_t>(id) >= n_vocab)) {
    return FormatError(
        absl::StrCat(key, " = ", id, " is outside the vocabulary of ", n_vocab, " tokens"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view ByteToUnicode(uint8_t byte) { return Bytes().to_utf8[byte]; }

int UnicodeToByte(uint32_t code_point) {
  if (code_point < 256) {
    const bool printable = (code_point >= '!' && code_point <= '~') ||
                           (code_point >= 0xA1 && code_point <= 0xAC) || code_point >= 0xAE;
    return printable ? static_cast<int>(code_point) : -1;
  }
  static const std::array<int16_t, 256>* rev = [] {
    auto* r = new std::array<int16_t, 256>();
    r->fill(-1);
    for (int b = 0; b < 256; ++b) {
      if (Bytes().to_cp[b] >= 256) (*r)[Bytes().to_cp[b] - 256] = static_cast<int16_t>(b);
    }
    return r;
  }();
  return code_point < 512 ? (*rev)[code_point - 256] : -1;
}

absl::StatusOr<BpePreTokenizer> BpePreTokenizerFromName(std::string_view name,
                                                        bool* ignore_merges) {
  bool ignore = false;
  BpePreTokenizer pre;
  if (name == "llama-bpe" || name == "llama3" || name == "llama-v3") {
    pre = BpePreTokenizer::kLlama3;
    ignore = true;
  } else if (name == "smaug-bpe" || name == "dbrx") {
    pre = BpePreTokenizer::kLlama3;
  } else if (name == "qwen2" || name == "deepseek-r1-qwen") {
    pre = BpePreTokenizer::kQwen2;
  } else if (name == "deepseek-v3") {
    pre = BpePreTokenizer::kDeepseekV3;
  } else if (name == "gpt-2" || name == "gpt2") {
    pre = BpePreTokenizer::kGpt2;
  } else {
    return absl::UnimplementedError(absl::StrCat(
        "byte-level BPE pre-tokenizer '", Sv(name),
        "' (tokenizer.ggml.pre) is not supported; supported: llama-bpe, qwen2, deepseek-v3, "
        "gpt-2, smaug-bpe, dbrx, deepseek-r1-qwen"));
  }
  if (ignore_merges != nullptr) *ignore_merges = ignore;
  return pre;
}

std::string_view BpePreTokenizerName(BpePreTokenizer pre) {
  switch (pre) {
    case BpePreTokenizer::kGpt2:
      return "gpt-2";
    case BpePreTokenizer::kLlama3:
      return "llama-bpe";
    case BpePreTokenizer::kQwen2:
      return "qwen2";
    case BpePreTokenizer::kDeepseekV3:
      return "deepseek-v3";
  }
  return "";
}

std::vector<std::string_view> PreTokenize(BpePreTokenizer pre, std::string_view text) {
  std::vector<std::string_view> words;
  if (text.empty()) return words;
  const std::vector<Cp> cps = Decode(text);
  std::vector<Span> spans = {{0, cps.size()}};
  std::vector<Span> next;
  switch (pre) {
    case BpePreTokenizer::kGpt2:
      SplitIsolated(cps, spans, &MatchGpt2, &next);
      break;
    case BpePreTokenizer::kLlama3:
      SplitIsolated(cps, spans, &MatchLlama3<3>, &next);
      break;
    case BpePreTokenizer::kQwen2:
      SplitIsolated(cps, spans, &MatchLlama3<1>, &next);
      break;
    case BpePreTokenizer::kDeepseekV3:
      SplitIsolated(cps, spans, &MatchDigits3, &next);
      SplitIsolated(cps, next, &MatchCjkRun, &spans);
      SplitIsolated(cps, spans, &MatchDeepseekWords, &next);
      break;
  }
  words.reserve(next.size());
  for (const Span& s : next) {
    const size_t begin = cps[s.b].offset;
    const size_t end = s.e < cps.size() ? cps[s.e].offset : text.size();
    words.push_back(text.substr(begin, end - begin));
  }
  return words;
}

// ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Create(BpeVocab vocab) {
  std::unique_ptr<BpeTokenizer> tok(new BpeTokenizer());
  tok->vocab_ = std::move(vocab);
  YUAN_RETURN_IF_ERROR(tok->Init());
  return tok;
}

absl::Status BpeTokenizer::Init() {
  BpeVocab& v = vocab_;
  const size_t n = v.tokens.size();
  if (n == 0) return FormatError("tokenizer.ggml.tokens is empty");
  if (n > static_cast<size_t>(INT32_MAX)) {
    return FormatError(absl::StrCat("tokenizer.ggml.tokens has ", n, " entries, too many"));
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
  for (size_t i = 0; i < n; ++i) {
    if (v.tokens[i].empty()) v.tokens[i] = absl::StrCat("[EMPTY_", i, "]");
  }
  text_to_id_.reserve(n);
  std::vector<int32_t> special_ids;
  for (size_t i = 0; i < n; ++i) {
    // Duplicates happen in real vocabularies (an added token repeating a
    // piece); the first id wins, as in llama.cpp's token_to_id map.
    text_to_id_.emplace(v.tokens[i], static_cast<int32_t>(i));
    const TokenType t = v.types[i];
    if (t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown) {
      special_ids.push_back(static_cast<int32_t>(i));
    }
  }
  std::stable_sort(special_ids.begin(), special_ids.end(),
                   [&](int32_t a, int32_t b) { return v.tokens[a].size() > v.tokens[b].size(); });
  for (const int32_t id : special_ids) {
    special_by_byte_[static_cast<uint8_t>(v.tokens[id][0])].push_back(id);
  }
  for (int b = 0; b < 256; ++b) byte_token_[b] = Find(ByteToUnicode(static_cast<uint8_t>(b)));

  merges_.reserve(v.merges.size());
  for (size_t r = 0; r < v.merges.size(); ++r) {
    const std::string_view m = v.merges[r];
    // Split at the first space that is not the first character (a merge
    // of a token that starts with a space never happens in byte-level
    // spelling, but llama.cpp splits at the first space from position 1).
    const size_t sp = m.find(' ', 1);
    if (sp == std::string_view::npos) {
      return FormatError(absl::StrCat("tokenizer.ggml.merges[", r, "] = '", Sv(m),
                                      "' is not two tokens separated by a space"));
    }
    const std::string_view left = m.substr(0, sp);
    const std::string_view right = m.substr(sp + 1);
    const int32_t a = Find(left);
    const int32_t b = Find(right);
    const int32_t c = Find(absl::StrCat(Sv(left), Sv(right)));
    if (a < 0 || b < 0 || c < 0) {
      return FormatError(absl::StrCat("tokenizer.ggml.merges[", r, "] = '", Sv(m),
                                      "' names a token that is not in tokenizer.ggml.tokens"));
    }
    // The first (lowest-rank) entry of a duplicated merge wins.
    merges_.emplace(PairKey(a, b), Merge{static_cast<int32_t>(r), c});
  }
  return absl::OkStatus();
}

int32_t BpeTokenizer::Find(std::string_view text) const {
  const auto it = text_to_id_.find(text);
  return it == text_to_id_.end() ? -1 : it->second;
}

bool BpeTokenizer::IsEog(int32_t id) const {
  return id >= 0 && (id == vocab_.eos || id == vocab_.eot || id == vocab_.eom);
}

TokenType BpeTokenizer::Type(int32_t id) const {
  return id >= 0 && id < n_vocab() ? vocab_.types[id] : TokenType::kUndefined;
}

std::string_view BpeTokenizer::Text(int32_t id) const {
  return id >= 0 && id < n_vocab() ? std::string_view(vocab_.tokens[id]) : std::string_view();
}

void BpeTokenizer::EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
  const ByteTables& bt = Bytes();
  if (vocab_.ignore_merges) {
    std::string spelled;
    spelled.reserve(word.size() * 2);
    for (const char ch : word) spelled += bt.to_utf8[static_cast<uint8_t>(ch)];
    if (const int32_t id = Find(spelled); id >= 0) {
      out->push_back(id);
      return;
    }
  }
  if (word.size() == 1) {
    const int32_t id = byte_token_[static_cast<uint8_t>(word[0])];
    if (id >= 0) out->push_back(id);
    return;
  }
  auto merge_of = [&](int32_t a, int32_t b) -> const Merge* {
    if (a < 0 || b < 0) return nullptr;
    const auto it = merges_.find(PairKey(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  };

  // Short words (almost all of them): arrays on the stack, the rank of each
  // adjacent pair kept up to date, the lowest (leftmost on ties) merged
  // first. Same result as the queue below, without allocations.
  constexpr size_t kShort = 48;
  if (word.size() <= kShort) {
    constexpr int32_t kNone = INT32_MAX;
    int32_t ids[kShort];
    int32_t rank[kShort];  // rank[i]: merge of ids[i], ids[i + 1]
    size_t n = word.size();
    for (size_t i = 0; i < n; ++i) ids[i] = byte_token_[static_cast<uint8_t>(word[i])];
    auto rank_at = [&](size_t i) {
      const Merge* m = merge_of(ids[i], ids[i + 1]);
      return m == nullptr ? kNone : m->rank;
    };
    for (size_t i = 0; i + 1 < n; ++i) rank[i] = rank_at(i);
    while (n > 1) {
      size_t best = 0;
      for (size_t i = 1; i + 1 < n; ++i) {
        if (rank[i] < rank[best]) best = i;
      }
      if (rank[best] == kNone) break;
      ids[best] = merge_of(ids[best], ids[best + 1])->result;
      for (size_t i = best + 1; i + 1 < n; ++i) ids[i] = ids[i + 1];
      for (size_t i = best + 1; i + 2 < n; ++i) rank[i] = rank[i + 1];
      --n;
      if (best > 0) rank[best - 1] = rank_at(best - 1);
      if (best + 1 < n) rank[best] = rank_at(best);
    }
    for (size_t i = 0; i < n; ++i) {
      if (ids[i] >= 0) out->push_back(ids[i]);
    }
    return;
  }

  struct Symbol {
    int32_t id;
    int prev;
    int next;
  };
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    const int idx = static_cast<int>(i);
    sym.push_back(
        {byte_token_[static_cast<uint8_t>(word[i])], idx - 1, i + 1 == word.size() ? -1 : idx + 1});
  }
  struct Cand {
    int32_t rank;
    int left;
    int32_t left_id;
    int32_t right_id;
  };
  struct CandGreater {
    bool operator()(const Cand& a, const Cand& b) const {
      return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
  };
  std::vector<Cand> seed;
  seed.reserve(sym.size());
  auto lookup = [&](int left, Cand* c) {
    if (left < 0) return false;
    const int right = sym[left].next;
    if (right < 0 || sym[left].id < 0 || sym[right].id < 0) return false;
    const auto it = merges_.find(PairKey(sym[left].id, sym[right].id));
    if (it == merges_.end()) return false;
    *c = {it->second.rank, left, sym[left].id, sym[right].id};
    return true;
  };
  for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) {
    Cand c;
    if (lookup(i, &c)) seed.push_back(c);
  }
  std::priority_queue<Cand, std::vector<Cand>, CandGreater> queue(CandGreater(), std::move(seed));
  while (!queue.empty()) {
    const Cand c = queue.top();
    queue.pop();
    Symbol& left = sym[c.left];
    if (left.id != c.left_id || left.next < 0) continue;  // merged away or changed
    Symbol& right = sym[left.next];
    if (right.id != c.right_id) continue;
    const auto it = merges_.find(PairKey(c.left_id, c.right_id));
    left.id = it->second.result;
    right.id = -2;  // dead
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = c.left;
    Cand n;
    if (lookup(left.prev, &n)) queue.push(n);
    if (lookup(c.left, &n)) queue.push(n);
  }
  for (int i = 0; i != -1; i = sym[i].next) {
    if (sym[i].id >= 0) out->push_back(sym[i].id);
  }
}

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text,
                                          const EncodeOptions& options) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  const bool add_special = options.add_bos;
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);

  // Added tokens: at each position the longest one that starts there
  // (Hugging Face's leftmost-longest match). User-defined tokens always,
  // control / unknown ones only with parse_special.
  auto encode_raw = [&](std::string_view raw) {
    for (const std::string_view w : PreTokenize(vocab_.pre, raw)) EncodeWord(w, &out);
  };
  size_t raw_begin = 0;
  for (size_t i = 0; i < text.size();) {
    int32_t hit = -1;
    for (const int32_t id : special_by_byte_[static_cast<uint8_t>(text[i])]) {  // longest first
      if (!options.parse_special && vocab_.types[id] != TokenType::kUserDefined) continue;
      const std::string& t = vocab_.tokens[id];
      if (text.compare(i, t.size(), t) == 0) {
        hit = id;
        break;
      }
    }
    if (hit < 0) {
      ++i;
      continue;
    }
    if (raw_begin < i) encode_raw(text.substr(raw_begin, i - raw_begin));
    out.push_back(hit);
    i += vocab_.tokens[hit].size();
    raw_begin = i;
  }
  if (raw_begin < text.size()) encode_raw(text.substr(raw_begin));
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  return out;
}

std::string BpeTokenizer::TokenToPiece(int32_t id, bool render_special) const {
  if (id < 0 || id >= n_vocab()) return "";
  const std::string& text = vocab_.tokens[id];
  switch (vocab_.types[id]) {
    case TokenType::kNormal:
    case TokenType::kByte: {
      // Undo the byte-level spelling; a code point outside the table is
      // kept as it is.
      std::string out;
      out.reserve(text.size());
      const auto* s = reinterpret_cast<const uint8_t*>(text.data());
      for (size_t i = 0; i < text.size();) {
        if (s[i] < 0x80) {
          const int b = UnicodeToByte(s[i]);
          out.push_back(static_cast<char>(b >= 0 ? b : s[i]));
          ++i;
        } else if ((s[i] & 0xE0) == 0xC0 && i + 1 < text.size()) {
          const uint32_t cp = ((s[i] & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
          const int b = UnicodeToByte(cp);
          if (b >= 0) {
            out.push_back(static_cast<char>(b));
          } else {
            out.append(text, i, 2);
          }
          i += 2;
        } else {
          out.push_back(static_cast<char>(s[i]));
          ++i;
        }
      }
      return out;
    }
    case TokenType::kUserDefined:
      return text;
    case TokenType::kControl:
    case TokenType::kUnknown:
      return render_special ? text : std::string();
    case TokenType::kUnused:
    case TokenType::kUndefined:
      return "";
  }
  return "";
}

std::string BpeTokenizer::Decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string out;
  for (const int32_t id : ids) out += TokenToPiece(id, render_special);
  return out;
}

}  // namespace yuan

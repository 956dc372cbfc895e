// `pattern` regular expressions -> GBNF over JSON-encoded string content.
//
// Supported: literals, escapes (\n \t \r \f \v \0 \xHH \uHHHH and escaped
// punctuation), classes [...] and [^...] with ranges, the shorthands \d \w \s
// and (ASCII only) \D \W \S, '.', groups ( ) and (?: ), '|', quantifiers
// * + ? {m} {m,} {m,n} (lazy forms too), and '^' / '$' at the very start /
// end. Anything else (look-around, back-references, \b, flags) is an error.
//
// The text matched is the *decoded* string, but the grammar produces its
// JSON encoding, so a '"' in the set becomes the two characters \" and so on.
// Shorthands stay within what both ECMA-262 and Python's `re` (which Python
// validators use) would match: \d is [0-9], \w is [A-Za-z0-9_], and the
// negated shorthands are limited to ASCII.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/grammar/grammar.h"
#include "runtime/grammar/json_schema.h"

namespace yuan::grammar {
namespace {

using Ranges = std::vector<CharRange>;

Ranges Normalize(Ranges r) {
  std::sort(r.begin(), r.end(), [](const CharRange& a, const CharRange& b) { return a.lo < b.lo; });
  Ranges out;
  for (const CharRange& x : r) {
    if (!out.empty() && x.lo <= out.back().hi + 1) {
      out.back().hi = std::max(out.back().hi, x.hi);
    } else {
      out.push_back(x);
    }
  }
  return out;
}

Ranges Complement(const Ranges& in) {
  Ranges r = Normalize(in), out;
  uint32_t next = 0;
  for (const CharRange& x : r) {
    if (x.lo > next) out.push_back({next, x.lo - 1});
    next = x.hi + 1;
  }
  if (next <= 0x10FFFF) out.push_back({next, 0x10FFFF});
  return out;
}

Ranges Intersect(const Ranges& a, const Ranges& b) {
  Ranges out;
  for (const CharRange& x : a) {
    for (const CharRange& y : b) {
      const uint32_t lo = std::max(x.lo, y.lo), hi = std::min(x.hi, y.hi);
      if (lo <= hi) out.push_back({lo, hi});
    }
  }
  return Normalize(out);
}

bool Contains(const Ranges& r, uint32_t c) {
  for (const CharRange& x : r) {
    if (x.lo <= c && c <= x.hi) return true;
  }
  return false;
}

std::string ClassChar(uint32_t c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
    return std::string(1, static_cast<char>(c));
  }
  return c <= 0xFF ? absl::StrFormat("\\x%02X", c)
                   : c <= 0xFFFF ? absl::StrFormat("\\u%04X", c) : absl::StrFormat("\\U%08X", c);
}

// GBNF for "one character of the set, JSON-encoded".
std::string SetToGbnf(const Ranges& set) {
  // Characters JSON writes raw: everything but controls, '"' and '\'.
  static const Ranges kRaw = Complement({{0, 0x1F}, {'"', '"'}, {'\\', '\\'}, {0xD800, 0xDFFF}});
  std::vector<std::string> parts;
  const Ranges raw = Intersect(set, kRaw);
  if (!raw.empty()) {
    std::string cls = "[";
    for (const CharRange& r : raw) {
      cls += ClassChar(r.lo);
      if (r.hi != r.lo) absl::StrAppend(&cls, "-", ClassChar(r.hi));
    }
    parts.push_back(cls + "]");
  }
  if (Contains(set, '"')) parts.push_back(R"("\\\"")");
  if (Contains(set, '\\')) parts.push_back(R"("\\\\")");
  for (uint32_t c = 0; c < 0x20; ++c) {
    if (!Contains(set, c)) continue;
    switch (c) {
      case '\b': parts.push_back(R"("\\b")"); break;
      case '\t': parts.push_back(R"("\\t")"); break;
      case '\n': parts.push_back(R"("\\n")"); break;
      case '\f': parts.push_back(R"("\\f")"); break;
      case '\r': parts.push_back(R"("\\r")"); break;
      default: parts.push_back(absl::StrFormat(R"("\\u%04x")", c)); break;
    }
  }
  if (parts.empty()) return "[]";  // matches nothing
  if (parts.size() == 1) return parts[0];
  return "(" + absl::StrJoin(parts, " | ") + ")";
}

class PatternParser {
 public:
  explicit PatternParser(std::string_view p) : p_(p) {}

  absl::StatusOr<std::string> Run() {
    bool anchored_start = false, anchored_end = false;
    if (!p_.empty() && p_[0] == '^') {
      anchored_start = true;
      ++pos_;
    }
    size_t end = p_.size();
    // A final unescaped '$' (an even number of backslashes before it).
    if (end > pos_ && p_[end - 1] == '$') {
      size_t backslashes = 0;
      for (size_t i = end - 1; i > pos_ && p_[i - 1] == '\\'; --i) ++backslashes;
      if (backslashes % 2 == 0) {
        anchored_end = true;
        --end;
      }
    }
    p_ = p_.substr(0, end);
    int branches = 0;
    absl::StatusOr<std::string> body = Alternates(0, &branches);
    if (!body.ok()) return body.status();
    if (pos_ != p_.size()) return Error("unmatched ')'");
    if (branches > 1 && (anchored_start || anchored_end)) {
      return Error("'^' or '$' with a top-level '|': put the alternatives in a group");
    }
    std::string out;
    if (!anchored_start) out += "char* ";
    out += "(" + *body + ")";
    if (!anchored_end) out += " char*";
    return out;
  }

 private:
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrFormat("pattern \"%s\", offset %d: %s", std::string(p_), pos_, what));
  }
  bool AtEnd() const { return pos_ >= p_.size(); }
  char Peek() const { return AtEnd() ? '\0' : p_[pos_]; }

  absl::StatusOr<std::string> Alternates(int depth, int* branches) {
    if (depth > 64) return Error("groups nested too deeply");
    std::vector<std::string> alts;
    while (true) {
      absl::StatusOr<std::string> seq = Sequence(depth);
      if (!seq.ok()) return seq.status();
      alts.push_back(seq->empty() ? "\"\"" : *seq);
      if (Peek() == '|') {
        ++pos_;
        continue;
      }
      break;
    }
    *branches = static_cast<int>(alts.size());
    return alts.size() == 1 ? alts[0] : "(" + absl::StrJoin(alts, " | ") + ")";
  }

  absl::StatusOr<std::string> Sequence(int depth) {
    std::vector<std::string> items;
    while (!AtEnd() && Peek() != '|' && Peek() != ')') {
      absl::StatusOr<std::string> atom = Atom(depth);
      if (!atom.ok()) return atom.status();
      std::string item = *atom;
      // Quantifiers.
      const char q = Peek();
      if (q == '*' || q == '+' || q == '?') {
        ++pos_;
        item = "(" + item + ")" + std::string(1, q);
      } else if (q == '{') {
        const size_t save = pos_;
        int min = 0, max = -1;
        if (Braces(&min, &max)) {
          if (min > kMaxRepetition || max > kMaxRepetition) {
            return Error(absl::StrFormat("repetition count over %d", kMaxRepetition));
          }
          item = max < 0 ? absl::StrFormat("(%s){%d,}", item, min)
                         : absl::StrFormat("(%s){%d,%d}", item, min, max);
        } else {
          pos_ = save;  // not a quantifier: '{' is then a literal next time round
        }
      }
      if (pos_ > 0 && item != *atom && Peek() == '?') ++pos_;  // lazy: same language
      if (Peek() == '*' || Peek() == '+' || (Peek() == '{' && item != *atom)) {
        return Error("nested quantifier");
      }
      items.push_back(item);
    }
    return absl::StrJoin(items, " ");
  }

  // After '{': m}, m,} or m,n}. False (position unspecified) when it is not a quantifier.
  bool Braces(int* min, int* max) {
    ++pos_;
    auto number = [&](int* out) {
      const size_t begin = pos_;
      long long v = 0;
      while (!AtEnd() && Peek() >= '0' && Peek() <= '9') {
        v = std::min<long long>(v * 10 + (Peek() - '0'), 1'000'000'000);
        ++pos_;
      }
      *out = static_cast<int>(v);
      return pos_ > begin;
    };
    if (!number(min)) return false;
    if (Peek() == '}') {
      ++pos_;
      *max = *min;
      return true;
    }
    if (Peek() != ',') return false;
    ++pos_;
    if (Peek() == '}') {
      ++pos_;
      *max = -1;
      return true;
    }
    if (!number(max) || Peek() != '}') return false;
    ++pos_;
    return *max >= *min;
  }

  absl::StatusOr<std::string> Atom(int depth) {
    const char c = Peek();
    if (c == '(') {
      ++pos_;
      if (Peek() == '?') {
        if (pos_ + 1 < p_.size() && p_[pos_ + 1] == ':') {
          pos_ += 2;
        } else {
          return Error("look-around, named groups and flags are not supported");
        }
      }
      int branches = 0;
      absl::StatusOr<std::string> inner = Alternates(depth + 1, &branches);
      if (!inner.ok()) return inner.status();
      if (Peek() != ')') return Error("missing ')'");
      ++pos_;
      return "(" + *inner + ")";
    }
    if (c == '[') return Class();
    if (c == '.') {
      ++pos_;
      // Not a line terminator (ECMA-262; Python's '.' excludes only \n).
      return SetToGbnf(Complement({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}));
    }
    if (c == '*' || c == '+' || c == '?') return Error("nothing to repeat");
    if (c == '^' || c == '$') return Error("'^' and '$' are supported only at the pattern's ends");
    if (c == '\\') {
      Ranges set;
      if (absl::Status s = Escape(/*in_class=*/false, &set); !s.ok()) return s;
      return SetToGbnf(set);
    }
    uint32_t cp = 0;
    if (absl::Status s = Utf8(&cp); !s.ok()) return s;
    return SetToGbnf({{cp, cp}});
  }

  absl::Status Utf8(uint32_t* cp) {
    const unsigned char c = static_cast<unsigned char>(Peek());
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || pos_ + len > p_.size()) return Error("invalid UTF-8");
    uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int i = 1; i < len; ++i) {
      const unsigned char cc = static_cast<unsigned char>(p_[pos_ + i]);
      if ((cc & 0xC0) != 0x80) return Error("invalid UTF-8");
      v = (v << 6) | (cc & 0x3F);
    }
    pos_ += len;
    *cp = v;
    return absl::OkStatus();
  }

  absl::Status Hex(int digits, uint32_t* cp) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const char h = Peek();
      int d = (h >= '0' && h <= '9') ? h - '0'
              : (h >= 'a' && h <= 'f') ? h - 'a' + 10
              : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
      if (d < 0) return Error("bad hex escape");
      v = v * 16 + d;
      ++pos_;
    }
    *cp = v;
    return absl::OkStatus();
  }

  // After the backslash: a character or a shorthand set.
  absl::Status Escape(bool in_class, Ranges* set) {
    ++pos_;  // the backslash
    if (AtEnd()) return Error("pattern ends with '\\'");
    const char e = Peek();
    ++pos_;
    static const Ranges kDigit = {{'0', '9'}};
    static const Ranges kWord = Normalize({{'0', '9'}, {'A', 'Z'}, {'a', 'z'}, {'_', '_'}});
    static const Ranges kSpace = Normalize({{'\t', '\r'}, {' ', ' '}});
    static const Ranges kAscii = {{0, 0x7F}};
    uint32_t cp = 0;
    switch (e) {
      case 'd': *set = kDigit; return absl::OkStatus();
      case 'w': *set = kWord; return absl::OkStatus();
      case 's': *set = kSpace; return absl::OkStatus();
      case 'D': *set = Intersect(Complement(kDigit), kAscii); return absl::OkStatus();
      case 'W': *set = Intersect(Complement(kWord), kAscii); return absl::OkStatus();
      case 'S': *set = Intersect(Complement(kSpace), kAscii); return absl::OkStatus();
      case 'n': cp = '\n'; break;
      case 't': cp = '\t'; break;
      case 'r': cp = '\r'; break;
      case 'f': cp = '\f'; break;
      case 'v': cp = '\v'; break;
      case '0': cp = 0; break;
      case 'x': if (absl::Status s = Hex(2, &cp); !s.ok()) return s; break;
      case 'u': if (absl::Status s = Hex(4, &cp); !s.ok()) return s; break;
      default:
        if (e == 'b' && in_class) { cp = '\b'; break; }
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '1' && e <= '9')) {
          return Error(absl::StrFormat("escape '\\%c' is not supported", e));
        }
        if (static_cast<unsigned char>(e) >= 0x80) return Error("escaped non-ASCII character");
        cp = static_cast<unsigned char>(e);  // escaped punctuation
    }
    *set = {{cp, cp}};
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Class() {
    ++pos_;  // '['
    bool negated = false;
    if (Peek() == '^') {
      negated = true;
      ++pos_;
    }
    Ranges set;
    bool first = true;
    while (true) {
      if (AtEnd()) return Error("unterminated character class");
      if (Peek() == ']' && !first) {
        ++pos_;
        break;
      }
      first = false;
      Ranges item;
      uint32_t lo = 0;
      if (Peek() == '\\') {
        if (absl::Status s = Escape(true, &item); !s.ok()) return s;
      } else {
        if (absl::Status s = Utf8(&lo); !s.ok()) return s;
        item = {{lo, lo}};
      }
      // A range needs single characters on both sides.
      if (Peek() == '-' && pos_ + 1 < p_.size() && p_[pos_ + 1] != ']') {
        if (item.size() != 1 || item[0].lo != item[0].hi) return Error("range from a class shorthand");
        ++pos_;
        Ranges upper;
        if (Peek() == '\\') {
          if (absl::Status s = Escape(true, &upper); !s.ok()) return s;
        } else {
          uint32_t hi = 0;
          if (absl::Status s = Utf8(&hi); !s.ok()) return s;
          upper = {{hi, hi}};
        }
        if (upper.size() != 1 || upper[0].lo != upper[0].hi) return Error("range to a class shorthand");
        if (upper[0].lo < item[0].lo) return Error("character range out of order");
        item = {{item[0].lo, upper[0].lo}};
      }
      set.insert(set.end(), item.begin(), item.end());
    }
    set = Normalize(set);
    if (negated) set = Complement(set);
    return SetToGbnf(set);
  }

  std::string_view p_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<std::string> PatternToGbnf(std::string_view pattern) {
  return PatternParser(pattern).Run();
}

}  // namespace yuan::grammar

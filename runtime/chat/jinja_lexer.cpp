#include "runtime/chat/jinja_lexer.h"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "runtime/chat/jinja_text.h"
#include "runtime/core/status.h"

namespace yuan::jinja {

absl::Status SyntaxError(int line, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("chat template line ", line, ": ", Sv(what)));
}

namespace {

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Length in bytes of the Python-whitespace character ending at `end` (0: none).
size_t WhitespaceBefore(std::string_view s, size_t end) {
  if (end == 0) return 0;
  unsigned char c = static_cast<unsigned char>(s[end - 1]);
  if (c < 0x80) return IsPyWhitespace(c) ? 1 : 0;
  for (size_t len = 2; len <= 3 && len <= end; ++len) {
    std::vector<uint32_t> cp = DecodeUtf8(s.substr(end - len, len));
    if (cp.size() == 1 && IsPyWhitespace(cp[0])) return len;
  }
  return 0;
}

// Length of the Python-whitespace character starting at `pos` (0: none).
size_t WhitespaceAt(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  unsigned char c = static_cast<unsigned char>(s[pos]);
  if (c < 0x80) return IsPyWhitespace(c) ? 1 : 0;
  for (size_t len = 2; len <= 3 && pos + len <= s.size(); ++len) {
    std::vector<uint32_t> cp = DecodeUtf8(s.substr(pos, len));
    if (cp.size() == 1 && cp[0] >= 0x80 && IsPyWhitespace(cp[0])) return len;
  }
  return 0;
}

std::string RStripPy(std::string_view s) {
  size_t end = s.size();
  while (size_t n = WhitespaceBefore(s, end)) end -= n;
  return std::string(s.substr(0, end));
}

size_t SkipPyWhitespace(std::string_view s, size_t pos) {
  while (size_t n = WhitespaceAt(s, pos)) pos += n;
  return pos;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  absl::StatusOr<std::vector<Token>> Run() {
    size_t pos = 0;
    while (pos < src_.size()) {
      size_t tag = FindTag(pos);
      std::string data = src_.substr(pos, tag - pos);
      if (tag == src_.size()) {
        EmitData(std::move(data), pos);
        break;
      }
      char type = src_[tag + 1];  // '{', '%' or '#'
      char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
      if (sign == '-') {
        data = RStripPy(data);
      } else if (sign != '+' && type != '{') {
        // lstrip_blocks: drop spaces/tabs between the line start and the tag.
        size_t k = data.size();
        while (k > 0 && (data[k - 1] == ' ' || data[k - 1] == '\t')) --k;
        bool line_start = k > 0 ? data[k - 1] == '\n' : (pos == 0 || src_[pos - 1] == '\n');
        if (line_start && k < data.size()) data.resize(k);
      }
      EmitData(std::move(data), pos);
      size_t body = tag + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (type == '#') {
        YUAN_ASSIGN_OR_RETURN(pos, SkipComment(tag, body));
      } else if (type == '%' && IsRawBegin(body)) {
        YUAN_ASSIGN_OR_RETURN(pos, LexRaw(tag, body));
      } else {
        YUAN_ASSIGN_OR_RETURN(pos, LexTag(tag, body, type == '%'));
      }
    }
    tokens_.push_back(Token{Tok::kEof, LineAt(src_.size()), ""});
    return std::move(tokens_);
  }

 private:
  int LineAt(size_t pos) {
    while (line_pos_ < pos && line_pos_ < src_.size()) {
      if (src_[line_pos_] == '\n') ++line_;
      ++line_pos_;
    }
    return line_;
  }

  size_t FindTag(size_t pos) const {
    while (true) {
      size_t p = src_.find('{', pos);
      if (p == std::string::npos || p + 1 >= src_.size()) return src_.size();
      char c = src_[p + 1];
      if (c == '{' || c == '%' || c == '#') return p;
      pos = p + 1;
    }
  }

  void EmitData(std::string data, size_t pos) {
    if (data.empty()) return;
    tokens_.push_back(Token{Tok::kData, LineAt(pos), std::move(data)});
  }

  // After a block or comment end: `-` strips all following whitespace,
  // otherwise trim_blocks drops one newline unless `+` was given.
  size_t AfterBlockEnd(size_t end, char sign) const {
    if (sign == '-') return SkipPyWhitespace(src_, end);
    if (sign != '+' && end < src_.size() && src_[end] == '\n') return end + 1;
    return end;
  }

  absl::StatusOr<size_t> SkipComment(size_t tag, size_t body) {
    size_t end = src_.find("#}", body);
    if (end == std::string::npos) return SyntaxError(LineAt(tag), "unclosed comment '{#'");
    char sign = end > body ? src_[end - 1] : '\0';
    return AfterBlockEnd(end + 2, sign == '-' || sign == '+' ? sign : '\0');
  }

  // `{% raw %}` (with optional -/+ and spaces).
  bool IsRawBegin(size_t body) const {
    size_t p = body;
    while (p < src_.size() && IsAsciiSpace(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    if (p < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[p])) || src_[p] == '_'))
      return false;
    return true;
  }

  // Parses `<ws>*[-+]?%}` at p; returns the position after it and the sign.
  bool MatchBlockEnd(size_t p, size_t* after, char* sign) const {
    while (p < src_.size() && IsAsciiSpace(src_[p])) ++p;
    *sign = '\0';
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) *sign = src_[p++];
    if (src_.compare(p, 2, "%}") != 0) return false;
    *after = p + 2;
    return true;
  }

  absl::StatusOr<size_t> LexRaw(size_t tag, size_t body) {
    size_t p = body;
    while (IsAsciiSpace(src_[p])) ++p;
    size_t after = 0;
    char sign = '\0';
    if (!MatchBlockEnd(p + 3, &after, &sign))
      return SyntaxError(LineAt(tag), "malformed '{% raw %}'");
    size_t start = AfterBlockEnd(after, sign);
    size_t search = start;
    while (true) {
      size_t e = src_.find("{%", search);
      if (e == std::string::npos) return SyntaxError(LineAt(tag), "missing '{% endraw %}'");
      size_t q = e + 2;
      char open_sign = (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) ? src_[q++] : '\0';
      while (q < src_.size() && IsAsciiSpace(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") == 0 && MatchBlockEnd(q + 6, &after, &sign)) {
        std::string data = src_.substr(start, e - start);
        if (open_sign == '-') {
          data = RStripPy(data);
        } else if (open_sign != '+') {
          size_t k = data.size();
          while (k > 0 && (data[k - 1] == ' ' || data[k - 1] == '\t')) --k;
          if (k > 0 && data[k - 1] == '\n') data.resize(k);
        }
        EmitData(std::move(data), start);
        return AfterBlockEnd(after, sign);
      }
      search = e + 2;
    }
  }

  absl::StatusOr<std::string> LexString(size_t* p) {
    char quote = src_[*p];
    size_t i = *p + 1;
    std::string out;
    while (true) {
      if (i >= src_.size()) return SyntaxError(LineAt(*p), "unterminated string literal");
      char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        out.push_back(c);
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) return SyntaxError(LineAt(*p), "unterminated string literal");
      char e = src_[i + 1];
      i += 2;
      // Python's unicode-escape decoding, as jinja2 applies to literals.
      switch (e) {
        case '\n':
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case 'x':
        case 'u':
        case 'U': {
          size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (i + n > src_.size()) return SyntaxError(LineAt(*p), "truncated \\x/\\u escape");
          uint32_t cp = 0;
          for (size_t k = 0; k < n; ++k) {
            char h = src_[i + k];
            int d = (h >= '0' && h <= '9')   ? h - '0'
                    : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                    : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                             : -1;
            if (d < 0) return SyntaxError(LineAt(*p), "bad \\x/\\u escape");
            cp = cp * 16 + d;
          }
          if (cp > 0x10FFFF) return SyntaxError(LineAt(*p), "\\U escape out of range");
          i += n;
          AppendUtf8(cp, &out);
          break;
        }
        case 'N':
          return SyntaxError(LineAt(*p), "unsupported \\N{...} escape in string literal");
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = e - '0';
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k) {
              cp = cp * 8 + (src_[i++] - '0');
            }
            AppendUtf8(cp, &out);
          } else {
            out.push_back('\\');  // unknown escapes stay as written
            out.push_back(e);
          }
      }
    }
    *p = i + 1;
    return out;
  }

  absl::StatusOr<size_t> LexTag(size_t tag, size_t p, bool block) {
    tokens_.push_back(Token{block ? Tok::kBlockBegin : Tok::kVarBegin, LineAt(tag), ""});
    int depth = 0;
    while (true) {
      while (p < src_.size() && IsAsciiSpace(src_[p])) ++p;
      if (p >= src_.size()) {
        return SyntaxError(LineAt(tag), block ? "unexpected end of template, missing '%}'"
                                              : "unexpected end of template, missing '}}'");
      }
      if (depth == 0) {
        std::string_view rest(src_.data() + p, src_.size() - p);
        if (block) {
          char sign = '\0';
          size_t len = 0;
          if (rest.substr(0, 3) == "-%}" || rest.substr(0, 3) == "+%}") {
            sign = rest[0];
            len = 3;
          } else if (rest.substr(0, 2) == "%}") {
            len = 2;
          }
          if (len > 0) {
            tokens_.push_back(Token{Tok::kBlockEnd, LineAt(p), ""});
            return AfterBlockEnd(p + len, sign);
          }
        } else {
          if (rest.substr(0, 3) == "-}}") {
            tokens_.push_back(Token{Tok::kVarEnd, LineAt(p), ""});
            return SkipPyWhitespace(src_, p + 3);
          }
          if (rest.substr(0, 2) == "}}") {
            tokens_.push_back(Token{Tok::kVarEnd, LineAt(p), ""});
            return p + 2;
          }
        }
      }
      char c = src_[p];
      int line = LineAt(p);
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t b = p;
        while (p < src_.size() &&
               (std::isalnum(static_cast<unsigned char>(src_[p])) || src_[p] == '_'))
          ++p;
        tokens_.push_back(Token{Tok::kName, line, src_.substr(b, p - b)});
        continue;
      }
      if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t b = p;
        while (p < src_.size() &&
               (std::isdigit(static_cast<unsigned char>(src_[p])) || src_[p] == '_'))
          ++p;
        bool is_float = false;
        if (p + 1 < src_.size() && src_[p] == '.' &&
            std::isdigit(static_cast<unsigned char>(src_[p + 1]))) {
          is_float = true;
          ++p;
          while (p < src_.size() &&
                 (std::isdigit(static_cast<unsigned char>(src_[p])) || src_[p] == '_'))
            ++p;
        }
        if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
          size_t q = p + 1;
          if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
          if (q < src_.size() && std::isdigit(static_cast<unsigned char>(src_[q]))) {
            is_float = true;
            p = q;
            while (p < src_.size() && std::isdigit(static_cast<unsigned char>(src_[p]))) ++p;
          }
        }
        std::string num;
        for (size_t k = b; k < p; ++k) {
          if (src_[k] != '_') num.push_back(src_[k]);
        }
        Token t{is_float ? Tok::kFloat : Tok::kInt, line, num};
        if (is_float) {
          t.f = std::strtod(num.c_str(), nullptr);
        } else {
          auto r = std::from_chars(num.data(), num.data() + num.size(), t.i);
          if (r.ec != std::errc()) return SyntaxError(line, "integer literal too large");
        }
        tokens_.push_back(std::move(t));
        continue;
      }
      if (c == '\'' || c == '"') {
        YUAN_ASSIGN_OR_RETURN(std::string s, LexString(&p));
        tokens_.push_back(Token{Tok::kString, line, std::move(s)});
        continue;
      }
      static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                                         "/",  "%",  "~",  "<",  ">",  "=",  "(", ")", "[",
                                         "]",  "{",  "}",  ",",  ".",  ":",  "|"};
      bool matched = false;
      for (const char* op : kOps) {
        size_t len = std::char_traits<char>::length(op);
        if (src_.compare(p, len, op) == 0) {
          if (op[0] == '(' || op[0] == '[' || op[0] == '{') ++depth;
          if ((op[0] == ')' || op[0] == ']' || op[0] == '}') && len == 1) {
            if (depth == 0) return SyntaxError(line, absl::StrCat("unexpected '", op, "'"));
            --depth;
          }
          tokens_.push_back(Token{Tok::kOp, line, op});
          p += len;
          matched = true;
          break;
        }
      }
      if (!matched)
        return SyntaxError(line, absl::StrCat("unexpected character '", std::string(1, c), "'"));
    }
  }

  std::string src_;
  std::vector<Token> tokens_;
  size_t line_pos_ = 0;
  int line_ = 1;
};

// jinja2 normalises \r\n and \r to \n and drops one trailing newline
// (keep_trailing_newline=False).
std::string NormalizeSource(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source) {
  Lexer lexer(NormalizeSource(source));
  return lexer.Run();
}

}  // namespace yuan::jinja

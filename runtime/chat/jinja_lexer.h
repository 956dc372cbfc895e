// Lexer of the Jinja subset (jinja.h): turns template source into tokens the
// way jinja2's lexer does under HF's settings — newline normalisation, one
// trailing newline dropped, trim_blocks, lstrip_blocks, `-`/`+` whitespace
// control, comments and {% raw %} handled here, string escapes decoded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace yuan::jinja {

enum class Tok {
  kData,
  kVarBegin,
  kVarEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInt,
  kFloat,
  kOp,
  kEof
};

struct Token {
  Tok kind;
  int line;
  std::string text;  // data, name, operator, decoded string
  int64_t i = 0;
  double f = 0;
};

// "chat template line N: what" (InvalidArgumentError).
absl::Status SyntaxError(int line, std::string_view what);

// Tokens of `source`: data runs and, per tag, kVarBegin/kBlockBegin, the
// expression tokens, kVarEnd/kBlockEnd; the last token is kEof.
absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source);

}  // namespace yuan::jinja

// Recursive-descent parser for the Jinja subset (jinja.h), over the tokens of
// jinja_lexer.h. Follows jinja2's expression grammar and operator precedence;
// unknown or unsupported tags, filters and tests are reported here.
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/chat/jinja.h"
#include "runtime/chat/jinja_ast.h"

namespace yuan::jinja {

// The root is a kBlockGroup node holding the template body.
absl::StatusOr<std::unique_ptr<Node>> ParseTemplate(std::string_view source,
                                                    const TemplateLimits& limits);

}  // namespace yuan::jinja

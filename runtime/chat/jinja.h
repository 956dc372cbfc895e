// A Jinja subset interpreter for model chat templates.
//
// It renders the `chat_template` strings shipped in tokenizer_config.json /
// GGUF metadata byte-identically to Python's jinja2 configured the way
// Hugging Face transformers' apply_chat_template configures it:
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
// extensions=[loopcontrols]), a default (non-strict) Undefined, `tojson`
// replaced by json.dumps(ensure_ascii=False), and the globals
// raise_exception(msg) and strftime_now(fmt). docs/chat-templates.md lists the
// supported subset; anything outside it is an error naming the construct
// (never a silent difference).
//
// Threading: a parsed Template is immutable; Render may run on many threads.
// Errors: absl::Status, InvalidArgumentError for template or data problems
// ("chat template line N: ..."), ResourceExhaustedError when a limit trips.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/chat/jinja_value.h"

namespace yuan::jinja {

struct Node;

// Bounds that keep hostile or broken templates from crashing or hanging the
// host: parse nesting, total evaluation steps, output size, macro recursion.
struct TemplateLimits {
  int max_nesting = 128;          // nested blocks + expression depth at parse
  int64_t max_steps = 5'000'000;  // nodes + loop iterations + calls per render
  size_t max_output_bytes = 16u << 20;
  int max_call_depth = 64;  // macro calls
};

class Template {
 public:
  // Parses `source`. Syntax errors and unsupported constructs ({% include %},
  // unknown filters or tests, ...) are reported here with their line.
  static absl::StatusOr<Template> Parse(std::string_view source, const TemplateLimits& limits = {});

  // Renders with `context` as the template's variables (they shadow the
  // globals range, namespace, dict, raise_exception and strftime_now).
  absl::StatusOr<std::string> Render(const Dict& context) const;

 private:
  std::shared_ptr<const Node> root_;
  TemplateLimits limits_;
};

}  // namespace yuan::jinja

// Chat message rendering: turns a conversation into the prompt text a model
// was trained on, by running its chat template (runtime/chat/jinja.h) the way
// Hugging Face transformers' apply_chat_template does, or a built-in template
// when the model file ships none.
//
// Threading: all functions are thread-safe (no shared mutable state).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/chat/jinja_value.h"

namespace yuan {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "tool", ...
  std::string content;
};

struct ChatExtras {
  std::string bos_token;
  std::string eos_token;
  // Further template variables, e.g. {"enable_thinking", Bool(false)} for
  // Qwen3 / Hunyuan, {"tools", <list from jinja::FromJson>}, {"date_string",
  // ...}. They override the defaults (tools = none, documents = none).
  std::vector<std::pair<std::string, jinja::Value>> variables;
};

// Renders `messages` with `template_source`. The template sees `messages` (a
// list of {"role", "content"} dicts), `add_generation_prompt`, `bos_token`,
// `eos_token`, `tools` and `documents` (none unless given) and `variables`.
// Errors: InvalidArgumentError / UnimplementedError naming the template line
// and construct (also for raise_exception() in the template);
// ResourceExhaustedError when a TemplateLimits bound trips.
absl::StatusOr<std::string> RenderChat(const std::string& template_source,
                                       const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt, const ChatExtras& extras);

// Source of a built-in template: "chatml", "llama3", "qwen3", "deepseek_v3",
// "hunyuan" (the Hunyuan dense Instruct models). Qwen3 and Hunyuan switch
// thinking off with the variable enable_thinking=false. NotFoundError for any
// other name (the message lists the known ones).
absl::StatusOr<std::string> BuiltinChatTemplate(std::string_view name);

// Names accepted by BuiltinChatTemplate, in a stable order.
std::vector<std::string> BuiltinChatTemplateNames();

}  // namespace yuan

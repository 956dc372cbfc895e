// Conversations on top of sessions: pick the chat template (the model's own,
// a built-in by name, or a caller's source), render messages with it, and
// turn the result into a generation request.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/chat/chat_template.h"
#include "runtime/engine/engine.h"

namespace yuan {

struct ChatOptions {
  // Empty: the model's tokenizer.chat_template, else ChatML. A built-in name
  // ("chatml", "llama3", ...) or a Jinja source otherwise.
  std::string chat_template;
  int enable_thinking = -1;  // -1: the template's default
};

// The template source that `options` selects for this engine's model.
absl::StatusOr<std::string> SelectChatTemplate(const Engine& engine, const ChatOptions& options);

// Renders the conversation to prompt text.
absl::StatusOr<std::string> RenderConversation(const Engine& engine,
                                               const std::vector<ChatMessage>& messages,
                                               const ChatOptions& options,
                                               bool add_generation_prompt);

// Fills request->prompt with the rendered conversation (plus the assistant
// header); special tokens in it are parsed, and BOS is added only when the
// template did not already write it.
absl::Status PrepareChatRequest(const Engine& engine, const std::vector<ChatMessage>& messages,
                                const ChatOptions& options, GenerateRequest* request);

}  // namespace yuan

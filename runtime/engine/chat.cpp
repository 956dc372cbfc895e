#include "runtime/engine/chat.h"

#include "absl/strings/match.h"
#include "runtime/core/status.h"

namespace yuan {

absl::StatusOr<std::string> SelectChatTemplate(const Engine& engine, const ChatOptions& options) {
  if (options.chat_template.empty()) {
    const GgufValue* own = engine.model().gguf().Find("tokenizer.chat_template");
    if (own != nullptr && own->type == GgufType::kString && !own->str.empty()) {
      return std::string(own->str);
    }
    return BuiltinChatTemplate("chatml");
  }
  // A template source always contains a Jinja tag; a name never does.
  if (options.chat_template.find("{%") == std::string::npos &&
      options.chat_template.find("{{") == std::string::npos) {
    return BuiltinChatTemplate(options.chat_template);
  }
  return options.chat_template;
}

absl::StatusOr<std::string> RenderConversation(const Engine& engine,
                                               const std::vector<ChatMessage>& messages,
                                               const ChatOptions& options,
                                               bool add_generation_prompt) {
  YUAN_ASSIGN_OR_RETURN(std::string source, SelectChatTemplate(engine, options));
  const Tokenizer& tok = engine.tokenizer();
  ChatExtras extras;
  if (tok.bos() >= 0) extras.bos_token = std::string(tok.Text(tok.bos()));
  if (tok.eos() >= 0) extras.eos_token = std::string(tok.Text(tok.eos()));
  if (options.enable_thinking >= 0) {
    extras.variables.emplace_back("enable_thinking", jinja::Value::Bool(options.enable_thinking != 0));
  }
  return RenderChat(source, messages, add_generation_prompt, extras);
}

absl::Status PrepareChatRequest(const Engine& engine, const std::vector<ChatMessage>& messages,
                                const ChatOptions& options, GenerateRequest* request) {
  if (messages.empty()) return absl::InvalidArgumentError("the conversation has no messages");
  YUAN_ASSIGN_OR_RETURN(request->prompt,
                        RenderConversation(engine, messages, options, /*add_generation_prompt=*/true));
  const Tokenizer& tok = engine.tokenizer();
  request->parse_special = true;
  // Templates such as Llama 3's write "<|begin_of_text|>" themselves.
  request->add_bos = !(tok.bos() >= 0 && absl::StartsWith(request->prompt, Sv(tok.Text(tok.bos()))));
  return absl::OkStatus();
}

}  // namespace yuan

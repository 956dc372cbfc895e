#include "runtime/chat/chat_template.h"

#include "runtime/chat/builtin_templates.h"
#include "runtime/chat/jinja.h"
#include "runtime/core/status.h"

namespace yuan {

absl::StatusOr<std::string> RenderChat(const std::string& template_source,
                                       const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt, const ChatExtras& extras) {
  YUAN_ASSIGN_OR_RETURN(jinja::Template tmpl, jinja::Template::Parse(template_source));
  jinja::List list;
  list.reserve(messages.size());
  for (const ChatMessage& m : messages) {
    jinja::Dict d;
    d.Set("role", jinja::Value::String(m.role));
    d.Set("content", jinja::Value::String(m.content));
    list.push_back(jinja::Value::FromDict(std::move(d)));
  }
  // The variables HF's apply_chat_template passes: messages, tools, documents,
  // add_generation_prompt, the special tokens, then the caller's kwargs.
  jinja::Dict context;
  context.Set("messages", jinja::Value::FromList(std::move(list)));
  context.Set("tools", jinja::Value::None());
  context.Set("documents", jinja::Value::None());
  context.Set("add_generation_prompt", jinja::Value::Bool(add_generation_prompt));
  context.Set("bos_token", jinja::Value::String(extras.bos_token));
  context.Set("eos_token", jinja::Value::String(extras.eos_token));
  for (const auto& [name, value] : extras.variables) context.Set(name, value);
  return tmpl.Render(context);
}

absl::StatusOr<std::string> BuiltinChatTemplate(std::string_view name) {
  for (int i = 0; i < chat_internal::kNumBuiltinTemplates; ++i) {
    const auto& t = chat_internal::kBuiltinTemplates[i];
    if (t.name == name) return std::string(t.source);
  }
  std::string known;
  for (const std::string& n : BuiltinChatTemplateNames())
    absl::StrAppend(&known, known.empty() ? "" : ", ", n);
  return absl::NotFoundError(
      absl::StrCat("no built-in chat template named '", Sv(name), "' (known: ", known, ")"));
}

std::vector<std::string> BuiltinChatTemplateNames() {
  std::vector<std::string> names;
  for (int i = 0; i < chat_internal::kNumBuiltinTemplates; ++i) {
    names.emplace_back(chat_internal::kBuiltinTemplates[i].name);
  }
  return names;
}

}  // namespace yuan

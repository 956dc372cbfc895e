// The built-in chat templates (builtin_templates.cpp): the publishers'
// templates verbatim, for model files that carry none. Use
// yuan::BuiltinChatTemplate() (chat_template.h) rather than this table.
#pragma once

#include <string_view>

namespace yuan::chat_internal {

struct BuiltinTemplate {
  std::string_view name;
  std::string_view description;
  std::string_view source;
};

extern const BuiltinTemplate kBuiltinTemplates[];
extern const int kNumBuiltinTemplates;

}  // namespace yuan::chat_internal

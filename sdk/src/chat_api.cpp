// yuan_chat_apply_template and yuan_session_chat.
#include "sdk/src/handles.h"

using yuan::api::BusyGuard;
using yuan::api::Fail;
using yuan::api::Ok;

namespace {

yuan_status ReadConversation(const yuan_chat_message* messages, size_t n,
                             const yuan_chat_options* options, std::vector<yuan::ChatMessage>* out,
                             yuan::ChatOptions* chat) {
  if (messages == nullptr && n > 0) return Fail(YUAN_ERR_INVALID_ARGUMENT, "messages is NULL");
  for (size_t i = 0; i < n; ++i) {
    if (messages[i].role == nullptr || messages[i].content == nullptr) {
      return Fail(YUAN_ERR_INVALID_ARGUMENT,
                  "message " + std::to_string(i) + " has a NULL role or content");
    }
    out->push_back({messages[i].role, messages[i].content});
  }
  yuan_chat_options o;
  yuan_chat_options_init(&o);
  if (options != nullptr) {
    if (yuan_status st = yuan::api::ReadStruct(options, sizeof(yuan_chat_options),
                                               "yuan_chat_options", &o);
        st != YUAN_OK) {
      return st;
    }
  }
  if (o.chat_template != nullptr) chat->chat_template = o.chat_template;
  chat->enable_thinking = o.enable_thinking < 0 ? -1 : (o.enable_thinking != 0);
  return YUAN_OK;
}

}  // namespace

extern "C" {

void yuan_chat_options_init(yuan_chat_options* options) {
  if (options == nullptr) return;
  std::memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
  options->enable_thinking = -1;
}

yuan_status yuan_chat_apply_template(const yuan_engine* engine, const yuan_chat_message* messages,
                                     size_t n_messages, const yuan_chat_options* options,
                                     int add_generation_prompt, char* buffer, size_t capacity,
                                     size_t* needed) {
  YUAN_API_BEGIN
  if (!yuan::api::Engines().Contains(engine)) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT, "engine is NULL or not a live engine handle");
  }
  std::vector<yuan::ChatMessage> conversation;
  yuan::ChatOptions chat;
  if (yuan_status st = ReadConversation(messages, n_messages, options, &conversation, &chat);
      st != YUAN_OK) {
    return st;
  }
  auto text = engine->backend->RenderChat(conversation, chat, add_generation_prompt != 0);
  if (!text.ok()) return Fail(text.status());
  return yuan::api::CopyText(*text, buffer, capacity, needed);
  YUAN_API_END
}

yuan_status yuan_session_chat(yuan_session* session, const yuan_chat_message* messages,
                              size_t n_messages, const yuan_chat_options* chat_options,
                              const yuan_generate_options* gen_options,
                              yuan_generate_result* result) {
  YUAN_API_BEGIN
  YUAN_CHECK_SESSION(session);
  if (result != nullptr && (result->struct_size < sizeof(yuan_generate_result) ||
                            result->struct_size > yuan::api::kMaxStructSize)) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT,
                "yuan_generate_result.struct_size is wrong (call yuan_generate_result_init first)");
  }
  std::vector<yuan::ChatMessage> conversation;
  yuan::ChatOptions chat;
  if (yuan_status st = ReadConversation(messages, n_messages, chat_options, &conversation, &chat);
      st != YUAN_OK) {
    return st;
  }
  yuan_generate_options o;
  yuan::GenerateRequest req;
  if (yuan_status st = yuan::api::BuildRequest("", gen_options, &o, &req); st != YUAN_OK) return st;
  yuan::api::AttachCallback(o, &req);
  BusyGuard guard(session->state.get());
  if (!guard.acquired()) return Fail(YUAN_ERR_FAILED_PRECONDITION, yuan::api::kSessionBusy);
  if (yuan_status s1 = yuan::api::UseAdapters(&o, session->state.get()); s1 != YUAN_OK) return s1;
  yuan::GenerateResult r;
  absl::Status st = session->state->impl->Chat(conversation, chat, std::move(req), &r);
  if (!st.ok()) return Fail(st);
  if (yuan_status s2 = yuan::api::ExportResult(r, result); s2 != YUAN_OK) return s2;
  return Ok();
  YUAN_API_END
}

}  // extern "C"

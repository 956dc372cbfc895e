// libFuzzer target for the OpenAI request parser and validator
// (runtime/server/openai_api.cpp): any byte string must parse into a request
// that respects every documented bound, or give a 400 error object; the
// response builders must turn whatever was accepted into valid JSON.
//   cmake --preset fuzz && cmake --build --preset fuzz --target openai_request_fuzz
//   ./build/fuzz/fuzz/openai_request_fuzz -dict=fuzz/openai_request.dict \
//       -max_total_time=60 fuzz/corpus/openai_request
// The first input byte picks the endpoint and the model limits; the rest is
// the request body.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/server/openai_api.h"

namespace {

void Require(bool cond) {
  if (!cond) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace yuan::openai;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  const Endpoint endpoint = (mode & 1) ? Endpoint::kCompletions : Endpoint::kChatCompletions;
  RequestLimits limits;
  limits.n_ctx = (mode & 2) ? 0 : 4096;     // 0: unchecked
  limits.n_vocab = (mode & 4) ? 0 : 32000;  // 0: unchecked

  ApiRequest req;
  ApiError err;
  if (!ParseRequest(endpoint, body, limits, &req, &err)) {
    Require(err.http_status == 400 && !err.message.empty());
    const nlohmann::json e = nlohmann::json::parse(ErrorBody(err));  // valid JSON (throws otherwise)
    Require(e.contains("error"));
    return 0;
  }
  // Every bound the server relies on.
  Require(req.endpoint == endpoint);
  Require(req.n >= 1 && req.n <= 16);
  Require(req.max_tokens == -1 || (req.max_tokens >= 1 && (limits.n_ctx <= 0 || req.max_tokens <= limits.n_ctx)));
  Require(req.temperature >= 0 && req.temperature <= 2);
  Require(req.top_p > 0 && req.top_p <= 1);
  Require(req.min_p >= 0 && req.min_p <= 1);
  Require(req.repetition_penalty > 0 && req.repetition_penalty <= 10);
  Require(req.logprobs >= -1 && req.logprobs <= 20);
  Require(req.stop.size() <= 16);
  for (const auto& s : req.stop) Require(!s.empty());
  for (const auto& [id, bias] : req.logit_bias) {
    Require(id >= 0 && (limits.n_vocab <= 0 || id < limits.n_vocab));
    Require(bias >= -100 && bias <= 100);
  }
  for (int32_t id : req.prompt_tokens) Require(id >= 0 && (limits.n_vocab <= 0 || id < limits.n_vocab));
  if (endpoint == Endpoint::kChatCompletions) {
    Require(!req.messages.empty());
  } else {
    Require(!req.prompt_is_tokens || !req.prompt_tokens.empty());
  }
  (void)ToSamplingParams(req, 1);

  // Echo the request's text through the builders: the output must be valid
  // JSON even when the input strings are not valid UTF-8.
  ResponseMeta meta;
  meta.id = NewId("chatcmpl-");
  meta.model = req.model;
  Choice c;
  c.text = endpoint == Endpoint::kChatCompletions ? req.messages.back().content : req.prompt_text;
  c.finish_reason = yuan::FinishReason::kStop;
  c.with_token_ids = req.return_token_ids;
  c.token_ids = req.prompt_tokens;
  c.with_logprobs = req.logprobs >= 0;
  for (const auto& s : req.stop) c.logprobs.push_back({s, -1.0f, {{s, -1.0f}, {req.user, -2.0f}}});
  const Usage usage{1, 2};
  (void)nlohmann::json::parse(Dump(ChatCompletion(meta, {c}, usage)));
  (void)nlohmann::json::parse(Dump(TextCompletion(meta, {c}, usage)));
  (void)nlohmann::json::parse(Dump(ChatChunk(meta, c)));
  (void)nlohmann::json::parse(Dump(TextCompletionChunk(meta, c)));
  return 0;
}

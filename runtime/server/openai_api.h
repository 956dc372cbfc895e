// The OpenAI-compatible wire format of `yuan serve`: request parsing and
// validation for /v1/chat/completions and /v1/completions, and the response /
// stream-chunk builders. Pure functions (no engine, no I/O), so the parser
// can be fuzzed on its own (fuzz/openai_request_fuzz.cpp): everything the
// model decides (context length, vocabulary size) comes in as plain numbers.
//
// Leniency, as OpenAI-compatible servers (vLLM, llama.cpp) do it:
//  - unknown fields are ignored; a field set to null counts as absent;
//  - `model` is optional and not checked against the served name (one model
//    per server); responses always name the served model;
//  - integer fields accept whole floats (16.0); `stop` takes up to 16 strings.
// Everything else that is wrong is an ApiError (HTTP 400 with OpenAI's error
// object) naming the field in `param`.
//
// Threading: every function is thread-safe (no shared mutable state; NewId
// uses a thread-local generator).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/chat/chat_template.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/sampler.h"
#include "runtime/grammar/grammar.h"

namespace yuan::openai {

// OpenAI's error object: {"error":{"message","type","param","code"}}.
struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
};
ApiError BadRequest(std::string message, std::string param = "");
// The error type OpenAI uses for an HTTP status: 400 invalid_request_error,
// 401 authentication_error, 404 not_found_error, 429 rate_limit_error, 5xx
// server_error (api_error for 500), ...
std::string ErrorTypeForStatus(int http_status);
nlohmann::json ErrorObject(const ApiError& error);
std::string ErrorBody(const ApiError& error);  // ErrorObject dumped

enum class Endpoint { kChatCompletions, kCompletions };

// What the request asks for, validated. Defaults follow OpenAI's API, not
// the CLI's (temperature 1, top_p 1, no top-k / min-p).
struct ApiRequest {
  Endpoint endpoint = Endpoint::kChatCompletions;
  std::string model;  // as sent; may be empty

  // /v1/chat/completions: roles "system", "user", "assistant", "tool"
  // ("developer" is read as "system"); content parts joined with "\n".
  std::vector<ChatMessage> messages;
  int enable_thinking = -1;  // chat_template_kwargs.enable_thinking (vLLM); -1: template default

  // /v1/completions: the prompt is text, or token ids (prompt_is_tokens).
  std::string prompt_text;
  std::vector<int32_t> prompt_tokens;
  bool prompt_is_tokens = false;

  bool stream = false;
  bool include_usage = false;   // stream_options.include_usage
  int32_t max_tokens = -1;      // -1: not given (until the context is full)
  float temperature = 1.0f;     // [0, 2]; 0 = greedy
  float top_p = 1.0f;           // (0, 1]
  int32_t top_k = 0;            // <= 0: off (vLLM uses -1)
  float min_p = 0.0f;           // [0, 1]
  float repetition_penalty = 1.0f;  // (0, 10]; repetition_penalty (vLLM) / repeat_penalty (llama.cpp)
  float presence_penalty = 0.0f;    // [-2, 2]
  float frequency_penalty = 0.0f;   // [-2, 2]
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;  // empty strings dropped
  int32_t n = 1;                  // 1..16 choices
  // -1: no logprobs; else the number of top alternatives per token (0..20).
  // Completions: `logprobs: int`; chat: `logprobs: true` + `top_logprobs`.
  int32_t logprobs = -1;
  std::vector<std::pair<int32_t, float>> logit_bias;  // sorted by token id
  bool ignore_eos = false;
  std::string user;
  bool return_token_ids = false;  // vLLM extension: token_ids per choice / chunk
  // Structured output, compiled: response_format json_object / json_schema,
  // llama.cpp's `grammar` (GBNF) and `json_schema`, vLLM's `guided_json` and
  // `guided_grammar`; at most one of them. Null: free text.
  std::shared_ptr<const grammar::Grammar> grammar;
};

// What validation needs to know about the served model.
struct RequestLimits {
  int32_t n_ctx = 0;    // longest sequence (prompt + generation); <= 0: unchecked
  int32_t n_vocab = 0;  // token ids must be below; <= 0: unchecked
  size_t max_json_depth = 64;  // deeper nesting is refused before parsing
};

// Parses and validates one request body for `endpoint`. Never throws.
// On error returns false and fills *error (HTTP 400).
bool ParseRequest(Endpoint endpoint, std::string_view body, const RequestLimits& limits,
                  ApiRequest* out, ApiError* error);

// The sampler settings the request asks for (seed: `seed` argument).
SamplingParams ToSamplingParams(const ApiRequest& request, uint64_t seed);

// "stop" / "length"; nullptr for endings that send no finish_reason
// (cancelled, none, error).
const char* FinishReasonString(FinishReason reason);

// A random id: prefix + 24 alphanumerics ("chatcmpl-...", "cmpl-...").
std::string NewId(std::string_view prefix);

// ---- response builders ----

struct ResponseMeta {
  std::string id;
  int64_t created = 0;  // Unix seconds
  std::string model;
  std::string system_fingerprint;  // empty: left out
};

// One generated token with its log-probability and the top alternatives,
// token text as raw bytes (may be part of a UTF-8 character: the JSON gets
// the replacement character, `bytes` the exact bytes).
struct TokenLogprob {
  std::string token;
  float logprob = 0;
  std::vector<std::pair<std::string, float>> top;
};

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
};

struct Choice {
  int index = 0;
  std::string text;
  FinishReason finish_reason = FinishReason::kNone;
  bool with_token_ids = false;
  std::vector<int32_t> token_ids;
  bool with_logprobs = false;
  std::vector<TokenLogprob> logprobs;
  size_t text_offset = 0;  // completions logprobs: where `text` starts in the whole output
};

nlohmann::json UsageObject(const Usage& usage);

// A whole response: "chat.completion" or "text_completion".
nlohmann::json ChatCompletion(const ResponseMeta& meta, const std::vector<Choice>& choices,
                              const Usage& usage);
nlohmann::json TextCompletion(const ResponseMeta& meta, const std::vector<Choice>& choices,
                              const Usage& usage);

// Stream chunks. A chat stream starts with ChatRoleChunk per choice, then
// content chunks (choice.text = the delta, finish kNone), then a chunk with
// finish_reason and an empty delta; a completion stream has text chunks and
// a final one with "" and the finish_reason. With include_usage the stream
// ends with UsageChunk (empty choices).
nlohmann::json ChatRoleChunk(const ResponseMeta& meta, int index);
nlohmann::json ChatChunk(const ResponseMeta& meta, const Choice& delta);
nlohmann::json TextCompletionChunk(const ResponseMeta& meta, const Choice& delta);
nlohmann::json UsageChunk(const ResponseMeta& meta, Endpoint endpoint, const Usage& usage);

// JSON text that never throws: invalid UTF-8 becomes U+FFFD.
std::string Dump(const nlohmann::json& j);
// A server-sent event: "data: <json>\n\n".
std::string SseEvent(const nlohmann::json& j);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace yuan::openai

// The JSON side of the OpenAI-compatible API, without any I/O, so the fuzzer
// can drive it: streamed chunks and whole responses of /v1/completions and
// /v1/chat/completions, the /v1/models list, and error bodies mapped to
// absl::Status.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace yuan::remote {

// Who answers at the URL; decides which non-OpenAI request fields are sent.
enum class ServerKind {
  kUnknown,   // an OpenAI-compatible server we do not recognise
  kYuan,      // yuan serve (owned_by "yuan"): return_token_ids and every extension
  kVllm,      // owned_by "vllm": return_token_ids, top_k, min_p, repetition_penalty
  kLlamaCpp,  // owned_by "llamacpp": top_k, min_p, repeat_penalty
  kOpenAi,    // api.openai.com (or owned_by "openai"/"system"): the reference API only
};
const char* ServerKindName(ServerKind kind);

// One entry of GET /v1/models. Sizes are 0 when the server does not say.
struct RemoteModel {
  std::string id;
  std::string owned_by;
  int64_t max_model_len = 0;  // vLLM
  // llama.cpp's "meta" object
  int64_t n_ctx_train = 0, n_vocab = 0, n_embd = 0, n_params = 0, size = 0;
};

absl::StatusOr<std::vector<RemoteModel>> ParseModelList(std::string_view body);

// The kind from the URL's host and the models' owned_by.
ServerKind DetectServerKind(std::string_view base_url, const std::vector<RemoteModel>& models);

// The parts of a chunk (or of a whole non-streamed response) the client uses;
// everything else (timings, system_fingerprint, logprobs, ...) is ignored.
// Only choice index 0 is read (requests ask for n = 1).
struct CompletionChunk {
  bool has_choice = false;
  std::string text;                // choices[0].text, .delta.content or .message.content
  std::vector<int32_t> token_ids;  // choices[0].token_ids (yuan serve, vLLM)
  std::string finish_reason;       // "" while the generation runs
  bool has_usage = false;
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};

// Parses one `data:` payload or a whole response body. An `error` object in
// it gives the error status (the server failed mid-stream); malformed JSON
// gives DataLossError.
absl::StatusOr<CompletionChunk> ParseCompletionChunk(std::string_view json);

// The status for an HTTP error response: the code from the HTTP status
// (400 InvalidArgument, 401 Unauthenticated, 403 PermissionDenied,
// 404 NotFound, 408 DeadlineExceeded, 413 OutOfRange, 429 ResourceExhausted,
// 5xx Unavailable; context-length errors OutOfRange) and the message from
// the body's OpenAI error object (or vLLM's / FastAPI's variants), prefixed
// with `context` ("POST http://h/v1/completions").
absl::Status StatusFromHttpError(long http_status, std::string_view body,
                                 std::string_view context);

}  // namespace yuan::remote

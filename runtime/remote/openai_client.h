// An OpenAI-compatible HTTP client on libcurl: POST /v1/completions and
// /v1/chat/completions (streamed as server-sent events, or whole), GET
// /v1/models. Used by the SDK's remote backend (sdk/src/remote_backend.cpp);
// see docs/remote.md for the behaviour a user sees.
//
// Threading: an OpenAiClient is immutable after construction and may be
// used by any number of threads at once; each call uses its own curl
// handles. Callbacks (GenerateRequest::on_token) run on the calling thread.
//
// Proxies: libcurl itself reads http_proxy, https_proxy, all_proxy and
// no_proxy (and their upper-case forms, except HTTP_PROXY, which libcurl
// ignores on purpose); nothing here overrides them.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/chat/chat_template.h"
#include "runtime/engine/engine.h"
#include "runtime/remote/openai_json.h"

namespace yuan::remote {

struct ClientOptions {
  // ".../v1" (a trailing slash is dropped); requests go to base_url + "/completions" etc.
  std::string base_url;
  std::string api_key;  // "" = no Authorization header
  int connect_timeout_ms = 10000;  // TCP + TLS handshake, per attempt
  // Longest silence while waiting for the response or between two pieces of
  // a stream; then DeadlineExceeded. <= 0: wait forever.
  int read_timeout_ms = 120000;
  // Extra attempts after a connection error, HTTP 429 or 5xx, or a stream
  // that ended empty, and only while no text has reached the caller.
  int max_retries = 2;
  int retry_base_ms = 250;        // first backoff; doubles per attempt, with jitter
  int retry_max_ms = 8000;        // backoff cap
  int max_retry_after_ms = 10000; // a larger Retry-After is not waited for: fail at once
  bool verify_tls = true;         // false only in tests (self-signed servers)
  // Which optional request fields the server takes (see ServerKind).
  ServerKind kind = ServerKind::kUnknown;
  // Ask for token ids (`return_token_ids: true`); only servers known to take
  // the field (yuan serve, vLLM) should get it.
  bool return_token_ids = false;
};

struct CompletionCall {
  std::string model;
  bool chat = false;                  // /v1/chat/completions with `messages`
  std::vector<ChatMessage> messages;  // chat
  int enable_thinking = -1;           // chat: chat_template_kwargs.enable_thinking
  // prompt (completions), max_tokens, sampling, stop, ignore_eos, on_token.
  // add_bos / parse_special are the server's business.
  GenerateRequest request;
  bool stream = true;
};

// What a call did, for tests and logs.
struct CallStats {
  int attempts = 0;  // HTTP requests sent (1 + retries)
};

class OpenAiClient {
 public:
  explicit OpenAiClient(ClientOptions options);

  const ClientOptions& options() const { return options_; }

  // GET /v1/models. Retried like a completion.
  absl::StatusOr<std::vector<RemoteModel>> ListModels(const std::atomic<bool>* cancel = nullptr,
                                                      CallStats* stats = nullptr) const;

  // Runs a completion. Text reaches call.request.on_token as it arrives
  // (token = the id when the server returns ids, else -1; index counts
  // tokens, or chunks without ids); *result gets the whole text, the ids,
  // the finish reason and the server's usage counts. prompt_ms is the time to
  // the first token as the client sees it (network and queueing included).
  //
  // Returns OK for a normal end, a stop, the length limit and cancellation
  // (*cancel set, or on_token returned false: finish kCancelled, within
  // about 50 ms even while the server is silent). Errors: the server's HTTP
  // error mapped by StatusFromHttpError; UnavailableError when the server
  // cannot be reached or the connection is lost mid-stream;
  // DeadlineExceededError after read_timeout_ms without data or a connect
  // timeout; DataLossError for a malformed response.
  absl::Status Complete(const CompletionCall& call, const std::atomic<bool>* cancel,
                        GenerateResult* result, CallStats* stats = nullptr) const;

  // The JSON request body for `call` (exposed for tests).
  std::string RequestBody(const CompletionCall& call) const;

 private:
  ClientOptions options_;
};

// Maps an OpenAI finish_reason to ours ("stop", "length", anything else:
// stop; "abort" and "cancelled": cancelled).
FinishReason FinishReasonFromString(std::string_view reason);

}  // namespace yuan::remote

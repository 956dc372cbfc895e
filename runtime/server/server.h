// `yuan serve`: the OpenAI-compatible HTTP API over one Engine and its
// continuous-batching Scheduler.
//
//   POST /v1/chat/completions   chat (the model's chat template), stream or not
//   POST /v1/completions        raw prompt text or token ids, stream or not
//   GET  /v1/models             the served model and its adapters
//   POST /v1/load_lora_adapter  {"lora_name", "lora_path"}  (vLLM's runtime
//   POST /v1/unload_lora_adapter {"lora_name"}               adapter updates;
//                               only with allow_adapter_updates)
//   GET  /health                {"status":"ok"}
//   GET  /metrics               Prometheus text format (metrics.h)
//
// Request flow: the HTTP I/O thread routes and checks the API key, then hands
// the body to a preparation thread (JSON parsing, chat template, tokenizing:
// work that may take milliseconds must not stall the I/O thread), which
// submits one scheduler request per choice. The scheduler thread's callbacks
// write SSE chunks / the final body through the Responder; a client that
// disconnects cancels its sequences at once. Errors use OpenAI's error object.
//
// Threading: Start/Stop/port from any thread; Stop is idempotent and also run
// by the destructor.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/engine/chat.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/scheduler.h"
#include "runtime/server/http.h"
#include "runtime/server/metrics.h"

namespace yuan::server {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: an ephemeral port (ApiServer::port)
  // Accepted bearer tokens for /v1/*; empty: no authentication.
  std::vector<std::string> api_keys;
  // The model id clients see (responses, /v1/models). Empty: the basename of
  // model_path, else the model's general.name, else "yuan".
  std::string model_name;
  std::string model_path;  // only used to name the model
  Scheduler::Options scheduler;
  http::ServerOptions http;  // host and port are taken from the fields above
  ChatOptions chat;          // chat template override (default: the model's)
  // LoRA adapters served as models of their own (name, file), as vLLM's
  // --lora-modules: a request whose "model" is the name gets the adapter
  // applied at scale 1 (batched with everything else; nothing is merged).
  // With adapters (or allow_adapter_updates) an unknown model name is a 404.
  std::vector<std::pair<std::string, std::string>> adapters;
  // Enables POST /v1/load_lora_adapter and /v1/unload_lora_adapter (vLLM's
  // names and bodies). Off by default: it lets API clients make the server
  // read files.
  bool allow_adapter_updates = false;
};

class ApiServer {
 public:
  static absl::StatusOr<std::unique_ptr<ApiServer>> Start(std::shared_ptr<const Engine> engine,
                                                          ServeOptions options);
  ~ApiServer();
  int port() const;
  const std::string& model_name() const;
  // Stops accepting, closes every connection (their sequences are
  // cancelled), stops the scheduler and joins every thread.
  void Stop();

  Scheduler& scheduler();
  const Metrics& metrics() const;

 private:
  ApiServer() = default;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace yuan::server

// The seam between the C ABI and whatever runs the model. The ABI layer
// only talks to Backend / BackendSession; LocalBackend runs the in-process
// runtime, RemoteBackend an OpenAI-compatible HTTP server, and the CUDA
// backend will plug in here too, chosen by OpenBackend from the model string.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/engine/chat.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/lora.h"

namespace yuan::api {

struct BackendOptions {
  std::string model;
  int backend = 0;  // yuan_backend
  int n_threads = 0;
  int n_ctx = 0;
  bool kv_f32 = false;
  // Remote backend only (yuan_engine_options' remote fields).
  bool api_key_set = false;  // false: from $YUAN_API_KEY, else $OPENAI_API_KEY
  std::string api_key;
  std::string remote_model;     // "": the first id of GET /v1/models
  int connect_timeout_ms = 0;   // 0: the default (10 s)
  int read_timeout_ms = 0;      // 0: the default (120 s); -1: none
  int max_retries = 2;
};

struct ModelFacts {
  std::string architecture, name, backend;
  int32_t n_vocab = 0, n_ctx_train = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0;
  uint64_t n_params = 0, size_bytes = 0;
  int32_t bos = -1, eos = -1, n_threads = 0, n_ctx = 0;
};

// A LoRA adapter loaded for one backend (yuan_adapter_load). Local: bound
// to the model; remote: the name the server serves it under.
struct BackendAdapter {
  const void* owner = nullptr;  // the Backend that loaded it
  std::string name;             // the path or remote model name it was loaded as
  std::shared_ptr<const LoraBinding> lora;  // local backends
  std::shared_ptr<const void> keep_alive;   // what `lora` refers to (the engine)
  std::string remote_model;                 // remote backends
};

// One adapter chosen for the calls of a session, with its strength.
struct AdapterUse {
  std::shared_ptr<const BackendAdapter> adapter;
  float scale = 1.0f;
};

class BackendSession {
 public:
  virtual ~BackendSession() = default;
  // The adapters the following Generate / Chat / Decode calls use (the C
  // ABI sets them before each call: the session's or the call's own).
  // InvalidArgument for an adapter of another engine; Unimplemented for a
  // set the backend cannot apply.
  virtual absl::Status SetAdapters(const std::vector<AdapterUse>& adapters) = 0;
  virtual absl::Status Generate(const GenerateRequest& request, GenerateResult* result) = 0;
  virtual absl::Status Decode(const std::vector<int32_t>& tokens) = 0;
  virtual const std::vector<float>& Logits() const = 0;
  virtual void Cancel() = 0;  // any thread
  virtual void Reset() = 0;
  virtual int32_t NPast() const = 0;
  // Generates the reply to a conversation; `request` carries everything but
  // the prompt, which the conversation's rendering replaces.
  virtual absl::Status Chat(const std::vector<ChatMessage>& messages, const ChatOptions& options,
                            GenerateRequest request, GenerateResult* result) = 0;
  virtual absl::StatusOr<std::string> SaveState() const = 0;
  virtual absl::Status LoadState(std::string_view data) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const ModelFacts& Facts() const = 0;
  virtual absl::StatusOr<std::string> Metadata(const std::string& key) const = 0;
  virtual absl::StatusOr<std::vector<int32_t>> Tokenize(std::string_view text, bool add_bos,
                                                        bool parse_special) const = 0;
  virtual absl::StatusOr<std::string> Detokenize(const std::vector<int32_t>& tokens,
                                                 bool render_special) const = 0;
  virtual absl::StatusOr<std::shared_ptr<BackendSession>> OpenSession(int n_ctx) = 0;
  // Loads an adapter (a file for a local model; a served model name for a
  // remote one) for this backend's sessions.
  virtual absl::StatusOr<std::shared_ptr<const BackendAdapter>> LoadAdapter(
      const std::string& path) = 0;
  virtual absl::StatusOr<std::string> RenderChat(const std::vector<ChatMessage>& messages,
                                                 const ChatOptions& options,
                                                 bool add_generation_prompt) const = 0;
};

// Picks and opens the backend for options.model / options.backend.
absl::StatusOr<std::unique_ptr<Backend>> OpenBackend(const BackendOptions& options);

// The in-process CPU runtime.
absl::StatusOr<std::unique_ptr<Backend>> OpenLocalBackend(const BackendOptions& options);

// An OpenAI-compatible server at options.model ("http(s)://host:port/v1"),
// through runtime/remote's client (sdk/src/remote_backend.cpp).
absl::StatusOr<std::unique_ptr<Backend>> OpenRemoteBackend(const BackendOptions& options);

}  // namespace yuan::api

// Backend over an OpenAI-compatible server (runtime/remote): generation and
// chat run on the server; the calls that need the model in this process
// (tokenizer, logits, KV state) are UNIMPLEMENTED. See docs/remote.md.
#include <atomic>
#include <cstdlib>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/core/log.h"
#include "runtime/core/status.h"
#include "runtime/remote/openai_client.h"
#include "sdk/src/backend.h"

namespace yuan::api {
namespace {

constexpr int kDefaultConnectTimeoutMs = 10000;
constexpr int kDefaultReadTimeoutMs = 120000;

absl::Status NoSuchCall(std::string_view what) {
  return absl::UnimplementedError(absl::StrCat(
      "the remote backend has no ", Sv(what),
      ": the model runs on the server (generate and chat are what it offers)"));
}

// What every session of one remote engine shares.
struct RemoteModelRef {
  remote::OpenAiClient client;
  std::string model;
};

class RemoteSession : public BackendSession {
 public:
  explicit RemoteSession(std::shared_ptr<const RemoteModelRef> ref)
      : ref_(std::move(ref)), model_(ref_->model) {}

  // A server applies adapters by model name (vLLM's LoRA modules, yuan
  // serve --adapter): one adapter, at the strength it was served with.
  absl::Status SetAdapters(const std::vector<AdapterUse>& adapters) override {
    if (adapters.empty()) {
      model_ = ref_->model;
      return absl::OkStatus();
    }
    for (const AdapterUse& a : adapters) {
      if (a.adapter == nullptr || a.adapter->owner != ref_.get()) {
        return absl::InvalidArgumentError("an adapter was loaded for another engine");
      }
    }
    if (adapters.size() > 1 || adapters[0].scale != 1.0f) {
      return absl::UnimplementedError(
          "a remote server applies one adapter per request, at scale 1 (it picks it by model name)");
    }
    model_ = adapters[0].adapter->remote_model;
    return absl::OkStatus();
  }

  absl::Status Generate(const GenerateRequest& request, GenerateResult* result) override {
    remote::CompletionCall call;
    call.model = model_;
    call.request = request;
    return Run(call, result);
  }

  absl::Status Chat(const std::vector<ChatMessage>& messages, const ChatOptions& options,
                    GenerateRequest request, GenerateResult* result) override {
    if (!options.chat_template.empty()) {
      return absl::UnimplementedError(
          "the remote backend renders chats with the server's own template; "
          "yuan_chat_options.chat_template cannot be chosen remotely");
    }
    remote::CompletionCall call;
    call.model = model_;
    call.chat = true;
    call.messages = messages;
    call.enable_thinking = options.enable_thinking;
    call.request = std::move(request);
    return Run(call, result);
  }

  absl::Status Decode(const std::vector<int32_t>&) override {
    return NoSuchCall("decode call (yuan_session_decode)");
  }
  const std::vector<float>& Logits() const override { return no_logits_; }
  void Cancel() override {
    // Like the local session: only a running call is stopped.
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) cancel_.store(true);
  }
  void Reset() override {}
  int32_t NPast() const override { return 0; }
  absl::StatusOr<std::string> SaveState() const override {
    return NoSuchCall("session state to save (yuan_session_save)");
  }
  absl::Status LoadState(std::string_view) override {
    return NoSuchCall("session state to load (yuan_session_load)");
  }

 private:
  absl::Status Run(const remote::CompletionCall& call, GenerateResult* result) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancel_.store(false);
      running_ = true;
    }
    if (call.request.cancel != nullptr && call.request.cancel->load()) cancel_.store(true);
    absl::Status st = ref_->client.Complete(call, &cancel_, result);
    std::lock_guard<std::mutex> lock(mu_);
    running_ = false;
    cancel_.store(false);
    return st;
  }

  std::shared_ptr<const RemoteModelRef> ref_;
  std::string model_;  // the model name requests go to: the engine's or an adapter's
  const std::vector<float> no_logits_;
  std::atomic<bool> cancel_{false};
  std::mutex mu_;
  bool running_ = false;
};

class RemoteBackend : public Backend {
 public:
  RemoteBackend(std::shared_ptr<const RemoteModelRef> ref, remote::ServerKind kind,
                const remote::RemoteModel* info, int n_ctx)
      : ref_(std::move(ref)), kind_(kind) {
    facts_.name = ref_->model;
    facts_.backend = "remote";
    if (info != nullptr) {
      facts_.n_ctx_train = static_cast<int32_t>(
          std::min<int64_t>(info->max_model_len > 0 ? info->max_model_len : info->n_ctx_train,
                            INT32_MAX));
      facts_.n_vocab = static_cast<int32_t>(std::min<int64_t>(info->n_vocab, INT32_MAX));
      facts_.n_embd = static_cast<int32_t>(std::min<int64_t>(info->n_embd, INT32_MAX));
      facts_.n_params = static_cast<uint64_t>(std::max<int64_t>(info->n_params, 0));
      facts_.size_bytes = static_cast<uint64_t>(std::max<int64_t>(info->size, 0));
    }
    facts_.n_ctx = n_ctx > 0 ? n_ctx : facts_.n_ctx_train;
  }

  const ModelFacts& Facts() const override { return facts_; }

  absl::StatusOr<std::string> Metadata(const std::string& key) const override {
    if (key == "general.name") return ref_->model;
    if (key == "remote.url") return ref_->client.options().base_url;
    if (key == "remote.server") return std::string(remote::ServerKindName(kind_));
    return absl::NotFoundError(absl::StrCat(
        "no metadata key '", key,
        "': a remote engine has no model file (it knows general.name, remote.url, remote.server)"));
  }

  absl::StatusOr<std::vector<int32_t>> Tokenize(std::string_view, bool, bool) const override {
    return NoSuchCall("tokenizer (yuan_tokenize)");
  }
  absl::StatusOr<std::string> Detokenize(const std::vector<int32_t>&, bool) const override {
    return NoSuchCall("tokenizer (yuan_detokenize)");
  }
  absl::StatusOr<std::string> RenderChat(const std::vector<ChatMessage>&, const ChatOptions&,
                                         bool) const override {
    return NoSuchCall("chat template to apply (yuan_chat_apply_template; the server renders chats)");
  }
  absl::StatusOr<std::shared_ptr<BackendSession>> OpenSession(int) override {
    // The server owns the context; there is nothing to reserve here.
    return std::shared_ptr<BackendSession>(std::make_shared<RemoteSession>(ref_));
  }

  // An adapter on a server is a model name it lists (GET /v1/models).
  absl::StatusOr<std::shared_ptr<const BackendAdapter>> LoadAdapter(
      const std::string& name) override {
    YUAN_ASSIGN_OR_RETURN(std::vector<remote::RemoteModel> models, ref_->client.ListModels());
    std::string listed;
    bool found = false;
    for (const remote::RemoteModel& m : models) {
      found = found || m.id == name;
      if (listed.size() < 200) absl::StrAppend(&listed, listed.empty() ? "" : ", ", m.id);
    }
    if (!found) {
      return absl::NotFoundError(absl::StrCat("the server does not serve a model or adapter named '",
                                              name, "' (it lists: ", listed, ")"));
    }
    auto a = std::make_shared<BackendAdapter>();
    a->owner = ref_.get();
    a->name = name;
    a->remote_model = name;
    return std::shared_ptr<const BackendAdapter>(std::move(a));
  }

 private:
  std::shared_ptr<const RemoteModelRef> ref_;
  remote::ServerKind kind_;
  ModelFacts facts_;
};

// "http://h:8000" and "http://h:8000/" mean the API root "/v1".
std::string BaseUrl(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  const size_t scheme = url.find("://");
  if (scheme != std::string::npos && url.find('/', scheme + 3) == std::string::npos) url += "/v1";
  return url;
}

absl::StatusOr<std::string> ApiKey(const BackendOptions& o) {
  std::string key;
  if (o.api_key_set) {
    key = o.api_key;
  } else if (const char* env = std::getenv("YUAN_API_KEY"); env != nullptr && env[0] != '\0') {
    key = env;
  } else if (const char* env2 = std::getenv("OPENAI_API_KEY"); env2 != nullptr) {
    key = env2;
  }
  for (char c : key) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return absl::InvalidArgumentError("the API key contains a line break");
    }
  }
  return key;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> OpenRemoteBackend(const BackendOptions& options) {
  remote::ClientOptions co;
  co.base_url = BaseUrl(options.model);
  YUAN_ASSIGN_OR_RETURN(co.api_key, ApiKey(options));
  co.connect_timeout_ms =
      options.connect_timeout_ms > 0 ? options.connect_timeout_ms : kDefaultConnectTimeoutMs;
  co.read_timeout_ms = options.read_timeout_ms == 0 ? kDefaultReadTimeoutMs
                       : options.read_timeout_ms < 0 ? 0
                                                     : options.read_timeout_ms;
  co.max_retries = std::max(0, options.max_retries);

  // The server's models: the default model name, the context size, and who
  // the server is (which optional request fields it takes).
  std::vector<remote::RemoteModel> models;
  {
    remote::OpenAiClient probe(co);
    auto listed = probe.ListModels();
    if (listed.ok()) {
      models = std::move(*listed);
    } else if (!options.remote_model.empty() &&
               (absl::IsNotFound(listed.status()) || absl::IsDataLoss(listed.status()))) {
      // A server without a usable /v1/models still works with a named model.
      Logf(LogLevel::kInfo, "remote: %s; using model '%s'", std::string(listed.status().message()),
           options.remote_model);
    } else if (absl::IsNotFound(listed.status()) || absl::IsDataLoss(listed.status())) {
      return absl::Status(listed.status().code(),
                          absl::StrCat(listed.status().message(),
                                       " (set yuan_engine_options.remote_model to name the model)"));
    } else {
      return listed.status();
    }
  }
  const remote::ServerKind kind = remote::DetectServerKind(co.base_url, models);
  co.kind = kind;
  co.return_token_ids = kind == remote::ServerKind::kYuan || kind == remote::ServerKind::kVllm;

  std::string model = options.remote_model;
  const remote::RemoteModel* info = nullptr;
  if (model.empty()) {
    if (models.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("GET ", co.base_url, "/models lists no model"));
    }
    model = models.front().id;
    info = &models.front();
  } else {
    for (const remote::RemoteModel& m : models) {
      if (m.id == model) info = &m;
    }
    if (info == nullptr && !models.empty()) {
      Logf(LogLevel::kWarn, "remote: the server does not list model '%s' (it lists '%s', ...)",
           model, models.front().id);
    }
  }
  auto ref = std::make_shared<RemoteModelRef>(RemoteModelRef{remote::OpenAiClient(co), model});
  Logf(LogLevel::kInfo, "remote: %s at %s, model '%s'", remote::ServerKindName(kind), co.base_url,
       model);
  return std::unique_ptr<Backend>(new RemoteBackend(std::move(ref), kind, info, options.n_ctx));
}

}  // namespace yuan::api

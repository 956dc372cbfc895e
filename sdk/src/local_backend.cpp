// Backend over the in-process runtime (runtime/engine).
#include <cinttypes>

#include "absl/strings/str_format.h"
#include "runtime/core/status.h"
#include "sdk/src/backend.h"

namespace yuan::api {
namespace {

// Metadata value as text: scalars printed, strings verbatim, arrays
// summarised (the full arrays are for `yuan inspect`).
std::string ValueText(const GgufValue& v) {
  switch (v.type) {
    case GgufType::kString:
      return std::string(v.str);
    case GgufType::kBool:
      return v.u ? "true" : "false";
    case GgufType::kFloat32:
    case GgufType::kFloat64:
      return absl::StrFormat("%g", v.f);
    case GgufType::kArray:
      return absl::StrFormat("[%s x %d]", GgufTypeName(v.elem_type), v.array_size);
    case GgufType::kUint64:
    case GgufType::kUint32:
    case GgufType::kUint16:
    case GgufType::kUint8:
      return absl::StrCat(v.u);
    default:
      return absl::StrCat(v.i);
  }
}

class LocalSession : public BackendSession {
 public:
  LocalSession(std::unique_ptr<Session> s, const void* owner) : s_(std::move(s)), owner_(owner) {}
  absl::Status SetAdapters(const std::vector<AdapterUse>& adapters) override {
    LoraSet set;
    for (const AdapterUse& a : adapters) {
      if (a.adapter == nullptr || a.adapter->owner != owner_ || a.adapter->lora == nullptr) {
        return absl::InvalidArgumentError("an adapter was loaded for another engine");
      }
      set.push_back({a.adapter->lora, a.scale});
    }
    loras_ = std::move(set);
    return absl::OkStatus();
  }
  absl::Status Generate(const GenerateRequest& r, GenerateResult* out) override {
    GenerateRequest with = r;
    with.loras = loras_;
    return s_->Generate(with, out);
  }
  absl::Status Decode(const std::vector<int32_t>& t) override { return s_->Decode(t, &loras_); }
  const std::vector<float>& Logits() const override { return s_->logits(); }
  void Cancel() override { s_->Cancel(); }
  void Reset() override { s_->Reset(); }
  int32_t NPast() const override { return s_->n_past(); }
  absl::Status Chat(const std::vector<ChatMessage>& messages, const ChatOptions& options,
                    GenerateRequest request, GenerateResult* result) override {
    YUAN_RETURN_IF_ERROR(PrepareChatRequest(s_->engine(), messages, options, &request));
    request.loras = loras_;
    return s_->Generate(request, result);
  }
  absl::StatusOr<std::string> SaveState() const override { return s_->SaveState(); }
  absl::Status LoadState(std::string_view data) override { return s_->LoadState(data); }

 private:
  std::unique_ptr<Session> s_;
  const void* owner_;  // the LocalBackend
  LoraSet loras_;
};

class LocalBackend : public Backend {
 public:
  explicit LocalBackend(std::shared_ptr<Engine> engine) : engine_(std::move(engine)) {
    const ModelConfig& c = engine_->model().config();
    facts_.architecture = c.arch;
    facts_.name = c.name;
    facts_.backend = "cpu";
    facts_.n_vocab = c.n_vocab;
    facts_.n_ctx_train = c.n_ctx_train;
    facts_.n_embd = c.n_embd;
    facts_.n_layer = c.n_layer;
    facts_.n_head = c.n_head;
    facts_.n_head_kv = c.n_head_kv;
    facts_.n_params = engine_->model().n_params();
    for (const GgufTensor& t : engine_->model().gguf().tensors()) facts_.size_bytes += t.n_bytes;
    facts_.bos = engine_->tokenizer().bos();
    facts_.eos = engine_->tokenizer().eos();
    facts_.n_threads = engine_->pool()->size();
    facts_.n_ctx = engine_->n_ctx();
  }

  const ModelFacts& Facts() const override { return facts_; }

  absl::StatusOr<std::string> Metadata(const std::string& key) const override {
    const GgufValue* v = engine_->model().gguf().Find(key);
    if (v == nullptr) return absl::NotFoundError(absl::StrCat("no metadata key '", key, "'"));
    return ValueText(*v);
  }

  absl::StatusOr<std::vector<int32_t>> Tokenize(std::string_view text, bool add_bos,
                                                bool parse_special) const override {
    EncodeOptions o;
    o.add_bos = add_bos;
    o.parse_special = parse_special;
    return engine_->tokenizer().Encode(text, o);
  }

  absl::StatusOr<std::string> Detokenize(const std::vector<int32_t>& tokens,
                                         bool render_special) const override {
    const int32_t n = engine_->tokenizer().n_vocab();
    for (int32_t t : tokens) {
      if (t < 0 || t >= n) {
        return absl::InvalidArgumentError(absl::StrFormat("token id %d is out of range [0, %d)", t, n));
      }
    }
    return engine_->tokenizer().Decode(tokens, render_special);
  }

  absl::StatusOr<std::string> RenderChat(const std::vector<ChatMessage>& messages,
                                         const ChatOptions& options,
                                         bool add_generation_prompt) const override {
    return RenderConversation(*engine_, messages, options, add_generation_prompt);
  }

  absl::StatusOr<std::shared_ptr<BackendSession>> OpenSession(int n_ctx) override {
    YUAN_ASSIGN_OR_RETURN(std::unique_ptr<Session> s, Session::Create(engine_, n_ctx));
    return std::shared_ptr<BackendSession>(std::make_shared<LocalSession>(std::move(s), this));
  }

  absl::StatusOr<std::shared_ptr<const BackendAdapter>> LoadAdapter(
      const std::string& path) override {
    YUAN_ASSIGN_OR_RETURN(std::shared_ptr<const LoraBinding> binding,
                          LoadLora(path, engine_->model()));
    auto a = std::make_shared<BackendAdapter>();
    a->owner = this;
    a->name = path;
    a->lora = std::move(binding);
    a->keep_alive = engine_;
    return std::shared_ptr<const BackendAdapter>(std::move(a));
  }

 private:
  std::shared_ptr<Engine> engine_;
  ModelFacts facts_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> OpenLocalBackend(const BackendOptions& options) {
  EngineOptions eo;
  eo.model_path = options.model;
  eo.n_threads = options.n_threads;
  eo.n_ctx = options.n_ctx;
  eo.kv_type = options.kv_f32 ? DType::kF32 : DType::kF16;
  YUAN_ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, Engine::Open(eo));
  return std::unique_ptr<Backend>(new LocalBackend(std::move(engine)));
}

}  // namespace yuan::api

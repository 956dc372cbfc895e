#include "runtime/server/server.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/core/status.h"
#include "runtime/engine/lora.h"
#include "runtime/server/openai_api.h"

namespace yuan::server {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using openai::ApiError;
using openai::Endpoint;

constexpr std::string_view kJson = "application/json";
constexpr size_t kMaxPendingPreparations = 256;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

ApiError MakeError(int status, std::string message, std::string code = "") {
  ApiError e;
  e.http_status = status;
  e.message = std::move(message);
  e.type = openai::ErrorTypeForStatus(status);
  e.code = std::move(code);
  return e;
}

// A Scheduler::Submit error as the HTTP answer (see scheduler.h).
ApiError SubmitError(const absl::Status& st) {
  const std::string msg(st.message());
  switch (st.code()) {
    case absl::StatusCode::kResourceExhausted:
      return MakeError(429, absl::StrCat("the server is busy (", msg, "); retry later"));
    case absl::StatusCode::kUnavailable:
      return MakeError(503, absl::StrCat("the server cannot take requests now: ", msg));
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kInvalidArgument:
      return openai::BadRequest(msg);
    default:
      return MakeError(500, absl::StrCat("internal error: ", msg));
  }
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string Basename(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

}  // namespace

// One HTTP request: n scheduler sequences answered through one responder.
// Callbacks of its sequences run on the scheduler thread and take `mu`; the
// client-disconnect hook runs on the I/O thread and takes only `ids_mu` (it
// never waits for a callback or the responder).
struct Job {
  struct ChoiceState {
    std::string text;
    std::vector<int32_t> tokens;
    std::vector<openai::TokenLogprob> logprobs;
    size_t streamed_bytes = 0;
    FinishReason finish = FinishReason::kNone;
    absl::Status status;
    bool have_token = false;
    Clock::time_point last_token;
  };
  // Events that arrived before all n sequences were submitted.
  struct Pending {
    int index;
    bool done;
    StreamDelta delta;
    StreamDone result;
  };

  Endpoint endpoint = Endpoint::kChatCompletions;
  std::string endpoint_label;
  bool stream = false, include_usage = false, return_token_ids = false;
  int32_t logprobs = -1;
  openai::ResponseMeta meta;
  std::shared_ptr<http::Responder> responder;
  Metrics* metrics = nullptr;
  const Tokenizer* tokenizer = nullptr;
  Clock::time_point arrival;

  std::atomic<bool> closed{false};  // the client went away
  std::mutex ids_mu;
  std::vector<uint64_t> ids;

  std::mutex mu;
  bool ready = false;   // all submitted, stream started
  bool failed = false;  // answered with an error already; ignore callbacks
  int remaining = 0;
  std::vector<ChoiceState> choices;
  std::vector<Pending> pending;
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;

  // ---- scheduler thread ----
  bool OnDelta(int index, const StreamDelta& d) {
    if (closed.load()) return false;
    std::lock_guard<std::mutex> lock(mu);
    if (failed) return false;
    if (!ready) {
      pending.push_back({index, false, d, {}});
      return true;
    }
    return HandleDeltaLocked(index, d);
  }

  void OnDone(int index, const StreamDone& done) {
    std::lock_guard<std::mutex> lock(mu);
    if (!ready && !failed) {
      pending.push_back({index, true, {}, done});
      return;
    }
    HandleDoneLocked(index, done);
  }

  // ---- preparation thread, after every Submit succeeded ----
  void Start() {
    std::lock_guard<std::mutex> lock(mu);
    ready = true;
    if (stream) {
      responder->StartStream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
      metrics->CountRequest(endpoint_label, 200);
      if (endpoint == Endpoint::kChatCompletions) {
        for (size_t i = 0; i < choices.size(); ++i) {
          responder->Write(openai::SseEvent(openai::ChatRoleChunk(meta, static_cast<int>(i))));
        }
      }
    }
    std::vector<Pending> events = std::move(pending);
    pending.clear();
    for (const Pending& p : events) {
      if (p.done) {
        HandleDoneLocked(p.index, p.result);
      } else if (!HandleDeltaLocked(p.index, p.delta)) {
        // Write failed: the client is gone; OnClose cancels the sequences.
      }
    }
  }

  bool HandleDeltaLocked(int index, const StreamDelta& d) {
    ChoiceState& c = choices[static_cast<size_t>(index)];
    if (c.finish != FinishReason::kNone) return false;
    if (d.token >= 0) {
      const auto now = Clock::now();
      if (!c.have_token) {
        metrics->ObserveTimeToFirstToken(Seconds(now - arrival));
      } else {
        metrics->ObserveInterTokenLatency(Seconds(now - c.last_token));
      }
      c.have_token = true;
      c.last_token = now;
    }
    c.text += d.text;
    openai::Choice delta;
    delta.index = index;
    delta.text = d.text;
    if (d.token >= 0) {
      c.tokens.push_back(d.token);
      delta.token_ids.push_back(d.token);
      if (logprobs >= 0) {
        openai::TokenLogprob lp;
        lp.token = tokenizer->TokenToPiece(d.token);
        lp.logprob = d.logprob;
        for (const auto& [id, l] : d.top_logprobs) lp.top.emplace_back(tokenizer->TokenToPiece(id), l);
        delta.logprobs.push_back(lp);
        c.logprobs.push_back(std::move(lp));
      }
    }
    if (!stream) return true;
    const bool extras = d.token >= 0 && (return_token_ids || logprobs >= 0);
    if (d.text.empty() && !extras) return true;
    delta.with_token_ids = return_token_ids;
    delta.with_logprobs = logprobs >= 0 && !delta.logprobs.empty();
    delta.text_offset = c.streamed_bytes;
    c.streamed_bytes += d.text.size();
    const json chunk = endpoint == Endpoint::kChatCompletions ? openai::ChatChunk(meta, delta)
                                                               : openai::TextCompletionChunk(meta, delta);
    return responder->Write(openai::SseEvent(chunk));
  }

  void HandleDoneLocked(int index, const StreamDone& done) {
    ChoiceState& c = choices[static_cast<size_t>(index)];
    c.finish = done.finish_reason == FinishReason::kNone ? FinishReason::kError : done.finish_reason;
    c.status = done.status;
    // The scheduler's account is authoritative (a stop string is cut off).
    c.text = done.text;
    c.tokens = done.tokens;
    prompt_tokens = done.prompt_tokens;
    completion_tokens += done.completion_tokens;
    metrics->AddPromptTokens(done.prompt_tokens);
    metrics->AddGeneratedTokens(done.completion_tokens);
    if (c.finish == FinishReason::kStop || c.finish == FinishReason::kLength) {
      metrics->ObserveRequestDuration(Seconds(Clock::now() - arrival));
    }
    --remaining;
    if (failed) return;
    if (stream) {
      if (openai::FinishReasonString(c.finish) != nullptr) {
        openai::Choice fin;
        fin.index = index;
        fin.finish_reason = c.finish;
        fin.text_offset = c.streamed_bytes;
        fin.with_token_ids = return_token_ids;
        const json chunk = endpoint == Endpoint::kChatCompletions ? openai::ChatChunk(meta, fin)
                                                                   : openai::TextCompletionChunk(meta, fin);
        responder->Write(openai::SseEvent(chunk));
      } else if (c.finish == FinishReason::kError) {
        responder->Write(openai::SseEvent(openai::ErrorObject(
            MakeError(500, absl::StrCat("generation failed: ", c.status.message())))));
      }
      if (remaining == 0) {
        if (include_usage) {
          responder->Write(openai::SseEvent(openai::UsageChunk(meta, endpoint, {prompt_tokens, completion_tokens})));
        }
        responder->Write(std::string(openai::kSseDone));
        responder->End();
      }
      return;
    }
    if (remaining > 0) return;
    // Non-streaming: one answer once every choice is done.
    for (const ChoiceState& s : choices) {
      if (s.finish == FinishReason::kError) {
        const ApiError e = absl::IsInvalidArgument(s.status) || absl::IsOutOfRange(s.status)
                               ? openai::BadRequest(std::string(s.status.message()))
                               : MakeError(500, absl::StrCat("generation failed: ", s.status.message()));
        Fail(e);
        return;
      }
      if (s.finish == FinishReason::kCancelled) {
        if (closed.load()) {
          // Nobody to answer; counted as nginx's "client closed request".
          metrics->CountRequest(endpoint_label, 499);
          return;
        }
        Fail(MakeError(503, "the request was cancelled: the server is shutting down"));
        return;
      }
    }
    std::vector<openai::Choice> out;
    for (size_t i = 0; i < choices.size(); ++i) {
      openai::Choice ch;
      ch.index = static_cast<int>(i);
      ch.text = choices[i].text;
      ch.finish_reason = choices[i].finish;
      ch.with_token_ids = return_token_ids;
      ch.token_ids = choices[i].tokens;
      ch.with_logprobs = logprobs >= 0;
      ch.logprobs = choices[i].logprobs;
      out.push_back(std::move(ch));
    }
    const openai::Usage usage{prompt_tokens, completion_tokens};
    const json body = endpoint == Endpoint::kChatCompletions ? openai::ChatCompletion(meta, out, usage)
                                                              : openai::TextCompletion(meta, out, usage);
    metrics->CountRequest(endpoint_label, 200);
    responder->Send(200, kJson, openai::Dump(body));
  }

  void Fail(const ApiError& e) {
    failed = true;
    metrics->CountRequest(endpoint_label, e.http_status);
    responder->Send(e.http_status, kJson, openai::ErrorBody(e));
  }
};

// An adapter served as a model.
struct ServedAdapter {
  std::string path;
  std::shared_ptr<const LoraBinding> lora;
  int64_t created = 0;
};

struct ApiServer::Impl {
  std::shared_ptr<const Engine> engine;
  ServeOptions options;
  std::string model_name;
  // By name; requests copy the binding, so unloading never disturbs them.
  std::mutex adapters_mu;
  std::map<std::string, ServedAdapter> adapters;
  int32_t n_ctx = 0;
  int64_t created = 0;
  Metrics metrics;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<http::Server> http;

  // The preparation thread (parse, template, tokenize, submit).
  std::thread prep_thread;
  std::mutex prep_mu;
  std::condition_variable prep_cv;
  std::deque<std::function<void()>> prep_queue;
  bool prep_stopping = false;

  std::once_flag stop_once;

  void PrepLoop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(prep_mu);
        prep_cv.wait(lock, [&] { return prep_stopping || !prep_queue.empty(); });
        if (prep_stopping) return;
        task = std::move(prep_queue.front());
        prep_queue.pop_front();
      }
      task();
    }
  }

  void SendError(const std::shared_ptr<http::Responder>& r, std::string_view label, const ApiError& e,
                 http::Headers extra = {}) {
    metrics.CountRequest(label, e.http_status);
    r->Send(e.http_status, kJson, openai::ErrorBody(e), std::move(extra));
  }

  void SendJson(const std::shared_ptr<http::Responder>& r, std::string_view label, const json& body) {
    metrics.CountRequest(label, 200);
    r->Send(200, kJson, openai::Dump(body));
  }

  bool Authorized(const http::Request& req) const {
    if (options.api_keys.empty()) return true;
    const std::string* auth = req.Header("authorization");
    if (auth == nullptr) return false;
    std::string_view v = *auth;
    if (v.size() < 7 || !absl::EqualsIgnoreCase(Sv(v.substr(0, 7)), "bearer ")) return false;
    v.remove_prefix(7);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    bool ok = false;
    for (const std::string& key : options.api_keys) ok |= ConstantTimeEquals(v, key);
    return ok;
  }

  json ModelObject() const {
    return json{{"id", model_name}, {"object", "model"}, {"created", created}, {"owned_by", "yuan"},
                {"root", model_name}, {"parent", nullptr}, {"max_model_len", n_ctx}};
  }
  // An adapter as vLLM lists a LoRA module: its file as root, the base as parent.
  json AdapterObject(const std::string& name, const ServedAdapter& a) const {
    return json{{"id", name}, {"object", "model"}, {"created", a.created}, {"owned_by", "yuan"},
                {"root", a.path}, {"parent", model_name}, {"max_model_len", n_ctx}};
  }
  // The model object for `id` (the base or an adapter); null when unknown.
  json FindModelObject(const std::string& id) {
    if (id == model_name) return ModelObject();
    std::lock_guard<std::mutex> lock(adapters_mu);
    auto it = adapters.find(id);
    return it == adapters.end() ? json() : AdapterObject(id, it->second);
  }
  json ModelList() {
    json data = json::array({ModelObject()});
    std::lock_guard<std::mutex> lock(adapters_mu);
    for (const auto& [name, a] : adapters) data.push_back(AdapterObject(name, a));
    return json{{"object", "list"}, {"data", data}};
  }
  bool ServesAdapters() {
    std::lock_guard<std::mutex> lock(adapters_mu);
    return options.allow_adapter_updates || !adapters.empty();
  }

  // POST /v1/load_lora_adapter and /v1/unload_lora_adapter (preparation
  // thread: loading reads a file). Plain-text success bodies, as vLLM's.
  void UpdateAdapters(bool load, const std::shared_ptr<http::Responder>& r, const std::string& label,
                      const std::string& body) {
    const json j = json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("lora_name") || !j["lora_name"].is_string() ||
        j["lora_name"].get<std::string>().empty()) {
      return SendError(r, label, openai::BadRequest("the body must be a JSON object with a non-empty string 'lora_name'", "lora_name"));
    }
    const std::string name = j["lora_name"].get<std::string>();
    if (!load) {
      std::lock_guard<std::mutex> lock(adapters_mu);
      if (adapters.erase(name) == 0) {
        return SendError(r, label, MakeError(404, absl::StrCat("no adapter named '", name, "' is loaded"), "model_not_found"));
      }
    } else {
      if (!j.contains("lora_path") || !j["lora_path"].is_string()) {
        return SendError(r, label, openai::BadRequest("'lora_path' must be a string", "lora_path"));
      }
      const std::string path = j["lora_path"].get<std::string>();
      if (name == model_name) {
        return SendError(r, label, openai::BadRequest(absl::StrCat("'", name, "' is the base model's name"), "lora_name"));
      }
      {
        std::lock_guard<std::mutex> lock(adapters_mu);
        if (adapters.count(name) > 0) {
          return SendError(r, label, openai::BadRequest(absl::StrCat("an adapter named '", name, "' is already loaded"), "lora_name"));
        }
      }
      absl::StatusOr<std::shared_ptr<const LoraBinding>> lora = LoadLora(path, engine->model());
      if (!lora.ok()) {
        return SendError(r, label, openai::BadRequest(absl::StrCat("cannot load adapter '", name, "': ", lora.status().message()), "lora_path"));
      }
      std::lock_guard<std::mutex> lock(adapters_mu);
      if (!adapters.emplace(name, ServedAdapter{path, *lora, UnixNow()}).second) {
        return SendError(r, label, openai::BadRequest(absl::StrCat("an adapter named '", name, "' is already loaded"), "lora_name"));
      }
    }
    metrics.CountRequest(label, 200);
    r->Send(200, "text/plain; charset=utf-8",
            absl::StrCat("Success: LoRA adapter '", name, load ? "' added successfully." : "' removed successfully."));
  }

  // ---- I/O thread ----
  void Handle(http::Request req, std::shared_ptr<http::Responder> r) {
    const std::string& path = req.path;
    const bool get = req.method == "GET";
    const bool post = req.method == "POST";
    auto wrong_method = [&](std::string_view label, const char* allow) {
      SendError(r, label,
                MakeError(405, absl::StrCat("method ", req.method, " is not allowed on ", path, "; use ", allow)),
                {{"Allow", allow}});
    };
    if (path == "/health") {
      if (!get) return wrong_method("/health", "GET");
      return SendJson(r, "/health", json{{"status", "ok"}});
    }
    if (path == "/metrics") {
      if (!get) return wrong_method("/metrics", "GET");
      const Scheduler::Stats s = scheduler->stats();
      Metrics::Gauges g;
      g.running = s.running;
      g.queued = s.queued;
      g.kv_cache_usage = s.kv_pages_total > 0 ? static_cast<double>(s.kv_pages_used) / s.kv_pages_total : 0.0;
      metrics.CountRequest("/metrics", 200);
      r->Send(200, "text/plain; version=0.0.4; charset=utf-8", metrics.Render(g));
      return;
    }
    const bool chat = path == "/v1/chat/completions";
    const bool completions = path == "/v1/completions";
    const bool models = path == "/v1/models";
    const bool model_by_id = absl::StartsWith(path, "/v1/models/");
    const bool load_adapter = path == "/v1/load_lora_adapter";
    const bool unload_adapter = path == "/v1/unload_lora_adapter";
    if ((load_adapter || unload_adapter) && !options.allow_adapter_updates) {
      return SendError(r, "other", MakeError(404, absl::StrCat("no route for ", req.method, " ", path,
                                                               " (adapter updates are off: yuan serve --allow-adapter-updates)"),
                                             "not_found"));
    }
    if (!chat && !completions && !models && !model_by_id && !load_adapter && !unload_adapter) {
      return SendError(r, "other", MakeError(404, absl::StrCat("no route for ", req.method, " ", path), "not_found"));
    }
    const std::string label = model_by_id ? "/v1/models" : path;
    if (!Authorized(req)) {
      return SendError(r, label,
                       MakeError(401, "invalid or missing API key: send 'Authorization: Bearer KEY'", "invalid_api_key"));
    }
    if (models || model_by_id) {
      if (!get) return wrong_method(label, "GET");
      if (model_by_id) {
        json m = FindModelObject(path.substr(std::string_view("/v1/models/").size()));
        if (m.is_null()) {
          return SendError(r, label, MakeError(404, absl::StrCat("the model '", path.substr(11), "' does not exist"),
                                               "model_not_found"));
        }
        return SendJson(r, label, m);
      }
      return SendJson(r, label, ModelList());
    }
    if (!post) return wrong_method(label, "POST");
    if (load_adapter || unload_adapter) {
      std::lock_guard<std::mutex> lock(prep_mu);
      if (prep_queue.size() < kMaxPendingPreparations && !prep_stopping) {
        prep_queue.push_back([this, r, label, load_adapter, body = std::move(req.body)] {
          UpdateAdapters(load_adapter, r, label, body);
        });
        prep_cv.notify_one();
        return;
      }
      return SendError(r, label, MakeError(503, "too many requests are being prepared; retry later"), {{"Retry-After", "1"}});
    }
    const Endpoint endpoint = chat ? Endpoint::kChatCompletions : Endpoint::kCompletions;
    auto job = std::make_shared<Job>();
    job->endpoint = endpoint;
    job->endpoint_label = label;
    job->responder = r;
    job->metrics = &metrics;
    job->tokenizer = &engine->tokenizer();
    job->arrival = Clock::now();
    // Cancel at once when the client goes away (weak: the responder must not
    // keep the job alive, the job holds the responder).
    std::weak_ptr<Job> weak = job;
    Scheduler* sched = scheduler.get();
    r->OnClose([weak, sched] {
      std::shared_ptr<Job> j = weak.lock();
      if (j == nullptr) return;
      j->closed.store(true);
      std::vector<uint64_t> ids;
      {
        std::lock_guard<std::mutex> lock(j->ids_mu);
        ids = j->ids;
      }
      for (uint64_t id : ids) sched->Cancel(id);
    });
    {
      std::lock_guard<std::mutex> lock(prep_mu);
      if (prep_queue.size() < kMaxPendingPreparations && !prep_stopping) {
        prep_queue.push_back([this, job, body = std::move(req.body)] { Prepare(job, body); });
        prep_cv.notify_one();
        return;
      }
    }
    SendError(r, label, MakeError(503, "too many requests are being prepared; retry later"), {{"Retry-After", "1"}});
  }

  // ---- preparation thread ----
  void Prepare(const std::shared_ptr<Job>& job, const std::string& body) {
    if (job->closed.load()) return;
    const std::shared_ptr<http::Responder>& r = job->responder;
    const std::string& label = job->endpoint_label;
    openai::RequestLimits limits;
    limits.n_ctx = n_ctx;
    limits.n_vocab = engine->model().config().n_vocab;
    openai::ApiRequest req;
    ApiError err;
    if (!openai::ParseRequest(job->endpoint, body, limits, &req, &err)) return SendError(r, label, err);
    // "model" picks an adapter (the base: its own name or none). Without
    // served adapters any name means the one model, as llama.cpp's server.
    LoraSet loras;
    std::string answered_model = model_name;
    if (!req.model.empty() && req.model != model_name && ServesAdapters()) {
      std::lock_guard<std::mutex> lock(adapters_mu);
      auto it = adapters.find(req.model);
      if (it == adapters.end()) {
        return SendError(r, label, MakeError(404, absl::StrCat("the model '", req.model, "' does not exist"),
                                             "model_not_found"));
      }
      loras.push_back({it->second.lora, 1.0f});
      answered_model = req.model;
    }

    const Tokenizer& tok = engine->tokenizer();
    std::vector<int32_t> prompt;
    const char* prompt_param = "prompt";
    if (job->endpoint == Endpoint::kChatCompletions) {
      prompt_param = "messages";
      ChatOptions chat = options.chat;
      if (req.enable_thinking >= 0) chat.enable_thinking = req.enable_thinking;
      GenerateRequest gr;
      absl::Status st = PrepareChatRequest(*engine, req.messages, chat, &gr);
      if (!st.ok()) {
        return SendError(r, label,
                         openai::BadRequest(absl::StrCat("cannot apply the chat template: ", st.message()), "messages"));
      }
      EncodeOptions eo;
      eo.add_bos = gr.add_bos;
      eo.parse_special = gr.parse_special;
      prompt = tok.Encode(gr.prompt, eo);
    } else if (req.prompt_is_tokens) {
      prompt = std::move(req.prompt_tokens);
    } else {
      // Special-token text in a raw prompt is read as those tokens, as
      // llama.cpp's server and vLLM do.
      EncodeOptions eo;
      eo.add_bos = true;
      eo.parse_special = true;
      prompt = tok.Encode(req.prompt_text, eo);
    }
    const int64_t p = static_cast<int64_t>(prompt.size());
    if (p == 0) {
      return SendError(r, label, openai::BadRequest("the prompt is empty (and the model adds no BOS token)", prompt_param));
    }
    if (p >= n_ctx) {
      ApiError e = openai::BadRequest(
          absl::StrCat("this model's maximum context length is ", n_ctx, " tokens; the prompt has ", p,
                       " tokens and leaves no room to generate"),
          prompt_param);
      e.code = "context_length_exceeded";
      return SendError(r, label, e);
    }
    // prompt + max_tokens beyond the context is not an error (unlike vLLM):
    // generation stops there with finish_reason "length", as a local Session
    // does, so the SDK behaves the same against a server.

    job->stream = req.stream;
    job->include_usage = req.include_usage;
    job->return_token_ids = req.return_token_ids;
    job->logprobs = req.logprobs;
    job->meta.id = openai::NewId(job->endpoint == Endpoint::kChatCompletions ? "chatcmpl-" : "cmpl-");
    job->meta.created = UnixNow();
    job->meta.model = answered_model;
    job->meta.system_fingerprint = "yuan";
    job->choices.resize(static_cast<size_t>(req.n));
    job->remaining = req.n;

    uint64_t seed = 0;
    if (req.seed.has_value()) {
      seed = *req.seed;
    } else {
      thread_local std::mt19937_64 rng{std::random_device{}()};
      seed = rng();
    }
    for (int i = 0; i < req.n; ++i) {
      BatchRequest br;
      br.prompt = prompt;
      br.max_tokens = req.max_tokens;  // -1: until the context is full
      br.ignore_eos = req.ignore_eos;
      br.sampling = openai::ToSamplingParams(req, seed + static_cast<uint64_t>(i));
      br.stop = req.stop;
      br.n_logprobs = req.logprobs;
      br.loras = loras;
      std::shared_ptr<Job> j = job;
      br.on_delta = [j, i](const StreamDelta& d) { return j->OnDelta(i, d); };
      br.on_done = [j, i](const StreamDone& d) { j->OnDone(i, d); };
      absl::StatusOr<uint64_t> id = scheduler->Submit(std::move(br));
      if (!id.ok()) {
        std::vector<uint64_t> submitted;
        {
          std::lock_guard<std::mutex> lock(job->mu);
          job->failed = true;
          job->pending.clear();
        }
        {
          std::lock_guard<std::mutex> lock(job->ids_mu);
          submitted = job->ids;
        }
        for (uint64_t s : submitted) scheduler->Cancel(s);
        const ApiError e = SubmitError(id.status());
        http::Headers extra;
        if (e.http_status == 429 || e.http_status == 503) extra.emplace_back("Retry-After", "1");
        return SendError(r, label, e, std::move(extra));
      }
      bool closed = false;
      {
        std::lock_guard<std::mutex> lock(job->ids_mu);
        job->ids.push_back(*id);
        closed = job->closed.load();
      }
      if (closed) scheduler->Cancel(*id);
    }
    job->Start();
  }

  void Stop() {
    std::call_once(stop_once, [this] {
      if (http) http->Stop();
      {
        std::lock_guard<std::mutex> lock(prep_mu);
        prep_stopping = true;
        prep_queue.clear();
      }
      prep_cv.notify_all();
      if (prep_thread.joinable()) prep_thread.join();
      if (scheduler) scheduler->Stop();
    });
  }
};

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(std::shared_ptr<const Engine> engine,
                                                            ServeOptions options) {
  if (engine == nullptr) return absl::InvalidArgumentError("ApiServer::Start: no engine");
  auto impl = std::make_shared<Impl>();
  impl->engine = engine;
  impl->options = std::move(options);
  const ServeOptions& o = impl->options;
  impl->model_name = o.model_name;
  if (impl->model_name.empty() && !o.model_path.empty()) impl->model_name = Basename(o.model_path);
  if (impl->model_name.empty()) impl->model_name = engine->model().config().name;
  if (impl->model_name.empty()) impl->model_name = "yuan";
  impl->created = UnixNow();

  for (const auto& [name, path] : o.adapters) {
    if (name.empty() || name == impl->model_name || impl->adapters.count(name) > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "adapter name '", name, "' is empty, the model's own or given twice"));
    }
    absl::StatusOr<std::shared_ptr<const LoraBinding>> lora = LoadLora(path, engine->model());
    if (!lora.ok()) {
      return absl::Status(lora.status().code(),
                          absl::StrCat("adapter '", name, "' (", path, "): ", lora.status().message()));
    }
    impl->adapters.emplace(name, ServedAdapter{path, *lora, impl->created});
  }
  // A bad --chat-template is a start-up error, not one per request.
  YUAN_RETURN_IF_ERROR(SelectChatTemplate(*engine, o.chat).status());
  YUAN_ASSIGN_OR_RETURN(impl->scheduler, Scheduler::Start(engine, o.scheduler));
  impl->n_ctx = impl->scheduler->options().n_ctx > 0 ? impl->scheduler->options().n_ctx
                : o.scheduler.n_ctx > 0                ? o.scheduler.n_ctx
                                                       : engine->n_ctx();
  impl->prep_thread = std::thread([p = impl.get()] { p->PrepLoop(); });

  http::ServerOptions ho = o.http;
  ho.host = o.host;
  ho.port = o.port;
  Impl* self = impl.get();
  auto http = http::Server::Start(ho, [self](http::Request req, std::shared_ptr<http::Responder> r) {
    self->Handle(std::move(req), std::move(r));
  });
  if (!http.ok()) {
    impl->Stop();
    return http.status();
  }
  impl->http = std::move(*http);
  std::unique_ptr<ApiServer> server(new ApiServer());
  server->impl_ = std::move(impl);
  return server;
}

ApiServer::~ApiServer() {
  if (impl_) impl_->Stop();
}

int ApiServer::port() const { return impl_->http->port(); }
const std::string& ApiServer::model_name() const { return impl_->model_name; }
void ApiServer::Stop() { impl_->Stop(); }
Scheduler& ApiServer::scheduler() { return *impl_->scheduler; }
const Metrics& ApiServer::metrics() const { return impl_->metrics; }

}  // namespace yuan::server

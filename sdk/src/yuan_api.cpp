// The extern "C" functions of yuan.h. Each one: check handles and structs,
// call the backend, convert the status. No model logic here.
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <random>

#include "absl/strings/str_cat.h"
#include "runtime/core/log.h"
#include "runtime/grammar/grammar.h"
#include "runtime/grammar/json_schema.h"
#include "sdk/src/handles.h"

using yuan::api::BusyGuard;
using yuan::api::Fail;
using yuan::api::Ok;

namespace yuan::api {

HandleRegistry<yuan_engine>& Engines() {
  static auto* r = new HandleRegistry<yuan_engine>();
  return *r;
}
HandleRegistry<yuan_session>& Sessions() {
  static auto* r = new HandleRegistry<yuan_session>();
  return *r;
}
HandleRegistry<yuan_request>& Requests() {
  static auto* r = new HandleRegistry<yuan_request>();
  return *r;
}
HandleRegistry<yuan_adapter>& Adapters() {
  static auto* r = new HandleRegistry<yuan_adapter>();
  return *r;
}

yuan_status ReadAdapterChoices(const yuan_adapter_choice* choices, size_t n,
                               std::vector<AdapterUse>* out) {
  if (n > 0 && choices == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, "n_adapters > 0 but adapters is NULL");
  if (n > 1024) return Fail(YUAN_ERR_INVALID_ARGUMENT, "more than 1024 adapters");
  std::vector<AdapterUse> uses;
  for (size_t i = 0; i < n; ++i) {
    if (!Adapters().Contains(choices[i].adapter)) {
      return Fail(YUAN_ERR_INVALID_ARGUMENT,
                  "adapters[" + std::to_string(i) + "] is NULL or not a live adapter handle");
    }
    if (!std::isfinite(choices[i].scale)) {
      return Fail(YUAN_ERR_INVALID_ARGUMENT, "adapters[" + std::to_string(i) + "].scale is not finite");
    }
    uses.push_back({choices[i].adapter->impl, choices[i].scale});
  }
  *out = std::move(uses);
  return YUAN_OK;
}

yuan_status UseAdapters(const yuan_generate_options* options, SessionState* session) {
  std::vector<AdapterUse> call;
  if (options != nullptr && options->adapters != nullptr) {
    if (yuan_status st = ReadAdapterChoices(options->adapters, options->n_adapters, &call);
        st != YUAN_OK) {
      return st;
    }
  } else {
    call = session->adapters;
  }
  if (absl::Status st = session->impl->SetAdapters(call); !st.ok()) return Fail(st);
  return YUAN_OK;
}

yuan_status BuildRequest(const char* prompt, const yuan_generate_options* caller_options,
                         yuan_generate_options* options, GenerateRequest* r) {
  yuan_generate_options_init(options);
  if (caller_options != nullptr) {
    if (yuan_status st = ReadStruct(caller_options, kGenerateOptionsV1Size,
                                    "yuan_generate_options", options);
        st != YUAN_OK) {
      return st;
    }
  }
  const yuan_generate_options& o = *options;
  if (prompt == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, "prompt is NULL");
  if (o.max_tokens < 0) return Fail(YUAN_ERR_INVALID_ARGUMENT, "max_tokens must not be negative");
  if (o.n_stop > 0 && o.stop == nullptr) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT, "n_stop > 0 but stop is NULL");
  }
  yuan_sampling_params sp;
  yuan_sampling_params_init(&sp);
  if (o.sampling != nullptr) {
    yuan_status st = ReadStruct(o.sampling, kSamplingParamsV1Size, "yuan_sampling_params", &sp);
    if (st != YUAN_OK) return st;
  }
  if (sp.grammar != nullptr && sp.json_schema != nullptr) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT, "give a grammar or a json_schema, not both");
  }
  if (sp.grammar != nullptr || sp.json_schema != nullptr) {
    const bool schema = sp.json_schema != nullptr;
    std::string gbnf = schema ? "" : sp.grammar;
    if (schema) {
      absl::StatusOr<std::string> g = grammar::JsonSchemaToGbnf(std::string_view(sp.json_schema));
      if (!g.ok()) return Fail(YUAN_ERR_INVALID_ARGUMENT, absl::StrCat("json_schema: ", g.status().message()));
      gbnf = std::move(*g);
    }
    absl::StatusOr<std::shared_ptr<const grammar::Grammar>> g = grammar::ParseGbnf(gbnf);
    if (!g.ok()) {
      return Fail(YUAN_ERR_INVALID_ARGUMENT,
                  absl::StrCat(schema ? "json_schema (as a grammar): " : "grammar: ", g.status().message()));
    }
    r->sampling.grammar = std::move(*g);
    r->sampling.grammar_text = schema ? sp.json_schema : sp.grammar;
    r->sampling.grammar_is_json_schema = schema;
  }
  if (!(sp.temperature == sp.temperature) || !(sp.top_p == sp.top_p) || !(sp.min_p == sp.min_p) ||
      sp.repeat_penalty <= 0.0f || sp.repeat_last_n < -1) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT,
                "sampling parameters out of range (NaN, repeat_penalty <= 0 or repeat_last_n < -1)");
  }
  r->prompt = prompt;
  r->max_tokens = o.max_tokens;
  r->add_bos = (o.flags & YUAN_GENERATE_NO_BOS) == 0;
  r->ignore_eos = (o.flags & YUAN_GENERATE_IGNORE_EOS) != 0;
  r->parse_special = (o.flags & YUAN_GENERATE_PARSE_SPECIAL) != 0;
  r->sampling.temperature = sp.temperature;
  r->sampling.top_k = sp.top_k;
  r->sampling.top_p = sp.top_p;
  r->sampling.min_p = sp.min_p;
  r->sampling.repeat_penalty = sp.repeat_penalty;
  r->sampling.repeat_last_n = sp.repeat_last_n;
  r->sampling.presence_penalty = sp.presence_penalty;
  r->sampling.frequency_penalty = sp.frequency_penalty;
  r->sampling.seed = sp.seed;
  if (sp.seed == YUAN_SEED_RANDOM) r->sampling.seed = std::random_device{}() * 0x9E3779B97F4A7C15ull + std::random_device{}();
  for (size_t i = 0; i < o.n_stop; ++i) {
    if (o.stop[i] == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, "a stop string is NULL");
    if (o.stop[i][0] != '\0') r->stop.emplace_back(o.stop[i]);
  }
  return YUAN_OK;
}

void AttachCallback(const yuan_generate_options& o, GenerateRequest* req) {
  if (o.on_token == nullptr) return;
  yuan_token_fn fn = o.on_token;
  void* user = o.user_data;
  req->on_token = [fn, user](std::string_view text, int32_t token, int32_t index) {
    yuan_token_event ev;
    ev.struct_size = sizeof ev;
    ev.text = text.data();
    ev.text_len = text.size();
    ev.token = token;
    ev.index = index;
    return fn(&ev, user) == 0;
  };
}

yuan_status ExportResult(const GenerateResult& r, yuan_generate_result* out) {
  if (out == nullptr) return YUAN_OK;
  yuan_generate_result v;
  yuan_generate_result_init(&v);
  v.finish_reason = static_cast<yuan_finish_reason>(r.finish_reason);
  v.prompt_tokens = r.prompt_tokens;
  v.cached_tokens = r.cached_tokens;
  v.completion_tokens = r.completion_tokens;
  v.prompt_ms = r.prompt_ms;
  v.generation_ms = r.generation_ms;
  v.text = static_cast<char*>(std::malloc(r.text.size() + 1));
  if (v.text == nullptr) return Fail(YUAN_ERR_RESOURCE_EXHAUSTED, "out of memory");
  std::memcpy(v.text, r.text.data(), r.text.size());
  v.text[r.text.size()] = '\0';
  v.text_len = r.text.size();
  yuan_status st = WriteStruct(v, sizeof(yuan_generate_result), "yuan_generate_result", out);
  if (st != YUAN_OK) std::free(v.text);
  return st;
}

}  // namespace yuan::api

// The released v1 layouts (x86-64 / aarch64 LP64): the offset of each
// struct's last v1 field and its size. A change here breaks old binaries.
#define YUAN_PIN(type, last_field, offset, size) \
  static_assert(offsetof(type, last_field) == (offset) && sizeof(type) == (size), #type)
// yuan_engine_options: v1 ended at kv_type (32 bytes); the remote fields
// followed.
constexpr size_t kEngineOptionsV1Size = 32;
static_assert(offsetof(yuan_engine_options, kv_type) == 28, "yuan_engine_options v1");
YUAN_PIN(yuan_engine_options, max_retries, 56, 64);
YUAN_PIN(yuan_model_info, n_ctx, 84, 88);
// yuan_sampling_params: v1 ended at seed (48 bytes); the grammar followed.
static_assert(offsetof(yuan_sampling_params, seed) == 40 && yuan::api::kSamplingParamsV1Size == 48,
              "yuan_sampling_params v1");
YUAN_PIN(yuan_sampling_params, json_schema, 56, 64);
YUAN_PIN(yuan_session_options, n_ctx, 4, 8);
// yuan_generate_options: v1 ended at user_data (56 bytes); the adapters
// followed.
static_assert(offsetof(yuan_generate_options, user_data) == 48 &&
                  yuan::api::kGenerateOptionsV1Size == 56,
              "yuan_generate_options v1");
YUAN_PIN(yuan_generate_options, n_adapters, 64, 72);
static_assert(sizeof(yuan_adapter_choice) == 16, "yuan_adapter_choice's layout is frozen");
YUAN_PIN(yuan_generate_result, text_len, 48, 56);
YUAN_PIN(yuan_token_event, index, 28, 32);
YUAN_PIN(yuan_chat_options, enable_thinking, 16, 24);
static_assert(sizeof(yuan_chat_message) == 16, "yuan_chat_message's layout is frozen");
static_assert(static_cast<int>(yuan::FinishReason::kCancelled) == YUAN_FINISH_CANCELLED &&
              static_cast<int>(yuan::FinishReason::kError) == YUAN_FINISH_ERROR);

extern "C" {

const char* yuan_version(void) { return YUAN_VERSION_STRING; }
uint32_t yuan_abi_version(void) { return YUAN_ABI_VERSION; }

const char* yuan_status_string(yuan_status status) {
  switch (status) {
    case YUAN_OK: return "YUAN_OK";
    case YUAN_ERR_CANCELLED: return "YUAN_ERR_CANCELLED";
    case YUAN_ERR_UNKNOWN: return "YUAN_ERR_UNKNOWN";
    case YUAN_ERR_INVALID_ARGUMENT: return "YUAN_ERR_INVALID_ARGUMENT";
    case YUAN_ERR_DEADLINE_EXCEEDED: return "YUAN_ERR_DEADLINE_EXCEEDED";
    case YUAN_ERR_NOT_FOUND: return "YUAN_ERR_NOT_FOUND";
    case YUAN_ERR_ALREADY_EXISTS: return "YUAN_ERR_ALREADY_EXISTS";
    case YUAN_ERR_PERMISSION_DENIED: return "YUAN_ERR_PERMISSION_DENIED";
    case YUAN_ERR_RESOURCE_EXHAUSTED: return "YUAN_ERR_RESOURCE_EXHAUSTED";
    case YUAN_ERR_FAILED_PRECONDITION: return "YUAN_ERR_FAILED_PRECONDITION";
    case YUAN_ERR_ABORTED: return "YUAN_ERR_ABORTED";
    case YUAN_ERR_OUT_OF_RANGE: return "YUAN_ERR_OUT_OF_RANGE";
    case YUAN_ERR_UNIMPLEMENTED: return "YUAN_ERR_UNIMPLEMENTED";
    case YUAN_ERR_INTERNAL: return "YUAN_ERR_INTERNAL";
    case YUAN_ERR_UNAVAILABLE: return "YUAN_ERR_UNAVAILABLE";
    case YUAN_ERR_DATA_LOSS: return "YUAN_ERR_DATA_LOSS";
    case YUAN_ERR_UNAUTHENTICATED: return "YUAN_ERR_UNAUTHENTICATED";
    case YUAN_ERR_FORMAT: return "YUAN_ERR_FORMAT";
    case YUAN_ERR_BUFFER_TOO_SMALL: return "YUAN_ERR_BUFFER_TOO_SMALL";
  }
  return "YUAN_ERR_(unknown status)";
}

const char* yuan_last_error(void) { return yuan::api::LastError(); }

void yuan_free(void* ptr) { std::free(ptr); }

// ---- logging

namespace {
std::atomic<yuan_log_fn> g_log_fn{nullptr};
void LogTrampoline(yuan::LogLevel level, const char* message, void* user) {
  if (yuan_log_fn fn = g_log_fn.load()) fn(static_cast<yuan_log_level>(level), message, user);
}
}  // namespace

void yuan_set_log_callback(yuan_log_fn callback, void* user_data) {
  g_log_fn.store(callback);
  yuan::SetLogSink(callback ? &LogTrampoline : nullptr, user_data);
}

void yuan_set_log_level(yuan_log_level min_level) {
  if (min_level < YUAN_LOG_DEBUG || min_level > YUAN_LOG_ERROR) return;
  yuan::SetLogLevel(static_cast<yuan::LogLevel>(min_level));
}

// ---- engine

void yuan_engine_options_init_sized(yuan_engine_options* o, size_t size) {
  if (o == nullptr || size < kEngineOptionsV1Size) return;
  yuan_engine_options v;
  std::memset(&v, 0, sizeof v);
  v.backend = YUAN_BACKEND_AUTO;
  v.max_retries = 2;
  // Only as many bytes as the caller's struct has.
  const size_t n = size < sizeof v ? size : sizeof v;
  v.struct_size = static_cast<uint32_t>(n);
  std::memcpy(static_cast<void*>(o), &v, n);
}

// The v1 entry point: programs built against the v1 header have a 32-byte
// struct, so only that much is written.
void(yuan_engine_options_init)(yuan_engine_options* o) {
  yuan_engine_options_init_sized(o, kEngineOptionsV1Size);
}

yuan_status yuan_engine_open(const yuan_engine_options* options, yuan_engine** out_engine) {
  YUAN_API_BEGIN
  if (out_engine == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, "out_engine is NULL");
  yuan_engine_options o;
  yuan_engine_options_init(&o);
  if (yuan_status st = yuan::api::ReadStruct(options, kEngineOptionsV1Size,
                                             "yuan_engine_options", &o);
      st != YUAN_OK) {
    return st;
  }
  if (o.model == nullptr || o.model[0] == '\0') {
    return Fail(YUAN_ERR_INVALID_ARGUMENT, "yuan_engine_options.model is not set");
  }
  if (o.n_threads < 0 || o.n_ctx < 0) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT, "n_threads and n_ctx must not be negative");
  }
  if (o.kv_type != YUAN_KV_F16 && o.kv_type != YUAN_KV_F32) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT, "kv_type must be YUAN_KV_F16 or YUAN_KV_F32");
  }
  if (o.connect_timeout_ms < 0 || o.read_timeout_ms < -1 || o.max_retries < 0) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT,
                "connect_timeout_ms and max_retries must not be negative, read_timeout_ms not "
                "below -1");
  }
  yuan::api::BackendOptions bo;
  bo.model = o.model;
  bo.backend = o.backend;
  bo.n_threads = o.n_threads;
  bo.n_ctx = o.n_ctx;
  bo.kv_f32 = o.kv_type == YUAN_KV_F32;
  bo.api_key_set = o.api_key != nullptr;
  if (o.api_key != nullptr) bo.api_key = o.api_key;
  if (o.remote_model != nullptr) bo.remote_model = o.remote_model;
  bo.connect_timeout_ms = o.connect_timeout_ms;
  bo.read_timeout_ms = o.read_timeout_ms;
  bo.max_retries = o.max_retries;
  auto backend = yuan::api::OpenBackend(bo);
  if (!backend.ok()) return Fail(backend.status());
  auto* engine = new yuan_engine{std::move(*backend)};
  yuan::api::Engines().Add(engine);
  *out_engine = engine;
  return Ok();
  YUAN_API_END
}

void yuan_engine_free(yuan_engine* engine) {
  if (engine == nullptr) return;
  if (!yuan::api::Engines().Remove(engine)) {
    yuan::LogMessage(yuan::LogLevel::kError, "yuan_engine_free: not a live engine handle (double free?)");
    return;
  }
  delete engine;
}

void yuan_model_info_init(yuan_model_info* info) {
  if (info == nullptr) return;
  std::memset(info, 0, sizeof *info);
  info->struct_size = sizeof *info;
}


yuan_status yuan_engine_model_info(const yuan_engine* engine, yuan_model_info* info) {
  YUAN_API_BEGIN
  YUAN_CHECK_ENGINE(engine);
  const yuan::api::ModelFacts& f = engine->backend->Facts();
  yuan_model_info v;
  yuan_model_info_init(&v);
  v.architecture = f.architecture.c_str();
  v.name = f.name.c_str();
  v.backend = f.backend.c_str();
  v.n_vocab = f.n_vocab;
  v.n_ctx_train = f.n_ctx_train;
  v.n_embd = f.n_embd;
  v.n_layer = f.n_layer;
  v.n_head = f.n_head;
  v.n_head_kv = f.n_head_kv;
  v.n_params = f.n_params;
  v.size_bytes = f.size_bytes;
  v.bos_token = f.bos;
  v.eos_token = f.eos;
  v.n_threads = f.n_threads;
  v.n_ctx = f.n_ctx;
  if (yuan_status st = yuan::api::WriteStruct(v, sizeof(yuan_model_info), "yuan_model_info", info);
      st != YUAN_OK) {
    return st;
  }
  return Ok();
  YUAN_API_END
}

yuan_status yuan_engine_metadata(const yuan_engine* engine, const char* key, char* buffer,
                                 size_t capacity, size_t* needed) {
  YUAN_API_BEGIN
  YUAN_CHECK_ENGINE(engine);
  if (key == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, "key is NULL");
  auto v = engine->backend->Metadata(key);
  if (!v.ok()) return Fail(v.status());
  return yuan::api::CopyText(*v, buffer, capacity, needed);
  YUAN_API_END
}

// ---- tokens

yuan_status yuan_tokenize(const yuan_engine* engine, const char* text, size_t text_len,
                          uint32_t flags, yuan_token* tokens, size_t capacity, size_t* n_tokens) {
  YUAN_API_BEGIN
  YUAN_CHECK_ENGINE(engine);
  if (text == nullptr && text_len > 0) return Fail(YUAN_ERR_INVALID_ARGUMENT, "text is NULL");
  if (n_tokens == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, "n_tokens is NULL");
  auto ids = engine->backend->Tokenize(std::string_view(text ? text : "", text_len),
                                       flags & YUAN_TOKENIZE_ADD_BOS,
                                       flags & YUAN_TOKENIZE_PARSE_SPECIAL);
  if (!ids.ok()) return Fail(ids.status());
  *n_tokens = ids->size();
  if (tokens == nullptr || capacity < ids->size()) {
    if (ids->empty()) return Ok();
    return Fail(YUAN_ERR_BUFFER_TOO_SMALL, "token buffer of " + std::to_string(capacity) +
                                               " cannot hold " + std::to_string(ids->size()));
  }
  std::copy(ids->begin(), ids->end(), tokens);
  return Ok();
  YUAN_API_END
}

yuan_status yuan_detokenize(const yuan_engine* engine, const yuan_token* tokens, size_t n_tokens,
                            uint32_t flags, char* buffer, size_t capacity, size_t* needed) {
  YUAN_API_BEGIN
  YUAN_CHECK_ENGINE(engine);
  if (tokens == nullptr && n_tokens > 0) return Fail(YUAN_ERR_INVALID_ARGUMENT, "tokens is NULL");
  std::vector<int32_t> ids(tokens, tokens + n_tokens);
  auto text = engine->backend->Detokenize(ids, flags & YUAN_DETOKENIZE_RENDER_SPECIAL);
  if (!text.ok()) return Fail(text.status());
  return yuan::api::CopyText(*text, buffer, capacity, needed);
  YUAN_API_END
}

// ---- sampling / options

void yuan_sampling_params_init_sized(yuan_sampling_params* p, size_t size) {
  if (p == nullptr || size < yuan::api::kSamplingParamsV1Size) return;
  yuan_sampling_params v;
  std::memset(&v, 0, sizeof v);
  yuan::SamplingParams d;
  v.temperature = d.temperature;
  v.top_k = d.top_k;
  v.top_p = d.top_p;
  v.min_p = d.min_p;
  v.repeat_penalty = d.repeat_penalty;
  v.repeat_last_n = d.repeat_last_n;
  v.presence_penalty = d.presence_penalty;
  v.frequency_penalty = d.frequency_penalty;
  v.seed = YUAN_SEED_RANDOM;
  const size_t n = size < sizeof v ? size : sizeof v;
  v.struct_size = static_cast<uint32_t>(n);
  std::memcpy(static_cast<void*>(p), &v, n);
}

// The v1 entry point writes only the v1 fields (see yuan_engine_options_init).
void(yuan_sampling_params_init)(yuan_sampling_params* p) {
  yuan_sampling_params_init_sized(p, yuan::api::kSamplingParamsV1Size);
}

void yuan_session_options_init(yuan_session_options* o) {
  if (o == nullptr) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
}

void yuan_generate_options_init_sized(yuan_generate_options* o, size_t size) {
  if (o == nullptr || size < yuan::api::kGenerateOptionsV1Size) return;
  yuan_generate_options v;
  std::memset(&v, 0, sizeof v);
  v.max_tokens = 256;
  const size_t n = size < sizeof v ? size : sizeof v;
  v.struct_size = static_cast<uint32_t>(n);
  std::memcpy(static_cast<void*>(o), &v, n);
}

// The v1 entry point writes only the v1 fields (see yuan_engine_options_init).
void(yuan_generate_options_init)(yuan_generate_options* o) {
  yuan_generate_options_init_sized(o, yuan::api::kGenerateOptionsV1Size);
}

void yuan_generate_result_init(yuan_generate_result* r) {
  if (r == nullptr) return;
  std::memset(r, 0, sizeof *r);
  r->struct_size = sizeof *r;
}

// ---- sessions

yuan_status yuan_session_open(yuan_engine* engine, const yuan_session_options* options,
                              yuan_session** out_session) {
  YUAN_API_BEGIN
  YUAN_CHECK_ENGINE(engine);
  if (out_session == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, "out_session is NULL");
  yuan_session_options o;
  yuan_session_options_init(&o);
  if (options != nullptr) {
    if (yuan_status st = yuan::api::ReadStruct(options, sizeof(yuan_session_options),
                                               "yuan_session_options", &o);
        st != YUAN_OK) {
      return st;
    }
  }
  if (o.n_ctx < 0) return Fail(YUAN_ERR_INVALID_ARGUMENT, "n_ctx must not be negative");
  auto impl = engine->backend->OpenSession(o.n_ctx);
  if (!impl.ok()) return Fail(impl.status());
  auto state = std::make_shared<SessionState>();
  state->impl = std::move(*impl);
  state->n_vocab = engine->backend->Facts().n_vocab;
  auto* session = new yuan_session{std::move(state)};
  yuan::api::Sessions().Add(session);
  *out_session = session;
  return Ok();
  YUAN_API_END
}

void yuan_session_free(yuan_session* session) {
  if (session == nullptr) return;
  if (!yuan::api::Sessions().Remove(session)) {
    yuan::LogMessage(yuan::LogLevel::kError, "yuan_session_free: not a live session handle (double free?)");
    return;
  }
  // A running request keeps the session state alive and finishes on its
  // own thread; stop it promptly.
  session->state->closed.store(true);
  session->state->impl->Cancel();
  delete session;
}

yuan_status yuan_session_reset(yuan_session* session) {
  YUAN_API_BEGIN
  YUAN_CHECK_SESSION(session);
  BusyGuard guard(session->state.get());
  if (!guard.acquired()) return Fail(YUAN_ERR_FAILED_PRECONDITION, yuan::api::kSessionBusy);
  session->state->impl->Reset();
  return Ok();
  YUAN_API_END
}

yuan_status yuan_session_n_past(const yuan_session* session, int32_t* n_past) {
  YUAN_API_BEGIN
  YUAN_CHECK_SESSION(session);
  if (n_past == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, "n_past is NULL");
  BusyGuard guard(session->state.get());
  if (!guard.acquired()) return Fail(YUAN_ERR_FAILED_PRECONDITION, yuan::api::kSessionBusy);
  *n_past = session->state->impl->NPast();
  return Ok();
  YUAN_API_END
}

yuan_status yuan_session_decode(yuan_session* session, const yuan_token* tokens, size_t n_tokens) {
  YUAN_API_BEGIN
  YUAN_CHECK_SESSION(session);
  if (tokens == nullptr || n_tokens == 0) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT, "tokens is NULL or n_tokens is 0");
  }
  BusyGuard guard(session->state.get());
  if (!guard.acquired()) return Fail(YUAN_ERR_FAILED_PRECONDITION, yuan::api::kSessionBusy);
  if (yuan_status s1 = yuan::api::UseAdapters(nullptr, session->state.get()); s1 != YUAN_OK) return s1;
  absl::Status st = session->state->impl->Decode(std::vector<int32_t>(tokens, tokens + n_tokens));
  if (!st.ok()) return Fail(st);
  return Ok();
  YUAN_API_END
}

yuan_status yuan_session_logits(yuan_session* session, const float** logits, int32_t* n_vocab) {
  YUAN_API_BEGIN
  YUAN_CHECK_SESSION(session);
  if (logits == nullptr || n_vocab == nullptr) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT, "logits or n_vocab is NULL");
  }
  BusyGuard guard(session->state.get());
  if (!guard.acquired()) return Fail(YUAN_ERR_FAILED_PRECONDITION, yuan::api::kSessionBusy);
  const std::vector<float>& l = session->state->impl->Logits();
  if (l.empty()) return Fail(YUAN_ERR_FAILED_PRECONDITION, "nothing has been evaluated yet");
  *logits = l.data();
  *n_vocab = session->state->n_vocab;
  return Ok();
  YUAN_API_END
}

yuan_status yuan_session_generate(yuan_session* session, const char* prompt,
                                  const yuan_generate_options* options,
                                  yuan_generate_result* result) {
  YUAN_API_BEGIN
  YUAN_CHECK_SESSION(session);
  if (result != nullptr && (result->struct_size < sizeof(yuan_generate_result) ||
                            result->struct_size > yuan::api::kMaxStructSize)) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT,
                "yuan_generate_result.struct_size is wrong (call yuan_generate_result_init first)");
  }
  yuan_generate_options o;
  yuan::GenerateRequest req;
  if (yuan_status st = yuan::api::BuildRequest(prompt, options, &o, &req); st != YUAN_OK) return st;
  yuan::api::AttachCallback(o, &req);
  BusyGuard guard(session->state.get());
  if (!guard.acquired()) return Fail(YUAN_ERR_FAILED_PRECONDITION, yuan::api::kSessionBusy);
  if (yuan_status s1 = yuan::api::UseAdapters(&o, session->state.get()); s1 != YUAN_OK) return s1;
  yuan::GenerateResult r;
  absl::Status st = session->state->impl->Generate(req, &r);
  if (!st.ok()) return Fail(st);
  if (yuan_status s2 = yuan::api::ExportResult(r, result); s2 != YUAN_OK) return s2;
  return Ok();
  YUAN_API_END
}

yuan_status yuan_session_cancel(yuan_session* session) {
  YUAN_API_BEGIN
  YUAN_CHECK_SESSION(session);
  session->state->impl->Cancel();
  return Ok();
  YUAN_API_END
}

}  // extern "C"

#include "runtime/remote/openai_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "runtime/core/log.h"
#include "runtime/core/status.h"
#include "runtime/remote/sse.h"

namespace yuan::remote {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

constexpr size_t kMaxErrorBody = 1u << 20;   // an error page is read this far
constexpr size_t kMaxWholeBody = 64u << 20;  // a non-streamed response at most
constexpr int kPollMs = 50;                  // cancel / read-timeout check interval

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// A float as JSON without float->double noise (0.8f, not 0.800000011920929).
Json Num(float f) {
  double d = 0;
  if (!absl::SimpleAtod(absl::StrFormat("%.7g", f), &d)) d = f;
  return d;
}

// Sleeps up to `ms`, waking early when *cancel is set. False when cancelled.
bool SleepUnlessCancelled(long long ms, const std::atomic<bool>* cancel) {
  const auto end = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < end) {
    if (cancel != nullptr && cancel->load()) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(kPollMs),
                                                           end - Clock::now()));
  }
  return cancel == nullptr || !cancel->load();
}

// The body of a 2xx response, either as server-sent events or whole.
class ResponseSink {
 public:
  // raw: the body is only collected (whole()), never parsed as a completion.
  ResponseSink(const GenerateRequest* request, GenerateResult* result, bool want_stream,
               bool raw = false)
      : request_(request), result_(result), want_stream_(want_stream), raw_(raw) {}

  // Bytes of a 2xx body; false stops the transfer.
  bool OnBytes(std::string_view bytes, std::string_view content_type) {
    Decide(content_type);
    if (!sse_) {
      if (whole_.size() + bytes.size() > kMaxWholeBody) {
        error_ = absl::DataLossError(
            absl::StrCat("the server's response is larger than ", kMaxWholeBody, " bytes"));
        return false;
      }
      whole_.append(bytes);
      return true;
    }
    events_.clear();
    if (absl::Status st = parser_.Feed(bytes, &events_); !st.ok()) {
      error_ = st;
      return false;
    }
    for (const SseEvent& ev : events_) {
      if (done_) break;
      any_event_ = true;
      if (absl::StripAsciiWhitespace(ev.data) == "[DONE]") {
        done_ = true;
        break;
      }
      auto chunk = ParseCompletionChunk(ev.data);
      if (!chunk.ok()) {
        error_ = chunk.status();
        return false;
      }
      if (!Deliver(*chunk)) return false;
    }
    // Nothing after [DONE] matters: stop reading instead of waiting for the
    // server to close the stream.
    return !done_;
  }

  // Event stream or whole body, from the response's Content-Type (once; an
  // empty body is decided after the transfer).
  void Decide(std::string_view content_type) {
    if (decided_) return;
    decided_ = true;
    sse_ = !raw_ && (absl::StartsWithIgnoreCase(
                         absl::string_view(content_type.data(), content_type.size()),
                         "text/event-stream") ||
                     (content_type.empty() && want_stream_));
  }

  // After a transfer that ended without error: a whole (non-event-stream)
  // body is parsed and delivered now.
  absl::Status FinishWhole() {
    if (raw_ || (sse_ && decided_)) return absl::OkStatus();
    auto chunk = ParseCompletionChunk(whole_);
    if (!chunk.ok()) return chunk.status();
    if (!chunk->has_choice) {
      return absl::DataLossError("the server's response has no choices");
    }
    Deliver(*chunk);
    if (finish_.empty()) finish_ = "stop";
    return absl::OkStatus();
  }

  // Also for non-2xx: an error body (capped).
  void OnErrorBytes(std::string_view bytes) {
    if (error_body_.size() < kMaxErrorBody) {
      error_body_.append(bytes.substr(0, kMaxErrorBody - error_body_.size()));
    }
  }

  bool sse() const { return sse_ && decided_; }
  const std::string& whole() const { return whole_; }
  bool done() const { return done_; }
  bool finished() const { return done_ || !finish_.empty(); }
  bool delivered() const { return delivered_; }
  bool any_event() const { return any_event_; }
  bool stopped_by_caller() const { return stopped_by_caller_; }
  const absl::Status& error() const { return error_; }
  const std::string& error_body() const { return error_body_; }
  const std::string& finish() const { return finish_; }
  int32_t n_tokens() const { return index_; }

  bool has_usage = false;
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  Clock::time_point first_token, last_token;

 private:
  bool Deliver(const CompletionChunk& c) {
    if (c.has_usage) {
      has_usage = true;
      prompt_tokens = c.prompt_tokens;
      completion_tokens = c.completion_tokens;
      cached_tokens = c.cached_tokens;
    }
    if (!c.has_choice) return true;
    if (!c.text.empty() || !c.token_ids.empty()) {
      const auto now = Clock::now();
      if (!delivered_) first_token = now;
      last_token = now;
      delivered_ = true;
      result_->text += c.text;
      // With ids, each id is one event; the chunk's text comes with its
      // last id (the text is complete once that token exists).
      const size_t n = std::max<size_t>(1, c.token_ids.size());
      for (size_t k = 0; k < n; ++k) {
        const bool last = k + 1 == n;
        int32_t id = -1;
        if (!c.token_ids.empty()) {
          id = c.token_ids[k];
          result_->tokens.push_back(id);
        }
        const int32_t index = index_++;
        if (request_->on_token && !request_->on_token(last ? c.text : std::string_view(), id, index)) {
          stopped_by_caller_ = true;
          return false;
        }
      }
    }
    if (!c.finish_reason.empty()) finish_ = c.finish_reason;
    return true;
  }

  const GenerateRequest* request_;
  GenerateResult* result_;
  bool want_stream_;
  bool raw_;
  bool decided_ = false, sse_ = false;
  SseParser parser_;
  std::vector<SseEvent> events_;
  std::string whole_, error_body_;
  absl::Status error_;
  std::string finish_;
  bool done_ = false, delivered_ = false, any_event_ = false, stopped_by_caller_ = false;
  int32_t index_ = 0;
};

// One HTTP exchange's state, shared with the curl callbacks.
struct Exchange {
  ResponseSink* sink = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  long http_status = 0;
  std::string content_type;
  long long retry_after_ms = -1;
  Clock::time_point last_activity;
  bool cancelled = false;  // the write callback saw *cancel
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t bytes = size * n;
  ex->last_activity = Clock::now();
  absl::string_view line(data, bytes);
  line = absl::StripTrailingAsciiWhitespace(line);
  if (absl::StartsWith(line, "HTTP/")) {
    // A new status line (an interim 1xx may come first): start over.
    const size_t sp = line.find(' ');
    int code = 0;
    if (sp != absl::string_view::npos && absl::SimpleAtoi(line.substr(sp + 1, 3), &code)) {
      ex->http_status = code;
    }
    ex->content_type.clear();
    ex->retry_after_ms = -1;
    return bytes;
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return bytes;
  const absl::string_view name = line.substr(0, colon);
  const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  if (absl::EqualsIgnoreCase(name, "content-type")) {
    ex->content_type = std::string(value);
  } else if (absl::EqualsIgnoreCase(name, "retry-after")) {
    long long seconds = 0;
    if (absl::SimpleAtoi(value, &seconds) && seconds >= 0) {
      ex->retry_after_ms = std::min<long long>(seconds, 1000000) * 1000;
    } else {
      const std::string v(value);
      const time_t when = curl_getdate(v.c_str(), nullptr);
      if (when != -1) {
        const long long delta = static_cast<long long>(when) - static_cast<long long>(time(nullptr));
        ex->retry_after_ms = std::clamp<long long>(delta, 0, 1000000) * 1000;
      }
    }
  }
  return bytes;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t bytes = size * n;
  const size_t abort = bytes == 0 ? 1 : 0;  // any other count makes curl stop
  ex->last_activity = Clock::now();
  if (ex->cancel != nullptr && ex->cancel->load()) {
    ex->cancelled = true;
    return abort;
  }
  const std::string_view chunk(data, bytes);
  if (ex->http_status < 200 || ex->http_status >= 300) {
    ex->sink->OnErrorBytes(chunk);
    return bytes;
  }
  return ex->sink->OnBytes(chunk, ex->content_type) ? bytes : abort;
}

enum class End { kCurl, kCancelled, kReadTimeout };

struct Transfer {
  End end = End::kCurl;
  CURLcode code = CURLE_OK;
  std::string curl_error;
};

// Drives one easy handle through a private multi handle, waking every
// kPollMs to honour cancellation and the read timeout even while the server
// sends nothing (curl's own progress callback can be a second apart then).
Transfer Run(CURL* easy, Exchange* ex, int read_timeout_ms) {
  Transfer t;
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) {
    t.code = CURLE_OUT_OF_MEMORY;
    return t;
  }
  curl_multi_add_handle(multi, easy);
  ex->last_activity = Clock::now();
  bool request_sent = false;
  for (;;) {
    int running = 0;
    if (curl_multi_perform(multi, &running) != CURLM_OK) {
      t.code = CURLE_FAILED_INIT;
      break;
    }
    if (running == 0) {
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
        if (m->msg == CURLMSG_DONE) t.code = m->data.result;
      }
      break;
    }
    if (ex->cancelled || (ex->cancel != nullptr && ex->cancel->load())) {
      t.end = End::kCancelled;
      break;
    }
    if (read_timeout_ms > 0) {
      const auto now = Clock::now();
      if (!request_sent) {
        // The silence clock starts once the connection is up (the connect
        // timeout covers the time before).
        curl_off_t pre = 0;
        if (curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pre) == CURLE_OK && pre > 0) {
          request_sent = true;
          ex->last_activity = std::max(ex->last_activity, now);
        }
      } else if (now - ex->last_activity > std::chrono::milliseconds(read_timeout_ms)) {
        t.end = End::kReadTimeout;
        break;
      }
    }
    curl_multi_poll(multi, nullptr, 0, kPollMs, nullptr);
  }
  if (ex->cancelled) t.end = End::kCancelled;
  curl_multi_remove_handle(multi, easy);
  curl_multi_cleanup(multi);
  return t;
}

bool RetriableCurlCode(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return true;
    default:
      return false;
  }
}

bool RetriableHttp(long status) {
  return status == 429 || (status >= 500 && status <= 599 && status != 501 && status != 505);
}

// The outcome of one attempt.
struct Attempt {
  absl::Status status;
  bool retriable = false;
  long long retry_after_ms = -1;
  bool cancelled = false;
};

class Request {
 public:
  Request(const ClientOptions& o, std::string method, std::string url, std::string body)
      : o_(o), method_(std::move(method)), url_(std::move(url)), body_(std::move(body)) {}

  // One attempt: sends the request, feeds the response to *sink.
  Attempt Perform(ResponseSink* sink, const std::atomic<bool>* cancel) {
    GlobalInit();
    Attempt a;
    CURL* easy = curl_easy_init();
    if (easy == nullptr) {
      a.status = absl::ResourceExhaustedError("curl_easy_init failed");
      return a;
    }
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, body_.empty() ? "Accept: application/json"
                                                       : "Accept: text/event-stream, application/json");
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
    if (!o_.api_key.empty()) {
      headers = curl_slist_append(headers, ("Authorization: Bearer " + o_.api_key).c_str());
    }
    Exchange ex;
    ex.sink = sink;
    ex.cancel = cancel;
    curl_easy_setopt(easy, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "yuan/" YUAN_REMOTE_VERSION);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::max(1, o_.connect_timeout_ms)));
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, o_.verify_tls ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, o_.verify_tls ? 2L : 0L);
    // Proxies: left to libcurl's reading of http_proxy / https_proxy /
    // no_proxy (no CURLOPT_PROXY or CURLOPT_NOPROXY here on purpose).
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &ex);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &ex);
    if (method_ == "POST") {
      curl_easy_setopt(easy, CURLOPT_POST, 1L);
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body_.data());
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_.size()));
    } else {
      curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    }

    const Transfer t = Run(easy, &ex, o_.read_timeout_ms);
    if (ex.http_status >= 200 && ex.http_status < 300) sink->Decide(ex.content_type);
    curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
    const std::string curl_message =
        errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(t.code));
    const std::string what = absl::StrCat(method_, " ", url_);

    if (t.end == End::kCancelled || sink->stopped_by_caller()) {
      a.cancelled = true;
      return a;
    }
    if (!sink->error().ok()) {
      a.status = sink->error();
      return a;
    }
    const bool http_error = ex.http_status >= 300;
    if (http_error && (t.end == End::kCurl)) {
      a.status = StatusFromHttpError(ex.http_status, sink->error_body(), what);
      a.retriable = RetriableHttp(ex.http_status);
      a.retry_after_ms = ex.retry_after_ms;
      return a;
    }
    // A stream that reached its end is a success whatever happened to the
    // connection afterwards (we stop reading at [DONE]).
    if (!http_error && sink->sse() && sink->finished()) return a;
    if (t.end == End::kReadTimeout) {
      a.status = absl::DeadlineExceededError(absl::StrCat(
          what, ": no data from the server for ", o_.read_timeout_ms, " ms (read timeout)",
          sink->delivered() ? absl::StrCat(", after ", sink->n_tokens(), " tokens") : ""));
      return a;
    }
    if (t.code != CURLE_OK) {
      a.retriable = RetriableCurlCode(t.code);
      if (sink->any_event() || sink->delivered()) {
        a.status = absl::UnavailableError(absl::StrCat(
            what, ": connection lost mid-stream after ", sink->n_tokens(), " tokens (",
            curl_message, ")"));
      } else if (t.code == CURLE_OPERATION_TIMEDOUT) {
        a.status = absl::DeadlineExceededError(absl::StrCat(
            what, ": could not connect within ", o_.connect_timeout_ms, " ms (", curl_message, ")"));
      } else if (t.code == CURLE_URL_MALFORMAT || t.code == CURLE_UNSUPPORTED_PROTOCOL) {
        a.status = absl::InvalidArgumentError(absl::StrCat(what, ": ", curl_message));
      } else if (t.code == CURLE_PARTIAL_FILE || t.code == CURLE_RECV_ERROR ||
                 t.code == CURLE_GOT_NOTHING) {
        a.status = absl::UnavailableError(
            absl::StrCat(what, ": connection lost before a response (", curl_message, ")"));
      } else {
        a.status = absl::UnavailableError(
            absl::StrCat(what, ": cannot reach the server (", curl_message, ")"));
      }
      return a;
    }
    if (ex.http_status < 200) {
      a.status = absl::UnavailableError(absl::StrCat(what, ": no HTTP response"));
      return a;
    }
    if (sink->sse()) {
      // The stream ended cleanly but before any finish_reason: the server
      // went away mid-generation.
      a.retriable = true;
      a.status = absl::UnavailableError(absl::StrCat(
          what, ": connection lost: the event stream ended after ", sink->n_tokens(),
          " tokens without a finish_reason or [DONE]"));
      return a;
    }
    a.status = sink->FinishWhole();
    return a;
  }

 private:
  const ClientOptions& o_;
  std::string method_, url_, body_;
};

long long BackoffMs(const ClientOptions& o, int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  long long base = std::max(1, o.retry_base_ms);
  for (int i = 0; i < attempt && base < o.retry_max_ms; ++i) base *= 2;
  base = std::min<long long>(base, std::max(1, o.retry_max_ms));
  // "Equal jitter": half fixed, half random.
  std::uniform_int_distribution<long long> jitter(0, base / 2);
  return base / 2 + jitter(rng);
}

// Runs `perform` with the retry policy: retry while the attempt says it may
// (nothing reached the caller) and attempts remain; Retry-After is honoured
// when at most max_retry_after_ms.
template <typename PerformFn, typename DeliveredFn>
Attempt WithRetries(const ClientOptions& o,
                    const std::atomic<bool>* cancel, CallStats* stats, PerformFn perform,
                    DeliveredFn delivered) {
  for (int attempt = 0;; ++attempt) {
    if (stats != nullptr) ++stats->attempts;
    Attempt a = perform();
    if (a.cancelled || a.status.ok() || !a.retriable || delivered() || attempt >= o.max_retries) {
      if (!a.status.ok() && a.retriable && attempt > 0) {
        a.status = absl::Status(a.status.code(), absl::StrCat(a.status.message(), " (after ",
                                                              attempt + 1, " attempts)"));
      }
      return a;
    }
    long long delay = BackoffMs(o, attempt);
    if (a.retry_after_ms >= 0) {
      if (a.retry_after_ms > o.max_retry_after_ms) {
        a.status = absl::Status(a.status.code(),
                                absl::StrCat(a.status.message(), " (the server asks to retry after ",
                                             a.retry_after_ms / 1000, " s)"));
        return a;
      }
      delay = a.retry_after_ms;
    }
    Logf(LogLevel::kWarn, "%s; retry %d of %d in %lld ms", std::string(a.status.message()),
         attempt + 1, o.max_retries, delay);
    if (!SleepUnlessCancelled(delay, cancel)) {
      Attempt c;
      c.cancelled = true;
      return c;
    }
  }
}

}  // namespace

FinishReason FinishReasonFromString(std::string_view reason) {
  if (reason == "length") return FinishReason::kLength;
  if (reason == "abort" || reason == "cancelled") return FinishReason::kCancelled;
  return FinishReason::kStop;  // "stop", "eos", "content_filter", "tool_calls", ...
}

OpenAiClient::OpenAiClient(ClientOptions options) : options_(std::move(options)) {
  while (!options_.base_url.empty() && options_.base_url.back() == '/') options_.base_url.pop_back();
}

std::string OpenAiClient::RequestBody(const CompletionCall& call) const {
  const GenerateRequest& r = call.request;
  const SamplingParams& s = r.sampling;
  const bool openai = options_.kind == ServerKind::kOpenAi;
  // Ordered: a JSON Schema's properties keep their order (the output's).
  nlohmann::ordered_json b = nlohmann::ordered_json::object();
  b["model"] = call.model;
  if (call.chat) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    for (const ChatMessage& m : call.messages) {
      messages.push_back({{"role", m.role}, {"content", m.content}});
    }
    b["messages"] = std::move(messages);
    // OpenAI deprecated max_tokens for chat (and some of its models refuse it).
    b[openai ? "max_completion_tokens" : "max_tokens"] = r.max_tokens;
  } else {
    b["prompt"] = r.prompt;
    b["max_tokens"] = r.max_tokens;
  }
  b["temperature"] = s.temperature <= 0 ? Json(0) : Num(s.temperature);
  if (s.top_p < 1.0f) b["top_p"] = Num(s.top_p);
  // OpenAI-compatible servers take a signed 64-bit seed.
  b["seed"] = static_cast<int64_t>(s.seed & 0x7FFFFFFFFFFFFFFFull);
  if (s.presence_penalty != 0) b["presence_penalty"] = Num(s.presence_penalty);
  if (s.frequency_penalty != 0) b["frequency_penalty"] = Num(s.frequency_penalty);
  if (!s.logit_bias.empty()) {
    nlohmann::ordered_json bias = nlohmann::ordered_json::object();
    for (const auto& [id, v] : s.logit_bias) bias[std::to_string(id)] = Num(v);
    b["logit_bias"] = std::move(bias);
  }
  if (!r.stop.empty()) b["stop"] = r.stop;
  // Structured output: a schema as OpenAI's response_format (every server
  // kind takes it), a GBNF grammar as llama.cpp's / yuan's `grammar` or
  // vLLM's `guided_grammar`.
  if (!s.grammar_text.empty() && s.grammar_is_json_schema) {
    nlohmann::ordered_json schema = nlohmann::ordered_json::parse(s.grammar_text, nullptr, false);
    if (!schema.is_discarded()) {
      b["response_format"] = {{"type", "json_schema"},
                              {"json_schema", {{"name", "output"}, {"schema", std::move(schema)}}}};
    }
  } else if (!s.grammar_text.empty() && !openai) {
    b[options_.kind == ServerKind::kVllm ? "guided_grammar" : "grammar"] = s.grammar_text;
  }
  // Extensions (vLLM, llama.cpp server, yuan serve); only set ones are sent,
  // and none to OpenAI itself, which rejects unknown fields.
  if (!openai) {
    if (s.top_k > 0) b["top_k"] = s.top_k;
    if (s.min_p > 0) b["min_p"] = Num(s.min_p);
    if (s.repeat_penalty != 1.0f) {
      if (options_.kind == ServerKind::kLlamaCpp) {
        b["repeat_penalty"] = Num(s.repeat_penalty);
        b["repeat_last_n"] = s.repeat_last_n;
      } else {
        b["repetition_penalty"] = Num(s.repeat_penalty);
      }
    }
    if (r.ignore_eos) b["ignore_eos"] = true;
    if (call.chat && call.enable_thinking >= 0) {
      b["chat_template_kwargs"] = {{"enable_thinking", call.enable_thinking != 0}};
    }
    if (options_.return_token_ids) b["return_token_ids"] = true;
  }
  if (call.stream) {
    b["stream"] = true;
    b["stream_options"] = {{"include_usage", true}};
  }
  return b.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

absl::StatusOr<std::vector<RemoteModel>> OpenAiClient::ListModels(const std::atomic<bool>* cancel,
                                                                  CallStats* stats) const {
  const std::string url = options_.base_url + "/models";
  std::unique_ptr<ResponseSink> sink;
  const Attempt a = WithRetries(
      options_, cancel, stats,
      [&] {
        sink = std::make_unique<ResponseSink>(nullptr, nullptr, /*want_stream=*/false,
                                              /*raw=*/true);
        Request req(options_, "GET", url, "");
        return req.Perform(sink.get(), cancel);
      },
      [] { return false; });
  if (a.cancelled) return absl::CancelledError(absl::StrCat("GET ", url, ": cancelled"));
  if (!a.status.ok()) return a.status;
  return ParseModelList(sink->whole());
}

absl::Status OpenAiClient::Complete(const CompletionCall& call, const std::atomic<bool>* cancel,
                                    GenerateResult* result, CallStats* stats) const {
  *result = GenerateResult();
  if (call.request.max_tokens == 0) {
    result->finish_reason = FinishReason::kLength;
    return absl::OkStatus();
  }
  const std::string url = options_.base_url + (call.chat ? "/chat/completions" : "/completions");
  const std::string body = RequestBody(call);
  const auto start = Clock::now();
  std::unique_ptr<ResponseSink> sink;
  Attempt a = WithRetries(
      options_, cancel, stats,
      [&] {
        // Nothing reached the caller before a retry, so each attempt starts clean.
        *result = GenerateResult();
        sink = std::make_unique<ResponseSink>(&call.request, result, call.stream);
        Request req(options_, "POST", url, body);
        return req.Perform(sink.get(), cancel);
      },
      [&] { return sink != nullptr && sink->delivered(); });
  if (!a.cancelled && !a.status.ok()) return a.status;
  const auto end = Clock::now();
  if (a.cancelled) {
    result->finish_reason = FinishReason::kCancelled;
  } else {
    result->finish_reason = FinishReasonFromString(sink->finish());
  }
  if (sink != nullptr) {
    const int32_t counted = result->tokens.empty() ? sink->n_tokens()
                                                   : static_cast<int32_t>(result->tokens.size());
    result->completion_tokens =
        sink->has_usage && !a.cancelled ? static_cast<int32_t>(sink->completion_tokens) : counted;
    result->prompt_tokens = static_cast<int32_t>(sink->prompt_tokens);
    result->cached_tokens = static_cast<int32_t>(sink->cached_tokens);
    if (sink->delivered()) {
      result->prompt_ms = Ms(sink->first_token - start);
      result->generation_ms = Ms(sink->last_token - sink->first_token);
    } else {
      result->prompt_ms = Ms(end - start);
    }
  }
  return absl::OkStatus();
}

}  // namespace yuan::remote

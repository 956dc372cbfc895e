#include "runtime/engine/scheduler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "runtime/core/status.h"
#include "runtime/engine/forward.h"
#include "runtime/engine/kv_cache.h"
#include "runtime/engine/text_stream.h"

namespace yuan {
namespace {

using Clock = std::chrono::steady_clock;

double MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// One request from admission to its end.
struct Seq {
  uint64_t id = 0;
  BatchRequest req;
  std::vector<int32_t> tokens;  // prompt, then each sampled token
  int64_t n_prompt = 0;
  int64_t n_eval = 0;           // tokens[0, n_eval) are in the cache
  int64_t limit = 0;            // positions reserved: the context may not grow past it
  std::vector<int32_t> pages;   // page table (all reserved pages, allocated at admission)
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<TextStream> stream;
  std::vector<int32_t> generated;
  bool cancelled = false;
  absl::Status error;           // why it ended with kError
  Clock::time_point submitted, admitted, first_token;
  bool has_first_token = false;
};

// log(sum(exp(x))) over a row, stable.
float LogSumExp(const float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i] - m));
  return m + static_cast<float>(std::log(s));
}

}  // namespace

struct Scheduler::Impl {
  std::shared_ptr<const Engine> engine;
  Options options;
  KvCache cache;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Seq>> queue;      // guarded by mu
  absl::flat_hash_set<uint64_t> cancel_ids;    // guarded by mu
  std::vector<int32_t> free_pages;             // guarded by mu
  int running_count = 0;                       // guarded by mu (for stats)
  bool stopping = false;                       // guarded by mu
  uint64_t next_id = 1;                        // guarded by mu
  Stats counters;                              // guarded by mu (prompt/generated/steps)

  std::vector<std::unique_ptr<Seq>> running;   // scheduler thread only
  ForwardScratch scratch;                      // scheduler thread only
  std::vector<float> logits;
  std::thread thread;

  explicit Impl(KvCache c) : cache(std::move(c)) {}
  void Loop();
  void Step();
  // Samples the next token of `seq` from its logits row and streams its
  // text: kNone while it goes on, else why it ended.
  FinishReason SampleNext(Seq* seq, float* row);
  void Finish(std::unique_ptr<Seq> seq, FinishReason reason, absl::Status status = {});
};

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Start(std::shared_ptr<const Engine> engine,
                                                            const Options& options) {
  if (engine == nullptr) return absl::InvalidArgumentError("no engine");
  Options o = options;
  if (o.n_ctx <= 0) o.n_ctx = engine->n_ctx();
  if (o.max_sequences <= 0) return absl::InvalidArgumentError("max_sequences must be positive");
  if (o.max_queue < 0) return absl::InvalidArgumentError("max_queue must not be negative");
  if (o.max_batch_tokens <= 0) o.max_batch_tokens = 512;
  if (o.max_batch_tokens < o.max_sequences) o.max_batch_tokens = o.max_sequences;
  if (o.kv_tokens <= 0) o.kv_tokens = std::max<int64_t>(o.n_ctx, int64_t{o.n_ctx} * o.max_sequences / 2);
  if (o.kv_tokens < o.n_ctx) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the KV cache (%d positions) is smaller than one context (%d)", o.kv_tokens, o.n_ctx));
  }
  const int64_t n_pages = (o.kv_tokens + kKvPageSize - 1) / kKvPageSize;
  if (n_pages > (int64_t{1} << 30)) return absl::InvalidArgumentError("the KV cache is too large");
  YUAN_ASSIGN_OR_RETURN(KvCache cache,
                        KvCache::CreatePaged(engine->model().config(), static_cast<int32_t>(n_pages),
                                             kKvPageSize, engine->kv_type()));
  std::unique_ptr<Scheduler> s(new Scheduler());
  s->impl_ = std::make_unique<Impl>(std::move(cache));
  Impl* impl = s->impl_.get();
  impl->engine = std::move(engine);
  impl->options = o;
  impl->free_pages.reserve(n_pages);
  for (int64_t p = n_pages - 1; p >= 0; --p) impl->free_pages.push_back(static_cast<int32_t>(p));
  impl->thread = std::thread([impl] { impl->Loop(); });
  return s;
}

Scheduler::~Scheduler() { Stop(); }

const Scheduler::Options& Scheduler::options() const { return impl_->options; }

absl::StatusOr<uint64_t> Scheduler::Submit(BatchRequest request) {
  Impl& m = *impl_;
  const int32_t n_vocab = m.engine->model().config().n_vocab;
  if (request.prompt.empty()) return absl::InvalidArgumentError("the prompt is empty");
  for (int32_t t : request.prompt) {
    if (t < 0 || t >= n_vocab) {
      return absl::InvalidArgumentError(
          absl::StrFormat("token id %d is out of range [0, %d)", t, n_vocab));
    }
  }
  const int64_t n_prompt = static_cast<int64_t>(request.prompt.size());
  if (n_prompt + 1 > m.options.n_ctx) {
    return absl::OutOfRangeError(absl::StrFormat(
        "the prompt has %d tokens; the context holds %d (prompt + at least one generated token)",
        n_prompt, m.options.n_ctx));
  }
  if (request.n_logprobs > 20) return absl::InvalidArgumentError("at most 20 top logprobs");
  YUAN_RETURN_IF_ERROR(CheckLoraSet(request.loras, m.engine->model()));
  auto seq = std::make_unique<Seq>();
  seq->n_prompt = n_prompt;
  const int64_t want = request.max_tokens < 0 ? m.options.n_ctx
                                              : n_prompt + int64_t{request.max_tokens};
  seq->limit = std::min<int64_t>(want, m.options.n_ctx);
  seq->tokens = request.prompt;
  seq->sampler = std::make_unique<Sampler>(
      request.sampling, request.sampling.grammar != nullptr ? m.engine->grammar_vocab() : nullptr);
  for (int32_t t : request.prompt) seq->sampler->Accept(t);
  seq->stream = std::make_unique<TextStream>(request.stop);
  seq->submitted = Clock::now();
  seq->req = std::move(request);
  std::lock_guard<std::mutex> lock(m.mu);
  if (m.stopping) return absl::UnavailableError("the server is shutting down");
  // Queued requests that free slots will take at the next step do not count
  // as waiting.
  const int64_t free_slots = std::max(0, m.options.max_sequences - m.running_count);
  if (static_cast<int64_t>(m.queue.size()) >= m.options.max_queue + free_slots) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "too many requests: %d running and %d waiting", m.running_count, m.queue.size()));
  }
  seq->id = m.next_id++;
  const uint64_t id = seq->id;
  m.queue.push_back(std::move(seq));
  m.cv.notify_all();
  return id;
}

void Scheduler::Cancel(uint64_t id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->cancel_ids.insert(id);
  impl_->cv.notify_all();
}

Scheduler::Stats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stats s = impl_->counters;
  s.running = impl_->running_count;
  s.queued = static_cast<int>(impl_->queue.size());
  s.kv_pages_total = impl_->cache.n_pages();
  s.kv_pages_used = s.kv_pages_total - static_cast<int64_t>(impl_->free_pages.size());
  return s;
}

void Scheduler::Stop() {
  if (impl_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    impl_->cv.notify_all();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

void Scheduler::Impl::Finish(std::unique_ptr<Seq> seq, FinishReason reason, absl::Status status) {
  const Clock::time_point now = Clock::now();
  StreamDone done;
  done.finish_reason = reason;
  done.status = std::move(status);
  done.prompt_tokens = static_cast<int32_t>(seq->n_prompt);
  done.completion_tokens = static_cast<int32_t>(seq->generated.size());
  done.text = seq->stream->emitted();
  done.tokens = std::move(seq->generated);
  const Clock::time_point admitted = seq->admitted.time_since_epoch().count() != 0 ? seq->admitted : now;
  done.queue_ms = MsBetween(seq->submitted, admitted);
  done.ttft_ms = seq->has_first_token ? MsBetween(seq->submitted, seq->first_token) : 0;
  done.total_ms = MsBetween(seq->submitted, now);
  {
    std::lock_guard<std::mutex> lock(mu);
    free_pages.insert(free_pages.end(), seq->pages.rbegin(), seq->pages.rend());
    cancel_ids.erase(seq->id);
    running_count = static_cast<int>(running.size());  // seq is no longer in it
  }
  if (seq->req.on_done) seq->req.on_done(done);
}

void Scheduler::Impl::Loop() {
  for (;;) {
    std::vector<std::unique_ptr<Seq>> cancelled_queued;
    bool stop = false;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return stopping || !queue.empty() || !running.empty(); });
      stop = stopping;
      // Cancellations: mark running ones; take queued ones out.
      for (auto& s : running) {
        if (stop || cancel_ids.contains(s->id)) s->cancelled = true;
      }
      for (auto it = queue.begin(); it != queue.end();) {
        if (stop || cancel_ids.contains((*it)->id)) {
          cancelled_queued.push_back(std::move(*it));
          it = queue.erase(it);
        } else {
          ++it;
        }
      }
      // Admission, first come first served: a request that does not fit
      // waits (the ones behind it too, so none starves).
      while (!stop && !queue.empty() &&
             static_cast<int>(running.size()) < options.max_sequences) {
        Seq& s = *queue.front();
        const int64_t n_pages = (s.limit + kKvPageSize - 1) / kKvPageSize;
        if (n_pages > static_cast<int64_t>(free_pages.size())) break;
        for (int64_t i = 0; i < n_pages; ++i) {
          s.pages.push_back(free_pages.back());
          free_pages.pop_back();
        }
        s.admitted = Clock::now();
        running.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      running_count = static_cast<int>(running.size());
    }
    for (auto& s : cancelled_queued) Finish(std::move(s), FinishReason::kCancelled);
    // Cancelled running sequences end before the step.
    for (size_t i = 0; i < running.size();) {
      if (running[i]->cancelled) {
        std::unique_ptr<Seq> s = std::move(running[i]);
        running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
        Finish(std::move(s), FinishReason::kCancelled);
      } else {
        ++i;
      }
    }
    if (stop && running.empty()) {
      std::lock_guard<std::mutex> lock(mu);
      running_count = 0;
      if (queue.empty()) return;
      continue;
    }
    if (!running.empty()) Step();
    std::lock_guard<std::mutex> lock(mu);
    running_count = static_cast<int>(running.size());
  }
}

// One batch: the pending token of every decoding sequence, then prompt
// chunks of the others up to max_batch_tokens, in admission order.
void Scheduler::Impl::Step() {
  std::vector<int32_t> tokens;
  std::vector<SeqSlice> slices;
  std::vector<Seq*> members;  // slice i belongs to members[i]
  int64_t budget = options.max_batch_tokens;
  for (int pass = 0; pass < 2; ++pass) {  // 0: decoding sequences, 1: prompts
    for (auto& up : running) {
      Seq* s = up.get();
      const int64_t todo = static_cast<int64_t>(s->tokens.size()) - s->n_eval;
      const bool decoding = s->n_eval >= s->n_prompt;
      if (todo <= 0 || decoding != (pass == 0) || budget <= 0) continue;
      const int64_t n = std::min(todo, budget);
      SeqSlice q;
      q.n_tokens = n;
      q.pos0 = s->n_eval;
      q.pages = s->pages.data();
      q.logits = n == todo;  // the last token of what it has: sample after it
      if (!s->req.loras.empty()) q.loras = &s->req.loras;
      tokens.insert(tokens.end(), s->tokens.begin() + s->n_eval, s->tokens.begin() + s->n_eval + n);
      slices.push_back(q);
      members.push_back(s);
      budget -= n;
    }
  }
  if (slices.empty()) return;
  ForwardArgs args;
  args.tokens = tokens.data();
  args.n_tokens = static_cast<int64_t>(tokens.size());
  args.seqs = slices.data();
  args.n_seqs = static_cast<int64_t>(slices.size());
  absl::Status st = Forward(engine->model(), args, &cache, &scratch, engine->pool(), &logits);
  {
    std::lock_guard<std::mutex> lock(mu);
    ++counters.steps;
    for (size_t i = 0; i < slices.size(); ++i) {
      if (members[i]->n_eval < members[i]->n_prompt) counters.prompt_tokens += slices[i].n_tokens;
    }
  }
  if (!st.ok()) {  // a bug or a bad token: every member ends with the error
    for (Seq* s : members) s->cancelled = true;
    for (size_t i = 0; i < running.size();) {
      if (running[i]->cancelled) {
        std::unique_ptr<Seq> s = std::move(running[i]);
        running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
        Finish(std::move(s), FinishReason::kError, st);
      } else {
        ++i;
      }
    }
    return;
  }
  const int32_t n_vocab = engine->model().config().n_vocab;
  int64_t row = 0;
  for (size_t i = 0; i < slices.size(); ++i) {
    Seq* s = members[i];
    s->n_eval += slices[i].n_tokens;
    if (!slices[i].logits) continue;
    float* r = logits.data() + row * n_vocab;
    ++row;
    const FinishReason reason = SampleNext(s, r);
    if (reason == FinishReason::kNone) continue;
    for (size_t j = 0; j < running.size(); ++j) {
      if (running[j].get() != s) continue;
      std::unique_ptr<Seq> ended = std::move(running[j]);
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(j));
      absl::Status why = ended->error;
      Finish(std::move(ended), reason, std::move(why));
      break;
    }
  }
}

FinishReason Scheduler::Impl::SampleNext(Seq* s, float* row) {
  const Tokenizer& tok = engine->tokenizer();
  const int32_t n_vocab = engine->model().config().n_vocab;
  const BatchRequest& req = s->req;
  if (req.max_tokens == 0) return FinishReason::kLength;
  StreamDelta d;
  float lse = 0;
  std::vector<float> raw;
  if (req.n_logprobs >= 0) {  // of the raw distribution, before the sampler changes the row
    lse = LogSumExp(row, n_vocab);
    raw.assign(row, row + n_vocab);
    const int k = std::min(req.n_logprobs, n_vocab);
    std::vector<int32_t> ids(n_vocab);
    for (int32_t i = 0; i < n_vocab; ++i) ids[i] = i;
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
      return raw[a] > raw[b] || (raw[a] == raw[b] && a < b);
    });
    for (int i = 0; i < k; ++i) d.top_logprobs.emplace_back(ids[i], raw[ids[i]] - lse);
  }
  const int32_t token = s->sampler->Sample(row, n_vocab);
  if (token == Sampler::kNoToken) {
    s->error = absl::FailedPreconditionError(
        "the grammar allows no token of this model's vocabulary at this point");
    return FinishReason::kError;
  }
  s->sampler->Accept(token);
  if (!s->has_first_token) {
    s->has_first_token = true;
    s->first_token = Clock::now();
  }
  // Text still held back (a partial stop-string match, an unfinished
  // character) belongs to the output when generation ends otherwise.
  auto flush = [&] {
    std::string tail = s->stream->Flush();
    if (tail.empty() || !req.on_delta) return;
    StreamDelta t;
    t.text = std::move(tail);
    t.index = static_cast<int32_t>(s->generated.size());
    req.on_delta(t);
  };
  if (tok.IsEog(token) && (!req.ignore_eos || s->sampler->GrammarDone())) {
    flush();
    return FinishReason::kStop;
  }
  s->generated.push_back(token);
  {
    std::lock_guard<std::mutex> lock(mu);
    ++counters.generated_tokens;
  }
  bool stopped = false;
  d.text = s->stream->Push(tok.TokenToPiece(token), &stopped);
  d.token = token;
  d.index = static_cast<int32_t>(s->generated.size()) - 1;
  if (req.n_logprobs >= 0) d.logprob = raw[token] - lse;
  if (req.on_delta && !req.on_delta(d)) return FinishReason::kCancelled;
  if (stopped) return FinishReason::kStop;
  if (s->sampler->GrammarDone()) {  // the grammar's sentence is complete
    flush();
    return FinishReason::kStop;
  }
  const bool at_max =
      req.max_tokens >= 0 && static_cast<int32_t>(s->generated.size()) >= req.max_tokens;
  // The token is evaluated in the next step, at position tokens.size().
  const bool full = static_cast<int64_t>(s->tokens.size()) + 1 > s->limit;
  if (at_max || full) {
    flush();
    return FinishReason::kLength;
  }
  s->tokens.push_back(token);
  return FinishReason::kNone;
}

}  // namespace yuan

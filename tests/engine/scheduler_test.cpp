// Continuous batching: requests decoded together over the paged cache give
// exactly what each gets alone (llama.cpp's golden tokens on stories260K; a
// session's seeded sampling on a random model), and the scheduler's limits,
// cancellation and page accounting hold.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "runtime/engine/scheduler.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

// Collects one request's callbacks; Wait() blocks until on_done ran.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  StreamDone result;
  std::string text;  // concatenated deltas
  std::vector<int32_t> tokens;
  int deltas = 0;

  void Attach(BatchRequest* r) {
    r->on_delta = [this](const StreamDelta& d) {
      std::lock_guard<std::mutex> lock(mu);
      text += d.text;
      if (d.token >= 0) tokens.push_back(d.token);
      ++deltas;
      return true;
    };
    r->on_done = [this](const StreamDone& d) {
      std::lock_guard<std::mutex> lock(mu);
      result = d;
      done = true;
      cv.notify_all();
    };
  }
  bool Wait(double seconds = 60) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::duration<double>(seconds * testing::TimeScale()),
                       [&] { return done; });
  }
};

std::shared_ptr<Engine> OpenModel(const std::string& path, int threads = 2) {
  EngineOptions o;
  o.model_path = path;
  o.n_threads = threads;
  auto engine = Engine::Open(o);
  REQUIRE(engine.ok());
  return *engine;
}

TEST_CASE("batched requests reproduce llama.cpp's greedy tokens", "[engine][scheduler][golden]") {
  const auto files = testing::GoldenGenerationFiles();
  const std::string path = testing::SharedModel("stories260K.gguf");
  if (files.empty() || path.empty()) {
    WARN("skipped: no ../shared golden files or model");
    return;
  }
  auto engine = OpenModel(path);
  std::vector<testing::GoldenGeneration> golden(files.size());
  for (size_t i = 0; i < files.size(); ++i) REQUIRE(testing::LoadGoldenGeneration(files[i], &golden[i]));

  // Small prompt chunks so prompts and decoding steps of different requests
  // share batches; every golden file twice, submitted at once.
  for (int64_t batch_tokens : {512, 7}) {
    INFO("max_batch_tokens " << batch_tokens);
    Scheduler::Options opt;
    opt.max_sequences = 4;  // fewer than the requests: some wait for a slot
    opt.max_batch_tokens = batch_tokens;
    auto sched = Scheduler::Start(engine, opt);
    REQUIRE(sched.ok());
    const size_t n = 2 * golden.size();
    std::vector<Collector> out(n);
    for (size_t i = 0; i < n; ++i) {
      const auto& g = golden[i % golden.size()];
      BatchRequest r;
      r.prompt = g.prompt_ids;
      r.max_tokens = static_cast<int32_t>(g.generated_ids.size());
      r.ignore_eos = true;
      r.sampling.temperature = 0;
      out[i].Attach(&r);
      REQUIRE((*sched)->Submit(std::move(r)).ok());
    }
    for (size_t i = 0; i < n; ++i) {
      const auto& g = golden[i % golden.size()];
      INFO(files[i % golden.size()]);
      REQUIRE(out[i].Wait());
      CHECK(out[i].result.status.ok());
      CHECK(out[i].result.finish_reason == FinishReason::kLength);
      CHECK(out[i].result.tokens == g.generated_ids);
      CHECK(out[i].tokens == g.generated_ids);
      CHECK(out[i].text == g.generated_text);
      CHECK(out[i].result.text == g.generated_text);
      CHECK(out[i].result.prompt_tokens == static_cast<int32_t>(g.prompt_ids.size()));
    }
    const Scheduler::Stats st = (*sched)->stats();
    CHECK(st.running == 0);
    CHECK(st.kv_pages_used == 0);
    CHECK(st.steps > 0);
  }
}

TEST_CASE("batched seeded sampling equals each request alone in a session",
          "[engine][scheduler]") {
  testing::RandomModelSpec spec;
  spec.n_ctx = 512;
  spec.weight_type = DType::kQ8_0;
  spec.n_embd = 64;
  auto engine = OpenModel(testing::WriteRandomLlamaModel(spec, "sched-q8.gguf"));
  const Tokenizer& tok = engine->tokenizer();
  const char* prompts[] = {"hello world", "a", "the quick brown fox jumps over the lazy dog again",
                           "x y z", "hello"};
  Scheduler::Options opt;
  opt.max_sequences = 3;
  opt.max_batch_tokens = 16;
  auto sched = Scheduler::Start(engine, opt);
  REQUIRE(sched.ok());
  std::vector<Collector> out(5);
  std::vector<GenerateResult> alone(5);
  for (int i = 0; i < 5; ++i) {
    GenerateRequest g;
    g.prompt = prompts[i];
    g.max_tokens = 40 + 13 * i;  // crosses page boundaries (64 positions)
    g.ignore_eos = true;
    g.sampling.temperature = 0.9f;
    g.sampling.top_k = 0;
    g.sampling.top_p = 0.95f;
    g.sampling.repeat_penalty = 1.1f;
    g.sampling.seed = 100 + i;
    auto session = Session::Create(engine, 512);
    REQUIRE(session.ok());
    REQUIRE((*session)->Generate(g, &alone[i]).ok());

    BatchRequest r;
    EncodeOptions enc;
    r.prompt = tok.Encode(prompts[i], enc);
    r.max_tokens = g.max_tokens;
    r.ignore_eos = true;
    r.sampling = g.sampling;
    out[i].Attach(&r);
    REQUIRE((*sched)->Submit(std::move(r)).ok());
  }
  for (int i = 0; i < 5; ++i) {
    INFO("request " << i);
    REQUIRE(out[i].Wait());
    CHECK(out[i].result.tokens == alone[i].tokens);
    CHECK(out[i].text == alone[i].text);
  }
}

TEST_CASE("scheduler limits, cancellation and logprobs", "[engine][scheduler]") {
  testing::RandomModelSpec spec = testing::SlowModelSpec();
  auto engine = OpenModel(testing::WriteRandomLlamaModel(spec, "sched-slow.gguf"), 1);
  Scheduler::Options opt;
  opt.max_sequences = 1;
  opt.max_queue = 1;
  opt.n_ctx = 256;
  opt.kv_tokens = 256;
  auto sched = Scheduler::Start(engine, opt);
  REQUIRE(sched.ok());

  SECTION("bad requests are refused before queueing") {
    BatchRequest r;
    CHECK(absl::IsInvalidArgument((*sched)->Submit(r).status()));  // empty prompt
    r.prompt = {1, engine->model().config().n_vocab};
    CHECK(absl::IsInvalidArgument((*sched)->Submit(r).status()));
    r.prompt.assign(256, 5);
    CHECK(absl::IsOutOfRange((*sched)->Submit(r).status()));
  }

  SECTION("a full queue says so; cancelling frees the slot and pages at once") {
    std::vector<Collector> out(3);
    std::vector<uint64_t> ids;
    for (int i = 0; i < 2; ++i) {
      BatchRequest r;
      r.prompt = {1, 20, 30};
      r.max_tokens = -1;  // until the context is full
      r.ignore_eos = true;
      out[i].Attach(&r);
      auto id = (*sched)->Submit(std::move(r));
      REQUIRE(id.ok());
      ids.push_back(*id);
    }
    // one running (when admitted) + one waiting: the next is refused
    BatchRequest r;
    r.prompt = {1, 2};
    r.max_tokens = 4;
    auto third = (*sched)->Submit(r);
    CHECK(absl::IsResourceExhausted(third.status()));
    const auto t0 = std::chrono::steady_clock::now();
    (*sched)->Cancel(ids[0]);
    (*sched)->Cancel(ids[1]);
    REQUIRE(out[0].Wait(10));
    REQUIRE(out[1].Wait(10));
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    CHECK(ms < 2000 * testing::TimeScale());
    CHECK(out[0].result.finish_reason == FinishReason::kCancelled);
    CHECK(out[1].result.finish_reason == FinishReason::kCancelled);
    CHECK((*sched)->stats().kv_pages_used == 0);
    CHECK((*sched)->stats().running == 0);
  }

  SECTION("logprobs are the log-softmax of the raw logits") {
    auto session = Session::Create(engine, 64);
    REQUIRE(session.ok());
    const std::vector<int32_t> prompt = {1, 40, 50, 60};
    REQUIRE((*session)->Decode(prompt).ok());
    std::vector<float> logits = (*session)->logits();
    double sum = 0;
    float mx = -INFINITY;
    for (float x : logits) mx = std::max(mx, x);
    for (float x : logits) sum += std::exp(static_cast<double>(x - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    const int32_t best = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());

    std::vector<StreamDelta> deltas;
    Collector c;
    BatchRequest r;
    r.prompt = prompt;
    r.max_tokens = 1;
    r.sampling.temperature = 0;
    r.n_logprobs = 3;
    c.Attach(&r);
    r.on_delta = [&](const StreamDelta& d) {
      deltas.push_back(d);
      return true;
    };
    REQUIRE((*sched)->Submit(std::move(r)).ok());
    REQUIRE(c.Wait());
    REQUIRE(deltas.size() >= 1);
    CHECK(deltas[0].token == best);
    CHECK(deltas[0].logprob == Approx(logits[best] - lse).margin(1e-4));
    REQUIRE(deltas[0].top_logprobs.size() == 3);
    CHECK(deltas[0].top_logprobs[0].first == best);
    CHECK(deltas[0].top_logprobs[0].second >= deltas[0].top_logprobs[1].second);
    CHECK(deltas[0].top_logprobs[1].second >= deltas[0].top_logprobs[2].second);
  }
}

}  // namespace
}  // namespace yuan

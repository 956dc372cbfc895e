// Session behaviour on generated random models: prefix reuse, context
// limits, stop strings, cancellation from another thread.
#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <thread>

#include "runtime/engine/engine.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

std::shared_ptr<Engine> OpenRandom(const testing::RandomModelSpec& spec, const std::string& name,
                                   int threads = 2, int n_ctx = 0) {
  EngineOptions o;
  o.model_path = testing::WriteRandomLlamaModel(spec, name);
  o.n_threads = threads;
  o.n_ctx = n_ctx;
  auto engine = Engine::Open(o);
  REQUIRE(engine.ok());
  return *engine;
}

GenerateRequest Greedy(const std::string& prompt, int n) {
  GenerateRequest r;
  r.prompt = prompt;
  r.sampling.temperature = 0.0f;
  r.ignore_eos = true;
  r.max_tokens = n;
  return r;
}

TEST_CASE("a reused prefix gives the same result as a fresh evaluation", "[engine]") {
  auto engine = OpenRandom({}, "prefix.gguf");
  auto fresh = Session::Create(engine, 0);
  auto reused = Session::Create(engine, 0);
  REQUIRE(fresh.ok());
  REQUIRE(reused.ok());
  GenerateResult a, b, c;
  REQUIRE((*reused)->Generate(Greedy("the and a the", 8), &a).ok());
  // A longer prompt sharing the first tokens: only the new tail is evaluated.
  REQUIRE((*reused)->Generate(Greedy("the and a the and the", 8), &b).ok());
  CHECK(b.cached_tokens > 0);
  REQUIRE((*fresh)->Generate(Greedy("the and a the and the", 8), &c).ok());
  CHECK(c.cached_tokens == 0);
  CHECK(b.tokens == c.tokens);
}

TEST_CASE("the KV cache gives the same logits as evaluating everything at once", "[engine]") {
  // Token-by-token decoding (single-token kernels + cache) against one
  // batched pass (matrix kernels): both are f32 here, so they agree closely.
  auto engine = OpenRandom({}, "incremental.gguf");
  const std::vector<int32_t> ids = {1, 270, 280, 290, 299, 262, 275, 281};
  auto batched = Session::Create(engine, 0);
  auto stepped = Session::Create(engine, 0);
  REQUIRE((*batched)->Decode(ids).ok());
  for (int32_t id : ids) REQUIRE((*stepped)->Decode({id}).ok());
  const auto& a = (*batched)->logits();
  const auto& b = (*stepped)->logits();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).margin(1e-4));
}

TEST_CASE("context limits are errors or a length finish, never overruns", "[engine]") {
  auto engine = OpenRandom({}, "ctx.gguf", 2, 16);
  auto s = Session::Create(engine, 0);
  REQUIRE(s.ok());
  CHECK((*s)->n_ctx() == 16);
  GenerateResult r;
  // 40 words cannot fit in 16 positions.
  std::string long_prompt;
  for (int i = 0; i < 40; ++i) long_prompt += "the ";
  absl::Status st = (*s)->Generate(Greedy(long_prompt, 4), &r);
  CHECK(absl::IsOutOfRange(st));
  // A short prompt generates until the context is full.
  REQUIRE((*s)->Generate(Greedy("the", 100), &r).ok());
  CHECK(r.finish_reason == FinishReason::kLength);
  CHECK(r.prompt_tokens + r.completion_tokens <= 17);
  CHECK((*s)->n_past() <= 16);
  // Decode past the end is refused and leaves the context as it was.
  const int32_t before = (*s)->n_past();
  std::vector<int32_t> many(20, 270);
  CHECK(absl::IsOutOfRange((*s)->Decode(many)));
  CHECK((*s)->n_past() == before);
  CHECK(absl::IsInvalidArgument((*s)->Decode({999999})));
}

TEST_CASE("a failed Decode leaves the logits and the context as they were", "[engine]") {
  auto engine = OpenRandom({}, "restore.gguf", 2, 1024);
  auto s = Session::Create(engine, 0);
  auto ref = Session::Create(engine, 0);
  REQUIRE((*s)->Decode({1, 270}).ok());
  const std::vector<float> before = (*s)->logits();
  REQUIRE(!before.empty());
  // Refused before anything is computed, and after a first chunk of 512
  // tokens has been evaluated (and has overwritten the logits).
  CHECK(absl::IsInvalidArgument((*s)->Decode({280, 999999})));
  CHECK((*s)->logits() == before);
  std::vector<int32_t> long_batch(600, 275);
  long_batch.back() = 999999;
  CHECK(absl::IsInvalidArgument((*s)->Decode(long_batch)));
  CHECK((*s)->logits() == before);
  CHECK((*s)->n_past() == 2);
  // The next step continues from the restored state, like a session that
  // never failed.
  REQUIRE((*s)->Decode({290}).ok());
  REQUIRE((*ref)->Decode({1, 270}).ok());
  REQUIRE((*ref)->Decode({290}).ok());
  CHECK((*s)->logits() == (*ref)->logits());
}

TEST_CASE("stop strings end generation and are not part of the text", "[engine]") {
  auto engine = OpenRandom({}, "stop.gguf");
  auto s = Session::Create(engine, 0);
  GenerateResult full;
  REQUIRE((*s)->Generate(Greedy("the", 40), &full).ok());
  REQUIRE(full.text.size() > 6);
  // Stop at a piece of what greedy decoding produces anyway.
  const std::string stop = full.text.substr(3, 3);
  GenerateRequest req = Greedy("the", 40);
  req.stop = {stop};
  GenerateResult r;
  REQUIRE((*s)->Generate(req, &r).ok());
  CHECK(r.finish_reason == FinishReason::kStop);
  CHECK(r.text == full.text.substr(0, full.text.find(stop)));
}

TEST_CASE("Cancel from another thread stops generation promptly", "[engine][cancel]") {
  auto engine = OpenRandom(testing::SlowModelSpec(), "cancel.gguf", 1, 4096);
  auto s = Session::Create(engine, 0);
  REQUIRE(s.ok());
  Session* session = s->get();

  SECTION("during generation") {
    GenerateResult r;
    absl::Status st;
    std::atomic<int> tokens{0};
    GenerateRequest req = Greedy("the", 100000);
    req.on_token = [&](std::string_view, int32_t, int32_t) {
      ++tokens;
      return true;
    };
    std::thread gen([&] { st = session->Generate(req, &r); });
    // Cancel once generation is under way (the prompt is done).
    for (int i = 0; i < 3000 && tokens.load() < 2; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const auto t0 = std::chrono::steady_clock::now();
    session->Cancel();
    gen.join();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    CHECK(st.ok());
    CHECK(r.finish_reason == FinishReason::kCancelled);
    CHECK(r.completion_tokens >= 2);
    CHECK(ms < 500 * testing::TimeScale());
  }
  SECTION("during a long prompt") {
    std::string prompt;
    for (int i = 0; i < 900; ++i) prompt += "the and ";
    GenerateResult r;
    absl::Status st;
    std::thread gen([&] { st = session->Generate(Greedy(prompt, 10), &r); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto t0 = std::chrono::steady_clock::now();
    session->Cancel();
    gen.join();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    INFO(st.message());
    CHECK(st.ok());
    CHECK(r.finish_reason == FinishReason::kCancelled);
    CHECK(r.completion_tokens == 0);
    CHECK(ms < 1000 * testing::TimeScale());  // one layer of one prompt chunk
  }
}

TEST_CASE("every weight dtype loads and generates", "[engine]") {
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0,
                     DType::kQ5_1, DType::kIQ4_NL, DType::kIQ4_XS, DType::kQ2_K, DType::kQ3_K, DType::kQ4_K,
                     DType::kQ5_K, DType::kQ6_K}) {
    INFO(DTypeName(type));
    testing::RandomModelSpec spec;
    spec.n_embd = 256;  // rows of whole 256-value blocks, for the k-quants
    spec.n_ff = 512;
    spec.weight_type = type;
    auto engine = OpenRandom(spec, std::string(DTypeName(type)) + ".gguf");
    auto s = Session::Create(engine, 0);
    GenerateResult r;
    REQUIRE((*s)->Generate(Greedy("the", 8), &r).ok());
    CHECK(r.completion_tokens == 8);
  }
  // A type without kernels is refused at load, naming the tensor and type
  // (the writer stores zero blocks for it).
  testing::RandomModelSpec spec;
  spec.n_embd = 256;
  spec.n_ff = 512;
  spec.weight_type = DType::kIQ2_XS;
  EngineOptions o;
  o.model_path = testing::WriteRandomLlamaModel(spec, "iq2_xs.gguf");
  auto refused = Engine::Open(o);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kUnimplemented);
  CHECK_THAT(std::string(refused.status().message()),
             Catch::Contains("has type iq2_xs, which yuan cannot compute with yet"));
}

TEST_CASE("step times cover each forward pass and change no result", "[engine]") {
  // The clock reads sit between the steps: a session that times its steps
  // gives the same logits bit for bit as one that does not, every pass is
  // counted, every step of a decoder layer gets time, and together they
  // account for the time of the calls, measured around them.
  testing::RandomModelSpec spec;
  spec.weight_type = DType::kQ8_0;
  auto engine = OpenRandom(spec, "steps.gguf");
  auto timed = Session::Create(engine, 0);
  auto plain = Session::Create(engine, 0);
  REQUIRE(timed.ok());
  REQUIRE(plain.ok());
  ForwardStepTimes times;
  (*timed)->set_step_times(&times);
  const std::vector<int32_t> prompt = {1, 270, 280, 290};
  REQUIRE((*plain)->Decode(prompt).ok());
  double wall = 0;
  auto timed_decode = [&](const std::vector<int32_t>& ids) {
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE((*timed)->Decode(ids).ok());
    wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  timed_decode(prompt);
  CHECK((*timed)->logits() == (*plain)->logits());
  for (int32_t id : {299, 262, 275, 281, 271}) {
    timed_decode({id});
    REQUIRE((*plain)->Decode({id}).ok());
    CHECK((*timed)->logits() == (*plain)->logits());
  }
  CHECK(times.passes == 6);
  double sum = 0;
  for (int i = 0; i < kForwardSteps; ++i) {
    INFO(ForwardStepName(static_cast<ForwardStep>(i)));
    CHECK(times.seconds[i] > 0);
    sum += times.seconds[i];
  }
  CHECK(sum <= wall);
  CHECK(sum >= 0.5 * wall);
  // Switched off, nothing more is added.
  (*timed)->set_step_times(nullptr);
  const ForwardStepTimes before = times;
  REQUIRE((*timed)->Decode({270}).ok());
  CHECK(times.passes == before.passes);
  CHECK(times.seconds[0] == before.seconds[0]);
}

}  // namespace
}  // namespace yuan

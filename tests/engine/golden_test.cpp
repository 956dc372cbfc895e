// The runtime against llama.cpp's outputs on the real stories260K model
// (../shared/golden): prompt ids, first-step logits and greedy tokens.
#include <catch2/catch.hpp>

#include "runtime/engine/engine.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

std::shared_ptr<Engine> OpenStories(int threads) {
  const std::string path = testing::SharedModel("stories260K.gguf");
  if (path.empty()) return nullptr;
  EngineOptions o;
  o.model_path = path;
  o.n_threads = threads;
  auto engine = Engine::Open(o);
  REQUIRE(engine.ok());
  return *engine;
}

TEST_CASE("stories260K reproduces llama.cpp's greedy generations", "[engine][golden]") {
  const auto files = testing::GoldenGenerationFiles();
  if (files.empty()) {
    WARN("skipped: no ../shared/golden/stories260K-*.txt");
    return;
  }
  for (int threads : {1, 2}) {
    auto engine = OpenStories(threads);
    if (!engine) return;
    for (const std::string& file : files) {
      INFO(file << " on " << threads << " threads");
      testing::GoldenGeneration g;
      REQUIRE(testing::LoadGoldenGeneration(file, &g));
      auto session = Session::Create(engine, 0);
      REQUIRE(session.ok());

      // Prompt ids and the first position's top-5 logits (tolerance 1e-3).
      EncodeOptions enc;
      const std::vector<int32_t> ids = engine->tokenizer().Encode(g.prompt, enc);
      REQUIRE(ids == g.prompt_ids);
      REQUIRE((*session)->Decode(ids).ok());
      const std::vector<float>& logits = (*session)->logits();
      REQUIRE(logits.size() == static_cast<size_t>(engine->model().config().n_vocab));
      REQUIRE(g.top5.size() == 5);
      for (auto [id, want] : g.top5) {
        INFO("token " << id);
        CHECK(logits[id] == Approx(want).margin(1e-3));
      }
      // ... and they are the top 5, in order.
      std::vector<int32_t> order(logits.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
      std::partial_sort(order.begin(), order.begin() + 5, order.end(),
                        [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
      for (int k = 0; k < 5; ++k) CHECK(order[k] == g.top5[k].first);

      // Greedy generation, EOS not stopped, equals llama.cpp's ids exactly.
      GenerateRequest req;
      req.prompt = g.prompt;
      req.sampling.temperature = 0.0f;
      req.ignore_eos = true;
      req.max_tokens = static_cast<int32_t>(g.generated_ids.size());
      GenerateResult result;
      REQUIRE((*session)->Generate(req, &result).ok());
      CHECK(result.tokens == g.generated_ids);
      CHECK(result.text == g.generated_text);
      CHECK(result.cached_tokens == static_cast<int32_t>(ids.size()) - 1);
    }
  }
}

TEST_CASE("seeded sampling gives the same tokens on 1 and 2 threads", "[engine][determinism]") {
  auto e1 = OpenStories(1);
  auto e2 = OpenStories(2);
  if (!e1 || !e2) return;
  GenerateRequest req;
  req.prompt = "Lily and Tom went to the park.";
  req.sampling.temperature = 1.0f;
  req.sampling.top_k = 0;
  req.sampling.top_p = 0.98f;
  req.sampling.min_p = 0.0f;
  req.sampling.repeat_penalty = 1.1f;
  req.max_tokens = 100;
  std::vector<std::vector<int32_t>> runs;
  for (uint64_t seed : {7u, 8u}) {
    for (auto& e : {e1, e2}) {
      req.sampling.seed = seed;
      auto s = Session::Create(e, 0);
      REQUIRE(s.ok());
      GenerateResult r;
      REQUIRE((*s)->Generate(req, &r).ok());
      runs.push_back(r.tokens);
    }
  }
  CHECK(runs[0] == runs[1]);  // seed 7, 1 vs 2 threads
  CHECK(runs[2] == runs[3]);  // seed 8
  CHECK(runs[0] != runs[2]);  // different seeds differ
}

}  // namespace
}  // namespace yuan

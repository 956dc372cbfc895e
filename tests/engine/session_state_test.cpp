// Saving and restoring a session's context.
#include <catch2/catch.hpp>
#include <random>

#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

std::shared_ptr<Engine> OpenRandom(const testing::RandomModelSpec& spec, const std::string& name) {
  EngineOptions o;
  o.model_path = testing::WriteRandomLlamaModel(spec, name);
  o.n_threads = 2;
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

TEST_CASE("a restored session continues exactly like the original", "[engine][state]") {
  auto engine = OpenRandom({}, "state.gguf");
  auto a = std::move(*Session::Create(engine, 0));
  GenerateResult first;
  REQUIRE(a->Generate(Greedy("the and a", 6), &first).ok());
  const std::string state = a->SaveState();

  auto b = std::move(*Session::Create(engine, 0));
  REQUIRE(b->LoadState(state).ok());
  CHECK(b->history() == a->history());
  CHECK(b->logits() == a->logits());
  // The same follow-up prompt: both reuse the whole saved context.
  GenerateResult ra, rb;
  const std::string follow = "the and a" + first.text + " the";
  REQUIRE(a->Generate(Greedy(follow, 10), &ra).ok());
  REQUIRE(b->Generate(Greedy(follow, 10), &rb).ok());
  CHECK(rb.cached_tokens == ra.cached_tokens);
  CHECK(rb.cached_tokens > 0);
  CHECK(rb.tokens == ra.tokens);

  // An empty session round-trips too.
  auto c = std::move(*Session::Create(engine, 0));
  REQUIRE(b->LoadState(c->SaveState()).ok());
  CHECK(b->n_past() == 0);
}

TEST_CASE("damaged, foreign or oversized states are refused and change nothing", "[engine][state]") {
  auto engine = OpenRandom({}, "state2.gguf");
  testing::RandomModelSpec other_spec;
  other_spec.n_layer = 3;
  auto other = OpenRandom(other_spec, "state-other.gguf");
  auto s = std::move(*Session::Create(engine, 0));
  GenerateResult r;
  REQUIRE(s->Generate(Greedy("the and", 4), &r).ok());
  const std::string state = s->SaveState();
  const auto before = s->history();

  CHECK(IsFormatError(s->LoadState("")));
  CHECK(IsFormatError(s->LoadState("YUANKV01 but not really")));
  std::string flipped = state;
  flipped[flipped.size() / 2] ^= 0x40;
  CHECK(IsFormatError(s->LoadState(flipped)));
  CHECK(IsFormatError(s->LoadState(state.substr(0, state.size() - 1))));
  // Seeded random truncations and byte flips never crash and never load.
  std::mt19937 rng(11);
  for (int i = 0; i < 2000; ++i) {
    std::string m = state;
    if (i % 2) {
      m.resize(rng() % m.size());
    } else {
      m[rng() % m.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    CHECK(!s->LoadState(m).ok());
  }
  CHECK(s->history() == before);

  auto o = std::move(*Session::Create(other, 0));
  absl::Status st = o->LoadState(state);
  CHECK(absl::IsFailedPrecondition(st));
  CHECK(std::string(st.message()).find("another model") != std::string::npos);

  auto small = std::move(*Session::Create(engine, 4));
  CHECK(absl::IsFailedPrecondition(small->LoadState(state)));
  CHECK(small->n_past() == 0);
}

}  // namespace
}  // namespace yuan

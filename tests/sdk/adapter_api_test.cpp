// LoRA adapters through the C API: yuan_adapter_load / _free, a session's
// adapters and a call's own, lifetimes (freeing a handle while it is in
// use), and misuse. The expected text comes from the runtime's engine with
// the same adapter (runtime/engine/lora.h), which tests/adapter checks
// against PyTorch with merged weights; here the question is whether the C
// API hands the right adapters to each call.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/adapter/adapter.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/lora.h"
#include "runtime/model/model.h"
#include "tests/common/random_adapter.h"
#include "tests/common/test_support.h"
#include "yuan/yuan.h"

namespace {

using yuan::testing::TempDir;

constexpr char kPrompt[] = "Once upon a time";
constexpr int kTokens = 24;

yuan::testing::RandomModelSpec Spec(uint64_t seed = 3) {
  yuan::testing::RandomModelSpec spec;
  spec.stddev = 0.2f;  // a peaked distribution: greedy text depends on the weights
  spec.seed = seed;
  return spec;
}

// A random adapter for the model at `model_path`, saved as .yadp (or a PEFT
// folder) under `name`; returns the path.
std::string WriteAdapter(const std::string& model_path, uint64_t seed, const std::string& name,
                         bool peft = false) {
  auto model = yuan::Model::Open(model_path);
  REQUIRE(model.ok());
  yuan::LoraAdapter a = yuan::testing::RandomLoraAdapter(Spec(), 4, seed,
                                                        yuan::testing::kAllLoraModules, 0.15f);
  REQUIRE(yuan::FillFingerprint(**model, &a).ok());
  const std::string path = TempDir() + "/" + name;
  REQUIRE((peft ? yuan::ExportPeft(a, path) : yuan::SaveAdapter(a, path)).ok());
  return path;
}

struct Fixture {
  std::string model = yuan::testing::WriteRandomLlamaModel(Spec(), "adapter-api.gguf");
  std::string a_path = WriteAdapter(model, 101, "api-a.yadp");
  std::string b_path = WriteAdapter(model, 202, "api-b-peft", /*peft=*/true);
};

const Fixture& Files() {
  static Fixture f;
  return f;
}

// The runtime's greedy text for the prompt with these adapter files and scales.
std::string Expected(const std::vector<std::pair<std::string, float>>& adapters) {
  yuan::EngineOptions eo;
  eo.model_path = Files().model;
  eo.n_threads = 1;
  auto engine = yuan::Engine::Open(eo);
  REQUIRE(engine.ok());
  auto session = yuan::Session::Create(*engine, 256);
  REQUIRE(session.ok());
  yuan::GenerateRequest r;
  r.prompt = kPrompt;
  r.max_tokens = kTokens;
  r.ignore_eos = true;
  r.sampling.temperature = 0;
  for (const auto& [path, scale] : adapters) {
    auto b = yuan::LoadLora(path, (*engine)->model());
    REQUIRE(b.ok());
    r.loras.push_back({*b, scale});
  }
  yuan::GenerateResult out;
  REQUIRE((*session)->Generate(r, &out).ok());
  return out.text;
}

yuan_engine* Open(const std::string& path) {
  yuan_engine_options o;
  yuan_engine_options_init(&o);
  o.model = path.c_str();
  o.n_threads = 2;
  yuan_engine* e = nullptr;
  REQUIRE(yuan_engine_open(&o, &e) == YUAN_OK);
  return e;
}

yuan_adapter* Load(yuan_engine* e, const std::string& path) {
  yuan_adapter* a = nullptr;
  const yuan_status st = yuan_adapter_load(e, path.c_str(), &a);
  INFO(yuan_last_error());
  REQUIRE(st == YUAN_OK);
  REQUIRE(a != nullptr);
  return a;
}

// Greedy generation of kTokens on the session; `adapters` as in
// yuan_generate_options (NULL: the session's). Asserts nothing, so it may run
// off the test's thread (Catch2 v2's assertions are not thread-safe): the
// status goes to *st.
std::string TryGenerate(yuan_session* s, yuan_status* st, const yuan_adapter_choice* adapters = nullptr,
                        size_t n = 0) {
  yuan_sampling_params sp;
  yuan_sampling_params_init(&sp);
  sp.temperature = 0;
  yuan_generate_options go;
  yuan_generate_options_init(&go);
  go.max_tokens = kTokens;
  go.sampling = &sp;
  go.flags = YUAN_GENERATE_IGNORE_EOS;
  go.adapters = adapters;
  go.n_adapters = n;
  yuan_generate_result r;
  yuan_generate_result_init(&r);
  *st = yuan_session_generate(s, kPrompt, &go, &r);
  std::string text(r.text, r.text_len);
  yuan_free(r.text);
  return text;
}

// TryGenerate on the test's thread, asserting that it succeeded.
std::string Generate(yuan_session* s, const yuan_adapter_choice* adapters = nullptr, size_t n = 0) {
  yuan_status st = YUAN_OK;
  std::string text = TryGenerate(s, &st, adapters, n);
  INFO(yuan_last_error());
  REQUIRE(st == YUAN_OK);
  return text;
}

}  // namespace

TEST_CASE("a session's adapters and a call's own reach the model", "[sdk][adapter]") {
  const std::string base = Expected({});
  const std::string with_a = Expected({{Files().a_path, 1.0f}});
  const std::string with_b_half = Expected({{Files().b_path, 0.5f}});
  const std::string with_both = Expected({{Files().a_path, 1.0f}, {Files().b_path, 0.5f}});
  // The adapters change the text at all (else nothing below could fail).
  REQUIRE(with_a != base);
  REQUIRE(with_b_half != base);
  REQUIRE(with_both != with_a);

  yuan_engine* e = Open(Files().model);
  yuan_adapter* a = Load(e, Files().a_path);
  yuan_adapter* b = Load(e, Files().b_path);  // a PEFT folder
  yuan_session* s = nullptr;
  REQUIRE(yuan_session_open(e, nullptr, &s) == YUAN_OK);

  CHECK(Generate(s) == base);
  const yuan_adapter_choice just_a[] = {{a, 1.0f}};
  REQUIRE(yuan_session_set_adapters(s, just_a, 1) == YUAN_OK);
  CHECK(Generate(s) == with_a);
  // A call's own adapters replace the session's for that call only.
  const yuan_adapter_choice b_half[] = {{b, 0.5f}};
  CHECK(Generate(s, b_half, 1) == with_b_half);
  const yuan_adapter_choice none[] = {{nullptr, 0.0f}};
  CHECK(Generate(s, none, 0) == base);  // non-NULL, n = 0: the base alone
  const yuan_adapter_choice both[] = {{a, 1.0f}, {b, 0.5f}};
  CHECK(Generate(s, both, 2) == with_both);
  CHECK(Generate(s) == with_a);
  // Scale 0 adds nothing.
  const yuan_adapter_choice zero[] = {{a, 0.0f}};
  CHECK(Generate(s, zero, 1) == base);

  // The handle may go while the session still uses the adapter.
  yuan_adapter_free(a);
  CHECK(Generate(s) == with_a);
  REQUIRE(yuan_session_set_adapters(s, nullptr, 0) == YUAN_OK);
  CHECK(Generate(s) == base);

  // A request reads the choice at submit; the handle may be freed at once.
  {
    yuan_sampling_params sp;
    yuan_sampling_params_init(&sp);
    sp.temperature = 0;
    yuan_generate_options go;
    yuan_generate_options_init(&go);
    go.max_tokens = kTokens;
    go.sampling = &sp;
    go.flags = YUAN_GENERATE_IGNORE_EOS;
    go.adapters = b_half;
    go.n_adapters = 1;
    yuan_request* r = nullptr;
    REQUIRE(yuan_session_submit(s, kPrompt, &go, &r) == YUAN_OK);
    yuan_adapter_free(b);
    REQUIRE(yuan_request_wait(r, -1) == YUAN_OK);
    yuan_generate_result res;
    yuan_generate_result_init(&res);
    REQUIRE(yuan_request_result(r, &res) == YUAN_OK);
    CHECK(std::string(res.text, res.text_len) == with_b_half);
    yuan_free(res.text);
    yuan_request_free(r);
  }
  yuan_session_free(s);
  yuan_engine_free(e);
}

TEST_CASE("adapters load and unload while another thread generates", "[sdk][adapter]") {
  const std::string with_a = Expected({{Files().a_path, 1.0f}});
  yuan_engine* e = Open(Files().model);
  yuan_adapter* a = Load(e, Files().a_path);
  yuan_session* s = nullptr;
  REQUIRE(yuan_session_open(e, nullptr, &s) == YUAN_OK);
  const yuan_adapter_choice just_a[] = {{a, 1.0f}};
  REQUIRE(yuan_session_set_adapters(s, just_a, 1) == YUAN_OK);
  yuan_adapter_free(a);

  std::atomic<bool> done{false};
  std::vector<std::string> texts;
  std::vector<yuan_status> statuses;
  std::thread worker([&] {
    for (int i = 0; i < 4; ++i) {
      yuan_session_reset(s);
      statuses.push_back(YUAN_OK);
      texts.push_back(TryGenerate(s, &statuses.back()));
    }
    done.store(true);
  });
  int loads = 0;
  while (!done.load()) {
    yuan_adapter* x = nullptr;
    REQUIRE(yuan_adapter_load(e, Files().b_path.c_str(), &x) == YUAN_OK);
    yuan_adapter_free(x);
    ++loads;
  }
  worker.join();
  CHECK(loads > 0);
  CHECK(statuses == std::vector<yuan_status>(4, YUAN_OK));
  for (const std::string& t : texts) CHECK(t == with_a);
  yuan_session_free(s);
  yuan_engine_free(e);
}

TEST_CASE("adapter misuse gives clear errors", "[sdk][adapter]") {
  yuan_engine* e = Open(Files().model);
  yuan_session* s = nullptr;
  REQUIRE(yuan_session_open(e, nullptr, &s) == YUAN_OK);
  yuan_adapter* x = nullptr;

  CHECK(yuan_adapter_load(e, (TempDir() + "/no-such-adapter.yadp").c_str(), &x) == YUAN_ERR_NOT_FOUND);
  const std::string junk = TempDir() + "/junk.yadp";
  std::ofstream(junk) << "certainly not an adapter";
  CHECK(yuan_adapter_load(e, junk.c_str(), &x) == YUAN_ERR_FORMAT);
  CHECK(yuan_adapter_load(e, nullptr, &x) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(yuan_adapter_load(nullptr, Files().a_path.c_str(), &x) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(yuan_adapter_load(e, Files().a_path.c_str(), nullptr) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(x == nullptr);

  // Made for another base: same shapes, other weights.
  const std::string other_model = yuan::testing::WriteRandomLlamaModel(Spec(77), "adapter-other.gguf");
  const std::string foreign = WriteAdapter(other_model, 5, "api-foreign.yadp");
  CHECK(yuan_adapter_load(e, foreign.c_str(), &x) == YUAN_ERR_FAILED_PRECONDITION);
  CHECK(std::string(yuan_last_error()).find("hash") != std::string::npos);

  // Bad choices.
  yuan_adapter* a = Load(e, Files().a_path);
  const yuan_adapter_choice null_handle[] = {{nullptr, 1.0f}};
  CHECK(yuan_session_set_adapters(s, null_handle, 1) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(yuan_session_set_adapters(s, nullptr, 1) == YUAN_ERR_INVALID_ARGUMENT);
  const yuan_adapter_choice nan_scale[] = {{a, std::nanf("")}};
  CHECK(yuan_session_set_adapters(s, nan_scale, 1) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(yuan_session_set_adapters(nullptr, nullptr, 0) == YUAN_ERR_INVALID_ARGUMENT);
  // Another engine's adapter (the same file, bound to another model copy).
  yuan_engine* e2 = Open(Files().model);
  yuan_adapter* a2 = Load(e2, Files().a_path);
  const yuan_adapter_choice wrong_engine[] = {{a2, 1.0f}};
  CHECK(yuan_session_set_adapters(s, wrong_engine, 1) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(std::string(yuan_last_error()).find("another engine") != std::string::npos);
  // A freed handle.
  yuan_adapter_free(a2);
  CHECK(yuan_session_set_adapters(s, wrong_engine, 1) == YUAN_ERR_INVALID_ARGUMENT);
  yuan_adapter_free(a2);  // double free: an error, not a crash
  yuan_engine_free(e2);

  // Decoding on a context computed with other adapters is refused, not mixed.
  const yuan_adapter_choice just_a[] = {{a, 1.0f}};
  REQUIRE(yuan_session_set_adapters(s, just_a, 1) == YUAN_OK);
  Generate(s);
  REQUIRE(yuan_session_set_adapters(s, nullptr, 0) == YUAN_OK);
  const yuan_token t = 5;
  CHECK(yuan_session_decode(s, &t, 1) == YUAN_ERR_FAILED_PRECONDITION);
  REQUIRE(yuan_session_reset(s) == YUAN_OK);
  CHECK(yuan_session_decode(s, &t, 1) == YUAN_OK);

  yuan_adapter_free(a);
  yuan_adapter_free(nullptr);
  yuan_session_free(s);
  yuan_engine_free(e);
}

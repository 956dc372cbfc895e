// The same application code against a local model file and against
// `yuan serve` over loopback HTTP: the public C ABI's generate and chat calls
// give the same greedy tokens and text either way, also with several clients
// decoding at once (their requests share the server's batches).
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/adapter/adapter.h"
#include "runtime/model/model.h"
#include "runtime/server/server.h"
#include "tests/common/random_adapter.h"
#include "tests/common/test_support.h"
#include "yuan/yuan.h"

namespace yuan {
namespace {

struct Output {
  yuan_status status = YUAN_OK;
  std::string text;
  std::vector<int32_t> tokens;
  yuan_finish_reason finish = YUAN_FINISH_NONE;
  bool result_text_matches = true;  // the result's text is the streamed text
};

int Collect(const yuan_token_event* e, void* user) {
  auto* out = static_cast<Output*>(user);
  out->text.append(e->text, e->text_len);
  if (e->token >= 0) out->tokens.push_back(e->token);
  return 0;
}

yuan_engine* OpenEngine(const std::string& model) {
  yuan_engine_options o;
  yuan_engine_options_init(&o);
  o.model = model.c_str();
  o.n_threads = 1;
  yuan_engine* engine = nullptr;
  const yuan_status st = yuan_engine_open(&o, &engine);
  INFO(yuan_last_error());
  REQUIRE(st == YUAN_OK);
  return engine;
}

// Greedy generation (or chat when `messages` is not empty) on a new session.
// Asserts nothing, so clients may run it on threads (Catch2 v2's assertions
// are not thread-safe): a failure is in the returned status, and a result
// text that differs from the streamed one is reported in result_text_matches.
Output Generate(yuan_engine* engine, const std::string& prompt, int max_tokens,
                const std::vector<yuan_chat_message>& messages = {}) {
  Output out;
  yuan_session* session = nullptr;
  out.status = yuan_session_open(engine, nullptr, &session);
  if (out.status != YUAN_OK) return out;
  yuan_sampling_params sp;
  yuan_sampling_params_init(&sp);
  sp.temperature = 0;
  yuan_generate_options g;
  yuan_generate_options_init(&g);
  g.max_tokens = max_tokens;
  g.sampling = &sp;
  g.flags = YUAN_GENERATE_IGNORE_EOS;
  g.on_token = Collect;
  g.user_data = &out;
  yuan_generate_result r;
  yuan_generate_result_init(&r);
  out.status = messages.empty()
                   ? yuan_session_generate(session, prompt.c_str(), &g, &r)
                   : yuan_session_chat(session, messages.data(), messages.size(), nullptr, &g, &r);
  if (out.status == YUAN_OK) {
    out.finish = r.finish_reason;
    out.result_text_matches = std::string(r.text, r.text_len) == out.text;
  }
  yuan_free(r.text);
  yuan_session_free(session);
  return out;
}

TEST_CASE("remote: the SDK against yuan serve gives the local runtime's greedy tokens",
          "[remote][serve]") {
  testing::RandomModelSpec spec;
  spec.n_ctx = 512;
  spec.weight_type = DType::kQ8_0;
  const std::string path = testing::WriteRandomLlamaModel(spec, "interop.gguf");

  EngineOptions eo;
  eo.model_path = path;
  eo.n_threads = 1;
  auto engine = Engine::Open(eo);
  REQUIRE(engine.ok());
  server::ServeOptions so;
  so.port = 0;
  so.model_path = path;
  so.scheduler.max_sequences = 4;
  auto srv = server::ApiServer::Start(*engine, so);
  REQUIRE(srv.ok());
  const std::string url = "http://127.0.0.1:" + std::to_string((*srv)->port()) + "/v1";

  yuan_engine* local = OpenEngine(path);
  yuan_engine* remote = OpenEngine(url);

  const std::vector<std::string> prompts = {"hello world", "the quick brown fox",
                                            "a b c d e f g h i j k l m n o p", "x"};
  SECTION("completions, one at a time") {
    for (const std::string& p : prompts) {
      INFO("prompt: " << p);
      const Output want = Generate(local, p, 40);
      const Output got = Generate(remote, p, 40);
      REQUIRE(want.status == YUAN_OK);
      REQUIRE(got.status == YUAN_OK);
      CHECK(want.result_text_matches);
      CHECK(got.result_text_matches);
      CHECK(got.tokens == want.tokens);
      CHECK(got.text == want.text);
      CHECK(got.finish == want.finish);
      CHECK(want.tokens.size() == 40);
    }
  }
  SECTION("completions from several clients at once share the server's batches") {
    std::vector<Output> want(prompts.size()), got(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) want[i] = Generate(local, prompts[i], 70);
    std::vector<std::thread> clients;
    for (size_t i = 0; i < prompts.size(); ++i) {
      clients.emplace_back([&, i] { got[i] = Generate(remote, prompts[i], 70); });
    }
    for (auto& t : clients) t.join();
    for (size_t i = 0; i < prompts.size(); ++i) {
      INFO("prompt: " << prompts[i]);
      CHECK(got[i].status == YUAN_OK);
      CHECK(got[i].result_text_matches);
      CHECK(got[i].tokens == want[i].tokens);
      CHECK(got[i].text == want[i].text);
    }
    CHECK((*srv)->scheduler().stats().steps > 0);
  }
  SECTION("chat: the server renders the same template") {
    const std::vector<yuan_chat_message> messages = {{"system", "be brief"},
                                                     {"user", "hello there"}};
    const Output want = Generate(local, "", 30, messages);
    const Output got = Generate(remote, "", 30, messages);
    REQUIRE(want.status == YUAN_OK);
    REQUIRE(got.status == YUAN_OK);
    CHECK(got.result_text_matches);
    CHECK(got.tokens == want.tokens);
    CHECK(got.text == want.text);
  }
  yuan_engine_free(remote);
  yuan_engine_free(local);
  (*srv)->Stop();
}

}  // namespace
}  // namespace yuan

namespace yuan {

TEST_CASE("remote: an adapter served by yuan serve is chosen through the same C calls",
          "[remote][serve][adapter]") {
  testing::RandomModelSpec spec;
  spec.stddev = 0.2f;
  const std::string path = testing::WriteRandomLlamaModel(spec, "interop-lora.gguf");
  auto model = Model::Open(path);
  REQUIRE(model.ok());
  LoraAdapter a = testing::RandomLoraAdapter(spec, 4, 21, testing::kAllLoraModules, 0.15f);
  REQUIRE(FillFingerprint(**model, &a).ok());
  const std::string adapter_path = testing::TempDir() + "/interop-lora.yadp";
  REQUIRE(SaveAdapter(a, adapter_path).ok());

  EngineOptions eo;
  eo.model_path = path;
  eo.n_threads = 1;
  auto engine = Engine::Open(eo);
  REQUIRE(engine.ok());
  server::ServeOptions so;
  so.port = 0;
  so.model_path = path;
  so.adapters = {{"brand", adapter_path}};
  auto srv = server::ApiServer::Start(*engine, so);
  REQUIRE(srv.ok());
  const std::string url = "http://127.0.0.1:" + std::to_string((*srv)->port()) + "/v1";

  // The application code: load "the adapter", choose it, generate; locally
  // the adapter is the file, remotely the server's model name.
  auto with_adapter = [](yuan_engine* e, const std::string& adapter) {
    yuan_adapter* h = nullptr;
    const yuan_status st = yuan_adapter_load(e, adapter.c_str(), &h);
    INFO(yuan_last_error());
    REQUIRE(st == YUAN_OK);
    yuan_session* session = nullptr;
    REQUIRE(yuan_session_open(e, nullptr, &session) == YUAN_OK);
    const yuan_adapter_choice choice[] = {{h, 1.0f}};
    REQUIRE(yuan_session_set_adapters(session, choice, 1) == YUAN_OK);
    yuan_adapter_free(h);
    yuan_sampling_params sp;
    yuan_sampling_params_init(&sp);
    sp.temperature = 0;
    yuan_generate_options g;
    yuan_generate_options_init(&g);
    g.max_tokens = 24;
    g.sampling = &sp;
    g.flags = YUAN_GENERATE_IGNORE_EOS;
    yuan_generate_result r;
    yuan_generate_result_init(&r);
    REQUIRE(yuan_session_generate(session, "Once upon a time", &g, &r) == YUAN_OK);
    std::string text(r.text, r.text_len);
    yuan_free(r.text);
    yuan_session_free(session);
    return text;
  };
  yuan_engine* local = OpenEngine(path);
  yuan_engine* remote = OpenEngine(url);
  const std::string want = with_adapter(local, adapter_path);
  CHECK(with_adapter(remote, "brand") == want);
  CHECK(Generate(local, "Once upon a time", 24).text != want);  // the adapter mattered

  yuan_adapter* h = nullptr;
  CHECK(yuan_adapter_load(remote, "no-such-adapter", &h) == YUAN_ERR_NOT_FOUND);
  CHECK(std::string(yuan_last_error()).find("brand") != std::string::npos);  // lists what exists
  REQUIRE(yuan_adapter_load(remote, "brand", &h) == YUAN_OK);
  yuan_session* session = nullptr;
  REQUIRE(yuan_session_open(remote, nullptr, &session) == YUAN_OK);
  const yuan_adapter_choice half[] = {{h, 0.5f}};
  CHECK(yuan_session_set_adapters(session, half, 1) == YUAN_ERR_UNIMPLEMENTED);
  yuan_session_free(session);
  yuan_adapter_free(h);
  yuan_engine_free(local);
  yuan_engine_free(remote);
}

}  // namespace yuan

namespace yuan {

TEST_CASE("remote: a JSON Schema or grammar goes to yuan serve and constrains the same way",
          "[remote][serve][grammar]") {
  testing::RandomModelSpec spec;
  spec.n_ctx = 512;
  const std::string path = testing::WriteRandomLlamaModel(spec, "interop-grammar.gguf");
  EngineOptions eo;
  eo.model_path = path;
  eo.n_threads = 1;
  auto engine = Engine::Open(eo);
  REQUIRE(engine.ok());
  server::ServeOptions so;
  so.port = 0;
  auto srv = server::ApiServer::Start(*engine, so);
  REQUIRE(srv.ok());
  yuan_engine* local = OpenEngine(path);
  yuan_engine* remote = OpenEngine("http://127.0.0.1:" + std::to_string((*srv)->port()) + "/v1");
  auto run = [](yuan_engine* e, const char* grammar, const char* schema) {
    yuan_session* s = nullptr;
    REQUIRE(yuan_session_open(e, nullptr, &s) == YUAN_OK);
    yuan_sampling_params sp;
    yuan_sampling_params_init(&sp);
    sp.temperature = 0;
    sp.grammar = grammar;
    sp.json_schema = schema;
    yuan_generate_options g;
    yuan_generate_options_init(&g);
    g.max_tokens = 120;
    g.sampling = &sp;
    yuan_generate_result r;
    yuan_generate_result_init(&r);
    const yuan_status st = yuan_session_generate(s, "the cat", &g, &r);
    INFO(yuan_last_error());
    REQUIRE(st == YUAN_OK);
    std::string text(r.text, r.text_len);
    yuan_free(r.text);
    yuan_session_free(s);
    return text;
  };
  const char* schema = R"({"type":"object","properties":{"b":{"type":"string","maxLength":5},
      "a":{"type":"array","items":{"type":"integer","minimum":0,"maximum":50},"maxItems":3}},
      "required":["b","a"],"additionalProperties":false})";
  const std::string want = run(local, nullptr, schema);
  CHECK(nlohmann::json::parse(want, nullptr, false).is_object());
  CHECK(run(remote, nullptr, schema) == want);
  const char* grammar = R"(root ::= ("ab" | "c")+ "." )";
  const std::string want_g = run(local, grammar, nullptr);
  CHECK(run(remote, grammar, nullptr) == want_g);
  yuan_engine_free(local);
  yuan_engine_free(remote);
}

}  // namespace yuan

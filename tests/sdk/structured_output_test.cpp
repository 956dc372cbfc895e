// Structured output through the C API: generation constrained by a JSON
// Schema, from many seeds and temperatures, must give text that an
// independent validator (Python's jsonschema, tests/grammar/validate_json.py)
// accepts, and end because the document is complete, not because of
// max_tokens. Also GBNF grammars and the errors for ones that do not compile.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/common/test_support.h"
#include "yuan/yuan.h"

namespace {

using json = nlohmann::json;

struct SchemaCase {
  const char* name;
  const char* schema;
};

// A game item, a quest with $ref steps, an ad creative with Chinese length
// limits and a date, an NPC state with anyOf / const / uuid.
const SchemaCase kSchemas[] = {
    {"game item", R"({"type":"object","properties":{
        "name":{"type":"string","minLength":1,"maxLength":8},
        "rarity":{"enum":["common","rare","epic"]},
        "level":{"type":"integer","minimum":1,"maximum":60},
        "tags":{"type":"array","items":{"type":"string","maxLength":6},"minItems":1,"maxItems":3}},
      "required":["name","rarity","level","tags"],"additionalProperties":false})"},
    {"quest", R"({"$defs":{"step":{"type":"object","properties":{
          "npc":{"type":"string","maxLength":6},"done":{"type":"boolean"}},
          "required":["npc","done"],"additionalProperties":false}},
      "type":"object","properties":{
        "title":{"type":"string","maxLength":10},
        "steps":{"type":"array","items":{"$ref":"#/$defs/step"},"minItems":1,"maxItems":3},
        "reward":{"type":"integer","minimum":0,"maximum":999}},
      "required":["title","steps","reward"],"additionalProperties":false})"},
    {"ad creative", R"({"type":"object","properties":{
        "headline":{"type":"string","minLength":2,"maxLength":12},
        "cta":{"enum":["立即购买","了解更多","马上下载"]},
        "date":{"type":"string","format":"date"}},
      "required":["headline","cta","date"],"additionalProperties":false})"},
    {"npc state", R"({"type":"object","properties":{
        "kind":{"const":"npc"},
        "mood":{"anyOf":[{"type":"integer","minimum":-5,"maximum":5},{"type":"null"}]},
        "id":{"type":"string","format":"uuid"}},
      "required":["kind","mood","id"],"additionalProperties":false})"},
};

std::string Python() { return yuan::testing::ReferencePython(); }

bool HaveJsonSchema() { return yuan::testing::PythonCanImport("jsonschema"); }

// One verdict per sample: "ok" or "invalid: ...".
std::vector<std::string> Validate(const std::string& schema, const std::vector<std::string>& samples) {
  const std::string in = yuan::testing::TempDir() + "/validate-in.json";
  std::ofstream(in) << json{{"schema", json::parse(schema)}, {"samples", samples}}.dump();
  const std::string cmd = Python() + " " + YUAN_SOURCE_DIR + "/tests/grammar/validate_json.py < " + in;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  std::vector<std::string> verdicts;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) verdicts.push_back(line);
  return verdicts;
}

std::string Model() {
  std::string path = yuan::testing::SharedModel("stories260K.gguf");
  if (path.empty()) path = yuan::testing::WriteRandomLlamaModel({}, "structured.gguf");
  return path;
}

struct Output {
  yuan_status status = YUAN_OK;
  std::string text;
  yuan_finish_reason finish = YUAN_FINISH_NONE;
};

Output Generate(yuan_session* s, const char* prompt, yuan_sampling_params* sp, int max_tokens) {
  yuan_generate_options go;
  yuan_generate_options_init(&go);
  go.max_tokens = max_tokens;
  go.sampling = sp;
  yuan_generate_result r;
  yuan_generate_result_init(&r);
  Output out;
  out.status = yuan_session_generate(s, prompt, &go, &r);
  if (out.status == YUAN_OK) {
    out.text.assign(r.text, r.text_len);
    out.finish = r.finish_reason;
  }
  yuan_free(r.text);
  return out;
}

yuan_engine* Open() {
  const std::string path = Model();
  yuan_engine_options o;
  yuan_engine_options_init(&o);
  o.model = path.c_str();
  o.n_threads = 2;
  yuan_engine* e = nullptr;
  REQUIRE(yuan_engine_open(&o, &e) == YUAN_OK);
  return e;
}

}  // namespace

TEST_CASE("JSON Schema output validates with jsonschema for every seed and temperature",
          "[sdk][grammar]") {
  if (!HaveJsonSchema()) {
    WARN("skipped: " << Python() << " cannot import jsonschema (apt-get install python3-jsonschema)");
    return;
  }
  yuan_engine* e = Open();
  yuan_session* s = nullptr;
  REQUIRE(yuan_session_open(e, nullptr, &s) == YUAN_OK);
  for (const SchemaCase& c : kSchemas) {
    INFO(c.name);
    std::vector<std::string> samples;
    for (uint64_t seed = 1; seed <= 6; ++seed) {
      for (float temp : {0.0f, 0.7f, 1.3f}) {
        yuan_sampling_params sp;
        yuan_sampling_params_init(&sp);
        sp.seed = seed;
        sp.temperature = temp;
        sp.top_k = 0;  // the whole (masked) distribution
        sp.top_p = 1.0f;
        sp.min_p = 0.0f;
        sp.json_schema = c.schema;
        const Output o = Generate(s, "Once upon a time", &sp, 400);
        INFO("seed " << seed << " temperature " << temp << ": " << o.text);
        REQUIRE(o.status == YUAN_OK);
        CHECK(o.finish == YUAN_FINISH_STOP);  // complete, not cut off
        samples.push_back(o.text);
      }
    }
    // The validator is not vacuous: a sample with its closing brace gone and
    // one with a required field renamed are refused.
    std::string broken = samples[0].substr(0, samples[0].size() - 1);
    std::string renamed = samples[0];
    renamed[renamed.find('"') + 1] = 'Z';
    samples.push_back(broken);
    samples.push_back(renamed);
    const std::vector<std::string> verdicts = Validate(c.schema, samples);
    REQUIRE(verdicts.size() == samples.size());
    for (size_t i = 0; i + 2 < samples.size(); ++i) {
      INFO(samples[i]);
      CHECK(verdicts[i] == "ok");
    }
    CHECK(verdicts[samples.size() - 2] != "ok");
    CHECK(verdicts[samples.size() - 1] != "ok");
  }
  yuan_session_free(s);
  yuan_engine_free(e);
}

TEST_CASE("GBNF grammars constrain generate, chat and submit; bad ones are refused", "[sdk][grammar]") {
  yuan_engine* e = Open();
  yuan_session* s = nullptr;
  REQUIRE(yuan_session_open(e, nullptr, &s) == YUAN_OK);
  yuan_sampling_params sp;
  yuan_sampling_params_init(&sp);
  sp.seed = 7;
  sp.grammar = R"(root ::= "HP " [1-9] [0-9]? " / MP " ("low" | "high"))";
  for (int i = 0; i < 5; ++i) {
    sp.seed = 7 + i;
    const Output o = Generate(s, "Lily", &sp, 50);
    REQUIRE(o.status == YUAN_OK);
    INFO(o.text);
    CHECK(o.finish == YUAN_FINISH_STOP);
    CHECK(o.text.rfind("HP ", 0) == 0);
    const bool low = o.text.size() > 4 && o.text.substr(o.text.size() - 4) == " low";
    const bool high = o.text.size() > 5 && o.text.substr(o.text.size() - 5) == " high";
    CHECK((low || high));
  }
  // max_tokens cuts a document short: LENGTH, the text a prefix.
  sp.grammar = R"(root ::= "[" ("a" ",")* "a" "]")";
  Output cut = Generate(s, "Lily", &sp, 3);
  CHECK(cut.finish == YUAN_FINISH_LENGTH);
  CHECK(cut.text.rfind("[", 0) == 0);

  // Chat and a submitted request take the grammar too (copied at submit).
  std::string grammar = R"(root ::= "yes" | "no")";
  sp.grammar = grammar.c_str();
  yuan_chat_message m = {"user", "Is the sky blue?"};
  yuan_generate_options go;
  yuan_generate_options_init(&go);
  go.max_tokens = 10;
  go.sampling = &sp;
  yuan_generate_result r;
  yuan_generate_result_init(&r);
  REQUIRE(yuan_session_chat(s, &m, 1, nullptr, &go, &r) == YUAN_OK);
  const std::string chat(r.text, r.text_len);
  CHECK((chat == "yes" || chat == "no"));
  yuan_free(r.text);
  yuan_request* req = nullptr;
  REQUIRE(yuan_session_submit(s, "Lily", &go, &req) == YUAN_OK);
  grammar.assign(grammar.size(), 'x');  // the request has its own copy
  REQUIRE(yuan_request_wait(req, -1) == YUAN_OK);
  yuan_generate_result_init(&r);
  REQUIRE(yuan_request_result(req, &r) == YUAN_OK);
  const std::string sub(r.text, r.text_len);
  CHECK((sub == "yes" || sub == "no"));
  yuan_free(r.text);
  yuan_request_free(req);

  // Errors name the problem.
  sp.grammar = "root ::= \"a\" missing";
  CHECK(Generate(s, "Lily", &sp, 5).status == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(std::string(yuan_last_error()).find("missing") != std::string::npos);
  sp.grammar = nullptr;
  sp.json_schema = R"({"type":"object","patternProperties":{"a":{}}})";
  CHECK(Generate(s, "Lily", &sp, 5).status == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(std::string(yuan_last_error()).find("patternProperties") != std::string::npos);
  sp.json_schema = "{not json";
  CHECK(Generate(s, "Lily", &sp, 5).status == YUAN_ERR_INVALID_ARGUMENT);
  sp.grammar = "root ::= \"a\"";
  sp.json_schema = "{}";
  CHECK(Generate(s, "Lily", &sp, 5).status == YUAN_ERR_INVALID_ARGUMENT);
  yuan_session_free(s);
  yuan_engine_free(e);
}

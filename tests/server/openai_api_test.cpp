// Request parsing / validation and response builders of the OpenAI API
// (runtime/server/openai_api.h), without a server.
#include <catch2/catch.hpp>

#include <string>

#include "runtime/server/metrics.h"
#include "runtime/server/openai_api.h"

namespace yuan::openai {
namespace {

using json = nlohmann::json;

RequestLimits Limits() {
  RequestLimits l;
  l.n_ctx = 256;
  l.n_vocab = 300;
  return l;
}

ApiRequest ParseOk(Endpoint ep, const std::string& body) {
  ApiRequest r;
  ApiError e;
  INFO(body);
  const bool ok = ParseRequest(ep, body, Limits(), &r, &e);
  INFO(e.message);
  REQUIRE(ok);
  return r;
}

ApiError ParseBad(Endpoint ep, const std::string& body) {
  ApiRequest r;
  ApiError e;
  INFO(body);
  REQUIRE_FALSE(ParseRequest(ep, body, Limits(), &r, &e));
  CHECK(e.http_status == 400);
  CHECK(e.type == "invalid_request_error");
  CHECK_FALSE(e.message.empty());
  return e;
}

constexpr Endpoint kChat = Endpoint::kChatCompletions;
constexpr Endpoint kCompl = Endpoint::kCompletions;

TEST_CASE("openai: a full chat request is parsed", "[server]") {
  const ApiRequest r = ParseOk(kChat, R"({
    "model": "m", "messages": [
      {"role": "system", "content": "be brief"},
      {"role": "developer", "content": "dev"},
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
      {"role": "assistant", "content": null},
      {"role": "tool", "content": "42"}],
    "stream": true, "stream_options": {"include_usage": true},
    "max_tokens": 10, "max_completion_tokens": 12, "temperature": 0.5, "top_p": 0.9,
    "top_k": 5, "min_p": 0.1, "repetition_penalty": 1.1, "presence_penalty": 0.5,
    "frequency_penalty": -0.5, "seed": 7, "stop": ["x", "", "y"], "n": 3,
    "logprobs": true, "top_logprobs": 2, "logit_bias": {"12": -100, "7": 5.5},
    "ignore_eos": true, "user": "u1", "return_token_ids": true,
    "response_format": {"type": "text"}, "chat_template_kwargs": {"enable_thinking": false},
    "some_unknown_field": {"nested": [1, 2, 3]}, "functions": null})");
  REQUIRE(r.messages.size() == 5);
  CHECK(r.messages[0].role == "system");
  CHECK(r.messages[1].role == "system");
  CHECK(r.messages[2].content == "a\nb");
  CHECK(r.messages[3].role == "assistant");
  CHECK(r.messages[3].content.empty());
  CHECK(r.model == "m");
  CHECK(r.stream);
  CHECK(r.include_usage);
  CHECK(r.max_tokens == 12);
  CHECK(r.temperature == Approx(0.5));
  CHECK(r.top_p == Approx(0.9));
  CHECK(r.top_k == 5);
  CHECK(r.min_p == Approx(0.1));
  CHECK(r.repetition_penalty == Approx(1.1));
  CHECK(r.presence_penalty == Approx(0.5));
  CHECK(r.frequency_penalty == Approx(-0.5));
  REQUIRE(r.seed.has_value());
  CHECK(*r.seed == 7);
  CHECK(r.stop == std::vector<std::string>{"x", "y"});
  CHECK(r.n == 3);
  CHECK(r.logprobs == 2);
  REQUIRE(r.logit_bias.size() == 2);
  CHECK(r.logit_bias[0].first == 7);
  CHECK(r.logit_bias[1].second == Approx(-100));
  CHECK(r.ignore_eos);
  CHECK(r.user == "u1");
  CHECK(r.return_token_ids);
  CHECK(r.enable_thinking == 0);

  const SamplingParams p = ToSamplingParams(r, 99);
  CHECK(p.seed == 99);
  CHECK(p.top_k == 5);
  CHECK(p.repeat_penalty == Approx(1.1f));
  CHECK(p.logit_bias.size() == 2);
}

TEST_CASE("openai: defaults follow the OpenAI API", "[server]") {
  const ApiRequest r = ParseOk(kChat, R"({"messages":[{"role":"user","content":"hi"}]})");
  CHECK_FALSE(r.stream);
  CHECK(r.max_tokens == -1);
  CHECK(r.temperature == 1.0f);
  CHECK(r.top_p == 1.0f);
  CHECK(r.top_k == 0);
  CHECK(r.n == 1);
  CHECK(r.logprobs == -1);
  CHECK_FALSE(r.seed.has_value());
  CHECK_FALSE(r.return_token_ids);
  // null is "not given"; whole floats are integers; llama.cpp's penalty name.
  const ApiRequest r2 = ParseOk(kChat, R"({"messages":[{"role":"user","content":"hi"}],
      "max_tokens": null, "n": 2.0, "seed": -1, "repeat_penalty": 1.3, "stop": "END"})");
  CHECK(r2.max_tokens == -1);
  CHECK(r2.n == 2);
  CHECK(*r2.seed == static_cast<uint64_t>(-1));
  CHECK(r2.repetition_penalty == Approx(1.3));
  CHECK(r2.stop == std::vector<std::string>{"END"});
}

TEST_CASE("openai: completion prompts as text, one-string arrays and token ids", "[server]") {
  CHECK(ParseOk(kCompl, R"({"prompt":"Once upon"})").prompt_text == "Once upon");
  CHECK(ParseOk(kCompl, R"({"prompt":["Once upon"]})").prompt_text == "Once upon");
  const ApiRequest ids = ParseOk(kCompl, R"({"prompt":[1, 5, 299], "logprobs": 3})");
  CHECK(ids.prompt_is_tokens);
  CHECK(ids.prompt_tokens == std::vector<int32_t>{1, 5, 299});
  CHECK(ids.logprobs == 3);
  CHECK(ParseOk(kCompl, R"({"prompt":[[1, 2]]})").prompt_tokens == std::vector<int32_t>{1, 2});
  CHECK(ParseOk(kCompl, R"({"prompt":""})").prompt_text.empty());

  CHECK(ParseBad(kCompl, R"({"prompt":[1, 300]})").param == "prompt");  // outside the vocabulary
  CHECK(ParseBad(kCompl, R"({"prompt":[-1]})").param == "prompt");
  CHECK(ParseBad(kCompl, R"({"prompt":["a","b"]})").param == "prompt");
  CHECK(ParseBad(kCompl, R"({"prompt":[]})").param == "prompt");
  CHECK(ParseBad(kCompl, R"({"prompt":[1.5]})").param == "prompt");
  CHECK(ParseBad(kCompl, R"({"prompt":{"a":1}})").param == "prompt");
  CHECK(ParseBad(kCompl, R"({"model":"x"})").param == "prompt");
  CHECK(ParseBad(kCompl, R"({"prompt":"a","logprobs":21})").param == "logprobs");
  CHECK(ParseBad(kCompl, R"({"prompt":"a","logprobs":true})").param == "logprobs");
  CHECK(ParseBad(kCompl, R"({"prompt":"a","echo":true})").param == "echo");
}

TEST_CASE("openai: malformed bodies and wrong types are 400 with the field named", "[server]") {
  ParseBad(kChat, "");
  ParseBad(kChat, "{");
  ParseBad(kChat, "{\"messages\": [}");
  ParseBad(kChat, "[1,2]");
  ParseBad(kChat, "\"just a string\"");
  ParseBad(kChat, std::string(100000, '[') + std::string(100000, ']'));  // too deep, refused before parsing
  ParseBad(kChat, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}garbage");

  const std::string m = R"("messages":[{"role":"user","content":"hi"}])";
  struct Case {
    std::string body;
    std::string param;
  };
  const Case cases[] = {
      {R"({"messages":"hi"})", "messages"},
      {R"({"messages":[]})", "messages"},
      {R"({})", "messages"},
      {R"({"messages":[{"content":"x"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"user"}]})", "messages[0].content"},
      {R"({"messages":[{"role":"wizard","content":"x"}]})", "messages[0].role"},
      {R"({"messages":[{"role":5,"content":"x"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"user","content":7}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})",
       "messages[0].content[0].type"},
      {R"({"messages":[1]})", "messages[0]"},
      {"{" + m + R"(,"stream":"yes"})", "stream"},
      {"{" + m + R"(,"model":5})", "model"},
      {"{" + m + R"(,"max_tokens":-1})", "max_tokens"},
      {"{" + m + R"(,"max_tokens":0})", "max_tokens"},
      {"{" + m + R"(,"max_tokens":1000000000000})", "max_tokens"},
      {"{" + m + R"(,"max_tokens":257})", "max_tokens"},
      {"{" + m + R"(,"max_tokens":"10"})", "max_tokens"},
      {"{" + m + R"(,"max_tokens":1.5})", "max_tokens"},
      {"{" + m + R"(,"temperature":2.5})", "temperature"},
      {"{" + m + R"(,"temperature":-0.1})", "temperature"},
      {"{" + m + R"(,"temperature":"hot"})", "temperature"},
      {"{" + m + R"(,"top_p":0})", "top_p"},
      {"{" + m + R"(,"top_p":1.5})", "top_p"},
      {"{" + m + R"(,"top_k":-2})", "top_k"},
      {"{" + m + R"(,"min_p":2})", "min_p"},
      {"{" + m + R"(,"repetition_penalty":0})", "repetition_penalty"},
      {"{" + m + R"(,"presence_penalty":3})", "presence_penalty"},
      {"{" + m + R"(,"frequency_penalty":-3})", "frequency_penalty"},
      {"{" + m + R"(,"n":0})", "n"},
      {"{" + m + R"(,"n":17})", "n"},
      {"{" + m + R"(,"seed":"7"})", "seed"},
      {"{" + m + R"(,"stop":5})", "stop"},
      {"{" + m + R"(,"stop":[1]})", "stop"},
      {"{" + m + R"(,"stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]})", "stop"},
      {"{" + m + R"(,"logprobs":1})", "logprobs"},
      {"{" + m + R"(,"top_logprobs":3})", "top_logprobs"},
      {"{" + m + R"(,"logprobs":true,"top_logprobs":21})", "top_logprobs"},
      {"{" + m + R"(,"logit_bias":{"abc":1}})", "logit_bias"},
      {"{" + m + R"(,"logit_bias":{"300":1}})", "logit_bias"},
      {"{" + m + R"(,"logit_bias":{"-1":1}})", "logit_bias"},
      {"{" + m + R"(,"logit_bias":{"5":101}})", "logit_bias"},
      {"{" + m + R"(,"logit_bias":{"5":"x"}})", "logit_bias"},
      {"{" + m + R"(,"logit_bias":[1]})", "logit_bias"},
      {"{" + m + R"(,"ignore_eos":1})", "ignore_eos"},
      {"{" + m + R"(,"return_token_ids":"true"})", "return_token_ids"},
      {"{" + m + R"(,"stream_options":{"include_usage":"yes"}})", "stream_options.include_usage"},
      {"{" + m + R"(,"stream_options":true})", "stream_options"},
      {"{" + m + R"(,"response_format":{"type":"json_schema","json_schema":{}}})", "response_format"},
      {"{" + m + R"(,"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object","not":{}}}}})", "response_format"},
      {"{" + m + R"(,"response_format":{"type":"json_object"},"grammar":"root ::= \"x\""})", "grammar"},
      {"{" + m + R"(,"grammar":"root ::= undefined-rule"})", "grammar"},
      {"{" + m + R"(,"grammar":7})", "grammar"},
      {"{" + m + R"(,"json_schema":[1]})", "json_schema"},
      {"{" + m + R"(,"guided_json":{"type":"strange"}})", "guided_json"},
      {"{" + m + R"(,"response_format":{"type":"yaml"}})", "response_format"},
      {"{" + m + R"(,"tools":[{"type":"function"}]})", "tools"},
      {"{" + m + R"(,"best_of":3})", "best_of"},
  };
  for (const Case& c : cases) {
    const ApiError e = ParseBad(kChat, c.body);
    CHECK(e.param == c.param);
  }
  // The context limit is named in the message.
  CHECK(ParseBad(kChat, "{" + m + R"(,"max_tokens":100000})").message.find("256") != std::string::npos);
  // A schema keyword the converter does not know is named.
  CHECK(ParseBad(kChat, "{" + m + R"(,"json_schema":{"type":"object","not":{}}})").message.find("not") !=
        std::string::npos);
  CHECK(ParseBad(kChat, "{" + m + R"(,"grammar":"root ::= x"})").message.find("line 1") != std::string::npos);
}

TEST_CASE("openai: the error object has OpenAI's shape", "[server]") {
  ApiError e = BadRequest("bad n", "n");
  const json j = json::parse(ErrorBody(e));
  CHECK(j["error"]["message"] == "bad n");
  CHECK(j["error"]["type"] == "invalid_request_error");
  CHECK(j["error"]["param"] == "n");
  CHECK(j["error"]["code"].is_null());
  e.param.clear();
  CHECK(json::parse(ErrorBody(e))["error"]["param"].is_null());
  CHECK(ErrorTypeForStatus(401) == "authentication_error");
  CHECK(ErrorTypeForStatus(429) == "rate_limit_error");
  CHECK(ErrorTypeForStatus(503) == "server_error");
}

TEST_CASE("openai: response and chunk builders", "[server]") {
  ResponseMeta meta;
  meta.id = NewId("chatcmpl-");
  meta.created = 1700000000;
  meta.model = "tiny.gguf";
  CHECK(meta.id.rfind("chatcmpl-", 0) == 0);
  CHECK(meta.id.size() == 9 + 24);
  CHECK(NewId("cmpl-") != NewId("cmpl-"));

  Choice c;
  c.text = "hello";
  c.finish_reason = FinishReason::kLength;
  c.with_token_ids = true;
  c.token_ids = {5, 6};
  const json full = ChatCompletion(meta, {c}, {3, 2});
  CHECK(full["object"] == "chat.completion");
  CHECK(full["id"] == meta.id);
  CHECK(full["created"] == 1700000000);
  CHECK(full["model"] == "tiny.gguf");
  CHECK(full["choices"][0]["message"]["role"] == "assistant");
  CHECK(full["choices"][0]["message"]["content"] == "hello");
  CHECK(full["choices"][0]["finish_reason"] == "length");
  CHECK(full["choices"][0]["token_ids"] == json({5, 6}));
  CHECK(full["choices"][0]["logprobs"].is_null());
  CHECK(full["usage"]["total_tokens"] == 5);
  CHECK_FALSE(full.contains("system_fingerprint"));

  const json text = TextCompletion(meta, {c}, {3, 2});
  CHECK(text["object"] == "text_completion");
  CHECK(text["choices"][0]["text"] == "hello");

  const json role = ChatRoleChunk(meta, 1);
  CHECK(role["object"] == "chat.completion.chunk");
  CHECK(role["choices"][0]["index"] == 1);
  CHECK(role["choices"][0]["delta"]["role"] == "assistant");
  CHECK(role["choices"][0]["finish_reason"].is_null());

  Choice d;
  d.text = "lo";
  const json chunk = ChatChunk(meta, d);
  CHECK(chunk["choices"][0]["delta"]["content"] == "lo");
  CHECK_FALSE(chunk["choices"][0].contains("token_ids"));
  Choice fin;
  fin.finish_reason = FinishReason::kStop;
  const json last = ChatChunk(meta, fin);
  CHECK(last["choices"][0]["delta"] == json::object());
  CHECK(last["choices"][0]["finish_reason"] == "stop");
  CHECK(TextCompletionChunk(meta, fin)["choices"][0]["finish_reason"] == "stop");
  CHECK(TextCompletionChunk(meta, d)["choices"][0]["finish_reason"].is_null());

  const json usage = UsageChunk(meta, Endpoint::kChatCompletions, {4, 6});
  CHECK(usage["choices"] == json::array());
  CHECK(usage["usage"]["prompt_tokens"] == 4);
  CHECK(usage["usage"]["completion_tokens"] == 6);
  CHECK(usage["usage"]["total_tokens"] == 10);

  CHECK(FinishReasonString(FinishReason::kStop) == std::string("stop"));
  CHECK(FinishReasonString(FinishReason::kLength) == std::string("length"));
  CHECK(FinishReasonString(FinishReason::kCancelled) == nullptr);
  CHECK(FinishReasonString(FinishReason::kError) == nullptr);

  const std::string sse = SseEvent(json{{"a", 1}});
  CHECK(sse == "data: {\"a\":1}\n\n");
}

TEST_CASE("openai: logprobs in chat and completion shapes", "[server]") {
  ResponseMeta meta;
  meta.id = "x";
  Choice c;
  c.text = "ab";
  c.with_logprobs = true;
  c.logprobs = {{"a", -0.5f, {{"a", -0.5f}, {"b", -1.5f}}}, {"b", -0.25f, {}}};
  const json chat = ChatCompletion(meta, {c}, {});
  const json& content = chat["choices"][0]["logprobs"]["content"];
  REQUIRE(content.size() == 2);
  CHECK(content[0]["token"] == "a");
  CHECK(content[0]["logprob"] == Approx(-0.5));
  CHECK(content[0]["bytes"] == json({97}));
  CHECK(content[0]["top_logprobs"][1]["token"] == "b");
  const json text = TextCompletion(meta, {c}, {});
  const json& lp = text["choices"][0]["logprobs"];
  CHECK(lp["tokens"] == json({"a", "b"}));
  CHECK(lp["text_offset"] == json({0, 1}));
  CHECK(lp["top_logprobs"][0]["b"] == Approx(-1.5));
}

TEST_CASE("openai: dumping never throws on invalid UTF-8", "[server]") {
  Choice c;
  c.text = "ok \xe4\xb8 \xff end";  // a cut character and a stray byte
  ResponseMeta meta;
  std::string out;
  REQUIRE_NOTHROW(out = Dump(ChatCompletion(meta, {c}, {})));
  const json back = json::parse(out);  // valid JSON, valid UTF-8
  CHECK(back["choices"][0]["message"]["content"] == "ok \xef\xbf\xbd \xef\xbf\xbd end");
  Choice lp;
  lp.with_logprobs = true;
  lp.logprobs = {{"\xe4\xb8", -1.0f, {{"\xe4\xb8", -1.0f}, {"\xe4\xbd", -2.0f}}}};
  REQUIRE_NOTHROW(out = Dump(TextCompletion(meta, {lp}, {})));
  REQUIRE_NOTHROW(json::parse(out));
  REQUIRE_NOTHROW(out = Dump(ChatCompletion(meta, {lp}, {})));
  CHECK(json::parse(out)["choices"][0]["logprobs"]["content"][0]["bytes"] == json({0xe4, 0xb8}));
}

TEST_CASE("openai: metrics render the Prometheus text format", "[server]") {
  server::Metrics m;
  m.CountRequest("/v1/chat/completions", 200);
  m.CountRequest("/v1/chat/completions", 200);
  m.CountRequest("/v1/completions", 400);
  m.CountRequest("we\"ird\\", 404);
  m.AddPromptTokens(10);
  m.AddGeneratedTokens(32);
  m.ObserveTimeToFirstToken(0.003);
  m.ObserveTimeToFirstToken(100.0);
  m.ObserveInterTokenLatency(0.02);
  m.ObserveRequestDuration(1.2);
  CHECK(m.requests("/v1/chat/completions", 200) == 2);
  server::Metrics::Gauges g;
  g.running = 2;
  g.queued = 1;
  g.kv_cache_usage = 0.25;
  const std::string text = m.Render(g);
  auto has = [&](const std::string& line) {
    INFO(line);
    CHECK(text.find(line + "\n") != std::string::npos);
  };
  has("# TYPE yuan_requests_total counter");
  has("yuan_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 2");
  has("yuan_requests_total{endpoint=\"/v1/completions\",status=\"400\"} 1");
  has("yuan_requests_total{endpoint=\"we\\\"ird\\\\\",status=\"404\"} 1");
  has("yuan_prompt_tokens_total 10");
  has("yuan_generated_tokens_total 32");
  has("# TYPE yuan_requests_running gauge");
  has("yuan_requests_running 2");
  has("yuan_requests_queued 1");
  has("yuan_kv_cache_usage_ratio 0.25");
  has("# TYPE yuan_time_to_first_token_seconds histogram");
  has("yuan_time_to_first_token_seconds_bucket{le=\"0.001\"} 0");
  has("yuan_time_to_first_token_seconds_bucket{le=\"0.005\"} 1");
  has("yuan_time_to_first_token_seconds_bucket{le=\"10\"} 1");
  has("yuan_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2");
  has("yuan_time_to_first_token_seconds_count 2");
  has("yuan_inter_token_latency_seconds_count 1");
  has("yuan_request_duration_seconds_bucket{le=\"1.5\"} 1");
  has("yuan_request_duration_seconds_sum 1.2");
  // Every non-comment line is "name[{labels}] value".
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t eol = text.find('\n', pos);
    REQUIRE(eol != std::string::npos);
    const std::string line = text.substr(pos, eol - pos);
    if (line.rfind("# ", 0) != 0) {
      INFO(line);
      CHECK(line.rfind("yuan_", 0) == 0);
      CHECK(line.find(' ') != std::string::npos);
    }
    pos = eol + 1;
  }
}

}  // namespace
}  // namespace yuan::openai

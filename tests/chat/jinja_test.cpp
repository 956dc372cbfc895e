// The Jinja subset on its own: clear errors for unsupported constructs and
// syntax errors (with line numbers), limits against hostile templates, and the
// built-in chat templates.
#include "runtime/chat/jinja.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "runtime/chat/chat_template.h"
#include "tests/chat/reference.h"

namespace yuan {
namespace {

absl::StatusOr<std::string> Render(const std::string& source,
                                   const std::string& context_json = "{}",
                                   const jinja::TemplateLimits& limits = {}) {
  auto ctx = jinja::FromJson(context_json);
  if (!ctx.ok()) return ctx.status();
  auto tmpl = jinja::Template::Parse(source, limits);
  if (!tmpl.ok()) return tmpl.status();
  return tmpl->Render(ctx->dict());
}

std::string ErrorOf(const std::string& source, const std::string& context_json = "{}") {
  auto r = Render(source, context_json);
  if (r.ok()) return "<no error>";
  return std::string(r.status().message());
}

TEST_CASE("basic rendering", "[chat][jinja]") {
  CHECK(*Render("Hello {{ name }}!", R"({"name": "世界"})") == "Hello 世界!");
  CHECK(*Render("{% for m in ms %}{{ m.role }}:{{ m['content'] }};{% endfor %}",
                R"({"ms": [{"role": "user", "content": "hi"}]})") == "user:hi;");
  CHECK(*Render("{{ true }} {{ 1.0 }} {{ none }} {{ [1, 'a'] }}") == "True 1.0 None [1, 'a']");
  // trim_blocks + lstrip_blocks, as HF configures jinja2.
  CHECK(*Render("a\n  {% if true %}\n  b\n  {% endif %}\nc") == "a\n  b\nc");
}

TEST_CASE("unsupported constructs are named in the error", "[chat][jinja]") {
  for (const char* tag : {"include", "extends", "import", "block", "call", "filter"}) {
    std::string src = std::string("x\n{% ") + tag + " 'y' %}";
    auto r = Render(src);
    INFO(src);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kUnimplemented);
    std::string msg(r.status().message());
    CHECK(msg.find(std::string("{% ") + tag + " %}") != std::string::npos);
    CHECK(msg.find("line 2") != std::string::npos);
  }
  CHECK(ErrorOf("{{ x | frobnicate }}").find("unknown filter 'frobnicate'") != std::string::npos);
  CHECK(ErrorOf("{{ x | groupby('a') }}").find("unsupported Jinja construct filter 'groupby'") !=
        std::string::npos);
  CHECK(ErrorOf("{{ x is frobnicated }}").find("unknown test 'frobnicated'") != std::string::npos);
  CHECK(ErrorOf("{% frob %}").find("unknown tag 'frob'") != std::string::npos);
  CHECK(ErrorOf("{% for x in y recursive %}{% endfor %}").find("recursive") != std::string::npos);
  CHECK(ErrorOf("{{ '%s' % 1 }}").find("printf-style") != std::string::npos);
  CHECK(ErrorOf("{{ f(*args) }}").find("*args") != std::string::npos);
}

TEST_CASE("syntax errors carry line numbers", "[chat][jinja]") {
  CHECK(ErrorOf("a\nb\n{{ 1 + }}").find("line 3") != std::string::npos);
  CHECK(ErrorOf("{% if x %}\n\nno end")
            .find("unexpected end of template, expected 'elif' or 'else' or 'endif'") !=
        std::string::npos);
  CHECK(ErrorOf("one\n{{ x").find("line 2") != std::string::npos);
  CHECK(ErrorOf("{% endfor %}").find("unknown tag 'endfor'") != std::string::npos);
  CHECK(ErrorOf("\n\n\n{% for %}{% endfor %}").find("line 4") != std::string::npos);
  CHECK(ErrorOf("{# never closed").find("unclosed comment") != std::string::npos);
  CHECK(ErrorOf("{{ 'unterminated }}").find("unterminated string") != std::string::npos);
  CHECK(ErrorOf("{% break %}").find("outside of a for loop") != std::string::npos);
  CHECK(ErrorOf("{{ a ) }}").find("unexpected ')'") != std::string::npos);
  // Runtime errors name the line too.
  CHECK(ErrorOf("\n{{ raise_exception('bad roles') }}").find("line 2") != std::string::npos);
  CHECK(ErrorOf("\n{{ raise_exception('bad roles') }}").find("bad roles") != std::string::npos);
  CHECK(ErrorOf("{{ missing.attr }}").find("'missing' is undefined") != std::string::npos);
}

TEST_CASE("limits stop hostile templates", "[chat][jinja]") {
  // Deep nesting: parse error, no stack overflow.
  std::string parens = std::string(20000, '(') + "1" + std::string(20000, ')');
  auto r = Render("{{ " + parens + " }}");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  std::string ifs;
  for (int i = 0; i < 5000; ++i) ifs += "{% if true %}";
  for (int i = 0; i < 5000; ++i) ifs += "{% endif %}";
  r = Render(ifs);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  std::string lists = std::string(20000, '[') + std::string(20000, ']');
  CHECK_FALSE(Render("{{ " + lists + " }}").ok());
  std::string nots;
  for (int i = 0; i < 20000; ++i) nots += "not ";
  CHECK_FALSE(Render("{{ " + nots + "1 }}").ok());
  std::string minus(20000, '-');
  CHECK_FALSE(Render("{{ " + minus + "1 }}").ok());

  // Huge loops: the step limit ends them quickly.
  r = Render(
      "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_FALSE(Render("{{ range(1000000000)|length }}").ok());  // jinja2's sandbox MAX_RANGE
  // Output doubling: the size limit ends it.
  r = Render(
      "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% "
      "endfor %}");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  // Deeply nested or self-referencing values.
  r = Render(
      "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}"
      "{% endfor %}{{ ns.x }}");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  r = Render("{% set ns = namespace(x=none) %}{% set ns.x = [ns] %}{{ ns }}");
  REQUIRE_FALSE(r.ok());
  CHECK(std::string(r.status().message()).find("namespace") != std::string::npos);
  // Unbounded macro recursion.
  r = Render("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  // Tighter limits are honoured.
  jinja::TemplateLimits small;
  small.max_steps = 100;
  CHECK_FALSE(Render("{% for i in range(1000) %}x{% endfor %}", "{}", small).ok());
  small = {};
  small.max_output_bytes = 10;
  CHECK_FALSE(Render("{% for i in range(100) %}x{% endfor %}", "{}", small).ok());
}

TEST_CASE("built-in chat templates", "[chat][builtin]") {
  const std::vector<std::pair<std::string, std::string>> files = {
      {"chatml", "chatml.jinja"},
      {"llama3", "llama3_2.jinja"},
      {"qwen3", "qwen3.jinja"},
      {"deepseek_v3", "deepseek_v3.jinja"},
      {"hunyuan", "hunyuan_dense.jinja"}};
  REQUIRE(BuiltinChatTemplateNames().size() == files.size());
  for (const auto& [name, file] : files) {
    auto src = BuiltinChatTemplate(name);
    REQUIRE(src.ok());
    CHECK(*src == testing::ReadChatTemplate(file));  // the checked-in reference text
  }
  auto missing = BuiltinChatTemplate("nope");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  CHECK(std::string(missing.status().message()).find("qwen3") != std::string::npos);

  const std::vector<ChatMessage> conv = {{"system", "Be brief."}, {"user", "你好"}};
  ChatExtras extras;
  auto out = RenderChat(*BuiltinChatTemplate("chatml"), conv, true, extras);
  REQUIRE(out.ok());
  CHECK(*out ==
        "<|im_start|>system\nBe "
        "brief.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n");

  extras.variables.push_back({"enable_thinking", jinja::Value::Bool(false)});
  out = RenderChat(*BuiltinChatTemplate("qwen3"), conv, true, extras);
  REQUIRE(out.ok());
  CHECK(*out ==
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n");

  ChatExtras hy{"<|startoftext|>", "<|eos|>", {{"enable_thinking", jinja::Value::Bool(false)}}};
  out = RenderChat(*BuiltinChatTemplate("hunyuan"), conv, true, hy);
  REQUIRE(out.ok());
  CHECK(*out == "<|startoftext|>Be brief.<|extra_4|>你好<|extra_0|><think>\n\n</think>\n");

  ChatExtras ds{"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", {}};
  out = RenderChat(*BuiltinChatTemplate("deepseek_v3"), conv, true, ds);
  REQUIRE(out.ok());
  CHECK(*out == "<｜begin▁of▁sentence｜>Be brief.<｜User｜>你好<｜Assistant｜>");

  ChatExtras l3{
      "<|begin_of_text|>", "<|eot_id|>", {{"date_string", jinja::Value::String("26 Jul 2024")}}};
  out = RenderChat(*BuiltinChatTemplate("llama3"), conv, true, l3);
  REQUIRE(out.ok());
  CHECK(*out ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
        "December 2023\n"
        "Today Date: 26 Jul 2024\n\nBe "
        "brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n你好<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST_CASE("a parsed template renders on many threads", "[chat][jinja]") {
  auto tmpl = jinja::Template::Parse(*BuiltinChatTemplate("qwen3"));
  REQUIRE(tmpl.ok());
  auto ctx = jinja::FromJson(
      R"({"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": true})");
  REQUIRE(ctx.ok());
  const std::string expected = *tmpl->Render(ctx->dict());
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto r = tmpl->Render(ctx->dict());
        if (!r.ok() || *r != expected) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches == 0);
}

TEST_CASE("JSON values round-trip like Python's json", "[chat][jinja]") {
  auto v = jinja::FromJson(
      R"({"a": [1, 2.5, -0.0, 1e100, true, null], "b": "\u00e9\ud83d\ude00\n", "c": {}})");
  REQUIRE(v.ok());
  CHECK(*jinja::ToJson(*v) ==
        "{\"a\": [1, 2.5, -0.0, 1e+100, true, null], \"b\": \"é😀\\n\", \"c\": {}}");
  jinja::JsonOptions ascii;
  ascii.ensure_ascii = true;
  CHECK(*jinja::ToJson(*v, ascii) ==
        "{\"a\": [1, 2.5, -0.0, 1e+100, true, null], \"b\": \"\\u00e9\\ud83d\\ude00\\n\", \"c\": "
        "{}}");
  CHECK_FALSE(jinja::FromJson("{\"a\": }").ok());
  CHECK_FALSE(jinja::FromJson(std::string(5000, '[')).ok());
  CHECK(jinja::FloatRepr(0.1) == "0.1");
  CHECK(jinja::FloatRepr(1e22) == "1e+22");
  CHECK(jinja::FloatRepr(1.5e-7) == "1.5e-07");
  CHECK(jinja::FloatRepr(100.0) == "100.0");
  CHECK(jinja::FloatRepr(-2.0) == "-2.0");
}

}  // namespace
}  // namespace yuan

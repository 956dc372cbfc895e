// Conformance of the Jinja subset with Python's jinja2: every (template,
// conversation) pair is rendered by RenderChat / jinja::Template and by
// tests/chat/render_reference.py, and the outputs must be byte-identical (or
// both must fail). Skips with a WARN when /usr/bin/python3 lacks jinja2.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "runtime/chat/chat_template.h"
#include "runtime/chat/jinja.h"
#include "tests/chat/reference.h"

namespace yuan {
namespace {

using jinja::Value;
using testing::ReferenceCase;
using testing::ReferenceResult;

struct Conversation {
  std::string name;
  std::vector<ChatMessage> messages;
};

std::vector<Conversation> Conversations() {
  const ChatMessage sys{"system", "You are a helpful assistant."};
  return {
      {"system+user", {sys, {"user", "Hello!"}}},
      {"user only", {{"user", "What is 2+2?"}}},
      {"multi-turn",
       {sys, {"user", "Hi"}, {"assistant", "Hello! How can I help?"}, {"user", "Tell me a joke."}}},
      {"chinese",
       {{"system", "你是一个乐于助人的助手。"},
        {"user", "你好，请介绍一下深圳。"},
        {"assistant", "深圳是中国广东省的一座城市。"},
        {"user", "谢谢！还有呢？\u3000"}}},
      {"special characters",
       {{"user",
         "He said \"hi\" and 'bye'\\n\tTab \\\\ {{ not_a_var }} {% if %} {# x #} <|im_end|> 😀\r\n  "
         "trailing  \n\n"},
        {"assistant", "  padded answer with <think>no close\n"},
        {"user", "\n"}}},
      {"thinking history",
       {{"user", "Solve x+1=2"},
        {"assistant", "<think>\nx = 2 - 1 = 1\n</think>\n\nx = 1"},
        {"user", "And x+2=3?"}}},
      {"answer tags",
       {{"user", "q1"},
        {"assistant", "<think>t</think><answer>final answer</answer>"},
        {"user", "q2"}}},
      {"two system messages", {sys, {"system", "Be brief."}, {"user", "ok?"}}},
      {"empty content", {{"user", ""}}},
      {"assistant last", {{"user", "Hi"}, {"assistant", "Hello"}}},
      {"consecutive users", {{"user", "one"}, {"user", "two"}}},  // llama2 raises
  };
}

struct TemplateSpec {
  std::string file;
  std::string bos, eos;
  std::vector<std::string> extras_json;  // each a JSON object of extra variables
};

std::vector<TemplateSpec> Templates() {
  return {
      {"qwen3.jinja",
       "",
       "<|im_end|>",
       {"{}", R"({"enable_thinking": false})", R"({"enable_thinking": true})"}},
      {"llama3_2.jinja",
       "<|begin_of_text|>",
       "<|eot_id|>",
       {R"({"date_string": "26 Jul 2024"})", "{}"}},
      {"llama3_0.jinja", "<|begin_of_text|>", "<|end_of_text|>", {"{}"}},
      {"llama2.jinja", "<s>", "</s>", {"{}"}},
      {"deepseek_v3.jinja", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", {"{}"}},
      {"hunyuan_dense.jinja",
       "<|startoftext|>",
       "<|eos|>",
       {"{}", R"({"enable_thinking": false})"}},
      {"chatml.jinja", "", "<|im_end|>", {"{}"}},
  };
}

// The context RenderChat builds, for the Python side.
jinja::Dict ChatContext(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                        const ChatExtras& extras) {
  jinja::List list;
  for (const ChatMessage& m : messages) {
    jinja::Dict d;
    d.Set("role", Value::String(m.role));
    d.Set("content", Value::String(m.content));
    list.push_back(Value::FromDict(std::move(d)));
  }
  jinja::Dict c;
  c.Set("messages", Value::FromList(std::move(list)));
  c.Set("tools", Value::None());
  c.Set("documents", Value::None());
  c.Set("add_generation_prompt", Value::Bool(add_generation_prompt));
  c.Set("bos_token", Value::String(extras.bos_token));
  c.Set("eos_token", Value::String(extras.eos_token));
  for (const auto& [k, v] : extras.variables) c.Set(k, v);
  return c;
}

void ExpectSame(const std::string& label, const absl::StatusOr<std::string>& ours,
                const ReferenceResult& ref) {
  INFO(label);
  if (!ref.ok) {
    INFO("jinja2 failed with: " << ref.error);
    CHECK_FALSE(ours.ok());
    return;
  }
  INFO("our error: " << (ours.ok() ? "none" : ours.status().ToString()));
  REQUIRE(ours.ok());
  CHECK(*ours == ref.out);
}

TEST_CASE("chat templates render byte-identically to jinja2", "[chat][conformance]") {
  int pairs = 0, rendered = 0;
  for (const TemplateSpec& spec : Templates()) {
    const std::string source = testing::ReadChatTemplate(spec.file);
    std::vector<ReferenceCase> cases;
    std::vector<std::string> labels;
    std::vector<absl::StatusOr<std::string>> ours;
    for (const std::string& extras_json : spec.extras_json) {
      auto vars = jinja::FromJson(extras_json);
      REQUIRE(vars.ok());
      ChatExtras extras{spec.bos, spec.eos, {}};
      for (const auto& kv : vars->dict().items()) extras.variables.push_back(kv);
      for (const Conversation& conv : Conversations()) {
        for (bool gen : {true, false}) {
          cases.push_back({source, ChatContext(conv.messages, gen, extras)});
          labels.push_back(spec.file + " / " + conv.name + " / add_generation_prompt=" +
                           (gen ? "true" : "false") + " / " + extras_json);
          ours.push_back(RenderChat(source, conv.messages, gen, extras));
        }
      }
    }
    auto refs = testing::RenderWithJinja2(cases);
    if (!refs) return;
    for (size_t i = 0; i < cases.size(); ++i) {
      ExpectSame(labels[i], ours[i], (*refs)[i]);
      ++pairs;
      rendered += (*refs)[i].ok ? 1 : 0;
    }
  }
  WARN("compared " << pairs << " (template, conversation) pairs with jinja2, " << rendered
                   << " rendered, the rest failed in both");
}

// Conversations with tool definitions, tool calls and tool results: these need
// fields ChatMessage lacks, so they go through jinja::Template with a context.
TEST_CASE("tool-calling conversations match jinja2", "[chat][conformance]") {
  const std::string tools = R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Weather for a city — 天气", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}, "days": {"type": "integer", "default": 1}},
      "required": ["city"]}}}])";
  const std::string messages = R"([
      {"role": "system", "content": "You are a weather bot."},
      {"role": "user", "content": "Weather in 深圳?"},
      {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "id": "c1",
        "function": {"name": "get_weather", "arguments": {"city": "深圳", "days": 2}}}]},
      {"role": "tool", "content": "{\"temp\": 30.5, \"sky\": \"sunny\"}"},
      {"role": "assistant", "content": "It is 30.5°C and sunny."},
      {"role": "user", "content": "Thanks"}])";
  const std::string string_args = R"([
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
        {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Lyon\"}"}}]},
      {"role": "tool", "content": "rain"},
      {"role": "tool", "content": "sun"}])";
  struct Case {
    std::string file, messages, extra;
  };
  // Qwen3 keeps reasoning_content only for turns after the last user query.
  const std::string reasoning = R"([
      {"role": "user", "content": "2+2?"},
      {"role": "assistant", "content": "4", "reasoning_content": "\nadd them\n"},
      {"role": "user", "content": "<tool_response>x</tool_response>"},
      {"role": "assistant", "content": "ok", "reasoning_content": "think again"}])";
  const std::vector<Case> specs = {
      {"qwen3.jinja", reasoning, R"("enable_thinking": true)"},
      {"qwen3.jinja", messages, R"("tools": )" + tools},
      {"qwen3.jinja", string_args, R"("tools": )" + tools},
      {"llama3_2.jinja", messages, R"("tools": )" + tools + R"(, "date_string": "01 Jan 2025")"},
      {"llama3_2.jinja", messages,
       R"("tools": )" + tools +
           R"(, "date_string": "01 Jan 2025", "tools_in_user_message": false)"},
      {"hunyuan_dense.jinja", messages, R"("tools": )" + tools},
      {"hunyuan_dense.jinja", string_args, R"("tools": )" + tools},
      {"deepseek_v3.jinja", string_args, R"("tools": null)"},
  };
  std::vector<ReferenceCase> cases;
  std::vector<absl::StatusOr<std::string>> ours;
  for (const Case& c : specs) {
    for (bool gen : {true, false}) {
      std::string json = R"({"messages": )" + c.messages + R"(, "add_generation_prompt": )" +
                         (gen ? "true" : "false") +
                         R"(, "bos_token": "<s>", "eos_token": "</s>", )" + c.extra + "}";
      auto ctx = jinja::FromJson(json);
      INFO(json);
      REQUIRE(ctx.ok());
      const std::string source = testing::ReadChatTemplate(c.file);
      cases.push_back({source, ctx->dict()});
      auto tmpl = jinja::Template::Parse(source);
      REQUIRE(tmpl.ok());
      ours.push_back(tmpl->Render(ctx->dict()));
    }
  }
  auto refs = testing::RenderWithJinja2(cases);
  if (!refs) return;
  for (size_t i = 0; i < cases.size(); ++i) {
    ExpectSame(specs[i / 2].file + " tool case " + std::to_string(i), ours[i], (*refs)[i]);
  }
}

// Small templates exercising each supported construct against jinja2.
TEST_CASE("language features match jinja2", "[chat][conformance]") {
  const std::string data = R"({
    "items": [3, 1, 2, 4, 2],
    "s": "  Hello World\u3000 ",
    "abc": "abc",
    "d": {"b": 2, "a": "x", "nested": {"k": [1.5, true, null, "é\n\"\\/\u0001😀"]}, "f": 1e20, "g": 0.1},
    "users": [{"name": "a", "active": true}, {"name": "b", "active": false}, {"name": "c", "active": 1}],
    "msgs": ["one", "two"],
    "x": false
  })";
  const std::vector<std::string> templates = {
      "{{ 1 }} {{ 1.5 }} {{ 2/2 }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ -7 // 2 }} {{ 0.1 + "
      "0.2 }} {{ 1e-5 }} "
      "{{ 3 * 1.0 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 10 / 4 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} "
      "{{ 123456.789 }} "
      "{{ -0.0 }} {{ 1_000 }} {{ 5.5 % 2 }} {{ -5.5 // 2 }}",
      "{{ true }} {{ none }} {{ [1, 'a', none, true, 1.5, {'k': \"v'\"}] }} {{ {'a': [1]} }} {{ "
      "(1, 2)|list }} "
      "{{ ['it\\'s', \"q\\\"\", 'b\\\\s', 'n\\nl'] }} {{ d.nested }}",
      "{{ abc[::-1] }}|{{ 'héllo'|length }}|{{ '你好世界'[1:3] }}|{{ items[-2:] }}|{{ items[::2] "
      "}}|{{ abc[5:] }}|"
      "{{ abc[-1] }}|{{ items[1:-1:2] }}|{{ items[::-2] }}|{{ '你好'[::-1] }}|{{ abc[10] }}|{{ "
      "items[9] }}",
      "{% for x in items %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ "
      "loop.revindex0 }}/"
      "{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.previtem }}/{{ loop.nextitem "
      "}};{% endfor %}",
      "{% for x in items if x > 1 %}{{ x }}{{ ',' if not loop.last }}{% else %}none{% endfor %}|"
      "{% for x in [] %}a{% else %}empty{% endfor %}|{% for x in items if x > 9 %}a{% else "
      "%}filtered{% endfor %}",
      "{% for x in items %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% "
      "endif %}{{ x }}"
      "{% endfor %}|{% for a in [1, 2] %}{% for b in [1, 2] %}{% if b == 2 %}{% break %}{% endif "
      "%}{{ a }}{{ b }}"
      "{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}",
      "{% set ns = namespace(n=0, s='') %}{% for x in items %}{% set ns.n = ns.n + x %}{% set ns.s "
      "= ns.s ~ x %}"
      "{% endfor %}{{ ns.n }} {{ ns.s }}",
      "{% set x = 1 %}{% for i in items %}[{{ x }}]{% set x = i %}[{{ x }}]{% endfor %}{{ x }}"
      "{% if true %}{% set y = 5 %}{% endif %}{{ y }}",
      "  {% if true %}\n  yes\n  {% endif %}\n  {%- if true -%}  tight  {%- endif -%}  \n{# "
      "comment #}\n"
      "  {#- c -#}  end\n   {% for m in msgs %}\n    {{ m }}\n   {% endfor %}\ndone\n",
      "{%+ if true %}plus{% endif +%}\nX\n    {{ 'var' }}\n\t{% if true %}tab{% endif %}\n a {% if "
      "true %}mid{% endif %}\n",
      "line1\n{% for m in msgs %}\n  {{ m }}\n{% endfor %}\nend\n{% for m in msgs -%}\n  {{ m "
      "}}\n{%- endfor %}"
      "\n{{- ' lead' -}}   \n  {{- 'x' }}\n",
      "{{ s|trim }}|{{ s|upper }}|{{ s|lower }}|{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() "
      "}}|{{ s.strip(' H') }}|"
      "{{ s.split() }}|{{ s.split('l') }}|{{ s.split('l', 1) }}|{{ s|title }}|{{ s|capitalize }}|"
      "{{ s|replace('l', 'L') }}|{{ s.replace('l', 'L', 1) }}|{{ s|trim('  H') }}|{{ s.split(none, "
      "1) }}",
      "{{ abc.startswith('a') }}{{ abc.endswith('c') }}{{ abc.startswith(('x', 'ab')) }}{{ 'b' in "
      "abc }}"
      "{{ 'z' not in abc }}{{ abc.find('c') }}{{ abc.count('b') }}{{ abc.upper() }}{{ "
      "'A-B'.lower() }}"
      "{{ '-'.join(['a', 'b']) }}{{ 'a\\nb'.splitlines() }}{{ 'x1'.isdigit() }}{{ '12'.isdigit() "
      "}}",
      "{{ d|tojson }}\n{{ d|tojson(indent=2) }}\n{{ d|tojson(sort_keys=true) }}\n{{ "
      "d|tojson(separators=(',', ':')) }}"
      "\n{{ d|tojson(ensure_ascii=true) }}\n{{ items|tojson(indent=4) }}\n{{ []|tojson(indent=2) "
      "}}{{ {}|tojson }}"
      "{{ 'x'|tojson }}{{ none|tojson }}{{ 2.0|tojson }}",
      "{{ items|join(', ') }}|{{ items|first }}|{{ items|last }}|{{ items|length }}|{{ items|count "
      "}}|"
      "{{ items|reverse|list }}|{{ items|sort(reverse=true) }}|{{ items|max }}|{{ items|min }}|{{ "
      "items|sum }}|"
      "{{ items|map('string')|join }}|{{ items|select('odd')|list }}|{{ items|reject('odd')|list "
      "}}|"
      "{{ items|unique|list }}|{{ items|select('gt', 2)|list }}|{{ msgs|join }}|{{ "
      "msgs|map('upper')|list }}",
      "{{ users|selectattr('active')|map(attribute='name')|join(',') }}|"
      "{{ users|rejectattr('active')|map(attribute='name')|list }}|"
      "{{ users|selectattr('name', 'equalto', 'b')|list|length }}|{{ "
      "users|map(attribute='missing', default='?')|list }}|"
      "{{ users|sort(attribute='name', reverse=true)|map(attribute='name')|join }}|{{ "
      "users|join(',', attribute='name') }}",
      "{{ d|items|list }}|{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{{ d.keys()|list "
      "}}|"
      "{{ d.values()|list|length }}|{{ d.get('a') }}|{{ d.get('zz', 'dflt') }}|{{ d['a'] }}|{{ d.a "
      "}}|"
      "{{ d|dictsort|map(attribute=0)|list }}|{% for k in d %}{{ k }}{% endfor %}|{{ d|list }}",
      "{{ undefined_var }}|{{ undefined_var is defined }}|{{ undefined_var|default('dflt') }}|{{ "
      "''|default('e', true) }}|"
      "{{ undefined_var|length }}|{{ d.missing is defined }}|{{ d.missing }}|{% for x in "
      "undefined_var %}x{% endfor %}|"
      "{{ undefined_var is none }}|{{ none is none }}|{{ undefined_var is undefined }}|{{ "
      "d.missing|default(none) }}|"
      "{{ undefined_var == undefined_var }}|{{ undefined_var ~ 'x' }}|{{ not undefined_var }}|{{ "
      "'a' in undefined_var }}",
      "{{ 1 is number }}{{ 'a' is string }}{{ d is mapping }}{{ items is iterable }}{{ items is "
      "sequence }}"
      "{{ 'a' is iterable }}{{ 5 is integer }}{{ 5.0 is float }}{{ true is boolean }}{{ 3 is odd "
      "}}{{ 4 is even }}"
      "{{ 9 is divisibleby 3 }}{{ 2 is in items }}{{ x is sameas false }}{{ 'abc' is lower }}{{ "
      "'A' is upper }}"
      "{{ false is false }}{{ 5 is gt 3 }}{{ 5 is equalto 5 }}{{ 1 is true }}{{ d is not mapping "
      "}}{{ true is number }}"
      "{{ undefined_var is iterable }}{{ none is string }}{{ range is callable }}{{ 5 is ne 4 }}",
      "{{ 'a' ~ 1 ~ none ~ true ~ 1.0 }}|{{ 'x' if false }}|{{ 'x' if false else 'y' }}|{{ 1 and 2 "
      "}}|{{ 0 or 'z' }}|"
      "{{ not 1 }}|{{ 1 < 2 }}{{ 'a' < 'b' }}{{ 1 == 1.0 }}{{ true == 1 }}{{ [1,2] == [1,2] }}{{ 1 "
      "!= 2 }}|"
      "{{ -items[0] }}|{{ items[0] + items[1] * 2 - 1 }}|{{ (1 + 2) * 3 }}|{{ 'ab' + 'cd' }}|{{ "
      "[1] + [2] }}|"
      "{{ -1|abs }}|{{ not x is defined }}|{{ 1 if x else 2 if true else 3 }}|{{ 2 >= 2 }}{{ 'b' "
      "<= 'a' }}",
      "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ "
      "greet('b', '?') }} "
      "{{ greet(name='c', punct='.') }} {{ greet() }}",
      "{% set block %}\n  captured {{ items|length }}\n{% endset %}[{{ block }}]",
      "{{ range(3)|list }} {{ range(1, 10, 3)|list }} {% for i in range(2) %}{{ i }}{% endfor %} "
      "{{ items[1:]|join('-') }} "
      "{{ items.0 }} {{ range(5, 0, -2)|list }}",
      "{{ 'it\\'s' }} {{ \"say \\\"hi\\\"\" }} {{ 'tab\\there' }} {{ 'a\\\\b' }} {{ 'uni\\u00e9' "
      "}} {{ 'nl\\nx' }} "
      "{{ 'keep\\d' }} {{ 'adj' 'acent' }} {{ '\\x41\\101' }}",
      "{{ 'ß'|upper }} {{ 'ÀÉÎ'|lower }} {{ 'straße title'|title }} {{ 'ΑΒΓ'|lower }} {{ "
      "'привет'|upper }} "
      "{{ 'hello world'|title }} {{ 'o\\'neil'|title }} {{ 'aBC dEF'|capitalize }}",
      "{{ '  a  b  '|wordcount }} {{ 'x'|indent(2) }}{{ 'a\nb\n\nc'|indent(2) }}|{{ "
      "'a\nb'|indent(2, true) }}|"
      "{{ 'a\nb'|indent('> ', blank=true) }}",
      "{% raw %}{{ not parsed }} {% if %}{% endraw %}|{%- raw -%}  x  {%- endraw -%}  |",
      "win\r\nline\r\nend\r\n",
      "{{ 'abc'|list }} {{ d|list|length }} {{ 'x'|string }} {{ 12|string }}{{ [1]|string }} {{ "
      "'3'|int + 1 }} "
      "{{ '2.5'|float }} {{ 'x'|int }} {{ 3.7|int }} {{ 2|float }} {{ 2.5|round }} {{ 3.5|round }} "
      "{{ 1.25|round(1) }} "
      "{{ 2.7|round(0, 'floor') }}",
      "{% if d %}{{ d|length }}{% endif %}{% if [] %}no{% elif 0 %}no{% else %}else{% endif %}"
      "{% if none %}n{% elif '' %}e{% elif 'x' %}x{% endif %}",
      "{{ d.nested.k[0] }} {{ d['nested']['k'][-1] }} {{ d.nested.k|length }} {{ users[1].name }} "
      "{{ users.1['active'] }}",
      "{% generation %}gen {{ 1 }}{% endgeneration %}",
      "{{ ['a\\u200bb', 'nb\\xa0sp', 'é', 'x\\u3000', 'bom\\ufeff', '\\x7f', 'emoji😀', '\\x85'] }}",
      "{%- for m in msgs %}\n    {%- if loop.first %}\n        {{- m }}\n    {%- else %}\n        "
      "{{- ', ' + m }}\n"
      "    {%- endif %}\n{%- endfor %}\n",
      // Both must fail:
      "{{ raise_exception('boom') }}",
      "{{ undefined_var.attr }}",
      "{{ d.missing.attr }}",
      "{{ 'a' + 1 }}",
      "{{ undefined_var + 'a' }}",
      "{{ 1 / 0 }}",
      "{{ none.x }}{{ undefined_var() }}",
      "{% for a, b in items %}{% endfor %}",
      "{{ 'a' < 1 }}",
      "{{ none|length }}",
      "{{ d|items|tojson }}{{ range(200000)|length }}",
  };
  auto ctx = jinja::FromJson(data);
  REQUIRE(ctx.ok());
  std::vector<ReferenceCase> cases;
  std::vector<absl::StatusOr<std::string>> ours;
  for (const std::string& t : templates) {
    cases.push_back({t, ctx->dict()});
    auto tmpl = jinja::Template::Parse(t);
    ours.push_back(tmpl.ok() ? tmpl->Render(ctx->dict())
                             : absl::StatusOr<std::string>(tmpl.status()));
  }
  auto refs = testing::RenderWithJinja2(cases);
  if (!refs) return;
  for (size_t i = 0; i < cases.size(); ++i)
    ExpectSame("template: " + templates[i], ours[i], (*refs)[i]);
}

}  // namespace
}  // namespace yuan

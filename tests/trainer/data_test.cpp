// Training data (trainer/data.h): chat JSONL and plain text into examples,
// packing, shuffling, the eval split.
//
// Independent checks:
//   * the chat text RenderChat gives equals Python jinja2's rendering of the
//     same template (tests/trainer/render_chat_jinja2.py, HF's
//     apply_chat_template settings), and the assistant text data.cpp finds
//     (by rendering prefixes of the conversation) equals the text of the
//     template's {% generation %} blocks as transformers'
//     return_assistant_tokens_mask finds it; skipped with a WARN when
//     /usr/bin/python3 cannot import jinja2 (YUAN_REFERENCE_PYTHON overrides);
//   * without Python: decoding each run of target tokens gives exactly the
//     assistant content and the end of turn the template writes (written out
//     by hand per template), and the tokens equal a tokenization of the whole
//     rendered text (what inference sees);
//   * every bad line gives "FILE:LINE: reason"; skip_bad counts them;
//   * FNV-1a 64 against the published test vector;
//   * packing: a hand-worked first-fit layout, and invariants on random
//     input (every example exactly once, targets, documents, padding);
//   * shuffling: permutations, stable, different per epoch and seed, about
//     uniform; the eval split disjoint, complete and stable.
#include "trainer/data.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "runtime/chat/chat_template.h"
#include "runtime/model/gguf.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/common/test_support.h"

// The cases name only the options they change (designated initializers).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace yuan::train {
namespace {

using Json = nlohmann::json;

std::string Python() { return yuan::testing::ReferencePython(); }

bool HaveJinja2() { return yuan::testing::PythonCanImport("jinja2"); }

using yuan::testing::RunCommand;

std::string WriteFile(const std::string& name, const std::string& bytes) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  return path;
}

// A tokenizer and the GGUF it came from (the GGUF supplies the template).
struct Vocab {
  std::vector<uint8_t> bytes;
  std::unique_ptr<GgufFile> gguf;
  std::unique_ptr<Tokenizer> tok;
};

// The random test vocabulary (SentencePiece: <unk> <s> </s>, byte tokens, a
// few word pieces), optionally with a tokenizer.chat_template.
Vocab RandomVocab(const std::string& chat_template = "") {
  Vocab v;
  GgufWriter w;
  testing::AddRandomModelMetadata(testing::RandomModelSpec{}, &w);
  if (!chat_template.empty()) w.AddString("tokenizer.chat_template", chat_template);
  v.bytes = w.Serialize();
  auto gguf = GgufFile::FromBuffer(v.bytes.data(), v.bytes.size());
  REQUIRE(gguf.ok());
  v.gguf = *std::move(gguf);
  auto tok = Tokenizer::FromGguf(*v.gguf);
  REQUIRE(tok.ok());
  v.tok = *std::move(tok);
  return v;
}

// stories260K (../shared/models), or nullopt-like empty Vocab when absent.
bool StoriesVocab(Vocab* v) {
  const std::string path = testing::SharedModel("stories260K.gguf");
  if (path.empty()) return false;
  auto gguf = GgufFile::Open(path);
  REQUIRE(gguf.ok());
  v->gguf = *std::move(gguf);
  auto tok = Tokenizer::FromGguf(*v->gguf);
  REQUIRE(tok.ok());
  v->tok = *std::move(tok);
  return true;
}

// ChatML written with HF's {% generation %} blocks around what an assistant
// turn adds (content and end of turn); renders the same text as the
// built-in "chatml".
const char* const kChatmlGen =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}"
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] + '<|im_end|>' + '\\n' }}"
    "{% endgeneration %}{% else %}{{ m['content'] + '<|im_end|>' + '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// A Llama-2-like template: writes bos_token itself (so no second BOS may be
// added) and ends an answer with eos_token, a control token.
const char* const kLlama2Gen =
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ '<<SYS>>\\n' + m['content'] + '\\n<</SYS>>\\n\\n' }}"
    "{% elif m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}"
    "{% elif m['role'] == 'assistant' %}{% generation %}{{ ' ' + m['content'] + ' ' + eos_token }}"
    "{% endgeneration %}{% else %}{{ '[TOOL] ' + m['content'] + ' [/TOOL]' }}{% endif %}"
    "{% endfor %}";

struct Msg {
  std::string role, content;
  int weight = -1;  // -1: not written
};
using Conv = std::vector<Msg>;

std::vector<Conv> TestConversations() {
  return {
      {{"system", "You are terse."}, {"user", "Say hi."}, {"assistant", "hi"}},
      {{"user", "one"},
       {"assistant", "the answer and then some"},
       {"user", "two"},
       {"assistant", "an ant at a tea"}},
      {{"user", "a"},
       {"assistant", "not this one", 0},
       {"user", "b"},
       {"assistant", "this one", 1}},
      {{"user", "weather?"},
       {"assistant", "calling the tool"},
       {"tool", "{\"temp\": 21}"},
       {"assistant", "It is 21 degrees."}},
      {{"user",
        "Gr\xC3\xBC\xC3\x9F"
        "e, \xE4\xB8\x96\xE7\x95\x8C \xE2\x9C\x93"},
       {"assistant", "caf\xC3\xA9 \xE2\x80\x94 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x99\x82"}},
  };
}

std::string JsonlLine(const Conv& c) {
  Json msgs = Json::array();
  for (const Msg& m : c) {
    Json j = {{"role", m.role}, {"content", m.content}};
    if (m.weight >= 0) j["weight"] = m.weight;
    msgs.push_back(j);
  }
  return Json{{"messages", msgs}}.dump();
}

std::string Jsonl(const std::vector<Conv>& convs) {
  std::string s;
  for (const Conv& c : convs) s += JsonlLine(c) + "\n";
  return s;
}

std::vector<ChatMessage> ToChat(const Conv& c) {
  std::vector<ChatMessage> out;
  for (const Msg& m : c) out.push_back({m.role, m.content});
  return out;
}

// The decoded text of each maximal run of target tokens.
std::vector<std::string> TargetRuns(const Tokenizer& tok, const Example& ex) {
  std::vector<std::string> runs;
  std::vector<int32_t> run;
  for (size_t i = 0; i <= ex.tokens.size(); ++i) {
    if (i < ex.tokens.size() && ex.loss_mask[i]) {
      run.push_back(ex.tokens[i]);
    } else if (!run.empty()) {
      runs.push_back(tok.Decode(run, /*render_special=*/true));
      run.clear();
    }
  }
  return runs;
}

// Python jinja2's text and generation spans for each conversation (full
// rendering, no generation prompt), or false when Python is unavailable.
bool Jinja2Reference(const std::string& source, const std::vector<Conv>& convs,
                     const std::string& bos, const std::string& eos, Json* out) {
  if (!HaveJinja2()) return false;
  Json cases = Json::array();
  for (const Conv& c : convs) {
    Json msgs = Json::array();
    for (const Msg& m : c) msgs.push_back(Json{{"role", m.role}, {"content", m.content}});
    cases.push_back(Json{{"template", source},
                         {"messages", msgs},
                         {"add_generation_prompt", false},
                         {"bos_token", bos},
                         {"eos_token", eos}});
  }
  const std::string in = WriteFile("jinja2-cases.json", cases.dump());
  const std::string cmd =
      Python() + " " + YUAN_SOURCE_DIR + "/tests/trainer/render_chat_jinja2.py " + in;
  *out = Json::parse(RunCommand(cmd), nullptr, /*allow_exceptions=*/false);
  REQUIRE(out->is_array());
  REQUIRE(out->size() == convs.size());
  return true;
}

// The chat checks shared by every vocabulary / template pairing.
// `end_of_turn(content)` is what the template writes for an assistant turn,
// worked out by hand from the template source.
void CheckChat(const Vocab& v, const std::string& source, const DataOptions& options,
               const std::function<std::string(const std::string&)>& assistant_turn,
               const std::string& label) {
  INFO(label);
  const Tokenizer& tok = *v.tok;
  const std::vector<Conv> convs = TestConversations();
  const std::string path = WriteFile(label + ".jsonl", Jsonl(convs));
  auto ds = LoadDataset(path, tok, *v.gguf, options);
  REQUIRE(ds.ok());
  REQUIRE(ds->train.size() == convs.size());
  CHECK(ds->eval.empty());
  CHECK(ds->n_skipped == 0);

  ChatExtras extras;
  extras.bos_token = std::string(tok.Text(tok.bos()));
  extras.eos_token = std::string(tok.Text(tok.eos()));
  Json ref;
  const bool have_ref = Jinja2Reference(source, convs, extras.bos_token, extras.eos_token, &ref);
  if (!have_ref) {
    WARN("jinja2 comparison skipped: " << Python() << " cannot import jinja2 "
                                       << "(apt-get install python3-jinja2)");
  }

  for (size_t k = 0; k < convs.size(); ++k) {
    INFO("conversation " << k);
    const Example& ex = ds->train[k];
    CHECK(ex.line == static_cast<int64_t>(k) + 1);
    REQUIRE(ex.loss_mask.size() == ex.tokens.size());
    CHECK(ex.loss_mask[0] == 0);

    std::vector<std::string> expected;
    for (const Msg& m : convs[k]) {
      if (m.role == "assistant" && m.weight != 0) expected.push_back(assistant_turn(m.content));
    }
    CHECK(TargetRuns(tok, ex) == expected);

    // The tokens inference would see for the same text: one BOS, whether
    // the vocabulary or the template writes it.
    auto whole = RenderChat(source, ToChat(convs[k]), false, extras);
    REQUIRE(whole.ok());
    EncodeOptions o;
    o.parse_special = true;
    o.add_bos = !whole->starts_with(extras.bos_token);
    CHECK(ex.tokens == tok.Encode(*whole, o));
    CHECK(ex.tokens[0] == tok.bos());
    CHECK(std::count(ex.tokens.begin(), ex.tokens.end(), tok.bos()) == 1);

    if (have_ref) {
      CHECK(ref[k]["text"].get<std::string>() == *whole);
      std::vector<std::string> spans;
      size_t a = 0;
      for (const Msg& m : convs[k]) {
        if (m.role != "assistant") continue;
        REQUIRE(a < ref[k]["spans"].size());
        if (m.weight != 0) spans.push_back(ref[k]["spans"][a].get<std::string>());
        ++a;
      }
      CHECK(a == ref[k]["spans"].size());
      CHECK(TargetRuns(tok, ex) == spans);
    }
  }
}

std::string ChatmlTurn(const std::string& c) { return c + "<|im_end|>\n"; }

TEST_CASE("chat data: only assistant turns are targets (random vocabulary)", "[data]") {
  // No template in the file: the built-in chatml, which kChatmlGen matches.
  const Vocab plain = RandomVocab();
  CheckChat(plain, kChatmlGen, DataOptions{.seq_len = 1024}, ChatmlTurn, "random-chatml-default");
  // The file's own template.
  const Vocab llama2 = RandomVocab(kLlama2Gen);
  CheckChat(
      llama2, kLlama2Gen, DataOptions{.seq_len = 1024},
      [](const std::string& c) { return " " + c + " </s>"; }, "random-llama2");
  // DataOptions.chat_template overrides the file's.
  CheckChat(llama2, kChatmlGen, DataOptions{.seq_len = 1024, .chat_template = kChatmlGen},
            ChatmlTurn, "random-override-source");
  CheckChat(llama2, kChatmlGen, DataOptions{.seq_len = 1024, .chat_template = "chatml"}, ChatmlTurn,
            "random-override-name");
}

TEST_CASE("chat data: only assistant turns are targets (stories260K)", "[data]") {
  Vocab v;
  if (!StoriesVocab(&v)) return;
  CheckChat(v, kChatmlGen, DataOptions{.seq_len = 1024, .chat_template = kChatmlGen}, ChatmlTurn,
            "stories-chatml");
  CheckChat(
      v, kLlama2Gen, DataOptions{.seq_len = 1024, .chat_template = kLlama2Gen},
      [](const std::string& c) { return " " + c + " </s>"; }, "stories-llama2");
}

// One good line, a blank line, then `bad` on line 3.
void ExpectLineError(const Vocab& v, const std::string& bad, const std::string& reason,
                     DataOptions options = DataOptions{}) {
  INFO(bad);
  static int n = 0;
  const std::string path =
      WriteFile("bad-" + std::to_string(n++) + ".jsonl",
                JsonlLine({{"user", "q"}, {"assistant", "a"}}) + "\n\n" + bad + "\n");
  auto ds = LoadDataset(path, *v.tok, *v.gguf, options);
  REQUIRE_FALSE(ds.ok());
  CHECK(ds.status().code() == absl::StatusCode::kInvalidArgument);
  const std::string msg(ds.status().message());
  INFO(msg);
  CHECK(msg.find(path + ":3: ") == 0);
  CHECK(msg.find(reason) != std::string::npos);
  // skip_bad: the line is counted and left out, the good one stays.
  options.skip_bad = true;
  auto skipped = LoadDataset(path, *v.tok, *v.gguf, options);
  REQUIRE(skipped.ok());
  CHECK(skipped->n_skipped == 1);
  REQUIRE(skipped->train.size() == 1);
  CHECK(skipped->train[0].line == 1);
}

std::vector<std::pair<std::string, std::string>> BadLines() {
  const std::string ok_user = R"({"role": "user", "content": "q"})";
  return {
      {R"({"messages": [)", "not valid JSON"},
      // Numbers beyond a double (found by fuzz/trainer_data_fuzz.cpp).
      {R"({"messages": 1e400})", "not valid JSON"},
      {R"({"messages": [{"role": "assistant", "content": "a", "weight": 1e400}]})",
       "not valid JSON"},
      {R"([1, 2])", "not a JSON object"},
      {R"({"prompt": "x"})", "no \"messages\""},
      {R"({"messages": {}})", "not an array"},
      {R"({"messages": []})", "\"messages\" is empty"},
      {R"({"messages": ["hi"]})", "message 1 is not an object"},
      {R"({"messages": [{"content": "x"}]})", "no \"role\""},
      {R"({"messages": [)" + ok_user + R"(, {"role": "robot", "content": "x"}]})",
       "unknown role \"robot\""},
      {R"({"messages": [)" + ok_user + R"(, {"role": "assistant", "content": 5}]})",
       "content is not a string"},
      {R"({"messages": [)" + ok_user + R"(, {"role": "assistant", "content": null}]})",
       "content is not a string"},
      {R"({"messages": [)" + ok_user + R"(, {"role": "assistant"}]})", "no \"content\""},
      {R"({"messages": [)" + ok_user + R"(]})", "no assistant message"},
      {R"({"messages": [)" + ok_user + R"(, {"role": "assistant", "content": "a", "weight": 0}]})",
       "no assistant message"},
      {R"({"messages": [)" + ok_user +
           R"(, {"role": "assistant", "content": "a", "weight": 0.5}]})",
       "\"weight\" must be 0 or 1"},
      {R"({"messages": [)" + ok_user + R"(, {"role": "assistant", "content": "a)" +
           std::string(300, 'x') + R"("}]})",
       "longer than seq_len 256"},
      {R"({"messages": [{"role": "user", "content": "bad )" + std::string("\xFF\xFE") + R"("}]})",
       "invalid UTF-8"},
  };
}

TEST_CASE("chat data: each bad line is FILE:LINE: reason, or skipped and counted", "[data]") {
  const Vocab v = RandomVocab();
  for (const auto& [line, reason] : BadLines()) ExpectLineError(v, line, reason);

  // A template that raises for this conversation, and one whose renderings
  // of a shorter conversation are not prefixes of the longer one's.
  const std::string raising =
      "{% for m in messages %}{% if m['content'] == 'boom' %}{{ raise_exception('no booms here') }}"
      "{% endif %}{{ m['content'] }}{% endfor %}";
  ExpectLineError(v, JsonlLine({{"user", "boom"}, {"assistant", "a"}}), "no booms here",
                  DataOptions{.chat_template = raising});
  const std::string counting =
      "{% if messages|length > 2 %}{{ messages|length }}{% endif %}"
      "{% for m in messages %}{{ m['content'] }}{% endfor %}";
  ExpectLineError(v, JsonlLine({{"system", "s"}, {"user", "q"}, {"assistant", "a"}}),
                  "prefix-stable", DataOptions{.chat_template = counting});

  // All of them in one file: every bad line counted, the good ones kept in
  // order with their line numbers.
  std::string all = JsonlLine({{"user", "q"}, {"assistant", "a"}}) + "\n";
  for (const auto& [line, reason] : BadLines()) all += line + "\n";
  all += "\n" + JsonlLine({{"user", "q2"}, {"assistant", "a2"}}) + "\n";
  const std::string path = WriteFile("all-bad.jsonl", all);
  auto strict = LoadDataset(path, *v.tok, *v.gguf, DataOptions{});
  REQUIRE_FALSE(strict.ok());
  CHECK(std::string(strict.status().message()).find(path + ":2: not valid JSON") == 0);
  auto ds = LoadDataset(path, *v.tok, *v.gguf, DataOptions{.skip_bad = true});
  REQUIRE(ds.ok());
  CHECK(ds->n_skipped == static_cast<int64_t>(BadLines().size()));
  REQUIRE(ds->train.size() == 2);
  CHECK(ds->train[0].line == 1);
  CHECK(ds->train[1].line == static_cast<int64_t>(BadLines().size()) + 3);

  // Nothing left: "no examples", naming the first reason.
  std::string only_bad;
  for (const auto& [line, reason] : BadLines()) only_bad += line + "\n";
  const std::string bad_path = WriteFile("only-bad.jsonl", only_bad);
  auto none = LoadDataset(bad_path, *v.tok, *v.gguf, DataOptions{.skip_bad = true});
  REQUIRE_FALSE(none.ok());
  CHECK(std::string(none.status().message()).find("no examples") != std::string::npos);
  CHECK(std::string(none.status().message()).find(bad_path + ":1: not valid JSON") !=
        std::string::npos);

  // An unknown built-in template name fails before any line is read.
  auto unknown =
      LoadDataset(path, *v.tok, *v.gguf, DataOptions{.chat_template = "no-such-template"});
  REQUIRE_FALSE(unknown.ok());
  CHECK(std::string(unknown.status().message()).find("no-such-template") != std::string::npos);
}

TEST_CASE("chat data: a line's tools list reaches the template", "[data]") {
  const Vocab v = RandomVocab();
  const std::string tmpl =
      "{% if tools %}{{ tools[0]['function']['name'] }}|{% endif %}"
      "{% for m in messages %}{{ m['content'] }}{% endfor %}";
  const std::string path = WriteFile(
      "tools.jsonl",
      R"({"tools": [{"type": "function", "function": {"name": "get_weather"}}], "messages": )"
      R"([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})"
      "\n" +
          JsonlLine({{"user", "q"}, {"assistant", "a"}}) + "\n");
  auto ds = LoadDataset(path, *v.tok, *v.gguf, DataOptions{.chat_template = tmpl});
  REQUIRE(ds.ok());
  REQUIRE(ds->train.size() == 2);
  CHECK(v.tok->Decode(ds->train[0].tokens) == "get_weather|qa");
  CHECK(TargetRuns(*v.tok, ds->train[0]) == std::vector<std::string>{"a"});
  CHECK(v.tok->Decode(ds->train[1].tokens) == "qa");
}

// ---------------------------------------------------------------------------
// Built-in templates, and the ones that are not prefix-stable

// Python jinja2's rendering of each (conversation, add_generation_prompt)
// case with `source` (no enable_thinking, as data.cpp and inference by
// default), or false when Python is unavailable.
bool Jinja2Texts(const std::string& source, const std::vector<std::pair<Conv, bool>>& cases,
                 const std::string& bos, const std::string& eos, std::vector<std::string>* out) {
  if (!HaveJinja2()) return false;
  Json in = Json::array();
  for (const auto& [c, gen] : cases) {
    Json msgs = Json::array();
    for (const Msg& m : c) msgs.push_back(Json{{"role", m.role}, {"content", m.content}});
    in.push_back(Json{{"template", source},
                      {"messages", msgs},
                      {"add_generation_prompt", gen},
                      {"bos_token", bos},
                      {"eos_token", eos}});
  }
  const std::string path = WriteFile("jinja2-texts.json", in.dump());
  const Json res = Json::parse(
      RunCommand(Python() + " " + YUAN_SOURCE_DIR + "/tests/trainer/render_chat_jinja2.py " + path),
      nullptr, /*allow_exceptions=*/false);
  REQUIRE(res.is_array());
  REQUIRE(res.size() == cases.size());
  out->clear();
  for (const Json& r : res) out->push_back(r["text"].get<std::string>());
  return true;
}

ChatExtras VocabExtras(const Tokenizer& tok) {
  ChatExtras extras;
  extras.bos_token = std::string(tok.Text(tok.bos()));
  extras.eos_token = std::string(tok.Text(tok.eos()));
  return extras;
}

// What inference feeds the model for `text`: one BOS, whether the
// vocabulary or the template writes it.
std::vector<int32_t> InferenceTokens(const Tokenizer& tok, const std::string& text) {
  EncodeOptions o;
  o.parse_special = true;
  o.add_bos = !text.starts_with(std::string(tok.Text(tok.bos())));
  return tok.Encode(text, o);
}

// Qwen3 writes an assistant turn as inference generates it when it is the
// last one: an empty think block unless the content brings its own
// (worked out by hand from the template, thinking on, its default).
std::string Qwen3Turn(const std::string& c) {
  const std::string end = "<|im_end|>\n";
  return c.find("</think>") != std::string::npos ? c + end : "<think>\n\n</think>\n\n" + c + end;
}

// Multi-turn conversations that Qwen3 does not render prefix-stably (earlier
// turns lose their think block, empty or not).
std::vector<Conv> MultiTurnConversations() {
  return {
      {{"system", "You are terse."},
       {"user", "one"},
       {"assistant", "the answer and then some"},
       {"user", "two"},
       {"assistant", "an ant at a tea"},
       {"user", "three"},
       {"assistant", "the end"}},
      {{"user", "a"},
       {"assistant", "learn this"},
       {"user", "b"},
       {"assistant", "not this one", 0},
       {"user", "c"},
       {"assistant", "and this one", 1}},
      {{"user", "hi?"},
       {"assistant", "<think>\nI should greet.\n</think>\n\nHello!"},
       {"user", "bye?"},
       {"assistant", "Bye."}},
      {{"user", "weather?"},
       {"assistant", "calling the tool"},
       {"tool", "{\"temp\": 21}"},
       {"assistant", "It is 21 degrees."}},
  };
}

Conv Head(const Conv& c, size_t n) { return Conv(c.begin(), c.begin() + n); }

// A line per conversation under a template that is not prefix-stable for
// them: one example per assistant message in the loss, each the
// conversation through that message as inference renders it (compared
// with Python jinja2), its only targets that turn (`turn`, by hand).
void CheckPerTurn(const Vocab& v, const std::string& name, const std::vector<Conv>& convs,
                  const std::function<std::string(const std::string&)>& turn) {
  INFO(name);
  const Tokenizer& tok = *v.tok;
  auto source = BuiltinChatTemplate(name);
  REQUIRE(source.ok());
  const ChatExtras extras = VocabExtras(tok);
  struct Want {
    size_t conv, message;
  };
  std::vector<Want> want;
  std::vector<std::pair<Conv, bool>> cases;  // per example: through it, before it + prompt
  for (size_t k = 0; k < convs.size(); ++k) {
    // The test is only worth something if the whole rendering is not
    // prefix-stable: some turn's rendering is not a prefix of the whole.
    auto whole = RenderChat(*source, ToChat(convs[k]), false, extras);
    REQUIRE(whole.ok());
    bool unstable = false;
    for (size_t i = 0; i < convs[k].size(); ++i) {
      if (convs[k][i].role != "assistant") continue;
      auto through = RenderChat(*source, ToChat(Head(convs[k], i + 1)), false, extras);
      REQUIRE(through.ok());
      unstable = unstable || !whole->starts_with(*through);
      if (convs[k][i].weight == 0) continue;
      want.push_back({k, i});
      cases.push_back({Head(convs[k], i + 1), false});
      cases.push_back({Head(convs[k], i), true});
    }
    INFO("conversation " << k);
    CHECK(unstable);
  }
  std::vector<std::string> ref;
  const bool have_ref = Jinja2Texts(*source, cases, extras.bos_token, extras.eos_token, &ref);
  if (!have_ref) WARN("jinja2 comparison skipped: " << Python() << " cannot import jinja2");

  const std::string path = WriteFile("per-turn-" + name + ".jsonl", Jsonl(convs));
  auto ds = LoadDataset(path, tok, *v.gguf, DataOptions{.seq_len = 4096, .chat_template = name});
  REQUIRE(ds.ok());
  CHECK(ds->n_skipped == 0);
  REQUIRE(ds->train.size() == want.size());
  for (size_t e = 0; e < want.size(); ++e) {
    const Conv& c = convs[want[e].conv];
    const size_t i = want[e].message;
    INFO("conversation " << want[e].conv << ", message " << i);
    const Example& ex = ds->train[e];
    CHECK(ex.line == static_cast<int64_t>(want[e].conv) + 1);
    REQUIRE(ex.loss_mask.size() == ex.tokens.size());
    CHECK(TargetRuns(tok, ex) == std::vector<std::string>{turn(c[i].content)});
    // The turn is the example's end: the model sees nothing after it.
    CHECK(ex.loss_mask.back() == 1);
    auto through = RenderChat(*source, ToChat(Head(c, i + 1)), false, extras);
    REQUIRE(through.ok());
    CHECK(ex.tokens == InferenceTokens(tok, *through));
    if (have_ref) {
      const std::string& full = ref[2 * e];
      const std::string& prompt = ref[2 * e + 1];
      CHECK(full == *through);
      CHECK(ex.tokens == InferenceTokens(tok, full));
      REQUIRE(full.starts_with(prompt));
      CHECK(TargetRuns(tok, ex) == std::vector<std::string>{full.substr(prompt.size())});
    }
  }
}

TEST_CASE("chat data: Qwen3 (not prefix-stable) gives one example per assistant turn", "[data]") {
  const Vocab v = RandomVocab();
  CheckPerTurn(v, "qwen3", MultiTurnConversations(), Qwen3Turn);
  Vocab stories;
  if (StoriesVocab(&stories)) CheckPerTurn(stories, "qwen3", MultiTurnConversations(), Qwen3Turn);

  // A single turn, or only the last one in the loss, renders prefix-stably:
  // the one example of the usual path, the same text.
  const std::vector<Conv> single = {
      {{"user", "q"}, {"assistant", "a"}},
      {{"user", "a"}, {"assistant", "x", 0}, {"user", "b"}, {"assistant", "y"}}};
  auto ds = LoadDataset(WriteFile("qwen3-single.jsonl", Jsonl(single)), *v.tok, *v.gguf,
                        DataOptions{.seq_len = 1024, .chat_template = "qwen3"});
  REQUIRE(ds.ok());
  REQUIRE(ds->train.size() == 2);
  CHECK(TargetRuns(*v.tok, ds->train[0]) == std::vector<std::string>{Qwen3Turn("a")});
  CHECK(TargetRuns(*v.tok, ds->train[1]) == std::vector<std::string>{Qwen3Turn("y")});
}

TEST_CASE("chat data: per-turn examples each fit seq_len, or that one is skipped", "[data]") {
  const Vocab v = RandomVocab();
  const Conv conv = {{"user", "one"},   {"assistant", "short"},
                     {"user", "two"},   {"assistant", "brief"},
                     {"user", "three"}, {"assistant", std::string(400, 'x')}};
  const std::string path = WriteFile("qwen3-long.jsonl", Jsonl({conv}) + Jsonl({conv}));
  auto all =
      LoadDataset(path, *v.tok, *v.gguf, DataOptions{.seq_len = 4096, .chat_template = "qwen3"});
  REQUIRE(all.ok());
  REQUIRE(all->train.size() == 6);
  const int64_t fits =
      static_cast<int64_t>(std::max(all->train[0].tokens.size(), all->train[1].tokens.size()));
  REQUIRE(static_cast<int64_t>(all->train[2].tokens.size()) > fits);

  auto strict =
      LoadDataset(path, *v.tok, *v.gguf, DataOptions{.seq_len = fits, .chat_template = "qwen3"});
  REQUIRE_FALSE(strict.ok());
  const std::string msg(strict.status().message());
  INFO(msg);
  CHECK(msg.find(path + ":1: the example for assistant message 6 is ") == 0);
  CHECK(msg.find("longer than seq_len " + std::to_string(fits)) != std::string::npos);

  auto lenient =
      LoadDataset(path, *v.tok, *v.gguf,
                  DataOptions{.seq_len = fits, .skip_bad = true, .chat_template = "qwen3"});
  REQUIRE(lenient.ok());
  CHECK(lenient->n_skipped == 2);
  REQUIRE(lenient->train.size() == 4);
  for (size_t k = 0; k < 4; ++k) {
    CHECK(lenient->train[k].line == static_cast<int64_t>(k / 2) + 1);
    CHECK(lenient->train[k].tokens == all->train[(k / 2) * 3 + k % 2].tokens);
  }
}

// The built-ins other than Qwen3 render these conversations prefix-stably:
// one example per line, every assistant turn in it a target run.
TEST_CASE("chat data: the prefix-stable built-ins keep one example per line", "[data]") {
  const Vocab v = RandomVocab();
  const Tokenizer& tok = *v.tok;
  const ChatExtras extras = VocabExtras(tok);
  std::vector<Conv> convs = TestConversations();
  for (const Conv& c : MultiTurnConversations()) convs.push_back(c);
  const std::map<std::string, std::function<std::string(const std::string&)>> turns = {
      {"chatml", ChatmlTurn},
      {"llama3", [](const std::string& c) { return c + "<|eot_id|>"; }},
      // "<｜end▁of▁sentence｜>", but SentencePiece writes a space as "▁", so
      // the ones in the text decode as spaces.
      {"deepseek_v3",
       [](const std::string& c) {
         const std::string bar = "\xEF\xBD\x9C";  // U+FF5C, the full-width bar
         return c + "<" + bar + "end of sentence" + bar + ">";
       }},
      {"hunyuan", [&](const std::string& c) { return c + extras.eos_token; }},
  };
  for (const std::string& name : BuiltinChatTemplateNames()) {
    if (name == "qwen3") continue;
    INFO(name);
    REQUIRE(turns.count(name) == 1);  // a new built-in: say what it does here
    auto source = BuiltinChatTemplate(name);
    REQUIRE(source.ok());
    auto ds = LoadDataset(WriteFile("stable-" + name + ".jsonl", Jsonl(convs)), tok, *v.gguf,
                          DataOptions{.seq_len = 4096, .chat_template = name});
    REQUIRE(ds.ok());
    REQUIRE(ds->train.size() == convs.size());
    std::vector<std::pair<Conv, bool>> cases;
    for (const Conv& c : convs) cases.push_back({c, false});
    std::vector<std::string> ref;
    // Llama 3 writes today's date (strftime_now), which jinja2 lacks.
    const bool have_ref =
        name != "llama3" && Jinja2Texts(*source, cases, extras.bos_token, extras.eos_token, &ref);
    if (!have_ref && name != "llama3") {
      WARN("jinja2 comparison skipped: " << Python() << " cannot import jinja2");
    }
    for (size_t k = 0; k < convs.size(); ++k) {
      INFO("conversation " << k);
      std::vector<std::string> expected;
      for (const Msg& m : convs[k]) {
        if (m.role == "assistant" && m.weight != 0) expected.push_back(turns.at(name)(m.content));
      }
      CHECK(TargetRuns(tok, ds->train[k]) == expected);
      auto whole = RenderChat(*source, ToChat(convs[k]), false, extras);
      REQUIRE(whole.ok());
      CHECK(ds->train[k].tokens == InferenceTokens(tok, *whole));
      if (have_ref) CHECK(ref[k] == *whole);
    }
  }
}

// Hunyuan keeps only the <answer> of an earlier turn, so a conversation whose
// answers carry one is not prefix-stable and is cut per turn like Qwen3's.
TEST_CASE("chat data: Hunyuan answers with <answer> give one example per turn", "[data]") {
  const Vocab v = RandomVocab();
  const std::string eos(v.tok->Text(v.tok->eos()));
  CheckPerTurn(v, "hunyuan",
               {{{"user", "hi?"},
                 {"assistant", "<think>greet</think><answer>Hi there.</answer>"},
                 {"user", "bye?"},
                 {"assistant", "<think>part</think><answer>Bye now.</answer>"}}},
               [&](const std::string& c) { return c + eos; });
}

TEST_CASE("chat data: random garbage gives errors, never a crash", "[data]") {
  const Vocab v = RandomVocab();
  const std::vector<std::string> parts = {"{",
                                          "}",
                                          "[",
                                          "]",
                                          ",",
                                          ":",
                                          "\"messages\"",
                                          "\"role\"",
                                          "\"content\"",
                                          "\"user\"",
                                          "\"assistant\"",
                                          "\"weight\"",
                                          "0",
                                          "1",
                                          "null",
                                          "\"x\"",
                                          "\xFF",
                                          "\xC3",
                                          " ",
                                          "\\u0000"};
  std::mt19937 rng(3);
  std::string file = JsonlLine({{"user", "q"}, {"assistant", "a"}}) + "\n";
  int64_t n_lines = 1;  // blank lines are not examples
  for (int line = 0; line < 300; ++line) {
    const int n = 1 + static_cast<int>(rng() % 30);
    std::string text;
    for (int k = 0; k < n; ++k) text += parts[rng() % parts.size()];
    if (text.find_first_not_of(' ') != std::string::npos) ++n_lines;
    file += text + "\n";
  }
  const std::string path = WriteFile("garbage.jsonl", file);
  auto strict = LoadDataset(path, *v.tok, *v.gguf, DataOptions{});
  REQUIRE_FALSE(strict.ok());
  CHECK(std::string(strict.status().message()).find(path + ":") == 0);
  auto lenient = LoadDataset(path, *v.tok, *v.gguf, DataOptions{.skip_bad = true});
  REQUIRE(lenient.ok());
  CHECK(lenient->n_skipped + static_cast<int64_t>(lenient->train.size()) == n_lines);
}

TEST_CASE("data files: missing, a directory or empty, and the kind by extension or option",
          "[data]") {
  const Vocab v = RandomVocab();
  const std::string missing = testing::TempDir() + "/does-not-exist.jsonl";
  auto a = LoadDataset(missing, *v.tok, *v.gguf, DataOptions{});
  REQUIRE_FALSE(a.ok());
  CHECK(a.status().code() == absl::StatusCode::kNotFound);
  CHECK(std::string(a.status().message()).find(missing) != std::string::npos);

  auto d = LoadDataset(testing::TempDir(), *v.tok, *v.gguf, DataOptions{});
  REQUIRE_FALSE(d.ok());
  CHECK(std::string(d.status().message()).find("directory") != std::string::npos);

  for (const std::string& content : {std::string(), std::string("\n \n\t\n")}) {
    const std::string path = WriteFile("empty.jsonl", content);
    auto e = LoadDataset(path, *v.tok, *v.gguf, DataOptions{});
    REQUIRE_FALSE(e.ok());
    CHECK(std::string(e.status().message()).find("empty") != std::string::npos);
  }

  // Chat lines in a .txt file are text unless the kind says chat, and the
  // other way round.
  const std::string line = JsonlLine({{"user", "q"}, {"assistant", "a"}});
  const std::string txt = WriteFile("chat.txt", line + "\n");
  auto as_text = LoadDataset(txt, *v.tok, *v.gguf, DataOptions{});
  REQUIRE(as_text.ok());
  CHECK(v.tok->Decode(as_text->train[0].tokens) == line);
  auto as_chat = LoadDataset(txt, *v.tok, *v.gguf, DataOptions{.kind = DataKind::kChat});
  REQUIRE(as_chat.ok());
  CHECK(TargetRuns(*v.tok, as_chat->train[0]) == std::vector<std::string>{"a<|im_end|>\n"});
  const std::string jsonl = WriteFile("text.jsonl", "just text\n");
  CHECK_FALSE(LoadDataset(jsonl, *v.tok, *v.gguf, DataOptions{}).ok());
  CHECK(LoadDataset(jsonl, *v.tok, *v.gguf, DataOptions{.kind = DataKind::kText}).ok());

  // Provenance hash: FNV-1a 64's published vector for "foobar".
  auto h = LoadDataset(WriteFile("foobar.txt", "foobar"), *v.tok, *v.gguf, DataOptions{});
  REQUIRE(h.ok());
  CHECK(h->content_hash == "85944171f73967e8");

  // Options out of range.
  CHECK_FALSE(LoadDataset(txt, *v.tok, *v.gguf, DataOptions{.seq_len = 1}).ok());
  CHECK_FALSE(LoadDataset(txt, *v.tok, *v.gguf, DataOptions{.eval_fraction = 0.6}).ok());
  CHECK_FALSE(LoadDataset(txt, *v.tok, *v.gguf, DataOptions{.eval_fraction = -0.1}).ok());
}

TEST_CASE("text data: documents, BOS/EOS, every token a target, long ones cut", "[data]") {
  Vocab stories;
  const bool have_stories = StoriesVocab(&stories);
  const Vocab random = RandomVocab();
  for (const Vocab* v : std::vector<const Vocab*>{&random, have_stories ? &stories : nullptr}) {
    if (v == nullptr) continue;
    const Tokenizer& tok = *v->tok;
    const std::vector<std::string> docs = {"Once upon a time\nthere was a cat.", "The end.",
                                           "third doc, caf\xC3\xA9"};
    // Blank lines (also whitespace-only, also several) separate documents;
    // CRLF line ends are plain line ends.
    const std::string path = WriteFile(
        "docs.txt",
        "Once upon a time\r\nthere was a cat.\n\n\nThe end.\r\n  \nthird doc, caf\xC3\xA9\n");
    auto ds = LoadDataset(path, tok, *v->gguf, DataOptions{});
    REQUIRE(ds.ok());
    REQUIRE(ds->train.size() == docs.size());
    for (size_t k = 0; k < docs.size(); ++k) {
      const Example& ex = ds->train[k];
      CHECK(ex.line == static_cast<int64_t>(k) + 1);
      CHECK(ex.tokens.front() == tok.bos());
      CHECK(ex.tokens.back() == tok.eos());
      CHECK(tok.Decode(ex.tokens) == docs[k]);
      CHECK(ex.loss_mask[0] == 0);
      CHECK(std::count(ex.loss_mask.begin(), ex.loss_mask.end(), 1) ==
            static_cast<int64_t>(ex.tokens.size()) - 1);
    }

    // A long document cut into pieces of seq_len, each starting with the
    // previous one's last token, so every token but the first is predicted
    // exactly once.
    std::string long_doc;
    for (int i = 0; i < 40; ++i) long_doc += "the cat and the ant " + std::to_string(i) + " ";
    const std::string lpath = WriteFile("long.txt", "short one\n\n" + long_doc + "\n");
    auto whole = LoadDataset(lpath, tok, *v->gguf, DataOptions{.seq_len = 100000});
    REQUIRE(whole.ok());
    REQUIRE(whole->train.size() == 2);
    const std::vector<int32_t>& all = whole->train[1].tokens;
    REQUIRE(all.size() > 100);
    auto cut = LoadDataset(lpath, tok, *v->gguf, DataOptions{.seq_len = 16});
    REQUIRE(cut.ok());
    std::vector<int32_t> joined;
    int64_t n_targets = 0;
    for (const Example& ex : cut->train) {
      if (ex.line != 2) continue;
      CHECK(ex.tokens.size() <= 16);
      CHECK(ex.tokens.size() >= 2);
      if (!joined.empty()) {
        CHECK(joined.back() == ex.tokens.front());
        joined.insert(joined.end(), ex.tokens.begin() + 1, ex.tokens.end());
      } else {
        joined = ex.tokens;
      }
      n_targets += std::count(ex.loss_mask.begin(), ex.loss_mask.end(), 1);
    }
    CHECK(joined == all);
    CHECK(n_targets == static_cast<int64_t>(all.size()) - 1);
  }
}

TEST_CASE("text data: invalid UTF-8 names its line", "[data]") {
  const Vocab v = RandomVocab();
  const std::string path =
      WriteFile("bad-utf8.txt", "good doc\n\nanother\nline \xC3\x28 here\n\nlast\n");
  auto ds = LoadDataset(path, *v.tok, *v.gguf, DataOptions{});
  REQUIRE_FALSE(ds.ok());
  const std::string msg(ds.status().message());
  CHECK(msg.find(path + ":4: ") == 0);
  CHECK(msg.find("UTF-8") != std::string::npos);
  auto skipped = LoadDataset(path, *v.tok, *v.gguf, DataOptions{.skip_bad = true});
  REQUIRE(skipped.ok());
  CHECK(skipped->n_skipped == 1);
  REQUIRE(skipped->train.size() == 2);
  CHECK(skipped->train[0].line == 1);
  CHECK(skipped->train[1].line == 3);
  CHECK(v.tok->Decode(skipped->train[1].tokens) == "last");
}

TEST_CASE("eval split: seeded, disjoint, complete, stable", "[data]") {
  const Vocab v = RandomVocab();
  std::string text;
  for (int i = 0; i < 20; ++i) text += "doc " + std::to_string(i) + "\n\n";
  const std::string path = WriteFile("twenty.txt", text);
  auto lines = [](const std::vector<Example>& xs) {
    std::vector<int64_t> out;
    for (const Example& x : xs) out.push_back(x.line);
    return out;
  };
  auto a = LoadDataset(path, *v.tok, *v.gguf, DataOptions{.eval_fraction = 0.25, .seed = 7});
  REQUIRE(a.ok());
  CHECK(a->eval.size() == 5);
  CHECK(a->train.size() == 15);
  std::set<int64_t> seen;
  for (int64_t l : lines(a->train)) seen.insert(l);
  for (int64_t l : lines(a->eval)) CHECK(seen.insert(l).second);
  CHECK(seen.size() == 20);
  CHECK(*seen.begin() == 1);
  CHECK(*seen.rbegin() == 20);
  // Both keep file order.
  const auto train_lines = lines(a->train);
  CHECK(std::is_sorted(train_lines.begin(), train_lines.end()));
  const auto eval_lines = lines(a->eval);
  CHECK(std::is_sorted(eval_lines.begin(), eval_lines.end()));

  auto again = LoadDataset(path, *v.tok, *v.gguf, DataOptions{.eval_fraction = 0.25, .seed = 7});
  REQUIRE(again.ok());
  CHECK(lines(again->eval) == eval_lines);
  auto other = LoadDataset(path, *v.tok, *v.gguf, DataOptions{.eval_fraction = 0.25, .seed = 8});
  REQUIRE(other.ok());
  CHECK(lines(other->eval) != eval_lines);

  auto min3 = LoadDataset(path, *v.tok, *v.gguf,
                          DataOptions{.eval_fraction = 0.01, .eval_min = 3, .seed = 7});
  REQUIRE(min3.ok());
  CHECK(min3->eval.size() == 3);
  auto none = LoadDataset(path, *v.tok, *v.gguf, DataOptions{.seed = 7});
  REQUIRE(none.ok());
  CHECK(none->eval.empty());
  CHECK(none->train.size() == 20);

  const std::string two = WriteFile("two.txt", "a\n\nb\n");
  CHECK_FALSE(
      LoadDataset(two, *v.tok, *v.gguf, DataOptions{.eval_fraction = 0.5, .eval_min = 2}).ok());
  auto one_each = LoadDataset(two, *v.tok, *v.gguf, DataOptions{.eval_fraction = 0.5});
  REQUIRE(one_each.ok());
  CHECK(one_each->eval.size() == 1);
  CHECK(one_each->train.size() == 1);
}

Example MakeExample(int32_t first, size_t len, std::mt19937* rng) {
  Example ex;
  ex.tokens.push_back(first);  // identifies the example
  ex.loss_mask.push_back(0);
  for (size_t i = 1; i < len; ++i) {
    ex.tokens.push_back(static_cast<int32_t>((*rng)() % 1000) + 2000);
    ex.loss_mask.push_back(static_cast<uint8_t>((*rng)() % 3 != 0));
  }
  return ex;
}

TEST_CASE("PackBatches: first fit, worked by hand", "[data]") {
  std::mt19937 rng(1);
  std::vector<Example> xs;
  const std::vector<size_t> lens = {5, 4, 3, 2, 6, 1};
  for (size_t i = 0; i < lens.size(); ++i)
    xs.push_back(MakeExample(100 + static_cast<int32_t>(i), lens[i], &rng));
  // seq_len 8, 2 rows: 5 -> row 0; 4 -> row 1; 3 -> row 0 (full); 2 -> row
  // 1; 6 fits nowhere and the batch is full: it goes out; 6 and 1 start the
  // next one, sharing a row.
  const std::vector<Batch> b = PackBatches(xs, {0, 1, 2, 3, 4, 5}, 8, 2);
  REQUIRE(b.size() == 2);
  CHECK(b[0].n_rows == 2);
  CHECK(b[1].n_rows == 1);
  auto first = [](const Batch& batch, int64_t row) {
    std::vector<int32_t> ids;
    for (int64_t p = 0; p < batch.seq_len; ++p) {
      const int32_t t = batch.tokens[row * batch.seq_len + p];
      if (t >= 100 && t < 200) ids.push_back(t);
    }
    return ids;
  };
  CHECK(first(b[0], 0) == std::vector<int32_t>{100, 102});
  CHECK(first(b[0], 1) == std::vector<int32_t>{101, 103});
  CHECK(first(b[1], 0) == std::vector<int32_t>{104, 105});
  CHECK(b[0].doc == std::vector<int32_t>{0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2, 2});
  CHECK(b[1].doc == std::vector<int32_t>{0, 0, 0, 0, 0, 0, 1, 2});
  // The second row of batch 0: example 1 (4 tokens), example 3 (2), padding.
  const auto& e1 = xs[1];
  for (int p = 0; p < 3; ++p) {
    CHECK(b[0].targets[8 + p] == (e1.loss_mask[p + 1] ? e1.tokens[p + 1] : -1));
  }
  CHECK(b[0].targets[8 + 3] == -1);  // the end of example 1
  CHECK(b[0].targets[14] == -1);     // padding
  CHECK(b[0].targets[15] == -1);
}

TEST_CASE("PackBatches: invariants on random examples", "[data]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t seq_len = 8 + static_cast<int64_t>(rng() % 40);
    const int64_t rows = 1 + static_cast<int64_t>(rng() % 4);
    std::vector<Example> xs;
    const int n = 1 + static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) {
      xs.push_back(MakeExample(100 + i, 1 + rng() % static_cast<size_t>(seq_len), &rng));
    }
    const std::vector<int64_t> order = ShuffledOrder(n, rng(), 0);
    const std::vector<Batch> batches = PackBatches(xs, order, seq_len, rows);
    const std::vector<Batch> again = PackBatches(xs, order, seq_len, rows);  // deterministic
    REQUIRE(again.size() == batches.size());
    for (size_t i = 0; i < again.size(); ++i) {
      CHECK(again[i].tokens == batches[i].tokens);
      CHECK(again[i].targets == batches[i].targets);
      CHECK(again[i].doc == batches[i].doc);
    }

    std::vector<int> seen(n, 0);
    std::vector<int> placed_order;
    for (size_t bi = 0; bi < batches.size(); ++bi) {
      const Batch& b = batches[bi];
      CHECK(b.seq_len == seq_len);
      CHECK(b.n_rows >= 1);
      CHECK(b.n_rows <= rows);
      if (bi + 1 < batches.size()) CHECK(b.n_rows == rows);
      REQUIRE(b.tokens.size() == static_cast<size_t>(b.n_rows * seq_len));
      REQUIRE(b.targets.size() == b.tokens.size());
      REQUIRE(b.doc.size() == b.tokens.size());
      for (int64_t r = 0; r < b.n_rows; ++r) {
        const int64_t base = r * seq_len;
        int64_t p = 0;
        int32_t doc = 0;
        while (p < seq_len) {
          CHECK(b.doc[base + p] == doc);
          const int32_t t = b.tokens[base + p];
          if (t >= 100 && t < 100 + n) {
            const int id = t - 100;
            ++seen[id];
            const Example& ex = xs[id];
            for (size_t k = 0; k < ex.tokens.size(); ++k) {
              REQUIRE(p + static_cast<int64_t>(k) < seq_len);
              const int64_t at = base + p + static_cast<int64_t>(k);
              CHECK(b.tokens[at] == ex.tokens[k]);
              CHECK(b.doc[at] == doc);
              const int32_t want =
                  k + 1 < ex.tokens.size() && ex.loss_mask[k + 1] ? ex.tokens[k + 1] : -1;
              CHECK(b.targets[at] == want);
            }
            p += static_cast<int64_t>(ex.tokens.size());
            ++doc;
          } else {
            // Padding: to the end of the row, one document, no targets.
            for (; p < seq_len; ++p) {
              CHECK(b.doc[base + p] == doc);
              CHECK(b.targets[base + p] == -1);
            }
          }
        }
      }
    }
    for (int i = 0; i < n; ++i) CHECK(seen[i] == 1);
  }
}

TEST_CASE("ShuffledOrder: a seeded permutation per epoch", "[data]") {
  for (int64_t n : {0, 1, 2, 10, 1000}) {
    const std::vector<int64_t> p = ShuffledOrder(n, 42, 3);
    std::vector<int64_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> iota(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) iota[i] = i;
    CHECK(sorted == iota);
    CHECK(ShuffledOrder(n, 42, 3) == p);
  }
  const auto base = ShuffledOrder(1000, 42, 3);
  CHECK(ShuffledOrder(1000, 42, 4) != base);
  CHECK(ShuffledOrder(1000, 43, 3) != base);
  CHECK(ShuffledOrder(1000, 42, 0) != ShuffledOrder(1000, 0, 42));

  // About uniform: each of the 6 orders of 3 items over 6000 epochs (expected
  // 1000 each; 5 standard deviations is about 200).
  std::map<std::vector<int64_t>, int> counts;
  for (int e = 0; e < 6000; ++e) ++counts[ShuffledOrder(3, 9, e)];
  CHECK(counts.size() == 6);
  for (const auto& [order, count] : counts) {
    CHECK(count > 800);
    CHECK(count < 1200);
  }
}

}  // namespace
}  // namespace yuan::train

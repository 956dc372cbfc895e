// Conversations and session state through the C API.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "tests/common/test_support.h"
#include "yuan/yuan.h"

namespace {

// A template whose output is obvious, so the test knows the prompt text.
constexpr char kTemplate[] =
    "{% for m in messages %}<{{ m.role }}>{{ m.content }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}";

std::string RandomModel() {
  static const std::string path =
      yuan::testing::WriteRandomLlamaModel(yuan::testing::RandomModelSpec{}, "chat.gguf");
  return path;
}

struct Fixture {
  yuan_engine* engine = nullptr;
  yuan_session* session = nullptr;
  yuan_sampling_params sp;
  yuan_generate_options go;
  yuan_chat_options co;
  explicit Fixture(const std::string& path = RandomModel()) {
    yuan_engine_options eo;
    yuan_engine_options_init(&eo);
    eo.model = path.c_str();
    eo.n_threads = 2;
    REQUIRE(yuan_engine_open(&eo, &engine) == YUAN_OK);
    REQUIRE(yuan_session_open(engine, nullptr, &session) == YUAN_OK);
    yuan_sampling_params_init(&sp);
    sp.temperature = 0;
    yuan_generate_options_init(&go);
    go.sampling = &sp;
    go.max_tokens = 6;
    go.flags = YUAN_GENERATE_IGNORE_EOS;
    yuan_chat_options_init(&co);
    co.chat_template = kTemplate;
  }
  ~Fixture() {
    yuan_session_free(session);
    yuan_engine_free(engine);
  }
  size_t CountTokens(const std::string& text) {
    size_t n = 0;
    yuan_tokenize(engine, text.data(), text.size(), YUAN_TOKENIZE_ADD_BOS | YUAN_TOKENIZE_PARSE_SPECIAL,
                  nullptr, 0, &n);
    return n;
  }
};

std::string Render(Fixture& f, const std::vector<yuan_chat_message>& msgs, int add_gen) {
  size_t needed = 0;
  yuan_status st = yuan_chat_apply_template(f.engine, msgs.data(), msgs.size(), &f.co, add_gen,
                                            nullptr, 0, &needed);
  REQUIRE(st == YUAN_ERR_BUFFER_TOO_SMALL);
  std::string out(needed + 1, '\0');
  REQUIRE(yuan_chat_apply_template(f.engine, msgs.data(), msgs.size(), &f.co, add_gen, out.data(),
                                   out.size(), &needed) == YUAN_OK);
  out.resize(needed);
  return out;
}

TEST_CASE("chat templates render through the API", "[sdk][chat]") {
  Fixture f;
  std::vector<yuan_chat_message> msgs = {{"system", "be brief"}, {"user", "你好"}};
  CHECK(Render(f, msgs, 1) == "<system>be brief</s><user>你好</s><assistant>");
  CHECK(Render(f, msgs, 0) == "<system>be brief</s><user>你好</s>");

  // Built-in templates by name; unknown names and broken templates are errors.
  f.co.chat_template = "chatml";
  CHECK(Render(f, msgs, 1) ==
        "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n");
  size_t n = 0;
  f.co.chat_template = "no-such-template";
  CHECK(yuan_chat_apply_template(f.engine, msgs.data(), msgs.size(), &f.co, 1, nullptr, 0, &n) ==
        YUAN_ERR_NOT_FOUND);
  f.co.chat_template = "{% for m in messages %}{{ m.content ";
  CHECK(yuan_chat_apply_template(f.engine, msgs.data(), msgs.size(), &f.co, 1, nullptr, 0, &n) ==
        YUAN_ERR_INVALID_ARGUMENT);
  CHECK(std::strlen(yuan_last_error()) > 0);
  yuan_chat_message bad = {nullptr, "x"};
  CHECK(yuan_chat_apply_template(f.engine, &bad, 1, nullptr, 1, nullptr, 0, &n) ==
        YUAN_ERR_INVALID_ARGUMENT);
}

TEST_CASE("a follow-up turn only evaluates the new tokens", "[sdk][chat]") {
  // A real model, whose replies are plain text (a random model's replies can
  // be invalid UTF-8, which the app cannot send back verbatim).
  const std::string model = yuan::testing::SharedModel("stories260K.gguf");
  if (model.empty()) return;
  Fixture f(model);
  f.go.max_tokens = 12;
  std::vector<yuan_chat_message> msgs = {{"user", "Tom had a red ball."}};
  yuan_generate_result r1;
  yuan_generate_result_init(&r1);
  REQUIRE(yuan_session_chat(f.session, msgs.data(), msgs.size(), &f.co, &f.go, &r1) == YUAN_OK);
  CHECK(r1.cached_tokens == 0);
  CHECK(r1.prompt_tokens == static_cast<int32_t>(f.CountTokens(Render(f, msgs, 1))));
  const std::string reply = r1.text;
  yuan_free(r1.text);

  msgs.push_back({"assistant", reply.c_str()});
  msgs.push_back({"user", "Where did it go?"});
  yuan_generate_result r2;
  yuan_generate_result_init(&r2);
  REQUIRE(yuan_session_chat(f.session, msgs.data(), msgs.size(), &f.co, &f.go, &r2) == YUAN_OK);
  // Reused: the first prompt and all but the last reply token (which was
  // sampled but never evaluated). New: that token plus the new turn's text.
  CHECK(r2.cached_tokens == r1.prompt_tokens + r1.completion_tokens - 1);
  const std::string new_text = "</s><user>Where did it go?</s><assistant>";
  const int32_t new_tokens = r2.prompt_tokens - r2.cached_tokens;
  // CountTokens adds BOS and a leading space piece: the new turn is at most that.
  CHECK(new_tokens >= 1);
  CHECK(new_tokens <= static_cast<int32_t>(f.CountTokens(new_text)) + 1);
  yuan_free(r2.text);
}

TEST_CASE("session state saves to a buffer and a file and restores exactly", "[sdk][state]") {
  Fixture f;
  std::vector<yuan_chat_message> msgs = {{"user", "the and"}};
  yuan_generate_result r;
  yuan_generate_result_init(&r);
  REQUIRE(yuan_session_chat(f.session, msgs.data(), msgs.size(), &f.co, &f.go, &r) == YUAN_OK);
  yuan_free(r.text);

  size_t needed = 0;
  REQUIRE(yuan_session_save(f.session, nullptr, 0, &needed) == YUAN_ERR_BUFFER_TOO_SMALL);
  std::vector<char> state(needed);
  REQUIRE(yuan_session_save(f.session, state.data(), state.size(), &needed) == YUAN_OK);
  const std::string file = yuan::testing::TempDir() + "/session.bin";
  REQUIRE(yuan_session_save_file(f.session, file.c_str()) == YUAN_OK);

  // Continue in the original, in one restored from the buffer, and in one
  // restored from the file: all three give the same reply from the cache.
  msgs.push_back({"user", "a"});
  auto reply = [&](yuan_session* s, int32_t* cached) {
    yuan_generate_result rr;
    yuan_generate_result_init(&rr);
    REQUIRE(yuan_session_chat(s, msgs.data(), msgs.size(), &f.co, &f.go, &rr) == YUAN_OK);
    std::string text = rr.text;
    *cached = rr.cached_tokens;
    yuan_free(rr.text);
    return text;
  };
  yuan_session* from_buffer = nullptr;
  yuan_session* from_file = nullptr;
  REQUIRE(yuan_session_open(f.engine, nullptr, &from_buffer) == YUAN_OK);
  REQUIRE(yuan_session_open(f.engine, nullptr, &from_file) == YUAN_OK);
  REQUIRE(yuan_session_load(from_buffer, state.data(), state.size()) == YUAN_OK);
  REQUIRE(yuan_session_load_file(from_file, file.c_str()) == YUAN_OK);
  int32_t c0 = 0, c1 = 0, c2 = 0;
  const std::string a = reply(f.session, &c0);
  CHECK(reply(from_buffer, &c1) == a);
  CHECK(reply(from_file, &c2) == a);
  CHECK(c0 > 0);
  CHECK(c1 == c0);
  CHECK(c2 == c0);

  // Damaged data is refused with FORMAT and leaves the session alone.
  state[state.size() / 2] ^= 1;
  int32_t before = 0, after = 0;
  yuan_session_n_past(from_buffer, &before);
  CHECK(yuan_session_load(from_buffer, state.data(), state.size()) == YUAN_ERR_FORMAT);
  yuan_session_n_past(from_buffer, &after);
  CHECK(before == after);
  CHECK(yuan_session_load_file(from_file, "/no/such/state") == YUAN_ERR_NOT_FOUND);
  yuan_session_free(from_buffer);
  yuan_session_free(from_file);
}

}  // namespace

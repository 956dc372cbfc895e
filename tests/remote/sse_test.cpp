// The server-sent events parser and the OpenAI chunk JSON, on hand-written
// streams (tests/data/openai-*.txt, from the public OpenAI API reference)
// and on recordings of a real server (../shared/golden/openai-server-*.txt,
// read in place): every split point, CR / LF / CRLF line ends, comments,
// BOM, multi-line data, and what the chunks say.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/remote/openai_json.h"
#include "runtime/remote/sse.h"
#include "tests/common/test_support.h"

namespace {

using yuan::remote::CompletionChunk;
using yuan::remote::ParseCompletionChunk;
using yuan::remote::SseEvent;
using yuan::remote::SseParser;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Fixture(const std::string& name) {
  const std::string text = ReadFile(std::string(YUAN_SOURCE_DIR) + "/tests/data/" + name);
  REQUIRE(!text.empty());
  return text;
}

// The body of the first "### RESPONSE" of a golden recording (after the
// HTTP headers, which end in CRLF CRLF).
std::string GoldenBody(const std::string& path) {
  const std::string text = ReadFile(path);
  const size_t resp = text.find("### RESPONSE");
  REQUIRE(resp != std::string::npos);
  const size_t body = text.find("\r\n\r\n", resp);
  REQUIRE(body != std::string::npos);
  return text.substr(body + 4);
}

std::vector<SseEvent> ParseIn(const std::vector<std::string_view>& pieces) {
  SseParser p;
  std::vector<SseEvent> events;
  for (std::string_view piece : pieces) REQUIRE(p.Feed(piece, &events).ok());
  return events;
}

std::vector<SseEvent> ParseWhole(std::string_view s) { return ParseIn({s}); }

bool SameEvents(const std::vector<SseEvent>& a, const std::vector<SseEvent>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].type != b[i].type || a[i].data != b[i].data || a[i].id != b[i].id) return false;
  }
  return true;
}

// Every way of cutting `s` in two, and random cuts into many pieces, give
// the same events as the whole.
void CheckAllSplits(const std::string& s) {
  const std::vector<SseEvent> whole = ParseWhole(s);
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    const std::string_view v(s);
    const auto split = ParseIn({v.substr(0, cut), v.substr(cut)});
    if (!SameEvents(split, whole)) FAIL("split at byte " << cut << " changes the events");
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::string_view> pieces;
    size_t at = 0;
    while (at < s.size()) {
      const size_t n = std::min<size_t>(s.size() - at, 1 + rng() % 5);
      pieces.push_back(std::string_view(s).substr(at, n));
      at += n;
    }
    REQUIRE(SameEvents(ParseIn(pieces), whole));
  }
  // One byte at a time.
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < s.size(); ++i) bytes.push_back(std::string_view(s).substr(i, 1));
  REQUIRE(SameEvents(ParseIn(bytes), whole));
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// Concatenated text, finish reason and usage of a chunk stream.
struct Streamed {
  std::string text, finish;
  bool done = false;
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

Streamed Interpret(const std::vector<SseEvent>& events) {
  Streamed out;
  for (const SseEvent& ev : events) {
    if (ev.data == "[DONE]") {
      out.done = true;
      break;
    }
    auto c = ParseCompletionChunk(ev.data);
    REQUIRE(c.ok());
    out.text += c->text;
    if (!c->finish_reason.empty()) out.finish = c->finish_reason;
    if (c->has_usage) {
      out.prompt_tokens = c->prompt_tokens;
      out.completion_tokens = c->completion_tokens;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("sse: fields, comments, multi-line data and dispatch follow the WHATWG rules",
          "[remote]") {
  auto ev = ParseWhole(
      ": a comment\n"
      "data: first\n"
      "data:second\n"
      "data:  two spaces\n"
      "\n"
      "event: update\n"
      "id: 42\n"
      "data\n"  // a field without a colon: data with an empty value
      "\n"
      "ignored-field: x\n"
      "data: third\n"
      "\n"
      "event: no-data\n"
      "\n"  // no data: nothing is dispatched, the type is reset
      "data: fourth\n"
      "\n"
      "id\n"  // resets the id
      "data: fifth\n"
      "\n"
      "data: never dispatched (no blank line)\n");
  REQUIRE(ev.size() == 5);
  CHECK(ev[0].type == "message");
  CHECK(ev[0].data == "first\nsecond\n two spaces");
  CHECK(ev[0].id.empty());
  CHECK(ev[1].type == "update");
  CHECK(ev[1].data.empty());
  CHECK(ev[1].id == "42");
  CHECK(ev[2].type == "message");
  CHECK(ev[2].data == "third");
  CHECK(ev[2].id == "42");  // the last event id persists
  CHECK(ev[3].type == "message");
  CHECK(ev[3].data == "fourth");
  CHECK(ev[4].id.empty());

  using namespace std::string_view_literals;
  SseParser p;
  std::vector<SseEvent> out;
  REQUIRE(p.Feed("retry: 1500\nretry: x\nid: 7\nid: a\0b\n\n"sv, &out).ok());
  CHECK(p.retry_ms() == 1500);
  CHECK(p.last_event_id() == "7");  // an id with a NUL is ignored
  CHECK(p.Feed("data: pending", &out).ok());
  CHECK(p.has_pending());
  CHECK(out.empty());
}

TEST_CASE("sse: CR, LF and CRLF line ends, split anywhere, give the same events", "[remote]") {
  const std::string lf = Fixture("openai-keepalive-stream.txt");
  const std::vector<SseEvent> expected = ParseWhole(lf);
  REQUIRE(expected.size() == 4);
  CHECK(expected[1].data.find("\n\"choices\"") != std::string::npos);  // two data lines joined
  CHECK(expected[1].id == "2");
  for (const std::string& eol : {std::string("\r\n"), std::string("\r")}) {
    const std::string s = ReplaceAll(lf, "\n", eol);
    REQUIRE(SameEvents(ParseWhole(s), expected));
    CheckAllSplits(s);
  }
  // Mixed line ends in one stream, and a CR at a chunk's end followed by
  // the LF in the next chunk is one line end, not two.
  CHECK(SameEvents(ParseIn({"data: a\r", "\ndata: b\r", "\r", "\n", "data: c\n\r\n"}),
                   ParseWhole("data: a\ndata: b\n\ndata: c\n\n")));
  CHECK(ParseIn({"data: a\r", "\n\r", "\n"}).size() == 1);
}

TEST_CASE("sse: a leading BOM is dropped, also when split; elsewhere it is data", "[remote]") {
  const std::string bom = "\xEF\xBB\xBF";
  CHECK(ParseWhole(bom + "data: x\n\n")[0].data == "x");
  CHECK(ParseIn({"\xEF", "\xBB", "\xBF" "data: x\n\n"})[0].data == "x");
  CHECK(ParseWhole(bom + "data: x\n\n" + "data: " + bom + "y\n\n")[1].data == bom + "y");
  // Only one BOM is stripped: a second one makes the first line's field
  // name "\uFEFFdata", which is ignored.
  CHECK(ParseWhole(bom + bom + "data: x\n\n").empty());
  // A partial BOM is ordinary (invalid UTF-8) input: U+FFFD.
  CHECK(ParseWhole("\xEF\xBB" "data: x\n\n").empty());
  CHECK(ParseWhole("data: \xEF\xBB\n\n")[0].data == "\xEF\xBF\xBD");
}

TEST_CASE("sse: UTF-8 split across chunks survives; invalid bytes become U+FFFD", "[remote]") {
  const std::string s = "data: caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80\n\n";
  CheckAllSplits(s);
  CHECK(ParseWhole(s)[0].data == "caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80");
  CHECK(yuan::remote::SanitizeUtf8("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
  CHECK(yuan::remote::SanitizeUtf8("\xE4\xBD") == "\xEF\xBF\xBD");      // truncated: one U+FFFD
  CHECK(yuan::remote::SanitizeUtf8("\xED\xA0\x80") ==                    // a surrogate: three
        "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(yuan::remote::SanitizeUtf8("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
}

TEST_CASE("sse: an endless line or event is refused, not buffered forever", "[remote]") {
  SseParser p(1024);
  std::vector<SseEvent> out;
  absl::Status st;
  for (int i = 0; i < 100 && st.ok(); ++i) st = p.Feed(std::string(100, 'x'), &out);
  CHECK(absl::IsResourceExhausted(st));
  CHECK(!p.Feed("\n\n", &out).ok());

  SseParser q(1024);
  st = absl::OkStatus();
  for (int i = 0; i < 100 && st.ok(); ++i) st = q.Feed("data: " + std::string(50, 'y') + "\n", &out);
  CHECK(absl::IsResourceExhausted(st));
}

TEST_CASE("sse: the hand-written OpenAI streams parse at every split point", "[remote]") {
  const std::string chat = Fixture("openai-chat-stream.txt");
  CheckAllSplits(chat);
  Streamed c = Interpret(ParseWhole(chat));
  CHECK(c.text == "Hello! How can I help, caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD?");
  CHECK(c.finish == "stop");
  CHECK(c.done);
  CHECK(c.prompt_tokens == 9);
  CHECK(c.completion_tokens == 12);

  const std::string cmpl = Fixture("openai-completions-stream.txt");
  CheckAllSplits(cmpl);
  Streamed t = Interpret(ParseWhole(cmpl));
  CHECK(t.text == "This is a test.");
  CHECK(t.finish == "length");
  CHECK(t.completion_tokens == 4);

  Streamed k = Interpret(ParseWhole(Fixture("openai-keepalive-stream.txt")));
  CHECK(k.text == "Once upon a time");
  CHECK(k.finish == "stop");
  CHECK(k.done);

  Streamed m = Interpret(ParseWhole(Fixture("openai-missing-done-stream.txt")));
  CHECK(m.text == "Short answer.");
  CHECK(m.finish == "stop");
  CHECK(!m.done);
}

TEST_CASE("sse: error objects, in a stream or as a body, map to statuses", "[remote]") {
  const auto events = ParseWhole(Fixture("openai-stream-error.txt"));
  REQUIRE(events.size() == 2);
  CHECK(ParseCompletionChunk(events[0].data).ok());
  const auto err = ParseCompletionChunk(events[1].data);
  CHECK(absl::IsUnavailable(err.status()));
  CHECK(err.status().message().find("Sorry about that") != absl::string_view::npos);

  const std::string body = Fixture("openai-error.txt");
  const absl::Status st = yuan::remote::StatusFromHttpError(401, body, "POST u");
  CHECK(absl::IsUnauthenticated(st));
  CHECK(st.message().find("Incorrect API key provided") != absl::string_view::npos);
  CHECK(absl::IsInvalidArgument(yuan::remote::StatusFromHttpError(400, body, "x")));
  CHECK(absl::IsPermissionDenied(yuan::remote::StatusFromHttpError(403, "", "x")));
  CHECK(absl::IsNotFound(yuan::remote::StatusFromHttpError(404, "<html>nope</html>", "x")));
  CHECK(absl::IsOutOfRange(yuan::remote::StatusFromHttpError(413, "too big", "x")));
  CHECK(absl::IsResourceExhausted(yuan::remote::StatusFromHttpError(429, body, "x")));
  CHECK(absl::IsUnavailable(yuan::remote::StatusFromHttpError(503, "", "x")));
  // vLLM's flat error, llama.cpp's context error, FastAPI's detail.
  const absl::Status vllm = yuan::remote::StatusFromHttpError(
      400,
      R"({"object":"error","message":"This model's maximum context length is 2048 tokens.","type":"BadRequestError","param":null,"code":400})",
      "x");
  CHECK(absl::IsOutOfRange(vllm));
  CHECK(vllm.message().find("2048 tokens") != absl::string_view::npos);
  CHECK(absl::IsOutOfRange(yuan::remote::StatusFromHttpError(
      400, R"({"error":{"code":400,"message":"request (9000 tokens) exceeds the available context size","type":"exceed_context_size_error"}})",
      "x")));
  CHECK(yuan::remote::StatusFromHttpError(422, R"({"detail":"field required"})", "x").message().find(
            "field required") != absl::string_view::npos);

  CHECK(absl::IsDataLoss(ParseCompletionChunk("{not json").status()));
  CHECK(absl::IsDataLoss(ParseCompletionChunk(R"({"choices":[{"text":"a","token_ids":[1,"x"]}]})").status()));
  // Wrong types read as absent rather than throwing.
  auto odd = ParseCompletionChunk(
      R"({"choices":[{"text":5,"index":0,"finish_reason":7,"delta":[]}],"usage":{"prompt_tokens":"3","completion_tokens":1e300}})");
  REQUIRE(odd.ok());
  CHECK(odd->text.empty());
  CHECK(odd->finish_reason.empty());
  CHECK(odd->prompt_tokens == 0);
}

TEST_CASE("sse: the real server's recordings (../shared/golden) parse in place", "[remote]") {
  const std::string chat_path = yuan::testing::SharedGolden("openai-server-chat-stream.txt");
  if (chat_path.empty()) return;  // ../shared absent: skipped (SharedGolden warned)

  const std::string chat = GoldenBody(chat_path);
  CheckAllSplits(chat);
  Streamed c = Interpret(ParseWhole(chat));
  CHECK(c.done);
  CHECK(c.finish == "length");
  auto whole_chat = ParseCompletionChunk(
      GoldenBody(yuan::testing::SharedGolden("openai-server-chat-nonstream.txt")));
  REQUIRE(whole_chat.ok());
  CHECK(whole_chat->text == c.text);  // greedy: the same 32 tokens both ways
  CHECK(whole_chat->finish_reason == "length");
  CHECK(whole_chat->completion_tokens == 32);

  const std::string cmpl =
      GoldenBody(yuan::testing::SharedGolden("openai-server-completions-stream.txt"));
  CheckAllSplits(cmpl);
  Streamed t = Interpret(ParseWhole(cmpl));
  CHECK(t.done);
  CHECK(t.completion_tokens == 32);
  CHECK(t.prompt_tokens == 5);
  auto whole_cmpl = ParseCompletionChunk(
      GoldenBody(yuan::testing::SharedGolden("openai-server-completions-nonstream.txt")));
  REQUIRE(whole_cmpl.ok());
  CHECK(whole_cmpl->text == t.text);
  CHECK(t.text.rfind(", there was a little girl named Lily.", 0) == 0);

  // GET /v1/models: the second response of the health/models recording.
  const std::string hm = ReadFile(yuan::testing::SharedGolden("openai-server-health-models.txt"));
  const size_t models_at = hm.find("### GET /v1/models");
  REQUIRE(models_at != std::string::npos);
  const size_t body = hm.find("\r\n\r\n", models_at);
  REQUIRE(body != std::string::npos);
  auto models = yuan::remote::ParseModelList(hm.substr(body + 4));
  REQUIRE(models.ok());
  REQUIRE(models->size() == 1);
  CHECK((*models)[0].id == "stories260K.gguf");
  CHECK((*models)[0].owned_by == "llamacpp");
  CHECK((*models)[0].n_ctx_train == 512);
  CHECK((*models)[0].n_vocab == 512);
  CHECK(yuan::remote::DetectServerKind("http://127.0.0.1:8080/v1", *models) ==
        yuan::remote::ServerKind::kLlamaCpp);
}

TEST_CASE("sse: model lists and server kinds", "[remote]") {
  auto models = yuan::remote::ParseModelList(Fixture("openai-models.txt"));
  REQUIRE(models.ok());
  REQUIRE(models->size() == 2);
  CHECK((*models)[0].id == "gpt-4o-mini");
  using yuan::remote::DetectServerKind;
  using yuan::remote::ServerKind;
  CHECK(DetectServerKind("http://localhost:1/v1", *models) == ServerKind::kOpenAi);
  CHECK(DetectServerKind("https://api.openai.com/v1", {}) == ServerKind::kOpenAi);
  CHECK(DetectServerKind("https://user:pw@api.openai.com:443/v1", {}) == ServerKind::kOpenAi);
  CHECK(DetectServerKind("http://h/v1", {{"m", "vllm"}}) == ServerKind::kVllm);
  CHECK(DetectServerKind("http://h/v1", {{"m", "yuan"}}) == ServerKind::kYuan);
  CHECK(DetectServerKind("http://h/v1", {{"m", "someone"}}) == ServerKind::kUnknown);
  auto vllm = yuan::remote::ParseModelList(
      R"({"object":"list","data":[{"id":"Qwen/Qwen3-0.6B","object":"model","owned_by":"vllm","max_model_len":40960}]})");
  REQUIRE(vllm.ok());
  CHECK((*vllm)[0].max_model_len == 40960);
  CHECK(!yuan::remote::ParseModelList("[]").ok());
  CHECK(!yuan::remote::ParseModelList("{\"data\": 3}").ok());
}

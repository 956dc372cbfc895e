// `yuan serve` end to end: an in-process ApiServer on an ephemeral port over a
// small random model, driven with plain sockets (HTTP/1.1, Connection: close).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/engine/chat.h"
#include "runtime/adapter/adapter.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/lora.h"
#include "runtime/server/server.h"
#include "tests/common/random_adapter.h"
#include "tests/common/test_support.h"

namespace yuan::server {
namespace {

using json = nlohmann::json;

// ---- a minimal HTTP client ----
//
// Catch2 v2's assertions are not thread-safe (they corrupted its heap when
// clients ran on threads), so the client itself asserts nothing: Fetch
// reports what went wrong in Response::error and is safe on any thread; Http
// is Fetch plus the assertion, for the test's own thread.

struct Response {
  int status = 0;                              // 0: no HTTP answer (see error)
  std::string error;                           // why there is no answer
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // de-chunked
  json Json() const {
    INFO(body);
    json j = json::parse(body, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    return j;
  }
};

// A connected socket, or -1 with *error set.
int TryConnect(int port, std::string* error) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  timeval tv{};
  tv.tv_sec = static_cast<long>(60 * testing::TimeScale());
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

bool TrySendAll(int fd, const std::string& data, std::string* error) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      *error = std::string("send: ") + std::strerror(errno);
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

int Connect(int port) {
  std::string error;
  const int fd = TryConnect(port, &error);
  INFO(error);
  REQUIRE(fd >= 0);
  return fd;
}

void SendAll(int fd, const std::string& data) {
  std::string error;
  const bool sent = TrySendAll(fd, data, &error);
  INFO(error);
  REQUIRE(sent);
}

std::string RequestText(const std::string& method, const std::string& path, const std::string& body,
                        const std::vector<std::string>& headers) {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (!body.empty() || method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return req + "\r\n" + body;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Status line, headers and the (de-chunked) body of a whole response; on a
// malformed one, status 0 and the reason in error.
Response ParseResponse(const std::string& raw) {
  Response r;
  auto fail = [&](const std::string& why) {
    Response bad;
    bad.error = why + " in: " + raw.substr(0, 300);
    return bad;
  };
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return fail("no end of headers");
  const std::string head = raw.substr(0, head_end);
  if (head.rfind("HTTP/1.1 ", 0) != 0 || head.size() < 12) return fail("no HTTP/1.1 status line");
  r.status = std::atoi(head.substr(9, 3).c_str());
  if (r.status < 100) return fail("bad status code");
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos < head.size()) {
    const size_t next = head.find("\r\n", pos + 2);
    const std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      r.headers[Lower(line.substr(0, colon))] = v;
    }
    pos = next;
  }
  std::string body = raw.substr(head_end + 4);
  if (Lower(r.headers["transfer-encoding"]) == "chunked") {
    std::string out;
    size_t p = 0;
    for (;;) {
      const size_t eol = body.find("\r\n", p);
      if (eol == std::string::npos) return fail("unterminated chunk size");
      const size_t n = std::strtoul(body.substr(p, eol - p).c_str(), nullptr, 16);
      if (n == 0) break;
      if (eol + 2 + n > body.size()) return fail("chunk past the end");
      out += body.substr(eol + 2, n);
      p = eol + 2 + n + 2;
    }
    body = out;
  }
  r.body = body;
  return r;
}

// One request on a new connection. Asserts nothing: safe on any thread.
Response Fetch(int port, const std::string& method, const std::string& path, const std::string& body = "",
               const std::vector<std::string>& headers = {}) {
  Response r;
  const int fd = TryConnect(port, &r.error);
  if (fd < 0) return r;
  if (!TrySendAll(fd, RequestText(method, path, body, headers), &r.error)) {
    ::close(fd);
    return r;
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return ParseResponse(raw);
}

// Fetch on the test's thread, which asserts that an HTTP answer came back.
Response Http(int port, const std::string& method, const std::string& path, const std::string& body = "",
              const std::vector<std::string>& headers = {}) {
  Response r = Fetch(port, method, path, body, headers);
  INFO(r.error);
  REQUIRE(r.status != 0);
  return r;
}

Response Post(int port, const std::string& path, const json& body, const std::vector<std::string>& headers = {}) {
  return Http(port, "POST", path, body.dump(), headers);
}

// The JSON payloads of a server-sent event stream; *done says whether it
// ended with "data: [DONE]".
std::vector<json> SseEvents(const std::string& body, bool* done) {
  std::vector<json> out;
  *done = false;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    REQUIRE(end != std::string::npos);  // every event is terminated
    const std::string ev = body.substr(pos, end - pos);
    pos = end + 2;
    REQUIRE(ev.rfind("data: ", 0) == 0);
    const std::string data = ev.substr(6);
    CHECK_FALSE(*done);  // nothing after [DONE]
    if (data == "[DONE]") {
      *done = true;
      continue;
    }
    json j = json::parse(data, nullptr, false);
    INFO(data);
    REQUIRE_FALSE(j.is_discarded());
    out.push_back(std::move(j));
  }
  return out;
}

// ---- fixtures ----

std::shared_ptr<Engine> SmallEngine() {
  static std::shared_ptr<Engine> engine = [] {
    EngineOptions o;
    o.model_path = testing::WriteRandomLlamaModel({}, "serve-small.gguf");
    o.n_threads = 2;
    auto e = Engine::Open(o);
    REQUIRE(e.ok());
    return *e;
  }();
  return engine;
}

std::unique_ptr<ApiServer> StartServer(std::shared_ptr<const Engine> engine, ServeOptions o = {}) {
  o.port = 0;
  auto s = ApiServer::Start(std::move(engine), std::move(o));
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  return std::move(*s);
}

GenerateResult LocalGreedy(const std::shared_ptr<Engine>& engine, GenerateRequest req, int n) {
  req.sampling.temperature = 0.0f;
  req.ignore_eos = true;
  req.max_tokens = n;
  auto session = Session::Create(engine, 0);
  REQUIRE(session.ok());
  GenerateResult result;
  REQUIRE((*session)->Generate(req, &result).ok());
  return result;
}

void CheckError(const Response& r, int status, const std::string& type = "invalid_request_error") {
  INFO(r.body);
  CHECK(r.status == status);
  const json j = r.Json();
  REQUIRE(j.contains("error"));
  CHECK(j["error"]["type"] == type);
  CHECK(j["error"]["message"].is_string());
  CHECK(j["error"].contains("param"));
  CHECK(j["error"].contains("code"));
}

const json kNormalCompletion = {{"prompt", "the cat"}, {"max_tokens", 4}, {"temperature", 0}, {"ignore_eos", true}};

TEST_CASE("serve: greedy completion equals Session::Generate token for token", "[server][serve]") {
  auto engine = SmallEngine();
  auto server = StartServer(engine);
  GenerateRequest local;
  local.prompt = "Once upon a time";
  const GenerateResult want = LocalGreedy(engine, local, 24);
  REQUIRE(want.tokens.size() == 24);

  const Response r = Post(server->port(), "/v1/completions",
                          {{"model", "whatever"}, {"prompt", "Once upon a time"}, {"max_tokens", 24},
                           {"temperature", 0}, {"ignore_eos", true}, {"return_token_ids", true}});
  REQUIRE(r.status == 200);
  CHECK(r.headers.at("content-type").rfind("application/json", 0) == 0);
  const json j = r.Json();
  CHECK(j["object"] == "text_completion");
  CHECK(j["id"].get<std::string>().rfind("cmpl-", 0) == 0);
  // The served name (here the model's general.name), not the requested one.
  CHECK(j["model"] == engine->model().config().name);
  CHECK(j["created"].is_number_integer());
  REQUIRE(j["choices"].size() == 1);
  CHECK(j["choices"][0]["index"] == 0);
  CHECK(j["choices"][0]["finish_reason"] == "length");
  CHECK(j["choices"][0]["token_ids"].get<std::vector<int32_t>>() == want.tokens);
  CHECK(j["choices"][0]["text"] == want.text);
  CHECK(j["usage"]["prompt_tokens"] == want.prompt_tokens);
  CHECK(j["usage"]["completion_tokens"] == 24);
  CHECK(j["usage"]["total_tokens"] == want.prompt_tokens + 24);

  // Token ids as the prompt give the same continuation.
  std::vector<int32_t> ids = engine->tokenizer().Encode("Once upon a time", {});
  const Response r2 = Post(server->port(), "/v1/completions",
                           {{"prompt", ids}, {"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true},
                            {"return_token_ids", true}});
  REQUIRE(r2.status == 200);
  CHECK(r2.Json()["choices"][0]["token_ids"].get<std::vector<int32_t>>() == want.tokens);
}

TEST_CASE("serve: chat completion renders the chat template like PrepareChatRequest", "[server][serve]") {
  auto engine = SmallEngine();
  auto server = StartServer(engine);
  const std::vector<ChatMessage> messages = {{"system", "You are brief."}, {"user", "Tell me a story."}};
  GenerateRequest local;
  REQUIRE(PrepareChatRequest(*engine, messages, {}, &local).ok());
  const GenerateResult want = LocalGreedy(engine, local, 16);

  const json body = {{"messages", {{{"role", "system"}, {"content", "You are brief."}},
                                   {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Tell me a story."}}}}}}},
                     {"max_completion_tokens", 16}, {"temperature", 0}, {"ignore_eos", true}, {"return_token_ids", true}};
  const Response r = Post(server->port(), "/v1/chat/completions", body);
  REQUIRE(r.status == 200);
  const json j = r.Json();
  CHECK(j["object"] == "chat.completion");
  CHECK(j["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
  CHECK(j["choices"][0]["message"]["role"] == "assistant");
  CHECK(j["choices"][0]["message"]["content"] == want.text);
  CHECK(j["choices"][0]["token_ids"].get<std::vector<int32_t>>() == want.tokens);
  CHECK(j["choices"][0]["finish_reason"] == "length");
  CHECK(j["usage"]["prompt_tokens"] == want.prompt_tokens);
}

TEST_CASE("serve: streamed chunks reassemble to the same text and end with [DONE]", "[server][serve]") {
  auto engine = SmallEngine();
  auto server = StartServer(engine);
  GenerateRequest local;
  local.prompt = "Once upon a time";
  const GenerateResult want = LocalGreedy(engine, local, 20);

  SECTION("completions, with usage") {
    const Response r = Post(server->port(), "/v1/completions",
                            {{"prompt", "Once upon a time"}, {"max_tokens", 20}, {"temperature", 0},
                             {"ignore_eos", true}, {"stream", true}, {"stream_options", {{"include_usage", true}}},
                             {"return_token_ids", true}});
    REQUIRE(r.status == 200);
    CHECK(r.headers.at("content-type").rfind("text/event-stream", 0) == 0);
    CHECK(r.headers.at("cache-control") == "no-cache");
    bool done = false;
    const std::vector<json> events = SseEvents(r.body, &done);
    CHECK(done);
    REQUIRE(events.size() >= 3);
    std::string text;
    std::vector<int32_t> ids;
    std::string id = events[0]["id"];
    for (size_t i = 0; i + 1 < events.size(); ++i) {
      const json& e = events[i];
      CHECK(e["object"] == "text_completion");
      CHECK(e["id"] == id);
      REQUIRE(e["choices"].size() == 1);
      text += e["choices"][0]["text"].get<std::string>();
      for (int32_t t : e["choices"][0]["token_ids"]) ids.push_back(t);
      if (i + 2 < events.size()) CHECK(e["choices"][0]["finish_reason"].is_null());
    }
    CHECK(events[events.size() - 2]["choices"][0]["finish_reason"] == "length");
    CHECK(text == want.text);
    CHECK(ids == want.tokens);
    const json& usage = events.back();
    CHECK(usage["choices"] == json::array());
    CHECK(usage["usage"]["completion_tokens"] == 20);
    CHECK(usage["usage"]["prompt_tokens"] == want.prompt_tokens);
  }

  SECTION("chat, without usage") {
    const std::vector<ChatMessage> messages = {{"user", "hi"}};
    GenerateRequest chat_local;
    REQUIRE(PrepareChatRequest(*engine, messages, {}, &chat_local).ok());
    const GenerateResult chat_want = LocalGreedy(engine, chat_local, 12);
    const Response r = Post(server->port(), "/v1/chat/completions",
                            {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 12},
                             {"temperature", 0}, {"ignore_eos", true}, {"stream", true}});
    REQUIRE(r.status == 200);
    bool done = false;
    const std::vector<json> events = SseEvents(r.body, &done);
    CHECK(done);
    REQUIRE(events.size() >= 2);
    CHECK(events[0]["object"] == "chat.completion.chunk");
    CHECK(events[0]["choices"][0]["delta"]["role"] == "assistant");
    std::string text;
    for (const json& e : events) {
      CHECK(e["object"] == "chat.completion.chunk");
      CHECK_FALSE(e.contains("usage"));
      REQUIRE(e["choices"].size() == 1);
      const json& delta = e["choices"][0]["delta"];
      if (delta.contains("content") && delta["content"].is_string()) text += delta["content"].get<std::string>();
      CHECK_FALSE(e["choices"][0].contains("token_ids"));
    }
    CHECK(events.back()["choices"][0]["finish_reason"] == "length");
    CHECK(events.back()["choices"][0]["delta"] == json::object());
    CHECK(text == chat_want.text);
  }
}

TEST_CASE("serve: concurrent clients each get their own complete answer", "[server][serve]") {
  auto engine = SmallEngine();
  ServeOptions o;
  o.scheduler.max_sequences = 4;  // fewer slots than clients: some wait in the queue
  auto server = StartServer(engine, o);
  const std::vector<std::string> prompts = {"the cat", "a dog ran", "once upon", "the the the",
                                            "hello", "and then", "we saw a", "it was"};
  std::vector<GenerateResult> want;
  for (const std::string& p : prompts) {
    GenerateRequest r;
    r.prompt = p;
    want.push_back(LocalGreedy(engine, r, 12));
  }
  std::vector<Response> got(prompts.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < prompts.size(); ++i) {
    clients.emplace_back([&, i] {
      got[i] = Fetch(server->port(), "POST", "/v1/completions",
                    json{{"prompt", prompts[i]}, {"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true},
                         {"return_token_ids", true}, {"stream", i % 2 == 1}}
                        .dump());
    });
  }
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    INFO("client " << i << ": " << got[i].error << got[i].body.substr(0, 300));
    REQUIRE(got[i].status == 200);
    std::vector<int32_t> ids;
    std::string text;
    if (i % 2 == 0) {
      const json j = got[i].Json();
      ids = j["choices"][0]["token_ids"].get<std::vector<int32_t>>();
      text = j["choices"][0]["text"];
    } else {
      bool done = false;
      for (const json& e : SseEvents(got[i].body, &done)) {
        text += e["choices"][0]["text"].get<std::string>();
        for (int32_t t : e["choices"][0]["token_ids"]) ids.push_back(t);
      }
      CHECK(done);
    }
    CHECK(ids == want[i].tokens);
    CHECK(text == want[i].text);
  }
}

TEST_CASE("serve: n choices, stop strings and logprobs", "[server][serve]") {
  auto engine = SmallEngine();
  auto server = StartServer(engine);
  GenerateRequest local;
  local.prompt = "the cat sat";
  const GenerateResult want = LocalGreedy(engine, local, 32);

  SECTION("n=2 greedy: two identical choices, usage counts both") {
    const Response r = Post(server->port(), "/v1/completions",
                            {{"prompt", "the cat sat"}, {"max_tokens", 32}, {"temperature", 0}, {"ignore_eos", true},
                             {"n", 2}});
    REQUIRE(r.status == 200);
    const json j = r.Json();
    REQUIRE(j["choices"].size() == 2);
    for (int i = 0; i < 2; ++i) {
      CHECK(j["choices"][i]["index"] == i);
      CHECK(j["choices"][i]["text"] == want.text);
    }
    CHECK(j["usage"]["completion_tokens"] == 64);
  }

  SECTION("n=2 streamed, sampled with a seed") {
    const Response r = Post(server->port(), "/v1/chat/completions",
                            {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 8},
                             {"temperature", 1.0}, {"seed", 11}, {"ignore_eos", true}, {"n", 2}, {"stream", true},
                             {"stream_options", {{"include_usage", true}}}});
    REQUIRE(r.status == 200);
    bool done = false;
    const std::vector<json> events = SseEvents(r.body, &done);
    CHECK(done);
    int roles = 0, finishes[2] = {0, 0};
    for (const json& e : events) {
      if (e["choices"].empty()) continue;
      const int index = e["choices"][0]["index"];
      REQUIRE((index == 0 || index == 1));
      if (e["choices"][0]["delta"].contains("role")) ++roles;
      if (e["choices"][0]["finish_reason"] == "length") ++finishes[index];
    }
    CHECK(roles == 2);
    CHECK(finishes[0] == 1);
    CHECK(finishes[1] == 1);
    CHECK(events.back()["usage"]["completion_tokens"] == 16);
  }

  SECTION("a stop string ends the text before it") {
    // A 3-byte ASCII window from the second half of the greedy text.
    std::string stop;
    for (size_t k = want.text.size() / 2; k + 3 <= want.text.size() && stop.empty(); ++k) {
      const std::string w = want.text.substr(k, 3);
      bool ascii = true;
      for (char ch : w) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
      if (ascii) stop = w;
    }
    if (stop.empty()) {
      WARN("no ASCII window in the greedy text; skipped");
      return;
    }
    const size_t first = want.text.find(stop);
    const Response r = Post(server->port(), "/v1/completions",
                            {{"prompt", "the cat sat"}, {"max_tokens", 32}, {"temperature", 0}, {"ignore_eos", true},
                             {"stop", {"never-appears", stop}}});
    REQUIRE(r.status == 200);
    const json j = r.Json();
    CHECK(j["choices"][0]["finish_reason"] == "stop");
    CHECK(j["choices"][0]["text"] == want.text.substr(0, first));
  }

  SECTION("logprobs") {
    const Response r = Post(server->port(), "/v1/completions",
                            {{"prompt", "the cat sat"}, {"max_tokens", 5}, {"temperature", 0}, {"ignore_eos", true},
                             {"logprobs", 3}});
    REQUIRE(r.status == 200);
    const json lp = r.Json()["choices"][0]["logprobs"];
    REQUIRE(lp["tokens"].size() == 5);
    REQUIRE(lp["token_logprobs"].size() == 5);
    REQUIRE(lp["top_logprobs"].size() == 5);
    for (const json& v : lp["token_logprobs"]) CHECK(v.get<double>() <= 0.0);
    CHECK(lp["top_logprobs"][0].size() >= 1);
    const Response c = Post(server->port(), "/v1/chat/completions",
                            {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 3},
                             {"temperature", 0}, {"ignore_eos", true}, {"logprobs", true}, {"top_logprobs", 2}});
    REQUIRE(c.status == 200);
    const json content = c.Json()["choices"][0]["logprobs"]["content"];
    REQUIRE(content.size() == 3);
    CHECK(content[0]["top_logprobs"].size() == 2);
    CHECK(content[0]["bytes"].is_array());
  }
}

// The text of one streamed or whole answer: (text, finish_reason).
std::pair<std::string, std::string> AnswerText(const std::string& body, bool stream, bool chat) {
  std::string text, finish;
  auto take = [&](const json& choice) {
    if (chat) {
      const json& part = stream ? choice["delta"] : choice["message"];
      if (part.contains("content") && part["content"].is_string()) text += part["content"].get<std::string>();
    } else {
      text += choice["text"].get<std::string>();
    }
    if (choice["finish_reason"].is_string()) finish = choice["finish_reason"];
  };
  if (!stream) {
    take(json::parse(body)["choices"][0]);
  } else {
    bool done = false;
    for (const json& e : SseEvents(body, &done)) {
      if (!e["choices"].empty()) take(e["choices"][0]);
    }
    CHECK(done);
  }
  return {text, finish};
}

TEST_CASE("serve: stories260K answers as llama.cpp's server did (recorded)", "[server][serve]") {
  const std::string model = testing::SharedModel("stories260K.gguf");
  if (model.empty()) return;
  EngineOptions eo;
  eo.model_path = model;
  eo.n_threads = 2;
  auto engine = Engine::Open(eo);
  REQUIRE(engine.ok());
  ServeOptions o;
  o.model_path = model;
  auto server = StartServer(*engine, o);
  for (const char* name : {"openai-server-completions-nonstream.txt", "openai-server-completions-stream.txt",
                           "openai-server-chat-nonstream.txt", "openai-server-chat-stream.txt"}) {
    const std::string path = testing::SharedGolden(name);
    if (path.empty()) continue;
    INFO(name);
    std::ifstream in(path, std::ios::binary);
    const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "### REQUEST: POST <path>\n<body>\n\n### RESPONSE ...\n<headers>\r?\n\r?\n<body>"
    const size_t req_line = file.find("### REQUEST: POST ");
    REQUIRE(req_line != std::string::npos);
    const size_t path_end = file.find('\n', req_line);
    const std::string route = file.substr(req_line + 18, path_end - req_line - 18);
    const size_t body_end = file.find('\n', path_end + 1);
    const std::string request = file.substr(path_end + 1, body_end - path_end - 1);
    const size_t resp = file.find("### RESPONSE");
    size_t golden_start = file.find("\r\n\r\n", resp);
    size_t skip = 4;
    if (golden_start == std::string::npos) {
      golden_start = file.find("\n\n", resp);
      skip = 2;
    }
    REQUIRE(golden_start != std::string::npos);
    std::string golden = file.substr(golden_start + skip);
    const bool stream = request.find("\"stream\":true") != std::string::npos;
    const bool chat = route == "/v1/chat/completions";
    if (!stream) golden = golden.substr(0, golden.find('\n'));
    while (stream && golden.size() > 2 && golden.compare(golden.size() - 3, 3, "\n\n\n") == 0) golden.pop_back();

    const Response r = Http(server->port(), "POST", route, request);
    REQUIRE(r.status == 200);
    const auto want = AnswerText(golden, stream, chat);
    const auto got = AnswerText(r.body, stream, chat);
    CHECK(got.first == want.first);
    CHECK(got.second == want.second);
    if (!stream) {
      const json g = json::parse(golden), m = r.Json();
      CHECK(m["usage"]["prompt_tokens"] == g["usage"]["prompt_tokens"]);
      CHECK(m["usage"]["completion_tokens"] == g["usage"]["completion_tokens"]);
      CHECK(m["object"] == g["object"]);
    }
  }
}

TEST_CASE("serve: routes, methods, models, health and metrics", "[server][serve]") {
  auto engine = SmallEngine();
  {
    ServeOptions named;
    named.model_path = "/some/dir/file-name.gguf";
    CHECK(StartServer(engine, named)->model_name() == "file-name.gguf");
  }
  ServeOptions o;
  o.model_name = "tiny";
  o.model_path = "/some/dir/file-name.gguf";
  auto server = StartServer(engine, o);
  const int port = server->port();

  {
    // Start-up errors: the port is taken, the chat template is unknown.
    ServeOptions same;
    same.port = port;
    auto second = ApiServer::Start(engine, same);
    REQUIRE_FALSE(second.ok());
    INFO(second.status().ToString());
    CHECK(second.status().message().find(std::to_string(port)) != absl::string_view::npos);
    ServeOptions bad_template;
    bad_template.port = 0;
    bad_template.chat.chat_template = "no-such-template";
    CHECK_FALSE(ApiServer::Start(engine, bad_template).ok());
  }
  const Response health = Http(port, "GET", "/health");
  CHECK(health.status == 200);
  CHECK(health.Json() == json({{"status", "ok"}}));

  const Response models = Http(port, "GET", "/v1/models");
  REQUIRE(models.status == 200);
  const json m = models.Json();
  CHECK(m["object"] == "list");
  REQUIRE(m["data"].size() == 1);
  CHECK(m["data"][0]["id"] == "tiny");
  CHECK(m["data"][0]["object"] == "model");
  CHECK(m["data"][0]["owned_by"] == "yuan");
  CHECK(m["data"][0]["max_model_len"] == engine->n_ctx());
  CHECK(Http(port, "GET", "/v1/models/tiny").status == 200);
  CheckError(Http(port, "GET", "/v1/models/other"), 404, "not_found_error");

  CheckError(Http(port, "GET", "/nope"), 404, "not_found_error");
  CheckError(Http(port, "POST", "/v1/embeddings", "{}"), 404, "not_found_error");
  const Response wrong = Http(port, "GET", "/v1/chat/completions");
  CheckError(wrong, 405);
  CHECK(wrong.headers.at("allow") == "POST");
  CheckError(Http(port, "DELETE", "/v1/models"), 405);
  CheckError(Http(port, "POST", "/health", "{}"), 405);

  REQUIRE(Post(port, "/v1/completions", kNormalCompletion).status == 200);
  const Response metrics = Http(port, "GET", "/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(metrics.headers.at("content-type").rfind("text/plain; version=0.0.4", 0) == 0);
  auto has = [&](const std::string& s) {
    INFO(s);
    CHECK(metrics.body.find(s) != std::string::npos);
  };
  has("yuan_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 1\n");
  has("yuan_requests_total{endpoint=\"other\",status=\"404\"} 2\n");
  has("yuan_generated_tokens_total 4\n");
  has("yuan_requests_running 0\n");
  has("yuan_requests_queued 0\n");
  has("yuan_kv_cache_usage_ratio ");
  has("yuan_time_to_first_token_seconds_count 1\n");
  has("yuan_inter_token_latency_seconds_count 3\n");
  has("yuan_request_duration_seconds_count 1\n");
  has("yuan_request_duration_seconds_bucket{le=\"+Inf\"} 1\n");
}

TEST_CASE("serve: API keys guard /v1 only", "[server][serve]") {
  auto engine = SmallEngine();
  ServeOptions o;
  o.api_keys = {"key-one", "key-two"};
  auto server = StartServer(engine, o);
  const int port = server->port();
  CheckError(Post(port, "/v1/completions", kNormalCompletion), 401, "authentication_error");
  CheckError(Post(port, "/v1/completions", kNormalCompletion, {"Authorization: Bearer wrong"}), 401,
             "authentication_error");
  CheckError(Http(port, "GET", "/v1/models", "", {"Authorization: key-one"}), 401, "authentication_error");
  CHECK(Post(port, "/v1/completions", kNormalCompletion, {"Authorization: Bearer key-one"}).status == 200);
  CHECK(Http(port, "GET", "/v1/models", "", {"Authorization: Bearer key-two"}).status == 200);
  CHECK(Http(port, "GET", "/health").status == 200);
}

TEST_CASE("serve: hostile requests get their 4xx and the server keeps serving", "[server][serve]") {
  auto engine = SmallEngine();
  auto server = StartServer(engine);
  const int port = server->port();
  const std::string chat = "/v1/chat/completions";
  const std::string msgs = R"("messages":[{"role":"user","content":"hi"}])";
  struct Case {
    std::string path, body;
  };
  const std::vector<Case> bad = {
      {chat, "{not json"},
      {chat, ""},
      {chat, "[]"},
      {chat, std::string(5000, '[')},
      {chat, R"({"messages":[]})"},
      {chat, R"({"messages":"hello"})"},
      {chat, R"({"messages":[{"role":"user"}]})"},
      {chat, R"({"messages":[{"content":"x"}]})"},
      {chat, R"({"messages":[{"role":"emperor","content":"x"}]})"},
      {chat, "{" + msgs + R"(,"max_tokens":-1})"},
      {chat, "{" + msgs + R"(,"max_tokens":99999999999})"},
      {chat, "{" + msgs + R"(,"max_tokens":"lots"})"},
      {chat, "{" + msgs + R"(,"temperature":3})"},
      {chat, "{" + msgs + R"(,"n":0})"},
      {chat, "{" + msgs + R"(,"n":1000})"},
      {chat, "{" + msgs + R"(,"stream":"yes"})"},
      {chat, "{" + msgs + R"(,"response_format":{"type":"json_schema","json_schema":{"schema":{"if":{}}}}})"},
      {chat, "{" + msgs + R"(,"grammar":"root ::= (((("})"},
      {"/v1/completions", R"({"prompt":[1,2,99999]})"},
      {"/v1/completions", R"({"prompt":12})"},
      {"/v1/completions", R"({"prompt":"hi","logit_bias":{"x":1}})"},
      {"/v1/completions", "{\"prompt\":\"" + std::string(3000, 'a') + " " + "\"}"},  // longer than the context
  };
  for (const Case& c : bad) {
    INFO(c.path << " " << c.body.substr(0, 200));
    CheckError(Http(port, "POST", c.path, c.body), 400);
  }
  // Unknown fields are accepted.
  const Response ok = Http(port, "POST", chat, "{" + msgs + R"(,"max_tokens":3,"frobnicate":{"x":[1,2]},"tools":[]})");
  CHECK(ok.status == 200);
  CHECK(Post(port, "/v1/completions", kNormalCompletion).status == 200);
  // prompt + max_tokens beyond the context: generation stops at the context.
  const Response full = Post(port, "/v1/completions",
                             {{"prompt", "the cat"}, {"max_tokens", 256}, {"ignore_eos", true}});
  REQUIRE(full.status == 200);
  const json fj = full.Json();
  CHECK(fj["choices"][0]["finish_reason"] == "length");
  // The last sampled token needs no cache position (as with Session::Generate).
  CHECK(fj["usage"]["total_tokens"].get<int>() >= engine->n_ctx());
  CHECK(fj["usage"]["total_tokens"].get<int>() <= engine->n_ctx() + 1);
  CHECK(server->scheduler().stats().running == 0);
}

TEST_CASE("serve: a client that disconnects mid-stream frees its slot", "[server][serve]") {
  testing::RandomModelSpec spec = testing::SlowModelSpec();
  EngineOptions eo;
  eo.model_path = testing::WriteRandomLlamaModel(spec, "serve-slow.gguf");
  eo.n_threads = 1;
  auto engine = Engine::Open(eo);
  REQUIRE(engine.ok());
  ServeOptions o;
  o.scheduler.max_sequences = 2;
  o.scheduler.max_queue = 0;
  o.scheduler.n_ctx = 1024;
  auto server = StartServer(*engine, o);
  const int port = server->port();

  const int fd = Connect(port);
  SendAll(fd, RequestText("POST", "/v1/completions",
                          json{{"prompt", "the"}, {"max_tokens", 1000}, {"ignore_eos", true}, {"stream", true}}.dump(),
                          {}));
  // Wait for the first content chunk.
  std::string got;
  char buf[4096];
  while (got.find("data: {") == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    REQUIRE(n > 0);
    got.append(buf, static_cast<size_t>(n));
  }
  CHECK(server->scheduler().stats().running == 1);
  ::close(fd);
  const auto t0 = std::chrono::steady_clock::now();
  while (server->scheduler().stats().running + server->scheduler().stats().queued > 0) {
    REQUIRE(std::chrono::steady_clock::now() - t0 < std::chrono::duration<double>(5.0 * testing::TimeScale()));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double freed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  WARN("slot freed " << freed_ms << " ms after the disconnect");
  // Still serving.
  CHECK(Post(port, "/v1/completions", kNormalCompletion).status == 200);
}

TEST_CASE("serve: a full scheduler answers 429 with Retry-After", "[server][serve]") {
  testing::RandomModelSpec spec = testing::SlowModelSpec();
  EngineOptions eo;
  eo.model_path = testing::WriteRandomLlamaModel(spec, "serve-busy.gguf");
  eo.n_threads = 1;
  auto engine = Engine::Open(eo);
  REQUIRE(engine.ok());
  ServeOptions o;
  o.scheduler.max_sequences = 1;
  o.scheduler.max_queue = 0;
  o.scheduler.n_ctx = 512;
  auto server = StartServer(*engine, o);
  const int port = server->port();
  const int fd = Connect(port);
  SendAll(fd, RequestText("POST", "/v1/completions",
                          json{{"prompt", "the"}, {"max_tokens", 400}, {"ignore_eos", true}, {"stream", true}}.dump(),
                          {}));
  std::string got;
  char buf[4096];
  while (got.find("data: {") == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    REQUIRE(n > 0);
    got.append(buf, static_cast<size_t>(n));
  }
  const Response busy = Post(port, "/v1/completions", kNormalCompletion);
  CheckError(busy, 429, "rate_limit_error");
  CHECK(busy.headers.count("retry-after") == 1);
  ::close(fd);
  // Once the first is cancelled, requests are served again.
  const auto t0 = std::chrono::steady_clock::now();
  while (server->scheduler().stats().running > 0) {
    REQUIRE(std::chrono::steady_clock::now() - t0 < std::chrono::duration<double>(5.0 * testing::TimeScale()));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(Post(port, "/v1/completions", kNormalCompletion).status == 200);
}

}  // namespace
}  // namespace yuan::server

namespace yuan::server {
namespace {

// Byte-fallback tokens that end inside a character (the failure seen in a
// peer server, ../shared/golden/llama-server-bench.md): logit biases and a
// frequency penalty make greedy decoding cycle through the three bytes of
// "你" (E4 BD A0) as separate tokens. No chunk may carry part of the
// character; the stream reassembles to exactly the non-streamed text.
TEST_CASE("serve: a character split across byte tokens is never streamed in pieces",
          "[server][serve]") {
  auto engine = SmallEngine();
  auto server = StartServer(engine);
  auto byte_token = [](int b) { return std::to_string(3 + b); };  // <0xXX> ids
  const json bias = {{byte_token(0xE4), 100}, {byte_token(0xBD), 99.5}, {byte_token(0xA0), 99}};
  for (int max_tokens : {30, 31}) {  // 31: ends after a lone E4 byte
    INFO("max_tokens " << max_tokens);
    json req = {{"prompt", "x"}, {"max_tokens", max_tokens}, {"temperature", 0},
                {"ignore_eos", true}, {"logit_bias", bias}, {"frequency_penalty", 2.0},
                {"return_token_ids", true}};
    const Response whole = Post(server->port(), "/v1/completions", req);
    REQUIRE(whole.status == 200);
    const std::string text = whole.Json()["choices"][0]["text"];
    std::string want;
    for (int i = 0; i < 10; ++i) want += "你";
    if (max_tokens == 31) want += "\xEF\xBF\xBD";  // the unfinished character, replaced
    CHECK(text == want);

    req["stream"] = true;
    const Response streamed = Post(server->port(), "/v1/completions", req);
    REQUIRE(streamed.status == 200);
    bool done = false;
    const std::vector<json> events = SseEvents(streamed.body, &done);
    CHECK(done);
    std::string joined;
    int pieces_with_text = 0;
    for (const json& e : events) {
      if (e["choices"].empty()) continue;
      const std::string piece = e["choices"][0].value("text", "");
      // a piece is whole characters: never a replacement character for a
      // character that completes later
      if (!piece.empty()) ++pieces_with_text;
      if (max_tokens == 30) CHECK(piece.find("\xEF\xBF\xBD") == std::string::npos);
      joined += piece;
    }
    CHECK(joined == text);
    CHECK(pieces_with_text >= 10);
  }
}

}  // namespace
}  // namespace yuan::server

namespace yuan::server {
namespace {

// A random adapter for SmallEngine's model, saved as .yadp; returns the path.
std::string SmallAdapter(uint64_t seed, const std::string& name) {
  LoraAdapter a = testing::RandomLoraAdapter(testing::RandomModelSpec{}, 4, seed,
                                             testing::kAllLoraModules, 0.3f);
  REQUIRE(FillFingerprint(SmallEngine()->model(), &a).ok());
  const std::string path = testing::TempDir() + "/" + name;
  REQUIRE(SaveAdapter(a, path).ok());
  return path;
}

std::vector<int32_t> GreedyWith(const std::string& adapter_path, int n) {
  GenerateRequest req;
  req.prompt = "Once upon a time";
  if (!adapter_path.empty()) {
    auto lora = LoadLora(adapter_path, SmallEngine()->model());
    REQUIRE(lora.ok());
    req.loras.push_back({*lora, 1.0f});
  }
  return LocalGreedy(SmallEngine(), req, n).tokens;
}

json GreedyBody(const std::string& model) {
  return {{"model", model}, {"prompt", "Once upon a time"}, {"max_tokens", 16}, {"temperature", 0},
          {"ignore_eos", true}, {"return_token_ids", true}};
}

}  // namespace

TEST_CASE("serve: adapters are models that requests pick by name, batched together", "[server][serve][adapter]") {
  auto engine = SmallEngine();
  const std::string a_path = SmallAdapter(11, "serve-a.yadp"), b_path = SmallAdapter(12, "serve-b.yadp");
  const std::vector<int32_t> base = GreedyWith("", 16), with_a = GreedyWith(a_path, 16),
                             with_b = GreedyWith(b_path, 16);
  REQUIRE(with_a != base);  // else the checks below could not fail
  REQUIRE(with_b != base);
  ServeOptions o;
  o.model_name = "base";
  o.adapters = {{"brand-a", a_path}};
  o.allow_adapter_updates = true;
  auto server = StartServer(engine, o);
  const int port = server->port();

  // Listed as vLLM lists LoRA modules.
  json models = Http(port, "GET", "/v1/models").Json();
  REQUIRE(models["data"].size() == 2);
  CHECK(models["data"][0]["id"] == "base");
  CHECK(models["data"][1]["id"] == "brand-a");
  CHECK(models["data"][1]["parent"] == "base");
  CHECK(models["data"][1]["root"] == a_path);
  CHECK(Http(port, "GET", "/v1/models/brand-a").Json()["parent"] == "base");

  const Response ra = Post(port, "/v1/completions", GreedyBody("brand-a"));
  REQUIRE(ra.status == 200);
  CHECK(ra.Json()["model"] == "brand-a");
  CHECK(ra.Json()["choices"][0]["token_ids"].get<std::vector<int32_t>>() == with_a);
  CHECK(Post(port, "/v1/completions", GreedyBody("base")).Json()["choices"][0]["token_ids"]
            .get<std::vector<int32_t>>() == base);
  CheckError(Post(port, "/v1/completions", GreedyBody("brand-x")), 404, "not_found_error");

  // Loaded at run time, then three requests at once: each gets what it gets alone.
  Response load = Post(port, "/v1/load_lora_adapter", {{"lora_name", "brand-b"}, {"lora_path", b_path}});
  INFO(load.body);
  REQUIRE(load.status == 200);
  CHECK(load.body.find("Success") != std::string::npos);
  CheckError(Post(port, "/v1/load_lora_adapter", {{"lora_name", "brand-b"}, {"lora_path", b_path}}), 400);
  CheckError(Post(port, "/v1/load_lora_adapter", {{"lora_name", "brand-c"}, {"lora_path", "/no/such/file"}}), 400);
  CheckError(Post(port, "/v1/load_lora_adapter", {{"lora_path", b_path}}), 400);
  CHECK(Http(port, "GET", "/v1/models").Json()["data"].size() == 3);
  std::vector<Response> answers(3);
  std::vector<std::thread> clients;
  const char* names[] = {"base", "brand-a", "brand-b"};
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back([&, i] { answers[i] = Fetch(port, "POST", "/v1/completions", GreedyBody(names[i]).dump()); });
  }
  for (auto& t : clients) t.join();
  std::vector<std::vector<int32_t>> got;
  for (const Response& r : answers) {
    INFO(r.error << r.body);
    REQUIRE(r.status == 200);
    got.push_back(r.Json()["choices"][0]["token_ids"].get<std::vector<int32_t>>());
  }
  CHECK(got[0] == base);
  CHECK(got[1] == with_a);
  CHECK(got[2] == with_b);

  // Unloaded: gone from the list and from requests.
  REQUIRE(Post(port, "/v1/unload_lora_adapter", {{"lora_name", "brand-b"}}).status == 200);
  CheckError(Post(port, "/v1/unload_lora_adapter", {{"lora_name", "brand-b"}}), 404, "not_found_error");
  CheckError(Post(port, "/v1/completions", GreedyBody("brand-b")), 404, "not_found_error");
  CHECK(Http(port, "GET", "/v1/models").Json()["data"].size() == 2);
}

TEST_CASE("serve: adapter updates are off unless allowed; bad adapters stop start-up", "[server][serve][adapter]") {
  auto engine = SmallEngine();
  auto server = StartServer(engine);
  const std::string a_path = SmallAdapter(13, "serve-c.yadp");
  CheckError(Post(server->port(), "/v1/load_lora_adapter", {{"lora_name", "x"}, {"lora_path", a_path}}), 404,
             "not_found_error");
  // Without served adapters the model field is not checked (one model).
  CHECK(Post(server->port(), "/v1/completions", GreedyBody("anything")).status == 200);

  ServeOptions o;
  o.port = 0;
  o.adapters = {{"bad", "/no/such/adapter.yadp"}};
  auto s = ApiServer::Start(engine, o);
  REQUIRE_FALSE(s.ok());
  CHECK(std::string(s.status().message()).find("bad") != std::string::npos);
}

}  // namespace yuan::server

namespace yuan::server {

TEST_CASE("serve: response_format json_schema / json_object and grammar constrain the answer",
          "[server][serve][grammar]") {
  auto engine = SmallEngine();
  auto server = StartServer(engine);
  const int port = server->port();
  // Properties in the schema's order (the body's, not sorted), every seed
  // valid JSON.
  const std::string schema = R"({"type":"object","properties":{
      "zeta":{"type":"integer","minimum":0,"maximum":9},
      "alpha":{"enum":["x","y"]}},"required":["zeta","alpha"],"additionalProperties":false})";
  for (int seed = 1; seed <= 4; ++seed) {
    const std::string body = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":200,"seed":)" +
                             std::to_string(seed) +
                             R"(,"temperature":1.0,"response_format":{"type":"json_schema","json_schema":{"name":"t","schema":)" +
                             schema + "}}}";
    const Response r = Http(port, "POST", "/v1/chat/completions", body);
    INFO(r.body);
    REQUIRE(r.status == 200);
    const json j = r.Json();
    const std::string text = j["choices"][0]["message"]["content"].get<std::string>();
    INFO(text);
    CHECK(j["choices"][0]["finish_reason"] == "stop");
    const json doc = json::parse(text, nullptr, false);
    REQUIRE(doc.is_object());
    CHECK(doc["zeta"].is_number_integer());
    CHECK((doc["alpha"] == "x" || doc["alpha"] == "y"));
    CHECK(text.find("zeta") < text.find("alpha"));
  }
  const Response obj = Post(port, "/v1/completions",
                            {{"prompt", "a"}, {"max_tokens", 200}, {"seed", 3},
                             {"response_format", {{"type", "json_object"}}}});
  INFO(obj.body);
  REQUIRE(obj.status == 200);
  const std::string obj_text = obj.Json()["choices"][0]["text"].get<std::string>();
  INFO(obj_text);
  if (obj.Json()["choices"][0]["finish_reason"] == "stop") {
    CHECK(json::parse(obj_text, nullptr, false).is_object());
  } else {
    CHECK(obj_text.rfind("{", 0) == 0);  // cut short by max_tokens: a prefix of an object
  }
  const Response g = Post(port, "/v1/completions",
                          {{"prompt", "a"}, {"max_tokens", 10}, {"grammar", "root ::= \"left\" | \"right\""}});
  REQUIRE(g.status == 200);
  const std::string gt = g.Json()["choices"][0]["text"].get<std::string>();
  CHECK((gt == "left" || gt == "right"));
}

}  // namespace yuan::server

// The remote runtime against a scripted fake server (plain POSIX sockets on
// 127.0.0.1, one thread that replays responses byte-exactly, in pieces with
// small pauses): the client (runtime/remote) and the public C ABI with a
// "http://127.0.0.1:PORT/v1" model. Streams split anywhere, keep-alives, a
// missing [DONE], servers that die, stall, refuse or rate-limit, retries,
// timeouts, cancellation, and what a remote engine does not offer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/remote/openai_client.h"
#include "tests/common/test_support.h"
#include "yuan/yuan.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Tests talk to 127.0.0.1 directly whatever proxy the environment names,
// and choose their API keys themselves.
const bool kEnvReady = [] {
  setenv("no_proxy", "127.0.0.1,localhost", 1);
  setenv("NO_PROXY", "127.0.0.1,localhost", 1);
  unsetenv("YUAN_API_KEY");
  unsetenv("OPENAI_API_KEY");
  return true;
}();

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

// ---- the fake server ------------------------------------------------------

// What the server does on one connection: write each piece after its pause,
// then keep the connection open hold_ms (-1: until the client closes it)
// and close it.
struct Reply {
  std::vector<std::pair<int, std::string>> pieces;  // (pause in ms before, bytes)
  int hold_ms = 0;
};

// Chooses the reply to a request (its raw head and body) and the 0-based
// number of the connection.
using Handler = std::function<Reply(const std::string& request, int connection)>;

class FakeServer {
 public:
  explicit FakeServer(Handler handler) : handler_(std::move(handler)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeServer() {
    stop_.store(true);
    thread_.join();
    close(fd_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int connections() const { return connections_.load(); }
  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  // Requests whose first line starts with `prefix` ("POST /v1/completions").
  int count(const std::string& prefix) const {
    int n = 0;
    for (const std::string& r : requests()) n += r.rfind(prefix, 0) == 0;
    return n;
  }

 private:
  void Loop() {
    while (!stop_.load()) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 10) <= 0) continue;
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      int one = 1;
      setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      const int index = connections_.fetch_add(1);
      std::string request;
      if (ReadRequest(c, &request)) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          requests_.push_back(request);
        }
        Play(c, handler_(request, index));
      }
      close(c);
    }
  }

  bool ReadRequest(int c, std::string* out) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    size_t need = std::string::npos;
    char buf[4096];
    while (Clock::now() < deadline && !stop_.load()) {
      if (need == std::string::npos) {
        const size_t end = out->find("\r\n\r\n");
        if (end != std::string::npos) {
          size_t length = 0;
          const size_t cl = out->find("Content-Length: ");
          if (cl != std::string::npos && cl < end) length = std::stoul(out->substr(cl + 16));
          need = end + 4 + length;
        }
      }
      if (need != std::string::npos && out->size() >= need) return true;
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 10) <= 0) continue;
      const ssize_t n = recv(c, buf, sizeof buf, 0);
      if (n <= 0) return false;
      out->append(buf, static_cast<size_t>(n));
    }
    return false;
  }

  // Sleeps ms (-1: forever) unless stopping or the client hung up.
  bool Wait(int c, int ms) {
    const auto end = Clock::now() + std::chrono::milliseconds(ms < 0 ? 3600000 : ms);
    char buf[256];
    while (Clock::now() < end && !stop_.load()) {
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 5) > 0) {
        const ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n <= 0) return false;  // the client went away
      }
    }
    return !stop_.load();
  }

  void Play(int c, const Reply& reply) {
    for (const auto& [pause, bytes] : reply.pieces) {
      if (pause > 0 && !Wait(c, pause)) return;
      if (send(c, bytes.data(), bytes.size(), MSG_NOSIGNAL) < 0) return;
    }
    if (reply.hold_ms != 0) Wait(c, reply.hold_ms);
  }

  Handler handler_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
};

// ---- canned replies ---------------------------------------------------------

// `body` cut into random pieces of 1..max_piece bytes, a pause of 0-1 ms
// before some of them.
std::vector<std::pair<int, std::string>> Pieces(const std::string& body, unsigned seed,
                                                size_t max_piece = 23) {
  std::mt19937 rng(seed);
  std::vector<std::pair<int, std::string>> out;
  for (size_t at = 0; at < body.size();) {
    const size_t n = std::min<size_t>(body.size() - at, 1 + rng() % max_piece);
    out.push_back({rng() % 4 == 0 ? 1 : 0, body.substr(at, n)});
    at += n;
  }
  return out;
}

std::string Chunk(const std::string& piece) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
  return size + piece + "\r\n";
}

// A 200 event stream: chunked (then `complete` decides whether the final
// zero chunk is sent) or delimited by closing the connection.
Reply SseReply(const std::string& body, bool chunked = true, bool complete = true,
               unsigned seed = 1) {
  Reply r;
  r.pieces.push_back({0, std::string("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                     "Cache-Control: no-cache\r\n") +
                             (chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n") +
                             "\r\n"});
  for (auto& [pause, bytes] : Pieces(body, seed)) {
    r.pieces.push_back({pause, chunked ? Chunk(bytes) : bytes});
  }
  if (chunked && complete) r.pieces.push_back({0, "0\r\n\r\n"});
  return r;
}

Reply JsonReply(int status, const std::string& body, const std::string& extra_headers = "") {
  Reply r;
  r.pieces.push_back({0, "HTTP/1.1 " + std::to_string(status) +
                             " X\r\nContent-Type: application/json\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\nConnection: close\r\n" +
                             extra_headers + "\r\n" + body});
  return r;
}

Reply ModelsReply(const std::string& owned_by = "llamacpp") {
  return JsonReply(200, R"({"object":"list","data":[{"id":"test-model","object":"model","owned_by":")" +
                            owned_by +
                            R"(","meta":{"n_ctx_train":512,"n_vocab":512,"n_embd":64,"n_params":292800,"size":1171200}}]})");
}

bool IsModels(const std::string& request) { return request.rfind("GET /v1/models", 0) == 0; }

std::string CompletionChunk(const std::string& text, const std::string& finish = "",
                            const std::string& ids = "") {
  std::string s = R"(data: {"id":"c","object":"text_completion","choices":[{"index":0,"text":")" +
                  text + "\"";
  if (!ids.empty()) s += R"(,"token_ids":[)" + ids + "]";
  s += R"(,"finish_reason":)" + (finish.empty() ? std::string("null") : "\"" + finish + "\"") +
       "}]}\n\n";
  return s;
}

// ---- C ABI helpers ----------------------------------------------------------

struct Collected {
  std::mutex mu;
  std::string text;
  std::vector<int32_t> ids, indexes;
  std::atomic<int> events{0};
};

int Collect(const yuan_token_event* ev, void* user) {
  auto* c = static_cast<Collected*>(user);
  std::lock_guard<std::mutex> lock(c->mu);
  c->text.append(ev->text, ev->text_len);
  c->ids.push_back(ev->token);
  c->indexes.push_back(ev->index);
  c->events.fetch_add(1);
  return 0;
}

struct EngineConfig {
  int read_timeout_ms = 3000;
  int connect_timeout_ms = 2000;
  int max_retries = 2;
  const char* api_key = nullptr;
  const char* remote_model = nullptr;
};

yuan_status OpenRemote(const std::string& url, yuan_engine** e, const EngineConfig& c = {}) {
  yuan_engine_options o;
  yuan_engine_options_init(&o);
  o.model = url.c_str();
  o.read_timeout_ms = c.read_timeout_ms;
  o.connect_timeout_ms = c.connect_timeout_ms;
  o.max_retries = c.max_retries;
  o.api_key = c.api_key;
  o.remote_model = c.remote_model;
  return yuan_engine_open(&o, e);
}

struct Remote {
  yuan_engine* engine = nullptr;
  yuan_session* session = nullptr;
  explicit Remote(const std::string& url, const EngineConfig& c = {}) {
    REQUIRE(OpenRemote(url, &engine, c) == YUAN_OK);
    REQUIRE(yuan_session_open(engine, nullptr, &session) == YUAN_OK);
  }
  ~Remote() {
    yuan_session_free(session);
    yuan_engine_free(engine);
  }
};

yuan_generate_options Options(Collected* c, int max_tokens = 32) {
  yuan_generate_options go;
  yuan_generate_options_init(&go);
  go.max_tokens = max_tokens;
  go.on_token = &Collect;
  go.user_data = c;
  return go;
}

yuan::remote::ClientOptions ClientFor(const FakeServer& s) {
  yuan::remote::ClientOptions o;
  o.base_url = s.url();
  o.read_timeout_ms = 3000;
  o.connect_timeout_ms = 2000;
  o.retry_base_ms = 20;
  return o;
}

}  // namespace

TEST_CASE("a streamed completion split across reads, with keep-alives, over the C ABI",
          "[remote]") {
  const std::string body = Fixture("openai-keepalive-stream.txt");
  FakeServer server([&](const std::string& req, int) {
    return IsModels(req) ? ModelsReply() : SseReply(body, /*chunked=*/true, true, 11);
  });
  Remote r(server.url());
  Collected c;
  yuan_generate_options go = Options(&c);
  yuan_generate_result res;
  yuan_generate_result_init(&res);
  REQUIRE(yuan_session_generate(r.session, "Once", &go, &res) == YUAN_OK);
  CHECK(std::string(res.text, res.text_len) == "Once upon a time");
  CHECK(c.text == "Once upon a time");
  CHECK(c.events.load() == 3);
  CHECK(c.ids == std::vector<int32_t>{-1, -1, -1});  // no ids from this server
  CHECK(c.indexes == std::vector<int32_t>{0, 1, 2});
  CHECK(res.finish_reason == YUAN_FINISH_STOP);
  CHECK(res.prompt_tokens == 3);
  CHECK(res.completion_tokens == 3);
  yuan_free(res.text);

  // The request: streamed, with usage, to the listed model.
  const std::string post = server.requests().back();
  CHECK(post.rfind("POST /v1/completions HTTP/1.1", 0) == 0);
  CHECK(post.find(R"("stream":true)") != std::string::npos);
  CHECK(post.find(R"("stream_options":{"include_usage":true})") != std::string::npos);
  CHECK(post.find(R"("model":"test-model")") != std::string::npos);
  CHECK(post.find(R"("prompt":"Once")") != std::string::npos);
  CHECK(post.find("Authorization:") == std::string::npos);
  CHECK(post.find("return_token_ids") == std::string::npos);  // llama.cpp: not known to take it

  // The same stream close-delimited instead of chunked, and in 1-byte pieces.
  FakeServer plain([&](const std::string& req, int) {
    if (IsModels(req)) return ModelsReply();
    Reply rep = SseReply(body, /*chunked=*/false);
    Reply bytes;
    for (const auto& piece : rep.pieces) {
      for (char ch : piece.second) bytes.pieces.push_back({0, std::string(1, ch)});
    }
    return bytes;
  });
  Remote r2(plain.url());
  Collected c2;
  go = Options(&c2);
  REQUIRE(yuan_session_generate(r2.session, "Once", &go, nullptr) == YUAN_OK);
  CHECK(c2.text == "Once upon a time");
}

TEST_CASE("model info, metadata and the calls a remote engine does not have", "[remote]") {
  FakeServer server([](const std::string&, int) { return ModelsReply(); });
  Remote r(server.url());
  yuan_model_info info;
  yuan_model_info_init(&info);
  REQUIRE(yuan_engine_model_info(r.engine, &info) == YUAN_OK);
  CHECK(std::string(info.backend) == "remote");
  CHECK(std::string(info.name) == "test-model");
  CHECK(info.n_ctx_train == 512);
  CHECK(info.n_ctx == 512);
  CHECK(info.n_vocab == 512);
  char buf[256];
  size_t needed = 0;
  REQUIRE(yuan_engine_metadata(r.engine, "general.name", buf, sizeof buf, &needed) == YUAN_OK);
  CHECK(std::string(buf) == "test-model");
  REQUIRE(yuan_engine_metadata(r.engine, "remote.server", buf, sizeof buf, &needed) == YUAN_OK);
  CHECK(std::string(buf) == "llama.cpp");
  CHECK(yuan_engine_metadata(r.engine, "llama.context_length", buf, sizeof buf, &needed) ==
        YUAN_ERR_NOT_FOUND);

  size_t n = 0;
  CHECK(yuan_tokenize(r.engine, "hi", 2, 0, nullptr, 0, &n) == YUAN_ERR_UNIMPLEMENTED);
  CHECK(std::string(yuan_last_error()).find("remote backend") != std::string::npos);
  const yuan_token t = 1;
  CHECK(yuan_detokenize(r.engine, &t, 1, 0, buf, sizeof buf, &needed) == YUAN_ERR_UNIMPLEMENTED);
  const yuan_chat_message msg{"user", "hi"};
  CHECK(yuan_chat_apply_template(r.engine, &msg, 1, nullptr, 1, buf, sizeof buf, &needed) ==
        YUAN_ERR_UNIMPLEMENTED);
  CHECK(yuan_session_decode(r.session, &t, 1) == YUAN_ERR_UNIMPLEMENTED);
  CHECK(yuan_session_save(r.session, buf, sizeof buf, &needed) == YUAN_ERR_UNIMPLEMENTED);
  CHECK(yuan_session_load(r.session, buf, 8) == YUAN_ERR_UNIMPLEMENTED);
  const float* logits = nullptr;
  int32_t n_vocab = 0;
  CHECK(yuan_session_logits(r.session, &logits, &n_vocab) == YUAN_ERR_FAILED_PRECONDITION);
  int32_t n_past = -1;
  CHECK(yuan_session_n_past(r.session, &n_past) == YUAN_OK);
  CHECK(n_past == 0);
  CHECK(yuan_session_reset(r.session) == YUAN_OK);

  // max_tokens = 0 finishes at once without asking the server.
  const int before = server.connections();
  yuan_generate_options go;
  yuan_generate_options_init(&go);
  go.max_tokens = 0;
  yuan_generate_result res;
  yuan_generate_result_init(&res);
  REQUIRE(yuan_session_generate(r.session, "x", &go, &res) == YUAN_OK);
  CHECK(res.finish_reason == YUAN_FINISH_LENGTH);
  CHECK(res.text_len == 0);
  yuan_free(res.text);
  CHECK(server.connections() == before);

  // The CPU backend refuses URLs, the remote one paths.
  yuan_engine_options o;
  yuan_engine_options_init(&o);
  yuan_engine* e = nullptr;
  o.model = "/some/model.gguf";
  o.backend = YUAN_BACKEND_REMOTE;
  CHECK(yuan_engine_open(&o, &e) == YUAN_ERR_INVALID_ARGUMENT);
  const std::string url = server.url();
  o.model = url.c_str();
  o.backend = YUAN_BACKEND_CPU;
  CHECK(yuan_engine_open(&o, &e) == YUAN_ERR_INVALID_ARGUMENT);
  o.backend = YUAN_BACKEND_AUTO;
  o.read_timeout_ms = -2;
  CHECK(yuan_engine_open(&o, &e) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(e == nullptr);
}

TEST_CASE("engine options: the v1 layout still works, init never writes past it", "[remote]") {
  // A program built against the v1 header has a 32-byte struct and calls
  // the exported function by name.
  unsigned char buf[sizeof(yuan_engine_options) + 16];
  std::memset(buf, 0xAB, sizeof buf);
  auto* v1 = reinterpret_cast<yuan_engine_options*>(buf);
  (yuan_engine_options_init)(v1);
  CHECK(v1->struct_size == 32);
  for (size_t i = 32; i < sizeof buf; ++i) REQUIRE(buf[i] == 0xAB);
  std::memset(buf, 0xAB, sizeof buf);
  yuan_engine_options_init_sized(v1, 40);
  CHECK(v1->struct_size == 40);
  for (size_t i = 40; i < sizeof buf; ++i) REQUIRE(buf[i] == 0xAB);
  yuan_engine_options_init_sized(v1, 8);  // below the v1 size: ignored
  CHECK(v1->struct_size == 40);
  yuan_engine_options_init_sized(nullptr, 64);

  yuan_engine_options o;
  yuan_engine_options_init(&o);
  CHECK(o.struct_size == sizeof(yuan_engine_options));
  CHECK(o.max_retries == 2);
  CHECK(o.api_key == nullptr);
  CHECK(o.connect_timeout_ms == 0);

  // Opening with the v1 size: the remote fields take their defaults.
  FakeServer server([](const std::string&, int) { return ModelsReply(); });
  const std::string url = server.url();
  o.model = url.c_str();
  o.struct_size = 32;
  o.api_key = "ignored: beyond struct_size";
  yuan_engine* e = nullptr;
  REQUIRE(yuan_engine_open(&o, &e) == YUAN_OK);
  yuan_engine_free(e);
  CHECK(server.requests().back().find("Authorization") == std::string::npos);
}

TEST_CASE("token ids from yuan serve reach on_token and the result", "[remote]") {
  const std::string body = CompletionChunk("He", "", "10") + CompletionChunk("llo", "", "11,12") +
                           CompletionChunk("", "length") + "data: [DONE]\n\n";
  FakeServer server([&](const std::string& req, int) {
    return IsModels(req) ? ModelsReply("yuan") : SseReply(body);
  });
  Remote r(server.url());
  Collected c;
  yuan_generate_options go = Options(&c, 3);
  yuan_generate_result res;
  yuan_generate_result_init(&res);
  REQUIRE(yuan_session_generate(r.session, "x", &go, &res) == YUAN_OK);
  CHECK(c.ids == std::vector<int32_t>{10, 11, 12});
  CHECK(c.indexes == std::vector<int32_t>{0, 1, 2});
  CHECK(c.text == "Hello");
  CHECK(res.completion_tokens == 3);  // counted from the ids (no usage chunk)
  CHECK(res.finish_reason == YUAN_FINISH_LENGTH);
  yuan_free(res.text);
  const std::string post = server.requests().back();
  CHECK(post.find(R"("return_token_ids":true)") != std::string::npos);

  // Through the client directly, the ids are in GenerateResult::tokens.
  yuan::remote::ClientOptions co = ClientFor(server);
  co.kind = yuan::remote::ServerKind::kYuan;
  co.return_token_ids = true;
  yuan::remote::OpenAiClient client(co);
  yuan::remote::CompletionCall call;
  call.model = "test-model";
  call.request.prompt = "x";
  yuan::GenerateResult gr;
  REQUIRE(client.Complete(call, nullptr, &gr).ok());
  CHECK(gr.tokens == std::vector<int32_t>{10, 11, 12});
  CHECK(gr.text == "Hello");
}

TEST_CASE("chat over the C ABI sends the messages and streams the reply", "[remote]") {
  const std::string body = Fixture("openai-chat-stream.txt");
  FakeServer server([&](const std::string& req, int) {
    return IsModels(req) ? ModelsReply("vllm") : SseReply(body, true, true, 5);
  });
  Remote r(server.url());
  const yuan_chat_message msgs[] = {{"system", "Be brief."}, {"user", "Say \"hi\""}};
  Collected c;
  yuan_generate_options go = Options(&c);
  yuan_chat_options co;
  yuan_chat_options_init(&co);
  co.enable_thinking = 0;
  yuan_generate_result res;
  yuan_generate_result_init(&res);
  REQUIRE(yuan_session_chat(r.session, msgs, 2, &co, &go, &res) == YUAN_OK);
  CHECK(std::string(res.text) == "Hello! How can I help, caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD?");
  CHECK(res.finish_reason == YUAN_FINISH_STOP);
  CHECK(res.prompt_tokens == 9);
  CHECK(res.completion_tokens == 12);
  yuan_free(res.text);
  const std::string post = server.requests().back();
  CHECK(post.rfind("POST /v1/chat/completions", 0) == 0);
  CHECK(post.find(R"({"role":"user","content":"Say \"hi\""})") != std::string::npos);
  CHECK(post.find(R"("chat_template_kwargs":{"enable_thinking":false})") != std::string::npos);

  co.chat_template = "chatml";
  CHECK(yuan_session_chat(r.session, msgs, 2, &co, &go, nullptr) == YUAN_ERR_UNIMPLEMENTED);
}

TEST_CASE("a stream without [DONE] after its finish_reason is complete", "[remote]") {
  const std::string body = Fixture("openai-missing-done-stream.txt");
  FakeServer server([&](const std::string& req, int) {
    return IsModels(req) ? ModelsReply() : SseReply(body, /*chunked=*/false);
  });
  Remote r(server.url());
  Collected c;
  yuan_generate_options go = Options(&c);
  const yuan_chat_message msg{"user", "hi"};
  yuan_generate_result res;
  yuan_generate_result_init(&res);
  REQUIRE(yuan_session_chat(r.session, &msg, 1, nullptr, &go, &res) == YUAN_OK);
  CHECK(std::string(res.text) == "Short answer.");
  CHECK(res.finish_reason == YUAN_FINISH_STOP);
  yuan_free(res.text);
}

TEST_CASE("a server that dies mid-stream gives UNAVAILABLE promptly, never a retry",
          "[remote]") {
  const std::string first = CompletionChunk("Hi");
  for (bool chunked : {true, false}) {
    FakeServer server([&](const std::string& req, int) {
      return IsModels(req) ? ModelsReply() : SseReply(first, chunked, /*complete=*/false);
    });
    Remote r(server.url());
    Collected c;
    yuan_generate_options go = Options(&c);
    const auto t0 = Clock::now();
    CHECK(yuan_session_generate(r.session, "x", &go, nullptr) == YUAN_ERR_UNAVAILABLE);
    CHECK(Seconds(t0) < 1.0 * yuan::testing::TimeScale());
    CHECK(std::string(yuan_last_error()).find("connection lost") != std::string::npos);
    CHECK(c.text == "Hi");
    CHECK(server.count("POST /v1/completions") == 1);
  }
  // Dying before the first token is retried (nothing reached the caller).
  FakeServer early([&](const std::string& req, int) {
    if (IsModels(req)) return ModelsReply();
    Reply rep = SseReply("", /*chunked=*/true, /*complete=*/false);
    return rep;
  });
  EngineConfig cfg;
  cfg.max_retries = 1;
  Remote r(early.url(), cfg);
  CHECK(yuan_session_generate(r.session, "x", nullptr, nullptr) == YUAN_ERR_UNAVAILABLE);
  CHECK(early.count("POST /v1/completions") == 2);
  // An event stream closed cleanly before any event: also retried.
  FakeServer empty([&](const std::string& req, int) {
    return IsModels(req) ? ModelsReply() : SseReply("", /*chunked=*/false);
  });
  Remote r2(empty.url(), cfg);
  CHECK(yuan_session_generate(r2.session, "x", nullptr, nullptr) == YUAN_ERR_UNAVAILABLE);
  CHECK(std::string(yuan_last_error()).find("without a finish_reason") != std::string::npos);
  CHECK(empty.count("POST /v1/completions") == 2);
}

TEST_CASE("429 twice then 200 succeeds after retries; a long Retry-After fails at once",
          "[remote]") {
  const std::string body = Fixture("openai-completions-stream.txt");
  const std::string limited = R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})";
  std::atomic<int> posts{0};
  FakeServer server([&](const std::string& req, int) {
    if (IsModels(req)) return ModelsReply();
    if (posts.fetch_add(1) < 2) return JsonReply(429, limited, "Retry-After: 0\r\n");
    return SseReply(body);
  });
  Remote r(server.url());
  Collected c;
  yuan_generate_options go = Options(&c);
  yuan_generate_result res;
  yuan_generate_result_init(&res);
  const auto t0 = Clock::now();
  REQUIRE(yuan_session_generate(r.session, "x", &go, &res) == YUAN_OK);
  CHECK(Seconds(t0) < 2.0 * yuan::testing::TimeScale());  // Retry-After: 0 was honoured
  CHECK(std::string(res.text) == "This is a test.");
  CHECK(res.finish_reason == YUAN_FINISH_LENGTH);
  yuan_free(res.text);
  CHECK(server.connections() == 4);  // models + 2 x 429 + 200
  CHECK(server.count("POST /v1/completions") == 3);

  FakeServer slow([&](const std::string& req, int) {
    return IsModels(req) ? ModelsReply() : JsonReply(429, limited, "Retry-After: 3600\r\n");
  });
  Remote r2(slow.url());
  CHECK(yuan_session_generate(r2.session, "x", nullptr, nullptr) == YUAN_ERR_RESOURCE_EXHAUSTED);
  const std::string err = yuan_last_error();
  CHECK(err.find("Rate limit reached") != std::string::npos);
  CHECK(err.find("retry after 3600 s") != std::string::npos);
  CHECK(slow.count("POST /v1/completions") == 1);
}

TEST_CASE("5xx before the first token is retried; an error after it is not", "[remote]") {
  const std::string oops = R"({"error":{"message":"model crashed","type":"server_error","code":500}})";
  FakeServer before([&](const std::string& req, int) {
    return IsModels(req) ? ModelsReply() : JsonReply(500, oops);
  });
  EngineConfig cfg;
  cfg.max_retries = 2;
  {
    Remote r(before.url(), cfg);
    CHECK(yuan_session_generate(r.session, "x", nullptr, nullptr) == YUAN_ERR_UNAVAILABLE);
    const std::string err = yuan_last_error();
    CHECK(err.find("model crashed") != std::string::npos);
    CHECK(err.find("HTTP 500") != std::string::npos);
    CHECK(err.find("after 3 attempts") != std::string::npos);
    CHECK(before.count("POST /v1/completions") == 3);
  }

  const std::string body = Fixture("openai-stream-error.txt");
  FakeServer after([&](const std::string& req, int) {
    return IsModels(req) ? ModelsReply() : SseReply(body);
  });
  Remote r(after.url(), cfg);
  Collected c;
  yuan_generate_options go = Options(&c);
  CHECK(yuan_session_generate(r.session, "x", &go, nullptr) == YUAN_ERR_UNAVAILABLE);
  CHECK(std::string(yuan_last_error()).find("Sorry about that") != std::string::npos);
  CHECK(c.text == "Hi");
  CHECK(after.count("POST /v1/completions") == 1);
}

TEST_CASE("HTTP errors map to statuses with the server's message", "[remote]") {
  struct Case {
    int http;
    std::string body;
    yuan_status expected;
  };
  const std::vector<Case> cases = {
      {400, R"({"error":{"message":"temperature must be <= 2","type":"invalid_request_error"}})",
       YUAN_ERR_INVALID_ARGUMENT},
      {400, R"({"object":"error","message":"This model's maximum context length is 512 tokens","type":"BadRequestError","code":400})",
       YUAN_ERR_OUT_OF_RANGE},
      {401, Fixture("openai-error.txt"), YUAN_ERR_UNAUTHENTICATED},
      {403, R"({"error":{"message":"not allowed"}})", YUAN_ERR_PERMISSION_DENIED},
      {404, R"({"error":{"message":"The model `nope` does not exist","code":"model_not_found"}})",
       YUAN_ERR_NOT_FOUND},
      {413, "request entity too large", YUAN_ERR_OUT_OF_RANGE},
  };
  for (const Case& k : cases) {
    FakeServer server([&](const std::string& req, int) {
      return IsModels(req) ? ModelsReply() : JsonReply(k.http, k.body);
    });
    Remote r(server.url());
    CHECK(yuan_session_generate(r.session, "x", nullptr, nullptr) == k.expected);
    CHECK(std::string(yuan_last_error()).find("HTTP " + std::to_string(k.http)) != std::string::npos);
    CHECK(server.count("POST /v1/completions") == 1);  // 4xx is never retried
  }
  // A refused key already fails yuan_engine_open (GET /v1/models).
  FakeServer denied([&](const std::string&, int) {
    return JsonReply(401, Fixture("openai-error.txt"));
  });
  yuan_engine* e = nullptr;
  CHECK(OpenRemote(denied.url(), &e) == YUAN_ERR_UNAUTHENTICATED);
  CHECK(std::string(yuan_last_error()).find("Incorrect API key") != std::string::npos);
  CHECK(e == nullptr);
}

TEST_CASE("a silent server hits the read timeout: DEADLINE_EXCEEDED", "[remote]") {
  FakeServer server([](const std::string& req, int) {
    if (IsModels(req)) return ModelsReply();
    Reply stall;
    stall.hold_ms = -1;  // reads the request, then says nothing
    return stall;
  });
  EngineConfig cfg;
  cfg.read_timeout_ms = 300;
  Remote r(server.url(), cfg);
  const auto t0 = Clock::now();
  CHECK(yuan_session_generate(r.session, "x", nullptr, nullptr) == YUAN_ERR_DEADLINE_EXCEEDED);
  const double took = Seconds(t0);
  CHECK(took >= 0.25);
  CHECK(took < 1.5 * yuan::testing::TimeScale());
  CHECK(std::string(yuan_last_error()).find("read timeout") != std::string::npos);
  CHECK(server.count("POST /v1/completions") == 1);  // a timeout is not retried

  // Silence in the middle of a stream too.
  FakeServer mid([](const std::string& req, int) {
    if (IsModels(req)) return ModelsReply();
    Reply rep = SseReply(CompletionChunk("Hi"), true, /*complete=*/false);
    rep.hold_ms = -1;
    return rep;
  });
  Remote r2(mid.url(), cfg);
  Collected c;
  yuan_generate_options go = Options(&c);
  CHECK(yuan_session_generate(r2.session, "x", &go, nullptr) == YUAN_ERR_DEADLINE_EXCEEDED);
  CHECK(c.text == "Hi");
}

TEST_CASE("cancel while the server stalls returns in well under a second", "[remote]") {
  FakeServer server([](const std::string& req, int) {
    if (IsModels(req)) return ModelsReply();
    Reply rep = SseReply(CompletionChunk("Hi"), true, /*complete=*/false);
    rep.hold_ms = -1;  // one token, then nothing
    return rep;
  });
  EngineConfig cfg;
  cfg.read_timeout_ms = 30000;
  Remote r(server.url(), cfg);

  // yuan_session_cancel from another thread during a blocking generate.
  Collected c;
  yuan_generate_options go = Options(&c);
  yuan_generate_result res;
  yuan_generate_result_init(&res);
  std::atomic<double> cancel_to_return{-1};
  std::thread canceller([&] {
    while (c.events.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto t0 = Clock::now();
    yuan_session_cancel(r.session);
    while (cancel_to_return.load() < 0 && Seconds(t0) < 5) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  const yuan_status st = yuan_session_generate(r.session, "x", &go, &res);
  cancel_to_return.store(0);
  canceller.join();
  REQUIRE(st == YUAN_OK);
  CHECK(res.finish_reason == YUAN_FINISH_CANCELLED);
  CHECK(std::string(res.text) == "Hi");
  yuan_free(res.text);

  // yuan_request_cancel on a submitted request, before any token arrived.
  FakeServer silent([](const std::string& req, int) {
    if (IsModels(req)) return ModelsReply();
    Reply stall;
    stall.hold_ms = -1;
    return stall;
  });
  Remote r2(silent.url(), cfg);
  yuan_request* q = nullptr;
  REQUIRE(yuan_session_submit(r2.session, "x", nullptr, &q) == YUAN_OK);
  while (silent.count("POST /v1/completions") == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto t0 = Clock::now();
  REQUIRE(yuan_request_cancel(q) == YUAN_OK);
  CHECK(yuan_request_wait(q, 5000) == YUAN_OK);
  CHECK(Seconds(t0) < 1.0);
  yuan_generate_result res2;
  yuan_generate_result_init(&res2);
  REQUIRE(yuan_request_result(q, &res2) == YUAN_OK);
  CHECK(res2.finish_reason == YUAN_FINISH_CANCELLED);
  yuan_free(res2.text);
  yuan_request_free(q);
}

TEST_CASE("cancel timing: a blocked generate returns within ~100 ms of the cancel", "[remote]") {
  FakeServer server([](const std::string& req, int) {
    if (IsModels(req)) return ModelsReply();
    Reply stall;
    stall.hold_ms = -1;
    return stall;
  });
  EngineConfig cfg;
  cfg.read_timeout_ms = 30000;
  Remote r(server.url(), cfg);
  std::atomic<bool> done{false};
  std::atomic<int> status{-1};
  Clock::time_point returned;
  std::thread gen([&] {  // no Catch2 assertions off the main thread
    status.store(yuan_session_generate(r.session, "x", nullptr, nullptr));
    returned = Clock::now();
    done.store(true);
  });
  while (server.count("POST /v1/completions") == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto t0 = Clock::now();
  REQUIRE(yuan_session_cancel(r.session) == YUAN_OK);
  gen.join();
  REQUIRE(done.load());
  CHECK(status.load() == YUAN_OK);
  const double ms = std::chrono::duration<double, std::milli>(returned - t0).count();
  CHECK(ms < 500 * yuan::testing::TimeScale());  // polled every 50 ms; slack for loaded machines
}

TEST_CASE("the Authorization header carries the key: option, environment, none", "[remote]") {
  FakeServer server([](const std::string&, int) { return ModelsReply(); });
  yuan_engine* e = nullptr;
  EngineConfig cfg;
  cfg.api_key = "sk-option";
  REQUIRE(OpenRemote(server.url(), &e, cfg) == YUAN_OK);
  yuan_engine_free(e);
  CHECK(server.requests().back().find("\r\nAuthorization: Bearer sk-option\r\n") != std::string::npos);

  setenv("OPENAI_API_KEY", "sk-openai", 1);
  REQUIRE(OpenRemote(server.url(), &e) == YUAN_OK);
  yuan_engine_free(e);
  CHECK(server.requests().back().find("Authorization: Bearer sk-openai\r\n") != std::string::npos);
  setenv("YUAN_API_KEY", "sk-yuan", 1);  // preferred over OPENAI_API_KEY
  REQUIRE(OpenRemote(server.url(), &e) == YUAN_OK);
  yuan_engine_free(e);
  CHECK(server.requests().back().find("Authorization: Bearer sk-yuan\r\n") != std::string::npos);
  cfg.api_key = "";  // explicitly none
  REQUIRE(OpenRemote(server.url(), &e, cfg) == YUAN_OK);
  yuan_engine_free(e);
  CHECK(server.requests().back().find("Authorization") == std::string::npos);
  cfg.api_key = "bad\r\nX-Injected: 1";
  CHECK(OpenRemote(server.url(), &e, cfg) == YUAN_ERR_INVALID_ARGUMENT);
  unsetenv("YUAN_API_KEY");
  unsetenv("OPENAI_API_KEY");

  // remote_model chooses the model name sent.
  cfg.api_key = nullptr;
  cfg.remote_model = "other-model";
  FakeServer s2([](const std::string& req, int) {
    return IsModels(req) ? ModelsReply() : SseReply(CompletionChunk("ok", "stop"));
  });
  Remote r(s2.url(), cfg);
  REQUIRE(yuan_session_generate(r.session, "x", nullptr, nullptr) == YUAN_OK);
  CHECK(s2.requests().back().find(R"("model":"other-model")") != std::string::npos);
}

TEST_CASE("connection refused gives UNAVAILABLE after the retries", "[remote]") {
  // A port nobody listens on: bind, read the port, close.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/v1";

  yuan_engine* e = nullptr;
  EngineConfig cfg;
  cfg.max_retries = 1;
  const auto t0 = Clock::now();
  CHECK(OpenRemote(url, &e, cfg) == YUAN_ERR_UNAVAILABLE);
  CHECK(Seconds(t0) < 3.0 * yuan::testing::TimeScale());
  CHECK(std::string(yuan_last_error()).find("cannot reach") != std::string::npos);
  CHECK(e == nullptr);

  yuan::remote::ClientOptions co;
  co.base_url = url;
  co.max_retries = 2;
  co.retry_base_ms = 10;
  yuan::remote::OpenAiClient client(co);
  yuan::remote::CallStats stats;
  CHECK(absl::IsUnavailable(client.ListModels(nullptr, &stats).status()));
  CHECK(stats.attempts == 3);
}

TEST_CASE("the recorded llama.cpp responses replay through the client", "[remote]") {
  const std::string stream_path = yuan::testing::SharedGolden("openai-server-completions-stream.txt");
  if (stream_path.empty()) return;  // ../shared absent
  auto split = [](const std::string& path, std::string* head, std::string* body) {
    const std::string text = ReadFile(path);
    const size_t resp = text.find("HTTP/1.1", text.find("### RESPONSE"));
    REQUIRE(resp != std::string::npos);
    const size_t end = text.find("\r\n\r\n", resp);
    REQUIRE(end != std::string::npos);
    *head = text.substr(resp, end + 4 - resp);
    *body = text.substr(end + 4);
  };
  std::string head, body, whole_head, whole_body;
  split(stream_path, &head, &body);
  split(yuan::testing::SharedGolden("openai-server-completions-nonstream.txt"), &whole_head,
        &whole_body);
  // curl -i decoded the chunked body; encode it again in random chunks.
  FakeServer server([&](const std::string& req, int) {
    if (req.find(R"("stream":true)") == std::string::npos) {
      Reply rep;
      rep.pieces.push_back({0, whole_head});
      for (auto& p : Pieces(whole_body, 3)) rep.pieces.push_back(p);
      return rep;
    }
    Reply rep;
    rep.pieces.push_back({0, head});
    for (auto& p : Pieces(body, 9, 61)) rep.pieces.push_back({p.first, Chunk(p.second)});
    rep.pieces.push_back({0, "0\r\n\r\n"});
    return rep;
  });
  yuan::remote::OpenAiClient client(ClientFor(server));
  yuan::remote::CompletionCall call;
  call.model = "stories260K";
  call.request.prompt = "Once upon a time";
  call.request.max_tokens = 32;
  call.request.sampling.temperature = 0;
  int events = 0;
  call.request.on_token = [&](std::string_view, int32_t id, int32_t) {
    CHECK(id == -1);
    ++events;
    return true;
  };
  yuan::GenerateResult streamed, whole;
  REQUIRE(client.Complete(call, nullptr, &streamed).ok());
  call.stream = false;
  REQUIRE(client.Complete(call, nullptr, &whole).ok());
  CHECK(streamed.text == whole.text);
  CHECK(streamed.text.rfind(", there was a little girl named Lily.", 0) == 0);
  CHECK(streamed.finish_reason == yuan::FinishReason::kLength);
  CHECK(whole.finish_reason == yuan::FinishReason::kLength);
  CHECK(streamed.completion_tokens == 32);
  CHECK(whole.completion_tokens == 32);
  CHECK(streamed.prompt_tokens == 5);
  CHECK(events >= 20);  // one event per non-empty chunk
}

TEST_CASE("request bodies map the sampling parameters per server kind", "[remote]") {
  yuan::remote::CompletionCall call;
  call.model = "m";
  call.request.prompt = "p";
  call.request.max_tokens = 7;
  call.request.sampling.temperature = 0.7f;
  call.request.sampling.top_k = 20;
  call.request.sampling.top_p = 0.9f;
  call.request.sampling.min_p = 0.1f;
  call.request.sampling.repeat_penalty = 1.1f;
  call.request.sampling.presence_penalty = 0.5f;
  call.request.sampling.seed = 0xFFFFFFFFFFFFFFFEull;
  call.request.sampling.logit_bias = {{15, -100.0f}};
  call.request.stop = {"\n\n", "END"};
  call.request.ignore_eos = true;

  yuan::remote::ClientOptions o;
  o.base_url = "http://h/v1/";
  o.kind = yuan::remote::ServerKind::kLlamaCpp;
  auto body = nlohmann::json::parse(yuan::remote::OpenAiClient(o).RequestBody(call));
  CHECK(body["prompt"] == "p");
  CHECK(body["max_tokens"] == 7);
  CHECK(body["temperature"] == 0.7);
  CHECK(body["top_p"] == 0.9);
  CHECK(body["top_k"] == 20);
  CHECK(body["min_p"] == 0.1);
  CHECK(body["repeat_penalty"] == 1.1);
  CHECK(body["repeat_last_n"] == 64);
  CHECK(body["presence_penalty"] == 0.5);
  CHECK(!body.contains("frequency_penalty"));
  CHECK(body["seed"] == 0x7FFFFFFFFFFFFFFEll);
  CHECK(body["logit_bias"]["15"] == -100.0);
  CHECK(body["stop"] == nlohmann::json::array({"\n\n", "END"}));
  CHECK(body["ignore_eos"] == true);
  CHECK(!body.contains("return_token_ids"));

  o.kind = yuan::remote::ServerKind::kVllm;
  o.return_token_ids = true;
  body = nlohmann::json::parse(yuan::remote::OpenAiClient(o).RequestBody(call));
  CHECK(body["repetition_penalty"] == 1.1);
  CHECK(!body.contains("repeat_penalty"));
  CHECK(body["return_token_ids"] == true);

  // OpenAI itself: only its own fields (it rejects unknown ones).
  o.kind = yuan::remote::ServerKind::kOpenAi;
  call.chat = true;
  call.messages = {{"user", "hi"}};
  call.enable_thinking = 1;
  body = nlohmann::json::parse(yuan::remote::OpenAiClient(o).RequestBody(call));
  CHECK(body["max_completion_tokens"] == 7);
  CHECK(!body.contains("max_tokens"));
  for (const char* k : {"top_k", "min_p", "repetition_penalty", "ignore_eos", "return_token_ids",
                        "chat_template_kwargs", "prompt"}) {
    CHECK(!body.contains(k));
  }
  CHECK(body["messages"][0]["content"] == "hi");

  // Greedy and "off" values are not sent as extensions.
  call.request.sampling = yuan::SamplingParams();
  call.request.sampling.temperature = 0;
  call.request.sampling.top_k = 0;
  call.request.sampling.min_p = 0;
  call.request.ignore_eos = false;
  o.kind = yuan::remote::ServerKind::kYuan;
  body = nlohmann::json::parse(yuan::remote::OpenAiClient(o).RequestBody(call));
  CHECK(body["temperature"] == 0);
  CHECK(!body.contains("top_k"));
  CHECK(!body.contains("min_p"));
  CHECK(!body.contains("repetition_penalty"));
  CHECK(!body.contains("ignore_eos"));
}

// The epoll server over real loopback sockets: keep-alive, pipelining,
// streaming, disconnects, and every limit a hostile client can push against,
// each checked while other clients keep being served. curl, where present,
// is a second, independent client.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "runtime/server/http.h"
#include "tests/common/test_support.h"

namespace yuan::http {
namespace {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// Milliseconds scaled for sanitizer builds.
int Ms(int ms) { return static_cast<int>(ms * yuan::testing::TimeScale()); }

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;                            // de-chunked
  int chunks = 0;
};

// A blocking-with-deadline HTTP client on a plain socket.
class Client {
 public:
  explicit Client(int port, int rcvbuf = 0) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Close();
  }
  ~Client() { Close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool ok() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads until the buffer holds `needle`.
  bool ReadUntil(std::string_view needle, int timeout_ms = Ms(5000)) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (buf_.find(needle) == std::string::npos) {
      if (!Fill(deadline)) return false;
    }
    return true;
  }

  // Reads and removes one response (1xx ones are skipped).
  bool ReadResponse(Response* r, int timeout_ms = Ms(5000)) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      *r = Response{};
      size_t end;
      while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
        if (!Fill(deadline)) return false;
      }
      std::string head = buf_.substr(0, end);
      size_t pos = end + 4;
      if (head.compare(0, 9, "HTTP/1.1 ") != 0) return false;
      r->status = std::stoi(head.substr(9, 3));
      size_t line = head.find("\r\n");
      while (line != std::string::npos) {
        size_t next = head.find("\r\n", line + 2);
        std::string field = head.substr(line + 2, next == std::string::npos ? std::string::npos
                                                                            : next - line - 2);
        size_t colon = field.find(':');
        std::string name = field.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r->headers[name] = field.substr(colon + 2);
        line = next;
      }
      if (r->status >= 100 && r->status < 200) {
        buf_.erase(0, pos);
        continue;
      }
      if (r->headers.count("transfer-encoding")) {
        while (true) {
          size_t eol;
          while ((eol = buf_.find("\r\n", pos)) == std::string::npos) {
            if (!Fill(deadline)) return false;
          }
          size_t size = std::stoul(buf_.substr(pos, eol - pos), nullptr, 16);
          while (buf_.size() < eol + 2 + size + 2) {
            if (!Fill(deadline)) return false;
          }
          pos = eol + 2 + size + 2;
          if (size == 0) break;
          r->body += buf_.substr(eol + 2, size);
          ++r->chunks;
        }
      } else if (r->headers.count("content-length")) {
        size_t size = std::stoul(r->headers["content-length"]);
        while (buf_.size() < pos + size) {
          if (!Fill(deadline)) return false;
        }
        r->body = buf_.substr(pos, size);
        pos += size;
      } else {
        while (Fill(deadline)) {
        }
        if (!eof_) return false;
        pos = buf_.size();
        r->body = buf_.substr(end + 4);
      }
      buf_.erase(0, pos);
      return true;
    }
  }

  Response Get(const std::string& path, const std::string& body = "") {
    Response r;
    std::string method = body.empty() ? "GET " : "POST ";
    REQUIRE(Send(method + path + " HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body));
    REQUIRE(ReadResponse(&r));
    return r;
  }

  // True once the server closed the connection (EOF or reset) in time.
  bool WaitClosed(int timeout_ms = Ms(3000)) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (Fill(deadline)) {
    }
    return eof_;
  }

  const std::string& buffer() const { return buf_; }

 private:
  // Reads more; false on EOF, error (both set eof_) or timeout.
  bool Fill(Clock::time_point deadline) {
    if (fd_ < 0 || eof_) return false;
    int64_t left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char buf[65536];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

// A server whose handler answers /hello inline and queues everything else
// for the test to answer (as the scheduler would, from another thread).
class TestServer {
 public:
  explicit TestServer(ServerOptions options = {}) {
    options.port = 0;
    auto started = Server::Start(options, [this](Request request, std::shared_ptr<Responder> r) {
      if (request.path == "/hello") {
        r->Send(200, "text/plain", "hello " + request.body, {{"X-Test", "1"}});
      } else if (request.path == "/drop") {
        // dropped unanswered
      } else {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.emplace_back(std::move(request), std::move(r));
        cv_.notify_all();
      }
    });
    REQUIRE(started.ok());
    server_ = std::move(*started);
  }
  ~TestServer() { Stop(); }

  void Stop() {
    if (server_) server_->Stop();
    server_.reset();
  }
  Server& server() { return *server_; }
  int port() const { return server_->port(); }

  // The next queued request's responder (REQUIREs one within the timeout).
  std::shared_ptr<Responder> Next(Request* request = nullptr) {
    std::unique_lock<std::mutex> lock(mu_);
    REQUIRE(cv_.wait_for(lock, std::chrono::milliseconds(Ms(5000)), [&] { return !queue_.empty(); }));
    auto [req, responder] = std::move(queue_.front());
    queue_.pop_front();
    if (request) *request = std::move(req);
    return responder;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Request, std::shared_ptr<Responder>>> queue_;
  std::unique_ptr<Server> server_;  // last: stopped before the queue goes
};

// Waits until pred() holds, up to timeout_ms.
template <typename Pred>
bool WaitFor(Pred pred, int timeout_ms) {
  auto start = Clock::now();
  while (!pred()) {
    if (MsSince(start) > timeout_ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

TEST_CASE("http: keep-alive serves two requests, then a pipelined pair, on one connection") {
  TestServer ts;
  Client c(ts.port());
  REQUIRE(c.ok());
  Response r1 = c.Get("/hello", "a");
  CHECK(r1.status == 200);
  CHECK(r1.body == "hello a");
  CHECK(r1.headers["content-type"] == "text/plain");
  CHECK(r1.headers["x-test"] == "1");
  CHECK(r1.headers.count("connection") == 0);
  Response r2 = c.Get("/hello", "b");
  CHECK(r2.body == "hello b");
  // Pipelined: both requests in one send, answered in order.
  REQUIRE(c.Send("POST /hello HTTP/1.1\r\nContent-Length: 1\r\n\r\nc"
                 "POST /hello HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nd"));
  Response r3, r4;
  REQUIRE(c.ReadResponse(&r3));
  REQUIRE(c.ReadResponse(&r4));
  CHECK(r3.body == "hello c");
  CHECK(r4.body == "hello d");
  CHECK(r4.headers["connection"] == "close");
  CHECK(c.WaitClosed());
}

TEST_CASE("http: a pipelined request waits until the streamed answer before it ends") {
  TestServer ts;
  Client c(ts.port());
  REQUIRE(c.Send("GET /stream HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n"));
  std::shared_ptr<Responder> r = ts.Next();
  r->StartStream(200, "text/event-stream");
  REQUIRE(r->Write("data: 1\n\n"));
  // The first chunk arrives before End (nothing is held back) ...
  REQUIRE(c.ReadUntil("data: 1\n\n"));
  CHECK(c.buffer().find("hello") == std::string::npos);  // ... and /hello waits.
  REQUIRE(r->Write("data: 2\n\n"));
  REQUIRE(r->Write(""));  // empty writes must not end the stream
  REQUIRE(r->Write("data: [DONE]\n\n"));
  r->End();
  CHECK_FALSE(r->Write("late"));  // after End
  Response stream, hello;
  REQUIRE(c.ReadResponse(&stream));
  CHECK(stream.status == 200);
  CHECK(stream.headers["transfer-encoding"] == "chunked");
  CHECK(stream.headers["content-type"] == "text/event-stream");
  CHECK(stream.chunks == 3);
  CHECK(stream.body == "data: 1\n\ndata: 2\n\ndata: [DONE]\n\n");
  REQUIRE(c.ReadResponse(&hello));
  CHECK(hello.body == "hello ");
  CHECK_FALSE(r->closed());
}

TEST_CASE("http: OnClose fires promptly when the client leaves mid-stream") {
  TestServer ts;
  Client c(ts.port());
  REQUIRE(c.Send("GET /stream HTTP/1.1\r\n\r\n"));
  std::shared_ptr<Responder> r = ts.Next();
  std::atomic<int> fired{0};
  r->OnClose([&fired, r] { ++fired; });  // capturing r must not leak (checked by ASan)
  r->StartStream(200, "text/event-stream");
  REQUIRE(r->Write("data: 1\n\n"));
  REQUIRE(c.ReadUntil("data: 1\n\n"));
  auto t0 = Clock::now();
  c.Close();
  REQUIRE(WaitFor([&] { return fired.load() > 0; }, Ms(1000)));
  CHECK(MsSince(t0) < Ms(1000));
  CHECK(r->closed());
  CHECK_FALSE(r->Write("data: 2\n\n"));
  r->End();
  r->Send(200, "text/plain", "ignored");
  std::atomic<int> late{0};
  r->OnClose([&late] { ++late; });  // already closed: runs at once
  CHECK(late == 1);
  CHECK(WaitFor([&] { return ts.server().open_connections() == 0; }, Ms(1000)));
  CHECK(fired == 1);
}

TEST_CASE("http: connections over max_connections get 503 while the others keep working") {
  ServerOptions o;
  o.max_connections = 8;
  TestServer ts(o);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<Client>(ts.port()));
    CHECK(clients.back()->Get("/hello", std::to_string(i)).status == 200);
  }
  CHECK(ts.server().open_connections() == 8);
  for (int i = 0; i < 3; ++i) {
    Client extra(ts.port());
    Response r;
    REQUIRE(extra.ReadResponse(&r));
    CHECK(r.status == 503);
    CHECK(r.headers["connection"] == "close");
    CHECK(r.body.find("\"code\":503") != std::string::npos);
    CHECK(extra.WaitClosed());
  }
  for (int i = 0; i < 8; ++i) {
    CHECK(clients[i]->Get("/hello", "again").body == "hello again");
  }
  // A freed slot is usable again.
  clients[0]->Close();
  REQUIRE(WaitFor([&] { return ts.server().open_connections() == 7; }, Ms(1000)));
  Client next(ts.port());
  CHECK(next.Get("/hello").status == 200);
}

TEST_CASE("http: slowloris gets 408 after header_timeout while others are served") {
  ServerOptions o;
  o.header_timeout_ms = 300;
  TestServer ts(o);
  Client slow(ts.port());
  auto t0 = Clock::now();
  REQUIRE(slow.Send("POST /hello HTTP/1.1\r\nHost: t\r\nContent-Le"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Client fast(ts.port());
  auto t1 = Clock::now();
  CHECK(fast.Get("/hello", "fast").body == "hello fast");
  CHECK(MsSince(t1) < Ms(1000));
  Response r;
  REQUIRE(slow.ReadResponse(&r, Ms(3000)));
  int64_t waited = MsSince(t0);
  CHECK(r.status == 408);
  CHECK(waited >= 250);
  CHECK(waited < Ms(1500));
  CHECK(slow.WaitClosed());
  // A request whose body trickles in is cut the same way.
  Client trickle(ts.port());
  REQUIRE(trickle.Send("POST /hello HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc"));
  REQUIRE(trickle.ReadResponse(&r, Ms(3000)));
  CHECK(r.status == 408);
}

TEST_CASE("http: idle keep-alive connections are closed after idle_timeout") {
  ServerOptions o;
  o.idle_timeout_ms = 200;
  TestServer ts(o);
  Client c(ts.port());
  CHECK(c.Get("/hello").status == 200);
  auto t0 = Clock::now();
  CHECK(c.WaitClosed(Ms(3000)));
  CHECK(MsSince(t0) >= 150);
  CHECK(WaitFor([&] { return ts.server().open_connections() == 0; }, Ms(1000)));
}

// Streams 64 KiB chunks to a client that never reads, until the server
// gives up on it; returns whether Write reported it.
bool StreamUntilCut(Responder& r, const std::atomic<int>& fired) {
  const std::string chunk(64 << 10, 'x');
  auto t0 = Clock::now();
  while (MsSince(t0) < Ms(8000)) {
    if (!r.Write(chunk)) return true;
    if (fired.load() > 0) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  FAIL("the server never cut off the client that does not read");
  return false;
}

TEST_CASE("http: a client that does not read is cut off at max_output_bytes") {
  ServerOptions o;
  o.max_output_bytes = 256 << 10;
  o.write_timeout_ms = 60000;
  TestServer ts(o);
  Client lazy(ts.port(), 4096);
  REQUIRE(lazy.Send("GET /stream HTTP/1.1\r\n\r\n"));
  std::shared_ptr<Responder> r = ts.Next();
  std::atomic<int> fired{0};
  r->OnClose([&fired] { ++fired; });
  r->StartStream(200, "text/event-stream");
  CHECK(StreamUntilCut(*r, fired));
  CHECK(r->closed());
  CHECK(WaitFor([&] { return fired.load() == 1; }, Ms(1000)));
  Client other(ts.port());
  CHECK(other.Get("/hello", "still").body == "hello still");
  CHECK(fired == 1);
}

TEST_CASE("http: a client that does not read is cut off after write_timeout") {
  ServerOptions o;
  o.max_output_bytes = 512 << 20;
  o.write_timeout_ms = 300;
  TestServer ts(o);
  Client lazy(ts.port(), 4096);
  REQUIRE(lazy.Send("GET /stream HTTP/1.1\r\n\r\n"));
  std::shared_ptr<Responder> r = ts.Next();
  std::atomic<int> fired{0};
  r->OnClose([&fired] { ++fired; });
  r->StartStream(200, "text/event-stream");
  StreamUntilCut(*r, fired);
  CHECK(WaitFor([&] { return fired.load() == 1; }, Ms(1000)));
  CHECK(r->closed());
  CHECK_FALSE(r->Write("more"));
  Client other(ts.port());
  CHECK(other.Get("/hello").status == 200);
}

TEST_CASE("http: oversized Content-Length gets 413 without the body being read") {
  ServerOptions o;
  o.limits.max_body_bytes = 1 << 20;
  TestServer ts(o);
  Client c(ts.port());
  auto t0 = Clock::now();
  REQUIRE(c.Send("POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n" +
                 std::string(1000, 'b')));
  Response r;
  REQUIRE(c.ReadResponse(&r));
  CHECK(MsSince(t0) < Ms(1000));
  CHECK(r.status == 413);
  CHECK(r.headers["connection"] == "close");
  CHECK(r.body.find("invalid_request_error") != std::string::npos);
  CHECK(c.WaitClosed());
}

TEST_CASE("http: 300 idle connections do not delay a fresh client") {
  TestServer ts;
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 300; ++i) {
    idle.push_back(std::make_unique<Client>(ts.port()));
    REQUIRE(idle.back()->ok());
  }
  // Some also start a request and stop half-way.
  for (int i = 0; i < 300; i += 10) REQUIRE(idle[i]->Send("GET /hello HTTP/1.1\r\nHo"));
  CHECK(WaitFor([&] { return ts.server().open_connections() == 300; }, Ms(2000)));
  auto t0 = Clock::now();
  Client fresh(ts.port());
  CHECK(fresh.Get("/hello", "fresh").body == "hello fresh");
  CHECK(MsSince(t0) < Ms(1000));
  idle.clear();
  CHECK(WaitFor([&] { return ts.server().open_connections() == 1; }, Ms(2000)));
}

TEST_CASE("http: malformed requests get a JSON 400 and the connection closes") {
  TestServer ts;
  for (std::string bad : {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
                          "GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n"}) {
    Client c(ts.port());
    REQUIRE(c.Send(bad));
    Response r;
    REQUIRE(c.ReadResponse(&r));
    CHECK(r.status == 400);
    CHECK(r.headers["content-type"] == "application/json");
    CHECK(r.body.find("\"type\":\"invalid_request_error\"") != std::string::npos);
    CHECK(r.body.find("\"code\":400") != std::string::npos);
    CHECK(c.WaitClosed());
  }
  Client v(ts.port());
  REQUIRE(v.Send("GET / HTTP/2.0\r\n\r\n"));
  Response r;
  REQUIRE(v.ReadResponse(&r));
  CHECK(r.status == 505);
}

TEST_CASE("http: a dropped responder answers 500; HTTP/1.0 and chunked requests work") {
  TestServer ts;
  Client c(ts.port());
  Response r = c.Get("/drop");
  CHECK(r.status == 500);
  CHECK(c.WaitClosed());

  Client old(ts.port());
  REQUIRE(old.Send("GET /hello HTTP/1.0\r\n\r\n"));
  REQUIRE(old.ReadResponse(&r));
  CHECK(r.body == "hello ");
  CHECK(r.headers["connection"] == "close");
  CHECK(old.WaitClosed());

  Client chunked(ts.port());
  REQUIRE(chunked.Send("POST /hello HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"));
  REQUIRE(chunked.ReadResponse(&r));
  CHECK(r.body == "hello abcde");
}

TEST_CASE("http: Stop closes connections, runs OnClose, and responders outlive the server") {
  std::shared_ptr<Responder> r;
  std::atomic<int> fired{0};
  {
    TestServer ts;
    Client c(ts.port());
    REQUIRE(c.Send("GET /pending HTTP/1.1\r\n\r\n"));
    r = ts.Next();
    r->OnClose([&fired] { ++fired; });
    ts.Stop();
    CHECK(fired == 1);
    CHECK(c.WaitClosed());
  }
  CHECK(r->closed());
  CHECK_FALSE(r->Write("x"));
  r->StartStream(200, "text/plain");
  r->Send(200, "text/plain", "late");
  r->End();
  CHECK(fired == 1);
}

TEST_CASE("http: Start reports a port in use") {
  TestServer ts;
  ServerOptions o;
  o.port = ts.port();
  auto second = Server::Start(o, [](Request, std::shared_ptr<Responder>) {});
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().message().find(std::to_string(ts.port())) != std::string::npos);
}

// Runs a shell command, returning its standard output.
std::string RunCommand(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

bool HaveCurl() { return std::system("command -v curl >/dev/null 2>&1") == 0; }

TEST_CASE("http: curl as an independent client (keep-alive, body, streaming)") {
  if (!HaveCurl()) {
    WARN("curl not installed: skipped");
    return;
  }
  TestServer ts;
  std::string url = "http://127.0.0.1:" + std::to_string(ts.port());
  // Two transfers in one curl run reuse the connection: num_connects 1, then 0.
  std::string out = RunCommand("curl -s -d abc -w ' %{http_code} %{num_connects}\\n' " + url +
                               "/hello " + url + "/hello");
  CHECK(out == "hello abc 200 1\nhello abc 200 0\n");
  // A body large enough for curl to send "Expect: 100-continue".
  out = RunCommand("head -c 2000000 /dev/zero | tr '\\0' z | curl -s --data-binary @- " + url +
                   "/hello | wc -c");
  CHECK(std::stol(out) == 2000006);

  FILE* p = popen(("curl -sN " + url + "/stream").c_str(), "r");
  REQUIRE(p != nullptr);
  std::shared_ptr<Responder> r = ts.Next();
  r->StartStream(200, "text/event-stream");
  for (int i = 0; i < 50; ++i) REQUIRE(r->Write("data: " + std::to_string(i) + "\n\n"));
  r->End();
  std::string streamed;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) streamed.append(buf, n);
  CHECK(pclose(p) == 0);
  CHECK(streamed.rfind("data: 0\n\ndata: 1\n\n", 0) == 0);
  CHECK(streamed.find("data: 49\n\n") == streamed.size() - 10);
}

}  // namespace
}  // namespace yuan::http

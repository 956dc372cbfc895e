// The epoll server behind http.h. One I/O thread owns every socket; other
// threads only touch a connection through its ConnShared (output buffer and
// response state, under a mutex) and wake the thread through the Waker's
// eventfd. Level-triggered epoll keeps the state machine simple: a socket
// that still has input or room for output simply reports again.
//
// Life of a connection: kReading (parser fed until a request is complete)
// -> kAnswering (handler called; the Responder queues the answer) -> back to
// kReading once the answer is queued completely and sent, or kLinger when it
// was the last one: we shut down our side and read until the client closes,
// so that unread input does not turn our close into a reset that could
// destroy the response before the client read it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/server/http.h"

namespace yuan::http {
namespace {

constexpr uint64_t kListenerId = 0;
constexpr uint64_t kWakeId = 1;
constexpr int kTickMs = 100;                    // timeouts are checked this often
constexpr int kLingerMs = 1000;                 // after our FIN, wait this long for theirs
constexpr size_t kMaxPipelinedInput = 64 << 10;  // read-ahead while a response is pending
constexpr size_t kReadBudget = 256 << 10;       // per wake-up, so no client starves others

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string ErrorBody(int status, std::string_view message, std::string_view type) {
  nlohmann::json j = {{"error", {{"message", message}, {"type", type}, {"code", status}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool HasCrLf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string StatusLine(int status) {
  std::string line = "HTTP/1.1 " + std::to_string(status) + " ";
  line.append(ReasonPhrase(status)).append("\r\n");
  return line;
}

// A complete Content-Length response that closes the connection (errors).
std::string ClosingErrorResponse(int status, std::string_view message, std::string_view type) {
  std::string body = ErrorBody(status, message, type);
  std::string out = StatusLine(status);
  out += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n";
  return out + body;
}

// Wakes the I/O thread and tells it which connections have new output.
// Responders may outlive the server, so they hold this, not the server.
struct Waker {
  std::mutex mu;
  int fd = -1;  // eventfd; -1 once the server stopped
  std::vector<uint64_t> dirty;

  void Notify(uint64_t conn_id) {
    std::lock_guard<std::mutex> lock(mu);
    if (fd < 0) return;
    bool was_empty = dirty.empty();
    dirty.push_back(conn_id);
    if (was_empty) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t n = write(fd, &one, sizeof one);
    }
  }
  std::vector<uint64_t> Take() {
    std::vector<uint64_t> taken;
    std::lock_guard<std::mutex> lock(mu);
    taken.swap(dirty);
    return taken;
  }
};

// What the I/O thread and one connection's responders share.
struct ConnShared {
  uint64_t id = 0;
  std::atomic<bool> queued{false};  // id already in Waker::dirty
  std::mutex mu;
  // Under mu:
  std::string out;       // output; the first out_off bytes are sent
  size_t out_off = 0;
  bool dead = false;           // connection closed: responders drop everything
  bool cut_off = false;        // a responder passed max_output_bytes
  bool response_done = false;  // the current response is queued completely
  bool close_after = false;    // close once it is sent
  size_t pending() const { return out.size() - out_off; }
};

class ResponderImpl final : public Responder {
 public:
  ResponderImpl(std::shared_ptr<ConnShared> conn, std::shared_ptr<Waker> waker,
                const Request& request, size_t max_output)
      : conn_(std::move(conn)),
        waker_(std::move(waker)),
        keep_alive_(request.keep_alive),
        head_only_(request.method == "HEAD"),
        http10_(request.version_minor == 0),
        max_output_(max_output) {}

  // A handler that drops its responder without answering would leave the
  // client waiting forever: answer 500 (or cut a started stream) instead.
  ~ResponderImpl() override {
    {
      std::lock_guard<std::mutex> lock(conn_->mu);
      if (conn_->dead || phase_ == Phase::kDone) return;
      if (phase_ == Phase::kPending) {
        conn_->out += ClosingErrorResponse(500, "the request was dropped unanswered",
                                           "server_error");
      }
      phase_ = Phase::kDone;
      conn_->response_done = true;
      conn_->close_after = true;
    }
    Wake();
  }

  void Send(int status, std::string_view content_type, std::string body,
            Headers extra) override {
    {
      std::lock_guard<std::mutex> lock(conn_->mu);
      if (phase_ != Phase::kPending || conn_->dead) return;
      conn_->out += Head(status, content_type, extra, "Content-Length: " + std::to_string(body.size()));
      if (!head_only_) conn_->out += body;
      phase_ = Phase::kDone;
      conn_->response_done = true;
      conn_->close_after = close_;
    }
    Wake();
  }

  void StartStream(int status, std::string_view content_type, Headers extra) override {
    {
      std::lock_guard<std::mutex> lock(conn_->mu);
      if (phase_ != Phase::kPending || conn_->dead) return;
      // HTTP/1.0 has no chunked coding: the stream ends with the connection.
      if (http10_) keep_alive_ = false;
      conn_->out += Head(status, content_type, extra,
                         http10_ ? std::string() : "Transfer-Encoding: chunked");
      phase_ = Phase::kStreaming;
    }
    Wake();
  }

  bool Write(std::string data) override {
    bool ok = true;
    {
      std::lock_guard<std::mutex> lock(conn_->mu);
      if (phase_ != Phase::kStreaming || conn_->dead || closed_) return false;
      if (data.empty() || head_only_) return true;  // an empty chunk would end the stream
      if (conn_->pending() + data.size() > max_output_) {
        // The client does not read: cut it off (the I/O thread closes the
        // connection and runs OnClose) rather than buffer without bound.
        closed_ = true;
        conn_->cut_off = true;
        ok = false;
      } else if (http10_) {
        conn_->out += data;
      } else {
        char size_line[32];
        int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
        conn_->out.append(size_line, static_cast<size_t>(n)).append(data).append("\r\n");
      }
    }
    Wake();
    return ok;
  }

  void End() override {
    {
      std::lock_guard<std::mutex> lock(conn_->mu);
      if (phase_ != Phase::kStreaming || conn_->dead || closed_) return;
      if (!http10_ && !head_only_) conn_->out += "0\r\n\r\n";
      phase_ = Phase::kDone;
      conn_->response_done = true;
      conn_->close_after = close_;
    }
    Wake();
  }

  bool closed() const override {
    std::lock_guard<std::mutex> lock(conn_->mu);
    return closed_;
  }

  void OnClose(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(conn_->mu);
      if (!closed_) {
        on_close_ = std::move(fn);
        return;
      }
    }
    if (fn) fn();  // already closed (or cut off): at once, on this thread
  }

  // I/O thread, when the connection closed: runs OnClose unless the
  // response had ended. The callback is moved out, so it runs once, and
  // whatever it captured (often this responder) is released here.
  void ConnectionClosed() {
    std::function<void()> fn;
    {
      std::lock_guard<std::mutex> lock(conn_->mu);
      if (phase_ == Phase::kDone && !closed_) return;
      closed_ = true;
      fn = std::move(on_close_);
    }
    if (fn) fn();
  }

 private:
  enum class Phase { kPending, kStreaming, kDone };

  // Status line and headers; decides close_ (under conn_->mu).
  std::string Head(int status, std::string_view content_type, const Headers& extra,
                   std::string_view framing) {
    close_ = !keep_alive_;
    std::string head = StatusLine(status);
    if (!content_type.empty() && !HasCrLf(content_type)) {
      head.append("Content-Type: ").append(content_type).append("\r\n");
    }
    if (!framing.empty()) head.append(framing).append("\r\n");
    for (const auto& [name, value] : extra) {
      // No header injection, and the framing headers are ours to write.
      if (name.empty() || HasCrLf(name) || HasCrLf(value) || IEquals(name, "content-length") ||
          IEquals(name, "transfer-encoding")) {
        continue;
      }
      if (IEquals(name, "connection")) {
        if (IEquals(value, "close")) close_ = true;
        continue;
      }
      head.append(name).append(": ").append(value).append("\r\n");
    }
    if (close_) {
      head += "Connection: close\r\n";
    } else if (http10_) {
      head += "Connection: keep-alive\r\n";
    }
    head += "\r\n";
    return head;
  }

  void Wake() {
    if (!conn_->queued.exchange(true)) waker_->Notify(conn_->id);
  }

  const std::shared_ptr<ConnShared> conn_;
  const std::shared_ptr<Waker> waker_;
  // Under conn_->mu:
  bool keep_alive_;
  const bool head_only_;
  const bool http10_;
  const size_t max_output_;
  Phase phase_ = Phase::kPending;
  bool close_ = false;
  bool closed_ = false;
  std::function<void()> on_close_;
};

// A connection as the I/O thread sees it.
struct Conn {
  enum class State { kReading, kAnswering, kLinger };
  uint64_t id = 0;
  int fd = -1;
  State state = State::kReading;
  bool closed = false;
  bool peer_closed = false;
  bool sent_continue = false;
  uint32_t events = 0;  // registered with epoll
  std::shared_ptr<ConnShared> shared;
  std::weak_ptr<ResponderImpl> responder;  // of the request being answered
  RequestParser parser;
  std::string in;  // received; the first in_off bytes are parsed
  size_t in_off = 0;
  int64_t request_start_ms = 0;  // first byte of the request being read, 0: none
  int64_t idle_since_ms = 0;
  int64_t stall_since_ms = 0;    // output pending without progress since, 0: none
  int64_t linger_until_ms = 0;

  explicit Conn(ParserLimits limits) : parser(limits) {}
};

class ServerImpl final : public Server {
 public:
  ServerImpl(const ServerOptions& options, Handler handler)
      : options_(options), handler_(std::move(handler)), waker_(std::make_shared<Waker>()) {}

  // Must not run on the I/O thread (from a handler or an OnClose callback):
  // the loop would still be running on a destroyed server.
  ~ServerImpl() override {
    Stop();
    CloseFds();
  }

  absl::Status Init() {
    absl::Status bound = Bind();
    if (!bound.ok()) return bound;
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd < 0) {
      if (wake_fd >= 0) close(wake_fd);
      return absl::InternalError(absl::StrCat("epoll/eventfd: ", std::strerror(errno)));
    }
    waker_->fd = wake_fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenerId;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
    ev.data.u64 = kWakeId;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd, &ev);
    thread_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

  int port() const override { return port_; }
  size_t open_connections() const override { return open_.load(); }

  void Stop() override {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_.store(true);
    {
      std::lock_guard<std::mutex> wl(waker_->mu);
      uint64_t one = 1;
      if (waker_->fd >= 0) [[maybe_unused]] ssize_t n = write(waker_->fd, &one, sizeof one);
    }
    // From a handler (the I/O thread itself) the loop ends after it returns.
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) {
      thread_.join();
      CloseFds();
    }
  }

 private:
  absl::Status Bind() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* list = nullptr;
    std::string where = absl::StrCat(options_.host, ":", options_.port);
    std::string port = std::to_string(options_.port);
    int rc = getaddrinfo(options_.host.empty() ? nullptr : options_.host.c_str(), port.c_str(),
                         &hints, &list);
    if (rc != 0) return absl::InvalidArgumentError(absl::StrCat(where, ": ", gai_strerror(rc)));
    std::string error = "no address";
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        error = std::strerror(errno);
        continue;
      }
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        error = std::strerror(errno);
        close(fd);
        continue;
      }
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.ss_family == AF_INET6
                        ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                        : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
      listen_fd_ = fd;
      break;
    }
    freeaddrinfo(list);
    if (listen_fd_ < 0) return absl::UnavailableError(absl::StrCat("cannot listen on ", where, ": ", error));
    return absl::OkStatus();
  }

  void CloseFds() {
    for (int* fd : {&listen_fd_, &epoll_fd_, &spare_fd_}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
    std::lock_guard<std::mutex> lock(waker_->mu);
    if (waker_->fd >= 0) close(waker_->fd);
    waker_->fd = -1;
    waker_->dirty.clear();
  }

  void Loop() {
    epoll_event events[256];
    int64_t next_sweep = NowMs() + kTickMs;
    while (!stop_.load()) {
      int n = epoll_wait(epoll_fd_, events, 256, kTickMs);
      if (n < 0 && errno != EINTR) break;
      for (int i = 0; i < n; ++i) {
        uint64_t id = events[i].data.u64;
        if (id == kListenerId) {
          AcceptAll();
        } else if (id == kWakeId) {
          uint64_t count;
          [[maybe_unused]] ssize_t r = read(waker_->fd, &count, sizeof count);
        } else if (auto it = conns_.find(id); it != conns_.end() && !it->second->closed) {
          OnEvents(*it->second, events[i].events);
        }
      }
      for (uint64_t id : waker_->Take()) {
        auto it = conns_.find(id);
        if (it == conns_.end()) continue;
        Conn& c = *it->second;
        c.shared->queued.store(false);
        Progress(c);
        // The answer may be complete now: a pipelined request can go next.
        if (!c.closed && c.state == Conn::State::kReading && c.in_off < c.in.size()) {
          ParseInput(c);
        }
      }
      int64_t now = NowMs();
      if (now >= next_sweep) {
        Sweep(now);
        next_sweep = now + kTickMs;
      }
      Bury();
    }
    for (auto& [id, c] : conns_) Close(*c);
    Bury();
  }

  void AcceptAll() {
    while (true) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
        if ((errno == EMFILE || errno == ENFILE) && spare_fd_ >= 0) {
          // Out of descriptors: the pending connection would wake us forever.
          // Free the spare one to accept it and close it at once.
          close(spare_fd_);
          int victim = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
          if (victim >= 0) close(victim);
          spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        return;
      }
      if (open_.load() >= options_.max_connections) {
        Reject(fd);
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<Conn>(options_.limits);
      c->id = next_id_++;
      c->fd = fd;
      c->shared = std::make_shared<ConnShared>();
      c->shared->id = c->id;
      c->idle_since_ms = NowMs();
      c->events = EPOLLIN | EPOLLRDHUP;
      epoll_event ev{};
      ev.events = c->events;
      ev.data.u64 = c->id;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        continue;
      }
      open_.fetch_add(1);
      conns_.emplace(c->id, std::move(c));
    }
  }

  // Over max_connections: 503 and close, without ever registering it.
  void Reject(int fd) {
    char sink[4096];
    for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
    }
    std::string response = ClosingErrorResponse(503, "too many connections", "server_error");
    [[maybe_unused]] ssize_t n = send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
    close(fd);
  }

  void OnEvents(Conn& c, uint32_t ev) {
    if (ev & EPOLLERR) return Close(c);
    if (c.state == Conn::State::kLinger) {
      char sink[16384];
      while (true) {
        ssize_t n = recv(c.fd, sink, sizeof sink, 0);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        return Close(c);  // their FIN (or an error): done
      }
    }
    if (ev & EPOLLOUT) Progress(c);
    if (c.closed) return;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
      if (c.events & EPOLLIN) {
        ReadInput(c);
      } else {
        c.peer_closed = true;  // not reading (input buffer full), but they hung up
      }
    }
    if (c.closed) return;
    ParseInput(c);
    if (!c.closed && c.peer_closed) Close(c);
  }

  void ReadInput(Conn& c) {
    char buf[65536];
    size_t total = 0;
    while (total < kReadBudget) {
      if (c.state == Conn::State::kAnswering && c.in.size() - c.in_off >= kMaxPipelinedInput) break;
      ssize_t n = recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        total += static_cast<size_t>(n);
        continue;
      }
      if (n == 0) {
        c.peer_closed = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        Close(c);  // ECONNRESET and friends
      }
      break;
    }
  }

  // Feeds buffered input to the parser and dispatches complete requests,
  // one at a time: the next pipelined request waits for the current answer.
  void ParseInput(Conn& c) {
    while (!c.closed && c.state == Conn::State::kReading && c.in_off < c.in.size()) {
      size_t used = 0;
      RequestParser::State st =
          c.parser.Feed(std::string_view(c.in).substr(c.in_off), &used);
      c.in_off += used;
      if (c.parser.started() && c.request_start_ms == 0) c.request_start_ms = NowMs();
      if (st == RequestParser::State::kError) {
        FailRequest(c, c.parser.error_status(), c.parser.error());
        break;
      }
      if (st == RequestParser::State::kNeedMore) {
        if (c.parser.wants_continue() && !c.sent_continue) {
          c.sent_continue = true;
          std::lock_guard<std::mutex> lock(c.shared->mu);
          c.shared->out += "HTTP/1.1 100 Continue\r\n\r\n";
        }
        break;
      }
      Request request = c.parser.Take();
      c.parser.Reset();
      c.request_start_ms = 0;
      c.sent_continue = false;
      Dispatch(c, std::move(request));
      Progress(c);
    }
    if (c.in_off == c.in.size()) {
      c.in.clear();
      c.in_off = 0;
    } else if (c.in_off > (64 << 10)) {
      c.in.erase(0, c.in_off);
      c.in_off = 0;
    }
    if (!c.closed) Progress(c);
  }

  void Dispatch(Conn& c, Request request) {
    auto responder = std::make_shared<ResponderImpl>(c.shared, waker_, request,
                                                     options_.max_output_bytes);
    c.responder = responder;
    c.state = Conn::State::kAnswering;
    {
      std::lock_guard<std::mutex> lock(c.shared->mu);
      c.shared->response_done = false;
      c.shared->close_after = false;
    }
    try {
      handler_(std::move(request), responder);
    } catch (...) {
      // Nothing may escape into the I/O loop; the responder answers 500
      // when its last reference goes away unanswered.
    }
  }

  // Parser errors and timeouts: an error response, then close.
  void FailRequest(Conn& c, int status, std::string_view message) {
    {
      std::lock_guard<std::mutex> lock(c.shared->mu);
      c.shared->out += ClosingErrorResponse(status, message, "invalid_request_error");
      c.shared->response_done = true;
      c.shared->close_after = true;
    }
    c.state = Conn::State::kAnswering;
    c.in.clear();
    c.in_off = 0;
    Progress(c);
  }

  // Sends what it can and moves the state on; called whenever output may
  // have appeared or drained.
  void Progress(Conn& c) {
    if (c.closed || c.state == Conn::State::kLinger) return;
    bool failed = false, progressed = false, cut = false, done = false, close_after = false;
    size_t pending = 0;
    {
      std::lock_guard<std::mutex> lock(c.shared->mu);
      ConnShared& s = *c.shared;
      while (s.pending() > 0) {
        ssize_t n = send(c.fd, s.out.data() + s.out_off, s.pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          s.out_off += static_cast<size_t>(n);
          progressed = true;
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else {
          failed = n < 0 && errno != EAGAIN && errno != EWOULDBLOCK;
          break;
        }
      }
      if (s.out_off == s.out.size()) {
        s.out.clear();
        s.out_off = 0;
        if (s.out.capacity() > (1 << 20)) s.out.shrink_to_fit();
      } else if (s.out_off > (1 << 20)) {
        s.out.erase(0, s.out_off);
        s.out_off = 0;
      }
      pending = s.pending();
      cut = s.cut_off;
      done = s.response_done;
      close_after = s.close_after;
    }
    if (failed || cut) return Close(c);
    int64_t now = NowMs();
    c.stall_since_ms = pending == 0 ? 0 : (progressed || c.stall_since_ms == 0) ? now : c.stall_since_ms;
    if (c.state == Conn::State::kAnswering && done && pending == 0) {
      if (close_after) return StartLinger(c);
      c.state = Conn::State::kReading;
      c.responder.reset();
      c.idle_since_ms = now;
    }
    bool reading = c.state == Conn::State::kReading || c.in.size() - c.in_off < kMaxPipelinedInput;
    SetEvents(c, EPOLLRDHUP | (reading ? EPOLLIN : 0u) | (pending > 0 ? EPOLLOUT : 0u));
  }

  void SetEvents(Conn& c, uint32_t events) {
    if (events == c.events) return;
    c.events = events;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = c.id;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void StartLinger(Conn& c) {
    if (c.peer_closed) return Close(c);
    shutdown(c.fd, SHUT_WR);
    c.state = Conn::State::kLinger;
    c.linger_until_ms = NowMs() + kLingerMs;
    c.in.clear();
    c.in_off = 0;
    c.responder.reset();
    SetEvents(c, EPOLLIN | EPOLLRDHUP);
  }

  void Close(Conn& c) {
    if (c.closed) return;
    c.closed = true;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
    close(c.fd);
    {
      std::lock_guard<std::mutex> lock(c.shared->mu);
      c.shared->dead = true;
      std::string().swap(c.shared->out);
      c.shared->out_off = 0;
    }
    if (auto responder = c.responder.lock()) responder->ConnectionClosed();
    c.responder.reset();
    open_.fetch_sub(1);
    graveyard_.push_back(c.id);
  }

  void Bury() {
    for (uint64_t id : graveyard_) conns_.erase(id);
    graveyard_.clear();
  }

  void Sweep(int64_t now) {
    for (auto& [id, cp] : conns_) {
      Conn& c = *cp;
      if (c.closed) continue;
      switch (c.state) {
        case Conn::State::kReading:
          if (c.request_start_ms != 0 && now - c.request_start_ms > options_.header_timeout_ms) {
            FailRequest(c, 408, "request not received in time");
          } else if (c.request_start_ms == 0 && now - c.idle_since_ms > options_.idle_timeout_ms) {
            Close(c);
          }
          break;
        case Conn::State::kAnswering:
          if (c.stall_since_ms != 0 && now - c.stall_since_ms > options_.write_timeout_ms) {
            Close(c);  // the client stopped reading
          }
          break;
        case Conn::State::kLinger:
          if (now > c.linger_until_ms) Close(c);
          break;
      }
    }
  }

  const ServerOptions options_;
  const Handler handler_;
  std::shared_ptr<Waker> waker_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int spare_fd_ = -1;  // given up to accept (and drop) a connection at EMFILE
  int port_ = 0;
  std::thread thread_;
  std::mutex stop_mu_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> open_{0};
  // I/O thread only:
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::vector<uint64_t> graveyard_;  // closed during this iteration, erased after
  uint64_t next_id_ = 2;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options,
                                                      Handler handler) {
  if (!handler) return absl::InvalidArgumentError("http server needs a handler");
  auto server = std::make_unique<ServerImpl>(options, std::move(handler));
  absl::Status status = server->Init();
  if (!status.ok()) return status;
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace yuan::http

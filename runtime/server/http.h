// A small HTTP/1.1 server for `yuan serve`, written for hostile networks:
// one I/O thread multiplexes every connection with epoll, so idle or slow
// clients cost a file descriptor and a buffer, never a thread. Limits on
// header size, body size, connection count, header/idle/write timeouts and
// buffered output keep memory bounded; a request over a limit gets its 4xx
// (or the connection is cut) and everybody else keeps being served.
//
// Handlers run on the I/O thread and must not block: they parse the request,
// hand the work elsewhere (the scheduler), and answer through the Responder
// later, from any thread. Streaming answers (server-sent events) use chunked
// transfer encoding; a client that goes away is reported through
// Responder::OnClose so its work can be cancelled at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace yuan::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;   // "GET", "POST", ... as sent
  std::string target;   // request-target as sent ("/v1/models?x=1")
  std::string path;     // target up to '?', percent-decoding not applied
  std::string query;    // after '?', may be empty
  int version_minor = 1;  // HTTP/1.<minor>
  Headers headers;      // names lower-cased, values trimmed, in order
  std::string body;
  bool keep_alive = true;  // from version + Connection header

  // First value of a header (name lower-case), nullptr when absent.
  const std::string* Header(std::string_view name) const;
};

struct ParserLimits {
  size_t max_header_bytes = 16 * 1024;        // request line + headers: else 431
  size_t max_headers = 100;                   // else 431
  size_t max_body_bytes = 4 * 1024 * 1024;    // Content-Length above this: 413
};

// Incremental HTTP/1.1 request parser (RFC 9112): request line, headers,
// Content-Length bodies and chunked request bodies. Pure: no I/O, so it can
// be fuzzed (fuzz/http_request_fuzz.cpp).
class RequestParser {
 public:
  enum class State { kNeedMore, kDone, kError };
  explicit RequestParser(ParserLimits limits = {});

  // Consumes a prefix of `data` (*consumed bytes; the rest belongs to the
  // next, pipelined request). kDone: Take() the request, then Reset().
  // kError: error_status() (400, 413, 431, 501, 505) and error() say why.
  State Feed(std::string_view data, size_t* consumed);
  Request Take();
  void Reset();
  int error_status() const { return error_status_; }
  const std::string& error() const { return error_; }
  // Whether any byte of a request has been seen (for idle vs header timeouts).
  bool started() const;
  // True once the headers are complete, the request said "Expect:
  // 100-continue" and its body is still due: the server then sends
  // "100 Continue" so that clients such as curl don't wait a second.
  bool wants_continue() const;

  // Feed() keeps at most one line (request line, header, chunk size) of its
  // own copy; body bytes go straight into the request. Before: kDone/kError.
  // After kDone, Feed() consumes nothing until Reset().

 private:
  // Where in the message the next byte belongs. Line phases collect `line_`
  // up to its LF; kBody/kChunkData copy body_left_ bytes.
  enum class Phase : uint8_t {
    kRequestLine, kHeaders, kBody, kChunkSize, kChunkData, kChunkDataEnd, kTrailers,
    kDone, kError
  };
  State Fail(int status, std::string message);
  State OnLine(std::string_view line);  // a complete line, CRLF/LF removed
  State OnRequestLine(std::string_view line);
  State OnHeaderLine(std::string_view line);
  State OnHeadersDone();
  State OnChunkSizeLine(std::string_view line);

  ParserLimits limits_;
  int error_status_ = 0;
  std::string error_;
  Phase phase_ = Phase::kRequestLine;
  std::string line_;          // the current line so far, with its LF once complete
  size_t head_bytes_ = 0;     // request line + headers so far (max_header_bytes)
  size_t trailer_bytes_ = 0;  // trailer section so far (same limit)
  uint64_t body_left_ = 0;    // of the Content-Length body or the current chunk
  Request request_;
};

// The way back to one request's client. Thread-safe; any thread may call it
// after the handler returned. Exactly one of Send or StartStream..End forms
// the response; calls after the client went away are ignored (return false).
class Responder {
 public:
  virtual ~Responder() = default;
  // A complete response with Content-Length.
  virtual void Send(int status, std::string_view content_type, std::string body,
                    Headers extra = {}) = 0;
  // Starts a chunked response (e.g. "text/event-stream").
  virtual void StartStream(int status, std::string_view content_type, Headers extra = {}) = 0;
  // Queues one chunk; false when the client is gone or too slow (its
  // buffered output passed ServerOptions::max_output_bytes: it is cut off).
  virtual bool Write(std::string data) = 0;
  // Ends a streamed response (the terminating chunk).
  virtual void End() = 0;
  // True once the connection closed before the response ended.
  virtual bool closed() const = 0;
  // Also part of the contract (http.cpp): Write("") is a no-op returning
  // true; a responder whose last reference goes away unanswered answers 500
  // (or cuts a started stream) and closes the connection; HTTP/1.0 clients
  // get a stream without chunked framing that ends with the connection;
  // HEAD requests get the headers only. A "Connection: close" in `extra`
  // closes the connection after the response.

  // fn runs once, on the I/O thread, when the client disconnects (or is cut
  // off) before the response ended. Set it before handing the responder on;
  // runs at once (on the calling thread) if already closed. Setting another
  // fn replaces one that has not run.
  virtual void OnClose(std::function<void()> fn) = 0;
};

using Handler = std::function<void(Request request, std::shared_ptr<Responder> responder)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: an ephemeral port (see Server::port)
  size_t max_connections = 1024;   // more are accepted, answered 503 and closed
  int header_timeout_ms = 10000;   // a started request must be complete by then: 408
  // A connection with no request started (fresh, or keep-alive between
  // requests) is closed silently after this long.
  int idle_timeout_ms = 60000;
  int write_timeout_ms = 30000;    // buffered output not drained for this long: cut off
  size_t max_output_bytes = 8 << 20;  // per connection buffered output limit
  ParserLimits limits;
};

class Server {
 public:
  // Binds, listens and starts the I/O thread. The error names the address
  // when binding fails (e.g. port in use).
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options,
                                                       Handler handler);
  virtual ~Server() = default;  // Stop()s
  virtual int port() const = 0;  // the bound port
  // Closes the listener and every connection (OnClose callbacks run) and
  // joins the I/O thread. Idempotent. Called from a handler (the I/O thread)
  // it only asks the loop to end; the server must then be destroyed from
  // another thread, which joins it.
  virtual void Stop() = 0;
  virtual size_t open_connections() const = 0;
};

// The standard reason phrase for a status code ("Not Found").
std::string_view ReasonPhrase(int status);

}  // namespace yuan::http

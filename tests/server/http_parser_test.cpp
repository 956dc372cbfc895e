// RequestParser: valid requests fed whole and split at every byte, pipelining,
// chunked bodies, and the exact status of every malformed or oversized input.
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "runtime/server/http.h"

namespace yuan::http {
namespace {

struct Parsed {
  RequestParser::State state;
  size_t consumed = 0;
  int status = 0;
  Request request;
};

// Feeds `data` in pieces of at most `piece` bytes, as a socket would.
Parsed ParseInPieces(std::string_view data, size_t piece, ParserLimits limits = {}) {
  RequestParser parser(limits);
  Parsed out;
  out.state = RequestParser::State::kNeedMore;
  while (out.consumed < data.size()) {
    size_t n = std::min(piece, data.size() - out.consumed);
    size_t used = 0;
    out.state = parser.Feed(data.substr(out.consumed, n), &used);
    out.consumed += used;
    if (out.state != RequestParser::State::kNeedMore) break;
    REQUIRE(used == n);  // NeedMore consumes everything it was given
  }
  out.status = parser.error_status();
  if (out.state == RequestParser::State::kDone) out.request = parser.Take();
  return out;
}

Parsed Parse(std::string_view data, ParserLimits limits = {}) {
  return ParseInPieces(data, data.size() + 1, limits);
}

int ErrorStatus(std::string_view data, ParserLimits limits = {}) {
  Parsed p = Parse(data, limits);
  if (p.state != RequestParser::State::kError) return 0;
  return p.status;
}

const char kPost[] =
    "POST /v1/completions?stream=1 HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "Content-Type:application/json  \r\n"
    "X-Empty:\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "{\"prompt\":12}";

TEST_CASE("http: parser reads a POST with headers and body") {
  Parsed p = Parse(kPost);
  REQUIRE(p.state == RequestParser::State::kDone);
  CHECK(p.consumed == sizeof(kPost) - 1);
  const Request& r = p.request;
  CHECK(r.method == "POST");
  CHECK(r.target == "/v1/completions?stream=1");
  CHECK(r.path == "/v1/completions");
  CHECK(r.query == "stream=1");
  CHECK(r.version_minor == 1);
  CHECK(r.keep_alive);
  CHECK(r.body == "{\"prompt\":12}");
  REQUIRE(r.headers.size() == 4);
  CHECK(r.headers[0].first == "host");
  REQUIRE(r.Header("content-type") != nullptr);
  CHECK(*r.Header("content-type") == "application/json");
  REQUIRE(r.Header("x-empty") != nullptr);
  CHECK(r.Header("x-empty")->empty());
  CHECK(r.Header("accept") == nullptr);
}

TEST_CASE("http: parser gives the same request split at every byte boundary") {
  const std::string chunked =
      "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: 1\r\n\r\n";
  for (std::string_view message : {std::string_view(kPost), std::string_view(chunked)}) {
    Parsed whole = Parse(message);
    REQUIRE(whole.state == RequestParser::State::kDone);
    // Two pieces split at every position, and one byte at a time.
    for (size_t split = 1; split < message.size(); ++split) {
      RequestParser parser;
      size_t used1 = 0, used2 = 0;
      RequestParser::State s1 = parser.Feed(message.substr(0, split), &used1);
      REQUIRE(s1 == RequestParser::State::kNeedMore);
      REQUIRE(used1 == split);
      REQUIRE(parser.started());
      REQUIRE(parser.Feed(message.substr(split), &used2) == RequestParser::State::kDone);
      REQUIRE(used1 + used2 == message.size());
      Request r = parser.Take();
      CHECK(r.body == whole.request.body);
      CHECK(r.headers == whole.request.headers);
      CHECK(r.target == whole.request.target);
    }
    Parsed bytes = ParseInPieces(message, 1);
    REQUIRE(bytes.state == RequestParser::State::kDone);
    CHECK(bytes.request.body == whole.request.body);
  }
  CHECK(Parse(chunked).request.body == "hello, world!!!");
}

TEST_CASE("http: parser consumes only the first of two pipelined requests") {
  const std::string first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string second = "POST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
  const std::string both = first + second;
  RequestParser parser;
  size_t used = 0;
  REQUIRE(parser.Feed(both, &used) == RequestParser::State::kDone);
  CHECK(used == first.size());
  CHECK(parser.Take().path == "/a");
  // Without Reset nothing more is consumed.
  size_t again = 7;
  CHECK(parser.Feed(std::string_view(both).substr(used), &again) == RequestParser::State::kDone);
  CHECK(again == 0);
  parser.Reset();
  CHECK_FALSE(parser.started());
  size_t used2 = 0;
  REQUIRE(parser.Feed(std::string_view(both).substr(used), &used2) == RequestParser::State::kDone);
  CHECK(used2 == second.size());
  Request r = parser.Take();
  CHECK(r.path == "/b");
  CHECK(r.body == "hi");
}

TEST_CASE("http: parser decides keep-alive from version and Connection") {
  auto keep = [](std::string_view head) {
    Parsed p = Parse(std::string(head) + "\r\n");
    REQUIRE(p.state == RequestParser::State::kDone);
    return p.request.keep_alive;
  };
  CHECK(keep("GET / HTTP/1.1\r\n"));
  CHECK_FALSE(keep("GET / HTTP/1.1\r\nConnection: close\r\n"));
  CHECK_FALSE(keep("GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n"));
  CHECK_FALSE(keep("GET / HTTP/1.0\r\n"));
  CHECK(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n"));
  Parsed p = Parse("GET / HTTP/1.0\r\n\r\n");
  CHECK(p.request.version_minor == 0);
}

TEST_CASE("http: parser accepts lone LF line ends and leading empty lines") {
  Parsed p = Parse("\r\n\nGET /x HTTP/1.1\nHost: a\n\n");
  REQUIRE(p.state == RequestParser::State::kDone);
  CHECK(p.request.path == "/x");
  CHECK(*p.request.Header("host") == "a");
}

TEST_CASE("http: parser answers 400 for malformed requests") {
  CHECK(ErrorStatus("GET\r\n\r\n") == 400);
  CHECK(ErrorStatus("GET /\r\n\r\n") == 400);
  CHECK(ErrorStatus("GET  / HTTP/1.1\r\n\r\n") == 400);       // double space
  CHECK(ErrorStatus("G(T / HTTP/1.1\r\n\r\n") == 400);        // not a token
  CHECK(ErrorStatus("GET /a b HTTP/1.1\r\n\r\n") == 400);
  CHECK(ErrorStatus("GET / HTTP/1.1 \r\n\r\n") == 400);
  CHECK(ErrorStatus("GET / http/1.1\r\n\r\n") == 400);
  CHECK(ErrorStatus("GET / HTTP/1.x\r\n\r\n") == 400);
  CHECK(ErrorStatus("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n") == 400);  // obs-fold
  CHECK(ErrorStatus("GET / HTTP/1.1\r\n\tfolded: x\r\n\r\n") == 400);
  CHECK(ErrorStatus("GET / HTTP/1.1\r\nHost : a\r\n\r\n") == 400);  // space before colon
  CHECK(ErrorStatus("GET / HTTP/1.1\r\nNoColon\r\n\r\n") == 400);
  CHECK(ErrorStatus("GET / HTTP/1.1\r\n: empty\r\n\r\n") == 400);
  CHECK(ErrorStatus("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n") == 400);  // bare CR
  CHECK(ErrorStatus("GET / HTTP/1.1\rHost: a\r\n\r\n") == 400);
  CHECK(ErrorStatus(std::string_view("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 26)) == 400);  // NUL
  CHECK(ErrorStatus("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n") == 400);
  // Content-Length: digits only, duplicates must agree, never with TE.
  CHECK(ErrorStatus("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n") == 400);
  CHECK(ErrorStatus("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx") == 400);
  CHECK(ErrorStatus("POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx") == 400);
  CHECK(ErrorStatus("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n") == 400);
  CHECK(ErrorStatus("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx") == 400);
  CHECK(Parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx").state ==
        RequestParser::State::kDone);
  CHECK(ErrorStatus("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        400);
  CHECK(ErrorStatus("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n") == 400);
  // Chunked framing.
  const std::string te = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  CHECK(ErrorStatus(te + "x\r\n") == 400);
  CHECK(ErrorStatus(te + ";ext\r\n") == 400);
  CHECK(ErrorStatus(te + "3 x\r\n") == 400);
  CHECK(ErrorStatus(te + "3\r\nabcd\r\n") == 400);  // data longer than its size
  CHECK(ErrorStatus(te + "11111111111111111\r\n") == 400);  // 17 hex digits overflow
  CHECK(ErrorStatus(te + std::string(2000, '0') + "1\r\n") == 400);  // size line too long
}

TEST_CASE("http: parser answers 505 for other HTTP versions") {
  CHECK(ErrorStatus("GET / HTTP/2.0\r\n\r\n") == 505);
  CHECK(ErrorStatus("GET / HTTP/1.2\r\n\r\n") == 505);
  CHECK(ErrorStatus("GET / HTTP/0.9\r\n\r\n") == 505);
}

TEST_CASE("http: parser answers 501 for unknown transfer codings") {
  CHECK(ErrorStatus("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501);
  CHECK(ErrorStatus("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n") == 501);
}

TEST_CASE("http: parser answers 413 for bodies over the limit, before reading them") {
  ParserLimits limits;
  limits.max_body_bytes = 100;
  CHECK(ErrorStatus("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", limits) == 413);
  CHECK(ErrorStatus("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                    limits) == 413);
  CHECK(Parse("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'x'), limits)
            .state == RequestParser::State::kDone);
  const std::string te = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  CHECK(ErrorStatus(te + "65\r\n", limits) == 413);  // 101 in one chunk
  CHECK(ErrorStatus(te + "32\r\n" + std::string(50, 'x') + "\r\n33\r\n", limits) == 413);
  CHECK(ErrorStatus(te + "FFFFFFFFFFFFFFFF\r\n", limits) == 413);
  CHECK(Parse(te + "32\r\n" + std::string(50, 'x') + "\r\n32\r\n" + std::string(50, 'y') +
                  "\r\n0\r\n\r\n",
              limits)
            .request.body.size() == 100);
}

TEST_CASE("http: parser answers 431 for headers over the limits") {
  ParserLimits limits;
  limits.max_header_bytes = 200;
  limits.max_headers = 5;
  CHECK(ErrorStatus("GET /" + std::string(300, 'a') + " HTTP/1.1\r\n\r\n", limits) == 431);
  CHECK(ErrorStatus("GET / HTTP/1.1\r\nA: " + std::string(300, 'a') + "\r\n\r\n", limits) == 431);
  // Exactly at the limit is fine.
  std::string head = "GET / HTTP/1.1\r\nA: ";
  head += std::string(200 - head.size() - 4, 'a') + "\r\n\r\n";
  REQUIRE(head.size() == 200);
  CHECK(Parse(head, limits).state == RequestParser::State::kDone);
  CHECK(ErrorStatus(head.substr(0, head.size() - 2) + "B: b\r\n\r\n", limits) == 431);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 6; ++i) many += "H" + std::to_string(i) + ": v\r\n";
  CHECK(ErrorStatus(many + "\r\n", limits) == 431);
  // A header line that never ends stops at the limit, not at the end of memory.
  RequestParser parser(limits);
  std::string endless = "GET / HTTP/1.1\r\nX: " + std::string(1000, 'z');
  size_t used = 0;
  CHECK(parser.Feed(endless, &used) == RequestParser::State::kError);
  CHECK(parser.error_status() == 431);
  CHECK_FALSE(parser.error().empty());
}

TEST_CASE("http: parser reports Expect: 100-continue once the headers are in") {
  RequestParser parser;
  size_t used = 0;
  parser.Feed("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n", &used);
  CHECK_FALSE(parser.wants_continue());
  parser.Feed("\r\n", &used);
  CHECK(parser.wants_continue());
  parser.Feed("a", &used);
  CHECK_FALSE(parser.wants_continue());
}

TEST_CASE("http: ReasonPhrase knows the common codes") {
  CHECK(ReasonPhrase(200) == "OK");
  CHECK(ReasonPhrase(404) == "Not Found");
  CHECK(ReasonPhrase(431) == "Request Header Fields Too Large");
  CHECK(ReasonPhrase(503) == "Service Unavailable");
  CHECK(ReasonPhrase(799) == "Unknown");
}

}  // namespace
}  // namespace yuan::http

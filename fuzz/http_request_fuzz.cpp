// libFuzzer target for the HTTP/1.1 request parser. The first bytes choose
// small limits (so 413 and 431 are reachable) and the sizes of the pieces the
// rest is fed in; the parse must give exactly the same requests and errors
// as when the whole input is fed at once, and keep the parser's invariants.
//   cmake --preset fuzz && cmake --build --preset fuzz --target http_request_fuzz
//   ./build/fuzz/fuzz/http_request_fuzz -dict=fuzz/http_request.dict \
//       -max_total_time=60 fuzz/corpus/http_request
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/server/http.h"

namespace {

using yuan::http::ParserLimits;
using yuan::http::Request;
using yuan::http::RequestParser;

constexpr size_t kPrefix = 10;  // 2 bytes of limits, 8 of piece sizes

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckRequest(const Request& r, const ParserLimits& limits) {
  Check(!r.method.empty() && !r.target.empty());
  Check(r.target.compare(0, r.path.size(), r.path) == 0);
  Check(r.version_minor == 0 || r.version_minor == 1);
  Check(r.body.size() <= limits.max_body_bytes);
  Check(r.headers.size() <= limits.max_headers);
  for (const auto& [name, value] : r.headers) {
    Check(!name.empty());
    for (char c : name) Check(!(c >= 'A' && c <= 'Z'));
    Check(value.find_first_of("\r\n", 0) == std::string::npos && value.find('\0') == std::string::npos);
    Check(value.empty() || (value.front() != ' ' && value.back() != ' '));
    Check(r.Header(name) != nullptr);
  }
}

// Parses `data` as a connection would: pieces[i % 8] chooses how many bytes
// read number i delivers (nullptr: everything at once). Returns a summary of
// every request and error, in order.
std::string Run(std::string_view data, const ParserLimits& limits, const uint8_t* pieces) {
  RequestParser parser(limits);
  std::string summary;
  std::string pending;  // delivered, not yet consumed (pipelined bytes)
  size_t offset = 0;
  for (size_t read = 0; offset < data.size() || !pending.empty(); ++read) {
    if (offset < data.size()) {
      size_t n = data.size() - offset;
      if (pieces != nullptr && pieces[read % 8] < 0xf0) n = std::min<size_t>(n, pieces[read % 8] % 97 + 1);
      pending.append(data.substr(offset, n));
      offset += n;
    }
    // Feed what was delivered until the parser needs more.
    while (true) {
      size_t used = 0;
      RequestParser::State state = parser.Feed(pending, &used);
      Check(used <= pending.size());
      pending.erase(0, used);
      if (state == RequestParser::State::kNeedMore) {
        Check(pending.empty());  // NeedMore takes everything it is given
        Check(parser.error_status() == 0);
        break;
      }
      if (state == RequestParser::State::kError) {
        int s = parser.error_status();
        Check(s == 400 || s == 413 || s == 431 || s == 501 || s == 505);
        Check(!parser.error().empty());
        size_t again = 1;
        Check(parser.Feed("x", &again) == RequestParser::State::kError && again == 0);
        return summary + "E" + std::to_string(s);  // the server closes here
      }
      Request r = parser.Take();
      CheckRequest(r, limits);
      summary += r.method + " " + r.target + " " + std::to_string(r.headers.size()) + " " +
                 std::to_string(r.body.size()) + (r.keep_alive ? " K" : " C") + ";";
      parser.Reset();
      Check(!parser.started());
      if (pending.empty()) break;
    }
  }
  return summary + (parser.started() ? "+" : "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kPrefix) return 0;
  ParserLimits limits;
  limits.max_header_bytes = 32 + size_t{data[0]} * 4;
  limits.max_headers = 1 + data[0] % 24;
  limits.max_body_bytes = size_t{data[1]} * 8;
  std::string_view input(reinterpret_cast<const char*>(data) + kPrefix, size - kPrefix);
  std::string whole = Run(input, limits, nullptr);
  std::string split = Run(input, limits, data + 2);
  Check(whole == split);
  return 0;
}

// The HTTP/1.1 request parser (RFC 9112), strict where leniency lets two
// parsers disagree about where a request ends (request smuggling): obs-fold,
// bare CR, whitespace before the colon, Content-Length with Transfer-Encoding
// and disagreeing Content-Lengths are all errors, never guesses.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/server/http.h"

namespace yuan::http {
namespace {

// A chunk-size line ("1a2b;ext=1") longer than this is an attack, not a size.
constexpr size_t kMaxChunkLine = 1024;

// tchar (RFC 9110 5.6.2): the characters of methods and header names.
bool IsTchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return IsTchar(static_cast<unsigned char>(c)); });
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for each non-empty element of a comma-separated list.
template <typename Fn>
void ForEachListElement(std::string_view list, Fn fn) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view element = TrimOws(list.substr(0, comma));
    if (!element.empty()) fn(element);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

const std::string* Request::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

RequestParser::RequestParser(ParserLimits limits) : limits_(limits) {}

void RequestParser::Reset() {
  error_status_ = 0;
  error_.clear();
  phase_ = Phase::kRequestLine;
  line_.clear();
  head_bytes_ = 0;
  trailer_bytes_ = 0;
  body_left_ = 0;
  request_ = Request{};
}

Request RequestParser::Take() { return std::move(request_); }

bool RequestParser::started() const {
  return phase_ != Phase::kRequestLine || head_bytes_ > 0;
}

bool RequestParser::wants_continue() const {
  if (phase_ != Phase::kBody && phase_ != Phase::kChunkSize) return false;
  if (phase_ == Phase::kChunkSize && !request_.body.empty()) return false;
  if (phase_ == Phase::kBody && !request_.body.empty()) return false;
  const std::string* expect = request_.Header("expect");
  return expect != nullptr && EqualsIgnoreCase(*expect, "100-continue");
}

RequestParser::State RequestParser::Fail(int status, std::string message) {
  phase_ = Phase::kError;
  error_status_ = status;
  error_ = std::move(message);
  line_.clear();
  return State::kError;
}

RequestParser::State RequestParser::Feed(std::string_view data, size_t* consumed) {
  *consumed = 0;
  if (phase_ == Phase::kDone) return State::kDone;
  if (phase_ == Phase::kError) return State::kError;
  size_t i = 0;
  while (i < data.size()) {
    if (phase_ == Phase::kBody || phase_ == Phase::kChunkData) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(body_left_, data.size() - i));
      request_.body.append(data.substr(i, n));
      i += n;
      body_left_ -= n;
      if (body_left_ == 0) {
        phase_ = phase_ == Phase::kBody ? Phase::kDone : Phase::kChunkDataEnd;
      }
      if (phase_ == Phase::kDone) break;
      continue;
    }
    // A line phase: take bytes up to and including the next LF, checking the
    // limit before copying so a hostile line never grows past it.
    size_t lf = data.find('\n', i);
    size_t take = (lf == std::string_view::npos ? data.size() : lf + 1) - i;
    if (phase_ == Phase::kRequestLine || phase_ == Phase::kHeaders) {
      if (head_bytes_ + take > limits_.max_header_bytes) {
        return Fail(431, "request line and headers exceed " +
                             std::to_string(limits_.max_header_bytes) + " bytes");
      }
      head_bytes_ += take;
    } else if (phase_ == Phase::kTrailers) {
      if (trailer_bytes_ + take > limits_.max_header_bytes) {
        return Fail(431, "chunked trailers too large");
      }
      trailer_bytes_ += take;
    } else if (line_.size() + take > kMaxChunkLine) {
      return Fail(400, "chunk size line too long");
    }
    line_.append(data.substr(i, take));
    i += take;
    if (lf == std::string_view::npos) break;
    std::string_view line = line_;
    line.remove_suffix(1);  // LF
    // CRLF ends a line; a lone LF is accepted too (RFC 9112 2.2), a CR
    // anywhere else is rejected in OnLine.
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    State state = OnLine(line);
    line_.clear();
    if (state == State::kError) return state;
    if (phase_ == Phase::kDone) break;
  }
  *consumed = i;
  return phase_ == Phase::kDone ? State::kDone : State::kNeedMore;
}

RequestParser::State RequestParser::OnLine(std::string_view line) {
  // NUL and bare CR are rejected on every line: some intermediaries treat
  // a bare CR as a line end, and we must not see a different message.
  for (char c : line) {
    if (c == '\0') return Fail(400, "NUL byte in request");
    if (c == '\r') return Fail(400, "bare CR in request");
  }
  switch (phase_) {
    case Phase::kRequestLine:
      // RFC 9112 2.2: ignore empty lines before the request line (some
      // clients send an extra CRLF after a POST body).
      if (line.empty()) return State::kNeedMore;
      return OnRequestLine(line);
    case Phase::kHeaders:
      if (line.empty()) return OnHeadersDone();
      return OnHeaderLine(line);
    case Phase::kChunkSize:
      return OnChunkSizeLine(line);
    case Phase::kChunkDataEnd:
      if (!line.empty()) return Fail(400, "chunk data longer than its size");
      phase_ = Phase::kChunkSize;
      return State::kNeedMore;
    case Phase::kTrailers:
      // Trailer fields are read and dropped: nothing here needs them.
      if (line.empty()) phase_ = Phase::kDone;
      return State::kNeedMore;
    default:
      return Fail(400, "internal parser state");
  }
}

RequestParser::State RequestParser::OnRequestLine(std::string_view line) {
  // method SP request-target SP HTTP-version, single spaces only.
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Fail(400, "malformed request line");
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Fail(400, "malformed request line");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Fail(400, "malformed method");
  if (target.empty()) return Fail(400, "empty request target");
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return Fail(400, "invalid character in request target");
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return Fail(400, "malformed HTTP version");
  }
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    return Fail(505, "HTTP version not supported (HTTP/1.0 and HTTP/1.1 are)");
  }
  request_.method = std::string(method);
  request_.target = std::string(target);
  request_.version_minor = version[7] - '0';
  size_t q = target.find('?');
  request_.path = std::string(target.substr(0, q));
  request_.query = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
  phase_ = Phase::kHeaders;
  return State::kNeedMore;
}

RequestParser::State RequestParser::OnHeaderLine(std::string_view line) {
  if (line.front() == ' ' || line.front() == '\t') {
    return Fail(400, "obsolete line folding in headers");
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return Fail(400, "header line without colon");
  std::string_view name = line.substr(0, colon);
  if (!IsToken(name)) {
    // Covers "Name : value", which RFC 9112 5.1 requires us to reject.
    return Fail(400, "invalid header name");
  }
  std::string_view value = TrimOws(line.substr(colon + 1));
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return Fail(400, "control character in header");
  }
  if (request_.headers.size() >= limits_.max_headers) {
    return Fail(431, "more than " + std::to_string(limits_.max_headers) + " headers");
  }
  request_.headers.emplace_back(LowerCopy(name), std::string(value));
  return State::kNeedMore;
}

RequestParser::State RequestParser::OnHeadersDone() {
  bool close = false, keep_alive = false, has_te = false, has_cl = false;
  std::vector<std::string> codings;
  uint64_t content_length = 0;
  for (const auto& [name, value] : request_.headers) {
    if (name == "connection") {
      ForEachListElement(value, [&](std::string_view token) {
        close |= EqualsIgnoreCase(token, "close");
        keep_alive |= EqualsIgnoreCase(token, "keep-alive");
      });
    } else if (name == "transfer-encoding") {
      has_te = true;
      ForEachListElement(value, [&](std::string_view c) { codings.push_back(LowerCopy(c)); });
    } else if (name == "content-length") {
      // Digits only ("+5", "5, 5" and "" are errors); saturate instead of
      // overflowing, any saturated value is over every limit anyway.
      if (value.empty()) return Fail(400, "empty Content-Length");
      uint64_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return Fail(400, "invalid Content-Length");
        n = n > (UINT64_MAX - 9) / 10 ? UINT64_MAX : n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (has_cl && n != content_length) return Fail(400, "conflicting Content-Length headers");
      has_cl = true;
      content_length = n;
    }
  }
  request_.keep_alive = request_.version_minor >= 1 ? !close : (keep_alive && !close);
  if (has_te && has_cl) return Fail(400, "both Transfer-Encoding and Content-Length");
  if (has_te) {
    for (const std::string& c : codings) {
      if (c != "chunked") return Fail(501, "unsupported transfer coding");
    }
    if (codings.size() != 1) return Fail(400, "invalid Transfer-Encoding");
    phase_ = Phase::kChunkSize;
    return State::kNeedMore;
  }
  if (content_length > limits_.max_body_bytes) {
    return Fail(413, "request body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes");
  }
  body_left_ = content_length;
  phase_ = content_length == 0 ? Phase::kDone : Phase::kBody;
  return State::kNeedMore;
}

RequestParser::State RequestParser::OnChunkSizeLine(std::string_view line) {
  // chunk-size [ BWS ";" chunk-ext ]: extensions are ignored.
  size_t i = 0;
  uint64_t size = 0;
  for (; i < line.size() && HexValue(line[i]) >= 0; ++i) {
    if (size > (UINT64_MAX >> 4)) return Fail(400, "chunk size overflows");
    size = size << 4 | static_cast<uint64_t>(HexValue(line[i]));
  }
  if (i == 0) return Fail(400, "invalid chunk size");
  std::string_view rest = TrimOws(line.substr(i));
  if (!rest.empty() && rest.front() != ';') return Fail(400, "invalid chunk size");
  if (size == 0) {
    phase_ = Phase::kTrailers;
    return State::kNeedMore;
  }
  if (size > limits_.max_body_bytes - std::min<uint64_t>(request_.body.size(), limits_.max_body_bytes)) {
    return Fail(413, "request body exceeds " + std::to_string(limits_.max_body_bytes) + " bytes");
  }
  body_left_ = size;
  phase_ = Phase::kChunkData;
  return State::kNeedMore;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace yuan::http

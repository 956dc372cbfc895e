#include "runtime/remote/sse.h"

#include "absl/strings/str_cat.h"

namespace yuan::remote {
namespace {

constexpr unsigned char kBom[3] = {0xEF, 0xBB, 0xBF};

bool IsAsciiDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    // WHATWG UTF-8 decoder: the lead byte fixes the length and the allowed
    // range of the first continuation byte; a mismatch ends the maximal
    // invalid subpart before the offending byte.
    int need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool ok = true;
    for (int k = 0; k < need; ++k, ++j) {
      if (j >= n || p[j] < lo || p[j] > hi) {
        ok = false;
        break;
      }
      lo = 0x80;
      hi = 0xBF;
    }
    if (ok) {
      out.append(s.substr(i, j - i));
    } else {
      out.append("\xEF\xBF\xBD");
    }
    i = j;
  }
  return out;
}

absl::Status SseParser::Feed(std::string_view bytes, std::vector<SseEvent>* events) {
  if (failed_) return absl::ResourceExhaustedError("event stream parser: an earlier chunk failed");
  size_t i = 0;
  // A leading BOM (possibly split across chunks) is dropped; a partial
  // match that turns out not to be one is ordinary input.
  while (bom_state_ < 3 && i < bytes.size()) {
    if (static_cast<unsigned char>(bytes[i]) == kBom[bom_state_]) {
      ++bom_state_;
      ++i;
      continue;
    }
    const int matched = bom_state_;
    bom_state_ = 3;
    if (matched > 0) {
      absl::Status st =
          Feed(std::string_view(reinterpret_cast<const char*>(kBom), matched), events);
      if (!st.ok()) return st;
    }
  }
  for (; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;  // the LF of a CRLF split across chunks or not
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      ProcessLine(events);
      line_.clear();
      if (data_.size() > max_event_bytes_) {
        failed_ = true;
        return absl::ResourceExhaustedError(
            absl::StrCat("event stream: an event's data exceeds ", max_event_bytes_, " bytes"));
      }
      continue;
    }
    // Copy the run of ordinary bytes at once.
    size_t j = i;
    while (j < bytes.size() && bytes[j] != '\r' && bytes[j] != '\n') ++j;
    line_.append(bytes.substr(i, j - i));
    i = j - 1;
    if (line_.size() > max_event_bytes_) {
      failed_ = true;
      return absl::ResourceExhaustedError(
          absl::StrCat("event stream: a line exceeds ", max_event_bytes_, " bytes"));
    }
  }
  return absl::OkStatus();
}

void SseParser::ProcessLine(std::vector<SseEvent>* events) {
  if (line_.empty()) {
    Dispatch(events);
    return;
  }
  if (line_[0] == ':') return;  // a comment (servers send ": ping" as keep-alive)
  const std::string line = SanitizeUtf8(line_);
  std::string_view field = line, value;
  if (const size_t colon = line.find(':'); colon != std::string::npos) {
    field = std::string_view(line).substr(0, colon);
    value = std::string_view(line).substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "event") {
    type_.assign(value);
  } else if (field == "data") {
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_event_id_.assign(value);
  } else if (field == "retry") {
    if (IsAsciiDigits(value)) {
      // Saturate rather than overflow on absurd values.
      long long v = 0;
      for (char d : value) {
        if (v > 1000000000000LL) break;
        v = v * 10 + (d - '0');
      }
      retry_ms_ = v;
    }
  }
  // Any other field is ignored.
}

void SseParser::Dispatch(std::vector<SseEvent>* events) {
  if (data_.empty()) {
    type_.clear();
    return;
  }
  data_.pop_back();  // the LF after the last data line
  SseEvent ev;
  if (!type_.empty()) ev.type = std::move(type_);
  ev.data = std::move(data_);
  ev.id = last_event_id_;
  events->push_back(std::move(ev));
  data_.clear();
  type_.clear();
}

}  // namespace yuan::remote

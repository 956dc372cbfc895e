// An incremental parser for server-sent events (text/event-stream), as the
// WHATWG HTML standard's "Interpreting an event stream" section defines it.
// Pure: bytes in (split anywhere, even inside a line, a CRLF pair or a UTF-8
// character), events out. No I/O.
//
//   stream = [BOM] *event;  event = *(comment / field) end-of-line
//   lines end in CRLF, LF or CR; "data: a\ndata: b\n\n" is one event "a\nb".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace yuan::remote {

struct SseEvent {
  std::string type = "message";  // the `event:` field, "message" when absent
  std::string data;              // `data:` lines joined with "\n"
  std::string id;                // the last event id seen so far on the stream
};

class SseParser {
 public:
  // A line or an event's data longer than this is refused (a server that
  // never ends a line must not exhaust memory).
  static constexpr size_t kDefaultMaxEventBytes = 16u << 20;

  explicit SseParser(size_t max_event_bytes = kDefaultMaxEventBytes)
      : max_event_bytes_(max_event_bytes) {}

  // Consumes `bytes` and appends every event they complete to *events.
  // ResourceExhaustedError once a line or an event exceeds the limit; the
  // parser then refuses further input.
  absl::Status Feed(std::string_view bytes, std::vector<SseEvent>* events);

  // The `retry:` field's last value in milliseconds, -1 when none was sent.
  long long retry_ms() const { return retry_ms_; }
  // The last event id buffer (the spec's "last event ID string").
  const std::string& last_event_id() const { return last_event_id_; }
  // True when bytes of an unfinished event are pending (a stream that ends
  // now loses them: the spec discards an event without its blank line).
  bool has_pending() const { return !line_.empty() || !data_.empty() || !type_.empty(); }

 private:
  void ProcessLine(std::vector<SseEvent>* events);
  void Dispatch(std::vector<SseEvent>* events);

  size_t max_event_bytes_;
  std::string line_;           // the current line, without its terminator
  std::string data_;           // data buffer ("a\nb\n")
  std::string type_;           // event type buffer
  std::string last_event_id_;
  long long retry_ms_ = -1;
  bool after_cr_ = false;      // the last byte was CR: an LF next is part of it
  int bom_state_ = 0;          // 0-2: bytes of a leading BOM matched; 3: past it
  bool failed_ = false;
};

// Replaces each invalid UTF-8 sequence of `s` with U+FFFD, as the WHATWG
// "UTF-8 decode" algorithm does (one replacement per maximal invalid
// subpart).
std::string SanitizeUtf8(std::string_view s);

}  // namespace yuan::remote

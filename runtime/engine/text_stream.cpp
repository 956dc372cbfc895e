#include "runtime/engine/text_stream.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace yuan {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Appends the valid UTF-8 in `in` to *out, each maximal invalid subsequence
// replaced by one U+FFFD (Unicode's "substitution of maximal subparts", which
// browsers and Python also follow, so the output does not depend on where
// the bytes were split). Returns how many bytes were consumed: when `final`
// is false, a trailing lead byte that may still complete is left unconsumed.
//
// Well-formed sequences (Unicode Table 3-7); the second byte's range is what
// rules out overlongs, surrogates and code points above U+10FFFF:
//   00..7F
//   C2..DF 80..BF
//   E0 A0..BF 80..BF | E1..EC 80..BF 80..BF | ED 80..9F 80..BF | EE..EF 80..BF 80..BF
//   F0 90..BF 80..BF 80..BF | F1..F3 80..BF x3 | F4 80..8F 80..BF 80..BF
size_t DecodeUtf8(std::string_view in, bool final, std::string* out) {
  size_t i = 0;
  while (i < in.size()) {
    const uint8_t b = static_cast<uint8_t>(in[i]);
    if (b < 0x80) {
      out->push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    int need = 0;                  // continuation bytes after the lead
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b == 0xE0) {
      need = 2, lo = 0xA0;
    } else if (b == 0xED) {
      need = 2, hi = 0x9F;
    } else if (b >= 0xE1 && b <= 0xEF) {
      need = 2;
    } else if (b == 0xF0) {
      need = 3, lo = 0x90;
    } else if (b == 0xF4) {
      need = 3, hi = 0x8F;
    } else if (b >= 0xF1 && b <= 0xF3) {
      need = 3;
    } else {
      // Stray continuation byte, C0/C1 (always overlong) or F5..FF.
      out->append(kReplacement);
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool broken = false;
    for (int k = 0; k < need; ++k, ++j) {
      if (j == in.size()) {
        if (!final) return i;  // may still complete: hold it back
        broken = true;
        break;
      }
      const uint8_t c = static_cast<uint8_t>(in[j]);
      const bool ok = k == 0 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
      if (!ok) {
        broken = true;
        break;
      }
    }
    if (broken) {
      // in[i, j) is a maximal subpart; in[j] is looked at again as a start.
      out->append(kReplacement);
    } else {
      out->append(in.substr(i, j - i));
    }
    i = j;
  }
  return i;
}

// Stop strings go through the same decoder so that they are valid UTF-8 too:
// a valid needle found in valid text always starts and ends on character
// boundaries, so no match or hold-back can split a character.
std::string Sanitize(std::string_view s) {
  std::string out;
  DecodeUtf8(s, /*final=*/true, &out);
  return out;
}

}  // namespace

TextStream::TextStream(std::vector<std::string> stop_strings) {
  for (const std::string& s : stop_strings) {
    // An empty stop string would match before any text.
    if (!s.empty()) stops_.push_back(Sanitize(s));
  }
}

std::string TextStream::Push(std::string_view piece, bool* stopped) {
  if (stopped_) {
    if (stopped != nullptr) *stopped = true;
    return "";
  }
  pending_utf8_.append(piece);
  const size_t used = DecodeUtf8(pending_utf8_, /*final=*/false, &held_);
  pending_utf8_.erase(0, used);

  // held_ is only text that could start a stop string, plus the new text, so
  // any complete match starts inside it. The earliest match wins: generation
  // stops where the first stop string appears.
  size_t stop_at = std::string::npos;
  for (const std::string& s : stops_) stop_at = std::min(stop_at, held_.find(s));
  std::string out;
  if (stop_at != std::string::npos) {
    out = held_.substr(0, stop_at);
    held_.clear();
    pending_utf8_.clear();
    stopped_ = true;
  } else {
    // Hold the longest suffix that is a proper prefix of a stop string.
    size_t keep_from = held_.size();
    for (const std::string& s : stops_) {
      const size_t longest = std::min(s.size() - 1, held_.size());
      for (size_t len = longest; len > 0 && held_.size() - len < keep_from; --len) {
        if (s.compare(0, len, held_, held_.size() - len, len) == 0) {
          keep_from = held_.size() - len;
          break;
        }
      }
    }
    out = held_.substr(0, keep_from);
    held_.erase(0, keep_from);
  }
  emitted_.append(out);
  if (stopped != nullptr) *stopped = stopped_;
  return out;
}

std::string TextStream::Flush() {
  if (stopped_) return "";
  // The unfinished character is one maximal subpart: one U+FFFD.
  DecodeUtf8(pending_utf8_, /*final=*/true, &held_);
  pending_utf8_.clear();
  std::string out;
  out.swap(held_);
  // A stop string can only complete here if it contains U+FFFD itself; it
  // is still not shown.
  size_t stop_at = std::string::npos;
  for (const std::string& s : stops_) stop_at = std::min(stop_at, out.find(s));
  if (stop_at != std::string::npos) {
    out.resize(stop_at);
    stopped_ = true;
  }
  emitted_.append(out);
  return out;
}

}  // namespace yuan

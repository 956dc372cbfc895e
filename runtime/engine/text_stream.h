// Turns generated token pieces into the text a caller may see, in order:
//  - bytes of an incomplete UTF-8 character are held back until it completes
//    (a token may end inside a Chinese character or an emoji), so every chunk
//    emitted is valid UTF-8; invalid sequences become U+FFFD;
//  - text that could still become one of the stop strings is held back until
//    it either does (generation stops; the stop string is not emitted) or
//    cannot.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace yuan {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop_strings = {});

  // Adds a piece's bytes. Returns the text that is now safe to emit (may be
  // empty). Sets *stopped when a stop string completed; after that Push
  // returns "" and ignores input.
  std::string Push(std::string_view piece, bool* stopped);

  // End of generation: returns what was held back (a partial stop-string
  // match is real text after all; a trailing incomplete character becomes
  // U+FFFD).
  std::string Flush();

  // Everything emitted so far, excluding any stop string.
  const std::string& emitted() const { return emitted_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_utf8_;  // bytes of an unfinished character
  std::string held_;          // valid text that may start a stop string
  std::string emitted_;
  bool stopped_ = false;
};

}  // namespace yuan

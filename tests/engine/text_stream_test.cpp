// TextStream tests: UTF-8 hold-back, U+FFFD substitution and stop strings.
#include "runtime/engine/text_stream.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace yuan {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

// Strict UTF-8 check, written from Unicode Table 3-7 (well-formed byte
// sequences); deliberately separate from the decoder under test.
bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  auto in = [&](size_t k, int lo, int hi) {
    if (k >= s.size()) return false;
    const int c = static_cast<uint8_t>(s[k]);
    return c >= lo && c <= hi;
  };
  while (i < s.size()) {
    const int b = static_cast<uint8_t>(s[i]);
    if (b <= 0x7F) {
      i += 1;
    } else if (b >= 0xC2 && b <= 0xDF && in(i + 1, 0x80, 0xBF)) {
      i += 2;
    } else if (b == 0xE0 && in(i + 1, 0xA0, 0xBF) && in(i + 2, 0x80, 0xBF)) {
      i += 3;
    } else if (((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) && in(i + 1, 0x80, 0xBF) &&
               in(i + 2, 0x80, 0xBF)) {
      i += 3;
    } else if (b == 0xED && in(i + 1, 0x80, 0x9F) && in(i + 2, 0x80, 0xBF)) {
      i += 3;
    } else if (b == 0xF0 && in(i + 1, 0x90, 0xBF) && in(i + 2, 0x80, 0xBF) &&
               in(i + 3, 0x80, 0xBF)) {
      i += 4;
    } else if (b >= 0xF1 && b <= 0xF3 && in(i + 1, 0x80, 0xBF) && in(i + 2, 0x80, 0xBF) &&
               in(i + 3, 0x80, 0xBF)) {
      i += 4;
    } else if (b == 0xF4 && in(i + 1, 0x80, 0x8F) && in(i + 2, 0x80, 0xBF) &&
               in(i + 3, 0x80, 0xBF)) {
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

bool IsContinuation(char c) { return (static_cast<uint8_t>(c) & 0xC0) == 0x80; }

// Pushes `pieces` in order (then Flush), checks every chunk is valid UTF-8
// and returns the concatenation.
std::string Run(TextStream& ts, const std::vector<std::string>& pieces, bool* stopped = nullptr) {
  std::string all;
  bool stop = false;
  for (const std::string& p : pieces) {
    const std::string chunk = ts.Push(p, &stop);
    INFO("chunk after piece of " << p.size() << " bytes");
    REQUIRE(IsValidUtf8(chunk));
    all += chunk;
  }
  const std::string tail = ts.Flush();
  REQUIRE(IsValidUtf8(tail));
  all += tail;
  CHECK(ts.emitted() == all);
  if (stopped != nullptr) *stopped = stop;
  return all;
}

// Valid multi-byte text: CJK with full-width punctuation (3 bytes each) and
// an emoji ZWJ family (4-byte emoji joined by 3-byte U+200D) with a skin-tone
// modifier and a variation selector.
const std::string kChinese = "今天天气很好，我们去公园散步吧。";
const std::string kEmoji = "a👨‍👩‍👧‍👦b👍🏽❤️c";

TEST_CASE("Validator sanity", "[text_stream]") {
  CHECK(IsValidUtf8(kChinese));
  CHECK(IsValidUtf8(kEmoji));
  CHECK(kEmoji.size() == 1 + 25 + 1 + 8 + 6 + 1);
  CHECK_FALSE(IsValidUtf8("\xE4\xB8"));
  CHECK_FALSE(IsValidUtf8("\xED\xA0\x80"));
  CHECK_FALSE(IsValidUtf8("\xC0\xAF"));
}

TEST_CASE("Multi-byte text split at every byte boundary", "[text_stream]") {
  for (const std::string& text : {kChinese, kEmoji}) {
    const size_t n = text.size();
    SECTION("two pieces, every cut: " + text) {
      for (size_t i = 0; i <= n; ++i) {
        TextStream ts;
        bool stopped = true;
        const std::string first = ts.Push(text.substr(0, i), &stopped);
        CHECK_FALSE(stopped);
        // Held back only as far as the last complete character.
        size_t boundary = i;
        while (boundary < n && boundary > 0 && IsContinuation(text[boundary])) --boundary;
        CHECK(first == text.substr(0, boundary));
        // Separate statements: the operands of + are unsequenced.
        const std::string second = ts.Push(text.substr(i), &stopped);
        const std::string tail = ts.Flush();
        CHECK(first + second + tail == text);
      }
    }
    SECTION("three pieces, every pair of cuts: " + text) {
      for (size_t i = 0; i <= n; ++i) {
        for (size_t j = i; j <= n; ++j) {
          TextStream ts;
          const std::string all =
              Run(ts, {text.substr(0, i), text.substr(i, j - i), text.substr(j)});
          REQUIRE(all == text);
        }
      }
    }
    SECTION("one byte at a time: " + text) {
      TextStream ts;
      bool stopped = false;
      std::string all;
      for (size_t i = 0; i < n; ++i) {
        const std::string chunk = ts.Push(text.substr(i, 1), &stopped);
        REQUIRE(IsValidUtf8(chunk));
        all += chunk;
        // Everything up to the last complete character is out already.
        size_t boundary = i + 1;
        while (boundary < n && IsContinuation(text[boundary])) --boundary;
        REQUIRE(all == text.substr(0, boundary));
      }
      CHECK(ts.Flush().empty());
      CHECK(all == text);
      CHECK_FALSE(stopped);
    }
  }
}

TEST_CASE("Stop string split across pieces", "[text_stream]") {
  TextStream ts({"<|end|>"});
  bool stopped = true;
  CHECK(ts.Push("Hel", &stopped) == "Hel");
  CHECK_FALSE(stopped);
  CHECK(ts.Push("lo<|e", &stopped) == "lo");  // "<|e" may start the stop string
  CHECK_FALSE(stopped);
  CHECK(ts.Push("nd|>wor", &stopped).empty());
  CHECK(stopped);
  stopped = false;
  CHECK(ts.Push("ld", &stopped).empty());  // ignored after the stop
  CHECK(stopped);
  CHECK(ts.Flush().empty());
  CHECK(ts.emitted() == "Hello");
}

TEST_CASE("Chinese stop string, fed byte by byte", "[text_stream]") {
  const std::string text = "好的，结束了。";
  const std::string stop = "结束";
  const size_t stop_end = text.find(stop) + stop.size();
  TextStream ts({stop});
  std::string all;
  bool stopped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const std::string chunk = ts.Push(text.substr(i, 1), &stopped);
    REQUIRE(IsValidUtf8(chunk));
    all += chunk;
    // Stops exactly at the byte that completes the stop string.
    REQUIRE(stopped == (i + 1 >= stop_end));
  }
  CHECK(ts.Flush().empty());
  CHECK(all == "好的，");
  CHECK(ts.emitted() == "好的，");
}

TEST_CASE("Chinese stop string, every two-piece split", "[text_stream]") {
  const std::string text = "你好世界和平";
  for (size_t i = 0; i <= text.size(); ++i) {
    TextStream ts({"世界"});
    bool stopped = false;
    CHECK(Run(ts, {text.substr(0, i), text.substr(i)}, &stopped) == "你好");
    CHECK(stopped);
  }
}

TEST_CASE("Partial stop match that does not complete", "[text_stream]") {
  bool stopped = true;
  SECTION("emitted at Flush") {
    TextStream ts({"<|end|>"});
    CHECK(ts.Push("abc<|en", &stopped) == "abc");
    CHECK_FALSE(stopped);
    CHECK(ts.Flush() == "<|en");
    CHECK(ts.emitted() == "abc<|en");
  }
  SECTION("emitted once the text diverges") {
    TextStream ts({"<|end|>"});
    CHECK(ts.Push("a<|en", &stopped) == "a");
    CHECK(ts.Push("d?", &stopped) == "<|end?");
    CHECK_FALSE(stopped);
  }
  SECTION("a multi-byte prefix is held, then released") {
    TextStream ts({"世界"});
    CHECK(ts.Push("你好世", &stopped) == "你好");
    CHECK(ts.Push("人", &stopped) == "世人");
    CHECK_FALSE(stopped);
    CHECK(ts.Flush().empty());
  }
  SECTION("self-overlapping stop string") {
    TextStream ts({"aab"});
    CHECK(Run(ts, {"a", "a", "a", "b", "c"}, &stopped) == "a");
    CHECK(stopped);
  }
}

TEST_CASE("Several stop strings: the earliest match wins", "[text_stream]") {
  bool stopped = false;
  {
    TextStream ts({"world", "lo w"});
    CHECK(Run(ts, {"hello world"}, &stopped) == "hel");
    CHECK(stopped);
  }
  {
    // "bc" completes while "abcd" is still only a prefix.
    TextStream ts({"abcd", "bc"});
    CHECK(Run(ts, {"ab", "c", "d"}, &stopped) == "a");
    CHECK(stopped);
  }
  {
    TextStream ts({"<|end|>"});
    CHECK(Run(ts, {"<|end|>tail"}, &stopped).empty());
    CHECK(stopped);
  }
}

TEST_CASE("Empty stop strings are ignored", "[text_stream]") {
  TextStream ts({"", "zz"});
  bool stopped = true;
  CHECK(ts.Push("abc", &stopped) == "abc");
  CHECK_FALSE(stopped);
  CHECK(ts.Flush().empty());
}

TEST_CASE("Invalid UTF-8 becomes U+FFFD per maximal subpart", "[text_stream]") {
  auto decode = [](const std::vector<std::string>& pieces) {
    TextStream ts;
    return Run(ts, pieces);
  };
  const std::string r = kFffd;
  CHECK(decode({"\x80"}) == r);  // stray continuation
  CHECK(decode({"a\xC0\xAF"
                "b"}) == "a" + r + r + "b");             // overlong '/'
  CHECK(decode({"\xE0\x80\x80"}) == r + r + r);          // overlong 3-byte
  CHECK(decode({"\xED\xA0\x80"}) == r + r + r);          // surrogate U+D800
  CHECK(decode({"\xF4\x90\x80\x80"}) == r + r + r + r);  // U+110000
  CHECK(decode({"\xF5\x80"}) == r + r);
  CHECK(decode({"\xFF", "x"}) == r + "x");
  CHECK(decode({"\xE4\xB8"
                "a"}) == r + "a");                                // lead + non-continuation
  CHECK(decode({"\xE4", "\xB8", "x"}) == r + "x");                // same, across pieces
  CHECK(decode({"\xF0\x9F\x98"}) == r);                           // truncated at Flush
  CHECK(decode({"\xF0\x9F", "\x98\x80"}) == "\xF0\x9F\x98\x80");  // U+1F600, split
  // The Unicode Standard's own example (chapter 3, "U+FFFD Substitution of
  // Maximal Subparts"): 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
  CHECK(decode({"\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"}) ==
        "a" + r + r + r + "b" + r + "c" + r + r + "d");
}

TEST_CASE("Truncated character is held, then U+FFFD at Flush", "[text_stream]") {
  TextStream ts;
  bool stopped = false;
  CHECK(ts.Push("ok\xE4\xB8", &stopped) == "ok");
  CHECK(ts.Flush() == kFffd);
  CHECK(ts.emitted() == "ok" + kFffd);
}

TEST_CASE("A null stopped pointer is allowed", "[text_stream]") {
  TextStream ts({"x"});
  CHECK(ts.Push("abx", nullptr) == "ab");
  CHECK(ts.Push("more", nullptr).empty());
}

// Random byte soup in random pieces: every chunk is valid, and the result does
// not depend on how the bytes were split.
TEST_CASE("Random bytes, random splits", "[text_stream]") {
  std::mt19937 gen(7);
  const std::vector<std::string> fragments = {
      "a", "中", "😀", "\xE4", "\xB8", "\x80", "\xF0\x9F", "\xFF", "\xC3", "\xED\xA0", "结束", "<|"};
  for (int iter = 0; iter < 2000; ++iter) {
    std::string text;
    const int parts = static_cast<int>(gen() % 12);
    for (int k = 0; k < parts; ++k) text += fragments[gen() % fragments.size()];
    for (int b = static_cast<int>(gen() % 4); b > 0; --b) text += static_cast<char>(gen() & 0xFF);

    std::vector<std::string> pieces;
    for (size_t i = 0; i < text.size();) {
      const size_t len = 1 + gen() % 5;
      pieces.push_back(text.substr(i, len));
      i += len;
    }
    const std::vector<std::string> stops = {"结束", "<|end|>", "\xE4\xB8\xAD"};
    TextStream whole(stops), split(stops);
    bool stopped_whole = false, stopped_split = false;
    INFO("iteration " << iter);
    const std::string a = Run(whole, {text}, &stopped_whole);
    const std::string b = Run(split, pieces, &stopped_split);
    REQUIRE(a == b);
    REQUIRE(stopped_whole == stopped_split);
  }
}

}  // namespace
}  // namespace yuan

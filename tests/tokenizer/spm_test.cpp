// SpmTokenizer on hand-made vocabularies: merge order, byte fallback, special
// tokens, decoding, validation, speed, and a cross-check against a naive
// reference encoder on random vocabularies (no shared files needed).
#include "runtime/tokenizer/spm.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/status.h"
#include "tests/tokenizer/spm_reference.h"

namespace yuan {
namespace {

constexpr const char* kSp = "\xE2\x96\x81";  // "▁"

// Builds a vocabulary: <unk> <s> </s>, optionally the 256 byte tokens, then
// the pieces added with Add().
struct VocabBuilder {
  SpmVocab v;
  explicit VocabBuilder(bool with_bytes = true) {
    Add("<unk>", 0, TokenType::kUnknown);
    Add("<s>", 0, TokenType::kControl);
    Add("</s>", 0, TokenType::kControl);
    v.unk = 0;
    v.bos = 1;
    v.eos = 2;
    if (with_bytes) {
      for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        Add(buf, 0, TokenType::kByte);
      }
    }
  }
  int32_t Add(const std::string& text, float score, TokenType type = TokenType::kNormal) {
    v.tokens.push_back(text);
    v.scores.push_back(score);
    v.types.push_back(type);
    return static_cast<int32_t>(v.tokens.size() - 1);
  }
  std::unique_ptr<SpmTokenizer> Build() const {
    auto tok = SpmTokenizer::Create(v);
    REQUIRE(tok.ok());
    return std::move(tok).value();
  }
};

int32_t ByteId(const SpmTokenizer& tok, int b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  return tok.Find(buf);
}

const EncodeOptions kNoBos{/*add_bos=*/false, /*parse_special=*/false};

TEST_CASE("spm: best-scoring pair merges first, ties go to the leftmost pair", "[tokenizer][spm]") {
  VocabBuilder b;
  const int32_t sp = b.Add(kSp, -10);
  const int32_t a = b.Add("a", -10);
  const int32_t bb = b.Add("b", -10);
  const int32_t c = b.Add("c", -10);
  const int32_t ab = b.Add("ab", -1);
  const int32_t bc = b.Add("bc", -1);  // ties with "ab"
  b.Add(std::string(kSp) + "a", -2);
  const int32_t abc = b.Add("abc", -0.5f);
  auto tok = b.Build();

  // ▁ a b c: "ab" and "bc" tie at -1 and "ab" is leftmost, so ab then abc;
  // "▁a" (-2) would have won nothing.
  CHECK(tok->Encode("abc", kNoBos) == std::vector<int32_t>{sp, abc});
  // Without the space prefix (second span after nothing special) the same.
  CHECK(tok->Encode("bca", kNoBos) == std::vector<int32_t>{sp, bc, a});
  CHECK(tok->Encode("ba", kNoBos) == std::vector<int32_t>{sp, bb, a});
  CHECK(tok->Encode("cab", kNoBos) == std::vector<int32_t>{sp, c, ab});
  // With BOS.
  CHECK(tok->Encode("abc", EncodeOptions{}) == std::vector<int32_t>{1, sp, abc});
}

TEST_CASE("spm: a higher score wins regardless of position", "[tokenizer][spm]") {
  VocabBuilder b;
  b.Add(kSp, -10);
  const int32_t x = b.Add("x", -10);
  const int32_t y = b.Add("y", -10);
  const int32_t xy = b.Add("xy", -5);
  const int32_t yx = b.Add("yx", -1);
  auto tok = b.Build();
  // ▁ x y x: "yx" (-1) beats the leftmost "xy" (-5).
  CHECK(tok->Encode("xyx", kNoBos) == std::vector<int32_t>{tok->Find(kSp), x, yx});
  (void)y;
  (void)xy;
}

TEST_CASE("spm: characters missing from the vocabulary fall back to bytes, else unk",
          "[tokenizer][spm]") {
  VocabBuilder b;
  const int32_t sp = b.Add(kSp, -1);
  auto tok = b.Build();
  // "é" is C3 A9; "中" is E4 B8 AD.
  CHECK(tok->Encode("\xC3\xA9", kNoBos) ==
        std::vector<int32_t>{sp, ByteId(*tok, 0xC3), ByteId(*tok, 0xA9)});
  CHECK(tok->Encode("\xE4\xB8\xAD", kNoBos) ==
        std::vector<int32_t>{sp, ByteId(*tok, 0xE4), ByteId(*tok, 0xB8), ByteId(*tok, 0xAD)});

  VocabBuilder nb(/*with_bytes=*/false);
  const int32_t sp2 = nb.Add(kSp, -1);
  auto tok2 = nb.Build();
  // One <unk> per byte, as llama.cpp's byte_to_token would give if it
  // fell back to unk rather than throwing.
  CHECK(tok2->Encode("\xC3\xA9", kNoBos) == std::vector<int32_t>{sp2, 0, 0});
}

TEST_CASE("spm: invalid UTF-8 bytes are characters of their own and round-trip",
          "[tokenizer][spm]") {
  VocabBuilder b;
  const int32_t sp = b.Add(kSp, -1);
  const int32_t a = b.Add("a", -1);
  const int32_t bb = b.Add("b", -1);
  const int32_t ab = b.Add("ab", 0);
  auto tok = b.Build();
  // E4 is a 3-byte lead without its continuation bytes: it stands alone, so
  // "ab" after it still merges.
  const std::string s = std::string("\xE4") + "ab";
  CHECK(tok->Encode(s, kNoBos) == std::vector<int32_t>{sp, ByteId(*tok, 0xE4), ab});
  CHECK(SpmCharLength(s, 0) == 1);
  CHECK(SpmCharLength("\xE4\xB8\xAD", 0) == 3);
  CHECK(SpmCharLength("\xE4\xB8", 0) == 1);
  CHECK(SpmCharLength("\x80", 0) == 1);
  CHECK(SpmCharLength("\xF0\x9F\x98\x80", 0) == 4);

  const std::vector<std::string> cases = {"\xFF",
                                          "\xC3",
                                          std::string("a\x80") + "b",
                                          "\xF0\x9F\x98",
                                          "\xED\xA0\x80",
                                          std::string("\0a\0", 3),
                                          "\xE4\xB8\xAD\xE4\xB8"};
  for (const std::string& c : cases) {
    CHECK(tok->Decode(tok->Encode(c, EncodeOptions{})) == c);
  }
  (void)a;
  (void)bb;
}

TEST_CASE("spm: special tokens in text need parse_special; user-defined always match",
          "[tokenizer][spm]") {
  VocabBuilder b;
  const int32_t sp = b.Add(kSp, -1);
  const int32_t lt = b.Add("<", -1);
  const int32_t s = b.Add("s", -1);
  const int32_t gt = b.Add(">", -1);
  const int32_t x = b.Add("x", -1);
  const int32_t tool = b.Add("<tool>", 0, TokenType::kUserDefined);
  const int32_t tool_call = b.Add("<tool><call>", 0, TokenType::kUserDefined);
  auto tok = b.Build();

  // Off: "<s>" is plain text.
  CHECK(tok->Encode("x<s>x", kNoBos) == std::vector<int32_t>{sp, x, lt, s, gt, x});
  // On: <s> is BOS, and the text after a special token gets a space prefix
  // again, as in llama.cpp.
  const EncodeOptions special{false, true};
  CHECK(tok->Encode("x<s>x", special) == std::vector<int32_t>{sp, x, 1, sp, x});
  CHECK(tok->Encode("<s>", special) == std::vector<int32_t>{1});
  CHECK(tok->Encode("</s><unk>", special) == std::vector<int32_t>{2, 0});
  // User-defined tokens match even without parse_special, longest first.
  CHECK(tok->Encode("x<tool>", kNoBos) == std::vector<int32_t>{sp, x, tool});
  CHECK(tok->Encode("<tool><call>x", kNoBos) == std::vector<int32_t>{tool_call, sp, x});
  // Decoding: control tokens print only with render_special; user-defined always.
  CHECK(tok->Decode({1, sp, x, 1, sp, x}) == "x x");
  CHECK(tok->Decode({1, sp, x, 1, sp, x}, true) == "<s>x<s> x");
  CHECK(tok->Decode({x, tool}) == "x<tool>");
}

TEST_CASE("spm: decode strips the space prefix only at the start of a text", "[tokenizer][spm]") {
  VocabBuilder b;
  const int32_t sp = b.Add(kSp, -1);
  const int32_t hi = b.Add(std::string(kSp) + "hi", 0);
  const int32_t h = b.Add("h", -1);
  const int32_t i = b.Add("i", -1);
  b.Add("hi", -0.5f);  // the intermediate merge that leads to "▁hi"
  auto tok = b.Build();

  CHECK(tok->Encode("hi", EncodeOptions{}) == std::vector<int32_t>{1, hi});
  CHECK(tok->Decode({1, hi}) == "hi");
  CHECK(tok->Decode({1, hi, hi}) == "hi hi");
  // A continuation (no BOS) keeps its space, as llama.cpp's pieces do.
  CHECK(tok->Decode({hi, hi}) == " hi hi");
  // Exactly one space is dropped.
  CHECK(tok->Decode(tok->Encode("  hi", EncodeOptions{})) == "  hi");
  CHECK(tok->Decode({1, sp, sp, h, i}) == " hi");
  CHECK(tok->Decode({}) == "");
  CHECK(tok->Decode({1}) == "");
  CHECK(tok->Decode({1}, true) == "<s>");

  // A vocabulary that adds no BOS: every sequence is a text start.
  VocabBuilder nb;
  nb.v.add_bos = false;
  nb.Add("hi", -0.5f);
  const int32_t hi2 = nb.Add(std::string(kSp) + "hi", 0);
  auto tok2 = nb.Build();
  CHECK(tok2->Encode("hi", EncodeOptions{}) == std::vector<int32_t>{hi2});
  CHECK(tok2->Decode({hi2}) == "hi");

  // No space prefix: nothing is added or removed.
  VocabBuilder np;
  np.v.add_space_prefix = false;
  const int32_t sp3 = np.Add(kSp, -1);
  const int32_t hi3 = np.Add("hi", 0);
  auto tok3 = np.Build();
  CHECK(tok3->Encode("hi hi", EncodeOptions{}) == std::vector<int32_t>{1, hi3, sp3, hi3});
  CHECK(tok3->Decode({1, sp3, hi3}) == " hi");
}

TEST_CASE("spm: add_eos, token pieces and attributes", "[tokenizer][spm]") {
  VocabBuilder b;
  b.v.add_eos = true;
  const int32_t wa = b.Add(std::string(kSp) + "a", 0);
  const int32_t wb = b.Add(std::string(kSp) + "b", 0);
  const int32_t word = b.Add(std::string(kSp) + "x" + kSp + "y", 0);
  const int32_t unused = b.Add("<unused0>", 0, TokenType::kUnused);
  const int32_t eot = b.Add("<|eot|>", 0, TokenType::kControl);
  b.v.eot = eot;
  auto tok = b.Build();

  CHECK(tok->Encode("a b", EncodeOptions{}) == std::vector<int32_t>{1, wa, wb, 2});
  CHECK(tok->Encode("a b", kNoBos) == std::vector<int32_t>{wa, wb});
  CHECK(tok->Encode("", EncodeOptions{}) == std::vector<int32_t>{1, 2});
  CHECK(tok->Encode("", kNoBos).empty());

  CHECK(tok->TokenToPiece(word) == " x y");
  CHECK(tok->Text(word) == std::string(kSp) + "x" + kSp + "y");
  CHECK(tok->TokenToPiece(ByteId(*tok, 0x0A)) == "\n");
  CHECK(tok->TokenToPiece(ByteId(*tok, 0x00)) == std::string(1, '\0'));
  CHECK(tok->TokenToPiece(1) == "");
  CHECK(tok->TokenToPiece(1, true) == "<s>");
  CHECK(tok->TokenToPiece(0, true) == "<unk>");
  CHECK(tok->TokenToPiece(unused, true) == "");
  CHECK(tok->TokenToPiece(-1) == "");
  CHECK(tok->TokenToPiece(tok->n_vocab()) == "");
  CHECK(tok->Text(-5) == "");
  CHECK(tok->Type(tok->n_vocab()) == TokenType::kUndefined);
  CHECK(tok->Type(ByteId(*tok, 7)) == TokenType::kByte);
  CHECK(tok->IsEog(2));
  CHECK(tok->IsEog(eot));
  CHECK_FALSE(tok->IsEog(1));
  CHECK_FALSE(tok->IsEog(-1));
  CHECK_FALSE(tok->IsEog(1 << 30));
  // Out-of-range ids in Decode are skipped, never a crash.
  CHECK(tok->Decode({1, -3, wa, 99999, wb}) == "a b");
}

TEST_CASE("spm: Create rejects inconsistent vocabularies", "[tokenizer][spm]") {
  auto expect_error = [](const SpmVocab& v, const std::string& needle) {
    auto tok = SpmTokenizer::Create(v);
    REQUIRE_FALSE(tok.ok());
    CHECK(IsFormatError(tok.status()));
    CHECK_THAT(std::string(tok.status().message()), Catch::Contains(needle));
  };
  {
    VocabBuilder b;
    b.v.scores.pop_back();
    expect_error(b.v, "tokenizer.ggml.scores");
  }
  {
    VocabBuilder b;
    b.v.types.push_back(TokenType::kNormal);
    expect_error(b.v, "tokenizer.ggml.token_type");
  }
  {
    VocabBuilder b;
    b.v.bos = static_cast<int32_t>(b.v.tokens.size());
    expect_error(b.v, "tokenizer.ggml.bos_token_id");
  }
  {
    VocabBuilder b;
    b.v.eos = -7;
    expect_error(b.v, "tokenizer.ggml.eos_token_id");
  }
  {
    VocabBuilder b;
    b.Add("dup", 0);
    b.Add("dup", 0);
    expect_error(b.v, "duplicate");
  }
  {
    VocabBuilder b;
    b.Add("<0xZZ>", 0, TokenType::kByte);
    expect_error(b.v, "<0xNN>");
  }
  {
    VocabBuilder b;
    b.v.bos = -1;
    expect_error(b.v, "add_bos_token");
  }
  {
    SpmVocab empty;
    expect_error(empty, "empty");
  }
  {
    // Optional arrays may be absent; an empty piece is renamed, not matched.
    SpmVocab v;
    v.tokens = {"<unk>", "<s>", "</s>", "", "a"};
    v.bos = 1;
    auto tok = SpmTokenizer::Create(v);
    REQUIRE(tok.ok());
    CHECK((*tok)->Text(3) == "[EMPTY_3]");
    CHECK((*tok)->Type(4) == TokenType::kNormal);
    CHECK((*tok)->Score(4) == 0.0f);
  }
}

// Random vocabulary over a small alphabet with heavily tied scores, so that
// the order of merges and the tie rule matter.
SpmVocab RandomVocab(std::mt19937& rng, bool with_bytes) {
  VocabBuilder b(with_bytes);
  const std::vector<std::string> alphabet = {kSp, "a", "b", "c", "d", "\xE4\xB8\xAD", "\xC3\xA9"};
  // Most single characters, but leave some out to force byte fallback.
  for (const auto& ch : alphabet) {
    if (rng() % 4 != 0) b.Add(ch, -100.0f - static_cast<float>(rng() % 3));
  }
  std::uniform_int_distribution<int> len(2, 5);
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  for (int k = 0; k < 60; ++k) {
    std::string piece;
    const int n = len(rng);
    for (int i = 0; i < n; ++i) piece += alphabet[pick(rng)];
    bool dup = false;
    for (const auto& t : b.v.tokens) dup = dup || t == piece;
    if (!dup) b.Add(piece, -static_cast<float>(rng() % 6));
  }
  return b.v;
}

TEST_CASE("spm: matches a naive reference on random vocabularies and strings", "[tokenizer][spm]") {
  std::mt19937 rng(1234);
  const std::vector<std::string> parts = {" ",        "a",  "b", "c", "d", "\xE4\xB8\xAD",
                                          "\xC3\xA9", "  ", "e", "\n"};
  int compared = 0;
  for (int round = 0; round < 20; ++round) {
    const SpmVocab vocab = RandomVocab(rng, /*with_bytes=*/round % 5 != 0);
    auto created = SpmTokenizer::Create(vocab);
    REQUIRE(created.ok());
    const SpmTokenizer& tok = **created;
    testing::ReferenceSpm ref(vocab);
    for (int k = 0; k < 30; ++k) {
      std::string s;
      const int n = static_cast<int>(rng() % 24);
      for (int i = 0; i < n; ++i) {
        if (rng() % 10 == 0) {
          s += static_cast<char>(rng() % 256);  // random byte, maybe invalid UTF-8
        } else {
          s += parts[rng() % parts.size()];
        }
      }
      INFO("round " << round << " text '" << s << "'");
      std::vector<int32_t> expected = ref.Encode(s, /*space_prefix=*/!s.empty());
      // Random vocabularies have no user-defined tokens, so without
      // parse_special the whole text is one span, as for the reference.
      CHECK(tok.Encode(s, kNoBos) == expected);
      // Round trip needs byte fallback and a "▁" piece (else a space falls
      // back to the bytes of "▁", as in llama.cpp).
      if (vocab.tokens.size() > 259 && tok.Find(kSp) >= 0) {
        CHECK(tok.Decode(tok.Encode(s, EncodeOptions{})) == s);
      }
      ++compared;
    }
  }
  CHECK(compared == 600);
}

TEST_CASE("spm: long inputs encode in well under a second", "[tokenizer][spm]") {
  std::mt19937 rng(7);
  VocabBuilder b;
  // A vocabulary in which a single long word keeps merging: a, aa, aaaa, ...
  std::string piece = "a";
  for (int k = 0; k < 8; ++k) {
    b.Add(piece, static_cast<float>(k));
    piece += piece;
  }
  b.Add(kSp, -1);
  b.Add("b", -1);
  b.Add("ab", -2);
  b.Add(std::string(kSp) + "a", -3);
  auto tok = b.Build();

  const std::string one_word(100 * 1024, 'a');
  std::string mixed;
  while (mixed.size() < 100 * 1024) {
    const int r = static_cast<int>(rng() % 6);
    mixed += r == 0 ? " " : r == 1 ? "b" : r == 2 ? "\xE4\xB8\xAD" : "a";
  }
  for (const std::string* text : std::vector<const std::string*>{&one_word, &mixed}) {
    const auto start = std::chrono::steady_clock::now();
    const std::vector<int32_t> ids = tok->Encode(*text, EncodeOptions{});
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    INFO("encoded " << text->size() << " bytes into " << ids.size() << " tokens in " << seconds
                    << " s");
    // The requirement is "well under a second" for an optimised build; the
    // looser unoptimised / sanitizer bound still catches anything quadratic
    // (which would take minutes here).
#ifdef NDEBUG
    CHECK(seconds < 1.0);
#else
    CHECK(seconds < 10.0);
#endif
    CHECK(tok->Decode(ids) == *text);
  }
}

}  // namespace
}  // namespace yuan

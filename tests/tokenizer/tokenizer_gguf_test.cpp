// Tokenizer::FromGguf: metadata validation on files written with GgufWriter,
// and the real stories260K vocabulary against llama.cpp's golden ids.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/model/gguf.h"
#include "runtime/model/gguf_writer.h"
#include "runtime/tokenizer/spm.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/common/test_support.h"
#include "tests/tokenizer/spm_reference.h"

namespace yuan {
namespace {

constexpr const char* kSp = "\xE2\x96\x81";  // "▁"
const EncodeOptions kNoBos{/*add_bos=*/false, /*parse_special=*/false};

// ---------------------------------------------------------------------------
// Metadata validation on small synthetic files.

struct TokMeta {
  bool tokens = true;
  bool scores = true;
  bool types = true;
  int scores_extra = 0;  // added to the scores array length
  int types_extra = 0;
  std::function<void(GgufWriter&)> extra;  // more keys
  std::string model = "llama";
};

const std::vector<std::string>& SmallPieces() {
  static const std::vector<std::string> pieces = {
      "<unk>", "<s>", "</s>", "<0x0A>", "<0x41>", kSp, "a", "b", std::string(kSp) + "a", "ab"};
  return pieces;
}

// Parses a file with the given tokenizer metadata; the bytes stay alive in
// `*storage` for as long as the GgufFile is used.
std::unique_ptr<GgufFile> MakeFile(const TokMeta& m, std::vector<uint8_t>* storage) {
  const std::vector<std::string>& pieces = SmallPieces();
  const int n = static_cast<int>(pieces.size());
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  if (!m.model.empty()) w.AddString("tokenizer.ggml.model", m.model);
  if (m.tokens) w.AddStringArray("tokenizer.ggml.tokens", pieces);
  if (m.scores) {
    std::vector<float> scores(n + m.scores_extra, 0.0f);
    for (int i = 0; i < static_cast<int>(scores.size()); ++i) scores[i] = -static_cast<float>(i);
    w.AddFloat32Array("tokenizer.ggml.scores", scores);
  }
  if (m.types) {
    std::vector<int32_t> types = {2, 3, 3, 6, 6, 1, 1, 1, 1, 1};
    types.resize(n + m.types_extra, 1);
    w.AddInt32Array("tokenizer.ggml.token_type", types);
  }
  if (m.extra) m.extra(w);
  *storage = w.Serialize();
  auto file = GgufFile::FromBuffer(storage->data(), storage->size());
  REQUIRE(file.ok());
  return std::move(file).value();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const TokMeta& m) {
  std::vector<uint8_t> bytes;
  std::unique_ptr<GgufFile> file = MakeFile(m, &bytes);
  // The tokenizer copies what it needs: it must outlive the file.
  return Tokenizer::FromGguf(*file);
}

void ExpectFormatError(const TokMeta& m, const std::string& key) {
  auto tok = Load(m);
  REQUIRE_FALSE(tok.ok());
  INFO(tok.status().ToString());
  CHECK(IsFormatError(tok.status()));
  CHECK_THAT(std::string(tok.status().message()), Catch::Contains(key));
}

TEST_CASE("FromGguf: a minimal llama vocabulary loads", "[tokenizer][gguf]") {
  auto tok = Load(TokMeta{});
  REQUIRE(tok.ok());
  const Tokenizer& t = **tok;
  CHECK(t.n_vocab() == 10);
  CHECK(t.bos() == 1);  // llama.cpp's defaults when the ids are absent
  CHECK(t.eos() == 2);
  CHECK(t.IsEog(2));
  CHECK(t.Type(0) == TokenType::kUnknown);
  CHECK(t.Type(3) == TokenType::kByte);
  // ▁ a b: "▁a" has score -8, "ab" -9: ▁a first.
  CHECK(t.Encode("ab", EncodeOptions{}) == std::vector<int32_t>{1, 8, 7});
  CHECK(t.Decode({1, 8, 7}) == "ab");
  CHECK(t.Encode("A\n", kNoBos) == std::vector<int32_t>{5, 4, 3});
}

TEST_CASE("FromGguf: optional arrays and flags", "[tokenizer][gguf]") {
  {
    TokMeta m;
    m.scores = false;
    m.types = false;
    auto tok = Load(m);
    REQUIRE(tok.ok());
    CHECK((*tok)->Type(3) == TokenType::kNormal);  // no types: all normal
    // All scores 0: ties everywhere, so the leftmost pair "▁a" merges first.
    CHECK((*tok)->Encode("ab", kNoBos) == std::vector<int32_t>{8, 7});
  }
  {
    TokMeta m;
    m.extra = [](GgufWriter& w) {
      w.AddBool("tokenizer.ggml.add_bos_token", false);
      w.AddBool("tokenizer.ggml.add_eos_token", true);
      w.AddBool("tokenizer.ggml.add_space_prefix", false);
    };
    auto tok = Load(m);
    REQUIRE(tok.ok());
    CHECK((*tok)->Encode("ab", EncodeOptions{}) == std::vector<int32_t>{9, 2});
    CHECK((*tok)->Decode({9, 2}) == "ab");
  }
  {
    TokMeta m;
    m.extra = [](GgufWriter& w) {
      w.AddUint32("tokenizer.ggml.bos_token_id", 2);
      w.AddUint32("tokenizer.ggml.eos_token_id", 1);
      w.AddUint32("tokenizer.ggml.eot_token_id", 9);
      w.AddInt32("tokenizer.ggml.eom_token_id", 8);
      // llama.cpp's converters write "unset" as uint32 -1.
      w.AddUint32("tokenizer.ggml.unknown_token_id", 0xFFFFFFFFu);
    };
    auto tok = Load(m);
    REQUIRE(tok.ok());
    CHECK((*tok)->bos() == 2);
    CHECK((*tok)->eos() == 1);
    CHECK((*tok)->IsEog(1));
    CHECK((*tok)->IsEog(9));
    CHECK((*tok)->IsEog(8));
    CHECK_FALSE((*tok)->IsEog(2));
  }
}

TEST_CASE("FromGguf: inconsistent metadata is a FormatError naming the key", "[tokenizer][gguf]") {
  {
    TokMeta m;
    m.scores_extra = -1;
    ExpectFormatError(m, "tokenizer.ggml.scores");
  }
  {
    TokMeta m;
    m.scores_extra = 3;
    ExpectFormatError(m, "tokenizer.ggml.scores");
  }
  {
    TokMeta m;
    m.types_extra = -2;
    ExpectFormatError(m, "tokenizer.ggml.token_type");
  }
  {
    TokMeta m;
    m.tokens = false;
    ExpectFormatError(m, "tokenizer.ggml.tokens");
  }
  {
    TokMeta m;
    m.tokens = false;
    m.extra = [](GgufWriter& w) { w.AddInt32Array("tokenizer.ggml.tokens", {1, 2, 3}); };
    ExpectFormatError(m, "tokenizer.ggml.tokens");
  }
  {
    TokMeta m;
    m.tokens = false;
    m.extra = [](GgufWriter& w) { w.AddString("tokenizer.ggml.tokens", "a b c"); };
    ExpectFormatError(m, "tokenizer.ggml.tokens");
  }
  {
    TokMeta m;
    m.scores = false;
    m.extra = [](GgufWriter& w) {
      w.AddStringArray("tokenizer.ggml.scores", std::vector<std::string>(10, "0"));
    };
    ExpectFormatError(m, "tokenizer.ggml.scores");
  }
  {
    TokMeta m;
    m.types = false;
    m.extra = [](GgufWriter& w) {
      w.AddFloat32Array("tokenizer.ggml.token_type", std::vector<float>(10, 1.0f));
    };
    ExpectFormatError(m, "tokenizer.ggml.token_type");
  }
  {
    TokMeta m;
    m.extra = [](GgufWriter& w) { w.AddUint32("tokenizer.ggml.bos_token_id", 10); };
    ExpectFormatError(m, "tokenizer.ggml.bos_token_id");
  }
  {
    TokMeta m;
    m.extra = [](GgufWriter& w) { w.AddInt32("tokenizer.ggml.eos_token_id", -5); };
    ExpectFormatError(m, "tokenizer.ggml.eos_token_id");
  }
  {
    TokMeta m;
    m.extra = [](GgufWriter& w) { w.AddString("tokenizer.ggml.eos_token_id", "2"); };
    ExpectFormatError(m, "tokenizer.ggml.eos_token_id");
  }
  {
    TokMeta m;
    m.extra = [](GgufWriter& w) { w.AddString("tokenizer.ggml.add_bos_token", "yes"); };
    ExpectFormatError(m, "tokenizer.ggml.add_bos_token");
  }
  {
    TokMeta m;
    m.model = "";
    ExpectFormatError(m, "tokenizer.ggml.model");
  }
  {
    TokMeta m;
    m.model = "";
    m.extra = [](GgufWriter& w) { w.AddUint32("tokenizer.ggml.model", 1); };
    ExpectFormatError(m, "tokenizer.ggml.model");
  }
}

TEST_CASE("FromGguf: other tokenizer families are Unimplemented", "[tokenizer][gguf]") {
  for (const char* model : {"bert", "t5", "rwkv"}) {
    TokMeta m;
    m.model = model;
    auto tok = Load(m);
    REQUIRE_FALSE(tok.ok());
    CHECK(tok.status().code() == absl::StatusCode::kUnimplemented);
    CHECK_FALSE(IsFormatError(tok.status()));
    CHECK_THAT(std::string(tok.status().message()), Catch::Contains(model));
  }
}

TEST_CASE("FromGguf: end-of-turn tokens are found by their text", "[tokenizer][gguf]") {
  GgufWriter w;
  w.AddString("tokenizer.ggml.model", "llama");
  w.AddStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "<|eot_id|>", "a"});
  w.AddInt32Array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1});
  const std::vector<uint8_t> bytes = w.Serialize();
  auto file = GgufFile::FromBuffer(bytes.data(), bytes.size());
  REQUIRE(file.ok());
  auto tok = Tokenizer::FromGguf(**file);
  REQUIRE(tok.ok());
  CHECK((*tok)->IsEog(3));
  CHECK((*tok)->Type(3) == TokenType::kControl);  // so it never prints
  CHECK((*tok)->TokenToPiece(3) == "");
}

TEST_CASE("FromGguf: the test suite's random llama model", "[tokenizer][gguf]") {
  testing::RandomModelSpec spec;
  const std::vector<uint8_t> bytes = testing::RandomLlamaModel(spec).Serialize();
  auto file = GgufFile::FromBuffer(bytes.data(), bytes.size());
  REQUIRE(file.ok());
  auto tok = Tokenizer::FromGguf(**file);
  REQUIRE(tok.ok());
  CHECK((*tok)->n_vocab() == spec.n_vocab);
  for (const std::string s : {"the cat and a dog", "中文 ok", "", "  x\n"}) {
    CHECK((*tok)->Decode((*tok)->Encode(s, EncodeOptions{})) == s);
  }
}

// ---------------------------------------------------------------------------
// The real stories260K vocabulary (512 pieces, byte fallback).

struct Stories {
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Tokenizer> tok;
  std::map<std::string, int32_t> ids;  // by text, to avoid hard-coded ids

  int32_t Id(const std::string& text) const {
    auto it = ids.find(text);
    REQUIRE(it != ids.end());
    return it->second;
  }
  int32_t Byte(int b) const {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    return Id(buf);
  }
};

// Loads stories260K once; nullptr (after a WARN) when ../shared is absent.
const Stories* LoadStories() {
  static std::unique_ptr<Stories> stories;
  static bool tried = false;
  if (!tried) {
    tried = true;
    const std::string path = testing::SharedModel("stories260K.gguf");
    if (path.empty()) return nullptr;
    auto file = GgufFile::Open(path);
    REQUIRE(file.ok());
    auto tok = Tokenizer::FromGguf(**file);
    REQUIRE(tok.ok());
    stories = std::make_unique<Stories>();
    stories->file = std::move(file).value();
    stories->tok = std::move(tok).value();
    for (int32_t i = 0; i < stories->tok->n_vocab(); ++i) {
      stories->ids[std::string(stories->tok->Text(i))] = i;
    }
  }
  if (!stories) WARN("skipped: stories260K.gguf not found");
  return stories.get();
}

TEST_CASE("stories260K: prompts encode exactly as llama.cpp did, generations decode",
          "[tokenizer][stories]") {
  const Stories* s = LoadStories();
  if (s == nullptr) return;
  const std::vector<std::string> files = testing::GoldenGenerationFiles();
  if (files.empty()) {
    WARN("skipped: no stories260K golden files");
    return;
  }
  for (const std::string& path : files) {
    testing::GoldenGeneration g;
    REQUIRE(testing::LoadGoldenGeneration(path, &g));
    INFO(path);
    CHECK(s->tok->Encode(g.prompt, EncodeOptions{}) == g.prompt_ids);
    CHECK(s->tok->Decode(g.prompt_ids) == g.prompt);
    // Generated tokens are a continuation: their leading space stays.
    CHECK(s->tok->Decode(g.generated_ids) == g.generated_text);
    std::string pieces;
    for (int32_t id : g.generated_ids) pieces += s->tok->TokenToPiece(id);
    CHECK(pieces == g.generated_text);
  }
}

TEST_CASE("stories260K: special ids, token types and pieces", "[tokenizer][stories]") {
  const Stories* s = LoadStories();
  if (s == nullptr) return;
  const Tokenizer& t = *s->tok;
  CHECK(t.n_vocab() == 512);
  CHECK(t.Text(t.bos()) == "<s>");
  CHECK(t.Text(t.eos()) == "</s>");
  CHECK(t.IsEog(t.eos()));
  CHECK_FALSE(t.IsEog(t.bos()));
  CHECK_FALSE(t.IsEog(s->Id("<unk>")));
  CHECK_FALSE(t.IsEog(-1));
  CHECK(t.Type(t.bos()) == TokenType::kControl);
  CHECK(t.Type(s->Id("<unk>")) == TokenType::kUnknown);
  CHECK(t.Type(s->Byte(0x0A)) == TokenType::kByte);
  CHECK(t.Type(s->Id(std::string(kSp) + "the")) == TokenType::kNormal);

  CHECK(t.TokenToPiece(s->Byte(0x0A)) == "\n");
  CHECK(t.TokenToPiece(s->Byte(0xE4)) == "\xE4");
  CHECK(t.TokenToPiece(s->Id(std::string(kSp) + "the")) == " the");
  CHECK(t.TokenToPiece(t.bos()) == "");
  CHECK(t.TokenToPiece(t.bos(), true) == "<s>");
  CHECK(t.TokenToPiece(t.eos(), true) == "</s>");
  CHECK(t.TokenToPiece(s->Id("<unk>")) == "");
  CHECK(t.TokenToPiece(s->Id("<unk>"), true) == "<unk>");
  for (int32_t bad : {-1, -100, 512, 1 << 30}) {
    CHECK(t.TokenToPiece(bad) == "");
    CHECK(t.TokenToPiece(bad, true) == "");
    CHECK(t.Text(bad).empty());
    CHECK(t.Type(bad) == TokenType::kUndefined);
    CHECK_FALSE(t.IsEog(bad));
  }
  CHECK(t.Decode({t.bos(), 99999, -1}) == "");
  CHECK(t.Encode("", EncodeOptions{}) == std::vector<int32_t>{t.bos()});
  CHECK(t.Encode("", kNoBos).empty());
}

TEST_CASE("stories260K: Chinese falls back to exactly its UTF-8 bytes", "[tokenizer][stories]") {
  const Stories* s = LoadStories();
  if (s == nullptr) return;
  const Tokenizer& t = *s->tok;
  // 中 = E4 B8 AD, 文 = E6 96 87; "▁" stays a piece of its own.
  const std::vector<int32_t> expected = {t.bos(),       s->Id(kSp),    s->Byte(0xE4),
                                         s->Byte(0xB8), s->Byte(0xAD), s->Byte(0xE6),
                                         s->Byte(0x96), s->Byte(0x87)};
  CHECK(t.Encode("中文", EncodeOptions{}) == expected);
  // An emoji: F0 9F 98 80.
  CHECK(t.Encode("\xF0\x9F\x98\x80", kNoBos) == std::vector<int32_t>{s->Id(kSp), s->Byte(0xF0),
                                                                     s->Byte(0x9F), s->Byte(0x98),
                                                                     s->Byte(0x80)});
  // Known pieces keep merging around bytes.
  const std::vector<int32_t> mixed = t.Encode("Lily 爱 the", kNoBos);
  CHECK(mixed.front() == s->Id(std::string(kSp) + "Lily"));
  CHECK(mixed.back() == s->Id(std::string(kSp) + "the"));
}

TEST_CASE("stories260K: odd text round-trips through Encode/Decode", "[tokenizer][stories]") {
  const Stories* s = LoadStories();
  if (s == nullptr) return;
  const Tokenizer& t = *s->tok;
  const std::vector<std::string> texts = {
      "",
      " ",
      "   ",
      "Once upon a time",
      " leading space",
      "   leading spaces",
      "trailing space ",
      "trailing spaces   ",
      "two  spaces   three",
      "\n",
      "\n\n\nlines\n\n",
      "\ttab\t\ttabs\t",
      "\r\nwindows\r\n",
      "mixed \t \n whitespace \n\t ",
      "\xC2\xA0non-breaking\xC2\xA0space",
      "中文测试，你好世界！",
      "日本語のテキスト、カタカナとひらがな。",
      "한국어 텍스트",
      "emoji 😀👍🏽 and family 👨‍👩‍👧‍👦 and flag 🇨🇳",
      "mixed 中文 English 日本語 😀 text\nwith lines",
      "Lily said, \"Let's play!\" 她笑了。",
      "café naïve résumé",
      std::string("nul\0byte", 8),
      "\x80\x81 invalid continuation bytes",
      "truncated \xE4\xB8",
      "lone lead \xE4 then ascii",
      "\xFF\xFE\xFD",
      "overlong \xC0\xAF and surrogate \xED\xA0\x80",
      "<s> and </s> and <unk> as plain text",
      "<0x41> looks like a byte token",
  };
  for (const std::string& text : texts) {
    INFO("text: '" << text << "'");
    const std::vector<int32_t> ids = t.Encode(text, EncodeOptions{});
    REQUIRE_FALSE(ids.empty());
    CHECK(ids.front() == t.bos());
    CHECK(t.Decode(ids) == text);
    for (int32_t id : ids) CHECK((id >= 0 && id < t.n_vocab()));
    // Without BOS the ids are those after BOS, and decode as a continuation.
    const std::vector<int32_t> no_bos = t.Encode(text, kNoBos);
    CHECK(no_bos == std::vector<int32_t>(ids.begin() + 1, ids.end()));
    if (!text.empty()) CHECK(t.Decode(no_bos) == " " + text);
  }
}

TEST_CASE("stories260K: parse_special turns <s> and </s> into their ids", "[tokenizer][stories]") {
  const Stories* s = LoadStories();
  if (s == nullptr) return;
  const Tokenizer& t = *s->tok;
  const std::string text = "The cat<s>The dog</s>";

  const std::vector<int32_t> plain = t.Encode(text, EncodeOptions{true, false});
  CHECK(std::count(plain.begin(), plain.end(), t.bos()) == 1);  // only the added BOS
  CHECK(std::count(plain.begin(), plain.end(), t.eos()) == 0);
  CHECK(t.Decode(plain) == text);

  const std::vector<int32_t> special = t.Encode(text, EncodeOptions{true, true});
  // BOS, "The cat", <s>, " The dog" (a space prefix follows a special token,
  // as in llama.cpp), </s>.
  std::vector<int32_t> expected = {t.bos()};
  for (int32_t id : t.Encode("The cat", kNoBos)) expected.push_back(id);
  expected.push_back(t.bos());
  for (int32_t id : t.Encode("The dog", kNoBos)) expected.push_back(id);
  expected.push_back(t.eos());
  CHECK(special == expected);
  CHECK(t.Decode(special) == "The cat The dog");
  CHECK(t.Decode(special, /*render_special=*/true) == "<s>The cat<s> The dog</s>");

  CHECK(t.Encode("<s>", EncodeOptions{false, true}) == std::vector<int32_t>{t.bos()});
  CHECK(t.Encode("<unk>", EncodeOptions{false, true}) == std::vector<int32_t>{s->Id("<unk>")});
  CHECK(t.Encode("<s", EncodeOptions{false, true}) == t.Encode("<s", kNoBos));
}

TEST_CASE("stories260K: merges match the naive reference on random strings",
          "[tokenizer][stories]") {
  const Stories* s = LoadStories();
  if (s == nullptr) return;
  const auto* spm = dynamic_cast<const SpmTokenizer*>(s->tok.get());
  REQUIRE(spm != nullptr);
  testing::ReferenceSpm ref(spm->vocab());

  // Building blocks: every normal piece with its "▁" as a space, plus bytes.
  std::vector<std::string> pieces;
  for (int32_t i = 0; i < spm->n_vocab(); ++i) {
    if (spm->Type(i) == TokenType::kNormal) pieces.push_back(spm->TokenToPiece(i));
  }
  REQUIRE(pieces.size() > 200);
  std::mt19937 rng(20240611);
  int compared = 0;
  for (int k = 0; k < 400; ++k) {
    std::string text;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      const int r = static_cast<int>(rng() % 10);
      if (r == 0) {
        text += static_cast<char>(rng() % 256);
      } else if (r == 1) {
        text += "中";
      } else {
        text += pieces[rng() % pieces.size()];
      }
    }
    INFO("text: '" << text << "'");
    CHECK(spm->Encode(text, kNoBos) == ref.Encode(text, /*space_prefix=*/true));
    CHECK(spm->Decode(spm->Encode(text, EncodeOptions{})) == text);
    ++compared;
  }
  CHECK(compared == 400);
}

TEST_CASE("stories260K: arbitrary bytes round-trip", "[tokenizer][stories]") {
  const Stories* s = LoadStories();
  if (s == nullptr) return;
  std::mt19937 rng(99);
  for (int k = 0; k < 300; ++k) {
    std::string text(rng() % 64, '\0');
    for (char& c : text) c = static_cast<char>(rng() % 256);
    INFO("case " << k);
    CHECK(s->tok->Decode(s->tok->Encode(text, EncodeOptions{})) == text);
    CHECK(s->tok->Decode(s->tok->Encode(text, EncodeOptions{true, true})).size() <= text.size());
  }
}

TEST_CASE("stories260K: one tokenizer encodes from several threads at once",
          "[tokenizer][stories]") {
  const Stories* s = LoadStories();
  if (s == nullptr) return;
  const std::vector<std::string> texts = {"Once upon a time", "中文 and emoji 😀",
                                          "  spaces\tand\nlines  ", "The cat<s>The dog"};
  std::vector<std::vector<int32_t>> expected;
  for (const auto& t : texts) expected.push_back(s->tok->Encode(t, EncodeOptions{true, true}));

  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int k = 0; k < 200; ++k) {
        const size_t i = (k + w) % texts.size();
        if (s->tok->Encode(texts[i], EncodeOptions{true, true}) != expected[i]) ++mismatches[w];
        if (s->tok->Decode(expected[i]).empty()) ++mismatches[w];
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(mismatches == std::vector<int>(4, 0));
}

}  // namespace
}  // namespace yuan

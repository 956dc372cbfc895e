// A small vocabulary for the grammar fuzz targets: the 256 single bytes,
// some multi-byte pieces (ASCII words, UTF-8 characters, JSON punctuation,
// a piece ending inside a character) and one EOG token.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/grammar/matcher.h"

namespace yuan::grammar {

inline std::shared_ptr<const TokenVocab> FuzzVocab() {
  static const std::shared_ptr<const TokenVocab> vocab = [] {
    std::vector<std::string> bytes;
    for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
    for (const char* piece : {"{\"", "\":", "\",\"", "\"}", " the", "ab", "abc", "123", "true",
                              "null", "中", "中文", "\xE4\xB8", "\xF0\x9F\x98\x80", "\\n", "\\u00",
                              "-0", "1.5e", "\n\n", "  "}) {
      bytes.push_back(piece);
    }
    bytes.push_back("");  // EOG
    const int32_t eog = static_cast<int32_t>(bytes.size()) - 1;
    return TokenVocab::FromBytes(std::move(bytes), {eog});
  }();
  return vocab;
}

// Runs a matcher for a while: at each step checks that MaskLogits and
// IsTokenAllowed agree, then accepts the allowed token chosen by `choice`.
template <typename Choose>
void FuzzWalk(const std::shared_ptr<const Grammar>& grammar, int steps, Choose choose) {
  const std::shared_ptr<const TokenVocab> vocab = FuzzVocab();
  GrammarMatcher m(grammar, vocab);
  const int32_t n = vocab->n_vocab();
  std::vector<float> logits(n);
  for (int step = 0; step < steps && !m.IsDone(); ++step) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    m.MaskLogits(logits.data(), n);
    std::vector<int32_t> allowed;
    for (int32_t t = 0; t < n; ++t) {
      const bool in_mask = logits[t] == 0.0f;
      if (in_mask != m.IsTokenAllowed(t)) __builtin_trap();
      if (in_mask) allowed.push_back(t);
    }
    if (allowed.empty()) break;
    const int32_t t = allowed[choose(step) % allowed.size()];
    if (!m.Accept(t).ok()) __builtin_trap();
  }
  (void)m.IsAccepting();
  m.Reset();
}

}  // namespace yuan::grammar

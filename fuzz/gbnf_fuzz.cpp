// libFuzzer target for the GBNF parser and the grammar matcher
// (runtime/grammar): any bytes must parse into a grammar or give an error,
// never crash or hang; a grammar that parses must match text without
// crashing, with MaskLogits and IsTokenAllowed agreeing on every token.
//   cmake --preset fuzz && cmake --build --preset fuzz --target gbnf_fuzz
//   ./build/fuzz/fuzz/gbnf_fuzz -dict=fuzz/gbnf.dict -max_total_time=60 fuzz/corpus/gbnf
// Input: GBNF text, then optionally a NUL and text to feed byte by byte.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/grammar_fuzz_vocab.h"
#include "runtime/grammar/grammar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace yuan::grammar;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view gbnf = input.substr(0, nul);
  const std::string_view text = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  auto grammar = ParseGbnf(gbnf);
  if (!grammar.ok()) return 0;
  // The given text, byte by byte.
  {
    GrammarMatcher m(*grammar, FuzzVocab());
    for (size_t i = 0; i < text.size() && i < 4096; ++i) {
      if (!m.AcceptBytes(text.substr(i, 1)).ok()) break;
      (void)m.IsAccepting();
      (void)m.IsDone();
    }
  }
  // Tokens chosen by the text's bytes.
  FuzzWalk(*grammar, 64, [&](int step) {
    return text.empty() ? 0u : static_cast<unsigned char>(text[static_cast<size_t>(step) % text.size()]);
  });
  return 0;
}

// libFuzzer target for tokenizer.json loading (runtime/tokenizer/
// tokenizer_json.cpp) and the tokenizers it builds: any byte string must
// load or give an error, and a loaded tokenizer must encode and decode text
// (including invalid UTF-8) without crashing.
//   cmake --preset fuzz && cmake --build --preset fuzz --target tokenizer_json_fuzz
//   ./build/fuzz/fuzz/tokenizer_json_fuzz -max_total_time=60 fuzz/corpus/tokenizer_json
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/model/gguf.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/tokenizer_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto parts = yuan::TokenizerJsonToGgufKvs(json, "");
  if (!parts.ok()) return 0;
  auto file = yuan::GgufFile::FromParts(std::move(*parts));
  if (!file.ok()) return 0;
  auto tok = yuan::Tokenizer::FromGguf(**file);
  if (!tok.ok()) return 0;
  static constexpr std::string_view kTexts[] = {
      "Hello world! 你好，世界 12345\n\t  <|eot|> <s>", "\xff\xfe\xc3 broken \xe4\xb8", ""};
  for (std::string_view text : kTexts) {
    for (bool special : {false, true}) {
      yuan::EncodeOptions o;
      o.parse_special = special;
      const std::vector<int32_t> ids = (*tok)->Encode(text, o);
      (void)(*tok)->Decode(ids, special);
    }
  }
  for (int32_t id = -1; id <= (*tok)->n_vocab(); ++id) (void)(*tok)->TokenToPiece(id, true);
  return 0;
}

// libFuzzer target for JSON Schema -> GBNF (runtime/grammar/json_schema.cpp,
// json_pattern.cpp): any bytes must give a grammar or an error, never crash;
// a grammar it gives must parse (or be refused only for left recursion
// through $ref, or its size), and a matcher over it must run.
//   cmake --preset fuzz && cmake --build --preset fuzz --target json_schema_fuzz
//   ./build/fuzz/fuzz/json_schema_fuzz -dict=fuzz/json_schema.dict -max_total_time=60 fuzz/corpus/json_schema
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/grammar_fuzz_vocab.h"
#include "runtime/grammar/grammar.h"
#include "runtime/grammar/json_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace yuan::grammar;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto gbnf = JsonSchemaToGbnf(input);
  if (!gbnf.ok()) return 0;
  auto grammar = ParseGbnf(*gbnf);
  if (!grammar.ok()) {
    const std::string why(grammar.status().message());
    if (why.find("left recursion") == std::string::npos &&
        why.find("too large") == std::string::npos) {
      __builtin_trap();  // the converter wrote a grammar the parser rejects
    }
    return 0;
  }
  FuzzWalk(*grammar, 48, [&](int step) { return static_cast<unsigned>(step * 7 + size); });
  return 0;
}

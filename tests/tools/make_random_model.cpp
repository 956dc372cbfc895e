// make_random_model OUT.gguf [weight_type]: writes a small random-weight
// llama model with a SentencePiece vocabulary, for tests that cannot build
// one themselves (the C API test is plain C).
#include <cstdio>
#include <string>

#include "tests/common/test_support.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_random_model OUT.gguf [f32|f16|q8_0|q4_0]\n");
    return 2;
  }
  yuan::testing::RandomModelSpec spec;
  const std::string type = argc > 2 ? argv[2] : "f32";
  if (type == "f16") spec.weight_type = yuan::DType::kF16;
  else if (type == "q8_0") spec.weight_type = yuan::DType::kQ8_0;
  else if (type == "q4_0") spec.weight_type = yuan::DType::kQ4_0;
  auto status = yuan::testing::RandomLlamaModel(spec).WriteFile(argv[1]);
  if (!status.ok()) {
    std::fprintf(stderr, "make_random_model: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}

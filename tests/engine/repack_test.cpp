// The engine's load-time repacking of Q8_0/Q4_0/Q5_0/Q4_1/Q5_1 matrices (interleaved
// by 8 rows, token embeddings tied to the head too: their rows looked up
// from the bands) and its copy of everything else a token reads into the
// same arena compute what the mapped file computes.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "runtime/cpu/kernels.h"
#include "runtime/engine/engine.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

std::vector<float> PromptLogits(const std::string& path, bool repack, bool tied,
                                const std::vector<int32_t>& prompt) {
  EngineOptions o;
  o.model_path = path;
  o.n_threads = 2;
  o.repack_weights = repack;
  auto engine = Engine::Open(o);
  REQUIRE(engine.ok());
  const ModelWeights& W = (*engine)->model().weights();
  CHECK(W.layers[0].wq.interleaved8 == repack);
  CHECK(W.tied_output == tied);
  // The token embeddings move into the arena as they are (rows read by
  // index); tied to the head, interleaved like it where its type can be,
  // and the head reads the same copy.
  const auto* arena = (*engine)->weight_arena();
  auto in_arena = [&](const void* p) {
    const auto* b = static_cast<const uint8_t*>(p);
    return arena != nullptr && b >= arena && b < arena + (*engine)->weight_arena_bytes();
  };
  const bool head_interleaved = repack && kernels::CanInterleave8(W.output.type, W.output.rows);
  CHECK(in_arena(W.tok_embd.data) == repack);
  CHECK(in_arena(W.output.data) == repack);
  CHECK(W.tok_embd.interleaved8 == (tied && head_interleaved));
  CHECK(W.output.interleaved8 == head_interleaved);
  CHECK((W.output.data == W.tok_embd.data) == tied);
  auto session = std::move(*Session::Create(*engine, 0));
  REQUIRE(session->Decode(prompt).ok());
  std::vector<float> out = session->logits();
  // then a few single-token steps: decoding uses the other kernel
  for (int32_t tok : {5, 17, 42}) {
    REQUIRE(session->Decode({tok}).ok());
    out.insert(out.end(), session->logits().begin(), session->logits().end());
  }
  return out;
}

TEST_CASE("repacked Q8_0/Q4_0/Q5_0/Q4_1/Q5_1 weights give the mapped file's logits", "[engine]") {
  // 304 tokens: a head of whole 8-row bands, interleaved; 300: not
  for (int n_vocab : {300, 304}) {
    for (bool tied : {false, true}) {
      for (DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ5_0, DType::kQ4_1, DType::kQ5_1}) {
        INFO(DTypeName(type) << (tied ? ", output tied to the embeddings" : "") << ", vocab "
                             << n_vocab);
        testing::RandomModelSpec spec;
        spec.n_vocab = n_vocab;
        spec.weight_type = type;
        spec.stddev = 0.1f;
        spec.tied_output = tied;
        const std::string path = testing::WriteRandomLlamaModel(
            spec, std::string("repack-") + std::string(DTypeName(type)) + (tied ? "-tied-" : "-") +
                      std::to_string(n_vocab) + ".gguf");
        const std::vector<int32_t> prompt = {1, 7, 9, 11, 13, 200, 31, 3, 8};
        const std::vector<float> plain = PromptLogits(path, false, tied, prompt);
        const std::vector<float> packed = PromptLogits(path, true, tied, prompt);
        REQUIRE(plain.size() == packed.size());
        float max_abs = 0.0f, max_diff = 0.0f;
        for (size_t i = 0; i < plain.size(); ++i) {
          max_abs = std::max(max_abs, std::fabs(plain[i]));
          max_diff = std::max(max_diff, std::fabs(plain[i] - packed[i]));
        }
        INFO("max |logit| " << max_abs << ", max difference " << max_diff);
        CHECK(max_abs > 0.1f);
        // the same integer block sums, scaled and summed in another order
        CHECK(max_diff <= 1e-4f * max_abs);
        // Q4_1/Q5_1 bands keep the row-major kernels' order: the same bits
        if (type == DType::kQ4_1 || type == DType::kQ5_1) CHECK(plain == packed);
      }
    }
  }
}

}  // namespace
}  // namespace yuan

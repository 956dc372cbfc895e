// The sampler chain: turns one step's logits into the next token.
//
// Order (llama.cpp's default chain): logit bias -> repetition / presence /
// frequency penalties -> top-k -> top-p -> min-p -> temperature -> draw.
// temperature <= 0 is greedy (argmax after penalties, ties -> lowest id).
// The draw uses its own seeded generator (std::mt19937_64 with a fixed
// uniform-from-bits conversion), so the same seed and logits give the same
// token on any machine and thread count.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <utility>
#include <vector>

namespace yuan {

struct SamplingParams {
  float temperature = 0.8f;
  int32_t top_k = 40;           // <= 0: disabled
  float top_p = 0.95f;          // >= 1: disabled
  float min_p = 0.05f;          // <= 0: disabled
  float repeat_penalty = 1.0f;  // 1: disabled (llama.cpp's CTRL-style penalty)
  int32_t repeat_last_n = 64;   // window of recent tokens the penalties look at
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logit before anything else
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Picks the next token from `logits` (n_vocab values; modified in place).
  int32_t Sample(float* logits, int32_t n_vocab);

  // Records a token that entered the context (prompt or generated) for the
  // penalties' window.
  void Accept(int32_t token);
  void Reset();

  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  std::vector<std::pair<float, int32_t>> candidates_;  // scratch, reused per step
};

}  // namespace yuan

// The sampler chain: turns one step's logits into the next token.
//
// With a grammar (SamplingParams::grammar; runtime/grammar) every token is
// one that keeps the output a valid prefix of the grammar, as llama.cpp
// does it: sample from the unconstrained logits, keep the token when the
// grammar allows it (one cheap check), else mask every disallowed token and
// sample again. Both ways pick a token with the masked distribution's
// probability p(t) / P(allowed), so the check only saves time.
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
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace yuan {

namespace grammar {
class Grammar;
class TokenVocab;
class GrammarMatcher;
}  // namespace grammar

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
  // Output constrained to this grammar (GBNF, or a JSON Schema compiled to
  // one); null: free text.
  std::shared_ptr<const grammar::Grammar> grammar;
  // What `grammar` was compiled from, for backends that send it on (the
  // remote client): a GBNF grammar, or a JSON Schema's JSON text.
  std::string grammar_text;
  bool grammar_is_json_schema = false;
};

class Sampler {
 public:
  // `vocab`: the model's grammar vocabulary (Engine::grammar_vocab()),
  // needed when params.grammar is set.
  explicit Sampler(const SamplingParams& params,
                   std::shared_ptr<const grammar::TokenVocab> vocab = nullptr);
  ~Sampler();

  // Picks the next token from `logits` (n_vocab values; modified in place).
  // With a grammar the token is one it allows, and the grammar moves past
  // it; kNoToken when the grammar allows no token of the vocabulary (or no
  // vocabulary was given): the caller ends the generation with an error.
  int32_t Sample(float* logits, int32_t n_vocab);
  static constexpr int32_t kNoToken = -1;

  // With a grammar: the output is complete and nothing may follow it (or an
  // end-of-generation token was accepted), so generation must stop.
  bool GrammarDone() const;

  // Records a token that entered the context (prompt or generated) for the
  // penalties' window.
  void Accept(int32_t token);
  void Reset();

  const SamplingParams& params() const { return params_; }

 private:
  int32_t SampleFree(float* logits, int32_t n_vocab);  // the chain without the grammar

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  std::vector<std::pair<float, int32_t>> candidates_;  // scratch, reused per step
  std::unique_ptr<grammar::GrammarMatcher> matcher_;    // with a grammar
  std::vector<float> original_;                         // the logits before the first try
};

}  // namespace yuan

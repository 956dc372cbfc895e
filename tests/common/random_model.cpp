// Small random-weight models for tests and tools (no Catch2 dependency, so
// command-line tools can link it too).
#include <cstdio>
#include <random>

#include "tests/common/test_support.h"

namespace yuan::testing {

RandomModelSpec SlowModelSpec() {
  RandomModelSpec spec;
  spec.n_embd = 256;
  spec.n_ff = 512;
  spec.n_layer = 4;
  spec.n_head = 8;
  spec.n_head_kv = 4;
  spec.n_ctx = 4096;
  return spec;
}

GgufWriter RandomLlamaModel(const RandomModelSpec& s) {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddString("general.name", "random-llama");
  w.AddUint32("llama.context_length", s.n_ctx);
  w.AddUint32("llama.embedding_length", s.n_embd);
  w.AddUint32("llama.block_count", s.n_layer);
  w.AddUint32("llama.feed_forward_length", s.n_ff);
  w.AddUint32("llama.attention.head_count", s.n_head);
  w.AddUint32("llama.attention.head_count_kv", s.n_head_kv);
  w.AddUint32("llama.rope.dimension_count", s.n_embd / s.n_head);
  w.AddFloat32("llama.rope.freq_base", s.rope_base);
  w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);

  // Vocabulary: <unk> <s> </s>, the 256 byte tokens, then word pieces.
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
    scores.push_back(0);
    types.push_back(6);
  }
  const char* pieces[] = {"\xE2\x96\x81", "e", "t", "a", "o", "n", "\xE2\x96\x81t", "he",
                          "\xE2\x96\x81the", "\xE2\x96\x81" "a", "in", "an", "\xE2\x96\x81" "and"};
  int k = 0;
  while (static_cast<int>(tokens.size()) < s.n_vocab) {
    std::string piece = k < 13 ? pieces[k] : "\xE2\x96\x81w" + std::to_string(k);
    tokens.push_back(piece);
    scores.push_back(-static_cast<float>(k));
    types.push_back(1);
    ++k;
  }
  w.AddString("tokenizer.ggml.model", "llama");
  w.AddStringArray("tokenizer.ggml.tokens", tokens);
  w.AddFloat32Array("tokenizer.ggml.scores", scores);
  w.AddInt32Array("tokenizer.ggml.token_type", types);
  w.AddUint32("tokenizer.ggml.bos_token_id", 1);
  w.AddUint32("tokenizer.ggml.eos_token_id", 2);
  w.AddUint32("tokenizer.ggml.unknown_token_id", 0);

  std::mt19937_64 rng(s.seed);
  std::normal_distribution<float> normal(0.0f, s.stddev);
  auto add = [&](const std::string& name, DType type, std::vector<int64_t> ne, float mean = 0) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    std::vector<float> v(n);
    for (auto& x : v) x = mean + normal(rng);
    w.AddTensorF32(name, type, std::move(ne), v.data());
  };
  const int hd = s.n_embd / s.n_head;
  add("token_embd.weight", s.weight_type, {s.n_embd, s.n_vocab});
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", DType::kF32, {s.n_embd}, 1.0f);
    add(p + "attn_q.weight", s.weight_type, {s.n_embd, s.n_head * hd});
    add(p + "attn_k.weight", s.weight_type, {s.n_embd, s.n_head_kv * hd});
    add(p + "attn_v.weight", s.weight_type, {s.n_embd, s.n_head_kv * hd});
    add(p + "attn_output.weight", s.weight_type, {s.n_head * hd, s.n_embd});
    add(p + "ffn_norm.weight", DType::kF32, {s.n_embd}, 1.0f);
    add(p + "ffn_gate.weight", s.weight_type, {s.n_embd, s.n_ff});
    add(p + "ffn_up.weight", s.weight_type, {s.n_embd, s.n_ff});
    add(p + "ffn_down.weight", s.weight_type, {s.n_ff, s.n_embd});
  }
  add("output_norm.weight", DType::kF32, {s.n_embd}, 1.0f);
  add("output.weight", s.weight_type, {s.n_embd, s.n_vocab});
  return w;
}

}  // namespace yuan::testing

// Small random-weight models for tests and tools (no Catch2 dependency, so
// command-line tools can link it too).
#include <cmath>
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

std::vector<float> Llama3RopeFreqFactors(const RandomModelSpec& s, int n_rot) {
  // llama.cpp's convert_hf_to_gguf.py (LlamaModel, rope_type "llama3"):
  // high-frequency pairs keep their frequency, low-frequency ones are
  // divided by `factor`, and the band between is interpolated smoothly.
  const double pi = 3.14159265358979323846;
  const double old_ctx = s.llama3_original_context;
  const double low_wavelen = old_ctx / s.llama3_low_freq_factor;
  const double high_wavelen = old_ctx / s.llama3_high_freq_factor;
  std::vector<float> factors;
  for (int i = 0; i < n_rot / 2; ++i) {
    const double freq = 1.0 / std::pow(static_cast<double>(s.rope_base), 2.0 * i / n_rot);
    const double wavelen = 2 * pi / freq;
    double f;
    if (wavelen < high_wavelen) {
      f = 1.0;
    } else if (wavelen > low_wavelen) {
      f = s.llama3_factor;
    } else {
      const double smooth = (old_ctx / wavelen - s.llama3_low_freq_factor) /
                            (s.llama3_high_freq_factor - s.llama3_low_freq_factor);
      f = 1.0 / ((1.0 - smooth) / s.llama3_factor + smooth);
    }
    factors.push_back(static_cast<float>(f));
  }
  return factors;
}

void AddRandomModelMetadata(const RandomModelSpec& s, GgufWriter* w) {
  const std::string a = s.arch;
  const int hd = s.head_dim > 0 ? s.head_dim : s.n_embd / s.n_head;
  w->AddString("general.architecture", a);
  w->AddString("general.name", "random-" + a);
  w->AddUint32(a + ".context_length", s.n_ctx);
  w->AddUint32(a + ".embedding_length", s.n_embd);
  w->AddUint32(a + ".block_count", s.n_layer);
  w->AddUint32(a + ".feed_forward_length", s.n_ff);
  w->AddUint32(a + ".attention.head_count", s.n_head);
  w->AddUint32(a + ".attention.head_count_kv", s.n_head_kv);
  if (s.head_dim > 0) {
    w->AddUint32(a + ".attention.key_length", hd);
    w->AddUint32(a + ".attention.value_length", hd);
  }
  w->AddUint32(a + ".rope.dimension_count", hd);
  w->AddFloat32(a + ".rope.freq_base", s.rope_base);
  if (s.ntk_alpha > 0) w->AddFloat32(a + ".rope.scaling.alpha", s.ntk_alpha);
  w->AddFloat32(a + ".attention.layer_norm_rms_epsilon", s.rms_eps);

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
  w->AddString("tokenizer.ggml.model", "llama");
  w->AddStringArray("tokenizer.ggml.tokens", tokens);
  w->AddFloat32Array("tokenizer.ggml.scores", scores);
  w->AddInt32Array("tokenizer.ggml.token_type", types);
  w->AddUint32("tokenizer.ggml.bos_token_id", 1);
  w->AddUint32("tokenizer.ggml.eos_token_id", 2);
  w->AddUint32("tokenizer.ggml.unknown_token_id", 0);
}

std::vector<RandomTensor> RandomModelTensors(const RandomModelSpec& s) {
  const std::string& a = s.arch;
  const int hd = s.head_dim > 0 ? s.head_dim : s.n_embd / s.n_head;
  std::vector<RandomTensor> out;
  auto add = [&](std::string name, DType type, std::vector<int64_t> ne, float mean = 0) {
    out.push_back(RandomTensor{std::move(name), type, std::move(ne), mean, {}});
  };
  const bool qkv_bias = a == "qwen2";
  const bool qk_norm = a == "qwen3" || a == "hunyuan-dense";
  add("token_embd.weight", s.weight_type, {s.n_embd, s.n_vocab});
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", DType::kF32, {s.n_embd}, 1.0f);
    add(p + "attn_q.weight", s.weight_type, {s.n_embd, s.n_head * hd});
    add(p + "attn_k.weight", s.weight_type, {s.n_embd, s.n_head_kv * hd});
    add(p + "attn_v.weight", s.weight_type, {s.n_embd, s.n_head_kv * hd});
    if (qkv_bias) {
      add(p + "attn_q.bias", DType::kF32, {s.n_head * hd});
      add(p + "attn_k.bias", DType::kF32, {s.n_head_kv * hd});
      add(p + "attn_v.bias", DType::kF32, {s.n_head_kv * hd});
    }
    if (qk_norm) {
      add(p + "attn_q_norm.weight", DType::kF32, {hd}, 1.0f);
      add(p + "attn_k_norm.weight", DType::kF32, {hd}, 1.0f);
    }
    add(p + "attn_output.weight", s.weight_type, {s.n_head * hd, s.n_embd});
    add(p + "ffn_norm.weight", DType::kF32, {s.n_embd}, 1.0f);
    add(p + "ffn_gate.weight", s.weight_type, {s.n_embd, s.n_ff});
    add(p + "ffn_up.weight", s.weight_type, {s.n_embd, s.n_ff});
    add(p + "ffn_down.weight", s.weight_type, {s.n_ff, s.n_embd});
  }
  add("output_norm.weight", DType::kF32, {s.n_embd}, 1.0f);
  if (!s.tied_output) add("output.weight", s.weight_type, {s.n_embd, s.n_vocab});
  if (s.llama3_factor > 0) {
    std::vector<float> factors = Llama3RopeFreqFactors(s, hd);
    const int64_t n = static_cast<int64_t>(factors.size());
    out.push_back(RandomTensor{"rope_freqs.weight", DType::kF32, {n}, 0, std::move(factors)});
  }
  return out;
}

GgufWriter RandomLlamaModel(const RandomModelSpec& s) {
  GgufWriter w;
  AddRandomModelMetadata(s, &w);
  std::mt19937_64 rng(s.seed);
  std::normal_distribution<float> normal(0.0f, s.stddev);
  for (const RandomTensor& t : RandomModelTensors(s)) {
    if (!t.values.empty()) {
      w.AddTensorF32(t.name, t.type, t.ne, t.values.data());
      continue;
    }
    int64_t n = 1;
    for (int64_t d : t.ne) n *= d;
    std::vector<float> v(n);
    for (auto& x : v) x = t.mean + normal(rng);
    w.AddTensorF32(t.name, t.type, t.ne, v.data());
  }
  return w;
}

}  // namespace yuan::testing

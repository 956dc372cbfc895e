// A Hugging Face folder and the GGUF file llama.cpp's converter would make
// from it are the same model: same logits from the forward pass. The folder
// is written from a random GGUF llama by undoing the converter's q/k
// permutation (HF keeps rotate-half order; the loader marks such folders
// yuan.rope.neox instead of permuting), so this checks the tensor mapping,
// the config translation and the NeoX RoPE path together.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "runtime/core/thread_pool.h"
#include "runtime/engine/forward.h"
#include "runtime/model/hf_folder.h"
#include "runtime/model/safetensors_writer.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

// Rows of a q/k projection in HF order from GGUF order: llama.cpp permutes
// HF row (h, j, i) -> GGUF row (h, i, j) for j in {0,1}, i < hd/2.
std::vector<float> UnpermuteRows(const float* gguf, int n_head, int hd, int cols) {
  std::vector<float> hf(static_cast<size_t>(n_head) * hd * cols);
  for (int h = 0; h < n_head; ++h) {
    for (int j = 0; j < 2; ++j) {
      for (int i = 0; i < hd / 2; ++i) {
        const float* src = gguf + static_cast<size_t>(h * hd + 2 * i + j) * cols;
        std::copy_n(src, cols, &hf[static_cast<size_t>(h * hd + j * (hd / 2) + i) * cols]);
      }
    }
  }
  return hf;
}

std::vector<float> Logits(const Model& model, const std::vector<int32_t>& tokens) {
  auto cache = KvCache::Create(model.config(), 64, DType::kF32);
  REQUIRE(cache.ok());
  ThreadPool pool(2);
  ForwardScratch scratch;
  ForwardArgs args;
  args.tokens = tokens.data();
  args.n_tokens = static_cast<int64_t>(tokens.size());
  args.all_logits = true;
  std::vector<float> logits;
  REQUIRE(Forward(model, args, &*cache, &scratch, &pool, &logits).ok());
  return logits;
}

TEST_CASE("an HF llama folder computes what its GGUF conversion computes", "[hf][model]") {
  testing::RandomModelSpec spec;  // llama, f32, n_head 4, n_head_kv 2
  spec.stddev = 0.2f;             // sharp enough that a wrong RoPE shows
  const std::string gguf_path = testing::WriteRandomLlamaModel(spec, "hf-equiv.gguf");
  auto gguf_model = Model::Open(gguf_path);
  REQUIRE(gguf_model.ok());
  const GgufFile& g = (*gguf_model)->gguf();
  const ModelConfig& c = (*gguf_model)->config();

  const std::string dir = testing::TempDir() + "/hf-equiv";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << R"({"model_type": "llama", "architectures": ["LlamaForCausalLM"],
    "hidden_size": )" << c.n_embd << R"(, "intermediate_size": )" << c.n_ff
                                      << R"(, "num_hidden_layers": )" << c.n_layer
                                      << R"(, "num_attention_heads": )" << c.n_head
                                      << R"(, "num_key_value_heads": )" << c.n_head_kv
                                      << R"(, "vocab_size": )" << c.n_vocab
                                      << R"(, "max_position_embeddings": )" << c.n_ctx_train
                                      << R"(, "rms_norm_eps": 1e-05, "rope_theta": )" << c.rope_freq_base
                                      << R"(, "tie_word_embeddings": false, "torch_dtype": "float32"})";
  SafetensorsWriter w;
  auto add = [&](const std::string& gguf_name, const std::string& hf_name, int permute_heads) {
    const GgufTensor* t = g.FindTensor(gguf_name);
    REQUIRE(t != nullptr);
    const float* data = reinterpret_cast<const float*>(t->data);
    std::vector<int64_t> shape = t->n_dims == 1 ? std::vector<int64_t>{t->ne[0]}
                                                : std::vector<int64_t>{t->ne[1], t->ne[0]};
    if (permute_heads > 0) {
      auto rows = UnpermuteRows(data, permute_heads, c.head_dim, static_cast<int>(t->ne[0]));
      w.AddTensorF32(hf_name, DType::kF32, shape, rows.data());
    } else {
      w.AddTensorF32(hf_name, DType::kF32, shape, data);
    }
  };
  add("token_embd.weight", "model.embed_tokens.weight", 0);
  add("output_norm.weight", "model.norm.weight", 0);
  add("output.weight", "lm_head.weight", 0);
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", h + "input_layernorm.weight", 0);
    add(b + "attn_q.weight", h + "self_attn.q_proj.weight", c.n_head);
    add(b + "attn_k.weight", h + "self_attn.k_proj.weight", c.n_head_kv);
    add(b + "attn_v.weight", h + "self_attn.v_proj.weight", 0);
    add(b + "attn_output.weight", h + "self_attn.o_proj.weight", 0);
    add(b + "ffn_norm.weight", h + "post_attention_layernorm.weight", 0);
    add(b + "ffn_gate.weight", h + "mlp.gate_proj.weight", 0);
    add(b + "ffn_up.weight", h + "mlp.up_proj.weight", 0);
    add(b + "ffn_down.weight", h + "mlp.down_proj.weight", 0);
  }
  REQUIRE(w.WriteFile(dir + "/model.safetensors").ok());

  auto folder = OpenHfFolder(dir);
  REQUIRE(folder.ok());
  auto hf_model = Model::FromGguf(std::shared_ptr<const GgufFile>(std::move(*folder)));
  INFO((hf_model.ok() ? "" : std::string(hf_model.status().message())));
  REQUIRE(hf_model.ok());
  CHECK((*hf_model)->config().rope_style == RopeStyle::kNeox);

  const std::vector<int32_t> tokens = {1, 17, 260, 45, 299, 3, 101, 102, 7, 250};
  const std::vector<float> a = Logits(**gguf_model, tokens);
  const std::vector<float> b = Logits(**hf_model, tokens);
  REQUIRE(a.size() == b.size());
  double max_err = 0;
  for (size_t i = 0; i < a.size(); ++i) max_err = std::max(max_err, std::fabs(double(a[i]) - b[i]));
  INFO("max |logit difference| = " << max_err);
  CHECK(max_err < 1e-4);
}

}  // namespace
}  // namespace yuan

// The qwen3 architecture (dense Qwen3): the llama block without biases, plus
// a per-head RMSNorm on q and on k (blk.N.attn_{q,k}_norm.weight, head_dim
// gains shared by all heads) applied BEFORE RoPE, RoPE in the NEOX layout,
// and a head size that may differ from n_embd / n_head
// (qwen3.attention.key_length; e.g. Qwen3-0.6B: 1024 / 16 heads but 128).
// Sources: HF transformers modeling_qwen3.py (Qwen3Attention: q_norm(q_proj
// (x)) then apply_rotary_pos_emb) and llama.cpp's LLM_ARCH_QWEN3.
#include "runtime/core/status.h"
#include "runtime/model/model.h"

namespace yuan {
namespace {

absl::Status LoadQwen3Config(const GgufFile& f, ModelConfig* c) {
  YUAN_RETURN_IF_ERROR(LoadDecoderConfig(f, "qwen3", c));
  c->rope_style = RopeStyle::kNeox;
  c->qk_norm_after_rope = false;
  return absl::OkStatus();
}

absl::Status BindQwen3Weights(const GgufFile& f, const ModelConfig& c, ModelWeights* w) {
  DecoderTensors t;
  t.qk_norm = true;
  return BindDecoderWeights(f, c, t, w);
}

}  // namespace

extern const ArchInfo kQwen3Arch = {"qwen3", &LoadQwen3Config, &BindQwen3Weights};

}  // namespace yuan

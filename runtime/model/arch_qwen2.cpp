// The qwen2 architecture (Qwen2, Qwen2.5): the llama block with biases on
// the q, k and v projections (blk.N.attn_{q,k,v}.bias), RoPE in the NEOX
// layout (HF rotate_half; llama.cpp's converter does not permute q/k for
// it), and an output head tied to token_embd when output.weight is absent.
// Sources: HF transformers modeling_qwen2.py (Qwen2Attention: q/k/v_proj
// bias=True, o_proj bias=False) and llama.cpp's LLM_ARCH_QWEN2 (NEOX rope).
#include "runtime/core/status.h"
#include "runtime/model/model.h"

namespace yuan {
namespace {

absl::Status LoadQwen2Config(const GgufFile& f, ModelConfig* c) {
  YUAN_RETURN_IF_ERROR(LoadDecoderConfig(f, "qwen2", c));
  c->rope_style = RopeStyle::kNeox;
  return absl::OkStatus();
}

absl::Status BindQwen2Weights(const GgufFile& f, const ModelConfig& c, ModelWeights* w) {
  DecoderTensors t;
  t.qkv_bias = true;
  return BindDecoderWeights(f, c, t, w);
}

}  // namespace

extern const ArchInfo kQwen2Arch = {"qwen2", &LoadQwen2Config, &BindQwen2Weights};

}  // namespace yuan

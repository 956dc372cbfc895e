// The hunyuan-dense architecture (Hunyuan dense 0.5B-7B, Hunyuan-MT): the
// llama block without biases, RoPE in the NEOX layout, and a per-head
// RMSNorm on q and on k (blk.N.attn_{q,k}_norm.weight, head_dim gains)
// applied AFTER RoPE. The output head is tied to token_embd when
// output.weight is absent.
//
// NTK-alpha rope: the published model uses base' = rope_theta *
// alpha^(d / (d - 2)) with d = head_dim. llama.cpp's converter folds this
// into hunyuan-dense.rope.freq_base and writes no alpha key; llama.cpp's
// loader also honours hunyuan-dense.rope.scaling.alpha when a file carries
// it (> 0), multiplying the base in f32 as powf(alpha, d / (d - 2)). We do
// both: a converted file is used as is, and a file with the key is rescaled.
//
// Sources: HF transformers modeling_hunyuan_v1_dense.py (query_layernorm /
// key_layernorm after apply_rotary_pos_emb; DynamicNTKAlpha base), llama.cpp
// src/models/hunyuan-dense.cpp (ggml_rope_ext, then build_norm on Kcur and
// Qcur; kq_scale 1/sqrt(head_dim)) and its converter's HunYuanModel.
#include <cmath>

#include "runtime/core/status.h"
#include "runtime/model/model.h"

namespace yuan {
namespace {

constexpr std::string_view kArch = "hunyuan-dense";

absl::Status LoadHunyuanConfig(const GgufFile& f, ModelConfig* c) {
  YUAN_RETURN_IF_ERROR(LoadDecoderConfig(f, kArch, c));
  c->rope_style = RopeStyle::kNeox;
  c->qk_norm_after_rope = true;
  YUAN_ASSIGN_OR_RETURN(double alpha, f.GetFloat("hunyuan-dense.rope.scaling.alpha", 0.0));
  if (!std::isfinite(alpha)) return FormatError("'hunyuan-dense.rope.scaling.alpha' is not finite");
  if (alpha > 0.0) {
    if (c->head_dim <= 2) {
      return FormatError("'hunyuan-dense.rope.scaling.alpha' needs a head size above 2");
    }
    const float d = static_cast<float>(c->head_dim);
    const float base = c->rope_freq_base * std::pow(static_cast<float>(alpha), d / (d - 2.0f));
    if (!(base > 0.0f) || !std::isfinite(base)) {
      return FormatError("'hunyuan-dense.rope.scaling.alpha' makes the rope base overflow");
    }
    c->rope_freq_base = base;
  }
  return absl::OkStatus();
}

absl::Status BindHunyuanWeights(const GgufFile& f, const ModelConfig& c, ModelWeights* w) {
  DecoderTensors t;
  t.qk_norm = true;
  return BindDecoderWeights(f, c, t, w);
}

}  // namespace

extern const ArchInfo kHunyuanDenseArch = {"hunyuan-dense", &LoadHunyuanConfig,
                                           &BindHunyuanWeights};

}  // namespace yuan

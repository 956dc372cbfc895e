// The llama architecture (Llama 1/2/3, TinyLlama, stories*, Mistral without
// sliding window): pre-RMSNorm, RoPE on adjacent pairs (GGUF converters
// permute q/k so that this matches HF's rotate_half), grouped-query
// attention, SwiGLU feed-forward, optional tied output head.
//
// Llama 3.x rope scaling (rope_type "llama3") arrives as llama.cpp's
// converter writes it: the per-pair frequency divisors in the tensor
// rope_freqs.weight, which LoadDecoderConfig reads for every architecture
// (a rope.scaling.type of "llama3", as the HF folder loader writes, then
// requires that tensor).
#include "runtime/core/status.h"
#include "runtime/model/model.h"

namespace yuan {
namespace {

absl::Status LoadLlamaConfig(const GgufFile& f, ModelConfig* c) {
  YUAN_RETURN_IF_ERROR(LoadDecoderConfig(f, "llama", c));
  // A llama read from a Hugging Face folder keeps q/k in HF's rotate-half
  // row order (nothing permutes them) and says so (runtime/model/hf_folder.h).
  YUAN_ASSIGN_OR_RETURN(bool neox, f.GetBool("yuan.rope.neox", false));
  c->rope_style = neox ? RopeStyle::kNeox : RopeStyle::kNormal;
  return absl::OkStatus();
}

absl::Status BindLlamaWeights(const GgufFile& f, const ModelConfig& c, ModelWeights* w) {
  return BindDecoderWeights(f, c, DecoderTensors{}, w);
}

}  // namespace

extern const ArchInfo kLlamaArch = {"llama", &LoadLlamaConfig, &BindLlamaWeights};

}  // namespace yuan

// The llama architecture (Llama 1/2/3, TinyLlama, stories*, Mistral without
// sliding window): pre-RMSNorm, RoPE on adjacent pairs (GGUF converters
// permute q/k so that this matches HF's rotate_half), grouped-query
// attention, SwiGLU feed-forward, optional tied output head.
#include "runtime/core/status.h"
#include "runtime/model/model.h"

namespace yuan {
namespace {

absl::Status LoadLlamaConfig(const GgufFile& f, ModelConfig* c) {
  const std::string_view a = "llama";
  YUAN_ASSIGN_OR_RETURN(c->n_embd, ArchInt(f, a, "embedding_length"));
  YUAN_ASSIGN_OR_RETURN(c->n_layer, ArchInt(f, a, "block_count"));
  YUAN_ASSIGN_OR_RETURN(c->n_ff, ArchInt(f, a, "feed_forward_length"));
  YUAN_ASSIGN_OR_RETURN(c->n_head, ArchInt(f, a, "attention.head_count"));
  YUAN_ASSIGN_OR_RETURN(c->n_head_kv, ArchInt(f, a, "attention.head_count_kv", c->n_head));
  YUAN_ASSIGN_OR_RETURN(c->n_ctx_train, ArchInt(f, a, "context_length", 2048));
  if (c->n_embd % c->n_head != 0) {
    return FormatError(absl::StrFormat("embedding_length %d is not a multiple of head_count %d",
                                       c->n_embd, c->n_head));
  }
  if (c->n_head % c->n_head_kv != 0) {
    return FormatError(absl::StrFormat("head_count %d is not a multiple of head_count_kv %d",
                                       c->n_head, c->n_head_kv));
  }
  YUAN_ASSIGN_OR_RETURN(c->head_dim, ArchInt(f, a, "attention.key_length", c->n_embd / c->n_head));
  YUAN_ASSIGN_OR_RETURN(c->n_rot, ArchInt(f, a, "rope.dimension_count", c->head_dim));
  if (c->n_rot > c->head_dim || c->n_rot % 2 != 0) {
    return FormatError(absl::StrFormat("rope.dimension_count %d does not fit head size %d",
                                       c->n_rot, c->head_dim));
  }
  YUAN_ASSIGN_OR_RETURN(c->rope_freq_base, ArchFloat(f, a, "rope.freq_base", 10000.0f));
  YUAN_ASSIGN_OR_RETURN(c->rms_eps, ArchFloat(f, a, "attention.layer_norm_rms_epsilon", 1e-5f));
  YUAN_ASSIGN_OR_RETURN(double scale, f.GetFloat("llama.rope.scale_linear", 1.0));
  if (!(scale > 0.0)) return FormatError("llama.rope.scale_linear must be positive");
  c->rope_freq_scale = static_cast<float>(1.0 / scale);
  c->rope_style = RopeStyle::kNormal;

  // The vocabulary size is the embedding table's row count.
  const GgufTensor* emb = f.FindTensor("token_embd.weight");
  if (emb == nullptr) return FormatError("tensor 'token_embd.weight' is missing");
  if (emb->ne[1] <= 0 || emb->ne[1] > (1 << 24)) return FormatError("token_embd.weight: bad vocab size");
  c->n_vocab = static_cast<int32_t>(emb->ne[1]);
  return absl::OkStatus();
}

absl::Status BindLlamaWeights(const GgufFile& f, const ModelConfig& c, ModelWeights* w) {
  const int64_t q_dim = int64_t{c.n_head} * c.head_dim;
  const int64_t kv_dim = int64_t{c.n_head_kv} * c.head_dim;
  YUAN_RETURN_IF_ERROR(BindWeight(f, "token_embd.weight", c.n_embd, c.n_vocab, true, &w->tok_embd));
  YUAN_RETURN_IF_ERROR(BindVector(f, "output_norm.weight", c.n_embd, true, &w->output_norm));
  YUAN_RETURN_IF_ERROR(BindWeight(f, "output.weight", c.n_embd, c.n_vocab, false, &w->output));
  if (w->output.empty()) w->output = w->tok_embd;  // tied embeddings
  w->layers.resize(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    LayerWeights& L = w->layers[l];
    const std::string p = absl::StrCat("blk.", l, ".");
    YUAN_RETURN_IF_ERROR(BindVector(f, p + "attn_norm.weight", c.n_embd, true, &L.attn_norm));
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "attn_q.weight", c.n_embd, q_dim, true, &L.wq));
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "attn_k.weight", c.n_embd, kv_dim, true, &L.wk));
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "attn_v.weight", c.n_embd, kv_dim, true, &L.wv));
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "attn_output.weight", q_dim, c.n_embd, true, &L.wo));
    YUAN_RETURN_IF_ERROR(BindVector(f, p + "ffn_norm.weight", c.n_embd, true, &L.ffn_norm));
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "ffn_gate.weight", c.n_embd, c.n_ff, true, &L.w_gate));
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "ffn_up.weight", c.n_embd, c.n_ff, true, &L.w_up));
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "ffn_down.weight", c.n_ff, c.n_embd, true, &L.w_down));
  }
  return absl::OkStatus();
}

}  // namespace

extern const ArchInfo kLlamaArch = {"llama", &LoadLlamaConfig, &BindLlamaWeights};

}  // namespace yuan

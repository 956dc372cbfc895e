#include "runtime/model/model.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_join.h"
#include "runtime/core/status.h"

namespace yuan {

// Defined in each arch_*.cpp; listed here so static linking keeps them.
extern const ArchInfo kLlamaArch;
extern const ArchInfo kQwen2Arch;
extern const ArchInfo kQwen3Arch;
extern const ArchInfo kHunyuanDenseArch;

}  // namespace yuan


namespace yuan {

namespace {
const ArchInfo* const kArchs[] = {&kLlamaArch, &kQwen2Arch, &kQwen3Arch, &kHunyuanDenseArch};
}  // namespace

const ArchInfo* FindArch(std::string_view name) {
  for (const ArchInfo* a : kArchs) {
    if (name == a->name) return a;
  }
  return nullptr;
}

std::vector<std::string> KnownArchs() {
  std::vector<std::string> names;
  for (const ArchInfo* a : kArchs) names.emplace_back(a->name);
  return names;
}

absl::Status BindWeight(const GgufFile& file, const std::string& name, int64_t cols,
                        int64_t rows, bool required, Weight* out) {
  const GgufTensor* t = file.FindTensor(name);
  if (t == nullptr) {
    if (!required) return absl::OkStatus();
    return FormatError(absl::StrCat("tensor '", name, "' is missing"));
  }
  const bool is_2d = rows > 1 || t->n_dims == 2;
  if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1 ||
      (is_2d && t->n_dims != 2)) {
    return FormatError(absl::StrFormat("tensor '%s' has shape [%d, %d, %d, %d], expected [%d, %d]",
                                       name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], cols, rows));
  }
  auto info = GetDTypeInfo(static_cast<uint32_t>(t->type));
  if (!info || !info->can_compute) {
    return absl::UnimplementedError(absl::StrCat("tensor '", name, "' has type ",
                                                 std::string(DTypeName(t->type)),
                                                 ", which yuan cannot compute with yet"));
  }
  out->type = t->type;
  out->cols = cols;
  out->rows = rows;
  out->data = t->data;
  out->row_bytes = *RowBytes(t->type, cols);  // the reader checked divisibility
  return absl::OkStatus();
}

absl::Status BindVector(const GgufFile& file, const std::string& name, int64_t n, bool required,
                        Weight* out) {
  YUAN_RETURN_IF_ERROR(BindWeight(file, name, n, 1, required, out));
  if (!out->empty() && out->type != DType::kF32) {
    return FormatError(absl::StrCat("tensor '", name, "' is ", std::string(DTypeName(out->type)),
                                    "; 1-D weights must be f32"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int32_t> ArchInt(const GgufFile& file, std::string_view arch,
                                std::string_view suffix, std::optional<int32_t> fallback) {
  const std::string key = absl::StrFormat("%s.%s", arch, suffix);
  absl::StatusOr<int64_t> v = fallback ? file.GetInt(key, *fallback) : file.GetInt(key);
  if (!v.ok()) {
    if (absl::IsNotFound(v.status())) return FormatError(absl::StrCat("missing key '", key, "'"));
    return v.status();
  }
  if (*v <= 0 || *v > (1 << 24)) {
    return FormatError(absl::StrCat("key '", key, "' = ", *v, " is out of range"));
  }
  return static_cast<int32_t>(*v);
}

absl::StatusOr<float> ArchFloat(const GgufFile& file, std::string_view arch,
                                std::string_view suffix, float fallback) {
  const std::string key = absl::StrFormat("%s.%s", arch, suffix);
  YUAN_ASSIGN_OR_RETURN(double v, file.GetFloat(key, fallback));
  if (!(v > 0.0) || v > std::numeric_limits<float>::max()) {
    return FormatError(absl::StrCat("key '", key, "' = ", v, " is out of range"));
  }
  return static_cast<float>(v);
}

absl::Status LoadDecoderConfig(const GgufFile& f, std::string_view a, ModelConfig* c) {
  YUAN_ASSIGN_OR_RETURN(c->n_embd, ArchInt(f, a, "embedding_length"));
  YUAN_ASSIGN_OR_RETURN(c->n_layer, ArchInt(f, a, "block_count"));
  YUAN_ASSIGN_OR_RETURN(c->n_ff, ArchInt(f, a, "feed_forward_length"));
  YUAN_ASSIGN_OR_RETURN(c->n_head, ArchInt(f, a, "attention.head_count"));
  YUAN_ASSIGN_OR_RETURN(c->n_head_kv, ArchInt(f, a, "attention.head_count_kv", c->n_head));
  YUAN_ASSIGN_OR_RETURN(c->n_ctx_train, ArchInt(f, a, "context_length", 2048));
  const std::string key_length = absl::StrFormat("%s.attention.key_length", a);
  if (f.Find(key_length) == nullptr && c->n_embd % c->n_head != 0) {
    return FormatError(absl::StrFormat("embedding_length %d is not a multiple of head_count %d",
                                       c->n_embd, c->n_head));
  }
  if (c->n_head % c->n_head_kv != 0) {
    return FormatError(absl::StrFormat("head_count %d is not a multiple of head_count_kv %d",
                                       c->n_head, c->n_head_kv));
  }
  YUAN_ASSIGN_OR_RETURN(c->head_dim, ArchInt(f, a, "attention.key_length", c->n_embd / c->n_head));
  YUAN_ASSIGN_OR_RETURN(int32_t value_length, ArchInt(f, a, "attention.value_length", c->head_dim));
  if (value_length != c->head_dim) {
    return absl::UnimplementedError(absl::StrFormat(
        "%s.attention.value_length %d differs from key_length %d, which yuan does not support",
        a, value_length, c->head_dim));
  }
  YUAN_ASSIGN_OR_RETURN(c->n_rot, ArchInt(f, a, "rope.dimension_count", c->head_dim));
  if (c->n_rot > c->head_dim || c->n_rot % 2 != 0) {
    return FormatError(absl::StrFormat("rope.dimension_count %d does not fit head size %d",
                                       c->n_rot, c->head_dim));
  }
  YUAN_ASSIGN_OR_RETURN(c->rope_freq_base, ArchFloat(f, a, "rope.freq_base", 10000.0f));
  YUAN_ASSIGN_OR_RETURN(c->rms_eps, ArchFloat(f, a, "attention.layer_norm_rms_epsilon", 1e-5f));

  // Rope scaling, as llama.cpp reads it: the type defaults to linear,
  // where freq_scale = 1 / factor; none never scales; llama3 (written by the
  // HF folder loader) is carried by rope_freqs.weight alone; YaRN and the
  // others are not implemented.
  const std::string type_key = absl::StrFormat("%s.rope.scaling.type", a);
  YUAN_ASSIGN_OR_RETURN(std::string_view type, f.GetString(type_key, "linear"));
  if (type != "none" && type != "linear" && type != "llama3") {
    return absl::UnimplementedError(absl::StrCat("'", type_key, "' = '", Sv(type),
                                                 "' is not supported (none, linear, llama3)"));
  }
  if (type == "llama3" && f.FindTensor("rope_freqs.weight") == nullptr) {
    return FormatError(absl::StrCat("'", type_key,
                                    "' is llama3 but tensor 'rope_freqs.weight' is missing"));
  }
  const std::string factor_key = absl::StrFormat("%s.rope.scaling.factor", a);
  const std::string linear_key = absl::StrFormat("%s.rope.scale_linear", a);
  const bool has_factor = f.Find(factor_key) != nullptr;
  YUAN_ASSIGN_OR_RETURN(double scale, f.GetFloat(has_factor ? factor_key : linear_key, 1.0));
  if (scale == 0.0) scale = 1.0;  // llama.cpp: 0 means unset
  if (!(scale > 0.0) || !std::isfinite(scale)) {
    return FormatError(
        absl::StrCat("'", has_factor ? factor_key : linear_key, "' must be positive"));
  }
  c->rope_freq_scale = type == "linear" ? static_cast<float>(1.0 / scale) : 1.0f;

  // Per-pair frequency divisors: llama.cpp's converter writes them for
  // Llama 3.x rope scaling (one tensor shared by all layers).
  c->rope_freq_factors.clear();
  if (const GgufTensor* t = f.FindTensor("rope_freqs.weight"); t != nullptr) {
    if (t->type != DType::kF32 || t->n_elements() != c->n_rot / 2 || t->ne[0] != c->n_rot / 2) {
      return FormatError(absl::StrFormat(
          "tensor 'rope_freqs.weight' must be f32 with %d values (rope.dimension_count / 2)",
          c->n_rot / 2));
    }
    c->rope_freq_factors.resize(c->n_rot / 2);
    std::memcpy(c->rope_freq_factors.data(), t->data, c->rope_freq_factors.size() * sizeof(float));
    for (float v : c->rope_freq_factors) {
      if (!(v > 0.0f) || !std::isfinite(v)) {
        return FormatError(
            "tensor 'rope_freqs.weight' has a value that is not positive and finite");
      }
    }
  }

  // The vocabulary size is the embedding table's row count.
  const GgufTensor* emb = f.FindTensor("token_embd.weight");
  if (emb == nullptr) return FormatError("tensor 'token_embd.weight' is missing");
  if (emb->ne[1] <= 0 || emb->ne[1] > (1 << 24)) {
    return FormatError("token_embd.weight: bad vocab size");
  }
  c->n_vocab = static_cast<int32_t>(emb->ne[1]);
  return absl::OkStatus();
}

absl::Status BindDecoderWeights(const GgufFile& f, const ModelConfig& c, const DecoderTensors& opt,
                                ModelWeights* w) {
  const int64_t q_dim = int64_t{c.n_head} * c.head_dim;
  const int64_t kv_dim = int64_t{c.n_head_kv} * c.head_dim;
  YUAN_RETURN_IF_ERROR(BindWeight(f, "token_embd.weight", c.n_embd, c.n_vocab, true, &w->tok_embd));
  YUAN_RETURN_IF_ERROR(BindVector(f, "output_norm.weight", c.n_embd, true, &w->output_norm));
  YUAN_RETURN_IF_ERROR(BindWeight(f, "output.weight", c.n_embd, c.n_vocab, false, &w->output));
  if (w->output.empty()) {  // tied embeddings
    w->output = w->tok_embd;
    w->tied_output = true;
  }
  w->layers.resize(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    LayerWeights& L = w->layers[l];
    const std::string p = absl::StrCat("blk.", l, ".");
    YUAN_RETURN_IF_ERROR(BindVector(f, p + "attn_norm.weight", c.n_embd, true, &L.attn_norm));
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "attn_q.weight", c.n_embd, q_dim, true, &L.wq));
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "attn_k.weight", c.n_embd, kv_dim, true, &L.wk));
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "attn_v.weight", c.n_embd, kv_dim, true, &L.wv));
    if (opt.qkv_bias) {
      YUAN_RETURN_IF_ERROR(BindVector(f, p + "attn_q.bias", q_dim, true, &L.bq));
      YUAN_RETURN_IF_ERROR(BindVector(f, p + "attn_k.bias", kv_dim, true, &L.bk));
      YUAN_RETURN_IF_ERROR(BindVector(f, p + "attn_v.bias", kv_dim, true, &L.bv));
    }
    if (opt.qk_norm) {
      YUAN_RETURN_IF_ERROR(BindVector(f, p + "attn_q_norm.weight", c.head_dim, true, &L.q_norm));
      YUAN_RETURN_IF_ERROR(BindVector(f, p + "attn_k_norm.weight", c.head_dim, true, &L.k_norm));
    }
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "attn_output.weight", q_dim, c.n_embd, true, &L.wo));
    YUAN_RETURN_IF_ERROR(BindVector(f, p + "ffn_norm.weight", c.n_embd, true, &L.ffn_norm));
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "ffn_gate.weight", c.n_embd, c.n_ff, true, &L.w_gate));
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "ffn_up.weight", c.n_embd, c.n_ff, true, &L.w_up));
    YUAN_RETURN_IF_ERROR(BindWeight(f, p + "ffn_down.weight", c.n_ff, c.n_embd, true, &L.w_down));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Model>> Model::FromGguf(std::shared_ptr<const GgufFile> file) {
  YUAN_ASSIGN_OR_RETURN(std::string_view arch_name, file->GetString("general.architecture"));
  const ArchInfo* arch = FindArch(arch_name);
  if (arch == nullptr) {
    return absl::UnimplementedError(absl::StrCat("architecture '", std::string(arch_name),
                                                 "' is not supported (known: ",
                                                 absl::StrJoin(KnownArchs(), ", "), ")"));
  }
  std::unique_ptr<Model> model(new Model());
  model->config_.arch = std::string(arch_name);
  YUAN_ASSIGN_OR_RETURN(std::string_view name, file->GetString("general.name", ""));
  model->config_.name = std::string(name);
  YUAN_RETURN_IF_ERROR(arch->load_config(*file, &model->config_));
  YUAN_RETURN_IF_ERROR(arch->bind_weights(*file, model->config_, &model->weights_));
  for (const GgufTensor& t : file->tensors()) model->n_params_ += t.n_elements();
  model->file_ = std::move(file);
  return model;
}

absl::StatusOr<std::unique_ptr<Model>> Model::Open(const std::string& path) {
  YUAN_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  return FromGguf(std::shared_ptr<const GgufFile>(std::move(file)));
}

}  // namespace yuan

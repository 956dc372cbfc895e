// A loaded model: hyper-parameters, weights bound to the GGUF mapping (kept
// in their file dtype; kernels dequantize on the fly), and the architecture
// that produced them.
//
// Architectures register in arch_registry (one file each, e.g.
// arch_llama.cpp): each knows how to read its hyper-parameters and which
// tensors it needs. Adding one is one file plus a test.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/core/dtype.h"
#include "runtime/model/gguf.h"

namespace yuan {

// A 1-D or 2-D weight: `rows` rows of `cols` contiguous elements (ggml's
// ne[1] x ne[0]), stored as `type`, borrowed from the mapping.
struct Weight {
  DType type = DType::kF32;
  int64_t cols = 0;  // ne[0]: input features of a projection
  int64_t rows = 1;  // ne[1]: output features
  const void* data = nullptr;
  uint64_t row_bytes = 0;
  // Q8_0/Q4_0/Q5_0 rows interleaved by bands of 8 (kernels::Interleave8):
  // set by the engine for matrices read whole by every token (the
  // projections, the head, token embeddings tied to it); row() is invalid,
  // MatRow (runtime/cpu/matmul.h) reads a row of either layout.
  bool interleaved8 = false;

  bool empty() const { return data == nullptr; }
  const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes; }
};

enum class RopeStyle {
  kNormal,  // llama / GGUF-permuted q,k: rotate adjacent pairs (x[2i], x[2i+1])
  kNeox,    // qwen2 / qwen3 / hunyuan: rotate (x[i], x[i + d/2])
};

struct ModelConfig {
  std::string arch;  // "llama", "qwen2", "qwen3", "hunyuan-dense"
  std::string name;  // general.name, may be empty
  int32_t n_vocab = 0;
  int32_t n_ctx_train = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t n_ff = 0;
  int32_t n_rot = 0;  // rotated dims per head (<= head_dim)
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;
  float rms_eps = 1e-5f;
  RopeStyle rope_style = RopeStyle::kNormal;
  // Per-pair frequency divisors (n_rot / 2 values; empty: none), from the
  // GGUF tensor rope_freqs.weight (Llama 3 rope scaling):
  //   theta_i = pos * freq_scale * base^(-2i / n_rot) / rope_freq_factors[i]
  std::vector<float> rope_freq_factors;
  // Where the optional per-head q/k RMSNorm goes: before RoPE (qwen3) or
  // after it (hunyuan-dense).
  bool qk_norm_after_rope = false;
};

struct LayerWeights {
  Weight attn_norm;               // (n_embd)
  Weight wq, wk, wv;              // (n_head*hd, n_embd), (n_head_kv*hd, n_embd) x2
  Weight bq, bk, bv;              // optional biases (qwen2)
  Weight q_norm, k_norm;          // optional per-head RMSNorm (qwen3, hunyuan)
  Weight wo;                      // (n_embd, n_head*hd)
  Weight ffn_norm;                // (n_embd)
  Weight w_gate, w_up;            // (n_ff, n_embd)
  Weight w_down;                  // (n_embd, n_ff)
};

struct ModelWeights {
  Weight tok_embd;     // (n_vocab, n_embd)
  Weight output_norm;  // (n_embd)
  Weight output;       // (n_vocab, n_embd); tied to tok_embd when the file has none
  // The file has no output.weight: output is tok_embd's matrix (its bytes,
  // or the engine's interleaved copy of them).
  bool tied_output = false;
  std::vector<LayerWeights> layers;
};

class Model {
 public:
  // Loads from an open GGUF file, which the model keeps alive.
  static absl::StatusOr<std::unique_ptr<Model>> FromGguf(std::shared_ptr<const GgufFile> file);
  static absl::StatusOr<std::unique_ptr<Model>> Open(const std::string& path);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  // For the engine's load-time weight repacking.
  ModelWeights* mutable_weights() { return &weights_; }
  const GgufFile& gguf() const { return *file_; }
  std::shared_ptr<const GgufFile> gguf_shared() const { return file_; }
  uint64_t n_params() const { return n_params_; }

 private:
  Model() = default;
  std::shared_ptr<const GgufFile> file_;
  ModelConfig config_;
  ModelWeights weights_;
  uint64_t n_params_ = 0;
};

// ---- architecture registry ------------------------------------------------

// What an architecture file provides. Both functions check shapes and return
// FormatError naming the key or tensor that is wrong.
struct ArchInfo {
  const char* name;  // general.architecture value
  absl::Status (*load_config)(const GgufFile& file, ModelConfig* config);
  absl::Status (*bind_weights)(const GgufFile& file, const ModelConfig& config,
                               ModelWeights* weights);
};

const ArchInfo* FindArch(std::string_view name);
std::vector<std::string> KnownArchs();

// Helpers for architecture files.
// Binds a tensor and checks its shape; `required` false returns OK with an
// empty Weight when absent.
absl::Status BindWeight(const GgufFile& file, const std::string& name, int64_t cols,
                        int64_t rows, bool required, Weight* out);
// A 1-D gain/bias vector of n floats; must be stored as F32 (as every
// converter and quantizer writes them).
absl::Status BindVector(const GgufFile& file, const std::string& name, int64_t n, bool required,
                        Weight* out);
// Reads "<arch>.<suffix>" as a positive int32.
absl::StatusOr<int32_t> ArchInt(const GgufFile& file, std::string_view arch, std::string_view suffix,
                                std::optional<int32_t> fallback = std::nullopt);
absl::StatusOr<float> ArchFloat(const GgufFile& file, std::string_view arch, std::string_view suffix,
                                float fallback);

// The hyper-parameters every llama-like decoder stores under "<arch>.":
// sizes, head counts, head size (attention.key_length, else n_embd / n_head),
// rope.dimension_count, rope.freq_base, the RMSNorm epsilon, rope scaling
// (llama.cpp semantics: rope.scaling.type linear, the default, gives
// freq_scale = 1 / rope.scaling.factor, else 1 / rope.scale_linear; none
// gives 1; llama3 needs rope_freqs.weight; other types are Unimplemented),
// n_vocab from token_embd.weight
// and the optional rope_freqs.weight. Leaves rope_style and
// qk_norm_after_rope to the caller.
absl::Status LoadDecoderConfig(const GgufFile& file, std::string_view arch, ModelConfig* config);

// Which optional tensors a llama-like architecture has.
struct DecoderTensors {
  bool qkv_bias = false;  // blk.N.attn_{q,k,v}.bias (qwen2)
  bool qk_norm = false;   // blk.N.attn_{q,k}_norm.weight, head_dim each (qwen3, hunyuan)
};
// Binds token_embd, output_norm, output (tied to token_embd when absent) and
// every layer's tensors; the optional ones in `tensors` are required.
absl::Status BindDecoderWeights(const GgufFile& file, const ModelConfig& config,
                                const DecoderTensors& tensors, ModelWeights* weights);

}  // namespace yuan

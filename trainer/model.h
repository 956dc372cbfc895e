// The trainable decoder: a forward pass that keeps what the backward pass
// needs, and hand-written backward passes for every op of every architecture
// in the registry (llama, qwen2, qwen3, hunyuan-dense), on the CPU.
//
// The frozen base stays as the file stores it (mmapped, quantized or not).
// A frozen projection y = x W^T needs, going backward, dx = dy W: that is a
// product with W^T, which TrainableModel keeps as a second matrix of the
// same kind, transposed once at creation (F32/F16/BF16 stay as they are and
// exact; quantized weights are dequantized and stored as Q8_0, so both
// directions run on the int8 kernels of runtime/cpu). docs/training.md says
// how gradients flow through a quantized base.
//
// What trains (TrainSpec):
//   * kLora:    A [rank x in] and B [out x rank] for each chosen projection
//               of every layer; y = x W^T + scaling * dropout(x) A^T B^T.
//               A starts as PEFT does (Kaiming-uniform, a = sqrt(5)), B = 0.
//   * kPartial: every tensor of the top `top_layers` layers (norms, biases,
//               projections), and output_norm + output when train_head.
//   * kFull:    every tensor, token embeddings included. With random_init
//               the values are drawn anew (normal, std init_std; norms 1;
//               biases 0), keeping only the base's shapes and tokenizer:
//               pre-training from scratch.
// Trainable tensors are f32 copies (Param); the rest is read in place.
//
// Loss: the sum over target positions of -log softmax(logits)[target].
// The caller scales gradients (grad_scale) so a step averages over all the
// target tokens of its micro-batches.
//
// Determinism: every output element and every gradient element is computed
// by one thread in a fixed order, so results are bit-identical for a given
// thread count, run after run (the checkpoint/resume contract needs this).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/adapter/adapter.h"
#include "runtime/core/thread_pool.h"
#include "runtime/model/model.h"

namespace yuan::train {

enum class Mode { kLora, kPartial, kFull };

struct LoraSpec {
  int32_t rank = 16;
  float alpha = 32.0f;
  float dropout = 0.0f;      // on the LoRA branch's input, as PEFT's lora_dropout
  bool use_rslora = false;   // scaling alpha / sqrt(rank) instead of alpha / rank
  // Any of q, k, v, o, gate, up, down.
  std::vector<std::string> targets = {"q", "k", "v", "o", "gate", "up", "down"};
};

struct TrainSpec {
  Mode mode = Mode::kLora;
  LoraSpec lora;
  int32_t top_layers = 0;    // kPartial: how many of the last layers train (>= 1)
  bool train_head = false;   // kPartial: output_norm and output train too
  bool random_init = false;  // kFull: start from random values (pre-training)
  float init_std = 0.02f;
  uint64_t seed = 0;         // initial values (LoRA A, random_init)
};

// One trainable tensor.
struct Param {
  std::string name;          // "blk.3.attn_q.weight", or for LoRA "blk.3.attn_q.weight.lora_a" / ".lora_b"
  std::vector<int64_t> ne;   // ggml order: ne[0] contiguous
  std::vector<float> value;  // f32, row-major in ggml order
  std::vector<float> grad;   // same size; ForwardBackward adds to it
  bool decay = true;         // AdamW weight decay applies (false: norms, biases)
};

// A micro-batch: n_rows rows of seq_len tokens each (row-major). A row may
// pack several documents: doc[i] numbers them within the row (0, 0, 0, 1, 1,
// 2, ...), positions restart at each document and attention never crosses a
// document boundary. targets[i] is the token to predict at position i, or -1
// for no loss there (prompt tokens, padding, the end of a document).
struct Batch {
  int64_t n_rows = 0;
  int64_t seq_len = 0;
  std::vector<int32_t> tokens;   // [n_rows * seq_len]
  std::vector<int32_t> targets;  // [n_rows * seq_len]
  std::vector<int32_t> doc;      // [n_rows * seq_len]; empty: one document per row
};

struct LossSum {
  double loss = 0.0;     // sum of -log p(target) over target positions
  int64_t n_targets = 0;
};

class TrainableModel {
 public:
  // `base` must outlive the TrainableModel. Errors: InvalidArgument for a
  // bad spec (unknown LoRA target, rank < 1, top_layers out of range, ...).
  static absl::StatusOr<std::unique_ptr<TrainableModel>> Create(const Model& base,
                                                                const TrainSpec& spec,
                                                                ThreadPool* pool);
  ~TrainableModel();

  const Model& base() const;
  const TrainSpec& spec() const;
  // The trainable tensors, in a fixed order (layer by layer, then the head).
  std::vector<Param>& params();
  const std::vector<Param>& params() const;
  int64_t n_trainable() const;  // total elements of params()

  // Forward and backward over `batch`: adds grad_scale * d(loss sum)/d(param)
  // to every Param::grad and returns the loss sum. LoRA dropout masks come
  // from (dropout_seed, layer, projection, element), so a step can be
  // replayed exactly. InvalidArgument for a malformed batch (sizes, token
  // ids out of range, targets out of range).
  absl::StatusOr<LossSum> ForwardBackward(const Batch& batch, float grad_scale,
                                          uint64_t dropout_seed);
  // The loss only, no gradients, no dropout (evaluation).
  absl::StatusOr<LossSum> Evaluate(const Batch& batch);
  // Logits [n_rows * seq_len][n_vocab] of the current parameters (tests).
  absl::StatusOr<std::vector<float>> Logits(const Batch& batch);

  // Sets every Param::grad to 0.
  void ZeroGrad();
  // Call after changing Param::value (the optimizer step, a checkpoint
  // restore): refreshes the transposed copies of trainable matrices.
  void ParamsChanged();

  // kLora: the trained adapter (targets, rank, alpha, fingerprint of the
  // base filled, provenance left to the caller).
  absl::StatusOr<LoraAdapter> ExportAdapter() const;
  // kPartial / kFull: writes a GGUF model: the base's metadata and
  // tokenizer, trained tensors in F32, the others copied byte for byte.
  absl::Status ExportModel(const std::string& path) const;

 private:
  struct Impl;
  explicit TrainableModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace yuan::train

// The in-process runtime: an Engine owns a loaded model, its tokenizer and a
// compute thread pool; a Session owns one context (KV cache + token history)
// and runs generation on it. The C ABI in sdk/src is a thin layer over these.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/core/malloc_ptr.h"
#include "runtime/core/thread_pool.h"
#include "runtime/engine/forward.h"
#include "runtime/engine/kv_cache.h"
#include "runtime/engine/sampler.h"
#include "runtime/model/model.h"
#include "runtime/tokenizer/tokenizer.h"

namespace yuan {

// Opens a model's metadata and weights: a GGUF file, or a Hugging Face
// folder (config.json + safetensors + tokenizer.json) translated to the same
// view without copying weights.
absl::StatusOr<std::unique_ptr<GgufFile>> OpenModelFile(const std::string& path);

struct EngineOptions {
  std::string model_path;  // GGUF file or Hugging Face folder
  int n_threads = 0;  // 0: physical cores, at most 8
  int n_ctx = 0;      // default session context; 0: min(n_ctx_train, 4096)
  DType kv_type = DType::kF16;  // KV cache storage: kF16 or kF32
  // Store Q8_0/Q4_0 matrices interleaved by 8 rows for the vector kernels
  // (see RepackWeights); off: compute from the mapped file as it is.
  bool repack_weights = true;
};

class Engine {
 public:
  static absl::StatusOr<std::shared_ptr<Engine>> Open(const EngineOptions& options);

  const Model& model() const { return *model_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  ThreadPool* pool() const { return pool_.get(); }
  int n_ctx() const { return n_ctx_; }
  DType kv_type() const { return kv_type_; }
  // Identifies the model's shapes (architecture, hyper-parameters, tensor
  // names, types and shapes): saved session states carry it.
  uint64_t fingerprint() const { return fingerprint_; }
  // The vocabulary as the grammar matcher needs it (token bytes, a trie):
  // built on first use, once, then shared by every constrained sequence.
  // Thread-safe.
  std::shared_ptr<const grammar::TokenVocab> grammar_vocab() const;

  // The arena RepackWeights moved the fully-read matrices into (2 MiB
  // aligned), and its size; null and 0 when the weights stay in the file
  // mapping. yuan bench reads it in place to measure the bandwidth decoding
  // can get from those very pages.
  const uint8_t* weight_arena() const { return packed_weights_.empty() ? nullptr : packed_weights_[0].get(); }
  size_t weight_arena_bytes() const { return packed_bytes_; }

 private:
  Engine() = default;
  // Moves every matrix a token reads in full (the projections and the
  // output head; not the token embeddings, whose rows are read one at a
  // time) into one arena backed by transparent huge pages where the kernel
  // grants them: Q8_0/Q4_0 in the layout the vector kernels compute 8 rows
  // at a time with (kernels::Interleave8), other types as they are. The
  // mapped pages they came from are released, so resident memory stays
  // about the file size.
  void RepackWeights();

  std::vector<MallocPtr<uint8_t>> packed_weights_;
  size_t packed_bytes_ = 0;  // of packed_weights_'s arena
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ThreadPool> pool_;
  int n_ctx_ = 0;
  DType kv_type_ = DType::kF16;
  uint64_t fingerprint_ = 0;
  mutable std::once_flag grammar_vocab_once_;
  mutable std::shared_ptr<const grammar::TokenVocab> grammar_vocab_;
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };

struct GenerateRequest {
  std::string prompt;
  bool add_bos = true;
  bool parse_special = false;
  bool ignore_eos = false;
  int32_t max_tokens = 256;
  SamplingParams sampling;
  std::vector<std::string> stop;
  // Called after each generated token with the text now safe to show (may
  // be empty). Return false to stop.
  std::function<bool(std::string_view text, int32_t token, int32_t index)> on_token;
  // Optional: when it is already true as generation starts, the call ends at
  // once as cancelled (closes the gap between a caller's cancel flag and
  // Session::Cancel, which only stops a call that is running).
  const std::atomic<bool>* cancel = nullptr;
  // LoRA adapters (lora.h) applied to this request; empty: the base model.
  // The session's context is reused only when it was built with the same
  // set (the same bindings and scales).
  std::vector<LoraChoice> loras;
};

struct GenerateResult {
  FinishReason finish_reason = FinishReason::kNone;
  int32_t prompt_tokens = 0;
  int32_t cached_tokens = 0;
  int32_t completion_tokens = 0;
  double prompt_ms = 0;
  double generation_ms = 0;
  std::string text;
  std::vector<int32_t> tokens;
};

class Session {
 public:
  static absl::StatusOr<std::unique_ptr<Session>> Create(std::shared_ptr<const Engine> engine,
                                                          int n_ctx);

  // Appends tokens to the context and evaluates them (logits of the last).
  // `loras` (may be null: keep going with the adapters the context was built
  // with, those of the last Generate or Decode; none after Reset) names the
  // adapters to evaluate with: on an empty context they become the
  // context's; on a non-empty one built with another set the call fails with
  // FailedPrecondition rather than mix adapters in one context. On error the
  // context is unchanged.
  absl::Status Decode(const std::vector<int32_t>& tokens, const LoraSet* loras = nullptr);
  // Next-token logits after the last Decode/Generate step; empty before.
  const std::vector<float>& logits() const { return logits_; }

  // Context := BOS + prompt + generation, reusing the longest common prefix
  // of the old context. Returns OK on normal, stop, length and cancelled
  // endings (see result->finish_reason).
  absl::Status Generate(const GenerateRequest& request, GenerateResult* result);

  // Thread-safe: stops a running Generate/Decode within one model step.
  void Cancel();

  void Reset();

  // The context as bytes (see session_state.cpp for the layout) and back.
  // LoadState leaves the session unchanged on error: FormatError for damaged
  // data, FailedPrecondition for another model or a too-small context.
  std::string SaveState() const;
  absl::Status LoadState(std::string_view data);

  // Adds the wall time of each step of every later forward pass to *times
  // (forward.h); nullptr stops it. For `yuan bench --steps`.
  void set_step_times(ForwardStepTimes* times) { step_times_ = times; }

  int32_t n_past() const { return static_cast<int32_t>(history_.size()); }
  int32_t n_ctx() const { return cache_.capacity(); }
  const std::vector<int32_t>& history() const { return history_; }
  const Engine& engine() const { return *engine_; }

 private:
  Session(std::shared_ptr<const Engine> engine, KvCache cache);
  // Evaluates tokens at the end of the context in chunks, checking cancel,
  // with the adapters in history_loras_.
  absl::Status Eval(const int32_t* tokens, int64_t n);

  std::shared_ptr<const Engine> engine_;
  KvCache cache_;
  ForwardScratch scratch_;
  std::vector<int32_t> history_;
  // The text history_ stands for when it was built by Generate (prompt +
  // generated pieces), so a later prompt that extends it is tokenized as a
  // continuation and reuses the generated tokens exactly; empty otherwise.
  std::string history_text_;
  bool history_parse_special_ = false;
  // The adapters the cached context was computed with (Decode continues
  // with them): a context is only reused under the same set.
  std::vector<LoraChoice> history_loras_;
  std::vector<float> logits_;
  // Decode's logits from before the step, to restore if it fails: swapped
  // with logits_, so a step copies nothing and reuses this buffer.
  std::vector<float> logits_before_;
  ForwardStepTimes* step_times_ = nullptr;
  std::atomic<bool> cancel_{false};
  std::mutex run_mu_;      // guards running_ for Cancel
  bool running_ = false;
};

}  // namespace yuan

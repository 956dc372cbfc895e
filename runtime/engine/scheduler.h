// Continuous batching: many concurrent generation requests share one Engine.
// Each step the scheduler thread gathers one token from every sequence that
// is decoding plus chunks of the prompts waiting to be evaluated (up to
// Options::max_batch_tokens), runs them through the model as ONE batch (the
// weights are read once for all of them), and samples each sequence's next
// token. Sequences join and leave the batch between steps. Their K/V rows
// live in a paged cache shared by all (KvCache pages of kKvPageSize
// positions), so memory follows the tokens actually held.
//
// Admission reserves pages for min(prompt + max_tokens, n_ctx) positions, so
// a running sequence never runs out of cache; a request that does not fit
// now waits in the queue, and a full queue refuses new ones (the server
// answers 429/503).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/sampler.h"

namespace yuan {

// What a sequence produced in one step. Called on the scheduler thread.
struct StreamDelta {
  std::string text;      // text now safe to show (valid UTF-8; may be empty)
  int32_t token = -1;    // the sampled token (-1 for the final flush of held text)
  int32_t index = 0;     // 0-based position among the generated tokens
  float logprob = 0;     // log-softmax of the raw logits at `token`
  // The n_logprobs most likely tokens (id, logprob), most likely first.
  std::vector<std::pair<int32_t, float>> top_logprobs;
};

struct StreamDone {
  FinishReason finish_reason = FinishReason::kNone;  // kError: see status
  absl::Status status;
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  std::string text;              // everything emitted (stop string excluded)
  std::vector<int32_t> tokens;   // generated token ids
  double queue_ms = 0;           // submit -> admitted
  double ttft_ms = 0;            // submit -> first token sampled
  double total_ms = 0;           // submit -> done
};

struct BatchRequest {
  std::vector<int32_t> prompt;   // token ids (BOS already added if wanted)
  int32_t max_tokens = 256;      // < 0: until the context is full
  bool ignore_eos = false;
  SamplingParams sampling;
  std::vector<std::string> stop;
  int32_t n_logprobs = -1;       // -1: no logprobs; 0..20: sampled + that many top
  // LoRA adapters (lora.h) for this request; empty: the base model. Requests
  // with different adapters share a batch (nothing is merged into the base).
  std::vector<LoraChoice> loras;
  // Both run on the scheduler thread and must be quick (queue the text for a
  // socket; do not block). on_delta returning false cancels the request.
  std::function<bool(const StreamDelta&)> on_delta;
  std::function<void(const StreamDone&)> on_done;  // exactly once
};

class Scheduler {
 public:
  struct Options {
    int max_sequences = 16;        // sequences decoding at once
    int64_t kv_tokens = 0;         // positions in the shared cache; 0: n_ctx * max_sequences / 2, at least n_ctx
    int32_t n_ctx = 0;             // longest sequence (prompt + generation); 0: the engine's n_ctx
    int max_queue = 64;            // waiting requests beyond the running ones
    int64_t max_batch_tokens = 512;  // tokens evaluated per step (prompt chunks + decodes)
  };

  struct Stats {
    int running = 0, queued = 0;
    int64_t kv_pages_used = 0, kv_pages_total = 0;
    uint64_t prompt_tokens = 0, generated_tokens = 0, steps = 0;
  };

  static absl::StatusOr<std::unique_ptr<Scheduler>> Start(std::shared_ptr<const Engine> engine,
                                                          const Options& options);
  ~Scheduler();  // Stop()s

  // Queues a request and returns its id. Errors, with nothing queued and no
  // callback called: InvalidArgument (empty prompt, bad token id),
  // OutOfRange (prompt + 1 longer than n_ctx), ResourceExhausted (queue
  // full), Unavailable (stopping).
  absl::StatusOr<uint64_t> Submit(BatchRequest request);
  // Any thread; on_done follows with kCancelled within one step. Unknown or
  // finished ids are ignored.
  void Cancel(uint64_t id);
  Stats stats() const;
  const Options& options() const;
  // Cancels everything (each on_done runs with kCancelled) and joins the
  // thread. Idempotent.
  void Stop();

 private:
  Scheduler() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace yuan

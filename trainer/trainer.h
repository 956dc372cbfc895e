// A training job: base model + data + options in, adapter or model out.
//
// The loop: each optimizer step takes grad_accum micro-batches of
// batch_rows rows (packed by data.h), runs forward + backward on each with
// gradients scaled by 1 / (target tokens of the whole step), clips, and
// steps AdamW at the scheduled learning rate. Every eval_every steps (and at
// the end) it evaluates on the held-out split. It writes the loss CSV and
// its plot (log.h) and a checkpoint every checkpoint_every steps and when
// cancelled.
//
// A checkpoint holds everything the rest of the run depends on: options
// fingerprint, step, epoch and position in the epoch's order, parameter
// values, AdamW's m, v and step, and the log rows so far. Resuming from it
// gives exactly the curve of an uninterrupted run (tested bit for bit), as
// every random choice is a function of (seed, step, ...), never of a
// running generator's history.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "trainer/data.h"
#include "trainer/log.h"
#include "trainer/model.h"
#include "trainer/optimizer.h"

namespace yuan::train {

struct TrainOptions {
  std::string model_path;       // base GGUF (for random_init: the shapes and tokenizer)
  std::string data_path;        // training data (data.h)
  std::string eval_path;        // optional separate eval data; else eval_fraction of data_path
  DataOptions data;             // seq_len, kind, eval_fraction, skip_bad, chat template
  TrainSpec spec;               // mode, LoRA, partial, full
  AdamWOptions adamw;
  float min_lr_ratio = 0.1f;
  int64_t warmup_steps = 10;
  int64_t batch_rows = 1;       // rows of seq_len tokens per micro-batch
  int64_t grad_accum = 1;       // micro-batches per optimizer step
  int64_t epochs = 1;           // used when max_steps is 0
  int64_t max_steps = 0;        // > 0: stop after this many steps
  double clip_norm = 1.0;       // <= 0: no clipping
  int64_t eval_every = 0;       // 0: only at the end (when there is eval data)
  uint64_t seed = 42;           // data order, eval split, LoRA init, dropout
  int threads = 0;              // 0: the machine's cores
  std::string out_path;         // the result: .yadp adapter (LoRA) or .gguf model
  std::string log_path;         // loss CSV (+ .png plot); empty: <out_path>.csv
  std::string checkpoint_path;  // checkpoint file; empty: <out_path>.ckpt
  int64_t checkpoint_every = 0; // 0: only on cancel and at the end
  std::string resume_from;      // checkpoint to continue from
};

struct Progress {
  LogRow row;            // this step's figures (eval_loss when it evaluated)
  int64_t total_steps = 0;
  double eta_s = 0.0;
};

class TrainJob {
 public:
  // Opens the model, reads and checks the data (a bad line fails here, with
  // file:line: reason) and builds the trainable model; resumes when
  // resume_from is set (its options must match: else InvalidArgument naming
  // the field).
  static absl::StatusOr<std::unique_ptr<TrainJob>> Create(const TrainOptions& options);
  ~TrainJob();

  // Runs to the end, or until Cancel(): then it writes a checkpoint and
  // returns Cancelled. on_step is called after each optimizer step on the
  // calling thread; returning false cancels as Cancel() does.
  absl::Status Run(const std::function<bool(const Progress&)>& on_step = {});
  // Thread-safe, async-signal-safe (a relaxed atomic store).
  void Cancel();

  // Writes the result to `path` (empty: options.out_path): the adapter file
  // (LoRA; provenance: trainer version, data hash, steps, time) or the GGUF
  // model (partial, full). Run() calls it at the end.
  absl::Status Export(const std::string& path = "") const;
  // Writes a checkpoint to `path` (empty: options.checkpoint_path).
  absl::Status SaveCheckpoint(const std::string& path = "") const;

  const TrainOptions& options() const;
  int64_t step() const;         // optimizer steps done
  int64_t total_steps() const;
  const std::vector<LogRow>& log() const;
  const Dataset& dataset() const;
  TrainableModel& model();
  // The eval loss (mean per target token) of the current parameters; NaN
  // when there is no eval data.
  absl::StatusOr<double> EvalLoss();
  // The eval loss of the starting parameters (the base, for LoRA), measured
  // by Run() before its first step; NaN before that or without eval data.
  double initial_eval_loss() const;

 private:
  struct Impl;
  explicit TrainJob(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace yuan::train

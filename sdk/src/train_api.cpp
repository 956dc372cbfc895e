// Training jobs in the C ABI (yuan/train.h): a thin layer over
// trainer/trainer.h's TrainJob that checks the caller's structs and handles
// and keeps exceptions and C++ types on this side.
#include "yuan/train.h"

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "sdk/src/api_guard.h"
#include "trainer/trainer.h"

namespace {

// Marks a live job for yuan_train_job_cancel, which may run in a signal
// handler and so cannot lock the handle registry.
constexpr uint64_t kJobMagic = 0x79756e7472616e31ull;  // "yuntran1"

}  // namespace

struct yuan_train_job {
  std::atomic<uint64_t> magic{kJobMagic};
  std::unique_ptr<yuan::train::TrainJob> job;
  // Which thread runs the job, so that the callback (same thread) may export
  // or checkpoint while other threads are refused instead of racing.
  std::mutex mu;
  bool running = false;
  std::thread::id runner;
  bool has_last = false;
  yuan::train::Progress last;  // the last step's figures (yuan_train_job_progress)
};

namespace yuan::api {
namespace {

HandleRegistry<yuan_train_job>& TrainJobs() {
  static auto* registry = new HandleRegistry<yuan_train_job>();
  return *registry;
}

// The first released sizes. Fields appended later are read only when the
// caller's struct_size covers them.
constexpr size_t kTrainOptionsV1Size = sizeof(yuan_train_options);
constexpr size_t kTrainProgressV1Size = sizeof(yuan_train_progress);
constexpr size_t kTrainInfoV1Size = sizeof(yuan_train_info);

std::string Str(const char* s) { return s == nullptr ? std::string() : std::string(s); }

// The integer a C caller stored in an enum field. Reading the field as the
// C++ enum type is undefined behaviour for values outside its enumerators
// (UBSan's -fsanitize=enum), and a caller may have stored anything there.
template <typename E>
int32_t EnumValue(const E& field) {
  static_assert(sizeof(E) == sizeof(int32_t), "C enums are int-sized here");
  int32_t v;
  std::memcpy(&v, &field, sizeof v);
  return v;
}

yuan_status Invalid(const std::string& message) {
  return Fail(YUAN_ERR_INVALID_ARGUMENT, "yuan_train_options." + message);
}

// Converts the caller's options, checking what the C layer owns (enums,
// NULLs, ranges whose error is clearer named by field); the trainer checks
// the rest (targets against the model, top_layers against its depth, ...).
yuan_status ToTrainOptions(const yuan_train_options& o, train::TrainOptions* out) {
  train::TrainOptions t;
  t.model_path = Str(o.model_path);
  t.data_path = Str(o.data_path);
  t.eval_path = Str(o.eval_path);
  t.out_path = Str(o.out_path);
  t.log_path = Str(o.log_path);
  t.checkpoint_path = Str(o.checkpoint_path);
  t.resume_from = Str(o.resume_from);
  if (t.model_path.empty()) return Invalid("model_path is not set");
  if (t.data_path.empty()) return Invalid("data_path is not set");
  if (t.out_path.empty()) return Invalid("out_path is not set");

  switch (EnumValue(o.mode)) {
    case YUAN_TRAIN_LORA: t.spec.mode = train::Mode::kLora; break;
    case YUAN_TRAIN_PARTIAL: t.spec.mode = train::Mode::kPartial; break;
    case YUAN_TRAIN_FULL: t.spec.mode = train::Mode::kFull; break;
    default:
      return Invalid("mode is " + std::to_string(EnumValue(o.mode)) +
                     ", expected YUAN_TRAIN_LORA, _PARTIAL or _FULL");
  }
  switch (EnumValue(o.data_kind)) {
    case YUAN_TRAIN_DATA_AUTO: t.data.kind = train::DataKind::kAuto; break;
    case YUAN_TRAIN_DATA_CHAT: t.data.kind = train::DataKind::kChat; break;
    case YUAN_TRAIN_DATA_TEXT: t.data.kind = train::DataKind::kText; break;
    default:
      return Invalid("data_kind is " + std::to_string(EnumValue(o.data_kind)) +
                     ", expected YUAN_TRAIN_DATA_AUTO, _CHAT or _TEXT");
  }

  if (o.lora_targets != nullptr) {
    t.spec.lora.targets.clear();
    for (absl::string_view part : absl::StrSplit(o.lora_targets, ',')) {
      part = absl::StripAsciiWhitespace(part);
      if (!part.empty()) t.spec.lora.targets.emplace_back(part);
    }
    if (t.spec.lora.targets.empty() && o.mode == YUAN_TRAIN_LORA) {
      return Invalid("lora_targets names no projection (any of q,k,v,o,gate,up,down)");
    }
  }
  if (o.lora_rank < 1) return Invalid("lora_rank must be at least 1");
  if (!std::isfinite(o.lora_alpha) || o.lora_alpha <= 0) return Invalid("lora_alpha must be > 0");
  if (!(o.lora_dropout >= 0 && o.lora_dropout < 1)) return Invalid("lora_dropout must be in [0, 1)");
  t.spec.lora.rank = o.lora_rank;
  t.spec.lora.alpha = static_cast<float>(o.lora_alpha);
  t.spec.lora.dropout = static_cast<float>(o.lora_dropout);
  t.spec.lora.use_rslora = o.lora_use_rslora != 0;
  if (o.top_layers < 0) return Invalid("top_layers must not be negative");
  t.spec.top_layers = o.top_layers;
  t.spec.train_head = o.train_head != 0;
  t.spec.random_init = o.random_init != 0;
  if (o.threads < 0) return Invalid("threads must not be negative");
  t.threads = o.threads;

  if (o.seq_len < 2) return Invalid("seq_len must be at least 2");
  if (o.batch_rows < 1) return Invalid("batch_rows must be at least 1");
  if (o.grad_accum < 1) return Invalid("grad_accum must be at least 1");
  if (!(o.eval_fraction >= 0 && o.eval_fraction <= 0.5)) {
    return Invalid("eval_fraction must be in [0, 0.5]");
  }
  t.data.seq_len = o.seq_len;
  t.data.skip_bad = o.skip_bad_lines != 0;
  t.data.eval_fraction = o.eval_fraction;
  t.data.chat_template = Str(o.chat_template);
  t.batch_rows = o.batch_rows;
  t.grad_accum = o.grad_accum;

  if (o.max_steps < 0) return Invalid("max_steps must not be negative");
  if (o.max_steps == 0 && o.epochs < 1) return Invalid("epochs must be at least 1 (or set max_steps)");
  if (o.warmup_steps < 0) return Invalid("warmup_steps must not be negative");
  if (o.eval_every < 0) return Invalid("eval_every must not be negative");
  if (o.checkpoint_every < 0) return Invalid("checkpoint_every must not be negative");
  if (!std::isfinite(o.lr) || o.lr <= 0) return Invalid("lr must be > 0");
  if (!(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1)) return Invalid("min_lr_ratio must be in [0, 1]");
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) {
    return Invalid("weight_decay must not be negative");
  }
  if (!(o.adam_beta1 >= 0 && o.adam_beta1 < 1)) return Invalid("adam_beta1 must be in [0, 1)");
  if (!(o.adam_beta2 >= 0 && o.adam_beta2 < 1)) return Invalid("adam_beta2 must be in [0, 1)");
  if (!(o.adam_eps > 0) || !std::isfinite(o.adam_eps)) return Invalid("adam_eps must be > 0");
  if (std::isnan(o.clip_norm)) return Invalid("clip_norm is NaN");
  t.epochs = o.epochs;
  t.max_steps = o.max_steps;
  t.warmup_steps = o.warmup_steps;
  t.eval_every = o.eval_every;
  t.checkpoint_every = o.checkpoint_every;
  t.adamw.lr = static_cast<float>(o.lr);
  t.min_lr_ratio = static_cast<float>(o.min_lr_ratio);
  t.adamw.weight_decay = static_cast<float>(o.weight_decay);
  t.adamw.beta1 = static_cast<float>(o.adam_beta1);
  t.adamw.beta2 = static_cast<float>(o.adam_beta2);
  t.adamw.eps = static_cast<float>(o.adam_eps);
  t.clip_norm = o.clip_norm;
  t.seed = o.seed;
  *out = std::move(t);
  return YUAN_OK;
}

yuan_train_progress ToProgress(const train::Progress& p) {
  yuan_train_progress c;
  std::memset(&c, 0, sizeof c);
  c.struct_size = static_cast<uint32_t>(sizeof c);
  c.step = p.row.step;
  c.total_steps = p.total_steps;
  c.epoch = p.row.epoch;
  c.loss = p.row.loss;
  c.eval_loss = p.row.eval_loss ? *p.row.eval_loss : std::numeric_limits<double>::quiet_NaN();
  c.lr = p.row.lr;
  c.grad_norm = p.row.grad_norm;
  c.tokens = p.row.tokens;
  c.tokens_per_s = p.row.tokens_per_s;
  c.elapsed_s = p.row.elapsed_s;
  c.eta_s = p.eta_s;
  return c;
}

// Checks the handle and that the job is not running on another thread (the
// on_step callback runs on the job's own thread and may use it).
yuan_status CheckIdleOrOwnThread(const yuan_train_job* job, const char* fn) {
  if (!TrainJobs().Contains(job)) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT, std::string(fn) + ": job is NULL or not a live job handle");
  }
  auto* j = const_cast<yuan_train_job*>(job);
  std::lock_guard<std::mutex> lock(j->mu);
  if (j->running && j->runner != std::this_thread::get_id()) {
    return Fail(YUAN_ERR_FAILED_PRECONDITION,
                std::string(fn) + ": the job is running on another thread (call it from the "
                                  "progress callback, or after yuan_train_job_run returns)");
  }
  return YUAN_OK;
}

}  // namespace
}  // namespace yuan::api

// The first released layouts (LP64). A change here breaks old binaries:
// append fields instead.
static_assert(offsetof(yuan_train_options, model_path) == 8 &&
                  offsetof(yuan_train_options, lora_targets) == 72 &&
                  offsetof(yuan_train_options, seq_len) == 128 &&
                  offsetof(yuan_train_options, seed) == 256 && sizeof(yuan_train_options) == 264,
              "yuan_train_options");
static_assert(offsetof(yuan_train_info, n_train_examples) == 8 &&
                  offsetof(yuan_train_info, total_steps) == 40 && sizeof(yuan_train_info) == 48,
              "yuan_train_info");
static_assert(offsetof(yuan_train_progress, step) == 8 &&
                  offsetof(yuan_train_progress, eta_s) == 88 && sizeof(yuan_train_progress) == 96,
              "yuan_train_progress");

using yuan::api::Fail;
using yuan::api::Ok;

extern "C" {

void yuan_train_options_init_sized(yuan_train_options* options, size_t size) {
  if (options == nullptr || size < yuan::api::kTrainOptionsV1Size) return;
  // Defaults come from TrainOptions itself, so the two never drift apart.
  const yuan::train::TrainOptions d;
  yuan_train_options v;
  std::memset(&v, 0, sizeof v);
  v.mode = YUAN_TRAIN_LORA;
  v.lora_rank = d.spec.lora.rank;
  v.lora_use_rslora = d.spec.lora.use_rslora ? 1 : 0;
  v.lora_alpha = d.spec.lora.alpha;
  v.lora_dropout = d.spec.lora.dropout;
  v.top_layers = d.spec.top_layers;
  v.train_head = d.spec.train_head ? 1 : 0;
  v.random_init = d.spec.random_init ? 1 : 0;
  v.threads = d.threads;
  v.data_kind = YUAN_TRAIN_DATA_AUTO;
  v.skip_bad_lines = d.data.skip_bad ? 1 : 0;
  v.seq_len = d.data.seq_len;
  v.batch_rows = d.batch_rows;
  v.grad_accum = d.grad_accum;
  v.eval_fraction = d.data.eval_fraction;
  v.epochs = d.epochs;
  v.max_steps = d.max_steps;
  v.warmup_steps = d.warmup_steps;
  v.eval_every = d.eval_every;
  v.checkpoint_every = d.checkpoint_every;
  v.lr = d.adamw.lr;
  v.min_lr_ratio = d.min_lr_ratio;
  v.weight_decay = d.adamw.weight_decay;
  v.adam_beta1 = d.adamw.beta1;
  v.adam_beta2 = d.adamw.beta2;
  v.adam_eps = d.adamw.eps;
  v.clip_norm = d.clip_norm;
  v.seed = d.seed;
  const size_t n = size < sizeof v ? size : sizeof v;
  v.struct_size = static_cast<uint32_t>(n);
  std::memcpy(static_cast<void*>(options), &v, n);
}

void(yuan_train_options_init)(yuan_train_options* options) {
  yuan_train_options_init_sized(options, yuan::api::kTrainOptionsV1Size);
}

void yuan_train_progress_init(yuan_train_progress* progress) {
  if (progress == nullptr) return;
  std::memset(static_cast<void*>(progress), 0, yuan::api::kTrainProgressV1Size);
  progress->struct_size = static_cast<uint32_t>(yuan::api::kTrainProgressV1Size);
}

yuan_status yuan_train_job_create(const yuan_train_options* options, yuan_train_job** out_job) {
  YUAN_API_BEGIN
  if (out_job == nullptr) return Fail(YUAN_ERR_INVALID_ARGUMENT, "out_job is NULL");
  yuan_train_options o;
  yuan_train_options_init(&o);
  if (yuan_status st = yuan::api::ReadStruct(options, yuan::api::kTrainOptionsV1Size,
                                             "yuan_train_options", &o);
      st != YUAN_OK) {
    return st;
  }
  yuan::train::TrainOptions t;
  if (yuan_status st = yuan::api::ToTrainOptions(o, &t); st != YUAN_OK) return st;
  absl::StatusOr<std::unique_ptr<yuan::train::TrainJob>> job = yuan::train::TrainJob::Create(t);
  if (!job.ok()) return Fail(job.status());
  auto* handle = new yuan_train_job();
  handle->job = std::move(*job);
  yuan::api::TrainJobs().Add(handle);
  *out_job = handle;
  return Ok();
  YUAN_API_END
}

yuan_status yuan_train_job_run(yuan_train_job* job, yuan_train_progress_fn on_step,
                               void* user_data) {
  YUAN_API_BEGIN
  if (!yuan::api::TrainJobs().Contains(job)) {
    return Fail(YUAN_ERR_INVALID_ARGUMENT, "yuan_train_job_run: job is NULL or not a live job handle");
  }
  {
    std::lock_guard<std::mutex> lock(job->mu);
    if (job->running) {
      return Fail(YUAN_ERR_FAILED_PRECONDITION, "yuan_train_job_run: the job is already running");
    }
    job->running = true;
    job->runner = std::this_thread::get_id();
  }
  struct Release {
    yuan_train_job* j;
    ~Release() {
      std::lock_guard<std::mutex> lock(j->mu);
      j->running = false;
    }
  } release{job};
  auto step = [&](const yuan::train::Progress& p) {
    {
      std::lock_guard<std::mutex> lock(job->mu);
      job->last = p;
      job->has_last = true;
    }
    if (on_step == nullptr) return true;
    const yuan_train_progress c = yuan::api::ToProgress(p);
    return on_step(&c, user_data) == 0;
  };
  absl::Status s = job->job->Run(step);
  if (!s.ok()) return Fail(s);
  return Ok();
  YUAN_API_END
}

yuan_status yuan_train_job_cancel(yuan_train_job* job) {
  // No registry lookup, no last-error string: both may allocate or lock,
  // and this must be callable from a signal handler.
  if (job == nullptr || job->magic.load(std::memory_order_relaxed) != kJobMagic) {
    return YUAN_ERR_INVALID_ARGUMENT;
  }
  job->job->Cancel();
  return YUAN_OK;
}

yuan_status yuan_train_job_export(yuan_train_job* job, const char* path) {
  YUAN_API_BEGIN
  if (yuan_status st = yuan::api::CheckIdleOrOwnThread(job, "yuan_train_job_export"); st != YUAN_OK) {
    return st;
  }
  if (absl::Status s = job->job->Export(path == nullptr ? "" : path); !s.ok()) return Fail(s);
  return Ok();
  YUAN_API_END
}

yuan_status yuan_train_job_save_checkpoint(yuan_train_job* job, const char* path) {
  YUAN_API_BEGIN
  if (yuan_status st = yuan::api::CheckIdleOrOwnThread(job, "yuan_train_job_save_checkpoint");
      st != YUAN_OK) {
    return st;
  }
  if (absl::Status s = job->job->SaveCheckpoint(path == nullptr ? "" : path); !s.ok()) return Fail(s);
  return Ok();
  YUAN_API_END
}

yuan_status yuan_train_job_progress(const yuan_train_job* job, yuan_train_progress* progress) {
  YUAN_API_BEGIN
  if (yuan_status st = yuan::api::CheckIdleOrOwnThread(job, "yuan_train_job_progress");
      st != YUAN_OK) {
    return st;
  }
  auto* j = const_cast<yuan_train_job*>(job);
  yuan::train::Progress p;
  {
    std::lock_guard<std::mutex> lock(j->mu);
    if (j->has_last) {
      p = j->last;
    } else if (!j->job->log().empty()) {
      p.row = j->job->log().back();  // resumed, not run yet
    } else {
      p.row.loss = std::numeric_limits<double>::quiet_NaN();
    }
  }
  p.total_steps = j->job->total_steps();
  if (!j->has_last) p.row.step = j->job->step();
  const yuan_status st = yuan::api::WriteStruct(
      yuan::api::ToProgress(p), yuan::api::kTrainProgressV1Size, "yuan_train_progress", progress);
  return st == YUAN_OK ? Ok() : st;
  YUAN_API_END
}

void yuan_train_info_init(yuan_train_info* info) {
  if (info == nullptr) return;
  std::memset(static_cast<void*>(info), 0, yuan::api::kTrainInfoV1Size);
  info->struct_size = static_cast<uint32_t>(yuan::api::kTrainInfoV1Size);
}

yuan_status yuan_train_job_info(const yuan_train_job* job, yuan_train_info* info) {
  YUAN_API_BEGIN
  if (yuan_status st = yuan::api::CheckIdleOrOwnThread(job, "yuan_train_job_info"); st != YUAN_OK) {
    return st;
  }
  auto* j = const_cast<yuan_train_job*>(job);
  const yuan::train::Dataset& data = j->job->dataset();
  yuan_train_info v;
  std::memset(&v, 0, sizeof v);
  v.struct_size = static_cast<uint32_t>(sizeof v);
  v.n_train_examples = static_cast<int64_t>(data.train.size());
  v.n_eval_examples = static_cast<int64_t>(data.eval.size());
  v.n_skipped = data.n_skipped;
  v.n_trainable = j->job->model().n_trainable();
  v.total_steps = j->job->total_steps();
  const yuan_status st =
      yuan::api::WriteStruct(v, yuan::api::kTrainInfoV1Size, "yuan_train_info", info);
  return st == YUAN_OK ? Ok() : st;
  YUAN_API_END
}

void yuan_train_job_free(yuan_train_job* job) {
  if (job == nullptr) return;
  try {
    {
      if (!yuan::api::TrainJobs().Contains(job)) {
        Fail(YUAN_ERR_INVALID_ARGUMENT, "yuan_train_job_free: not a live job handle");
        return;
      }
      std::lock_guard<std::mutex> lock(job->mu);
      if (job->running) {
        Fail(YUAN_ERR_FAILED_PRECONDITION,
             "yuan_train_job_free: the job is running (cancel it and wait for yuan_train_job_run)");
        return;
      }
    }
    if (!yuan::api::TrainJobs().Remove(job)) return;
    job->magic.store(0, std::memory_order_relaxed);
    delete job;
  } catch (...) {
    // Nothing may escape; a failure to free leaks rather than crashes.
  }
}

}  // extern "C"

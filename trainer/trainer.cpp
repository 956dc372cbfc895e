#include "trainer/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>
#include <thread>

#include "nlohmann/json.hpp"
#include "runtime/core/status.h"
#include "runtime/tokenizer/tokenizer.h"

namespace yuan::train {
namespace {

constexpr char kTrainerVersion[] = "yuan-trainer 0.1.0";
constexpr char kCheckpointMagic[8] = {'Y', 'U', 'A', 'N', 'T', 'C', 'K', '1'};
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

using Json = nlohmann::ordered_json;

uint64_t Mix(uint64_t x) {  // SplitMix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t Fnv1a(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

const char* ModeName(Mode m) {
  switch (m) {
    case Mode::kLora: return "lora";
    case Mode::kPartial: return "partial";
    case Mode::kFull: return "full";
  }
  return "?";
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(),
                                                suffix.data(), suffix.size()) == 0;
}

// Everything a run's curve depends on. A checkpoint stores it, and resuming
// requires the same values (paths, threads and logging cadence may differ:
// results do not depend on them).
Json Fingerprint(const TrainOptions& o, const Dataset& data, uint64_t base_hash) {
  Json f;
  f["base_content_hash"] = absl::StrFormat("%016x", base_hash);
  f["data_hash"] = data.content_hash;
  f["n_train_examples"] = data.train.size();
  f["n_eval_examples"] = data.eval.size();
  f["seq_len"] = o.data.seq_len;
  f["eval_fraction"] = o.data.eval_fraction;
  f["mode"] = ModeName(o.spec.mode);
  if (o.spec.mode == Mode::kLora) {
    f["lora_rank"] = o.spec.lora.rank;
    f["lora_alpha"] = o.spec.lora.alpha;
    f["lora_dropout"] = o.spec.lora.dropout;
    f["use_rslora"] = o.spec.lora.use_rslora;
    f["lora_targets"] = o.spec.lora.targets;
  }
  if (o.spec.mode == Mode::kPartial) {
    f["top_layers"] = o.spec.top_layers;
    f["train_head"] = o.spec.train_head;
  }
  if (o.spec.mode == Mode::kFull) {
    f["random_init"] = o.spec.random_init;
    f["init_std"] = o.spec.init_std;
  }
  f["lr"] = o.adamw.lr;
  f["beta1"] = o.adamw.beta1;
  f["beta2"] = o.adamw.beta2;
  f["eps"] = o.adamw.eps;
  f["weight_decay"] = o.adamw.weight_decay;
  f["min_lr_ratio"] = o.min_lr_ratio;
  f["warmup_steps"] = o.warmup_steps;
  f["batch_rows"] = o.batch_rows;
  f["grad_accum"] = o.grad_accum;
  f["epochs"] = o.epochs;
  f["max_steps"] = o.max_steps;
  f["clip_norm"] = o.clip_norm;
  f["seed"] = o.seed;
  return f;
}

Json RowToJson(const LogRow& r) {
  Json j;
  j["step"] = r.step;
  j["epoch"] = r.epoch;
  j["loss"] = r.loss;
  j["eval_loss"] = r.eval_loss ? Json(*r.eval_loss) : Json(nullptr);
  j["lr"] = r.lr;
  j["grad_norm"] = r.grad_norm;
  j["tokens"] = r.tokens;
  j["tokens_per_s"] = r.tokens_per_s;
  j["elapsed_s"] = r.elapsed_s;
  return j;
}

LogRow RowFromJson(const Json& j) {
  LogRow r;
  r.step = j.at("step").get<int64_t>();
  r.epoch = j.at("epoch").get<double>();
  r.loss = j.at("loss").get<double>();
  if (!j.at("eval_loss").is_null()) r.eval_loss = j.at("eval_loss").get<double>();
  r.lr = j.at("lr").get<double>();
  r.grad_norm = j.at("grad_norm").get<double>();
  r.tokens = j.at("tokens").get<int64_t>();
  r.tokens_per_s = j.at("tokens_per_s").get<double>();
  r.elapsed_s = j.at("elapsed_s").get<double>();
  return r;
}

// Writes `bytes` to path via a temporary file and a rename, so a crash or a
// second Ctrl-C mid-write never leaves a half-written checkpoint behind.
absl::Status WriteFileAtomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) return absl::DataLossError(absl::StrCat("writing ", tmp, " failed (disk full?)"));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace

struct TrainJob::Impl {
  TrainOptions options;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  Dataset data;
  std::vector<Batch> eval_batches;
  std::unique_ptr<TrainableModel> trainable;
  std::unique_ptr<AdamW> adamw;
  ScheduleOptions schedule;
  Json fingerprint;

  // Micro-batches of each epoch (counted once: packing depends on the
  // epoch's order), and the run's length in optimizer steps.
  std::vector<int64_t> epoch_batches;
  int64_t total_steps = 0;

  // Where the run is: steps done, and the next micro-batch (epoch, index).
  int64_t step = 0;
  int64_t epoch = 0;
  int64_t batch_index = 0;
  int64_t tokens = 0;
  double elapsed_s = 0.0;  // training time of earlier runs of this job (resume)
  double initial_eval = kNaN;
  std::vector<LogRow> log;
  std::atomic<bool> cancel{false};

  // The current epoch's packed micro-batches.
  int64_t packed_epoch = -1;
  std::vector<Batch> batches;

  const std::vector<Batch>& EpochBatches(int64_t e) {
    if (packed_epoch != e) {
      batches = PackBatches(data.train, ShuffledOrder(static_cast<int64_t>(data.train.size()),
                                                      options.seed, e),
                            options.data.seq_len, options.batch_rows);
      packed_epoch = e;
    }
    return batches;
  }
  int64_t BatchesIn(int64_t e) {
    if (e < static_cast<int64_t>(epoch_batches.size())) return epoch_batches[e];
    return static_cast<int64_t>(EpochBatches(e).size());
  }

  std::string LogPath() const {
    return options.log_path.empty() ? options.out_path + ".csv" : options.log_path;
  }
  std::string CheckpointPath() const {
    return options.checkpoint_path.empty() ? options.out_path + ".ckpt" : options.checkpoint_path;
  }
  static std::string PlotPath(const std::string& csv) {
    return EndsWith(csv, ".csv") ? csv.substr(0, csv.size() - 4) + ".png" : csv + ".png";
  }
  absl::Status WriteLog(bool plot) const {
    if (options.out_path.empty() && options.log_path.empty()) return absl::OkStatus();
    YUAN_RETURN_IF_ERROR(WriteLossCsv(LogPath(), log));
    if (plot && !log.empty()) YUAN_RETURN_IF_ERROR(WriteLossPlot(PlotPath(LogPath()), log));
    return absl::OkStatus();
  }

  absl::StatusOr<double> Eval() {
    if (eval_batches.empty()) return kNaN;
    double loss = 0.0;
    int64_t n = 0;
    for (const Batch& b : eval_batches) {
      YUAN_ASSIGN_OR_RETURN(LossSum s, trainable->Evaluate(b));
      loss += s.loss;
      n += s.n_targets;
    }
    return n > 0 ? loss / static_cast<double>(n) : kNaN;
  }

  absl::Status SaveCheckpoint(const std::string& path) const;
  absl::Status LoadCheckpoint(const std::string& path);
  absl::Status Export(const std::string& path) const;
};

TrainJob::TrainJob(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TrainJob::~TrainJob() = default;

absl::StatusOr<std::unique_ptr<TrainJob>> TrainJob::Create(const TrainOptions& o) {
  if (o.model_path.empty()) return absl::InvalidArgumentError("no base model given");
  if (o.data_path.empty()) return absl::InvalidArgumentError("no training data given");
  if (o.batch_rows < 1) return absl::InvalidArgumentError("batch_rows must be at least 1");
  if (o.grad_accum < 1) return absl::InvalidArgumentError("grad_accum must be at least 1");
  if (o.max_steps < 0) return absl::InvalidArgumentError("max_steps must not be negative");
  if (o.max_steps == 0 && o.epochs < 1) {
    return absl::InvalidArgumentError("epochs must be at least 1 (or give max_steps)");
  }
  if (o.warmup_steps < 0) return absl::InvalidArgumentError("warmup_steps must not be negative");
  if (!(o.adamw.lr > 0.0f) || !std::isfinite(o.adamw.lr)) {
    return absl::InvalidArgumentError("the learning rate must be a positive number");
  }
  if (!(o.min_lr_ratio >= 0.0f && o.min_lr_ratio <= 1.0f)) {
    return absl::InvalidArgumentError("min_lr_ratio must be in [0, 1]");
  }
  if (o.eval_every < 0 || o.checkpoint_every < 0) {
    return absl::InvalidArgumentError("eval_every and checkpoint_every must not be negative");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = o;
  Impl& s = *impl;
  int threads = o.threads;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  s.pool = std::make_unique<ThreadPool>(threads);

  YUAN_ASSIGN_OR_RETURN(s.model, Model::Open(o.model_path));
  YUAN_ASSIGN_OR_RETURN(s.tokenizer, Tokenizer::FromGguf(s.model->gguf()));

  DataOptions data_options = o.data;
  data_options.seed = o.seed;
  if (!o.eval_path.empty()) data_options.eval_fraction = 0.0;
  YUAN_ASSIGN_OR_RETURN(s.data, LoadDataset(o.data_path, *s.tokenizer, s.model->gguf(), data_options));
  if (!o.eval_path.empty()) {
    DataOptions eval_options = data_options;
    YUAN_ASSIGN_OR_RETURN(Dataset eval,
                          LoadDataset(o.eval_path, *s.tokenizer, s.model->gguf(), eval_options));
    s.data.eval = std::move(eval.train);
    s.data.n_skipped += eval.n_skipped;
  }
  if (s.data.train.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(o.data_path, ": no training examples"));
  }
  std::vector<int64_t> eval_order(s.data.eval.size());
  for (size_t i = 0; i < eval_order.size(); ++i) eval_order[i] = static_cast<int64_t>(i);
  s.eval_batches = PackBatches(s.data.eval, eval_order, o.data.seq_len, o.batch_rows);

  TrainSpec spec = o.spec;
  spec.seed = o.seed;
  YUAN_ASSIGN_OR_RETURN(s.trainable, TrainableModel::Create(*s.model, spec, s.pool.get()));
  s.adamw = std::make_unique<AdamW>(o.adamw, s.trainable->params());

  // The run's length: whole epochs of micro-batches, grad_accum per step
  // (the last step of the run may take fewer).
  if (o.max_steps > 0) {
    s.total_steps = o.max_steps;
  } else {
    int64_t micro = 0;
    for (int64_t e = 0; e < o.epochs; ++e) {
      s.epoch_batches.push_back(static_cast<int64_t>(s.EpochBatches(e).size()));
      micro += s.epoch_batches.back();
    }
    s.total_steps = (micro + o.grad_accum - 1) / o.grad_accum;
  }
  s.schedule = ScheduleOptions{o.warmup_steps, s.total_steps, o.min_lr_ratio};
  s.fingerprint = Fingerprint(o, s.data, BaseContentHash(s.model->gguf()));

  if (!o.resume_from.empty()) YUAN_RETURN_IF_ERROR(s.LoadCheckpoint(o.resume_from));
  return std::unique_ptr<TrainJob>(new TrainJob(std::move(impl)));
}

absl::Status TrainJob::Run(const std::function<bool(const Progress&)>& on_step) {
  Impl& s = *impl_;
  const TrainOptions& o = s.options;
  if (s.step == 0 && std::isnan(s.initial_eval)) {
    YUAN_ASSIGN_OR_RETURN(s.initial_eval, s.Eval());
  }
  using Clock = std::chrono::steady_clock;
  const auto run_start = Clock::now();
  const double elapsed0 = s.elapsed_s;
  const int64_t step0 = s.step;
  std::vector<Param>& params = s.trainable->params();

  auto cancelled = [&]() -> absl::Status {
    YUAN_RETURN_IF_ERROR(s.SaveCheckpoint(s.CheckpointPath()));
    YUAN_RETURN_IF_ERROR(s.WriteLog(true));
    return absl::CancelledError(absl::StrCat("training cancelled after step ", s.step,
                                             "; checkpoint written to ", s.CheckpointPath()));
  };

  while (s.step < s.total_steps) {
    if (s.cancel.load(std::memory_order_relaxed)) return cancelled();
    // This step's micro-batches, continuing across epochs; the cursor only
    // moves once the step is complete, so a cancelled step is redone whole.
    // (Copies: crossing into the next epoch repacks the batch list.)
    std::vector<Batch> held;
    held.reserve(static_cast<size_t>(o.grad_accum));
    int64_t e = s.epoch, bi = s.batch_index;
    const bool epochs_bounded = o.max_steps == 0;
    while (static_cast<int64_t>(held.size()) < o.grad_accum) {
      if (bi >= s.BatchesIn(e)) {
        if (epochs_bounded && e + 1 >= o.epochs) break;
        ++e;
        bi = 0;
        continue;
      }
      held.push_back(s.EpochBatches(e)[bi]);
      ++bi;
    }
    if (held.empty()) break;  // the data ran out (epochs_bounded rounding)
    int64_t n_targets = 0;
    for (const Batch& b : held) {
      for (int32_t t : b.targets) n_targets += t >= 0 ? 1 : 0;
    }
    const float grad_scale = n_targets > 0 ? 1.0f / static_cast<float>(n_targets) : 0.0f;
    s.trainable->ZeroGrad();
    double loss = 0.0;
    int64_t tokens = 0;
    for (size_t i = 0; i < held.size(); ++i) {
      if (s.cancel.load(std::memory_order_relaxed)) return cancelled();
      const uint64_t dropout_seed = Mix(Mix(o.seed ^ 0xD50Full) + static_cast<uint64_t>(s.step) * 64 + i);
      YUAN_ASSIGN_OR_RETURN(LossSum ls, s.trainable->ForwardBackward(held[i], grad_scale, dropout_seed));
      loss += ls.loss;
      tokens += held[i].n_rows * held[i].seq_len;
    }
    const double grad_norm = ClipGradNorm(&params, o.clip_norm > 0 ? o.clip_norm : 0.0);
    const float lr = ScheduledLr(o.adamw.lr, s.schedule, s.step);
    s.adamw->Step(&params, lr, s.pool.get());
    s.trainable->ParamsChanged();
    s.step += 1;
    s.epoch = e;
    s.batch_index = bi;
    s.tokens += tokens;

    LogRow row;
    row.step = s.step;
    const int64_t in_epoch = std::max<int64_t>(1, s.BatchesIn(e));
    row.epoch = static_cast<double>(e) + static_cast<double>(bi) / static_cast<double>(in_epoch);
    row.loss = n_targets > 0 ? loss / static_cast<double>(n_targets) : kNaN;
    row.lr = lr;
    row.grad_norm = grad_norm;
    row.tokens = s.tokens;
    const double run_s = std::chrono::duration<double>(Clock::now() - run_start).count();
    row.elapsed_s = elapsed0 + run_s;
    row.tokens_per_s = run_s > 0 ? static_cast<double>(s.tokens) / row.elapsed_s : 0.0;
    const bool last = s.step == s.total_steps;
    const bool eval_now =
        !s.eval_batches.empty() && (last || (o.eval_every > 0 && s.step % o.eval_every == 0));
    if (eval_now) {
      YUAN_ASSIGN_OR_RETURN(double ev, s.Eval());
      row.eval_loss = ev;
    }
    s.log.push_back(row);
    s.elapsed_s = row.elapsed_s;
    YUAN_RETURN_IF_ERROR(s.WriteLog(eval_now || last));
    if (o.checkpoint_every > 0 && s.step % o.checkpoint_every == 0 && !last) {
      YUAN_RETURN_IF_ERROR(s.SaveCheckpoint(s.CheckpointPath()));
      YUAN_RETURN_IF_ERROR(s.WriteLog(true));
    }
    if (on_step) {
      Progress p;
      p.row = row;
      p.total_steps = s.total_steps;
      const double per_step = run_s / static_cast<double>(s.step - step0);
      p.eta_s = per_step * static_cast<double>(s.total_steps - s.step);
      if (!on_step(p)) s.cancel.store(true, std::memory_order_relaxed);
    }
  }
  if (s.total_steps > s.step) s.total_steps = s.step;  // data ran out early
  YUAN_RETURN_IF_ERROR(s.WriteLog(true));
  if (!o.out_path.empty()) YUAN_RETURN_IF_ERROR(s.Export(o.out_path));
  if (s.cancel.load(std::memory_order_relaxed)) return cancelled();
  return absl::OkStatus();
}

void TrainJob::Cancel() { impl_->cancel.store(true, std::memory_order_relaxed); }

absl::Status TrainJob::Export(const std::string& path) const {
  return impl_->Export(path.empty() ? impl_->options.out_path : path);
}

absl::Status TrainJob::Impl::Export(const std::string& path) const {
  if (path.empty()) return absl::InvalidArgumentError("no output path given");
  if (options.spec.mode != Mode::kLora) return trainable->ExportModel(path);
  YUAN_ASSIGN_OR_RETURN(LoraAdapter adapter, trainable->ExportAdapter());
  adapter.provenance.trainer_version = kTrainerVersion;
  adapter.provenance.data_hash = data.content_hash;
  adapter.provenance.steps = step;
  adapter.provenance.created_unix = static_cast<int64_t>(std::time(nullptr));
  adapter.provenance.source = "yuan-trainer";
  // The file kind follows the name: .gguf is llama.cpp's LoRA layout, a
  // name without .yadp a PEFT folder, else our own format.
  if (EndsWith(path, ".gguf")) return ExportGgufLora(adapter, path);
  if (!EndsWith(path, ".yadp")) return ExportPeft(adapter, path);
  return SaveAdapter(adapter, path);
}

// ---- checkpoints ------------------------------------------------------------
//
// "YUANTCK1", u64 header length, the header (JSON: fingerprint, position,
// AdamW step, log, and the name and size of each param), then per param its
// values, AdamW m and v (f32), and last an FNV-1a 64 of all bytes before it.

absl::Status TrainJob::SaveCheckpoint(const std::string& path) const {
  return impl_->SaveCheckpoint(path.empty() ? impl_->CheckpointPath() : path);
}

absl::Status TrainJob::Impl::SaveCheckpoint(const std::string& path) const {
  if (path.empty()) return absl::InvalidArgumentError("no checkpoint path given");
  const std::vector<Param>& params = trainable->params();
  Json h;
  h["format"] = 1;
  h["trainer"] = kTrainerVersion;
  h["fingerprint"] = fingerprint;
  h["step"] = step;
  h["epoch"] = epoch;
  h["batch_index"] = batch_index;
  h["tokens"] = tokens;
  h["elapsed_s"] = elapsed_s;
  h["initial_eval_loss"] = std::isnan(initial_eval) ? Json(nullptr) : Json(initial_eval);
  h["adam_step"] = adamw->step();
  Json rows = Json::array();
  for (const LogRow& r : log) rows.push_back(RowToJson(r));
  h["log"] = rows;
  Json ps = Json::array();
  for (const Param& p : params) ps.push_back(Json{{"name", p.name}, {"n", p.value.size()}});
  h["params"] = ps;
  const std::string header = h.dump();
  std::string bytes(kCheckpointMagic, sizeof kCheckpointMagic);
  const uint64_t hlen = header.size();
  bytes.append(reinterpret_cast<const char*>(&hlen), sizeof hlen);
  bytes += header;
  auto& self = const_cast<Impl&>(*this);  // AdamW's accessors are not const
  for (size_t i = 0; i < params.size(); ++i) {
    const size_t n = params[i].value.size() * sizeof(float);
    bytes.append(reinterpret_cast<const char*>(params[i].value.data()), n);
    bytes.append(reinterpret_cast<const char*>(self.adamw->m()[i].data()), n);
    bytes.append(reinterpret_cast<const char*>(self.adamw->v()[i].data()), n);
  }
  const uint64_t sum = Fnv1a(bytes.data(), bytes.size());
  bytes.append(reinterpret_cast<const char*>(&sum), sizeof sum);
  return WriteFileAtomic(path, bytes);
}

absl::Status TrainJob::Impl::LoadCheckpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open checkpoint ", path));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a usable checkpoint: ", Sv(why)));
  };
  if (bytes.size() < sizeof kCheckpointMagic + 16 ||
      std::memcmp(bytes.data(), kCheckpointMagic, sizeof kCheckpointMagic) != 0) {
    return bad("wrong magic (not a yuan training checkpoint)");
  }
  uint64_t sum = 0;
  std::memcpy(&sum, bytes.data() + bytes.size() - sizeof sum, sizeof sum);
  if (Fnv1a(bytes.data(), bytes.size() - sizeof sum) != sum) {
    return bad("checksum mismatch (truncated or corrupt)");
  }
  uint64_t hlen = 0;
  std::memcpy(&hlen, bytes.data() + sizeof kCheckpointMagic, sizeof hlen);
  const size_t body = sizeof kCheckpointMagic + sizeof hlen;
  if (hlen > bytes.size() - body - sizeof sum) return bad("header length out of range");
  Json h = Json::parse(bytes.begin() + body, bytes.begin() + body + static_cast<int64_t>(hlen),
                       nullptr, /*allow_exceptions=*/false);
  if (h.is_discarded() || !h.is_object()) return bad("header is not JSON");
  try {
    if (h.at("format").get<int>() != 1) return bad("unknown format version");
    const Json& f = h.at("fingerprint");
    for (auto it = fingerprint.begin(); it != fingerprint.end(); ++it) {
      if (!f.contains(it.key()) || f.at(it.key()) != it.value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cannot resume from ", path, ": it was made with ", it.key(), " = ",
            f.contains(it.key()) ? f.at(it.key()).dump() : std::string("(none)"),
            ", this run has ", it.value().dump()));
      }
    }
    std::vector<Param>& params = trainable->params();
    const Json& ps = h.at("params");
    if (!ps.is_array() || ps.size() != params.size()) return bad("parameter count differs");
    size_t off = body + hlen;
    const size_t end = bytes.size() - sizeof sum;
    for (size_t i = 0; i < params.size(); ++i) {
      if (ps[i].at("name").get<std::string>() != params[i].name ||
          ps[i].at("n").get<uint64_t>() != params[i].value.size()) {
        return bad(absl::StrCat("parameter ", i, " is not ", params[i].name));
      }
      const size_t n = params[i].value.size() * sizeof(float);
      if (end - off < 3 * n) return bad("parameter data is truncated");
      std::memcpy(params[i].value.data(), bytes.data() + off, n);
      std::memcpy(adamw->m()[i].data(), bytes.data() + off + n, n);
      std::memcpy(adamw->v()[i].data(), bytes.data() + off + 2 * n, n);
      off += 3 * n;
    }
    if (off != end) return bad("trailing bytes after the parameters");
    adamw->set_step(h.at("adam_step").get<int64_t>());
    step = h.at("step").get<int64_t>();
    epoch = h.at("epoch").get<int64_t>();
    batch_index = h.at("batch_index").get<int64_t>();
    tokens = h.at("tokens").get<int64_t>();
    elapsed_s = h.at("elapsed_s").get<double>();
    initial_eval = h.at("initial_eval_loss").is_null() ? kNaN
                                                       : h.at("initial_eval_loss").get<double>();
    log.clear();
    for (const Json& r : h.at("log")) log.push_back(RowFromJson(r));
  } catch (const Json::exception& e) {
    return bad(e.what());
  }
  if (step < 0 || step > total_steps || epoch < 0 || batch_index < 0 ||
      batch_index > BatchesIn(epoch)) {
    return bad("position out of range");
  }
  trainable->ParamsChanged();
  return absl::OkStatus();
}

// ---- accessors ----------------------------------------------------------------

const TrainOptions& TrainJob::options() const { return impl_->options; }
int64_t TrainJob::step() const { return impl_->step; }
int64_t TrainJob::total_steps() const { return impl_->total_steps; }
const std::vector<LogRow>& TrainJob::log() const { return impl_->log; }
const Dataset& TrainJob::dataset() const { return impl_->data; }
TrainableModel& TrainJob::model() { return *impl_->trainable; }
absl::StatusOr<double> TrainJob::EvalLoss() { return impl_->Eval(); }
double TrainJob::initial_eval_loss() const { return impl_->initial_eval; }

}  // namespace yuan::train

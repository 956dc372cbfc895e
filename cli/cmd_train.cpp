// yuan train -m MODEL --data FILE -o OUT: fine-tunes (LoRA, partial) or
// trains (full, from scratch with --random-init) through the public C API
// (yuan/train.h), printing a progress line per step. Ctrl-C stops after the
// step in progress and writes a checkpoint to resume from; a second Ctrl-C
// quits at once.
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "cli/args.h"
#include "trainer/log.h"
#include "yuan/train.h"
#include "yuan/yuan.h"

namespace yuan::cli {
namespace {

// The running job, for the SIGINT handler.
yuan_train_job* volatile g_job = nullptr;
volatile std::sig_atomic_t g_interrupts = 0;
// On a terminal the progress line has no newline yet (it is redrawn).
volatile std::sig_atomic_t g_tty = 0;

void WriteStderr(const char* s) {
  // write(2), not stdio: this runs in a signal handler.
  ssize_t unused = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)unused;
}

void OnSigint(int) {
  g_interrupts = g_interrupts + 1;
  if (g_interrupts >= 2) {
    if (g_tty) WriteStderr("\n");
    WriteStderr("yuan train: interrupted again, quitting without a checkpoint\n");
    ::_exit(130);
  }
  yuan_train_job_cancel(g_job);
  if (g_tty) WriteStderr("\n");
  WriteStderr("yuan train: stopping after this step to write a checkpoint (Ctrl-C again to quit at once)\n");
}

struct ProgressState {
  bool tty = false;
  bool open_line = false;  // a redrawn line without its newline yet (tty)
};

int OnStep(const yuan_train_progress* p, void* user) {
  auto* s = static_cast<ProgressState*>(user);
  train::LogRow row;
  row.step = p->step;
  row.epoch = p->epoch;
  row.loss = p->loss;
  if (!std::isnan(p->eval_loss)) row.eval_loss = p->eval_loss;
  row.lr = p->lr;
  row.grad_norm = p->grad_norm;
  row.tokens = p->tokens;
  row.tokens_per_s = p->tokens_per_s;
  row.elapsed_s = p->elapsed_s;
  const std::string line = train::ProgressLine(row, p->total_steps, p->eta_s);
  // On a terminal the line is redrawn in place, except steps that evaluated,
  // which stay on screen; in a log file every step is its own line.
  if (s->tty) {
    std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), row.eval_loss ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
  s->open_line = s->tty && !row.eval_loss;
  return 0;
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

int TrainCommand(int argc, char** argv) {
  yuan_train_options d;
  yuan_train_options_init(&d);

  std::string model, data, eval_data, mode = "lora", targets = "q,k,v,o,gate,up,down", out, log,
              checkpoint, resume, chat_template, data_kind = "auto";
  int64_t rank = d.lora_rank, top_layers = d.top_layers, seq_len = d.seq_len,
          batch = d.batch_rows, grad_accum = d.grad_accum, epochs = d.epochs, steps = d.max_steps,
          warmup = d.warmup_steps, eval_every = d.eval_every, checkpoint_every = d.checkpoint_every,
          threads = d.threads, seed = static_cast<int64_t>(d.seed);
  double alpha = d.lora_alpha, dropout = d.lora_dropout, lr = d.lr, min_lr_ratio = d.min_lr_ratio,
         weight_decay = d.weight_decay, clip = d.clip_norm, eval_split = d.eval_fraction;
  bool rslora = false, train_head = false, random_init = false, skip_bad = false;

  ArgParser p("train", "-m MODEL --data FILE -o OUT [options]");
  p.Add({"-m", "--model"}, "base model (GGUF); with --random-init only its shapes and tokenizer", &model);
  p.Add({"--data"}, "training data: chat JSONL ({\"messages\": [...]} per line) or plain text", &data);
  p.Add({"--eval-data"}, "separate evaluation data (default: --eval-split of --data)", &eval_data);
  p.Add({"--data-kind"}, "auto|chat|text (default auto: .jsonl is chat, else text)", &data_kind);
  p.Add({"-o", "--output", "--out"}, "result: adapter .yadp (lora) or model .gguf (partial, full)", &out);
  p.Add({"--mode"}, "lora|partial|full (default lora)", &mode);
  p.Add({"--lora-rank"}, "LoRA rank (default " + Num(d.lora_rank) + ")", &rank);
  p.Add({"--lora-alpha"}, "LoRA alpha (default " + Num(d.lora_alpha) + ")", &alpha);
  p.Add({"--lora-dropout"}, "dropout on the LoRA input (default " + Num(d.lora_dropout) + ")", &dropout);
  p.Add({"--lora-targets"}, "projections to adapt (default " + targets + ")", &targets);
  p.Add({"--rslora"}, "scale LoRA by alpha / sqrt(rank) instead of alpha / rank", &rslora);
  p.Add({"--top-layers"}, "partial: how many of the last layers train", &top_layers);
  p.Add({"--train-head"}, "partial: the output norm and head train too", &train_head);
  p.Add({"--random-init"}, "full: start from random values (pre-training)", &random_init);
  p.Add({"-c", "--ctx-size"}, "tokens per training row (default " + Num(d.seq_len) + ")", &seq_len);
  p.Add({"-b", "--batch"}, "rows per micro-batch (default " + Num(d.batch_rows) + ")", &batch);
  p.Add({"--grad-accum"}, "micro-batches per step (default " + Num(d.grad_accum) + ")", &grad_accum);
  p.Add({"--epochs"}, "passes over the data (default " + Num(d.epochs) + ")", &epochs);
  p.Add({"--steps"}, "stop after N optimizer steps (default: --epochs decides)", &steps);
  p.Add({"--lr"}, "peak learning rate (default " + Num(d.lr) + ")", &lr);
  p.Add({"--min-lr-ratio"}, "cosine floor as a share of --lr (default " + Num(d.min_lr_ratio) + ")",
        &min_lr_ratio);
  p.Add({"--warmup"}, "linear warmup steps (default " + Num(d.warmup_steps) + ")", &warmup);
  p.Add({"--weight-decay"}, "AdamW weight decay (default " + Num(d.weight_decay) + ")", &weight_decay);
  p.Add({"--clip"}, "gradient norm clip, 0 = off (default " + Num(d.clip_norm) + ")", &clip);
  p.Add({"--eval-split"}, "share of --data held out for evaluation, 0-0.5 (default 0)", &eval_split);
  p.Add({"--eval-every"}, "evaluate every N steps (default: at the end)", &eval_every);
  p.Add({"-s", "--seed"}, "seed of data order, split and initialisation (default " + Num(d.seed) + ")",
        &seed);
  p.Add({"-t", "--threads"}, "compute threads (default: all cores)", &threads);
  p.Add({"--log"}, "loss CSV, plotted next to it as .png (default OUT.csv)", &log);
  p.Add({"--checkpoint"}, "checkpoint file (default OUT.ckpt)", &checkpoint);
  p.Add({"--checkpoint-every"}, "write the checkpoint every N steps (default: only on Ctrl-C)",
        &checkpoint_every);
  p.Add({"--resume"}, "continue from a checkpoint (give the same options)", &resume);
  p.Add({"--skip-bad-lines"}, "leave out bad data lines (counted) instead of failing", &skip_bad);
  p.Add({"--chat-template"},
        "chat data's template: a built-in name, Jinja file or source (default: the model's, else chatml)",
        &chat_template);
  if (int rc = p.Parse(argc, argv, 2); rc >= 0) return rc;
  if (!p.positional().empty()) return p.UsageError("unexpected argument '" + p.positional()[0] + "'");
  if (model.empty()) return p.UsageError("no model given (-m MODEL)");
  if (data.empty()) return p.UsageError("no training data given (--data FILE)");
  if (out.empty()) return p.UsageError("no output given (-o OUT: .yadp for lora, .gguf otherwise)");

  yuan_train_options o = d;
  if (mode == "lora") {
    o.mode = YUAN_TRAIN_LORA;
  } else if (mode == "partial") {
    o.mode = YUAN_TRAIN_PARTIAL;
  } else if (mode == "full") {
    o.mode = YUAN_TRAIN_FULL;
  } else {
    return p.UsageError("--mode must be lora, partial or full, not '" + mode + "'");
  }
  if (data_kind == "auto") {
    o.data_kind = YUAN_TRAIN_DATA_AUTO;
  } else if (data_kind == "chat") {
    o.data_kind = YUAN_TRAIN_DATA_CHAT;
  } else if (data_kind == "text") {
    o.data_kind = YUAN_TRAIN_DATA_TEXT;
  } else {
    return p.UsageError("--data-kind must be auto, chat or text, not '" + data_kind + "'");
  }
  // Ranges the user can get wrong by typing are usage errors (exit 2) named
  // by flag; the library checks the same and what needs the model or data.
  if (rank < 1 || rank > 65536) return p.UsageError("--lora-rank must be in [1, 65536]");
  if (!(alpha > 0) || !std::isfinite(alpha)) return p.UsageError("--lora-alpha must be > 0");
  if (!(dropout >= 0 && dropout < 1)) return p.UsageError("--lora-dropout must be in [0, 1)");
  if (top_layers < 0 || top_layers > 1 << 20) return p.UsageError("--top-layers must not be negative");
  if (o.mode == YUAN_TRAIN_PARTIAL && top_layers < 1) {
    return p.UsageError("--mode partial needs --top-layers N (N >= 1)");
  }
  if (random_init && o.mode != YUAN_TRAIN_FULL) return p.UsageError("--random-init needs --mode full");
  if (seq_len < 2) return p.UsageError("-c must be at least 2");
  if (batch < 1 || grad_accum < 1) return p.UsageError("-b and --grad-accum must be at least 1");
  if (epochs < 1) return p.UsageError("--epochs must be at least 1");
  if (steps < 0 || warmup < 0 || eval_every < 0 || checkpoint_every < 0) {
    return p.UsageError("--steps, --warmup, --eval-every and --checkpoint-every must not be negative");
  }
  if (!(lr > 0) || !std::isfinite(lr)) return p.UsageError("--lr must be > 0");
  if (!(min_lr_ratio >= 0 && min_lr_ratio <= 1)) return p.UsageError("--min-lr-ratio must be in [0, 1]");
  if (!(weight_decay >= 0) || !std::isfinite(weight_decay)) {
    return p.UsageError("--weight-decay must not be negative");
  }
  if (std::isnan(clip)) return p.UsageError("--clip must be a number");
  if (!(eval_split >= 0 && eval_split <= 0.5)) return p.UsageError("--eval-split must be in [0, 0.5]");
  if (threads < 0 || threads > 4096) return p.UsageError("-t must not be negative");
  if (!chat_template.empty()) {
    std::ifstream f(chat_template);
    if (f) chat_template.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  // Spelled out here (the library's defaults are the same) so that the
  // messages can name them.
  if (log.empty()) log = out + ".csv";
  if (checkpoint.empty()) checkpoint = out + ".ckpt";

  o.model_path = model.c_str();
  o.data_path = data.c_str();
  o.eval_path = eval_data.empty() ? nullptr : eval_data.c_str();
  o.out_path = out.c_str();
  o.log_path = log.c_str();
  o.checkpoint_path = checkpoint.c_str();
  o.resume_from = resume.empty() ? nullptr : resume.c_str();
  o.chat_template = chat_template.empty() ? nullptr : chat_template.c_str();
  o.lora_targets = targets.c_str();
  o.lora_rank = static_cast<int32_t>(rank);
  o.lora_alpha = alpha;
  o.lora_dropout = dropout;
  o.lora_use_rslora = rslora ? 1 : 0;
  o.top_layers = static_cast<int32_t>(top_layers);
  o.train_head = train_head ? 1 : 0;
  o.random_init = random_init ? 1 : 0;
  o.threads = static_cast<int32_t>(threads);
  o.skip_bad_lines = skip_bad ? 1 : 0;
  o.seq_len = seq_len;
  o.batch_rows = batch;
  o.grad_accum = grad_accum;
  o.eval_fraction = eval_split;
  o.epochs = epochs;
  o.max_steps = steps;
  o.warmup_steps = warmup;
  o.eval_every = eval_every;
  o.checkpoint_every = checkpoint_every;
  o.lr = lr;
  o.min_lr_ratio = min_lr_ratio;
  o.weight_decay = weight_decay;
  o.clip_norm = clip;
  o.seed = static_cast<uint64_t>(seed);

  yuan_train_job* job = nullptr;
  if (yuan_train_job_create(&o, &job) != YUAN_OK) {
    std::fprintf(stderr, "yuan train: %s\n", yuan_last_error());
    return kExitFailure;
  }
  yuan_train_progress start;
  yuan_train_progress_init(&start);
  yuan_train_info info;
  yuan_train_info_init(&info);
  if (yuan_train_job_progress(job, &start) == YUAN_OK && yuan_train_job_info(job, &info) == YUAN_OK) {
    std::string what = mode + ", " + std::to_string(info.n_trainable) + " trainable parameters; " +
                       std::to_string(info.n_train_examples) + " examples";
    if (info.n_eval_examples > 0) what += ", " + std::to_string(info.n_eval_examples) + " for eval";
    if (info.n_skipped > 0) what += ", " + std::to_string(info.n_skipped) + " skipped as bad";
    if (start.step > 0) {
      std::fprintf(stderr, "yuan train: %s; resuming %s at step %lld of %lld\n", what.c_str(),
                   resume.c_str(), static_cast<long long>(start.step),
                   static_cast<long long>(start.total_steps));
    } else {
      std::fprintf(stderr, "yuan train: %s; %lld steps\n", what.c_str(),
                   static_cast<long long>(start.total_steps));
    }
  }

  ProgressState state;
  state.tty = ::isatty(STDERR_FILENO) != 0;
  g_tty = state.tty ? 1 : 0;
  g_job = job;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_sa;
  sigaction(SIGINT, &sa, &old_sa);

  const yuan_status st = yuan_train_job_run(job, OnStep, &state);
  const std::string error = yuan_last_error();
  sigaction(SIGINT, &old_sa, nullptr);
  g_job = nullptr;
  if (state.open_line) std::fputc('\n', stderr);

  yuan_train_progress end;
  yuan_train_progress_init(&end);
  yuan_train_job_progress(job, &end);
  yuan_train_job_free(job);
  if (st == YUAN_ERR_CANCELLED) {
    std::fprintf(stderr,
                 "yuan train: stopped at step %lld of %lld; checkpoint written to %s; resume with "
                 "--resume %s (and the same options)\n",
                 static_cast<long long>(end.step), static_cast<long long>(end.total_steps),
                 checkpoint.c_str(), checkpoint.c_str());
    return kExitOk;
  }
  if (st != YUAN_OK) {
    std::fprintf(stderr, "yuan train: %s\n", error.c_str());
    return kExitFailure;
  }
  std::fprintf(stderr, "yuan train: wrote %s after %lld steps (loss log %s, plot %s)\n", out.c_str(),
               static_cast<long long>(end.step), log.c_str(),
               (log.size() > 4 && log.compare(log.size() - 4, 4, ".csv") == 0
                    ? log.substr(0, log.size() - 4) + ".png"
                    : log + ".png")
                   .c_str());
  return kExitOk;
}

}  // namespace yuan::cli

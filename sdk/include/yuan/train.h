/*
 * train.h — fine-tuning and pre-training through the yuan C API.
 *
 * A training job takes a base GGUF model and a data file and produces a LoRA
 * adapter (.yadp, loadable with yuan_adapter_load) or, for partial and full
 * training, a GGUF model. It runs on the CPU, in the calling thread (its
 * compute threads are the library's). See docs/training.md for the data
 * formats, what each mode trains and how checkpoints resume.
 *
 *   yuan_train_options o;
 *   yuan_train_options_init(&o);
 *   o.model_path = "base.gguf";
 *   o.data_path = "chats.jsonl";
 *   o.out_path = "tuned.yadp";
 *   yuan_train_job* job = NULL;
 *   if (yuan_train_job_create(&o, &job) != YUAN_OK) puts(yuan_last_error());
 *   yuan_train_job_run(job, on_step, NULL);   // writes tuned.yadp at the end
 *   yuan_train_job_free(job);
 *
 * The conventions are yuan.h's: yuan_status returns with yuan_last_error(),
 * options structs that begin with struct_size and are filled by their
 * *_init() macro, fields only ever appended, *_free(NULL) a no-op, no
 * exception leaves the library. Pure C11.
 */
#ifndef YUAN_TRAIN_H_
#define YUAN_TRAIN_H_

#include <stddef.h>
#include <stdint.h>

#include "yuan/yuan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What trains. Values never change. */
typedef enum yuan_train_mode {
  /* Low-rank adapters (LoRA) on the chosen projections of every layer; the
   * base stays frozen. Result: a .yadp adapter file. */
  YUAN_TRAIN_LORA = 0,
  /* Every tensor of the top `top_layers` layers (and the output head with
   * train_head). Result: a GGUF model. */
  YUAN_TRAIN_PARTIAL = 1,
  /* Every tensor, token embeddings included; with random_init, from
   * scratch (pre-training). Result: a GGUF model. */
  YUAN_TRAIN_FULL = 2
} yuan_train_mode;

/* The data file's kind. Values never change. */
typedef enum yuan_train_data_kind {
  YUAN_TRAIN_DATA_AUTO = 0,  /* by extension: .jsonl is chat, anything else text */
  YUAN_TRAIN_DATA_CHAT = 1,  /* OpenAI fine-tuning JSONL: {"messages": [...]} per line */
  YUAN_TRAIN_DATA_TEXT = 2   /* plain text, documents separated by a blank line */
} yuan_train_data_kind;

typedef struct yuan_train_options {
  uint32_t struct_size;
  yuan_train_mode mode;          /* default YUAN_TRAIN_LORA */

  /* Files. Strings are borrowed for the duration of yuan_train_job_create
   * (copied). NULL and "" mean "not set". */
  const char* model_path;        /* base GGUF (random_init: its shapes and tokenizer); required */
  const char* data_path;         /* training data; required */
  const char* eval_path;         /* separate eval data; default: eval_fraction of data_path */
  /* The result; required. LoRA: a .yadp adapter (a .gguf name writes
   * llama.cpp's GGUF LoRA, any other name a PEFT folder); partial and full:
   * a GGUF model. */
  const char* out_path;
  const char* log_path;          /* loss CSV (and its .png plot); default <out_path>.csv */
  const char* checkpoint_path;   /* default <out_path>.ckpt */
  const char* resume_from;       /* a checkpoint to continue from; its options must match */
  /* The chat template for chat data: a built-in name ("chatml", "llama3",
   * ... as yuan_chat_options.chat_template) or Jinja source. NULL: the
   * model's own (tokenizer.chat_template), else ChatML. */
  const char* chat_template;

  /* LoRA (mode YUAN_TRAIN_LORA). */
  /* The projections that get adapters, comma-separated, any of
   * q,k,v,o,gate,up,down. NULL (default): all seven. */
  const char* lora_targets;
  int32_t lora_rank;             /* default 16 */
  int32_t lora_use_rslora;       /* 1: scaling alpha / sqrt(rank) instead of alpha / rank; default 0 */
  double lora_alpha;             /* default 32 */
  double lora_dropout;           /* on the LoRA branch's input, in [0, 1); default 0 */

  /* Partial and full training. */
  int32_t top_layers;            /* PARTIAL: how many of the last layers train (>= 1) */
  int32_t train_head;            /* PARTIAL: 1 = output_norm and output train too; default 0 */
  int32_t random_init;           /* FULL: 1 = start from random values; default 0 */
  int32_t threads;               /* compute threads; 0 (default): the machine's cores */

  /* Data. */
  yuan_train_data_kind data_kind;  /* default YUAN_TRAIN_DATA_AUTO */
  int32_t skip_bad_lines;        /* 1: leave bad lines / too-long examples out (counted)
                                    instead of failing; default 0 */
  int64_t seq_len;               /* tokens per row; default 256 */
  int64_t batch_rows;            /* rows per micro-batch; default 1 */
  int64_t grad_accum;            /* micro-batches per optimizer step; default 1 */
  double eval_fraction;          /* share of examples held out for eval, in [0, 0.5]; default 0 */

  /* Length and schedule. */
  int64_t epochs;                /* default 1; used when max_steps is 0 */
  int64_t max_steps;             /* > 0: stop after this many optimizer steps; default 0 */
  int64_t warmup_steps;          /* linear warmup; default 10 */
  int64_t eval_every;            /* evaluate every N steps; 0 (default): only at the end */
  int64_t checkpoint_every;      /* checkpoint every N steps; 0 (default): only on cancel */
  double lr;                     /* peak learning rate; default 1e-4 */
  double min_lr_ratio;           /* the cosine ends at lr * this; default 0.1 */
  double weight_decay;           /* AdamW's decoupled decay; default 0 */
  double adam_beta1;             /* default 0.9 */
  double adam_beta2;             /* default 0.999 */
  double adam_eps;               /* default 1e-8 */
  double clip_norm;              /* global gradient-norm clip; <= 0: none; default 1 */
  /* Data order, eval split, LoRA and random initialisation, dropout: the
   * same seed, data and options give the same run. Default 42. */
  uint64_t seed;
  /* ---- end of the first released fields; append only below this line ---- */
} yuan_train_options;

/* Fills defaults and sets struct_size to `size`, writing only the first
 * `size` bytes: call it through the yuan_train_options_init() macro. A
 * size below the first released struct's is ignored, like NULL.
 * Thread-safe. */
YUAN_API void yuan_train_options_init_sized(yuan_train_options* options, size_t size);
/* Fills defaults and sets struct_size. NULL is ignored. Thread-safe. Source
 * code calls the macro (this header's sizeof); the exported function fills
 * the first released struct only, so it never writes past a smaller one. */
YUAN_API void (yuan_train_options_init)(yuan_train_options* options);
#define yuan_train_options_init(options) \
  yuan_train_options_init_sized((options), sizeof(yuan_train_options))

/* One optimizer step's figures, given to the progress callback. Filled by
 * the library: struct_size is the library's size of the struct; read a
 * field appended after the first release only when struct_size covers it. */
typedef struct yuan_train_progress {
  uint32_t struct_size;
  int32_t reserved;      /* 0 */
  int64_t step;          /* optimizer steps done, 1 after the first */
  int64_t total_steps;   /* steps the run will take */
  double epoch;          /* fractional epoch reached */
  double loss;           /* this step's training loss (mean per target token) */
  double eval_loss;      /* eval loss measured at this step; NaN when none was */
  double lr;             /* learning rate of this step */
  double grad_norm;      /* gradient norm before clipping */
  int64_t tokens;        /* tokens trained on so far */
  double tokens_per_s;
  double elapsed_s;      /* since the run (or the resumed run) started */
  double eta_s;          /* estimated time to the end */
  /* ---- end of the first released fields ---- */
} yuan_train_progress;

/* Called after every optimizer step, on the thread that called
 * yuan_train_job_run; `progress` is borrowed for the call. Return 0 to go
 * on, non-zero to stop: the job then behaves as on yuan_train_job_cancel.
 * It must not call yuan_train_job_run or _free on the same job; _export,
 * _save_checkpoint and _cancel are allowed. */
typedef int (*yuan_train_progress_fn)(const yuan_train_progress* progress, void* user_data);

typedef struct yuan_train_job yuan_train_job;

/* Opens the base model, reads and checks all the data and builds what
 * trains; with resume_from, restores the checkpoint. Takes as long as
 * tokenizing the data. On success *out_job owns the job.
 * Errors: INVALID_ARGUMENT (NULL, struct_size 0 or too small, a required
 * path missing, a value out of range, an unknown LoRA target, a bad data
 * line: the message is "FILE:LINE: reason"; a checkpoint whose options do
 * not match, naming the field), NOT_FOUND (a file does not exist), FORMAT
 * (a malformed model or checkpoint), UNIMPLEMENTED. Thread-safe (jobs are
 * independent). */
YUAN_API yuan_status yuan_train_job_create(const yuan_train_options* options,
                                           yuan_train_job** out_job);

/* Trains to the end (epochs or max_steps), blocking the calling thread,
 * and writes the result (out_path) and the loss CSV + PNG (the CSV after
 * every step). on_step (may be NULL) runs after each step on this thread.
 * Cancelled (yuan_train_job_cancel, or on_step returning non-zero): it
 * stops after the step in progress (a step cut short is redone whole on
 * resume), writes the checkpoint and the log, and returns
 * YUAN_ERR_CANCELLED with a message naming the checkpoint. A cancelled job
 * stays cancelled (running it again returns CANCELLED at once); continue
 * with a new job whose resume_from is the checkpoint: it continues exactly
 * where this one stopped, with the same numbers an uninterrupted run gets.
 * Running a finished job again only rewrites its outputs. Errors:
 * CANCELLED, FAILED_PRECONDITION (the job is already running), and I/O
 * errors writing the files. One thread at a time per job. */
YUAN_API yuan_status yuan_train_job_run(yuan_train_job* job, yuan_train_progress_fn on_step,
                                        void* user_data);

/* Asks yuan_train_job_run to stop after the step in progress (before a
 * run: the run stops before its first step). Any thread, and
 * async-signal-safe: it is one atomic store, so a SIGINT handler may call
 * it. For that reason it cannot consult the handle registry: `job` must be
 * a live handle (NULL gives INVALID_ARGUMENT, without a message). */
YUAN_API yuan_status yuan_train_job_cancel(yuan_train_job* job);

/* Writes the current parameters as the result: an adapter (LoRA, with
 * provenance: trainer version, data hash, steps; the format by the name, as
 * for out_path) or a GGUF model (partial, full). path NULL or "":
 * options.out_path. Between runs, or from the
 * on_step callback. Errors: INVALID_ARGUMENT, and I/O errors. */
YUAN_API yuan_status yuan_train_job_export(yuan_train_job* job, const char* path);

/* Writes a checkpoint (parameters, optimizer state, position in the data,
 * log so far) to `path`; NULL or "": options.checkpoint_path. Between runs,
 * or from the on_step callback. */
YUAN_API yuan_status yuan_train_job_save_checkpoint(yuan_train_job* job, const char* path);

/* The figures of the last step done (step 0 and NaN losses before the
 * first), e.g. after yuan_train_job_run returned. `progress` must have
 * struct_size set (yuan_train_progress_init); only that much is written. */
YUAN_API yuan_status yuan_train_job_progress(const yuan_train_job* job,
                                             yuan_train_progress* progress);

/* Zeroes the struct and sets struct_size to the first released size (the
 * whole struct today), so it never writes past an older program's struct.
 * NULL is ignored. Thread-safe. */
YUAN_API void yuan_train_progress_init(yuan_train_progress* progress);

/* What a job works on, known once it is created. Filled by
 * yuan_train_job_info, as far as struct_size (set by yuan_train_info_init)
 * reaches. */
typedef struct yuan_train_info {
  uint32_t struct_size;
  int32_t reserved;          /* 0 */
  int64_t n_train_examples;  /* conversations / text pieces that train */
  int64_t n_eval_examples;   /* held out (eval_fraction) or from eval_path */
  int64_t n_skipped;         /* bad lines and too-long examples left out (skip_bad_lines) */
  int64_t n_trainable;       /* trainable parameters (elements) */
  int64_t total_steps;       /* optimizer steps of the whole run */
  /* ---- end of the first released fields ---- */
} yuan_train_info;

/* Zeroes the struct and sets struct_size to the first released size.
 * NULL is ignored. Thread-safe. */
YUAN_API void yuan_train_info_init(yuan_train_info* info);

/* Fills *info. Between runs or from the on_step callback. Errors:
 * INVALID_ARGUMENT (NULL, a dead handle, struct_size not set),
 * FAILED_PRECONDITION (running on another thread). */
YUAN_API yuan_status yuan_train_job_info(const yuan_train_job* job, yuan_train_info* info);

/* Releases the job; it must not be running. NULL is a no-op. */
YUAN_API void yuan_train_job_free(yuan_train_job* job);

#ifdef __cplusplus
}
#endif

#endif /* YUAN_TRAIN_H_ */

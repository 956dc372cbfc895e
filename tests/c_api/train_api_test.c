/* The training API (yuan/train.h) from plain C11: a job on a tiny chat data
 * set written here, its progress callback, cancel + resume, export (loaded
 * back by the engine), and misuse that must come back as an error.
 * Usage: test_c_train MODEL.gguf [--random]  (--random: MODEL is the
 * random-weight test model, whose first loss must be about ln(n_vocab)).
 * Files are written to the current directory. Exits 0 on success, 1 on a
 * failed check, 77 (skip) when MODEL is absent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yuan/train.h"
#include "yuan/yuan.h"

static int g_failures = 0;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n",        \
              __FILE__, __LINE__, #cond, yuan_last_error());               \
      ++g_failures;                                                        \
    }                                                                      \
  } while (0)

#define MAX_STEPS 64

typedef struct {
  int calls;
  int cancel_at;          /* return non-zero at this step (0: never) */
  int64_t first_step;     /* the step of the first call */
  int64_t last_tokens;
  double loss[MAX_STEPS + 1];  /* by step */
  int bad_fields;         /* a callback saw something wrong */
  yuan_train_job* job;    /* for the reentrancy checks */
  int try_reentry;
  const char* export_in_callback;  /* export here from the callback at step 1 */
} watch;

static int on_step(const yuan_train_progress* p, void* user) {
  watch* w = (watch*)user;
  if (w->calls == 0) w->first_step = p->step;
  w->calls++;
  if (p->struct_size < sizeof(yuan_train_progress)) w->bad_fields++;
  if (p->step != w->first_step + w->calls - 1) w->bad_fields++;  /* steps count up by one */
  if (p->step < 1 || p->step > p->total_steps) w->bad_fields++;
  if (!isfinite(p->loss) || p->loss <= 0) w->bad_fields++;
  if (!(p->lr > 0) || !isfinite(p->grad_norm) || p->grad_norm < 0) w->bad_fields++;
  if (p->tokens <= w->last_tokens) w->bad_fields++;
  if (p->elapsed_s < 0 || p->eta_s < 0 || p->epoch < 0) w->bad_fields++;
  w->last_tokens = p->tokens;
  if (p->step >= 0 && p->step <= MAX_STEPS) w->loss[p->step] = p->loss;
  if (w->try_reentry && w->calls == 1) {
    /* The job is running on this thread: another run and free are refused
     * (and the job goes on); export and checkpoint are allowed. */
    if (yuan_train_job_run(w->job, NULL, NULL) != YUAN_ERR_FAILED_PRECONDITION) w->bad_fields++;
    yuan_train_job_free(w->job);
    if (strstr(yuan_last_error(), "running") == NULL) w->bad_fields++;
  }
  if (w->export_in_callback != NULL && w->calls == 1) {
    if (yuan_train_job_export(w->job, w->export_in_callback) != YUAN_OK) w->bad_fields++;
  }
  return w->cancel_at > 0 && p->step >= w->cancel_at;
}

static int write_file(const char* path, const char* text) {
  FILE* f = fopen(path, "wb");
  if (f == NULL) return 0;
  fputs(text, f);
  fclose(f);
  return 1;
}

static int file_exists(const char* path) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) return 0;
  fclose(f);
  return 1;
}

static int count_lines(const char* path) {
  FILE* f = fopen(path, "rb");
  int c, n = 0;
  if (f == NULL) return -1;
  while ((c = fgetc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

static int is_png(const char* path) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  unsigned char head[8];
  FILE* f = fopen(path, "rb");
  size_t n;
  if (f == NULL) return 0;
  n = fread(head, 1, 8, f);
  fclose(f);
  return n == 8 && memcmp(head, sig, 8) == 0;
}

static const char* kData = "c_train_data.jsonl";

static void write_data(void) {
  static const char* const lines[] = {
      "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello there.\"}]}\n",
      "{\"messages\": [{\"role\": \"user\", \"content\": \"Name a colour\"}, {\"role\": \"assistant\", \"content\": \"Blue.\"}]}\n",
      "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"2+2?\"}, {\"role\": \"assistant\", \"content\": \"4\"}]}\n",
      "{\"messages\": [{\"role\": \"user\", \"content\": \"Say yes\"}, {\"role\": \"assistant\", \"content\": \"Yes.\"}]}\n",
      "{\"messages\": [{\"role\": \"user\", \"content\": \"A cat?\"}, {\"role\": \"assistant\", \"content\": \"A small animal.\"}]}\n",
      "{\"messages\": [{\"role\": \"user\", \"content\": \"Bye\"}, {\"role\": \"assistant\", \"content\": \"Goodbye.\"}]}\n"};
  FILE* f = fopen(kData, "wb");
  size_t i;
  CHECK(f != NULL);
  if (f == NULL) return;
  for (i = 0; i < sizeof lines / sizeof lines[0]; ++i) fputs(lines[i], f);
  fclose(f);
}

/* Options for a small, fast LoRA run on the test data. */
static void small_options(yuan_train_options* o, const char* model, const char* out) {
  yuan_train_options_init(o);
  o->model_path = model;
  o->data_path = kData;
  o->out_path = out;
  o->seq_len = 128;
  o->lora_rank = 4;
  o->warmup_steps = 1;
  o->lr = 1e-3;
  o->threads = 2;
}

static void test_options_and_misuse(const char* model) {
  yuan_train_options o;
  yuan_train_job* job = (yuan_train_job*)0x1;
  yuan_train_progress progress;

  /* Defaults (TrainOptions'): the documented values. */
  yuan_train_options_init(&o);
  CHECK(o.struct_size == sizeof(yuan_train_options));
  CHECK(o.mode == YUAN_TRAIN_LORA && o.data_kind == YUAN_TRAIN_DATA_AUTO);
  CHECK(o.lora_rank == 16 && o.lora_alpha == 32.0 && o.lora_dropout == 0.0 && o.lora_use_rslora == 0);
  CHECK(o.lora_targets == NULL && o.model_path == NULL && o.out_path == NULL);
  CHECK(o.seq_len == 256 && o.batch_rows == 1 && o.grad_accum == 1 && o.epochs == 1);
  CHECK(o.max_steps == 0 && o.warmup_steps == 10 && o.eval_every == 0 && o.checkpoint_every == 0);
  CHECK(fabs(o.lr - 1e-4) < 1e-10 && fabs(o.min_lr_ratio - 0.1) < 1e-7 && o.clip_norm == 1.0);
  CHECK(fabs(o.adam_beta1 - 0.9) < 1e-7 && fabs(o.adam_beta2 - 0.999) < 1e-7 && o.adam_eps > 0);
  CHECK(o.seed == 42 && o.threads == 0 && o.eval_fraction == 0.0 && o.skip_bad_lines == 0);
  yuan_train_options_init(NULL); /* ignored */
  {
    /* A size below the first release is ignored: nothing is written. */
    yuan_train_options small;
    memset(&small, 0x5a, sizeof small);
    yuan_train_options_init_sized(&small, 8);
    CHECK(small.struct_size == 0x5a5a5a5au);
  }
  yuan_train_progress_init(NULL);
  yuan_train_progress_init(&progress);
  CHECK(progress.struct_size == sizeof(yuan_train_progress) && progress.step == 0);

  /* NULLs and bad structs: errors with a message, out-parameter untouched. */
  CHECK(yuan_train_job_create(NULL, &job) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(job == (yuan_train_job*)0x1);
  small_options(&o, model, "c_train_never.yadp");
  CHECK(yuan_train_job_create(&o, NULL) == YUAN_ERR_INVALID_ARGUMENT);
  o.struct_size = 0;
  CHECK(yuan_train_job_create(&o, &job) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(yuan_last_error(), "struct_size") != NULL);
  small_options(&o, model, "c_train_never.yadp");
  o.struct_size = 12;
  CHECK(yuan_train_job_create(&o, &job) == YUAN_ERR_INVALID_ARGUMENT);
  small_options(&o, model, "c_train_never.yadp");
  o.model_path = NULL;
  CHECK(yuan_train_job_create(&o, &job) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(yuan_last_error(), "model_path") != NULL);
  small_options(&o, model, NULL);
  CHECK(yuan_train_job_create(&o, &job) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(yuan_last_error(), "out_path") != NULL);
  small_options(&o, model, "c_train_never.yadp");
  o.mode = (yuan_train_mode)7;
  CHECK(yuan_train_job_create(&o, &job) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(yuan_last_error(), "mode") != NULL);
  small_options(&o, model, "c_train_never.yadp");
  o.lora_rank = 0;
  CHECK(yuan_train_job_create(&o, &job) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(yuan_last_error(), "lora_rank") != NULL);
  small_options(&o, model, "c_train_never.yadp");
  o.lr = -1;
  CHECK(yuan_train_job_create(&o, &job) == YUAN_ERR_INVALID_ARGUMENT);
  small_options(&o, model, "c_train_never.yadp");
  o.lora_targets = "q,nope";
  CHECK(yuan_train_job_create(&o, &job) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(yuan_last_error(), "nope") != NULL);
  small_options(&o, "/nonexistent/base.gguf", "c_train_never.yadp");
  CHECK(yuan_train_job_create(&o, &job) == YUAN_ERR_NOT_FOUND);
  CHECK(strstr(yuan_last_error(), "/nonexistent/base.gguf") != NULL);
  small_options(&o, model, "c_train_never.yadp");
  o.data_path = "/nonexistent/data.jsonl";
  CHECK(yuan_train_job_create(&o, &job) == YUAN_ERR_NOT_FOUND);
  CHECK(strstr(yuan_last_error(), "/nonexistent/data.jsonl") != NULL);
  CHECK(job == (yuan_train_job*)0x1);

  /* Calls on NULL or dead handles: errors, never a crash. */
  yuan_train_job_free(NULL);
  CHECK(yuan_train_job_run(NULL, NULL, NULL) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(yuan_last_error(), "job") != NULL);
  CHECK(yuan_train_job_cancel(NULL) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(yuan_train_job_export(NULL, "x.yadp") == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(yuan_train_job_save_checkpoint(NULL, NULL) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(yuan_train_job_progress(NULL, &progress) == YUAN_ERR_INVALID_ARGUMENT);
  {
    int not_a_job = 0;
    CHECK(yuan_train_job_run((yuan_train_job*)&not_a_job, NULL, NULL) == YUAN_ERR_INVALID_ARGUMENT);
    yuan_train_job_free((yuan_train_job*)&not_a_job); /* refused, not freed */
    CHECK(strstr(yuan_last_error(), "not a live") != NULL);
  }
  CHECK(!file_exists("c_train_never.yadp"));
}

static void test_bad_lines(const char* model) {
  yuan_train_options o;
  yuan_train_job* job = NULL;
  /* Line 3 is not JSON; line 4 has no assistant message. */
  CHECK(write_file("c_train_bad.jsonl",
                   "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n"
                   "{\"messages\": [{\"role\": \"user\", \"content\": \"c\"}, {\"role\": \"assistant\", \"content\": \"d\"}]}\n"
                   "{\"messages\": [oops\n"
                   "{\"messages\": [{\"role\": \"user\", \"content\": \"e\"}]}\n"));
  small_options(&o, model, "c_train_bad.yadp");
  o.data_path = "c_train_bad.jsonl";
  CHECK(yuan_train_job_create(&o, &job) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(job == NULL);
  CHECK(strstr(yuan_last_error(), "c_train_bad.jsonl:3") != NULL);
  /* With skip_bad_lines the two good lines train. */
  o.skip_bad_lines = 1;
  o.max_steps = 1;
  CHECK(yuan_train_job_create(&o, &job) == YUAN_OK);
  CHECK(job != NULL);
  if (job != NULL) {
    yuan_train_info info;
    yuan_train_info_init(&info);
    CHECK(yuan_train_job_info(job, &info) == YUAN_OK);
    CHECK(info.n_train_examples == 2 && info.n_eval_examples == 0 && info.n_skipped == 2);
  }
  yuan_train_job_free(job);
}

/* A 3-step run: the callback's fields, the files written, the adapter
 * loading back into an engine. */
static void test_run_and_export(const char* model, int random_model) {
  yuan_train_options o;
  yuan_train_job* job = NULL;
  yuan_train_progress p;
  watch w;
  memset(&w, 0, sizeof w);
  remove("c_train_run.yadp");
  remove("c_train_run.yadp.csv");
  remove("c_train_run.yadp.png");
  small_options(&o, model, "c_train_run.yadp");
  o.max_steps = 3;
  CHECK(yuan_train_job_create(&o, &job) == YUAN_OK);
  if (job == NULL) return;
  yuan_train_progress_init(&p);
  CHECK(yuan_train_job_progress(job, &p) == YUAN_OK);
  CHECK(p.step == 0 && p.total_steps == 3 && isnan(p.loss) && isnan(p.eval_loss));
  {
    yuan_train_info info;
    yuan_train_info_init(&info);
    CHECK(info.struct_size == sizeof info);
    CHECK(yuan_train_job_info(job, &info) == YUAN_OK);
    CHECK(info.n_train_examples == 6 && info.n_eval_examples == 0 && info.n_skipped == 0);
    CHECK(info.total_steps == 3);
    if (random_model) {
      /* rank 4 on all seven projections of 2 layers, rank * (in + out)
       * each: n_embd 64, k/v 32 (2 of 4 heads), n_ff 96. */
      const int64_t per_layer = 4 * ((64 + 64) + (64 + 32) + (64 + 32) + (64 + 64) +
                                     (64 + 96) + (64 + 96) + (96 + 64));
      CHECK(info.n_trainable == 2 * per_layer);
    } else {
      CHECK(info.n_trainable > 0);
    }
    info.struct_size = 0;
    CHECK(yuan_train_job_info(job, &info) == YUAN_ERR_INVALID_ARGUMENT);
    CHECK(yuan_train_job_info(NULL, &info) == YUAN_ERR_INVALID_ARGUMENT);
  }

  w.job = job;
  w.try_reentry = 1;
  w.export_in_callback = "c_train_step1.yadp";
  remove(w.export_in_callback);
  CHECK(yuan_train_job_run(job, on_step, &w) == YUAN_OK);
  CHECK(w.calls == 3 && w.first_step == 1 && w.bad_fields == 0);
  CHECK(w.loss[1] > 0 && isfinite(w.loss[3]));
  if (random_model) {
    /* LoRA's B starts at 0, so step 1 is the base model's loss: for small
     * random weights the logits are nearly flat, mean -log p = ln(n_vocab)
     * (300 in make_random_model) to within their small spread. */
    CHECK(fabs(w.loss[1] - log(300.0)) < 0.1);
  }
  CHECK(yuan_train_job_progress(job, &p) == YUAN_OK);
  CHECK(p.step == 3 && p.total_steps == 3 && p.loss == w.loss[3]);
  {
    /* The result struct is written only as far as its struct_size. */
    yuan_train_progress q;
    memset(&q, 0x77, sizeof q);
    q.struct_size = 0;
    CHECK(yuan_train_job_progress(job, &q) == YUAN_ERR_INVALID_ARGUMENT);
  }

  CHECK(file_exists("c_train_run.yadp"));
  CHECK(file_exists("c_train_step1.yadp"));
  CHECK(count_lines("c_train_run.yadp.csv") == 4); /* header + 3 steps */
  CHECK(is_png("c_train_run.yadp.png"));
  remove("c_train_again.yadp");
  CHECK(yuan_train_job_export(job, "c_train_again.yadp") == YUAN_OK);
  CHECK(file_exists("c_train_again.yadp"));
  CHECK(yuan_train_job_save_checkpoint(job, "c_train_run.ckpt") == YUAN_OK);
  CHECK(file_exists("c_train_run.ckpt"));
  CHECK(yuan_train_job_export(job, "/nonexistent/dir/x.yadp") != YUAN_OK);
  CHECK(strlen(yuan_last_error()) > 0);
  yuan_train_job_free(job);

  {
    /* The adapter is usable: it loads for the base model and generates. */
    yuan_engine_options eo;
    yuan_engine* engine = NULL;
    yuan_adapter* adapter = NULL;
    yuan_engine_options_init(&eo);
    eo.model = model;
    eo.n_threads = 2;
    CHECK(yuan_engine_open(&eo, &engine) == YUAN_OK);
    if (engine != NULL) {
      CHECK(yuan_adapter_load(engine, "c_train_run.yadp", &adapter) == YUAN_OK);
      yuan_adapter_free(adapter);
      adapter = NULL;
      CHECK(yuan_adapter_load(engine, "c_train_step1.yadp", &adapter) == YUAN_OK);
      yuan_adapter_free(adapter);
      yuan_engine_free(engine);
    }
  }
}

/* Cancel from the callback at step 2, then resume in a new job: steps 3..6
 * match an uninterrupted run's bit for bit. */
static void test_cancel_and_resume(const char* model) {
  yuan_train_options o;
  yuan_train_job* job = NULL;
  watch full, first, rest;
  int s;
  memset(&full, 0, sizeof full);
  memset(&first, 0, sizeof first);
  memset(&rest, 0, sizeof rest);

  small_options(&o, model, "c_train_full.yadp");
  o.max_steps = 6;
  o.lr = 5e-3;
  CHECK(yuan_train_job_create(&o, &job) == YUAN_OK);
  if (job == NULL) return;
  CHECK(yuan_train_job_run(job, on_step, &full) == YUAN_OK);
  CHECK(full.calls == 6 && full.bad_fields == 0);
  /* It learns: 6 steps on 6 short conversations at a high rate lower the loss. */
  CHECK(full.loss[6] < full.loss[1]);
  yuan_train_job_free(job);

  remove("c_train_cut.ckpt");
  small_options(&o, model, "c_train_cut.yadp");
  o.max_steps = 6;
  o.lr = 5e-3;
  o.checkpoint_path = "c_train_cut.ckpt";
  job = NULL;
  CHECK(yuan_train_job_create(&o, &job) == YUAN_OK);
  if (job == NULL) return;
  first.cancel_at = 2;
  CHECK(yuan_train_job_run(job, on_step, &first) == YUAN_ERR_CANCELLED);
  CHECK(strstr(yuan_last_error(), "c_train_cut.ckpt") != NULL);
  CHECK(first.calls == 2);
  CHECK(file_exists("c_train_cut.ckpt"));
  /* A cancelled job stays cancelled. */
  first.calls = 0;
  first.first_step = 0;
  CHECK(yuan_train_job_run(job, on_step, &first) == YUAN_ERR_CANCELLED);
  CHECK(first.calls == 0);
  yuan_train_job_free(job);

  /* Resuming with other options is refused, naming the field. */
  o.resume_from = "c_train_cut.ckpt";
  o.lora_rank = 8;
  job = NULL;
  CHECK(yuan_train_job_create(&o, &job) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(yuan_last_error(), "lora_rank") != NULL);
  o.lora_rank = 4;
  CHECK(yuan_train_job_create(&o, &job) == YUAN_OK);
  if (job == NULL) return;
  {
    yuan_train_progress p;
    yuan_train_progress_init(&p);
    CHECK(yuan_train_job_progress(job, &p) == YUAN_OK);
    CHECK(p.step == 2 && p.total_steps == 6 && p.loss == full.loss[2]);
  }
  CHECK(yuan_train_job_run(job, on_step, &rest) == YUAN_OK);
  CHECK(rest.calls == 4 && rest.first_step == 3 && rest.bad_fields == 0);
  for (s = 1; s <= 2; ++s) CHECK(first.loss[s] == full.loss[s]);
  for (s = 3; s <= 6; ++s) CHECK(rest.loss[s] == full.loss[s]);
  yuan_train_job_free(job);

  /* Cancel before running: the run stops before its first step. */
  small_options(&o, model, "c_train_pre.yadp");
  o.max_steps = 3;
  o.checkpoint_path = "c_train_pre.ckpt";
  job = NULL;
  CHECK(yuan_train_job_create(&o, &job) == YUAN_OK);
  if (job == NULL) return;
  memset(&first, 0, sizeof first);
  CHECK(yuan_train_job_cancel(job) == YUAN_OK);
  CHECK(yuan_train_job_run(job, on_step, &first) == YUAN_ERR_CANCELLED);
  CHECK(first.calls == 0);
  yuan_train_job_free(job);
}

/* Partial training writes a GGUF model the engine opens. */
static void test_partial_export(const char* model) {
  yuan_train_options o;
  yuan_train_job* job = NULL;
  small_options(&o, model, "c_train_partial.gguf");
  o.mode = YUAN_TRAIN_PARTIAL;
  o.top_layers = 1;
  o.train_head = 1;
  o.max_steps = 1;
  remove("c_train_partial.gguf");
  CHECK(yuan_train_job_create(&o, &job) == YUAN_OK);
  if (job == NULL) return;
  CHECK(yuan_train_job_run(job, NULL, NULL) == YUAN_OK);
  yuan_train_job_free(job);
  {
    yuan_engine_options eo;
    yuan_engine* engine = NULL;
    yuan_engine_options_init(&eo);
    eo.model = "c_train_partial.gguf";
    eo.n_threads = 1;
    CHECK(yuan_engine_open(&eo, &engine) == YUAN_OK);
    yuan_engine_free(engine);
  }
}

int main(int argc, char** argv) {
  const char* model;
  int random_model;
  if (argc < 2) {
    fprintf(stderr, "usage: test_c_train MODEL.gguf [--random]\n");
    return 2;
  }
  model = argv[1];
  random_model = argc > 2 && strcmp(argv[2], "--random") == 0;
  if (!file_exists(model)) {
    fprintf(stderr, "skipped: %s not found\n", model);
    return 77;
  }
  write_data();
  test_options_and_misuse(model);
  test_bad_lines(model);
  test_run_and_export(model, random_model);
  test_cancel_and_resume(model);
  test_partial_export(model);
  if (g_failures > 0) {
    fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  printf("all train API checks passed\n");
  return 0;
}

/* The public API from plain C11: every call a C host would make, including
 * misuse that must come back as an error. Usage: test_c_api MODEL.gguf.
 * Exits 0 on success, 1 on a failed check, 77 (skip) when MODEL is absent. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

typedef struct {
  int calls;
  int stop_after;   /* 0: never stop */
  size_t bytes;
} stream_state;

static int on_token(const yuan_token_event* ev, void* user) {
  stream_state* s = (stream_state*)user;
  s->calls++;
  s->bytes += ev->text_len;
  if (ev->text_len > 0 && ev->text == NULL) return 1;
  return s->stop_after > 0 && s->calls >= s->stop_after;
}

static void test_versions_and_errors(void) {
  yuan_engine_options o;
  yuan_engine* engine = (yuan_engine*)0x1;
  CHECK(yuan_abi_version() == YUAN_ABI_VERSION);
  CHECK(strcmp(yuan_version(), YUAN_VERSION_STRING) == 0);
  CHECK(strcmp(yuan_status_string(YUAN_ERR_FORMAT), "YUAN_ERR_FORMAT") == 0);
  CHECK(yuan_status_string((yuan_status)12345) != NULL);

  /* NULL options, a missing file, an uninitialised struct_size */
  CHECK(yuan_engine_open(NULL, &engine) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(engine == (yuan_engine*)0x1); /* out-parameter untouched on error */
  yuan_engine_options_init(&o);
  o.model = "/nonexistent/model.gguf";
  CHECK(yuan_engine_open(&o, &engine) == YUAN_ERR_NOT_FOUND);
  CHECK(strstr(yuan_last_error(), "/nonexistent/model.gguf") != NULL);
  o.struct_size = 3;
  CHECK(yuan_engine_open(&o, &engine) == YUAN_ERR_INVALID_ARGUMENT);
  CHECK(strstr(yuan_last_error(), "struct_size") != NULL);

  /* free(NULL) is a no-op; calls on NULL handles are errors */
  yuan_engine_free(NULL);
  yuan_session_free(NULL);
  yuan_request_free(NULL);
  yuan_free(NULL);
  {
    size_t n = 0;
    yuan_model_info info;
    yuan_model_info_init(&info);
    CHECK(yuan_tokenize(NULL, "a", 1, 0, NULL, 0, &n) == YUAN_ERR_INVALID_ARGUMENT);
    CHECK(yuan_engine_model_info(NULL, &info) == YUAN_ERR_INVALID_ARGUMENT);
    CHECK(yuan_session_cancel(NULL) == YUAN_ERR_INVALID_ARGUMENT);
    CHECK(yuan_session_generate(NULL, "x", NULL, NULL) == YUAN_ERR_INVALID_ARGUMENT);
  }
}

static void test_engine(const char* model_path) {
  yuan_engine_options o;
  yuan_engine* engine = NULL;
  yuan_session* session = NULL;
  yuan_model_info info;
  yuan_token tokens[512];
  size_t n_tokens = 0, needed = 0;
  char text[1024];
  const char* prompt = "Once upon a time";

  yuan_engine_options_init(&o);
  o.model = model_path;
  o.n_threads = 2;
  CHECK(yuan_engine_open(&o, &engine) == YUAN_OK);
  if (engine == NULL) return;

  yuan_model_info_init(&info);
  CHECK(yuan_engine_model_info(engine, &info) == YUAN_OK);
  CHECK(strcmp(info.architecture, "llama") == 0);
  CHECK(info.n_vocab > 0 && info.n_layer > 0 && info.n_params > 0);
  CHECK(info.n_threads == 2);
  CHECK(yuan_engine_metadata(engine, "general.architecture", text, sizeof text, &needed) == YUAN_OK);
  CHECK(strcmp(text, "llama") == 0 && needed == 5);
  CHECK(yuan_engine_metadata(engine, "general.architecture", text, 3, &needed) == YUAN_ERR_BUFFER_TOO_SMALL);
  CHECK(needed == 5);
  CHECK(yuan_engine_metadata(engine, "no.such.key", text, sizeof text, &needed) == YUAN_ERR_NOT_FOUND);

  /* tokenize: size query, then fill; detokenize round-trips */
  CHECK(yuan_tokenize(engine, prompt, strlen(prompt), YUAN_TOKENIZE_ADD_BOS, NULL, 0, &n_tokens) ==
        YUAN_ERR_BUFFER_TOO_SMALL);
  CHECK(n_tokens > 1 && n_tokens < 512);
  CHECK(yuan_tokenize(engine, prompt, strlen(prompt), YUAN_TOKENIZE_ADD_BOS, tokens, 512, &n_tokens) == YUAN_OK);
  CHECK(tokens[0] == info.bos_token);
  CHECK(yuan_detokenize(engine, tokens, n_tokens, 0, text, sizeof text, &needed) == YUAN_OK);
  CHECK(strcmp(text, prompt) == 0);
  {
    yuan_token bad = info.n_vocab + 5;
    CHECK(yuan_detokenize(engine, &bad, 1, 0, text, sizeof text, &needed) == YUAN_ERR_INVALID_ARGUMENT);
  }

  CHECK(yuan_session_open(engine, NULL, &session) == YUAN_OK);
  if (session == NULL) {
    yuan_engine_free(engine);
    return;
  }

  /* low-level decode + logits */
  {
    const float* logits = NULL;
    int32_t n_vocab = 0, n_past = -1;
    CHECK(yuan_session_logits(session, &logits, &n_vocab) == YUAN_ERR_FAILED_PRECONDITION);
    CHECK(yuan_session_decode(session, tokens, n_tokens) == YUAN_OK);
    CHECK(yuan_session_logits(session, &logits, &n_vocab) == YUAN_OK);
    CHECK(n_vocab == info.n_vocab && logits != NULL);
    CHECK(yuan_session_n_past(session, &n_past) == YUAN_OK && n_past == (int32_t)n_tokens);
    CHECK(yuan_session_reset(session) == YUAN_OK);
    CHECK(yuan_session_n_past(session, &n_past) == YUAN_OK && n_past == 0);
  }

  /* greedy generation with streaming; twice gives the same text */
  {
    yuan_sampling_params sp;
    yuan_generate_options go;
    yuan_generate_result r1, r2;
    stream_state st = {0, 0, 0};
    yuan_sampling_params_init(&sp);
    sp.temperature = 0.0f;
    yuan_generate_options_init(&go);
    go.max_tokens = 16;
    go.sampling = &sp;
    go.flags = YUAN_GENERATE_IGNORE_EOS;
    go.on_token = on_token;
    go.user_data = &st;
    yuan_generate_result_init(&r1);
    yuan_generate_result_init(&r2);
    CHECK(yuan_session_generate(session, prompt, &go, &r1) == YUAN_OK);
    CHECK(r1.finish_reason == YUAN_FINISH_LENGTH);
    CHECK(r1.completion_tokens == 16);
    CHECK(st.calls >= 16);
    CHECK(r1.text != NULL && strlen(r1.text) == r1.text_len && st.bytes == r1.text_len);
    CHECK(yuan_session_generate(session, prompt, &go, &r2) == YUAN_OK);
    CHECK(r2.cached_tokens > 0); /* the prompt prefix was reused */
    CHECK(r1.text && r2.text && strcmp(r1.text, r2.text) == 0);
    yuan_free(r1.text);
    yuan_free(r2.text);

    /* the callback stops generation */
    st.calls = 0;
    st.stop_after = 3;
    yuan_generate_result_init(&r1);
    CHECK(yuan_session_generate(session, prompt, &go, &r1) == YUAN_OK);
    CHECK(r1.finish_reason == YUAN_FINISH_CANCELLED);
    CHECK(r1.completion_tokens == 3);
    yuan_free(r1.text);

    /* wrong struct sizes are refused */
    go.struct_size = 0;
    CHECK(yuan_session_generate(session, prompt, &go, NULL) == YUAN_ERR_INVALID_ARGUMENT);
    go.struct_size = sizeof go;
    sp.struct_size = 1;
    CHECK(yuan_session_generate(session, prompt, &go, NULL) == YUAN_ERR_INVALID_ARGUMENT);
    sp.struct_size = sizeof sp;
    /* a program built against the v1 header (no adapter fields) still works */
    go.struct_size = (uint32_t)offsetof(yuan_generate_options, adapters);
    go.on_token = NULL;
    go.max_tokens = 2;
    CHECK(yuan_session_generate(session, prompt, &go, NULL) == YUAN_OK);
    go.struct_size = sizeof go;
  }

  /* adapters: the C declarations, and misuse */
  {
    yuan_adapter* adapter = NULL;
    yuan_adapter_choice choice = {NULL, 1.0f};
    CHECK(yuan_adapter_load(engine, "/nonexistent/adapter.yadp", &adapter) == YUAN_ERR_NOT_FOUND);
    CHECK(adapter == NULL);
    CHECK(yuan_session_set_adapters(session, &choice, 1) == YUAN_ERR_INVALID_ARGUMENT);
    CHECK(yuan_session_set_adapters(session, NULL, 0) == YUAN_OK);
    yuan_adapter_free(NULL);
  }

  /* non-blocking request: submit, poll until done, result */
  {
    yuan_generate_options go;
    yuan_request* req = NULL;
    yuan_generate_result r;
    char buf[64];
    size_t got = 0, total = 0;
    int done = 0, polls = 0;
    yuan_generate_options_init(&go);
    go.max_tokens = 24;
    go.flags = YUAN_GENERATE_IGNORE_EOS;
    CHECK(yuan_session_submit(session, prompt, &go, &req) == YUAN_OK);
    if (req != NULL) {
      /* the session is busy while the request runs */
      int32_t n_past = 0;
      yuan_status busy = yuan_session_n_past(session, &n_past);
      CHECK(busy == YUAN_OK || busy == YUAN_ERR_FAILED_PRECONDITION);
      /* A game loop: each "frame" waits at most 10 ms, then takes the text
       * that arrived; bounded at 3000 frames (30 s). */
      while (!done && polls < 3000) {
        yuan_status w = yuan_request_wait(req, 10);
        CHECK(w == YUAN_OK || w == YUAN_ERR_DEADLINE_EXCEEDED);
        CHECK(yuan_request_poll(req, buf, sizeof buf, &got, &done) == YUAN_OK);
        total += got;
        ++polls;
      }
      CHECK(done);
      yuan_generate_result_init(&r);
      CHECK(yuan_request_result(req, &r) == YUAN_OK);
      CHECK(r.completion_tokens == 24);
      CHECK(r.text_len == total);
      yuan_free(r.text);
      yuan_request_free(req);
    }
  }

  yuan_session_free(session);
  /* use after free is detected, not dereferenced */
  CHECK(yuan_session_cancel(session) == YUAN_ERR_INVALID_ARGUMENT);
  yuan_engine_free(engine);
  CHECK(yuan_engine_model_info(engine, &info) == YUAN_ERR_INVALID_ARGUMENT);
}

int main(int argc, char** argv) {
  FILE* f;
  if (argc < 2) {
    fprintf(stderr, "usage: test_c_api MODEL.gguf\n");
    return 2;
  }
  f = fopen(argv[1], "rb");
  if (f == NULL) {
    fprintf(stderr, "skipped: model '%s' not found\n", argv[1]);
    return 77;
  }
  fclose(f);
  yuan_set_log_level(YUAN_LOG_ERROR);
  test_versions_and_errors();
  test_engine(argv[1]);
  if (g_failures == 0) printf("c_api: all checks passed\n");
  return g_failures == 0 ? 0 : 1;
}

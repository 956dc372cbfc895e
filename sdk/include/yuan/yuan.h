/*
 * yuan.h — the yuan C API (ABI version 1).
 *
 * yuan runs a language model inside your process (CPU today; CUDA and a
 * remote OpenAI-compatible server behind the same calls later). This header
 * is the whole contract: pure C11, one prefix, opaque handles.
 *
 * Conventions, the same for every function:
 *  - Fallible calls return yuan_status. YUAN_OK is 0. On failure
 *    yuan_last_error() gives a message for this thread, and out-parameters
 *    are left untouched.
 *  - Options structs begin with `uint32_t struct_size`; fill them with the
 *    matching *_init() function, then change fields. The library reads only
 *    the first struct_size bytes, so programs built against an older header
 *    keep working: fields are only ever appended.
 *  - Result structs that the library fills also begin with struct_size, set
 *    by the caller (the *_init() function does it); the library writes only
 *    what that size covers.
 *  - Strings are UTF-8. Text in and out carries an explicit length where
 *    embedded NULs could matter; const char* inputs are NUL-terminated.
 *  - Memory: a buffer the library allocates for you is released with
 *    yuan_free(). Otherwise you pass your own buffer with a capacity and get
 *    the needed size back (YUAN_ERR_BUFFER_TOO_SMALL when it did not fit).
 *    Pointers passed to callbacks are borrowed for the duration of the call.
 *  - *_free(NULL) does nothing. Handles are checked: a NULL, already freed or
 *    foreign handle gives YUAN_ERR_INVALID_ARGUMENT, not a crash.
 *  - No C++ exception ever leaves the library.
 *
 * Threading: a yuan_engine may be shared by any number of threads. A
 * yuan_session is used by one thread at a time (a second concurrent call on
 * the same session returns YUAN_ERR_FAILED_PRECONDITION), except
 * yuan_session_cancel(), which any thread may call at any time. Callbacks
 * run on the thread that made the call that invokes them.
 */
#ifndef YUAN_YUAN_H_
#define YUAN_YUAN_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#if defined(YUAN_BUILDING_LIBRARY)
#define YUAN_API __declspec(dllexport)
#else
#define YUAN_API __declspec(dllimport)
#endif
#else
#define YUAN_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions ------------------------------------------------------------ */

#define YUAN_VERSION_MAJOR 0
#define YUAN_VERSION_MINOR 1
#define YUAN_VERSION_PATCH 0
#define YUAN_VERSION_STRING "0.1.0"
/* Bumped when an exported function's signature, an enum value or a struct's
 * released layout changes incompatibly; equals the shared library's SONAME
 * number (libyuan.so.1). */
#define YUAN_ABI_VERSION 1

/* "0.1.0": the library's version (may be newer than the header you built
 * against). Static string. Thread-safe. */
YUAN_API const char* yuan_version(void);
/* The library's YUAN_ABI_VERSION. A program should refuse to run when it
 * differs from the YUAN_ABI_VERSION it was compiled with. Thread-safe. */
YUAN_API uint32_t yuan_abi_version(void);

/* ---- status and errors --------------------------------------------------- */

/* Values never change; new ones are appended. 1-16 mirror absl::StatusCode
 * (and so gRPC's codes); yuan's own start at 100. */
typedef enum yuan_status {
  YUAN_OK = 0,
  YUAN_ERR_CANCELLED = 1,           /* stopped by yuan_session_cancel or a callback */
  YUAN_ERR_UNKNOWN = 2,
  YUAN_ERR_INVALID_ARGUMENT = 3,    /* bad parameter or handle */
  YUAN_ERR_DEADLINE_EXCEEDED = 4,   /* a timeout passed */
  YUAN_ERR_NOT_FOUND = 5,           /* a file or key does not exist */
  YUAN_ERR_ALREADY_EXISTS = 6,
  YUAN_ERR_PERMISSION_DENIED = 7,
  YUAN_ERR_RESOURCE_EXHAUSTED = 8,  /* out of memory, context full, queue full */
  YUAN_ERR_FAILED_PRECONDITION = 9, /* wrong state, e.g. the session is busy */
  YUAN_ERR_ABORTED = 10,
  YUAN_ERR_OUT_OF_RANGE = 11,       /* e.g. prompt longer than the context */
  YUAN_ERR_UNIMPLEMENTED = 12,      /* a known feature this build lacks */
  YUAN_ERR_INTERNAL = 13,           /* a bug in yuan: please report it */
  YUAN_ERR_UNAVAILABLE = 14,        /* a remote server cannot be reached */
  YUAN_ERR_DATA_LOSS = 15,
  YUAN_ERR_UNAUTHENTICATED = 16,
  YUAN_ERR_FORMAT = 100,            /* a model / tokenizer / adapter file is malformed */
  YUAN_ERR_BUFFER_TOO_SMALL = 101   /* the caller's buffer is too small; see *needed */
} yuan_status;

/* Static, English name of a status ("YUAN_ERR_FORMAT"); never NULL.
 * Thread-safe. */
YUAN_API const char* yuan_status_string(yuan_status status);

/* Message of the last failed call on this thread, "" when none failed.
 * Valid until the next yuan_* call on this thread. Thread-safe (the message
 * is thread-local). */
YUAN_API const char* yuan_last_error(void);

/* Frees memory the library allocated for the caller. NULL is a no-op. */
YUAN_API void yuan_free(void* ptr);

/* ---- logging -------------------------------------------------------------- */

typedef enum yuan_log_level {
  YUAN_LOG_DEBUG = 0,
  YUAN_LOG_INFO = 1,
  YUAN_LOG_WARN = 2,
  YUAN_LOG_ERROR = 3
} yuan_log_level;

/* Receives the library's log lines (no trailing newline). May be called from
 * any thread, including the library's worker threads, but never
 * concurrently with itself. `message` is borrowed for the call. */
typedef void (*yuan_log_fn)(yuan_log_level level, const char* message, void* user_data);

/* Installs a log callback (NULL restores the default: stderr) and the
 * minimum level delivered (default YUAN_LOG_WARN). Thread-safe. */
YUAN_API void yuan_set_log_callback(yuan_log_fn callback, void* user_data);
YUAN_API void yuan_set_log_level(yuan_log_level min_level);

/* ---- engine: one loaded model, shared by threads ------------------------- */

typedef struct yuan_engine yuan_engine;

typedef enum yuan_backend {
  YUAN_BACKEND_AUTO = 0,  /* from the model string: a path is local, http(s):// remote */
  YUAN_BACKEND_CPU = 1,
  YUAN_BACKEND_CUDA = 2,  /* not in this build yet: YUAN_ERR_UNIMPLEMENTED */
  /* An OpenAI-compatible server (yuan serve, vLLM, llama.cpp's server,
   * OpenAI): model is its URL, "http(s)://host:port/v1". Generation and chat
   * run on the server; see "Remote engines" below for what differs. */
  YUAN_BACKEND_REMOTE = 3
} yuan_backend;

typedef struct yuan_engine_options {
  uint32_t struct_size;
  /* Model to load: a GGUF file path, or the URL of an OpenAI-compatible
   * server, "http(s)://host:port/v1" (a URL without a path gets "/v1").
   * (Later: a Hugging Face folder, an hf: reference.) Borrowed for the
   * duration of yuan_engine_open. Required. */
  const char* model;
  yuan_backend backend;
  /* Compute threads; 0 = the number of physical cores (at most 8). */
  int32_t n_threads;
  /* Default context size of new sessions in tokens; 0 = the model's
   * training context, capped at 4096 (models trained on 256K contexts must
   * not silently reserve a 256K cache per session). */
  int32_t n_ctx;
  /* KV cache storage: YUAN_KV_F16 (default: half the memory, llama.cpp's
   * numerics) or YUAN_KV_F32 (exact attention). */
  int32_t kv_type;
  /* ---- end of ABI v1 fields; append only below this line ---- */

  /* Remote engines only (model is an http(s):// URL); local backends ignore
   * these. See docs/remote.md. */
  /* API key sent as "Authorization: Bearer <key>". NULL (default): the
   * environment's YUAN_API_KEY, else OPENAI_API_KEY, else none; "": none.
   * Copied by yuan_engine_open. */
  const char* api_key;
  /* The model name sent in requests. NULL or "" (default): the first id the
   * server lists at GET /v1/models. Copied by yuan_engine_open. */
  const char* remote_model;
  /* Limit for establishing a connection (TCP + TLS), per attempt, in ms;
   * 0 (default): 10000. Then YUAN_ERR_DEADLINE_EXCEEDED. */
  int32_t connect_timeout_ms;
  /* Longest silence while waiting for the server's response or between two
   * pieces of a streamed reply, in ms; 0 (default): 120000; -1: wait
   * forever. Then YUAN_ERR_DEADLINE_EXCEEDED. Long prompts on a slow server
   * can take a while before the first token arrives. */
  int32_t read_timeout_ms;
  /* Extra attempts (exponential backoff with jitter, or the server's
   * Retry-After when at most 10 s) after a connection error, HTTP 429 or
   * 5xx, only while no text has reached the caller: once a token was
   * delivered a failure is returned, never retried. Default 2; 0: none. */
  int32_t max_retries;
  /* ---- end of the fields added after v1 (remote); append only below ---- */
} yuan_engine_options;

enum { YUAN_KV_F16 = 0, YUAN_KV_F32 = 1 };

/* Fills defaults and sets struct_size to `size`, writing only the first
 * `size` bytes (the caller's sizeof, never more): call it through the
 * yuan_engine_options_init() macro below. size < the v1 size (32) is
 * ignored, like NULL. Thread-safe. */
YUAN_API void yuan_engine_options_init_sized(yuan_engine_options* options, size_t size);

/* Fills defaults and sets struct_size. NULL is ignored. Thread-safe.
 * Source code calls the macro, which passes this header's sizeof; the
 * exported function (for programs built against the v1 header, and for
 * bindings that call it by name) fills only the v1 fields, so it never
 * writes past an older, smaller struct. */
YUAN_API void (yuan_engine_options_init)(yuan_engine_options* options);
#define yuan_engine_options_init(options) \
  yuan_engine_options_init_sized((options), sizeof(yuan_engine_options))

/* Loads the model. On success *out_engine owns it; free it with
 * yuan_engine_free. Errors: INVALID_ARGUMENT (NULL, bad struct_size, bad
 * values), NOT_FOUND (no such file), FORMAT (malformed file, the message
 * names the problem), UNIMPLEMENTED (an architecture, tensor type or backend
 * this build lacks), RESOURCE_EXHAUSTED. Thread-safe. */
YUAN_API yuan_status yuan_engine_open(const yuan_engine_options* options,
                                      yuan_engine** out_engine);

/* Remote engines (model "http(s)://host:port/v1"). yuan_engine_open asks
 * the server for GET /v1/models (the model name, context size) and fails
 * with UNAVAILABLE when it cannot be reached, UNAUTHENTICATED /
 * PERMISSION_DENIED for a refused key. Then:
 *  - yuan_session_generate / _submit send the prompt to /v1/completions and
 *    yuan_session_chat the messages to /v1/chat/completions, streamed; the
 *    server renders the chat template (yuan_chat_options.chat_template is
 *    UNIMPLEMENTED; enable_thinking is passed as chat_template_kwargs). Each
 *    call is independent: the server's prompt cache, not the session, reuses
 *    earlier turns (cached_tokens is what the server reports).
 *    on_token events carry the token id when the server returns ids (yuan
 *    serve, vLLM), else -1; prompt_ms is the time to the first token as the
 *    client sees it.
 *  - Errors: the server's HTTP status maps to 400 INVALID_ARGUMENT (a
 *    context-length error: OUT_OF_RANGE), 401 UNAUTHENTICATED, 403
 *    PERMISSION_DENIED, 404 NOT_FOUND, 413 OUT_OF_RANGE, 429
 *    RESOURCE_EXHAUSTED, 5xx UNAVAILABLE, with the server's message in
 *    yuan_last_error(); a lost connection is UNAVAILABLE, a timeout
 *    DEADLINE_EXCEEDED, a malformed response DATA_LOSS.
 *  - yuan_session_cancel / yuan_request_cancel abort the HTTP request within
 *    about 50 ms, even while the server sends nothing.
 *  - No model runs in this process, so these return YUAN_ERR_UNIMPLEMENTED:
 *    yuan_tokenize, yuan_detokenize, yuan_chat_apply_template,
 *    yuan_session_decode, yuan_session_save/_load(_file). yuan_session_logits
 *    returns FAILED_PRECONDITION (nothing is evaluated locally);
 *    yuan_session_n_past is 0. yuan_engine_metadata knows "general.name",
 *    "remote.url" and "remote.server".
 *  - Proxies come from the environment (http_proxy, https_proxy, no_proxy,
 *    all_proxy, read by libcurl); TLS certificates are always verified.
 * Threading is as for local engines: sessions of one remote engine may run
 * requests concurrently, each on its own connection. */

/* Releases the engine. Sessions still open keep the model alive until they
 * are freed; the engine handle itself becomes invalid at once. NULL is a
 * no-op. Must not race with other calls that use this engine handle. */
YUAN_API void yuan_engine_free(yuan_engine* engine);

/* Facts about the loaded model. Strings are owned by the engine and live as
 * long as it (or a session of it) does. */
typedef struct yuan_model_info {
  uint32_t struct_size;
  const char* architecture;  /* "llama" */
  const char* name;          /* general.name, may be "" */
  const char* backend;       /* "cpu" */
  int32_t n_vocab;
  int32_t n_ctx_train;
  int32_t n_embd;
  int32_t n_layer;
  int32_t n_head;
  int32_t n_head_kv;
  uint64_t n_params;
  uint64_t size_bytes;       /* bytes of weights */
  int32_t bos_token;         /* -1 when none */
  int32_t eos_token;         /* -1 when none */
  int32_t n_threads;         /* compute threads in use */
  int32_t n_ctx;             /* default session context */
  /* ---- end of ABI v1 fields ---- */
} yuan_model_info;

/* Sets struct_size (other fields zero). NULL is ignored. */
YUAN_API void yuan_model_info_init(yuan_model_info* info);

/* Fills *info (up to info->struct_size). Thread-safe. */
YUAN_API yuan_status yuan_engine_model_info(const yuan_engine* engine, yuan_model_info* info);

/* A metadata value of the model file as text (numbers printed, arrays
 * summarised), e.g. key "general.name". Size protocol: *needed receives the
 * byte length without the NUL; the text is written NUL-terminated when
 * capacity > *needed, else YUAN_ERR_BUFFER_TOO_SMALL. NOT_FOUND for an absent
 * key. Thread-safe. */
YUAN_API yuan_status yuan_engine_metadata(const yuan_engine* engine, const char* key,
                                          char* buffer, size_t capacity, size_t* needed);

/* ---- tokens ---------------------------------------------------------------- */

typedef int32_t yuan_token;

enum {
  YUAN_TOKENIZE_ADD_BOS = 1u << 0,       /* prepend BOS when the model uses one */
  YUAN_TOKENIZE_PARSE_SPECIAL = 1u << 1  /* "<s>" etc. in the text become control tokens */
};

/* Text -> token ids. `text` has `text_len` bytes (need not be NUL-terminated).
 * Size protocol: *n_tokens receives the count; ids are written when
 * capacity >= count, else YUAN_ERR_BUFFER_TOO_SMALL (call with tokens = NULL,
 * capacity = 0 to query). Thread-safe. */
YUAN_API yuan_status yuan_tokenize(const yuan_engine* engine, const char* text, size_t text_len,
                                   uint32_t flags, yuan_token* tokens, size_t capacity,
                                   size_t* n_tokens);

enum {
  YUAN_DETOKENIZE_RENDER_SPECIAL = 1u << 0  /* control tokens appear as their text */
};

/* Token ids -> UTF-8 text (the leading space the tokenizer inserts is
 * removed). Size protocol as yuan_engine_metadata. An id out of range is
 * INVALID_ARGUMENT. Thread-safe. */
YUAN_API yuan_status yuan_detokenize(const yuan_engine* engine, const yuan_token* tokens,
                                     size_t n_tokens, uint32_t flags, char* buffer,
                                     size_t capacity, size_t* needed);

/* ---- sampling ----------------------------------------------------------------- */

/* The sampler chain, applied in this order: penalties -> top-k -> top-p ->
 * min-p -> temperature -> random draw (with a grammar: a token it does not
 * allow is replaced by a draw among the allowed ones). temperature <= 0 is greedy. The same
 * seed, model and inputs give the same tokens on any thread count. */
typedef struct yuan_sampling_params {
  uint32_t struct_size;
  float temperature;        /* default 0.8; <= 0: greedy */
  int32_t top_k;            /* default 40; <= 0: off */
  float top_p;              /* default 0.95; >= 1: off */
  float min_p;              /* default 0.05; <= 0: off */
  float repeat_penalty;     /* default 1.0 (off) */
  int32_t repeat_last_n;    /* default 64; -1: the whole context */
  float presence_penalty;   /* default 0 */
  float frequency_penalty;  /* default 0 */
  uint64_t seed;            /* default 0xFFFFFFFFFFFFFFFF: a random seed per call */
  /* ---- end of ABI v1 fields; append only below this line ---- */

  /* Structured output (docs/structured-output.md): the generated text is a
   * sentence of this grammar, by construction. At most one of the two;
   * both NULL (default): free text. Borrowed for the call (copied by
   * yuan_session_submit). A grammar or schema that does not compile is
   * INVALID_ARGUMENT, the message naming the problem (the line and column,
   * or the unsupported JSON Schema keyword and where it is). Generation
   * stops (YUAN_FINISH_STOP) once the text is complete and nothing can
   * follow; max_tokens can still cut it short (YUAN_FINISH_LENGTH). */
  const char* grammar;      /* GBNF, llama.cpp's grammar syntax; root rule "root" */
  const char* json_schema;  /* a JSON Schema (JSON text); "{}" or {"type":"object"}: any JSON object */
  /* ---- end of the fields added after v1 (structured output) ---- */
} yuan_sampling_params;

#define YUAN_SEED_RANDOM UINT64_C(0xFFFFFFFFFFFFFFFF)

/* Fills defaults and sets struct_size to `size`, writing only the first
 * `size` bytes: call it through the yuan_sampling_params_init() macro.
 * size < the v1 size (48) is ignored, like NULL. */
YUAN_API void yuan_sampling_params_init_sized(yuan_sampling_params* params, size_t size);

/* Fills defaults and sets struct_size. NULL is ignored. As with
 * yuan_engine_options_init, source code calls the macro (this header's
 * sizeof); the exported function fills only the v1 fields. */
YUAN_API void (yuan_sampling_params_init)(yuan_sampling_params* params);
#define yuan_sampling_params_init(params) \
  yuan_sampling_params_init_sized((params), sizeof(yuan_sampling_params))

/* ---- adapters: LoRA on the shared base ------------------------------------ */

/* A LoRA adapter loaded for one engine. Any number of adapters share the
 * engine's one copy of the base weights: nothing is merged or reloaded, and
 * sessions with different adapters (and none) run side by side. */
typedef struct yuan_adapter yuan_adapter;

/* Loads an adapter for the engine's model. `path` is a yuan adapter file
 * (.yadp), a PEFT folder (adapter_config.json + adapter_model.safetensors)
 * or a llama.cpp GGUF LoRA adapter; see docs/adapters.md. It takes
 * milliseconds (the adapter's own size), not a model reload. Errors:
 * NOT_FOUND, FORMAT (damaged file; the message names the problem),
 * FAILED_PRECONDITION (made for another base model: the message names the
 * mismatch). Remote engines: `path` is the name under which the server
 * serves the adapter as a model (yuan serve --adapter NAME=FILE, vLLM
 * --lora-modules), checked against GET /v1/models (NOT_FOUND when it is not
 * listed); requests using it go to that model name. Thread-safe; may run
 * while other threads generate. */
YUAN_API yuan_status yuan_adapter_load(yuan_engine* engine, const char* path,
                                       yuan_adapter** out_adapter);

/* Releases the handle. Sessions and requests that chose the adapter keep it
 * alive as long as they use it, so this is safe while they run. NULL is a
 * no-op. Must not race with calls that pass this handle. */
YUAN_API void yuan_adapter_free(yuan_adapter* adapter);

/* One adapter chosen for generation, with its strength: scale 1 applies it
 * as trained (the delta is scale * alpha / r * B A), 0 not at all, and the
 * deltas of several chosen adapters add up. This struct's layout is
 * frozen. */
typedef struct yuan_adapter_choice {
  yuan_adapter* adapter;
  float scale;
} yuan_adapter_choice;

/* ---- sessions: one conversation's context (KV cache) ------------------------ */

typedef struct yuan_session yuan_session;

typedef struct yuan_session_options {
  uint32_t struct_size;
  int32_t n_ctx;  /* context size in tokens; 0 = the engine's default */
  /* ---- end of ABI v1 fields ---- */
} yuan_session_options;

YUAN_API void yuan_session_options_init(yuan_session_options* options);

/* Opens a session on the engine (options may be NULL for defaults). The
 * session keeps the model alive. Thread-safe with respect to the engine. */
YUAN_API yuan_status yuan_session_open(yuan_engine* engine, const yuan_session_options* options,
                                       yuan_session** out_session);

/* Releases the session; a generation running on it must have returned (a
 * pending yuan_request is cancelled and waited for). NULL is a no-op. */
YUAN_API void yuan_session_free(yuan_session* session);

/* Forgets the context (the KV cache is reused). */
YUAN_API yuan_status yuan_session_reset(yuan_session* session);

/* Tokens currently in the session's context. */
YUAN_API yuan_status yuan_session_n_past(const yuan_session* session, int32_t* n_past);

/* Chooses the adapters of the session's following calls (generate, chat,
 * submit, decode); n_adapters = 0: the base model alone (the default). The
 * array is copied and the handles may be freed afterwards. A call's own
 * yuan_generate_options.adapters replace these for that call. The context
 * in the KV cache is reused only by calls with the same adapters and
 * scales; yuan_session_decode on a context computed with other adapters
 * fails with FAILED_PRECONDITION (yuan_session_reset first). Errors:
 * INVALID_ARGUMENT (a NULL or freed handle, an adapter of another engine, a
 * non-finite scale), UNIMPLEMENTED (remote engines apply one adapter at
 * scale 1), FAILED_PRECONDITION (the session is busy). */
YUAN_API yuan_status yuan_session_set_adapters(yuan_session* session,
                                               const yuan_adapter_choice* adapters,
                                               size_t n_adapters);

/* Low-level: appends `tokens` to the context and evaluates them; afterwards
 * yuan_session_logits gives the next-token logits. Errors: INVALID_ARGUMENT
 * (id out of range), OUT_OF_RANGE (context full), CANCELLED. On error the
 * context is as it was before the call. */
YUAN_API yuan_status yuan_session_decode(yuan_session* session, const yuan_token* tokens,
                                         size_t n_tokens);

/* The next-token logits after the last decode or generate step: *logits
 * points at n_vocab floats owned by the session, valid until the next call
 * on this session. FAILED_PRECONDITION when nothing was evaluated yet. */
YUAN_API yuan_status yuan_session_logits(yuan_session* session, const float** logits,
                                         int32_t* n_vocab);

/* ---- generation ---------------------------------------------------------------- */

typedef enum yuan_finish_reason {
  YUAN_FINISH_NONE = 0,       /* still running (requests) or failed before starting */
  YUAN_FINISH_STOP = 1,       /* end-of-generation token or a stop string */
  YUAN_FINISH_LENGTH = 2,     /* max_tokens reached or the context is full */
  YUAN_FINISH_CANCELLED = 3,  /* yuan_session_cancel, yuan_request_cancel or the callback */
  YUAN_FINISH_ERROR = 4
} yuan_finish_reason;

/* One piece of streamed output. `text` is valid UTF-8 (a character split
 * across tokens is held back until it completes; text that may be the start
 * of a stop string is held back until it cannot be); it may be empty when a
 * token produced no visible text yet. Borrowed for the callback's duration. */
typedef struct yuan_token_event {
  uint32_t struct_size;    /* the library's size of this struct (>= the v1 size) */
  const char* text;
  size_t text_len;
  yuan_token token;        /* the token just generated; -1 for the final event that
                              flushes held-back text when generation ends */
  int32_t index;           /* 0 for the first generated token */
  /* ---- end of ABI v1 fields ---- */
} yuan_token_event;

/* Streaming callback: return 0 to continue, non-zero to stop (the
 * generation ends with YUAN_FINISH_CANCELLED and YUAN_OK). Runs on the
 * generating thread. Must not call functions on the same session. */
typedef int (*yuan_token_fn)(const yuan_token_event* event, void* user_data);

enum {
  YUAN_GENERATE_NO_BOS = 1u << 0,      /* do not prepend BOS to the prompt */
  YUAN_GENERATE_IGNORE_EOS = 1u << 1,  /* keep going past end-of-generation tokens */
  YUAN_GENERATE_PARSE_SPECIAL = 1u << 2
};

typedef struct yuan_generate_options {
  uint32_t struct_size;
  int32_t max_tokens;                   /* default 256; tokens to generate at most */
  const yuan_sampling_params* sampling; /* NULL = defaults; borrowed for the call */
  const char* const* stop;              /* stop strings (UTF-8), borrowed; may be NULL */
  size_t n_stop;
  uint32_t flags;                       /* YUAN_GENERATE_* */
  yuan_token_fn on_token;               /* may be NULL */
  void* user_data;                      /* passed to on_token */
  /* ---- end of ABI v1 fields; append only below this line ---- */

  /* The adapters of this call: NULL (default) uses the session's
   * (yuan_session_set_adapters); otherwise exactly these n_adapters, so a
   * non-NULL pointer with n_adapters = 0 runs the base model alone. The
   * array is read during the call (copied by yuan_session_submit). */
  const yuan_adapter_choice* adapters;
  size_t n_adapters;
  /* ---- end of the fields added after v1 (adapters); append only below ---- */
} yuan_generate_options;

/* Fills defaults and sets struct_size to `size`, writing only the first
 * `size` bytes: call it through the yuan_generate_options_init() macro.
 * size < the v1 size (56 on 64-bit targets) is ignored, like NULL. */
YUAN_API void yuan_generate_options_init_sized(yuan_generate_options* options, size_t size);

/* Fills defaults and sets struct_size. NULL is ignored. As with
 * yuan_engine_options_init, source code calls the macro (this header's
 * sizeof); the exported function fills only the v1 fields. */
YUAN_API void (yuan_generate_options_init)(yuan_generate_options* options);
#define yuan_generate_options_init(options) \
  yuan_generate_options_init_sized((options), sizeof(yuan_generate_options))

typedef struct yuan_generate_result {
  uint32_t struct_size;
  yuan_finish_reason finish_reason;
  int32_t prompt_tokens;      /* tokens in the prompt (with BOS) */
  int32_t cached_tokens;      /* of those, reused from the session's context */
  int32_t completion_tokens;  /* tokens generated */
  double prompt_ms;           /* time to evaluate the prompt */
  double generation_ms;       /* time from the first to the last generated token */
  /* The whole generated text (stop string excluded), NUL-terminated,
   * allocated by the library: release with yuan_free. NULL on error. */
  char* text;
  size_t text_len;
  /* ---- end of ABI v1 fields ---- */
} yuan_generate_result;

YUAN_API void yuan_generate_result_init(yuan_generate_result* result);

/* Generates a continuation of `prompt` (NUL-terminated UTF-8).
 *
 * The session's context becomes BOS + prompt + generated tokens. When the
 * previous context starts with the same tokens, that prefix is reused from
 * the KV cache rather than recomputed (so a multi-turn chat that resends the
 * whole conversation only pays for the new turn).
 *
 * Streams through options->on_token, fills *result (may be NULL) and
 * returns YUAN_OK when generation ended normally, by a stop condition, or by
 * cancellation (finish_reason tells which). Errors: INVALID_ARGUMENT,
 * OUT_OF_RANGE (the prompt does not fit the context), FAILED_PRECONDITION
 * (the session is busy). Blocks the calling thread. */
YUAN_API yuan_status yuan_session_generate(yuan_session* session, const char* prompt,
                                           const yuan_generate_options* options,
                                           yuan_generate_result* result);

/* Asks the generation running on the session (blocking call or request) to
 * stop; it returns promptly (within one model step) with
 * YUAN_FINISH_CANCELLED. No effect when nothing runs. Any thread, any time
 * while the session handle is valid. */
YUAN_API yuan_status yuan_session_cancel(yuan_session* session);

/* ---- non-blocking requests (game loops: submit, poll each frame, cancel) ----- */

typedef struct yuan_request yuan_request;

/* Starts yuan_session_generate on a background thread. The session is busy
 * until the request finishes. The prompt, stop strings and sampling params
 * are copied; on_token in options is ignored (poll instead). */
YUAN_API yuan_status yuan_session_submit(yuan_session* session, const char* prompt,
                                         const yuan_generate_options* options,
                                         yuan_request** out_request);

/* Non-blocking: moves up to capacity bytes of newly generated text (whole
 * UTF-8 characters only) into buffer, sets *n_written, and *done to 1 once
 * the request has finished and all its text was taken. `buffer` may be NULL
 * with capacity 0 to only check *done. Thread-safe. */
YUAN_API yuan_status yuan_request_poll(yuan_request* request, char* buffer, size_t capacity,
                                       size_t* n_written, int* done);

/* Waits until the request finishes or timeout_ms passes (-1: forever);
 * DEADLINE_EXCEEDED on timeout. */
YUAN_API yuan_status yuan_request_wait(yuan_request* request, int32_t timeout_ms);

/* Asks the request to stop; returns at once. Thread-safe. */
YUAN_API yuan_status yuan_request_cancel(yuan_request* request);

/* After the request finished: its status (the value yuan_session_generate
 * would have returned) and, when result is not NULL, its result (text is
 * newly allocated: yuan_free it). FAILED_PRECONDITION while running. */
YUAN_API yuan_status yuan_request_result(yuan_request* request, yuan_generate_result* result);

/* Cancels if running, waits for the thread, releases. NULL is a no-op. */
YUAN_API void yuan_request_free(yuan_request* request);

/* ---- conversations -------------------------------------------------------- */

/* One chat message. Both strings are UTF-8, NUL-terminated, borrowed for the
 * call. role is "system", "user", "assistant" (or whatever the model's chat
 * template knows, e.g. "tool"). This struct's layout is frozen. */
typedef struct yuan_chat_message {
  const char* role;
  const char* content;
} yuan_chat_message;

typedef struct yuan_chat_options {
  uint32_t struct_size;
  /* NULL: the model's own template (GGUF tokenizer.chat_template or the
   * folder's tokenizer_config.json), falling back to ChatML. Otherwise the
   * name of a built-in template ("chatml", "llama3", "qwen3", "deepseek3",
   * "hunyuan", "llama2") or a Jinja template source. Borrowed. */
  const char* chat_template;
  /* For templates that know it (Qwen3): 1 = think first, 0 = answer
   * directly, -1 (default) = the template's own default. */
  int32_t enable_thinking;
  /* ---- end of ABI v1 fields ---- */
} yuan_chat_options;

YUAN_API void yuan_chat_options_init(yuan_chat_options* options);

/* Renders messages with the chat template into the prompt text the model
 * sees (with the assistant header when add_generation_prompt != 0). Size
 * protocol as yuan_engine_metadata. INVALID_ARGUMENT for a template that
 * fails to parse or render (the message names the construct). Thread-safe. */
YUAN_API yuan_status yuan_chat_apply_template(const yuan_engine* engine,
                                              const yuan_chat_message* messages, size_t n_messages,
                                              const yuan_chat_options* options,
                                              int add_generation_prompt, char* buffer,
                                              size_t capacity, size_t* needed);

/* Generates the assistant's reply to a conversation: renders all messages
 * with the chat template (plus the assistant header), then behaves as
 * yuan_session_generate on that text, with special tokens in the template
 * parsed as such and no second BOS. Pass the whole conversation each turn:
 * the part already in the session's KV cache (the previous turns, including
 * the previous reply) is reused, so result->prompt_tokens -
 * result->cached_tokens counts only the new turn's tokens.
 * chat_options and gen_options may be NULL. */
YUAN_API yuan_status yuan_session_chat(yuan_session* session, const yuan_chat_message* messages,
                                       size_t n_messages, const yuan_chat_options* chat_options,
                                       const yuan_generate_options* gen_options,
                                       yuan_generate_result* result);

/* ---- session state: save and restore a context ---------------------------- */

/* Serialises the session's context (tokens, KV cache rows in use, last
 * logits) with a fingerprint of the model. Size protocol: *needed receives
 * the byte size; written when capacity >= *needed, else
 * YUAN_ERR_BUFFER_TOO_SMALL. The session must not be busy. */
YUAN_API yuan_status yuan_session_save(yuan_session* session, void* buffer, size_t capacity,
                                       size_t* needed);

/* Replaces the session's context with a saved one. FORMAT for a damaged
 * buffer, FAILED_PRECONDITION for a state from another model (the message
 * says what differs) or one longer than this session's context. On error
 * the session is unchanged. */
YUAN_API yuan_status yuan_session_load(yuan_session* session, const void* data, size_t size);

/* The same to and from a file (written atomically: temp file + rename). */
YUAN_API yuan_status yuan_session_save_file(yuan_session* session, const char* path);
YUAN_API yuan_status yuan_session_load_file(yuan_session* session, const char* path);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* YUAN_YUAN_H_ */

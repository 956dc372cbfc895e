// yuan run -m MODEL -p PROMPT: streams the continuation to stdout, timing to
// stderr. Uses only the public C API.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "yuan/yuan.h"

namespace yuan::cli {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void OnSigint(int) { g_interrupted = 1; }

struct StreamState {
  bool ids = false;
  int count = 0;
};

int OnToken(const yuan_token_event* ev, void* user) {
  auto* s = static_cast<StreamState*>(user);
  if (s->ids) {
    if (ev->token >= 0) std::printf("%s%d", s->count++ ? " " : "", ev->token);
  } else {
    std::fwrite(ev->text, 1, ev->text_len, stdout);
  }
  std::fflush(stdout);
  return g_interrupted ? 1 : 0;
}

}  // namespace

int RunCommand(int argc, char** argv) {
  std::string model, prompt;
  int64_t n_predict = 128, threads = 0, ctx = 0;
  SamplingFlags sampling;
  std::vector<std::string> stops;
  bool ids = false, ignore_eos = false, no_bos = false, verbose = false;
  ArgParser p("run", "-m MODEL -p PROMPT [options]");
  p.Add({"-m", "--model"}, "model file (GGUF)", &model);
  p.Add({"-p", "--prompt"}, "prompt text", &prompt);
  p.Add({"-n", "--n-predict"}, "tokens to generate at most (default 128)", &n_predict);
  p.Add({"-t", "--threads"}, "compute threads (default: physical cores)", &threads);
  p.Add({"-c", "--ctx-size"}, "context size (default: the model's, at most 4096)", &ctx);
  std::vector<std::string> adapters;
  p.Add({"--adapter"}, "LoRA adapter FILE[:SCALE] (.yadp, PEFT folder or GGUF LoRA); repeatable",
        &adapters);
  sampling.Register(&p);
  p.Add({"--stop"}, "stop string (repeatable)", &stops);
  p.Add({"--ignore-eos"}, "keep generating past end-of-text tokens", &ignore_eos);
  p.Add({"--no-bos"}, "do not prepend the BOS token", &no_bos);
  p.Add({"--ids"}, "print generated token ids instead of text", &ids);
  p.Add({"-v", "--verbose"}, "log loading details", &verbose);
  if (int rc = p.Parse(argc, argv, 2); rc >= 0) return rc;
  if (!p.positional().empty()) return p.UsageError("unexpected argument '" + p.positional()[0] + "'");
  if (std::string why; !sampling.Resolve(&why)) return p.UsageError(why);
  if (model.empty()) return p.UsageError("no model given (-m MODEL)");
  if (prompt.empty()) return p.UsageError("no prompt given (-p PROMPT)");
  if (n_predict < 0 || threads < 0 || ctx < 0) {
    return p.UsageError("-n, -t and -c must not be negative");
  }
  if (verbose) yuan_set_log_level(YUAN_LOG_INFO);

  yuan_engine_options eo;
  yuan_engine_options_init(&eo);
  eo.model = model.c_str();
  eo.n_threads = static_cast<int32_t>(threads);
  eo.n_ctx = static_cast<int32_t>(ctx);
  yuan_engine* engine = nullptr;
  if (yuan_engine_open(&eo, &engine) != YUAN_OK) {
    std::fprintf(stderr, "yuan run: %s\n", yuan_last_error());
    return kExitFailure;
  }
  yuan_session* session = nullptr;
  if (yuan_session_open(engine, nullptr, &session) != YUAN_OK) {
    std::fprintf(stderr, "yuan run: %s\n", yuan_last_error());
    yuan_engine_free(engine);
    return kExitFailure;
  }
  if (!UseAdapterFlags("run", engine, session, adapters)) {
    yuan_session_free(session);
    yuan_engine_free(engine);
    return kExitFailure;
  }

  yuan_sampling_params sp;
  yuan_sampling_params_init(&sp);
  sampling.Fill(&sp);

  std::vector<const char*> stop_ptrs;
  for (const auto& s : stops) stop_ptrs.push_back(s.c_str());
  StreamState state;
  state.ids = ids;
  yuan_generate_options go;
  yuan_generate_options_init(&go);
  go.max_tokens = static_cast<int32_t>(n_predict);
  go.sampling = &sp;
  go.stop = stop_ptrs.data();
  go.n_stop = stop_ptrs.size();
  go.flags = (ignore_eos ? YUAN_GENERATE_IGNORE_EOS : 0) | (no_bos ? YUAN_GENERATE_NO_BOS : 0);
  go.on_token = &OnToken;
  go.user_data = &state;

  std::signal(SIGINT, OnSigint);
  if (!ids) std::fputs(prompt.c_str(), stdout);
  yuan_generate_result result;
  yuan_generate_result_init(&result);
  int rc = kExitOk;
  if (yuan_session_generate(session, prompt.c_str(), &go, &result) != YUAN_OK) {
    std::fprintf(stderr, "\nyuan run: %s\n", yuan_last_error());
    rc = kExitFailure;
  } else {
    std::printf("\n");
    std::fflush(stdout);  // the text ends before the timing line, also when piped
    static const char* kReasons[] = {"none", "stop", "length", "cancelled", "error"};
    std::fprintf(stderr,
                 "prompt: %d tokens in %.1f ms (%.1f t/s) | generation: %d tokens in %.1f ms "
                 "(%.1f t/s) | finish: %s\n",
                 result.prompt_tokens, result.prompt_ms,
                 result.prompt_ms > 0 ? 1000.0 * (result.prompt_tokens - result.cached_tokens) / result.prompt_ms : 0.0,
                 result.completion_tokens, result.generation_ms,
                 result.generation_ms > 0 ? 1000.0 * result.completion_tokens / result.generation_ms : 0.0,
                 kReasons[result.finish_reason]);
    yuan_free(result.text);
  }
  yuan_session_free(session);
  yuan_engine_free(engine);
  return rc;
}

}  // namespace yuan::cli

// yuan serve -m MODEL: the OpenAI-compatible HTTP API (docs/serving.md).
// Drives the engine directly (Engine::Open + the batching scheduler), not
// the C ABI: the server is part of the runtime. SIGINT / SIGTERM stop it
// gracefully (connections closed, sequences cancelled) with exit status 0.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cli/args.h"
#include "runtime/core/log.h"
#include "runtime/engine/engine.h"
#include "runtime/server/server.h"

namespace yuan::cli {

int ServeCommand(int argc, char** argv) {
  std::string model, host = "127.0.0.1", alias, chat_template;
  int64_t port = 8080, threads = 0, ctx = 0, parallel = 4, kv_tokens = 0, max_queue = 64, batch = 512;
  std::vector<std::string> api_keys;
  bool verbose = false;
  ArgParser p("serve", "-m MODEL [--host 127.0.0.1] [--port 8080] [options]");
  p.Add({"-m", "--model"}, "model file (GGUF) or Hugging Face folder", &model);
  p.Add({"--host"}, "address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)", &host);
  p.Add({"--port"}, "TCP port (default 8080; 0 = any free port)", &port);
  p.Add({"-t", "--threads"}, "compute threads (default: physical cores, at most 8)", &threads);
  p.Add({"-c", "--ctx-size"}, "context per sequence, prompt + generation (default: the model's, at most 4096)", &ctx);
  p.Add({"-np", "--parallel"}, "sequences decoded at once (default 4)", &parallel);
  p.Add({"--kv-tokens"}, "positions in the shared KV cache (default: ctx * parallel / 2, at least ctx)", &kv_tokens);
  p.Add({"--max-queue"}, "requests waiting beyond the running ones before 429 (default 64)", &max_queue);
  p.Add({"-b", "--batch-size"}, "tokens evaluated per step, prompt chunks + decodes (default 512)", &batch);
  p.Add({"--api-key"}, "accept this bearer token on /v1/* (repeatable; default: no authentication)", &api_keys);
  p.Add({"--alias"}, "model id shown to clients (default: the model file's name)", &alias);
  p.Add({"--chat-template"}, "built-in template name or Jinja file (default: the model's)", &chat_template);
  std::vector<std::string> adapters;
  bool allow_adapter_updates = false;
  p.Add({"--adapter"}, "serve a LoRA adapter as model NAME: NAME=FILE (.yadp, PEFT folder or GGUF LoRA); repeatable",
        &adapters);
  p.Add({"--allow-adapter-updates"},
        "enable POST /v1/load_lora_adapter and /v1/unload_lora_adapter (clients can make the server read files)",
        &allow_adapter_updates);
  p.Add({"-v", "--verbose"}, "log loading details", &verbose);
  if (int rc = p.Parse(argc, argv, 2); rc >= 0) return rc;
  if (!p.positional().empty()) return p.UsageError("unexpected argument '" + p.positional()[0] + "'");
  if (model.empty()) return p.UsageError("no model given (-m MODEL)");
  if (port < 0 || port > 65535) return p.UsageError("--port must be between 0 and 65535");
  if (threads < 0 || ctx < 0 || kv_tokens < 0) return p.UsageError("-t, -c and --kv-tokens must not be negative");
  if (ctx > (int64_t{1} << 24)) return p.UsageError("-c is too large");
  if (parallel < 1 || parallel > 1024) return p.UsageError("-np must be between 1 and 1024");
  if (max_queue < 0 || max_queue > 1000000) return p.UsageError("--max-queue must be between 0 and 1000000");
  if (batch < 1 || batch > (int64_t{1} << 20)) return p.UsageError("-b must be between 1 and 1048576");
  for (const std::string& k : api_keys) {
    if (k.empty()) return p.UsageError("--api-key must not be empty");
  }
  if (host.empty()) return p.UsageError("--host must not be empty");
  std::vector<std::pair<std::string, std::string>> named_adapters;
  for (const std::string& a : adapters) {
    const size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == a.size()) {
      return p.UsageError("--adapter needs NAME=FILE, got '" + a + "'");
    }
    named_adapters.emplace_back(a.substr(0, eq), a.substr(eq + 1));
  }
  if (verbose) SetLogLevel(LogLevel::kInfo);
  if (!chat_template.empty()) {
    std::ifstream f(chat_template);
    if (f) chat_template.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }

  // Block the stop signals in every thread (the server's threads inherit
  // this mask) and wait for them here.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  EngineOptions eo;
  eo.model_path = model;
  eo.n_threads = static_cast<int>(threads);
  eo.n_ctx = static_cast<int>(ctx);
  absl::StatusOr<std::shared_ptr<Engine>> engine = Engine::Open(eo);
  if (!engine.ok()) {
    std::fprintf(stderr, "yuan serve: %s\n", std::string(engine.status().message()).c_str());
    return kExitFailure;
  }

  server::ServeOptions so;
  so.host = host;
  so.port = static_cast<int>(port);
  so.api_keys = api_keys;
  so.model_name = alias;
  so.model_path = model;
  so.chat.chat_template = chat_template;
  so.scheduler.max_sequences = static_cast<int>(parallel);
  so.scheduler.kv_tokens = kv_tokens;
  so.scheduler.n_ctx = static_cast<int32_t>(ctx);
  so.scheduler.max_queue = static_cast<int>(max_queue);
  so.scheduler.max_batch_tokens = batch;
  absl::StatusOr<std::unique_ptr<server::ApiServer>> srv = server::ApiServer::Start(*engine, so);
  if (!srv.ok()) {
    std::fprintf(stderr, "yuan serve: %s\n", std::string(srv.status().message()).c_str());
    return kExitFailure;
  }
  const auto& sched = (*srv)->scheduler().options();
  std::fprintf(stderr,
               "yuan serve: model '%s' on http://%s:%d/v1 (%d sequences x %d context, KV cache %lld positions%s)\n",
               (*srv)->model_name().c_str(), host.c_str(), (*srv)->port(), sched.max_sequences, sched.n_ctx,
               static_cast<long long>(sched.kv_tokens), api_keys.empty() ? "" : ", API key required");
  for (const auto& [name, path] : named_adapters) {
    std::fprintf(stderr, "yuan serve: adapter '%s' from %s\n", name.c_str(), path.c_str());
  }
  std::fflush(stderr);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "yuan serve: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  (*srv)->Stop();
  return kExitOk;
}

}  // namespace yuan::cli

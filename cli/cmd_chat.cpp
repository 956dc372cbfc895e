// yuan chat -m MODEL: an interactive multi-turn conversation in the
// terminal, through the public C API. The KV cache is kept across turns, so
// each turn only evaluates its new tokens (shown after each reply).
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "cli/args.h"
#include "yuan/yuan.h"

namespace yuan::cli {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;
volatile std::sig_atomic_t g_generating = 0;
void OnSigint(int) {
  g_interrupted = 1;
  if (!g_generating) {  // Ctrl-C at the prompt: leave
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

struct Message {
  std::string role, content;
};

int StreamToStdout(const yuan_token_event* ev, void* user) {
  std::fwrite(ev->text, 1, ev->text_len, stdout);
  std::fflush(stdout);
  static_cast<std::string*>(user)->append(ev->text, ev->text_len);
  return g_interrupted ? 1 : 0;
}

// Conversation file: "YUANCHAT" u32 version, u32 n, n x (u32 len, role,
// u32 len, content), u64 len, session state bytes.
constexpr char kMagic[8] = {'Y', 'U', 'A', 'N', 'C', 'H', 'A', 'T'};

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}

bool SaveConversation(const std::string& path, const std::vector<Message>& messages,
                      yuan_session* session, std::string* error) {
  size_t n = 0;
  yuan_session_save(session, nullptr, 0, &n);
  std::string state(n, '\0');
  if (yuan_session_save(session, state.data(), state.size(), &n) != YUAN_OK) {
    *error = yuan_last_error();
    return false;
  }
  std::string out(kMagic, sizeof kMagic);
  Put<uint32_t>(&out, 1);
  Put<uint32_t>(&out, static_cast<uint32_t>(messages.size()));
  for (const Message& m : messages) {
    Put<uint32_t>(&out, static_cast<uint32_t>(m.role.size()));
    out += m.role;
    Put<uint32_t>(&out, static_cast<uint32_t>(m.content.size()));
    out += m.content;
  }
  Put<uint64_t>(&out, state.size());
  out += state;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f.write(out.data(), static_cast<std::streamsize>(out.size()))) {
    *error = "cannot write '" + path + "'";
    return false;
  }
  return true;
}

bool LoadConversation(const std::string& path, std::vector<Message>* messages, yuan_session* session,
                      std::string* error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    *error = "cannot open '" + path + "'";
    return false;
  }
  const std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t pos = 0;
  auto take = [&](void* dst, size_t n) {
    if (n > data.size() - pos) return false;
    std::memcpy(dst, data.data() + pos, n);
    pos += n;
    return true;
  };
  char magic[8];
  uint32_t version = 0, count = 0;
  if (!take(magic, 8) || std::memcmp(magic, kMagic, 8) != 0 || !take(&version, 4) || version != 1 ||
      !take(&count, 4)) {
    *error = "'" + path + "' is not a yuan conversation file";
    return false;
  }
  std::vector<Message> loaded;
  for (uint32_t i = 0; i < count; ++i) {
    Message m;
    for (std::string* s : {&m.role, &m.content}) {
      uint32_t len = 0;
      if (!take(&len, 4) || len > data.size() - pos) {
        *error = "'" + path + "' is truncated";
        return false;
      }
      s->assign(data, pos, len);
      pos += len;
    }
    loaded.push_back(std::move(m));
  }
  uint64_t state_len = 0;
  if (!take(&state_len, 8) || state_len != data.size() - pos) {
    *error = "'" + path + "' is truncated";
    return false;
  }
  if (yuan_session_load(session, data.data() + pos, state_len) != YUAN_OK) {
    *error = yuan_last_error();
    return false;
  }
  *messages = std::move(loaded);
  return true;
}

void PrintHelp() {
  std::printf(
      "commands: /reset (forget the conversation), /save FILE, /load FILE, /exit\n"
      "Ctrl-C stops the current reply (the conversation is kept); at the prompt it quits.\n");
}

}  // namespace

int ChatCommand(int argc, char** argv) {
  std::string model, system, chat_template;
  int64_t n_predict = 512, threads = 0, ctx = 0;
  bool think = false, no_think = false;
  SamplingFlags sampling;
  ArgParser p("chat", "-m MODEL [--system TEXT] [options]");
  p.Add({"-m", "--model"}, "model file (GGUF) or Hugging Face folder", &model);
  p.Add({"--system"}, "system prompt", &system);
  p.Add({"--chat-template"}, "built-in template name or Jinja file (default: the model's)", &chat_template);
  p.Add({"--think"}, "ask thinking models (Qwen3) to think first", &think);
  p.Add({"--no-think"}, "ask thinking models to answer directly", &no_think);
  p.Add({"-n", "--n-predict"}, "tokens per reply at most (default 512)", &n_predict);
  p.Add({"-t", "--threads"}, "compute threads (default: physical cores)", &threads);
  p.Add({"-c", "--ctx-size"}, "context size (default: the model's, at most 4096)", &ctx);
  std::vector<std::string> adapters;
  p.Add({"--adapter"}, "LoRA adapter FILE[:SCALE] (.yadp, PEFT folder or GGUF LoRA); repeatable",
        &adapters);
  sampling.Register(&p);
  if (int rc = p.Parse(argc, argv, 2); rc >= 0) return rc;
  if (!p.positional().empty()) return p.UsageError("unexpected argument '" + p.positional()[0] + "'");
  if (std::string why; !sampling.Resolve(&why)) return p.UsageError(why);
  if (model.empty()) return p.UsageError("no model given (-m MODEL)");
  if (think && no_think) return p.UsageError("--think and --no-think exclude each other");
  if (n_predict < 0 || threads < 0 || ctx < 0) return p.UsageError("-n, -t and -c must not be negative");

  // A template given as a file is read here; a name goes to the library.
  if (!chat_template.empty()) {
    std::ifstream f(chat_template);
    if (f) chat_template.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }

  yuan_engine_options eo;
  yuan_engine_options_init(&eo);
  eo.model = model.c_str();
  eo.n_threads = static_cast<int32_t>(threads);
  eo.n_ctx = static_cast<int32_t>(ctx);
  yuan_engine* engine = nullptr;
  if (yuan_engine_open(&eo, &engine) != YUAN_OK) {
    std::fprintf(stderr, "yuan chat: %s\n", yuan_last_error());
    return kExitFailure;
  }
  yuan_session* session = nullptr;
  if (yuan_session_open(engine, nullptr, &session) != YUAN_OK) {
    std::fprintf(stderr, "yuan chat: %s\n", yuan_last_error());
    yuan_engine_free(engine);
    return kExitFailure;
  }
  if (!UseAdapterFlags("chat", engine, session, adapters)) {
    yuan_session_free(session);
    yuan_engine_free(engine);
    return kExitFailure;
  }
  yuan_sampling_params sp;
  yuan_sampling_params_init(&sp);
  sampling.Fill(&sp);
  yuan_chat_options co;
  yuan_chat_options_init(&co);
  co.chat_template = chat_template.empty() ? nullptr : chat_template.c_str();
  co.enable_thinking = think ? 1 : (no_think ? 0 : -1);

  std::vector<Message> messages;
  auto reset = [&] {
    messages.clear();
    if (!system.empty()) messages.push_back({"system", system});
  };
  reset();
  std::signal(SIGINT, OnSigint);
  std::fprintf(stderr, "yuan chat: type a message, /help for commands.\n");
  std::string line;
  int rc = kExitOk;
  while (true) {
    std::printf("> ");
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/help") {
      PrintHelp();
      continue;
    }
    if (line == "/reset") {
      reset();
      yuan_session_reset(session);
      std::printf("(conversation cleared)\n");
      continue;
    }
    if (line.rfind("/save ", 0) == 0 || line.rfind("/load ", 0) == 0) {
      const std::string path = line.substr(6);
      std::string error;
      const bool save = line[1] == 's';
      const bool ok = save ? SaveConversation(path, messages, session, &error)
                           : LoadConversation(path, &messages, session, &error);
      if (ok) {
        std::printf("(%s %zu messages %s %s)\n", save ? "saved" : "loaded", messages.size(),
                    save ? "to" : "from", path.c_str());
      } else {
        std::printf("(error: %s)\n", error.c_str());
      }
      continue;
    }
    if (line[0] == '/') {
      std::printf("(unknown command %s; /help lists them)\n", line.c_str());
      continue;
    }

    messages.push_back({"user", line});
    std::vector<yuan_chat_message> cmsgs;
    for (const Message& m : messages) cmsgs.push_back({m.role.c_str(), m.content.c_str()});
    std::string reply;
    yuan_generate_options go;
    yuan_generate_options_init(&go);
    go.max_tokens = static_cast<int32_t>(n_predict);
    go.sampling = &sp;
    go.on_token = &StreamToStdout;
    go.user_data = &reply;
    yuan_generate_result r;
    yuan_generate_result_init(&r);
    g_interrupted = 0;
    g_generating = 1;
    const yuan_status st = yuan_session_chat(session, cmsgs.data(), cmsgs.size(), &co, &go, &r);
    g_generating = 0;
    std::printf("\n");
    if (st != YUAN_OK) {
      std::fprintf(stderr, "yuan chat: %s\n", yuan_last_error());
      messages.pop_back();
      if (st == YUAN_ERR_OUT_OF_RANGE) continue;  // context full: the user may /reset
      rc = kExitFailure;
      break;
    }
    messages.push_back({"assistant", r.text});
    std::fprintf(stderr, "[%d new prompt tokens (%d reused), %d reply tokens, %.1f t/s%s]\n",
                 r.prompt_tokens - r.cached_tokens, r.cached_tokens, r.completion_tokens,
                 r.generation_ms > 0 ? 1000.0 * r.completion_tokens / r.generation_ms : 0.0,
                 r.finish_reason == YUAN_FINISH_CANCELLED ? ", stopped" : "");
    yuan_free(r.text);
  }
  yuan_session_free(session);
  yuan_engine_free(engine);
  return rc;
}

}  // namespace yuan::cli

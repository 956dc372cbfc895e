#include "cli/args.h"

#include "yuan/yuan.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

namespace yuan::cli {

void ArgParser::Add(std::vector<std::string> n, std::string h, std::string* v) {
  flags_.push_back({std::move(n), std::move(h), Flag::kString, v});
}
void ArgParser::Add(std::vector<std::string> n, std::string h, int64_t* v) {
  flags_.push_back({std::move(n), std::move(h), Flag::kInt, v});
}
void ArgParser::Add(std::vector<std::string> n, std::string h, double* v) {
  flags_.push_back({std::move(n), std::move(h), Flag::kFloat, v});
}
void ArgParser::Add(std::vector<std::string> n, std::string h, bool* v) {
  flags_.push_back({std::move(n), std::move(h), Flag::kBool, v});
}
void ArgParser::Add(std::vector<std::string> n, std::string h, std::vector<std::string>* v) {
  flags_.push_back({std::move(n), std::move(h), Flag::kStringList, v});
}

void ArgParser::PrintUsage() const {
  std::printf("usage: yuan %s %s\n\noptions:\n", command_.c_str(), synopsis_.c_str());
  for (const Flag& f : flags_) {
    std::string names;
    for (const auto& n : f.names) names += (names.empty() ? "" : ", ") + n;
    std::printf("  %-24s %s\n", names.c_str(), f.help.c_str());
  }
  std::printf("  %-24s %s\n", "-h, --help", "show this help");
}

int ArgParser::UsageError(const std::string& message) const {
  std::fprintf(stderr, "yuan %s: %s (see 'yuan %s --help')\n", command_.c_str(), message.c_str(),
               command_.c_str());
  return kExitUsage;
}

int ArgParser::Parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      PrintUsage();
      return kExitOk;
    }
    if (arg.size() < 2 || arg[0] != '-' || arg == "--") {
      if (arg == "--") {
        for (++i; i < argc; ++i) positional_.emplace_back(argv[i]);
        break;
      }
      positional_.push_back(arg);
      continue;
    }
    const Flag* flag = nullptr;
    for (const Flag& f : flags_) {
      for (const auto& n : f.names) {
        if (n == arg) flag = &f;
      }
    }
    if (flag == nullptr) return UsageError("unknown option '" + arg + "'");
    if (flag->kind == Flag::kBool) {
      *static_cast<bool*>(flag->target) = true;
      continue;
    }
    if (i + 1 >= argc) return UsageError("option '" + arg + "' needs a value");
    const char* value = argv[++i];
    char* end = nullptr;
    errno = 0;
    switch (flag->kind) {
      case Flag::kString:
        *static_cast<std::string*>(flag->target) = value;
        break;
      case Flag::kStringList:
        static_cast<std::vector<std::string>*>(flag->target)->emplace_back(value);
        break;
      case Flag::kInt: {
        long long v = std::strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0') {
          return UsageError("option '" + arg + "' needs an integer, got '" + value + "'");
        }
        *static_cast<int64_t*>(flag->target) = v;
        break;
      }
      case Flag::kFloat: {
        double v = std::strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0') {
          return UsageError("option '" + arg + "' needs a number, got '" + value + "'");
        }
        *static_cast<double*>(flag->target) = v;
        break;
      }
      case Flag::kBool:
        break;
    }
  }
  return -1;
}

void SamplingFlags::Register(ArgParser* p) {
  p->Add({"--temp"}, "temperature; 0 = greedy (default 0.8)", &temp);
  p->Add({"--top-k"}, "top-k, 0 = off (default 40)", &top_k);
  p->Add({"--top-p"}, "top-p, 1 = off (default 0.95)", &top_p);
  p->Add({"--min-p"}, "min-p, 0 = off (default 0.05)", &min_p);
  p->Add({"--repeat-penalty"}, "repetition penalty, 1 = off (default 1.0)", &repeat_penalty);
  p->Add({"--repeat-last-n"}, "tokens the penalties look back at (default 64, -1 = all)", &repeat_last_n);
  p->Add({"--presence-penalty"}, "presence penalty (default 0)", &presence);
  p->Add({"--frequency-penalty"}, "frequency penalty (default 0)", &frequency);
  p->Add({"-s", "--seed"}, "random seed (default: random)", &seed);
  p->Add({"--grammar"}, "constrain the output to a GBNF grammar: its text or a file", &grammar);
  p->Add({"-j", "--json-schema"}, "constrain the output to a JSON Schema: its JSON or a file", &json_schema);
}

bool SamplingFlags::Resolve(std::string* error) {
  if (!grammar.empty() && !json_schema.empty()) {
    *error = "--grammar and --json-schema exclude each other";
    return false;
  }
  for (std::string* v : {&grammar, &json_schema}) {
    if (v->empty() || v->find_first_of("\n{:=") != std::string::npos) continue;  // text, not a path
    std::ifstream f(*v, std::ios::binary);
    if (f) v->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  return true;
}

void SamplingFlags::Fill(yuan_sampling_params* sp) const {
  sp->temperature = static_cast<float>(temp);
  sp->top_k = static_cast<int32_t>(top_k);
  sp->top_p = static_cast<float>(top_p);
  sp->min_p = static_cast<float>(min_p);
  sp->repeat_penalty = static_cast<float>(repeat_penalty);
  sp->repeat_last_n = static_cast<int32_t>(repeat_last_n);
  sp->presence_penalty = static_cast<float>(presence);
  sp->frequency_penalty = static_cast<float>(frequency);
  if (seed >= 0) sp->seed = static_cast<uint64_t>(seed);
  if (!grammar.empty()) sp->grammar = grammar.c_str();
  if (!json_schema.empty()) sp->json_schema = json_schema.c_str();
}

bool ParseAdapterSpec(const std::string& spec, std::string* path, float* scale) {
  *path = spec;
  *scale = 1.0f;
  const size_t colon = spec.rfind(':');
  if (colon != std::string::npos) {
    const std::string tail = spec.substr(colon + 1);
    char* end = nullptr;
    const double v = std::strtod(tail.c_str(), &end);
    if (!tail.empty() && end == tail.c_str() + tail.size()) {
      if (!std::isfinite(v)) return false;
      *path = spec.substr(0, colon);
      *scale = static_cast<float>(v);
    }
  }
  return !path->empty();
}

bool UseAdapterFlags(const char* command, yuan_engine* engine, yuan_session* session,
                     const std::vector<std::string>& specs) {
  std::vector<yuan_adapter_choice> chosen;
  bool ok = true;
  for (const std::string& spec : specs) {
    std::string path;
    float scale = 1.0f;
    if (!ParseAdapterSpec(spec, &path, &scale)) {
      std::fprintf(stderr, "yuan %s: --adapter needs FILE or FILE:SCALE, got '%s'\n", command,
                   spec.c_str());
      ok = false;
      break;
    }
    yuan_adapter* a = nullptr;
    if (yuan_adapter_load(engine, path.c_str(), &a) != YUAN_OK) {
      std::fprintf(stderr, "yuan %s: adapter %s: %s\n", command, path.c_str(), yuan_last_error());
      ok = false;
      break;
    }
    chosen.push_back({a, scale});
  }
  if (ok && yuan_session_set_adapters(session, chosen.data(), chosen.size()) != YUAN_OK) {
    std::fprintf(stderr, "yuan %s: %s\n", command, yuan_last_error());
    ok = false;
  }
  for (const yuan_adapter_choice& c : chosen) yuan_adapter_free(c.adapter);
  return ok;
}

}  // namespace yuan::cli

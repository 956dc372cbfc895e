// Tiny llama.cpp-style flag parser shared by the subcommands: bad arguments
// print one line and exit with status 2; --help prints the usage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "yuan/yuan.h"

namespace yuan::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct Flag {
  std::vector<std::string> names;  // e.g. {"-m", "--model"}
  std::string help;
  enum Kind { kString, kInt, kFloat, kBool, kStringList } kind = kString;
  void* target = nullptr;  // std::string*, int64_t*, double*, bool*, std::vector<std::string>*
};

class ArgParser {
 public:
  ArgParser(std::string command, std::string synopsis) : command_(std::move(command)), synopsis_(std::move(synopsis)) {}
  void Add(std::vector<std::string> names, std::string help, std::string* v);
  void Add(std::vector<std::string> names, std::string help, int64_t* v);
  void Add(std::vector<std::string> names, std::string help, double* v);
  void Add(std::vector<std::string> names, std::string help, bool* v);
  void Add(std::vector<std::string> names, std::string help, std::vector<std::string>* v);

  // Parses argv[first..]. Returns -1 to go on, else the exit code to return
  // (0 after --help, 2 after an error, which is printed to stderr).
  // Non-flag arguments go to positional().
  int Parse(int argc, char** argv, int first);
  const std::vector<std::string>& positional() const { return positional_; }
  void PrintUsage() const;
  // Prints "yuan <command>: <message>" to stderr and returns kExitUsage.
  int UsageError(const std::string& message) const;

 private:
  std::string command_, synopsis_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
};

// "FILE" or "FILE:SCALE" (--adapter, --lora): a suffix after the last ':'
// that reads as a number is the scale (default 1). False for a non-finite
// scale or an empty file name.
bool ParseAdapterSpec(const std::string& spec, std::string* path, float* scale);

// Loads each "FILE[:SCALE]" of `specs` (--adapter) for the engine and makes
// them the session's adapters (the handles are released again: the session
// keeps what it uses). False after printing "yuan <command>: <why>".
bool UseAdapterFlags(const char* command, yuan_engine* engine, yuan_session* session,
                     const std::vector<std::string>& specs);

// The sampling flags shared by `run` and `chat` (llama.cpp's names).
struct SamplingFlags {
  int64_t top_k = 40, repeat_last_n = 64, seed = -1;
  double temp = 0.8, top_p = 0.95, min_p = 0.05, repeat_penalty = 1.0;
  double presence = 0.0, frequency = 0.0;
  // Structured output: text, or the path of a file holding it.
  std::string grammar, json_schema;
  void Register(ArgParser* p);
  // Reads --grammar / --json-schema from their files when they name one.
  // False (with *error set) when both are given.
  bool Resolve(std::string* error);
  // Fills an initialised yuan_sampling_params (declared in yuan.h); the
  // strings it points at live as long as this object.
  void Fill(yuan_sampling_params* params) const;
};

}  // namespace yuan::cli

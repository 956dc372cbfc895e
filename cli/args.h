// Tiny llama.cpp-style flag parser shared by the subcommands: bad arguments
// print one line and exit with status 2; --help prints the usage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

}  // namespace yuan::cli

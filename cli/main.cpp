// `yuan`: one binary, one subcommand per job (see docs/cli.md).
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/args.h"
#include "yuan/yuan.h"

namespace yuan::cli {
int RunCommand(int argc, char** argv);
int InspectCommand(int argc, char** argv);
int TokenizeCommand(int argc, char** argv);
int ChatCommand(int argc, char** argv);
int BenchCommand(int argc, char** argv);
int ServeCommand(int argc, char** argv);
int AdapterCommand(int argc, char** argv);
int TrainCommand(int argc, char** argv);
}  // namespace yuan::cli

namespace {

void PrintUsage() {
  std::printf(
      "yuan %s: an embeddable LLM runtime\n\n"
      "usage: yuan <command> [options]\n\n"
      "commands:\n"
      "  run       generate text from a prompt:  yuan run -m MODEL -p PROMPT\n"
      "  chat      talk with a chat model:       yuan chat -m MODEL [--system TEXT]\n"
      "  tokenize  show the token ids of a text: yuan tokenize -m MODEL TEXT\n"
      "  inspect   print a GGUF file's metadata and tensors: yuan inspect FILE\n"
      "  bench     measure prompt and generation speed:  yuan bench -m MODEL [-t N] [-p 512] [-n 128]\n"
      "  serve     OpenAI-compatible HTTP API:   yuan serve -m MODEL [--host H] [--port 8080]\n"
      "  adapter   inspect or convert LoRA adapters: yuan adapter inspect FILE | convert IN OUT\n"
      "  train     fine-tune (LoRA) or train a model: yuan train -m MODEL --data FILE -o OUT\n"
      "  version   print the library version\n\n"
      "'yuan <command> --help' describes a command's options.\n",
      yuan_version());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage();
    return yuan::cli::kExitUsage;
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    PrintUsage();
    return 0;
  }
  if (cmd == "version" || cmd == "--version") {
    std::printf("yuan %s (ABI %u)\n", yuan_version(), yuan_abi_version());
    return 0;
  }
  if (yuan_abi_version() != YUAN_ABI_VERSION) {
    std::fprintf(stderr, "yuan: libyuan ABI %u does not match this program's %d\n",
                 yuan_abi_version(), YUAN_ABI_VERSION);
    return yuan::cli::kExitFailure;
  }
  if (cmd == "run") return yuan::cli::RunCommand(argc, argv);
  if (cmd == "chat") return yuan::cli::ChatCommand(argc, argv);
  if (cmd == "inspect") return yuan::cli::InspectCommand(argc, argv);
  if (cmd == "tokenize") return yuan::cli::TokenizeCommand(argc, argv);
  if (cmd == "bench") return yuan::cli::BenchCommand(argc, argv);
  if (cmd == "serve") return yuan::cli::ServeCommand(argc, argv);
  if (cmd == "adapter") return yuan::cli::AdapterCommand(argc, argv);
  if (cmd == "train") return yuan::cli::TrainCommand(argc, argv);
  std::fprintf(stderr, "yuan: unknown command '%s' (see 'yuan --help')\n", cmd.c_str());
  return yuan::cli::kExitUsage;
}

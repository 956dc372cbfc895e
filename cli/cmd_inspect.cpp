// yuan inspect FILE: the GGUF header, metadata and tensor table.
#include <cstdio>
#include <iostream>

#include "cli/args.h"
#include "runtime/model/gguf.h"
#include "runtime/model/gguf_dump.h"

namespace yuan::cli {

int InspectCommand(int argc, char** argv) {
  ArgParser p("inspect", "FILE");
  if (int rc = p.Parse(argc, argv, 2); rc >= 0) return rc;
  if (p.positional().size() != 1) return p.UsageError("expected exactly one FILE");
  auto file = GgufFile::Open(p.positional()[0]);
  if (!file.ok()) {
    std::fprintf(stderr, "yuan inspect: %s\n", std::string(file.status().message()).c_str());
    return kExitFailure;
  }
  DumpGguf(**file, std::cout);
  return kExitOk;
}

}  // namespace yuan::cli

// The official OpenAI Node client against an in-process `yuan serve`
// (tests/server/node/openai_client_test.mjs). Skipped when node or the npm
// packages (scripts/test.sh installs them) are missing.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "runtime/engine/engine.h"
#include "runtime/server/server.h"
#include "tests/common/test_support.h"

namespace yuan::server {
namespace {

std::string RunCommand(const std::string& cmd, int* status) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) {
    *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const int rc = ::pclose(f);
  *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

TEST_CASE("serve: the official OpenAI Node client works against yuan serve", "[server][serve][node]") {
  const std::string dir = std::string(YUAN_SOURCE_DIR) + "/tests/server/node";
  int status = 0;
  RunCommand("node --version >/dev/null 2>&1", &status);
  if (status != 0) {
    WARN("node is not installed; skipped");
    return;
  }
  if (!std::filesystem::exists(dir + "/node_modules/openai/package.json")) {
    WARN("tests/server/node/node_modules is missing (run npm install there, as scripts/test.sh does); skipped");
    return;
  }

  EngineOptions eo;
  eo.model_path = testing::WriteRandomLlamaModel({}, "serve-node.gguf");
  eo.n_threads = 2;
  auto engine = Engine::Open(eo);
  REQUIRE(engine.ok());
  ServeOptions o;
  o.port = 0;
  o.model_path = eo.model_path;
  o.api_keys = {"sk-yuan-node-test"};
  auto server = ApiServer::Start(*engine, o);
  REQUIRE(server.ok());

  const std::string url = "http://127.0.0.1:" + std::to_string((*server)->port()) + "/v1";
  const std::string out =
      RunCommand("node '" + dir + "/openai_client_test.mjs' " + url + " sk-yuan-node-test 2>&1", &status);
  INFO(out);
  CHECK(status == 0);
  CHECK(out.find("FAIL") == std::string::npos);
  CHECK(out.find("checks passed") != std::string::npos);
}

}  // namespace
}  // namespace yuan::server

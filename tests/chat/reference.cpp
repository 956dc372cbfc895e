#include "tests/chat/reference.h"

#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "tests/common/test_support.h"

namespace yuan::testing {

// The python3 on PATH may be a pyenv without jinja2; Debian's has
// python3-jinja2 (scripts/install-deps.sh).
constexpr const char* kPython = "/usr/bin/python3";

std::string ReadChatTemplate(const std::string& file) {
  std::ifstream in(std::string(YUAN_SOURCE_DIR) + "/tests/chat/templates/" + file,
                   std::ios::binary);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<std::vector<ReferenceResult>> RenderWithJinja2(
    const std::vector<ReferenceCase>& cases) {
  static int counter = 0;
  jinja::List list;
  for (const ReferenceCase& c : cases) {
    jinja::Dict d;
    d.Set("template", jinja::Value::String(c.template_source));
    d.Set("context", jinja::Value::FromDict(c.context));
    list.push_back(jinja::Value::FromDict(std::move(d)));
  }
  auto json = jinja::ToJson(jinja::Value::FromList(std::move(list)));
  REQUIRE(json.ok());
  const std::string path = TempDir() + "/chat_cases_" + std::to_string(++counter) + ".json";
  {
    std::ofstream out(path, std::ios::binary);
    out << *json;
    REQUIRE(out.good());
  }
  const std::string cmd =
      std::string(kPython) + " " + YUAN_SOURCE_DIR + "/tests/chat/render_reference.py " + path;
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  int status = pclose(pipe);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 2 || code == 127) {
    WARN("SKIP: " << kPython << " cannot import jinja2 (apt-get install python3-jinja2)");
    return std::nullopt;
  }
  INFO("render_reference.py exit code " << code);
  REQUIRE(code == 0);
  auto parsed = jinja::FromJson(output);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->is_list());
  REQUIRE(parsed->list().size() == cases.size());
  std::vector<ReferenceResult> results;
  for (const jinja::Value& r : parsed->list()) {
    ReferenceResult rr;
    rr.ok = r.dict().Find("ok")->as_bool();
    if (rr.ok) {
      rr.out = r.dict().Find("out")->str();
    } else {
      rr.error = r.dict().Find("error")->str();
    }
    results.push_back(std::move(rr));
  }
  return results;
}

}  // namespace yuan::testing

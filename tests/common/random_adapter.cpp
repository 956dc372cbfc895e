// Random LoRA adapters for tests and benchmarks (random_adapter.h).
#include "tests/common/random_adapter.h"

#include <algorithm>
#include <random>

namespace yuan::testing {
namespace {

const char* GgufProjName(const std::string& m) {
  if (m == "q") return "attn_q";
  if (m == "k") return "attn_k";
  if (m == "v") return "attn_v";
  if (m == "o") return "attn_output";
  if (m == "gate") return "ffn_gate";
  if (m == "up") return "ffn_up";
  return "ffn_down";
}

}  // namespace

std::pair<int64_t, int64_t> LoraProjShape(const RandomModelSpec& s, const std::string& module) {
  const int64_t hd = s.head_dim > 0 ? s.head_dim : s.n_embd / s.n_head;
  if (module == "q") return {s.n_head * hd, s.n_embd};
  if (module == "k" || module == "v") return {s.n_head_kv * hd, s.n_embd};
  if (module == "o") return {s.n_embd, s.n_head * hd};
  if (module == "gate" || module == "up") return {s.n_ff, s.n_embd};
  return {s.n_embd, s.n_ff};  // down
}

LoraAdapter RandomLoraAdapter(const RandomModelSpec& s, int rank, uint64_t seed,
                              const std::vector<std::string>& modules, float stddev) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, stddev);
  LoraAdapter a;
  a.rank = rank;
  a.alpha = 2.0f * rank;
  a.base.architecture = s.arch;
  a.base.n_head = s.n_head;
  a.base.n_head_kv = s.n_head_kv;
  a.base.qk_permuted = s.arch == "llama";
  a.provenance = {"yuan-trainer 0.1", "sha256:abc", 123, 1764460800, "yuan-trainer"};
  for (int l = 0; l < s.n_layer; ++l) {
    for (const std::string& m : modules) {
      const auto [out, in] = LoraProjShape(s, m);
      LoraTensor t;
      t.target = "blk." + std::to_string(l) + "." + GgufProjName(m) + ".weight";
      t.in = in;
      t.out = out;
      t.a.resize(static_cast<size_t>(rank * in));
      t.b.resize(static_cast<size_t>(out * rank));
      for (float& x : t.a) x = nd(rng);
      for (float& x : t.b) x = nd(rng);
      a.tensors.push_back(std::move(t));
    }
  }
  std::sort(a.tensors.begin(), a.tensors.end(),
            [](const LoraTensor& x, const LoraTensor& y) { return x.target < y.target; });
  a.target_modules = modules;
  return a;
}

}  // namespace yuan::testing

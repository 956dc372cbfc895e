// Decoding attention speed: one token's attention over one layer's f16 K/V
// cache, all its heads on one thread (the engine gives each pool thread a
// fixed share of the KV heads), as AttendTile runs it in the forward pass.
//
//   yuan_bench_attention [-c POSITIONS,...] [-r REPS] [--cold]
//
// Defaults: 64, 512 and 4096 cached positions, 2001 repetitions (median).
// Shapes: bench-0.3b (16 heads, 4 KV heads of 64) and bench-1b (32 heads, 8
// KV heads of 64). Without --cold the cache is in the CPU's caches (the
// kernel's own speed); with it a 512 MiB read pushes it out before every
// repetition, as a decoded token's weights do between two layers (a 64 MiB
// read left part of it in the Zen 5 VM's last-level cache: bench-0.3b at
// 4096 positions took 439-445 µs after one, 504-512 after 512 MiB, where
// the engine's attention on one thread took 607 µs a layer). The K and V
// rows are in huge pages where the kernel grants them, as the engine's.
// YUAN_CPU_ISA=avx2|scalar selects a lower kernel set, as everywhere.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/core/huge_pages.h"
#include "runtime/cpu/attention.h"
#include "runtime/cpu/kernels.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Shape {
  const char* name;
  int n_head, n_head_kv, head_dim;
};

constexpr Shape kShapes[] = {{"bench-0.3b", 16, 4, 64}, {"bench-1b", 32, 8, 64}};

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> positions = {64, 512, 4096};
  int reps = 2001;
  bool cold = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-c" && i + 1 < argc) {
      positions.clear();
      std::stringstream ss(argv[++i]);
      for (std::string p; std::getline(ss, p, ',');) positions.push_back(std::atoll(p.c_str()));
    } else if (a == "-r" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--cold") {
      cold = true;
    } else {
      std::fprintf(stderr, "usage: yuan_bench_attention [-c POSITIONS,...] [-r REPS] [--cold]\n");
      return 2;
    }
  }
  for (int64_t p : positions) {
    if (p < 1 || p > (int64_t{1} << 20)) {
      std::fprintf(stderr, "yuan_bench_attention: positions must be 1 to 1048576\n");
      return 2;
    }
  }
  if (reps < 1) reps = 1;
  if (cold) reps = std::min(reps, 201);
  const std::string isa(yuan::kernels::IsaName(yuan::kernels::ActiveKernels().isa));
  std::printf("kernels: %s, 1 thread, %s cache, median of %d\n\n", isa.c_str(),
              cold ? "cold" : "warm", reps);
  std::printf("| shape | positions | us per layer | positions/us per KV head |\n");
  std::printf("| :--- | ---: | ---: | ---: |\n");
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<char> flush(cold ? size_t{512} << 20 : 0, 1);
  volatile char sink = 0;
  for (const Shape& sh : kShapes) {
    const int group = sh.n_head / sh.n_head_kv;
    const int64_t kv_dim = int64_t{sh.n_head_kv} * sh.head_dim;
    const int64_t q_dim = int64_t{sh.n_head} * sh.head_dim;
    for (int64_t n_pos : positions) {
      yuan::HugePageBuffer kb = yuan::HugePageBuffer::Allocate(n_pos * kv_dim * 2);
      yuan::HugePageBuffer vb = yuan::HugePageBuffer::Allocate(n_pos * kv_dim * 2);
      if (kb.data() == nullptr || vb.data() == nullptr) {
        std::fprintf(stderr, "yuan_bench_attention: cannot allocate %lld positions\n",
                     static_cast<long long>(n_pos));
        return 1;
      }
      uint16_t* k = reinterpret_cast<uint16_t*>(kb.data());
      uint16_t* v = reinterpret_cast<uint16_t*>(vb.data());
      for (int64_t i = 0; i < n_pos * kv_dim; ++i) k[i] = yuan::F32ToF16(nd(rng));
      for (int64_t i = 0; i < n_pos * kv_dim; ++i) v[i] = yuan::F32ToF16(nd(rng));
      std::vector<float> q(q_dim), out(q_dim);
      for (auto& x : q) x = nd(rng);
      std::vector<float> scratch(yuan::AttentionScratchFloats(group, sh.head_dim));
      std::vector<double> us;
      for (int r = 0; r < reps; ++r) {
        if (cold) {
          char s = 0;
          for (size_t i = 0; i < flush.size(); i += 64) s ^= flush[i];
          sink = s;
        }
        const auto t0 = Clock::now();
        for (int g = 0; g < sh.n_head_kv; ++g) {
          yuan::AttentionKv kv;
          kv.type = yuan::DType::kF16;
          kv.k = k + g * sh.head_dim;
          kv.v = v + g * sh.head_dim;
          kv.row_stride = kv_dim;
          kv.head_dim = sh.head_dim;
          kv.scale = 0.125f;
          yuan::AttendTile(kv, &q[g * group * sh.head_dim], sh.head_dim, q_dim, group, 1, n_pos,
                           &out[g * group * sh.head_dim], sh.head_dim, q_dim, scratch.data());
        }
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
      const double med = us[us.size() / 2];
      std::printf("| %s | %lld | %.2f | %.1f |\n", sh.name, static_cast<long long>(n_pos), med,
                  static_cast<double>(n_pos) * sh.n_head_kv / med);
    }
  }
  (void)sink;
  return 0;
}

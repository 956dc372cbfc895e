// Matrix product speed of the active kernel set, per weight dtype and shape,
// in the units peers' kernel benchmarks use (GFLOP/s, 2 per multiply-add).
// The shapes are bench-0.3b's projections and their transposes (the training
// backward pass's products), against a prompt batch.
//
//   yuan_bench_matmul [-t THREADS] [-n TOKENS] [-r REPS] [--row-major] [--types q4_0,q4_1,q5_0,q5_1,iq4_nl,iq4_xs,q8_0,q2_k,q3_k,q4_k,q5_k,q6_k,f16,bf16,f32]
//
// Defaults: 2 threads, 256 tokens, 5 repetitions (median), every type.
// Weights are random (std 0.02), quantized with the project's own writers and
// repacked (interleaved) as the engine and the trainer repack them;
// --row-major keeps them as the file has them (what a head tied to the
// token embeddings reads).
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
#include "runtime/core/thread_pool.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/matmul.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Shape {
  const char* name;
  int64_t rows, cols;
};

// bench-0.3b: n_embd 1024, 4 KV heads of 64, n_ff 2816.
constexpr Shape kShapes[] = {
    {"q/o 1024x1024", 1024, 1024}, {"k/v 256x1024", 256, 1024},
    {"gate/up 2816x1024", 2816, 1024}, {"down 1024x2816", 1024, 2816},
    {"k/v^T 1024x256", 1024, 256},
};

bool ParseType(const std::string& s, yuan::DType* t) {
  if (s == "q4_0") *t = yuan::DType::kQ4_0;
  else if (s == "q8_0") *t = yuan::DType::kQ8_0;
  else if (s == "q4_1") *t = yuan::DType::kQ4_1;
  else if (s == "q5_0") *t = yuan::DType::kQ5_0;
  else if (s == "q5_1") *t = yuan::DType::kQ5_1;
  else if (s == "iq4_nl") *t = yuan::DType::kIQ4_NL;
  else if (s == "iq4_xs") *t = yuan::DType::kIQ4_XS;
  else if (s == "q2_k") *t = yuan::DType::kQ2_K;
  else if (s == "q3_k") *t = yuan::DType::kQ3_K;
  else if (s == "q4_k") *t = yuan::DType::kQ4_K;
  else if (s == "q5_k") *t = yuan::DType::kQ5_K;
  else if (s == "q6_k") *t = yuan::DType::kQ6_K;
  else if (s == "f16") *t = yuan::DType::kF16;
  else if (s == "bf16") *t = yuan::DType::kBF16;
  else if (s == "f32") *t = yuan::DType::kF32;
  else return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 5;
  int64_t tokens = 256;
  bool row_major = false;
  std::vector<yuan::DType> types = {yuan::DType::kQ4_0, yuan::DType::kQ8_0, yuan::DType::kF16,
                                    yuan::DType::kF32};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    if (a == "-t" && has) threads = std::atoi(argv[++i]);
    else if (a == "-n" && has) tokens = std::atoll(argv[++i]);
    else if (a == "-r" && has) reps = std::atoi(argv[++i]);
    else if (a == "--row-major") row_major = true;
    else if (a == "--types" && has) {
      types.clear();
      std::stringstream ss(argv[++i]);
      for (std::string t; std::getline(ss, t, ',');) {
        yuan::DType d;
        if (!ParseType(t, &d)) {
          std::fprintf(stderr, "yuan_bench_matmul: unknown type '%s'\n", t.c_str());
          return 2;
        }
        types.push_back(d);
      }
    } else {
      std::fprintf(stderr, "usage: yuan_bench_matmul [-t THREADS] [-n TOKENS] [-r REPS] [--row-major] [--types q4_0,q4_1,q5_0,q5_1,iq4_nl,iq4_xs,q8_0,q2_k,q3_k,q4_k,q5_k,q6_k,f16,bf16,f32]\n");
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  if (threads < 1 || reps < 1 || tokens < 1) {
    std::fprintf(stderr, "yuan_bench_matmul: threads, reps and tokens must be >= 1\n");
    return 2;
  }
  yuan::ThreadPool pool(threads);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.02f), na(0.0f, 1.0f);
  const std::string isa = yuan::kernels::ActiveKernelsName();  // YUAN_CPU_AMX=0 turns AMX off
  std::printf("kernels: %s, %d threads, %lld tokens, median of %d\n\n", isa.c_str(), threads,
              static_cast<long long>(tokens), reps);
  std::printf("| type | shape | ms | GFLOP/s |\n| :--- | :--- | ---: | ---: |\n");
  for (yuan::DType type : types) {
    for (const Shape& s : kShapes) {
      std::vector<float> wf(static_cast<size_t>(s.rows * s.cols));
      for (float& v : wf) v = nd(rng);
      const uint64_t rb = *yuan::RowBytes(type, s.cols);
      std::vector<uint8_t> w(static_cast<size_t>(rb * s.rows));
      for (int64_t r = 0; r < s.rows; ++r) yuan::QuantizeRow(type, &wf[r * s.cols], &w[r * rb], s.cols);
      yuan::MatRef m{type, s.rows, s.cols, w.data(), rb, false};
      std::vector<uint8_t> packed;
      if (!row_major && yuan::kernels::CanInterleave8(type, s.rows) &&
          yuan::kernels::ActiveKernels().isa != yuan::kernels::Isa::kScalar) {
        packed.resize(w.size());
        yuan::kernels::Interleave8(m, 0, s.rows / 8, packed.data());
        m.data = packed.data();
        m.interleaved8 = true;
      }
      std::vector<float> x(static_cast<size_t>(tokens * s.cols)), y(static_cast<size_t>(tokens * s.rows));
      for (float& v : x) v = na(rng);
      std::vector<double> ms;
      yuan::MatMul(m, x.data(), tokens, y.data(), &pool);  // warm-up
      for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        yuan::MatMul(m, x.data(), tokens, y.data(), &pool);
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      std::sort(ms.begin(), ms.end());
      const double med = ms[ms.size() / 2];
      const double gflop = 2.0 * static_cast<double>(s.rows * s.cols) * static_cast<double>(tokens) / 1e9;
      const std::string tn(yuan::DTypeName(type));
      std::printf("| %s | %s | %.3f | %.1f |\n", tn.c_str(), s.name, med, gflop / (med / 1e3));
    }
  }
  return 0;
}

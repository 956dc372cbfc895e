#include "runtime/cpu/matmul.h"

#include <algorithm>
#include <vector>

#include "runtime/cpu/kernels.h"

namespace yuan {
namespace {

// Rows per unit of work handed to a thread: a multiple of every kernel's
// register tile (2, 3, 4, 6 rows) and of the 8-row bands, so only the last
// band has a ragged edge (a thread's 16-row pairs may end in one 8-row band).
constexpr int64_t kRowGrain = 24;

}  // namespace

void MatMul(const MatRef& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  MatMulGroup(&w, &y, 1, x, n_tokens, pool);
}

void MatMulGroup(const MatRef* w, float* const* y, int n, const float* x, int64_t n_tokens, ThreadPool* pool) {
  int64_t total = 0;
  bool together = true;
  for (int i = 0; i < n; ++i) {
    total += w[i].rows;
    // One set of activations, and every boundary between matrices on a
    // whole 8-row band (so interleaved bands stay whole). Otherwise
    // separately: e.g. a Q6_K v beside Q4_K q and k meets other activations.
    together = together && w[i].cols == w[0].cols && kernels::ActKind(w[i].type) == kernels::ActKind(w[0].type) &&
               (i == n - 1 || w[i].rows % 8 == 0);
  }
  if (!together) {
    for (int i = 0; i < n; ++i) MatMulGroup(&w[i], &y[i], 1, x, n_tokens, pool);
    return;
  }
  const kernels::KernelSet& ks = kernels::ActiveKernels();
  // Buffers reused across calls. Named through a reference so the workers'
  // lambda sees this thread's object, not their own thread_local copies.
  thread_local kernels::Acts tls_acts;
  kernels::Acts& acts = tls_acts;
  acts.kind = kernels::ActKind(w[0].type);
  acts.n_tokens = n_tokens;
  acts.cols = w[0].cols;
  acts.f32 = x;
  kernels::PrepareActs(ks, &acts, pool);
  // Rows of the matrices one after the other; a unit of work may span two.
  // Per row the kernels compute the same for any partition, so the threads'
  // shares can follow their speeds.
  // The threads' shares are kept per kind of product (weight types and
  // shapes; one token or a batch).
  uint64_t site = n_tokens > 1 ? 2 : 1;
  for (int i = 0; i < n; ++i) {
    for (uint64_t v : {static_cast<uint64_t>(w[i].type), static_cast<uint64_t>(w[i].rows),
                       static_cast<uint64_t>(w[i].cols)}) {
      site = site * 0x100000001b3ULL + v;
    }
  }
  pool->ParallelForBalanced(
      total, kRowGrain,
      [&](int64_t r0, int64_t r1) {
        int64_t base = 0;
        for (int i = 0; i < n && base < r1; base += w[i].rows, ++i) {
          const int64_t a = std::max(r0, base), b = std::min(r1, base + w[i].rows);
          if (a < b) ks.matmul_rows(w[i], acts, a - base, b - base, y[i], w[i].rows);
        }
      },
      site);
}

float DotRow(DType type, const void* row, const float* x, int64_t n) {
  MatRef w{type, 1, n, row, *RowBytes(type, n)};
  kernels::Acts acts;
  acts.kind = kernels::ActKind(type);
  acts.n_tokens = 1;
  acts.cols = n;
  acts.f32 = x;
  const kernels::KernelSet& ks = kernels::ActiveKernels();
  kernels::PrepareActs(ks, &acts);
  float y = 0.0f;
  ks.matmul_rows(w, acts, 0, 1, &y, 1);
  return y;
}

float DotRowReference(DType type, const void* row, const float* x, int64_t n) {
  std::vector<float> w(static_cast<size_t>(n));
  DequantizeRow(type, row, w.data(), n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(w[i]) * x[i];
  return static_cast<float>(sum);
}

}  // namespace yuan

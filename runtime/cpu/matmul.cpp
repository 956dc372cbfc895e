#include "runtime/cpu/matmul.h"

#include <vector>

#include "runtime/cpu/kernels.h"

namespace yuan {
namespace {

// Rows per unit of work handed to a thread: a multiple of every kernel's
// register tile (2, 3, 4 rows), so only the last band has a ragged edge.
constexpr int64_t kRowGrain = 24;

}  // namespace

void MatMul(const MatRef& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  const kernels::KernelSet& ks = kernels::ActiveKernels();
  // Buffers reused across calls. Named through a reference so the workers'
  // lambda sees this thread's object, not their own thread_local copies.
  thread_local kernels::Acts tls_acts;
  kernels::Acts& acts = tls_acts;
  acts.kind = kernels::ActKind(w.type);
  acts.n_tokens = n_tokens;
  acts.cols = w.cols;
  acts.f32 = x;
  kernels::PrepareActs(ks, &acts, pool);
  pool->ParallelFor(w.rows, kRowGrain, [&](int64_t r0, int64_t r1) {
    ks.matmul_rows(w, acts, r0, r1, y, w.rows);
  });
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

// The trainer's numeric building blocks: the forward ops it needs beyond
// runtime/cpu (RMSNorm keeping its scale, packed causal attention keeping
// its log-sum-exp) and their backward passes, plus the products that
// gradients of matrices need. Every function computes each output element in
// one thread with a fixed order of operations (deterministic for a given
// thread count; most are deterministic for any thread count).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/core/thread_pool.h"
#include "runtime/cpu/matmul.h"

namespace yuan::train {

// Runs fn(i) for i < n over the pool in contiguous chunks.
template <typename Fn>
void ParallelEach(ThreadPool* pool, int64_t n, const Fn& fn) {
  if (n <= 0) return;
  if (n == 1 || pool->size() == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  pool->ParallelFor(n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) fn(i);
  });
}

// The same for items that each touch about `width` values: inline when the
// whole loop is little work (a small model, a short batch), where handing it
// to the pool would cost more than it saves (as the engine's ForTokens).
template <typename Fn>
void ParallelEach(ThreadPool* pool, int64_t n, int64_t width, const Fn& fn) {
  if (n <= 0) return;
  if (n == 1 || pool->size() == 1 || n * width < (int64_t{1} << 15)) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  pool->ParallelFor(n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) fn(i);
  });
}

// out = x / sqrt(mean(x^2) + eps) * w (w may be null); returns the scale
// 1 / sqrt(...) (computed as runtime/cpu's RmsNorm computes it). out may
// alias x.
float RmsNormFwd(const float* x, const float* w, int64_t n, float eps, float* out);

// Backward of RmsNormFwd given its input x, scale r and the output's
// gradient dy: dx (+)= r * g - x * r^3 * sum(g * x) / n with g = dy * w;
// dw_part[i] = dy[i] * x[i] * r when dw_part is non-null (per-token parts of
// the gain's gradient, summed later in a fixed order). dx may alias dy.
void RmsNormBwd(const float* x, float r, const float* w, const float* dy, int64_t n, float* dx,
                bool accumulate, float* dw_part);

// grad[i] += sum over t < T of part[t * n + i], threaded over i.
void SumRowsInto(const float* part, int64_t T, int64_t n, float* grad, ThreadPool* pool);

// The geometry of packed causal attention: `T` tokens in rows, each token t
// attends to tokens [start[t], t] (its document, up to itself).
struct AttnShape {
  int64_t n_rows = 0, seq_len = 0;
  int64_t n_head = 0, n_head_kv = 0, head_dim = 0;
  float scale = 1.0f;
  const int32_t* start = nullptr;  // [T]: index (within the batch) of t's first key
};

// out[t, h] = softmax_s(scale * q[t,h] . k[s,g]) v[s,g], g = h / group;
// lse[t * n_head + h] = the log-sum-exp of the scaled scores. Threaded over
// (row, head).
void AttentionFwd(const AttnShape& a, const float* q, const float* k, const float* v, float* out,
                  float* lse, ThreadPool* pool);

// Backward of AttentionFwd: dq, dk, dv (overwritten) from dout, the inputs,
// the output and lse. Threaded over (row, KV head), so dk/dv of a KV head are
// summed by one thread.
void AttentionBwd(const AttnShape& a, const float* q, const float* k, const float* v,
                  const float* out, const float* lse, const float* dout, float* dq, float* dk,
                  float* dv, ThreadPool* pool);

// dst[c * rows + r] = src[r * cols + c].
void Transpose(const float* src, int64_t rows, int64_t cols, float* dst, ThreadPool* pool);

// grad[r * C + c] += sum_t dy[t * R + r] * x[t * C + c]  (the weight gradient
// of y = x W^T with W [R x C]), through the f32 MatMul kernels on transposed
// copies. `scratch` is reused storage.
struct OuterScratch {
  std::vector<float> a, b, out;
};
void AccumulateOuter(const float* dy, int64_t R, const float* x, int64_t C, int64_t T,
                     float* grad, OuterScratch* s, ThreadPool* pool);

// A matrix owned here, in one dtype (the backward pass's transposed copies).
struct OwnedMatrix {
  DType type = DType::kF32;
  int64_t rows = 0, cols = 0;
  uint64_t row_bytes = 0;
  bool interleaved8 = false;  // kernels::Interleave8's layout
  std::vector<uint8_t> data;
  MatRef ref() const { return MatRef{type, rows, cols, data.data(), row_bytes, interleaved8}; }
  bool empty() const { return data.empty(); }
};

// W^T of the row-major matrix `w` (rows x cols, its own dtype, not
// interleaved): F32/F16/BF16 keep their dtype (exact); other types are
// dequantized and stored as Q8_0 when the new row length (w.rows) is a
// multiple of 32, else F32.
OwnedMatrix TransposedCopy(const MatRef& w, ThreadPool* pool);
// Rewrites a Q8_0/Q4_0 matrix of 8k rows in the interleaved layout the
// fastest kernels read (as the engine repacks its weights), when the active
// kernel set has such kernels; otherwise leaves it.
void MaybeInterleave(OwnedMatrix* m, ThreadPool* pool);
// A copy of the row-major `w` for the forward pass, interleaved; empty when
// interleaving does not apply (the caller reads `w` in place).
OwnedMatrix InterleavedCopy(const MatRef& w, ThreadPool* pool);
// W^T of an f32 matrix, f32, into `out` (reusing its storage).
void TransposedF32(const float* w, int64_t rows, int64_t cols, OwnedMatrix* out,
                   ThreadPool* pool);

// y[t * N + n] (+)= sum over k < K of x[t * K + k] * w[k * N + n], for
// t < T, n < N: a product whose inner dimension K is small (LoRA's rank),
// computed as K row updates of y (no horizontal sums, which would cost more
// than the K multiply-adds of a dot product). Accumulating adds the product
// into y in the same FMA chain. Each y element in one thread, in k order.
void MulSmallInner(const float* x, int64_t T, int64_t K, const float* w, int64_t N, float* y,
                   bool accumulate, ThreadPool* pool);

// The general form, on this thread: y[t * ldy + n] (+)= sum over k < K of
// x[t * xt + k * xk] * w[k * ldw + n] for t in [t0, t1), n < N (x may be
// read transposed: xt = 1, xk = its row length). Attention's products run
// it inside their own parallel loop.
struct SmallInner {
  const float* x;
  int64_t xt, xk;
  const float* w;
  int64_t ldw;
  float* y;
  int64_t ldy;
  int64_t K, N;
  bool accumulate;
};
void SmallInnerRows(const SmallInner& a, int64_t t0, int64_t t1);

// out[r * N + n] = sum over t < T of a[t * R + r] * b[t * N + n]: a^T b for
// two token-major matrices when R is small (LoRA's rank), reading both in
// place; threaded over columns. Each element a chain of FMAs in t order.
void OuterSmall(const float* a, int64_t R, const float* b, int64_t N, int64_t T, float* out,
                ThreadPool* pool);

// y[i] += x[i] * s over n values, threaded.
void AddScaled(const float* x, float s, int64_t n, float* y, ThreadPool* pool);

// A counter-based hash (splitmix64 rounds) for dropout masks and initial
// values: no state, so any element can be regenerated.
uint64_t Mix64(uint64_t x);
// Uniform in [0, 1) from a hash.
inline double HashUniform(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

}  // namespace yuan::train

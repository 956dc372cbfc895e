// Matrix products with weights kept in their file dtype.
//
// A weight matrix is `rows` rows of `cols` contiguous elements in one dtype
// (ggml layout: ne[0] = cols). Activations are f32, row-major [n_tokens][cols].
// The work is done by the kernel set chosen for this CPU (kernels.h): each
// output element is computed by exactly one thread with a fixed order of
// operations, so results are bit-identical for any thread count and whether
// a token is evaluated alone or in a batch.
#pragma once

#include <cstdint>

#include "runtime/core/dtype.h"
#include "runtime/core/thread_pool.h"

namespace yuan {

struct MatRef {
  DType type = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  uint64_t row_bytes = 0;
  // Q8_0/Q4_0/Q5_0 stored interleaved by bands of 8 rows
  // (kernels::Interleave8); rows * row_bytes bytes as usual, but rows are
  // not contiguous (MatRow reads one).
  bool interleaved8 = false;
};

// Row r of w as f32 (w.cols values), whatever its layout: a token
// embedding looked up in a matrix that is also a tied output head.
void MatRow(const MatRef& w, int64_t r, float* out);

// y[t * rows + r] = dot(W[r, :], x[t * cols : (t+1) * cols]) for t < n_tokens.
// Quantized weights meet activations quantized to int8 blocks (kernels.h).
void MatMul(const MatRef& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool);

// MatMul of several matrices against the same x (q, k and v; gate and up):
// y_i = W_i x for i < n. The activations are quantized once and the rows of
// all matrices are shared out in one hand-off to the pool. Every W_i has
// x's columns; results are bit for bit those of separate MatMul calls.
//
// `next` (n_next matrices, or none) is the product the caller makes after
// this one: while they wait, the pool's workers read the start of their
// planned share of it into their caches (ThreadPool::WarmSet), so its
// memory is read during the caller's steps in between. It must stay
// mapped until the caller's next product.
void MatMulGroup(const MatRef* w, float* const* y, int n, const float* x, int64_t n_tokens, ThreadPool* pool,
                 const MatRef* next = nullptr, int n_next = 0);

// One row of W against one activation vector, with the active kernel set.
float DotRow(DType type, const void* row, const float* x, int64_t n);

// Scalar reference: dequantize the whole row to f32 then sum in double.
// Used by tests to check the fast kernels.
float DotRowReference(DType type, const void* row, const float* x, int64_t n);

}  // namespace yuan

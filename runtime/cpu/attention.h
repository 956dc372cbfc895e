// Causal attention of query heads against a K/V cache, one query token at a
// time, with an online softmax (flash attention): running max M, running sum
// S, and a value accumulator rescaled whenever M grows.
//
//   out = softmax(q . K[0..n_kv)^T * scale) . V[0..n_kv)
//
// With an f16 cache the numerics follow ggml's CPU flash-attention kernel,
// which produced our reference outputs: q is rounded to f16 for the q.k
// products (K is f16), and the value accumulator is rounded to f16 after each
// step (scale on a new maximum, then acc += v * weight), because V is f16.
// With an f32 cache everything stays f32.
//
// A group of query heads that share one KV head (grouped-query attention) is
// processed together, so each K and V row is loaded once for all of them.
// The AVX2/F16C kernel is chosen at run time (its value updates in 16-float
// AVX-512 vectors, the same bits, when the AVX-512 kernel set is active); the
// scalar one is its reference (tests/cpu/ops_test.cpp compares them). Each
// output depends only on its inputs, never on how work was split across
// threads.
#pragma once

#include <cstdint>

#include "runtime/core/dtype.h"

namespace yuan {

struct AttentionKv {
  DType type = DType::kF16;    // kF16 or kF32
  const void* k = nullptr;     // K of position 0, at this KV head's first column
  const void* v = nullptr;     // V of position 0, likewise
  int64_t row_stride = 0;      // elements from one position's row to the next
  int64_t head_dim = 0;
  float scale = 1.0f;          // applied to q . k before the softmax
  // Paged K/V (a cache shared by many sequences): position p is row
  // p % page_size of page p / page_size, whose row 0 (this KV head's first
  // column) is at k_pages[p / page_size] / v_pages[...]; k and v are then
  // unused. page_size is a multiple of kAttnPageMultiple. nullptr: contiguous.
  const void* const* k_pages = nullptr;
  const void* const* v_pages = nullptr;
  int64_t page_size = 0;
};

// Page sizes of a paged K/V cache are multiples of this (the vector kernel's
// block of positions, so a block never straddles two pages).
constexpr int64_t kAttnPageMultiple = 64;

// Query heads the vector kernel keeps in registers at once (a larger group
// is processed in parts).
constexpr int kAttnMaxGroup = 8;

// Floats of scratch AttendGroup needs for n_q heads of head_dim values.
int64_t AttentionScratchFloats(int n_q, int64_t head_dim);

// n_q query heads q + j * q_stride attend positions
// [0, n_kv) (n_kv >= 1); head j's result goes to out + j * out_stride.
void AttendGroup(const AttentionKv& kv, const float* q, int64_t q_stride, int n_q, int64_t n_kv,
                 float* out, int64_t out_stride, float* scratch);

// The portable reference AttendGroup uses where AVX2 is missing: one head,
// one position at a time, in the order of the formula above.
void AttendGroupScalar(const AttentionKv& kv, const float* q, int64_t q_stride, int n_q,
                       int64_t n_kv, float* out, int64_t out_stride, float* scratch);

}  // namespace yuan

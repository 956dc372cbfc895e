// Causal attention of query heads against a K/V cache with an online
// softmax (flash attention):
//
//   out = softmax(q . K[0..n_kv)^T * scale) . V[0..n_kv)
//
// Per query head (a "row"), with a running maximum M (from -inf), a running
// sum S and a value accumulator acc (from 0), position by position in order:
// the score s_p (one FMA chain of q[d] * k_p[d] over d from 0, times scale);
// at a new maximum (s_p > M) ms = exp(M - s_p), M = s_p, acc = acc * ms
// (skipped when ms is 1) and vs = 1, else ms = 1 and vs = exp(s_p - M); then
// acc = fma(v_p, vs, acc) and S = fma(S, ms, vs); at the end out = acc / S.
// With an f32 cache everything is f32. With an f16 cache the numerics are
// ggml's CPU flash-attention kernel's, which produced the golden reference
// outputs: q is rounded to f16 for the q . k products, and acc is rounded to
// f16 after each of its updates. That rounding makes the value updates a
// serial chain per position, the largest part of decoding's attention time
// (docs/performance.md). The vector kernels do these operations in blocks of
// 64 positions: the scores as register tiles, the running maximum as a
// prefix maximum, the exps of a block at once.
//
// A tile of consecutive tokens of one sequence and the query heads they
// share a KV head with (grouped-query attention) is processed together, so
// each K and V block is widened once for all of them and the products run
// as small matrix tiles. Each output depends only on its own row's inputs:
// a token gives the same bits alone (decoding) as in a prompt's tile, with
// the AVX2 or the AVX-512 kernel set, whatever the split across threads.
// The scalar reference computes the same operations in the same order with
// std::exp for exp (tests/cpu/ops_test.cpp compares them).
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

// Floats of scratch AttendTile (or AttendGroup) needs for a tile of n_rows
// = n_q * n_tok rows of head_dim values.
int64_t AttentionScratchFloats(int n_rows, int64_t head_dim);

// A tile of n_tok tokens at consecutive positions, n_q query heads each:
// token i attends positions [0, n_kv0 + i) (n_kv0 >= 1); head j of token i
// reads q + i * q_tok_stride + j * q_head_stride and writes its result to
// out + i * out_tok_stride + j * out_head_stride. Every row gives the bits
// AttendGroup gives it alone.
void AttendTile(const AttentionKv& kv, const float* q, int64_t q_head_stride, int64_t q_tok_stride,
                int n_q, int n_tok, int64_t n_kv0, float* out, int64_t out_head_stride,
                int64_t out_tok_stride, float* scratch);

// n_q query heads q + j * q_stride attend positions
// [0, n_kv) (n_kv >= 1); head j's result goes to out + j * out_stride.
void AttendGroup(const AttentionKv& kv, const float* q, int64_t q_stride, int n_q, int64_t n_kv,
                 float* out, int64_t out_stride, float* scratch);

// Asks the CPU to read K and V rows [p0, p0 + n) of `kv` into its cache
// (prefetch hints: no effect on any result). AttendTile does it for each
// block of positions before it needs it.
void PrefetchKv(const AttentionKv& kv, int64_t p0, int64_t n);

// The portable reference AttendGroup uses where AVX2 is missing: one head
// at a time, the operations above in their order, std::exp for exp.
void AttendGroupScalar(const AttentionKv& kv, const float* q, int64_t q_stride, int n_q,
                       int64_t n_kv, float* out, int64_t out_stride, float* scratch);

}  // namespace yuan

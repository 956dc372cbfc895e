// Causal attention of query heads against a K/V cache with an online
// softmax (flash attention) over blocks of 64 positions:
//
//   out = softmax(q . K[0..n_kv)^T * scale) . V[0..n_kv)
//
// Per query head (a "row") and block of positions: the scores s_p (one FMA
// chain over d from 0, times scale), the block's maximum m' = max(M, s_p),
// the weights w_p = exp(s_p - m'), their sum l (eight lanes over the block,
// then a fixed tree), S = fma(S, exp(M - m'), l) and acc = acc * exp(M - m')
// (skipped when the maximum did not grow), then acc = fma(w_p, v_p, acc)
// position by position; at the end out = acc / S. Everything is f32; with
// an f16 cache q is first rounded to f16, as ggml does for its f16 products.
// (Until 2026-12-02 the accumulator was rounded to f16 at every position as
// in ggml's flash-attention kernel: a serial chain per position that made
// attention 40 % of a prompt batch. f32 accumulation is what ggml's
// attention without flash attention, llama-bench's default, keeps too.)
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

// The loop nest shared by every kernel set: included by each kernels_<isa>.cpp
// and instantiated there with that file's micro-kernels, so it is compiled
// once per instruction-set level. Keep it free of std:: templates (see
// kernels.h).
//
// A micro-kernel type M provides
//   static constexpr int kR, kC;   // register tile for prompt batches
//   static constexpr int kRDecode; // rows per call for one token
//   template <int R, int C> static void Tile(const uint8_t* w, uint64_t row_bytes,
//                                            const Acts& x, int64_t t, float* y, int64_t ldy);
// Tile computes y[c * ldy + r] = W[r] . x[t + c] for r < R, c < C, each
// element in the same order of operations for every R and C.
#pragma once

#include <cstdint>

#include "runtime/cpu/kernels.h"
#include "runtime/cpu/matmul.h"

namespace yuan::kernels {
namespace {

// Tokens per block of a prompt batch: enough rows of activations to fill
// about 256 KiB (half this machine's L2), so that each band of weight rows
// is reused against activations already in cache.
inline int64_t TokenBlock(const Acts& x, int c) {
  const int64_t row_bytes = x.kind == DType::kF32 ? x.cols * 4 : x.cols + x.cols / 8;
  int64_t tb = (256 * 1024 / (row_bytes > 0 ? row_bytes : 1)) / c * c;
  return tb < c ? c : tb;
}

template <class M>
void MatMulRowsT(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  constexpr int R = M::kR, C = M::kC, RD = M::kRDecode;
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  const uint64_t rb = w.row_bytes;
  const int64_t T = x.n_tokens;
  if (T == 1) {  // decoding: stream the weights once, RD rows at a time
    int64_t r = r0;
    for (; r + RD <= r1; r += RD) M::template Tile<RD, 1>(base + r * rb, rb, x, 0, y + r, ldy);
    for (; r < r1; ++r) M::template Tile<1, 1>(base + r * rb, rb, x, 0, y + r, ldy);
    return;
  }
  const int64_t tb = TokenBlock(x, C);
  for (int64_t t0 = 0; t0 < T; t0 += tb) {
    const int64_t t1 = t0 + tb < T ? t0 + tb : T;
    int64_t r = r0;
    for (; r + R <= r1; r += R) {
      const uint8_t* wr = base + r * rb;
      int64_t t = t0;
      for (; t + C <= t1; t += C) M::template Tile<R, C>(wr, rb, x, t, y + t * ldy + r, ldy);
      for (; t < t1; ++t) M::template Tile<R, 1>(wr, rb, x, t, y + t * ldy + r, ldy);
    }
    for (; r < r1; ++r) {
      const uint8_t* wr = base + r * rb;
      int64_t t = t0;
      for (; t + C <= t1; t += C) M::template Tile<1, C>(wr, rb, x, t, y + t * ldy + r, ldy);
      for (; t < t1; ++t) M::template Tile<1, 1>(wr, rb, x, t, y + t * ldy + r, ldy);
    }
  }
}

// Micro-kernel built from a per-pair dot product `D::Dot(w_row, x, t)`, for
// formats whose inner loop is too involved to tile in registers (k-quants):
// the weight row stays in L1 while it meets C tokens.
template <class D, int kRows, int kCols>
struct PairwiseMicro {
  static constexpr int kR = kRows, kC = kCols, kRDecode = 1;
  template <int R, int C>
  static void Tile(const uint8_t* w, uint64_t rb, const Acts& x, int64_t t, float* y,
                   int64_t ldy) {
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < C; ++c) y[c * ldy + r] = D::Dot(w + r * rb, x, t + c);
    }
  }
};

}  // namespace
}  // namespace yuan::kernels

// x86 kernels, compiled twice (see kernels_avx2.cpp, kernels_avx512.cpp):
//
//   YUAN_X86_VNNI == 0: AVX2 + FMA + F16C (Haswell, Zen 1-3 and later);
//   YUAN_X86_VNNI == 1: the same kernels built with AVX-512 F/BW/VL/VNNI
//     (Ice Lake, Zen 4 and later): 32 vector registers, EVEX encodings, and
//     the int8 products done by vpdpbusd instead of vpmaddubsw + vpmaddwd.
//     No int16 intermediate saturates in either form (the operands are
//     bounded, see below), so both give the same bits.
//
// Each file is compiled with its -m flags and only called after a run-time
// CPU check (kernels.cpp). Integer products take an unsigned operand times a
// signed one: |w| with w's sign moved onto x for Q8_0, the raw nibbles with
// the offset of 8 subtracted afterwards for Q4_0, the raw 6-bit values minus
// 32 . x for Q6_K. One FMA per block then applies both blocks' scales.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "runtime/cpu/kernels_driver.h"

#ifndef YUAN_X86_VNNI
#error "include kernels_x86.h from kernels_avx2.cpp or kernels_avx512.cpp"
#endif

// The tile loops over R rows and C tokens must be fully unrolled so the
// accumulators live in registers.
#define YUAN_UNROLL _Pragma("GCC unroll 16")

namespace yuan::kernels {
namespace {

// Sum of u8 x s8 products in each 4-byte group, as 8 int32 lanes. The AVX2
// form goes through int16 pair sums, which cannot saturate for the callers'
// operands (u <= 128 and |s| <= 127: 2 * 128 * 127 < 32768), so both forms
// are exact.
inline __m256i DotU8S8(__m256i u, __m256i s) {
#if YUAN_X86_VNNI
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// The one horizontal sum every kernel ends with (fixed order).
inline float Hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

inline float BrainToFloat(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

// ---- activation quantizers: same bytes as the scalar ones -------------------

// amax over 8k floats, then q = round-half-even(x * (1 / (amax / 127))).
inline void QuantizeBlock(const float* x, int n, int8_t* q, float* d) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 vmax = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float amax = _mm_cvtss_f32(m);
  const float db = amax / 127.0f;
  const float id = db != 0.0f ? 1.0f / db : 0.0f;
  *d = db;
  const __m256 vid = _mm256_set1_ps(id);
  for (int i = 0; i < n; i += 32) {
    __m256i v[4];
    for (int j = 0; j < 4; ++j) {
      const __m256 s = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), vid),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      v[j] = _mm256_cvtps_epi32(s);
    }
    // pack to int16 then int8; the packs interleave 128-bit lanes, undo it
    const __m256i a = _mm256_packs_epi32(v[0], v[1]);
    const __m256i b = _mm256_packs_epi32(v[2], v[3]);
    __m256i r = _mm256_packs_epi16(a, b);
    r = _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), r);
  }
}

void QuantizeQ8_0(const float* x, int64_t n, int8_t* qs, float* d) {
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    QuantizeBlock(x + b * kQ8Block, kQ8Block, qs + b * kQ8Block, d + b);
  }
}

void QuantizeQ8_K(const float* x, int64_t n, int8_t* qs, float* d, int16_t* bsums) {
  for (int64_t b = 0; b < n / kQ8KBlock; ++b) {
    int8_t* q = qs + b * kQ8KBlock;
    QuantizeBlock(x + b * kQ8KBlock, kQ8KBlock, q, d + b);
    for (int g = 0; g < kQ8KBlock / 16; ++g) {
      // 16 int8 -> int16 sum
      const __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * g)));
      __m128i s = _mm_add_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
      s = _mm_add_epi16(s, _mm_unpackhi_epi64(s, s));
      s = _mm_add_epi16(s, _mm_shufflelo_epi16(s, 0x4E));
      s = _mm_add_epi16(s, _mm_shufflelo_epi16(s, 0xB1));
      bsums[b * (kQ8KBlock / 16) + g] = static_cast<int16_t>(_mm_extract_epi16(s, 0));
    }
  }
}

// ---- f32 / f16 / bf16 weights, f32 activations -----------------------------

template <DType kType>
struct FloatMicro {
  static constexpr int kR = 3, kC = 4, kRDecode = 4;

  static __m256 Load8(const uint8_t* row, int64_t k) {
    if constexpr (kType == DType::kF32) {
      return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
    } else if constexpr (kType == DType::kF16) {
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const uint16_t*>(row) + k)));
    } else {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const uint16_t*>(row) + k));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
  }
  static float Load1(const uint8_t* row, int64_t k) {
    if constexpr (kType == DType::kF32) return reinterpret_cast<const float*>(row)[k];
    else if constexpr (kType == DType::kF16) return HalfToFloat(reinterpret_cast<const uint16_t*>(row)[k]);
    else return BrainToFloat(reinterpret_cast<const uint16_t*>(row)[k]);
  }

  template <int R, int C>
  static void Tile(const uint8_t* w, uint64_t rb, const Acts& x, int64_t t, float* y, int64_t ldy) {
    const int64_t n = x.cols;
    const float* xr[C];
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) xr[c] = x.f32 + (t + c) * n;
    __m256 acc[R][C];
    YUAN_UNROLL
    for (int r = 0; r < R; ++r)
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
      __m256 wv[R];
      YUAN_UNROLL
      for (int r = 0; r < R; ++r) wv[r] = Load8(w + r * rb, k);
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const __m256 xv = _mm256_loadu_ps(xr[c] + k);
        YUAN_UNROLL
        for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
      }
    }
    YUAN_UNROLL
    for (int r = 0; r < R; ++r) {
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        float s = Hsum(acc[r][c]);
        for (int64_t kk = k; kk < n; ++kk) s += Load1(w + r * rb, kk) * xr[c][kk];
        y[c * ldy + r] = s;
      }
    }
  }
};

// ---- Q8_0 / Q4_0 weights, Q8_0 activations ---------------------------------

template <DType kType>
struct Q8Micro {
  static constexpr int kR = 2, kC = 4, kRDecode = 4;
  static constexpr int64_t kBlockBytes = kType == DType::kQ8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);
  static constexpr int64_t kPrefetchBlocks = 32;

  // Block b of a row as 32 int8 values, and its scale. Q8_0 quants are
  // signed; Q4_0's are returned unsigned (0..15, the stored nibbles) and the
  // offset of 8 is taken off after the product: (q - 8) . x = q . x - 8 . x.
  static __m256i Quants(const uint8_t* row, int64_t b) {
    if constexpr (kType == DType::kQ8_0) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(reinterpret_cast<const BlockQ8_0*>(row)[b].qs));
    } else {
      const __m128i p = _mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const BlockQ4_0*>(row)[b].qs));
      // low nibbles are elements 0..15, high nibbles 16..31
      return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(p, 4), p), _mm256_set1_epi8(0x0F));
    }
  }
  static float Scale(const uint8_t* row, int64_t b) {
    if constexpr (kType == DType::kQ8_0) return HalfToFloat(reinterpret_cast<const BlockQ8_0*>(row)[b].d);
    else return HalfToFloat(reinterpret_cast<const BlockQ4_0*>(row)[b].d);
  }

  template <int R, int C>
  static void Tile(const uint8_t* w, uint64_t rb, const Acts& x, int64_t t, float* y, int64_t ldy) {
    const int64_t n = x.cols, nb = n / kQ8Block;
    const int8_t* xq[C];
    const float* xd[C];
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) {
      xq[c] = x.qs + (t + c) * n;
      xd[c] = x.d + (t + c) * nb;
    }
    __m256 acc[R][C];
    YUAN_UNROLL
    for (int r = 0; r < R; ++r)
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
    // Q8_0 (signed x signed) takes the absolute value of one operand and
    // moves its sign onto the other; of the R weight blocks and C activation
    // blocks, the side with fewer blocks pays for the absolute values.
    constexpr bool kAbsWeights = R <= C;
    for (int64_t b = 0; b < nb; ++b) {
      if (C == 1 && (b & 3) == 0) {
        // Decoding streams R weight rows at once; fetching them ahead keeps
        // that many streams flowing (the hardware prefetcher tracks fewer).
        YUAN_UNROLL
        for (int r = 0; r < R; ++r) {
          _mm_prefetch(reinterpret_cast<const char*>(w + r * rb) + (b + kPrefetchBlocks) * kBlockBytes,
                       _MM_HINT_T0);
        }
      }
      __m256i qw[R], aw[R];
      float dw[R];
      YUAN_UNROLL
      for (int r = 0; r < R; ++r) {
        qw[r] = Quants(w + r * rb, b);
        if constexpr (kType == DType::kQ8_0 && kAbsWeights) aw[r] = _mm256_sign_epi8(qw[r], qw[r]);
        dw[r] = Scale(w + r * rb, b);
      }
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[c] + b * kQ8Block));
        const float dx = xd[c][b];
        __m256i off;  // Q4_0: 8 . x;  Q8_0 with !kAbsWeights: |x|
        if constexpr (kType == DType::kQ4_0) off = DotU8S8(_mm256_set1_epi8(8), xv);
        if constexpr (kType == DType::kQ8_0 && !kAbsWeights) off = _mm256_sign_epi8(xv, xv);
        YUAN_UNROLL
        for (int r = 0; r < R; ++r) {
          __m256i p32;
          if constexpr (kType == DType::kQ8_0 && kAbsWeights) {
            p32 = DotU8S8(aw[r], _mm256_sign_epi8(xv, qw[r]));  // |w| . (x with w's sign)
          } else if constexpr (kType == DType::kQ8_0) {
            p32 = DotU8S8(off, _mm256_sign_epi8(qw[r], xv));  // |x| . (w with x's sign)
          } else {
            p32 = _mm256_sub_epi32(DotU8S8(qw[r], xv), off);
          }
          const __m256 p = _mm256_cvtepi32_ps(p32);
          acc[r][c] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw[r] * dx), acc[r][c]);
        }
      }
    }
    YUAN_UNROLL
    for (int r = 0; r < R; ++r)
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) y[c * ldy + r] = Hsum(acc[r][c]);
  }
};

// ---- k-quants, Q8_K activations ---------------------------------------------

struct Q6KDot {
  static float Dot(const uint8_t* row, const Acts& x, int64_t t) {
    const int64_t nb = x.cols / kQ8KBlock;
    const BlockQ6_K* w = reinterpret_cast<const BlockQ6_K*>(row);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const int8_t* y = x.qs + t * x.cols + b * kQ8KBlock;
      const uint8_t* ql = w[b].ql;
      const uint8_t* qh = w[b].qh;
      const int8_t* sc = w[b].scales;
      // sum over groups of scale * (q - 32) . y = scale * q . y - 32 * scale * sum(y)
      const int16_t* bs = x.bsums + (t * nb + b) * (kQ8KBlock / 16);
      int32_t offset = 0;
      for (int g = 0; g < kQ8KBlock / 16; ++g) offset += sc[g] * bs[g];
      __m256i sumi = _mm256_setr_epi32(-32 * offset, 0, 0, 0, 0, 0, 0, 0);
      for (int half = 0; half < 2; ++half) {
        const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
        const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
        for (int g = 0; g < 4; ++g) {
          const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 32 * g));
          // q . y per 16-group (the -32 offset is applied below from bsums)
          const __m256i p = _mm256_maddubs_epi16(q[g], yv);
          const __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[2 * g + 1]), _mm_set1_epi16(sc[2 * g]));
          sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
        }
        ql += 64;
        qh += 32;
        sc += 8;
        y += 128;
      }
      const float d = HalfToFloat(w[b].d) * x.d[t * nb + b];
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return Hsum(acc);
  }
};

struct Q4KDot {
  static float Dot(const uint8_t* row, const Acts& x, int64_t t) {
    const int64_t nb = x.cols / kQ8KBlock;
    const BlockQ4_K* w = reinterpret_cast<const BlockQ4_K*>(row);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float sum_min = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      const int8_t* y = x.qs + t * x.cols + b * kQ8KBlock;
      const int16_t* bs = x.bsums + (t * nb + b) * (kQ8KBlock / 16);
      uint8_t sc[8], m[8];
      UnpackQ4KScales(w[b].scales, sc, m);
      __m256i sumi = _mm256_setzero_si256();
      int32_t summ = 0;
      for (int j = 0; j < 4; ++j) {
        const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs + 32 * j));
        const __m256i lo = _mm256_and_si256(qv, m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
        const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 64 * j));
        const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 64 * j + 32));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), _mm256_set1_epi16(sc[2 * j])));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), _mm256_set1_epi16(sc[2 * j + 1])));
        summ += m[2 * j] * (bs[4 * j] + bs[4 * j + 1]) + m[2 * j + 1] * (bs[4 * j + 2] + bs[4 * j + 3]);
      }
      const float dx = x.d[t * nb + b];
      acc = _mm256_fmadd_ps(_mm256_set1_ps(HalfToFloat(w[b].d) * dx), _mm256_cvtepi32_ps(sumi), acc);
      sum_min += (HalfToFloat(w[b].dmin) * dx) * static_cast<float>(summ);
    }
    return Hsum(acc) - sum_min;
  }
};

void MatMulRows(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  switch (w.type) {
    case DType::kF32: return MatMulRowsT<FloatMicro<DType::kF32>>(w, x, r0, r1, y, ldy);
    case DType::kF16: return MatMulRowsT<FloatMicro<DType::kF16>>(w, x, r0, r1, y, ldy);
    case DType::kBF16: return MatMulRowsT<FloatMicro<DType::kBF16>>(w, x, r0, r1, y, ldy);
    case DType::kQ8_0: return MatMulRowsT<Q8Micro<DType::kQ8_0>>(w, x, r0, r1, y, ldy);
    case DType::kQ4_0: return MatMulRowsT<Q8Micro<DType::kQ4_0>>(w, x, r0, r1, y, ldy);
    case DType::kQ4_K: return MatMulRowsT<PairwiseMicro<Q4KDot, 1, 4>>(w, x, r0, r1, y, ldy);
    case DType::kQ6_K: return MatMulRowsT<PairwiseMicro<Q6KDot, 1, 4>>(w, x, r0, r1, y, ldy);
    default: return MatMulRowsDequant(w, x, r0, r1, y, ldy);
  }
}

const KernelSet kSet = {YUAN_X86_VNNI ? Isa::kAvx512 : Isa::kAvx2, QuantizeQ8_0, QuantizeQ8_K,
                        MatMulRows};

}  // namespace

#if YUAN_X86_VNNI
const KernelSet* Avx512Kernels() { return &kSet; }
#else
const KernelSet* Avx2Kernels() { return &kSet; }
#endif

}  // namespace yuan::kernels

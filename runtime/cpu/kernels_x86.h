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
// signed one: for Q8_0, w + 128 with 128 . sum(x) subtracted afterwards
// under VNNI (|w| with w's sign moved onto x in the AVX2 form, whose int16
// pairs would saturate otherwise), the raw nibbles with the offset of 8
// subtracted afterwards for Q4_0, the raw 6-bit values minus 32 . x for
// Q6_K. One FMA per block then applies both blocks' scales.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

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

// Exact sum of 8 int32 lanes.
inline int32_t HsumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

#if YUAN_X86_VNNI
// v in the low 256 bits, zeros above (GCC 12's _mm512_zextsi256_si512
// warns about an uninitialized operand).
inline __m512i ZeroExtend(__m256i v) { return _mm512_maskz_broadcast_i64x4(0x0F, v); }
#endif

// Lane j: the sum of v[j]'s 8 lanes (exact integer sums, in any order),
// from the pairs hadd(v[0], v[1]) and hadd(v[2], v[3]).
inline __m128i TotalsOfPairs(__m256i p01, __m256i p23) {
  const __m256i h = _mm256_hadd_epi32(p01, p23);
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}
inline __m128i Totals4(const __m256i* v) {
  return TotalsOfPairs(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
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
// sums32, when given: the sum of each 32 quants (n a multiple of 32).
inline void QuantizeBlock(const float* x, int n, int8_t* q, float* d, int16_t* sums32 = nullptr) {
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
    if (sums32 != nullptr) {
      // the stored quants' sum (pairs by maddubs against ones, then int32)
      const __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), r);
      sums32[i / 32] = static_cast<int16_t>(HsumI32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1))));
    }
  }
}

void QuantizeQ8_0(const float* x, int64_t n, int8_t* qs, float* d, int16_t* bsums) {
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    QuantizeBlock(x + b * kQ8Block, kQ8Block, qs + b * kQ8Block, d + b, bsums + b);
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

// The first `bytes` (kernels::DecodePrefetchBytes()) of each of `runs`
// runs of rows (run s starts at row first + s * rows_per_run), asked for at
// once before the first loads: the window each run then keeps prefetched as
// it goes.
inline void PrimeRuns(const uint8_t* base, uint64_t row_bytes, int64_t first, int64_t rows_per_run, int runs,
                      int64_t bytes) {
  for (int64_t o = 0; o < bytes; o += 64) {
    for (int s = 0; s < runs; ++s) {
      _mm_prefetch(reinterpret_cast<const char*>(base + (first + s * rows_per_run) * row_bytes) + o, _MM_HINT_T0);
    }
  }
}

// Asks for the lines of the block `ahead` bytes past w (a hint: an
// address past the matrix does not fault).
template <class B>
inline void PrefetchBlockAhead(const B& w, int64_t ahead) {
  const char* p = reinterpret_cast<const char*>(&w) + ahead;
  for (int o = 0; o < static_cast<int>(sizeof(B)); o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
}

// One token against rows [r0, r1) of row-major weights, as the float and
// k-quant decoding kernels read them: S runs of rows side by side, each primed
// with and then prefetching DecodePrefetchBytes() ahead, rows(ptrs, outs,
// ahead) taking one row of each run at a time; then the rows left over,
// one(row, out) each.
template <int S, class RowsFn, class OneFn>
inline void DecodeInRuns(const MatRef& w, int64_t r0, int64_t r1, float* y, RowsFn rows, OneFn one) {
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  const int64_t per = (r1 - r0) / S;
  const int64_t ahead = DecodePrefetchBytes();
  if (per > 0) PrimeRuns(base, w.row_bytes, r0, per, S, ahead);
  for (int64_t i = 0; i < per; ++i) {
    const uint8_t* ptrs[S];
    float* outs[S];
    for (int s = 0; s < S; ++s) {
      ptrs[s] = base + (r0 + s * per + i) * w.row_bytes;
      outs[s] = y + r0 + s * per + i;
    }
    rows(ptrs, outs, ahead);
  }
  for (int64_t r = r0 + S * per; r < r1; ++r) one(base + r * w.row_bytes, y + r);
}

// ---- f32 / f16 / bf16 weights, f32 activations -----------------------------

template <DType kType>
struct FloatMicro {
  static constexpr int kRDecode = 4;

#if YUAN_X86_VNNI
  // 6 x 4 tiles: 24 accumulators of the 32 registers, enough reuse of each
  // loaded vector that the loads keep up with two 512-bit FMAs a cycle
  static constexpr int kR = 6, kC = 4;
  // 16 floats per vector: full-width 512-bit FMA units (Zen 5, Intel) do
  // twice the work per instruction; double-pumped ones (Zen 4) the same.
  using V = __m512;
  static constexpr int kLanes = 16;
  static V Zero() { return _mm512_setzero_ps(); }
  static V LoadX(const float* p) { return _mm512_loadu_ps(p); }
  static V Fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  // (the masked forms below, with every lane on, because GCC 12 warns about
  // the plain intrinsics' undefined pass-through operands)
  static float Sum(V v) {  // upper half through the AVX-512F form (no DQ needed)
    const __m512d d = _mm512_castps_pd(v);
    return Hsum(_mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, d, 0)),
                              _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, d, 1))));
  }
  static V LoadW(const uint8_t* row, int64_t k) {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(row) + k;
    if constexpr (kType == DType::kF32) {
      return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
    } else if constexpr (kType == DType::kF16) {
      return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h)));
    } else {
      return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(
          0xFFFF,
          _mm512_maskz_cvtepu16_epi32(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h))), 16));
    }
  }
#else
  static constexpr int kR = 3, kC = 4;  // 12 accumulators of 16 registers
  using V = __m256;
  static constexpr int kLanes = 8;
  static V Zero() { return _mm256_setzero_ps(); }
  static V LoadX(const float* p) { return _mm256_loadu_ps(p); }
  static V Fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static float Sum(V v) { return Hsum(v); }
  static V LoadW(const uint8_t* row, int64_t k) {
    if constexpr (kType == DType::kF32) {
      return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
    } else if constexpr (kType == DType::kF16) {
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const uint16_t*>(row) + k)));
    } else {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const uint16_t*>(row) + k));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
  }
#endif
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
    V acc[R][C];
    YUAN_UNROLL
    for (int r = 0; r < R; ++r)
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) acc[r][c] = Zero();
    int64_t k = 0;
    for (; k + kLanes <= n; k += kLanes) {
      V wv[R];
      YUAN_UNROLL
      for (int r = 0; r < R; ++r) wv[r] = LoadW(w + r * rb, k);
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const V xv = LoadX(xr[c] + k);
        YUAN_UNROLL
        for (int r = 0; r < R; ++r) acc[r][c] = Fma(wv[r], xv, acc[r][c]);
      }
    }
    YUAN_UNROLL
    for (int r = 0; r < R; ++r) {
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) y[c * ldy + r] = Finish(acc[r][c], w + r * rb, xr[c], k, n);
    }
  }

  // A row's dot product from its lanes' sums over [0, k): their sum, then
  // the elements [k, n) one at a time.
  static float Finish(V acc, const uint8_t* row, const float* x, int64_t k, int64_t n) {
    float s = Sum(acc);
    for (int64_t kk = k; kk < n; ++kk) s += Load1(row, kk) * x[kk];
    return s;
  }

  // One token against rows [r0, r1): kFloatDecodeRuns runs of rows read
  // side by side, each prefetching DecodePrefetchBytes() ahead (see
  // Q6KDot::Decode), then the rows left over. Rows read four at a time from
  // one place (MatMulRowsT) left the stream to the hardware prefetchers:
  // on the Zen 5 VM an F16 token's products read 38-45 GB/s with the
  // probe at 82, and 64-70 this way (tg128 alternating with the old form
  // in one process: bench-0.3b F16 1.48x, bench-1b F16 1.78x). Each row is
  // summed as Tile computes it, so the bits do not depend on the grouping.
  static void Decode(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y) {
    constexpr int S = kFloatDecodeRuns;
    constexpr int64_t kElem = kType == DType::kF32 ? 4 : 2;
    const int64_t n = x.cols;
    DecodeInRuns<S>(
        w, r0, r1, y,
        [&](const uint8_t* const* rows, float* const* outs, int64_t ahead) {
          V acc[S];
          YUAN_UNROLL
          for (int s = 0; s < S; ++s) acc[s] = Zero();
          int64_t k = 0;
          for (; k + kLanes <= n; k += kLanes) {
            const V xv = LoadX(x.f32 + k);
            YUAN_UNROLL
            for (int s = 0; s < S; ++s) {
              // one prefetch per line (a hint: past the matrix it does not fault)
              if ((k * kElem) % 64 == 0) {
                _mm_prefetch(reinterpret_cast<const char*>(rows[s]) + k * kElem + ahead, _MM_HINT_T0);
              }
              acc[s] = Fma(LoadW(rows[s], k), xv, acc[s]);
            }
          }
          YUAN_UNROLL
          for (int s = 0; s < S; ++s) *outs[s] = Finish(acc[s], rows[s], x.f32, k, n);
        },
        [&](const uint8_t* row, float* out) { Tile<1, 1>(row, w.row_bytes, x, 0, out, 1); });
  }
};

// ---- Q8_0 / Q4_0 / IQ4_NL / Q5_0 / Q4_1 / Q5_1 weights, Q8_0 activations ---

// Byte i of the result is 0xFF where bit i of `bits` is set, else 0.
inline __m256i BitsToBytes(uint32_t bits) {
#if YUAN_X86_VNNI
  return _mm256_movm_epi8(bits);
#else
  // byte i gets byte i / 8 of `bits`, then keeps bit i % 8
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int32_t>(bits)),
      _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
#endif
}

template <DType kType>
struct Q8Micro {
  // Q4_1, Q5_0, Q5_1 with AVX-512: two rows per zmm (RowPairs)
  static constexpr bool kPairs = YUAN_X86_VNNI && kType != DType::kQ8_0 && kType != DType::kQ4_0;
  static constexpr int kR = kPairs ? 4 : 2, kC = 4, kRDecode = 4;
  using Block = BlockOf<kType>;
  // IQ4_NL and IQ4_XS look their nibbles up in kIQ4NLValues; with Q8_0 they
  // give signed quants. IQ4_XS's "block" b is sub-block b % 8 of its
  // 256-value block b / 8, 32 values as IQ4_NL's with scale d (ls - 32).
  static constexpr bool kIQ4 = kType == DType::kIQ4_NL || kType == DType::kIQ4_XS;
  static constexpr bool kSigned = kType == DType::kQ8_0 || kIQ4;
  // bytes per 32 values (IQ4_XS: on average), for the prefetch distances
  static constexpr int64_t kBlockBytes = kType == DType::kIQ4_XS ? sizeof(Block) / 8 : sizeof(Block);
  static constexpr int64_t kPrefetchBlocks = 32;
  // Q4_0 and Q5_0 store q + kOffset unsigned (Q8_0: 0, signed)
  static constexpr int kOffset = kType == DType::kQ4_0 ? 8 : kType == DType::kQ5_0 ? 16 : 0;
  static constexpr bool kFifthBit = kType == DType::kQ5_0 || kType == DType::kQ5_1;
  // Q4_1, Q5_1: x = d * q + m, the m . x term from the activations' block sums
  static constexpr bool kMin = kType == DType::kQ4_1 || kType == DType::kQ5_1;

  // Block b of a row as 32 int8 values, and its scale. Q8_0 quants are
  // signed; the others' are returned unsigned (0..15, the stored nibbles;
  // 0..31 with the Q5 types' fifth bits above them) and Q4_0's and Q5_0's
  // offset is taken off after the product: (q - 8) . x = q . x - 8 . x.
  static __m256i Quants(const uint8_t* row, int64_t b) {
    if constexpr (kType == DType::kQ8_0) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(reinterpret_cast<const Block*>(row)[b].qs));
    } else {
      const __m128i p = _mm_loadu_si128(reinterpret_cast<const __m128i*>(Nibbles(row, b)));
      // low nibbles are elements 0..15, high nibbles 16..31
      const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(p, 4), p), _mm256_set1_epi8(0x0F));
      if constexpr (kIQ4) {
        return _mm256_shuffle_epi8(IQ4NLTable(), q);
      } else if constexpr (!kFifthBit) {
        return q;
      } else {
        const Block& blk = reinterpret_cast<const Block*>(row)[b];
        uint32_t qh;  // bit i: element i's fifth bit
        __builtin_memcpy(&qh, blk.qh, 4);
        return _mm256_or_si256(q, _mm256_and_si256(BitsToBytes(qh), _mm256_set1_epi8(0x10)));
      }
    }
  }
  // kIQ4NLValues in both 128-bit lanes: vpshufb's lookup table
  static __m256i IQ4NLTable() {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues)));
  }
  // The 16 bytes of nibbles of block b (all but Q8_0).
  static const uint8_t* Nibbles(const uint8_t* row, int64_t b) {
    if constexpr (kType == DType::kIQ4_XS) {
      const uint64_t u = static_cast<uint64_t>(b);
      return reinterpret_cast<const Block*>(row)[u >> 3].qs + 16 * (u & 7);
    }
    return reinterpret_cast<const Block*>(row)[b].qs;
  }
  // IQ4_XS: the 8 sub-block scales d (ls - 32) of 256-value block `blk`,
  // each the float product Scale computes (the nibbles of scales_l
  // interleaved by a byte unpack, scales_h's bit pairs by a variable shift).
  static void SubScales(const uint8_t* row, int64_t blk, float* out) {
    const BlockIQ4_XS& x = reinterpret_cast<const BlockIQ4_XS*>(row)[blk];
    int32_t sl;
    __builtin_memcpy(&sl, x.scales_l, 4);
    const __m128i v = _mm_cvtsi32_si128(sl), m4 = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_unpacklo_epi8(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
    const __m256i hi = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(x.scales_h), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                                        _mm256_set1_epi32(3));
    const __m256i ls = _mm256_or_si256(_mm256_cvtepu8_epi32(lo), _mm256_slli_epi32(hi, 4));
    _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_set1_ps(HalfToFloat(x.d)),
                                        _mm256_cvtepi32_ps(_mm256_sub_epi32(ls, _mm256_set1_epi32(32)))));
  }
  static float Scale(const uint8_t* row, int64_t b) {
    if constexpr (kType == DType::kIQ4_XS) {
      const Block& blk = reinterpret_cast<const Block*>(row)[b / 8];
      return HalfToFloat(blk.d) * static_cast<float>(IQ4XSScale(blk, static_cast<int>(b % 8)));
    }
    return HalfToFloat(reinterpret_cast<const Block*>(row)[b].d);
  }
  static float Min(const uint8_t* row, int64_t b) {
    if constexpr (kMin) return HalfToFloat(reinterpret_cast<const Block*>(row)[b].m);
    return 0.0f;
  }

  template <int R, int C>
  static void Tile(const uint8_t* w, uint64_t rb, const Acts& x, int64_t t, float* y, int64_t ldy) {
    const uint8_t* rows[R];
    float* out[R];
    YUAN_UNROLL
    for (int r = 0; r < R; ++r) {
      rows[r] = w + r * rb;
      out[r] = y + r;
    }
#if YUAN_X86_VNNI
    if constexpr (kPairs && R % 2 == 0) return RowPairs<R, C>(rows, x, t, out, ldy);
#endif
    Rows<R, C>(rows, x, t, out, ldy);
  }

  // One token against rows [r0, r1): kLegacyDecodeRuns runs of rows read
  // side by side (DecodeInRuns), each prefetching DecodePrefetchBytes()
  // ahead. Reading R neighbouring rows instead, Q5_0's products streamed at
  // 12 GB/s where the same kernel computes 55 GFLOP/s from cache.
  static void Decode(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y) {
    DecodeInRuns<kLegacyDecodeRuns>(
        w, r0, r1, y,
        [&](const uint8_t* const* rows, float* const* outs, int64_t ahead) {
#if YUAN_X86_VNNI
          if constexpr (kPairs) return RowPairs<kLegacyDecodeRuns, 1>(rows, x, 0, outs, 0, ahead);
#endif
          Rows<kLegacyDecodeRuns, 1>(rows, x, 0, outs, 0, ahead);
        },
        [&](const uint8_t* row, float* out) { Rows<1, 1>(&row, x, 0, &out, 0); });
  }

#if YUAN_X86_VNNI
  // With AVX-512, S rows against C tokens from t, two rows per zmm (row 2p
  // in the low 256 bits, 2p + 1 in the high), so the unpacking, products
  // and scaling take one instruction per two rows; row r's result for
  // token c goes to out[r][c * ldy]. Each lane's operations are Rows'
  // (the same exact int32 sums, the same FMA per block, the same
  // horizontal sum), so the bits are. Decoding (C = 1, ahead > 0: every row
  // prefetches `ahead` bytes past each block) alternating with Rows in one
  // process, bench-0.3b tg64 (-r 8): Q5_0 1.20x, Q4_1 1.09x, Q5_1 1.15x.
  //
  // IQ4_NL's and IQ4_XS's looked-up values go in offset by 128 (unsigned, as vpdpbusd
  // takes them) and 128 . x comes off as Q4_0's 8 . x does: the same exact
  // sums as Rows' signed products.
  template <int S, int C>
  static void RowPairs(const uint8_t* const* w, const Acts& x, int64_t t, float* const* out, int64_t ldy,
                       int64_t ahead = 0) {
    static_assert(S % 2 == 0 && kPairs, "pairs of Q4_1/Q5_0/Q5_1/IQ4_NL/IQ4_XS rows");
    constexpr int kPairOffset = kIQ4 ? 128 : kOffset;
    [[maybe_unused]] const __m512i table = _mm512_xor_si512(_mm512_maskz_broadcast_i32x4(0xFFFF, _mm256_castsi256_si128(IQ4NLTable())),
                                           _mm512_set1_epi8(static_cast<char>(0x80)));
    constexpr int P = S / 2;
    const int64_t n = x.cols, nb = n / kQ8Block;
    __m512 acc[P][C];
    float accm[S][C];
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) {
      YUAN_UNROLL
      for (int p = 0; p < P; ++p) acc[p][c] = _mm512_setzero_ps();
      YUAN_UNROLL
      for (int r = 0; r < S; ++r) accm[r][c] = 0.0f;
    }
    // [pa | pb] (16 nibble bytes each) -> [pa, pa, pb, pb], then the low
    // nibbles of the first copy and the high of the second: the 32 quants of
    // row a, then row b's, as Quants returns them
    const __m512i dup = _mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3);
    const __m512i shift = _mm512_setr_epi64(0, 0, 0x0004000400040004, 0x0004000400040004, 0, 0,
                                            0x0004000400040004, 0x0004000400040004);
    const __m512i m4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
    [[maybe_unused]] alignas(32) float xs_scales[S][8];  // IQ4_XS: the current block's sub-block scales
    auto scale = [&](int r, int64_t b) {
      if constexpr (kType == DType::kIQ4_XS) return xs_scales[r][b & 7];
      return Scale(w[r], b);
    };
    for (int64_t b = 0; b < nb; ++b) {
      if (ahead > 0) {
        YUAN_UNROLL
        for (int r = 0; r < S; ++r) _mm_prefetch(reinterpret_cast<const char*>(w[r]) + b * kBlockBytes + ahead, _MM_HINT_T0);
      }
      if constexpr (kType == DType::kIQ4_XS) {
        if ((b & 7) == 0) {
          YUAN_UNROLL
          for (int r = 0; r < S; ++r) SubScales(w[r], b >> 3, xs_scales[r]);
        }
      }
      __m512i q[P];
      __m512 dw[P];  // row 2p's scale in the low 8 lanes, 2p + 1's in the high
      float mw[S];
      YUAN_UNROLL
      for (int p = 0; p < P; ++p) {
        const uint8_t* wa = w[2 * p];
        const uint8_t* wb = w[2 * p + 1];
        const __m256i pq = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(Nibbles(wa, b)))),
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(Nibbles(wb, b))), 1);
        q[p] = _mm512_and_si512(
            _mm512_srlv_epi16(_mm512_maskz_permutexvar_epi64(0xFF, dup, _mm512_castsi256_si512(pq)), shift), m4);
        if constexpr (kIQ4) q[p] = _mm512_shuffle_epi8(table, q[p]);
        if constexpr (kFifthBit) {
          const Block& ba = reinterpret_cast<const Block*>(wa)[b];
          const Block& bb = reinterpret_cast<const Block*>(wb)[b];
          uint32_t ha, hb;
          __builtin_memcpy(&ha, ba.qh, 4);
          __builtin_memcpy(&hb, bb.qh, 4);
          const __mmask64 bits = _cvtu64_mask64(static_cast<uint64_t>(ha) | static_cast<uint64_t>(hb) << 32);
          q[p] = _mm512_ternarylogic_epi32(q[p], _mm512_movm_epi8(bits), bit4, 0xF8);  // q | (bits & 16)
        }
        dw[p] = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(scale(2 * p, b)), _mm512_set1_ps(scale(2 * p + 1, b)));
        if constexpr (kMin) {
          mw[2 * p] = Min(wa, b);
          mw[2 * p + 1] = Min(wb, b);
        }
      }
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + (t + c) * n + b * kQ8Block));
        const __m512i xv2 = _mm512_maskz_broadcast_i64x4(0xFF, xv);
        const float dx = x.d[(t + c) * nb + b];
        const __m512 dxv = _mm512_set1_ps(dx);
        __m512i off = _mm512_setzero_si512();
        if constexpr (kPairOffset != 0) {
          off = _mm512_maskz_broadcast_i64x4(0xFF, DotU8S8(_mm256_set1_epi8(static_cast<char>(kPairOffset)), xv));
        }
        YUAN_UNROLL
        for (int p = 0; p < P; ++p) {
          __m512i p32 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[p], xv2);
          if constexpr (kPairOffset != 0) p32 = _mm512_sub_epi32(p32, off);
          // (dw * dx per lane: the product Rows broadcasts)
          acc[p][c] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, p32), _mm512_mul_ps(dw[p], dxv), acc[p][c]);
        }
        if constexpr (kMin) {
          const float sx = static_cast<float>(x.bsums[(t + c) * nb + b]);
          YUAN_UNROLL
          for (int r = 0; r < S; ++r) accm[r][c] = std::fma(mw[r] * dx, sx, accm[r][c]);
        }
      }
    }
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) {
      YUAN_UNROLL
      for (int p = 0; p < P; ++p) {
        const __m512d a = _mm512_castps_pd(acc[p][c]);
        out[2 * p][c * ldy] = Hsum(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, a, 0))) + accm[2 * p][c];
        out[2 * p + 1][c * ldy] = Hsum(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, a, 1))) + accm[2 * p + 1][c];
      }
    }
  }
#endif

  // R rows against C tokens from t: row r's result for token c goes to
  // out[r][c * ldy]. ahead > 0: each row prefetches the line `ahead` bytes
  // past each block it reads; else one token prefetches every 4 blocks.
  template <int R, int C>
  static void Rows(const uint8_t* const* w, const Acts& x, int64_t t, float* const* out, int64_t ldy,
                   int64_t ahead = 0) {
    const int64_t n = x.cols, nb = n / kQ8Block;
    const int8_t* xq[C];
    const float* xd[C];
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) {
      xq[c] = x.qs + (t + c) * n;
      xd[c] = x.d + (t + c) * nb;
    }
    __m256 acc[R][C];
    float accm[R][C];  // Q4_1, Q5_1: sum over blocks of m . dx . sum(xq)
    YUAN_UNROLL
    for (int r = 0; r < R; ++r)
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        acc[r][c] = _mm256_setzero_ps();
        accm[r][c] = 0.0f;
      }
    // Q8_0 and IQ4_NL (signed x signed) take the absolute value of one operand and
    // moves its sign onto the other; of the R weight blocks and C activation
    // blocks, the side with fewer blocks pays for the absolute values.
    constexpr bool kAbsWeights = R <= C;
    [[maybe_unused]] alignas(32) float xs_scales[R][8];  // IQ4_XS: the current block's sub-block scales
    for (int64_t b = 0; b < nb; ++b) {
      if constexpr (kType == DType::kIQ4_XS) {
        if ((b & 7) == 0) {
          YUAN_UNROLL
          for (int r = 0; r < R; ++r) SubScales(w[r], b >> 3, xs_scales[r]);
        }
      }
      if (ahead > 0) {
        // (a block is at most 34 bytes: every line gets a prefetch)
        YUAN_UNROLL
        for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(w[r]) + b * kBlockBytes + ahead, _MM_HINT_T0);
      } else if (C == 1 && (b & 3) == 0) {
        // Decoding streams R weight rows at once; fetching them ahead keeps
        // that many streams flowing (the hardware prefetcher tracks fewer).
        YUAN_UNROLL
        for (int r = 0; r < R; ++r) {
          _mm_prefetch(reinterpret_cast<const char*>(w[r]) + (b + kPrefetchBlocks) * kBlockBytes, _MM_HINT_T0);
        }
      }
      __m256i qw[R], aw[R];
      float dw[R], mw[R];
      YUAN_UNROLL
      for (int r = 0; r < R; ++r) {
        qw[r] = Quants(w[r], b);
        if constexpr (kSigned && kAbsWeights) aw[r] = _mm256_sign_epi8(qw[r], qw[r]);
        if constexpr (kType == DType::kIQ4_XS) {
          dw[r] = xs_scales[r][b & 7];
        } else {
          dw[r] = Scale(w[r], b);
        }
        if constexpr (kMin) mw[r] = Min(w[r], b);
      }
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[c] + b * kQ8Block));
        const float dx = xd[c][b];
        __m256i off;  // Q4_0, Q5_0: kOffset . x;  signed with !kAbsWeights: |x|
        if constexpr (kOffset != 0) off = DotU8S8(_mm256_set1_epi8(kOffset), xv);
        if constexpr (kSigned && !kAbsWeights) off = _mm256_sign_epi8(xv, xv);
        YUAN_UNROLL
        for (int r = 0; r < R; ++r) {
          __m256i p32;
          if constexpr (kSigned && kAbsWeights) {
            p32 = DotU8S8(aw[r], _mm256_sign_epi8(xv, qw[r]));  // |w| . (x with w's sign)
          } else if constexpr (kSigned) {
            p32 = DotU8S8(off, _mm256_sign_epi8(qw[r], xv));  // |x| . (w with x's sign)
          } else if constexpr (kOffset != 0) {
            p32 = _mm256_sub_epi32(DotU8S8(qw[r], xv), off);
          } else {
            p32 = DotU8S8(qw[r], xv);
          }
          const __m256 p = _mm256_cvtepi32_ps(p32);
          acc[r][c] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw[r] * dx), acc[r][c]);
          if constexpr (kMin) {
            accm[r][c] = std::fma(mw[r] * dx, static_cast<float>(x.bsums[(t + c) * nb + b]), accm[r][c]);
          }
        }
      }
    }
    YUAN_UNROLL
    for (int r = 0; r < R; ++r)
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) out[r][c * ldy] = Hsum(acc[r][c]) + accm[r][c];
  }
};

// ---- Q8_0 / Q4_0: 8 weight rows in the 8 lanes ------------------------------
//
// Every 32 bytes hold 4 consecutive quants of each of 8 rows ([row0 q0..q3]
// [row1 q0..q3]...[row7 q0..q3]). One vpmaddubsw against 4 activation bytes
// broadcast to every lane then advances all 8 rows' dot products at once, a
// block's result lands one row per lane (no horizontal sums), and one FMA
// with the 8 rows' scales times the token's scale finishes the block for all
// 8 rows: about a third of the instructions of the register-tiled form.
//
// Weights repacked by the engine (kernels::Interleave8, the layout llama.cpp
// repacks Q4_0 into) are already in this form: decoding (Gemv) widens the
// nibbles in registers. For a prompt batch each band is first unpacked into
// a buffer (nibbles widened to bytes) that every token then reuses; that is
// also how row-major weights are handled when a batch is big enough.
//
// Each element is computed in a fixed order (exact int32 block sums, then
// one FMA per block in block order), so results do not depend on the thread
// count or, for repacked weights, on the batch size; they differ from the
// register-tiled kernel's in float rounding only.

constexpr int kBandRows = 8;
constexpr int64_t kBandMinTokens = 4;
// Interleaved bands meet batches of up to this many tokens in place, the
// way a decoded token does (BandQ8::DecodeBands: each step's bands read
// once from memory, the batch's later tokens from the cache), not unpacked
// first: batched decoding of a few sequences keeps the weights streaming.
// Alternating in one process (yuan bench -t 2 -p 4,6,8,12,16 -n 0 -r 5)
// against unpacking from 4 tokens on: bench-0.3b Q4_0 pp4 498-508 ->
// 773-802 t/s, pp6 631-639 -> 860-868, pp8 779-796 -> 916-919; bench-0.3b
// Q8_0 pp4 369-403 -> 551-590, pp8 608-664 -> 654-712; bench-1b Q4_0 pp4
// 136-142 -> 220-229; the AVX2 set pp4 484-499 -> 569-589 (Q4_0) and
// 323-332 -> 419-490 (Q8_0). At 12 tokens the two were even, at 16
// unpacking won.
constexpr int64_t kBandDecodeMaxTokens = 8;
// Q4_K, Q5_K and Q6_K (row-major) meet batches of fewer tokens with their
// row-major kernels (the same bits as BandK's), which read each row once
// from memory for all the tokens, instead of unpacking bands per call:
// with BandK from 4 tokens on, bench-0.5b Q5_K_M (Q5_K/Q6_K down
// projections) read pp4 slower than pp3. Alternating in one process (yuan
// bench -t 2 -p 3,4,6,8,12 -n 0 -r 5), BandK from 4 against from 9 tokens:
// bench-0.5b Q5_K_M pp4 212.5 and 200.0 -> 296.5 and 290.0 t/s, pp8 342.7
// and 339.8 -> 365.1 and 353.9; bench-0.5b Q4_K_M pp4 255.5 and 250.6 ->
// 348.5 and 347.0, pp8 374.3 and 298.9 -> 388.0 and 383.0; the AVX2 set
// (Q4_K_M) pp4 190.3 and 186.5 -> 225.0 and 228.0. Q2_K, Q3_K and the IQ4
// types, with no bench file to measure, keep kBandMinTokens.
constexpr int64_t kBandKMinTokens = kBandDecodeMaxTokens + 1;

#if YUAN_X86_VNNI
// ---- AMX tiles (BandQ8::TokensAmx) -------------------------------------------
//
// The instructions as inline assembly with their memory effects spelled
// out (GCC 12's _tile_loadd does not tell the compiler that it reads
// memory). binutils 2.36 and later assemble them; they run only where
// AmxEnabled() says the CPU and the OS allow it.
struct AmxTiles {
  // Tiles 0, 3, 6 and 7: C, 16 tokens x 16 int32; 1 and 4: A, 16 tokens x
  // 32 bytes; 2 and 5: B, 8 x 64 bytes.
  struct alignas(64) Config {
    uint8_t palette = 1, start_row = 0, reserved[14] = {};
    uint16_t colsb[16] = {64, 32, 64, 64, 32, 64, 64, 64};
    uint8_t rows[16] = {16, 16, 8, 16, 16, 8, 16, 16};
  };
  static void Configure() {
    static const Config cfg;
    __asm__ volatile("ldtilecfg %0" ::"m"(cfg) : "memory");
  }
  static void Release() { __asm__ volatile("tilerelease" ::: "memory"); }
};

// C = 0; C += A . B (signed bytes both); C to cbuf (64-byte
// rows). a: 16 rows at stride lda; b: 8 rows of 64 bytes.
#define YUAN_AMX_BLOCK(C, A, B, a, b, lda, cbuf)                                                   \
  __asm__ volatile(                                                                             \
      "tilezero %%tmm" #C "\n\t"                                                                  \
      "tileloadd (%0,%1,1), %%tmm" #A "\n\t"                                                      \
      "tileloadd (%2,%3,1), %%tmm" #B "\n\t"                                                      \
      "tdpbssd %%tmm" #B ", %%tmm" #A ", %%tmm" #C "\n\t"                                         \
      "tilestored %%tmm" #C ", (%4,%3,1)" ::"r"(a),                                               \
      "r"(static_cast<long>(lda)), "r"(b), "r"(64L), "r"(cbuf)                                     \
      : "memory")
// Tokens a0 and a1 (16 rows each at stride lda) against weights b0 and b1
// (8 rows of 64 bytes each): C0 = a0.b0, C1 = a0.b1, C2 = a1.b0, C3 = a1.b1
// to cbuf, cbuf + 256, + 512, + 768 (int32).
#define YUAN_AMX_2X2(a0, a1, b0, b1, lda, cbuf)                                                   \
  __asm__ volatile(                                                                             \
      "tilezero %%tmm0\n\t"                                                                       \
      "tilezero %%tmm3\n\t"                                                                       \
      "tilezero %%tmm6\n\t"                                                                       \
      "tilezero %%tmm7\n\t"                                                                       \
      "tileloadd (%0,%2,1), %%tmm1\n\t"                                                           \
      "tileloadd (%3,%5,1), %%tmm2\n\t"                                                           \
      "tileloadd (%4,%5,1), %%tmm5\n\t"                                                           \
      "tileloadd (%1,%2,1), %%tmm4\n\t"                                                           \
      "tdpbssd %%tmm2, %%tmm1, %%tmm0\n\t"                                                        \
      "tdpbssd %%tmm5, %%tmm1, %%tmm3\n\t"                                                        \
      "tdpbssd %%tmm2, %%tmm4, %%tmm6\n\t"                                                        \
      "tdpbssd %%tmm5, %%tmm4, %%tmm7\n\t"                                                        \
      "tilestored %%tmm0, (%6,%5,1)\n\t"                                                          \
      "tilestored %%tmm3, (%7,%5,1)\n\t"                                                          \
      "tilestored %%tmm6, (%8,%5,1)\n\t"                                                          \
      "tilestored %%tmm7, (%9,%5,1)" ::"r"(a0),                                                    \
      "r"(a1), "r"(static_cast<long>(lda)), "r"(b0), "r"(b1), "r"(64L), "r"(cbuf), "r"((cbuf) + 256), \
      "r"((cbuf) + 512), "r"((cbuf) + 768)                                                        \
      : "memory")
#endif

// The quants of an interleaved band block whose nibble groups start at
// `quants` (4 x 32 bytes, kernels::Interleave8's layout), group g in q[g]:
// the low nibbles make groups 0-3, the high ones 4-7. kFifth (Q5_0, Q5_1):
// the fifth bits (the 32 bytes after the nibbles; bit g of each byte, for
// group g) shifted to bit 4 and or-ed in, giving the quants 0..31 (the
// 16-bit shifts move no bit that is kept across a byte).
template <bool kFifth>
inline void BandGroups(const uint8_t* quants, __m256i* q) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
  __m256i lo = _mm256_setzero_si256(), hi = lo;  // bit 4: groups h and h + 4's, after h shifts
  if constexpr (kFifth) {
    hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants + 4 * 32));
    lo = _mm256_slli_epi16(hi, 4);
  }
  YUAN_UNROLL
  for (int h = 0; h < 4; ++h) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quants + 32 * h));
    q[h] = _mm256_and_si256(v, m4);
    q[h + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    if constexpr (kFifth) {
      q[h] = _mm256_or_si256(q[h], _mm256_and_si256(lo, bit4));
      q[h + 4] = _mm256_or_si256(q[h + 4], _mm256_and_si256(hi, bit4));
      lo = _mm256_srli_epi16(lo, 1);
      hi = _mm256_srli_epi16(hi, 1);
    }
  }
}

template <DType kType>
struct BandQ8 {
  // Q8_0, Q5_0 (q - 16), IQ4_NL and IQ4_XS (their nibbles looked up in
  // kIQ4NLValues) are signed bytes in the unpacked band; the last three are
  // never interleaved, so only the row-major unpacking takes them
  static constexpr bool kQ8 =
      kType == DType::kQ8_0 || kType == DType::kQ5_0 || kType == DType::kIQ4_NL || kType == DType::kIQ4_XS;
  // vpdpbusd multiplies unsigned by signed bytes. Q4_0's nibbles are
  // unsigned already (w = q - 8). With VNNI a Q8_0 weight goes in offset by
  // 128 (w + 128 = w ^ 0x80, one xor per weight vector) and the offset comes
  // out as 128 * sum(x) per block, as Q4_0's 8 does; without VNNI the int16
  // pair sums of vpmaddubsw would saturate on w + 128, so Q8_0 keeps |w| and
  // moves w's sign onto x (one vpsignb per token and group).
  static constexpr bool kOffsetQ8 = kQ8 && YUAN_X86_VNNI;
  static constexpr int32_t kOffset = kQ8 ? 128 : 8;
  // The unpacked form of one block column of a band: 8 groups x 32 bytes of
  // unsigned quants (Q4_0: the nibbles 0..15; Q8_0: w + 128 with VNNI, else
  // |w| followed by 8 x 32 bytes of the signed weights, for their signs).
  static constexpr int64_t kGroupBytes = 32 * 8;
  static constexpr int64_t kUnpackedBytes = kQ8 && !kOffsetQ8 ? 2 * kGroupBytes : kGroupBytes;
  static constexpr int64_t kBlockBytes = kType == DType::kQ8_0   ? sizeof(BlockQ8_0)
                                         : kType == DType::kQ5_0 ? sizeof(BlockQ5_0)
                                                                 : sizeof(BlockQ4_0);
  static_assert(sizeof(BlockIQ4_NL) == sizeof(BlockQ4_0));
  // Interleaved Q5_0 is decoded as its quants 0..31 (w = q - 16), unsigned
  // as vpdpbusd takes them, with Q4_0's kind of offset.
  static constexpr bool kQ5 = kType == DType::kQ5_0;
  static constexpr int32_t kDecodeOffset = kQ5 ? 16 : kOffset;

  // One token's block against the band: lane j = exact int32 dot product of
  // row j's block with the token's block. q: 8 group vectors; sgn: Q8_0's
  // signed weights (without VNNI). `xsum` = sum of the token block's quants.
  // kQ5Decode: q is an interleaved Q5_0 block's quants 0..31 (BandGroups).
  template <bool kQ5Decode = false>
  static __m256i LaneDot(const __m256i* q, const __m256i* sgn, const int8_t* xb, int32_t xsum) {
    constexpr int32_t kOff = kQ5Decode ? kDecodeOffset : kOffset;
#if YUAN_X86_VNNI
    (void)sgn;
    // vpdpbusd sums straight into int32 (the same exact sums as below), in
    // two chains so consecutive groups do not wait on each other
    __m256i a[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    YUAN_UNROLL
    for (int g = 0; g < 8; ++g) {
      int32_t x4;
      __builtin_memcpy(&x4, xb + 4 * g, 4);
      a[g & 1] = _mm256_dpbusd_epi32(a[g & 1], q[g], _mm256_set1_epi32(x4));
    }
    // (q - offset) . x = q . x - offset * sum(x)
    return _mm256_sub_epi32(_mm256_add_epi32(a[0], a[1]), _mm256_set1_epi32(kOff * xsum));
#else
    if constexpr (kQ5Decode) {
      // int16 pair sums, four groups at a time: each at most 2 * 31 * 127,
      // so four stay below 32768
      __m256i s16[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
      YUAN_UNROLL
      for (int g = 0; g < 8; ++g) {
        int32_t x4;
        __builtin_memcpy(&x4, xb + 4 * g, 4);
        s16[g / 4] = _mm256_add_epi16(s16[g / 4], _mm256_maddubs_epi16(q[g], _mm256_set1_epi32(x4)));
      }
      const __m256i one = _mm256_set1_epi16(1);
      const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(s16[0], one), _mm256_madd_epi16(s16[1], one));
      return _mm256_sub_epi32(p, _mm256_set1_epi32(kOff * xsum));
    } else if constexpr (!kQ8) {
      // int16 pair sums of 8 groups: each at most 2 * 15 * 127, so their
      // total stays below 32768
      __m256i s16 = _mm256_setzero_si256();
      YUAN_UNROLL
      for (int g = 0; g < 8; ++g) {
        int32_t x4;
        __builtin_memcpy(&x4, xb + 4 * g, 4);
        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(q[g], _mm256_set1_epi32(x4)));
      }
      // (q - 8) . x = q . x - 8 * sum(x)
      return _mm256_sub_epi32(_mm256_madd_epi16(s16, _mm256_set1_epi16(1)), _mm256_set1_epi32(8 * xsum));
    } else {
      __m256i p32 = _mm256_setzero_si256();
      YUAN_UNROLL
      for (int g = 0; g < 8; ++g) {
        int32_t x4;
        __builtin_memcpy(&x4, xb + 4 * g, 4);
        p32 = _mm256_add_epi32(p32, DotU8S8(q[g], _mm256_sign_epi8(_mm256_set1_epi32(x4), sgn[g])));
      }
      return p32;
    }
#endif
  }

  // Unpacks block column b of a band into `out` (kUnpackedBytes) and its 8
  // scales; from 8 row-major rows, or from the interleaved layout. Group g
  // goes to out + 32 * g * stride: stride 2 leaves room for a second band's
  // groups beside each (the 16-row form, VNNI only).
  // kSigned (AMX, VNNI only): the weights themselves as signed bytes
  // instead (Q8_0: w; Q4_0: q - 8), in the 16-row form's layout.
  template <bool kSigned = false>
  static void Unpack(const uint8_t* w, uint64_t rb, bool interleaved, int64_t b, int8_t* out,
                     float* scales, int stride = 1) {
    static_assert(!kSigned || kUnpackedBytes == kGroupBytes, "the signed form is VNNI's");
    if (interleaved) {  // already in groups: widen the nibbles / take |w|
      const uint8_t* blk = w + b * kBandRows * kBlockBytes;
      _mm256_storeu_ps(scales, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk))));
      __m256i* o = reinterpret_cast<__m256i*>(out);
      if constexpr (kQ5) {  // the signed weights q - 16, in the form asked for
        __m256i q[8];
        BandGroups<true>(blk + 16, q);
        for (int g = 0; g < 8; ++g) {
          const __m256i v = _mm256_sub_epi8(q[g], _mm256_set1_epi8(16));
          if constexpr (kSigned) {
            _mm256_storeu_si256(o + g * stride, v);
          } else if constexpr (kOffsetQ8) {
            _mm256_storeu_si256(o + g * stride, _mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(0x80))));
          } else {
            _mm256_storeu_si256(o + g, _mm256_sign_epi8(v, v));
            _mm256_storeu_si256(o + 8 + g, v);
          }
        }
      } else if constexpr (kSigned) {
        if constexpr (kQ8) {
          for (int g = 0; g < 8; ++g) {
            _mm256_storeu_si256(o + g * stride, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * g)));
          }
        } else {
          const __m256i m4 = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
          for (int h = 0; h < 4; ++h) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * h));
            _mm256_storeu_si256(o + h * stride, _mm256_sub_epi8(_mm256_and_si256(v, m4), eight));
            _mm256_storeu_si256(o + (h + 4) * stride,
                                _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), eight));
          }
        }
      } else if constexpr (kOffsetQ8) {
        const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
        for (int g = 0; g < 8; ++g) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * g));
          _mm256_storeu_si256(o + g * stride, _mm256_xor_si256(v, flip));
        }
      } else if constexpr (kQ8) {
        for (int g = 0; g < 8; ++g) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * g));
          _mm256_storeu_si256(o + g, _mm256_sign_epi8(v, v));
          _mm256_storeu_si256(o + 8 + g, v);
        }
      } else {
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        for (int h = 0; h < 4; ++h) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * h));
          _mm256_storeu_si256(o + h * stride, _mm256_and_si256(v, m4));
          _mm256_storeu_si256(o + (h + 4) * stride, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
        }
      }
      return;
    }
    int8_t q[kBandRows][32];
    for (int j = 0; j < kBandRows; ++j) {
      const uint8_t* row = w + j * rb;
      if constexpr (kType == DType::kQ8_0) {
        const BlockQ8_0& blk = reinterpret_cast<const BlockQ8_0*>(row)[b];
        for (int i = 0; i < 32; ++i) q[j][i] = blk.qs[i];
        scales[j] = HalfToFloat(blk.d);
      } else if constexpr (kType == DType::kQ4_0) {
        const BlockQ4_0& blk = reinterpret_cast<const BlockQ4_0*>(row)[b];
        for (int i = 0; i < 16; ++i) {
          q[j][i] = static_cast<int8_t>(blk.qs[i] & 0x0F);
          q[j][i + 16] = static_cast<int8_t>(blk.qs[i] >> 4);
        }
        scales[j] = HalfToFloat(blk.d);
      } else {  // Q5_0, IQ4_NL, IQ4_XS: the row-major kernel's quants, signed
        __m256i v = Q8Micro<kType>::Quants(row, b);
        if constexpr (kType == DType::kQ5_0) v = _mm256_sub_epi8(v, _mm256_set1_epi8(16));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q[j]), v);
        scales[j] = Q8Micro<kType>::Scale(row, b);
      }
    }
    for (int g = 0; g < 8; ++g) {
      for (int j = 0; j < kBandRows; ++j) {
        for (int i = 0; i < 4; ++i) {
          const int8_t v = q[j][4 * g + i];
          if constexpr (kSigned) {
            out[g * 32 * stride + 4 * j + i] = kQ8 ? v : static_cast<int8_t>(v - 8);
          } else if constexpr (kOffsetQ8) {
            out[g * 32 * stride + 4 * j + i] = static_cast<int8_t>(static_cast<uint8_t>(v) ^ 0x80);  // v + 128 as u8
          } else if constexpr (kQ8) {
            out[g * 32 + 4 * j + i] = static_cast<int8_t>(v < 0 ? -v : v);  // -128 -> 128 as u8
            out[kGroupBytes + g * 32 + 4 * j + i] = v;
          } else {
            out[g * 32 * stride + 4 * j + i] = v;
          }
        }
      }
    }
  }

  // y[(t + c) * ldy + j] for the band's 8 rows and C tokens, from the
  // unpacked band.
  template <int C>
  static void Tokens(const int8_t* unpacked, const float* scales, int64_t nb, const Acts& x,
                     int64_t t, float* y, int64_t ldy) {
    const int64_t n = x.cols;
    __m256 acc[C];
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i* qb = reinterpret_cast<const __m256i*>(unpacked + b * kUnpackedBytes);
      const __m256 sw = _mm256_loadu_ps(scales + b * kBandRows);
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const __m256i p32 = LaneDot(qb, qb + 8, x.qs + (t + c) * n + b * kQ8Block, x.bsums[(t + c) * nb + b]);
        const __m256 scale = _mm256_mul_ps(sw, _mm256_set1_ps(x.d[(t + c) * nb + b]));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), scale, acc[c]);
      }
    }
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(y + c * ldy, acc[c]);
  }

#if YUAN_X86_VNNI
  // Tokens for two bands at once, unpacked with stride 2: each zmm holds
  // group g of both (rows r..r+15), so one broadcast of the token's 4 bytes
  // feeds 16 rows. Per lane the same exact int32 sum and the same one FMA
  // per block as Tokens: the same bits. Full-width 512-bit units (Zen 5,
  // Intel) run it at twice the multiply-adds of the 8-row form.
  template <int C>
  static void Tokens16(const int8_t* unpacked, const float* scales, int64_t nb, const Acts& x,
                       int64_t t, float* y, int64_t ldy) {
    static_assert(kUnpackedBytes == kGroupBytes, "one group set per band: Q4_0, or Q8_0 offset by 128");
    const int64_t n = x.cols;
    __m512 acc[C];
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const __m512i* qb = reinterpret_cast<const __m512i*>(unpacked + b * 2 * kUnpackedBytes);
      __m512i q[8];
      YUAN_UNROLL
      for (int g = 0; g < 8; ++g) q[g] = _mm512_load_si512(qb + g);
      const __m512 sw = _mm512_loadu_ps(scales + b * 2 * kBandRows);
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const int8_t* xb = x.qs + (t + c) * n + b * kQ8Block;
        __m512i a[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        YUAN_UNROLL
        for (int g = 0; g < 8; ++g) {
          int32_t x4;
          __builtin_memcpy(&x4, xb + 4 * g, 4);
          a[g & 1] = _mm512_dpbusd_epi32(a[g & 1], q[g], _mm512_set1_epi32(x4));
        }
        const __m512i p32 = _mm512_sub_epi32(_mm512_add_epi32(a[0], a[1]),
                                             _mm512_set1_epi32(kOffset * x.bsums[(t + c) * nb + b]));
        const __m512 scale = _mm512_mul_ps(sw, _mm512_set1_ps(x.d[(t + c) * nb + b]));
        // (the masked form of vcvtdq2ps with every lane on: GCC 12 warns about
        // the plain intrinsic's undefined pass-through operand)
        acc[c] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, p32), scale, acc[c]);
      }
    }
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
  }

  // Tokens16<16> by AMX, for `count` <= 16 tokens whose quant bytes are
  // at xa (stride x.cols): tile A is the 16 tokens' 32 bytes of block b as
  // they lie, tile B the block unpacked with the signed weights (Unpack<true>:
  // 8 groups x 16 rows x 4 bytes, the VNNI layout as it lies), and one
  // tdpbssd gives the 16 x 16 exact int32 sums w . x, the very sums
  // Tokens16 gets from w + 128 (or q) and the offset. Through cbuf they go
  // to the same scale and one FMA per block: the same bits. Two sets of
  // tiles alternate, so block b + 1's product runs while block b's sums are
  // scaled. The tiles must be configured (AmxTiles).
  static void TokensAmx(const int8_t* unpacked, const float* scales, int64_t nb, const Acts& x,
                        const int8_t* xa, int64_t t, int64_t count, float* y, int64_t ldy,
                        int32_t* cbuf) {
    const int64_t n = x.cols;
    __m512 acc[16];
    YUAN_UNROLL
    for (int c = 0; c < 16; ++c) acc[c] = _mm512_setzero_ps();
    YUAN_AMX_BLOCK(0, 1, 2, xa, unpacked, n, cbuf);
    for (int64_t b = 0; b < nb; ++b) {
      if (b + 1 < nb) {
        if (b & 1) {
          YUAN_AMX_BLOCK(0, 1, 2, xa + (b + 1) * kQ8Block, unpacked + (b + 1) * 2 * kUnpackedBytes, n, cbuf);
        } else {
          YUAN_AMX_BLOCK(3, 4, 5, xa + (b + 1) * kQ8Block, unpacked + (b + 1) * 2 * kUnpackedBytes, n,
                         cbuf + 256);
        }
      }
      const int32_t* cb = cbuf + (b & 1) * 256;
      const __m512 sw = _mm512_loadu_ps(scales + b * 2 * kBandRows);
      YUAN_UNROLL
      for (int c = 0; c < 16; ++c) {
        // (rows past count: their sums are not stored)
        const float dx = c < count ? x.d[(t + c) * nb + b] : 0.0f;
        const __m512 scale = _mm512_mul_ps(sw, _mm512_set1_ps(dx));
        acc[c] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_load_si512(cb + 16 * c)), scale, acc[c]);
      }
    }
    YUAN_UNROLL
    for (int c = 0; c < 16; ++c) {
      if (c < count) _mm512_storeu_ps(y + c * ldy, acc[c]);
    }
  }
#endif

#if YUAN_X86_VNNI
  // TokensAmx for up to 32 tokens against 32 rows, over the chunk of blocks
  // [b0, b0 + nbc): four C tiles per block, each tile A and tile B serving
  // two products.
  //   Tokens: two groups of 16 whose quant rows are at xa[g] (stride
  //   x.cols; rows past count[g] zero); group g's first token is t[g].
  //   Rows: two unpacked 16-row bands u[p] with their scales s[p] (the
  //   chunk's blocks from 0).
  // The f32 sums live in acc (32 tokens x 32 rows) from chunk to chunk;
  // each gets the same scale and FMA per block as in TokensAmx, in block
  // order, so the bits are the same.
  // Why: TokensAmx waits on its tiles. With two sets of three, each
  // block's load, product and store ran at the latency of that chain
  // (about 52 ns a block, where a microbenchmark's product took 5 and its
  // 1 KiB store 4.5). Four products per chain, each tile loaded once for
  // two of them (as llama.cpp's AMX kernel does): bench-0.3b pp512 Q8_0
  // 1008-1016 -> 1188-1196 t/s, Q4_0 1013-1038 -> 1178-1182, bench-1b
  // Q4_0 377-380 -> 388-391 (Xeon VM, eleventh session).
  static void TokensAmx2x2(const int8_t* const* u, const float* const* s, int64_t b0, int64_t nbc,
                           const Acts& x, const int8_t* const* xa, const int64_t* t, const int64_t* count,
                           int32_t* cbuf, float* acc) {
    const int64_t n = x.cols, nb = x.cols / kQ8Block;
    for (int64_t b = 0; b < nbc; ++b) {
      const int64_t ab = (b0 + b) * kQ8Block;
      YUAN_AMX_2X2(xa[0] + ab, xa[1] + ab, u[0] + b * 2 * kUnpackedBytes, u[1] + b * 2 * kUnpackedBytes, n, cbuf);
      const __m512 sw[2] = {_mm512_loadu_ps(s[0] + b * 2 * kBandRows), _mm512_loadu_ps(s[1] + b * 2 * kBandRows)};
      YUAN_UNROLL
      for (int k = 0; k < 4; ++k) {  // tile k: token group k / 2, band k % 2
        const int32_t* cb = cbuf + 256 * k;
        const int g = k / 2;
        float* a = acc + g * 16 * 32 + (k % 2) * 16;
        YUAN_UNROLL
        for (int c = 0; c < 16; ++c) {
          const float dx = c < count[g] ? x.d[(t[g] + c) * nb + b0 + b] : 0.0f;
          const __m512 scale = _mm512_mul_ps(sw[k % 2], _mm512_set1_ps(dx));
          _mm512_storeu_ps(a + 32 * c, _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_load_si512(cb + 16 * c)),
                                                        scale, _mm512_loadu_ps(a + 32 * c)));
        }
      }
    }
  }
#endif

  // One token against S interleaved bands, unpacking in registers: the
  // decoding kernel. Same arithmetic per element as Tokens.
  //
  // The S bands are read side by side, block by block: S sequential streams
  // and S independent accumulator chains. On Zen 5, one thread, one band at
  // a time decoded at 20-25 GB/s from memory where a plain read of one
  // stream ran at 28-30 (44 GB/s from L2); four bands side by side ran at
  // 30-33 (65 from L2): one core's prefetchers keep several streams ahead
  // of the loads, and the chains overlap. Eight were slower.
  //
  // kPrefetch: each stream also prefetches the lines `ahead` bytes
  // (DecodePrefetchBytes) ahead of the block it reads. DecodeRuns asks for
  // it with four runs. In the engine on Zen 5, with and without alternating
  // in one process, while four runs still needed 512 KiB each: bench-1b
  // Q8_0 1.04-1.12x, bench-1b Q4_0 1.02-1.09x, bench-0.3b Q8_0 (whose
  // gate/up runs were long enough) 0.99-1.06x, more while the memory is
  // slow; the AVX2 kernels 1.00-1.02x. Two runs (then bench-0.3b Q4_0's
  // short ranges, which the pool's worker partly reads ahead into L2) lost
  // 8-16 % with the same prefetches, so they stay without; four runs with
  // prefetches beat them (DecodeBands).
  template <int S, bool kPrefetch = false>
  static void Gemv(const uint8_t* const* bands, int64_t nb, const Acts& x, int64_t t, float* const* y,
                   int64_t ahead = 0) {
    const int64_t n = x.cols;
    const int8_t* xq = x.qs + t * n;
    __m256 acc[S];
    YUAN_UNROLL
    for (int s = 0; s < S; ++s) acc[s] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const float dx = x.d[t * nb + b];
      const int32_t xsum = x.bsums[t * nb + b];
      YUAN_UNROLL
      for (int s = 0; s < S; ++s) {
        const uint8_t* blk = bands[s] + b * kBandRows * kBlockBytes;
        if constexpr (kPrefetch) {
          // (a hint: an address past the end of the matrix does not fault)
          const char* p = reinterpret_cast<const char*>(blk) + ahead;
          YUAN_UNROLL
          for (int64_t o = 0; o < kBandRows * kBlockBytes; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
        }
        const __m256 sw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
        __m256i q[8], sgn[8];
        if constexpr (kQ5) {
          BandGroups<true>(blk + 16, q);
        } else if constexpr (kOffsetQ8) {
          const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
          YUAN_UNROLL
          for (int g = 0; g < 8; ++g) {
            q[g] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * g)), flip);
          }
        } else if constexpr (kQ8) {
          YUAN_UNROLL
          for (int g = 0; g < 8; ++g) {
            sgn[g] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * g));
            q[g] = _mm256_sign_epi8(sgn[g], sgn[g]);
          }
        } else {
          BandGroups<false>(blk + 16, q);
        }
        const __m256i p32 = LaneDot<kQ5>(q, sgn, xq + b * kQ8Block, xsum);
        const __m256 scale = _mm256_mul_ps(sw, _mm256_set1_ps(dx));
        acc[s] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), scale, acc[s]);
      }
    }
    YUAN_UNROLL
    for (int s = 0; s < S; ++s) _mm256_storeu_ps(y[s], acc[s]);
  }

#if YUAN_X86_VNNI
  // Gemv with the bands in pairs, band 2p in the low 256 bits of a zmm and
  // band 2p + 1 in the high: each instruction works on two bands' blocks
  // (the unpacking, the offset, the products, the scaling), about half of
  // Gemv's instructions per weight; every lane's operations are Gemv's, so
  // the bits are. Decoding is read-bound, but its instructions still count:
  // on Zen 5 the ymm form had only 1.3x headroom over the memory (Q4_0 from
  // L2, one thread: 238 GFLOP/s, about 67 GB/s of weights), and the loads
  // behind the work waited for it. Here: Q4_0 from L2 278-314 GFLOP/s,
  // Q8_0 169-217 as before (yuan_bench_matmul -t 1 -n 1); yuan bench tg128
  // alternating with Gemv in one process (-r 10): bench-0.3b Q4_0 1.01x and
  // 1.02x, bench-1b Q4_0 1.05x, bench-0.3b Q8_0 1.01x, bench-1b Q8_0 1.04x.
  template <int S, bool kPrefetch = false>
  static void Gemv512(const uint8_t* const* bands, int64_t nb, const Acts& x, int64_t t, float* const* y,
                      int64_t ahead = 0) {
    static_assert(S % 2 == 0, "bands in pairs");
    constexpr int P = S / 2;
    const int8_t* xq = x.qs + t * x.cols;
    __m512 acc[P];
    YUAN_UNROLL
    for (int p = 0; p < P; ++p) acc[p] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; ++b) {
      const __m512 dx = _mm512_set1_ps(x.d[t * nb + b]);
      // (q - offset) . x = q . x - offset * sum(x)
      const __m512i offset = _mm512_set1_epi32(kDecodeOffset * x.bsums[t * nb + b]);
      __m512i xb[8];
      YUAN_UNROLL
      for (int g = 0; g < 8; ++g) {
        int32_t x4;
        __builtin_memcpy(&x4, xq + b * kQ8Block + 4 * g, 4);
        xb[g] = _mm512_set1_epi32(x4);
      }
      YUAN_UNROLL
      for (int p = 0; p < P; ++p) {
        const uint8_t* blk[2] = {bands[2 * p] + b * kBandRows * kBlockBytes,
                                 bands[2 * p + 1] + b * kBandRows * kBlockBytes};
        if constexpr (kPrefetch) {
          // (a hint: an address past the end of the matrix does not fault)
          YUAN_UNROLL
          for (int h = 0; h < 2; ++h) {
            const char* pf = reinterpret_cast<const char*>(blk[h]) + ahead;
            YUAN_UNROLL
            for (int64_t o = 0; o < kBandRows * kBlockBytes; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
          }
        }
        // 32 bytes at offset o of both blocks, as one zmm
        auto pair = [&](int64_t o) {
          const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0] + o));
          const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1] + o));
          return _mm512_maskz_inserti64x4(
              0xFF, _mm512_maskz_inserti64x4(0xFF, _mm512_setzero_si512(), lo, 0), hi, 1);
        };
        const __m512 sw = _mm512_maskz_cvtph_ps(0xFFFF, _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[0]))),
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[1])), 1));
        __m512i q[8];
        if constexpr (kQ5) {  // BandGroups' steps, two bands at a time
          const __m512i bit4 = _mm512_set1_epi8(0x10);
          const __m512i hb = pair(16 + 4 * 32);
          __m512i lo = _mm512_slli_epi16(hb, 4), hi = hb;
          YUAN_UNROLL
          for (int h = 0; h < 4; ++h) {
            const __m512i v = pair(16 + 32 * h);
            // (v & 15) | (bits & 16), one vpternlogd (0xF8: a | (b & c))
            q[h] = _mm512_ternarylogic_epi32(_mm512_and_si512(v, m4), lo, bit4, 0xF8);
            q[h + 4] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(v, 4), m4), hi, bit4, 0xF8);
            lo = _mm512_srli_epi16(lo, 1);
            hi = _mm512_srli_epi16(hi, 1);
          }
        } else if constexpr (kQ8) {
          const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
          YUAN_UNROLL
          for (int g = 0; g < 8; ++g) q[g] = _mm512_xor_si512(pair(16 + 32 * g), flip);
        } else {
          YUAN_UNROLL
          for (int h = 0; h < 4; ++h) {
            const __m512i v = pair(16 + 32 * h);
            q[h] = _mm512_and_si512(v, m4);
            q[h + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
          }
        }
        // two chains, as LaneDot's
        __m512i a[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        YUAN_UNROLL
        for (int g = 0; g < 8; ++g) a[g & 1] = _mm512_dpbusd_epi32(a[g & 1], q[g], xb[g]);
        const __m512i p32 = _mm512_sub_epi32(_mm512_add_epi32(a[0], a[1]), offset);
        acc[p] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, p32), _mm512_mul_ps(sw, dx), acc[p]);
      }
    }
    YUAN_UNROLL
    for (int p = 0; p < P; ++p) {
      const __m512d a = _mm512_castps_pd(acc[p]);
      _mm256_storeu_ps(y[2 * p], _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, a, 0)));
      _mm256_storeu_ps(y[2 * p + 1], _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, a, 1)));
    }
  }
#endif

  // Decodes bands [r0, r1) (whole bands) for every token: kStreams runs of
  // consecutive bands read side by side (Gemv512 in the AVX-512 set, Gemv
  // in the AVX2 one), the rest one band at a time.
  //
  // Four runs where each is at least kDecodeMinRunBytes long, else two. Every
  // product starts its runs afresh and a run is read at full speed only once
  // the prefetchers have caught on, so short runs favoured fewer of them
  // while the kernel did not prefetch: bench-0.3b Q4_0 (a thread's share of
  // a product 0.3-1.6 MiB) decoded 3-11 % faster with two runs than with
  // four, bench-1b Q8_0 (2-12 MiB) 2-7 % slower, and the bar was 512 KiB per
  // run. Four runs that prefetch (Gemv) turned that around: with the bar at
  // 64 KiB instead, bench-0.3b Q4_0 1.02-1.03x, bench-0.3b Q8_0 1.03-1.06x,
  // bench-1b Q4_0 (whose k and v shares are short) 1.11x, bench-1b Q8_0
  // 1.00-1.03x (alternating in one process).
  static void DecodeBands(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y, int64_t ldy) {
    if (DecodeBandRuns(r1 - r0, w.row_bytes) == 4) return DecodeRuns<4>(w, x, r0, r1, y, ldy);
    DecodeRuns<2>(w, x, r0, r1, y, ldy);
  }
  template <int kStreams>
  static void DecodeRuns(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y, int64_t ldy) {
    const int64_t nb = x.cols / kQ8Block, T = x.n_tokens;
    const uint8_t* base = static_cast<const uint8_t*>(w.data);
    const int64_t per = (r1 - r0) / kBandRows / kStreams;  // bands per stream
    const int64_t ahead = kStreams == 4 ? DecodePrefetchBytes() : 0;
    if constexpr (kStreams == 4) {
      // The window Gemv keeps prefetched, for every run at once before the
      // first loads: alternating in one process, bench-1b Q4_0 1.03-1.05x,
      // bench-1b Q8_0 1.03x, bench-0.3b 0.99-1.00x.
      PrimeRuns(base, w.row_bytes, r0, per * kBandRows, kStreams, ahead);
    }
    for (int64_t i = 0; i < per; ++i) {
      for (int64_t t = 0; t < T; ++t) {
        const uint8_t* bands[kStreams];
        float* ys[kStreams];
        for (int s = 0; s < kStreams; ++s) {
          const int64_t r = r0 + (s * per + i) * kBandRows;
          bands[s] = base + r * w.row_bytes;
          ys[s] = y + t * ldy + r;
        }
#if YUAN_X86_VNNI
        Gemv512<kStreams, kStreams == 4>(bands, nb, x, t, ys, ahead);
#else
        Gemv<kStreams, kStreams == 4>(bands, nb, x, t, ys, ahead);
#endif
      }
    }
    for (int64_t r = r0 + kStreams * per * kBandRows; r < r1; r += kBandRows) {
      for (int64_t t = 0; t < T; ++t) {
        const uint8_t* band = base + r * w.row_bytes;
        float* yr = y + t * ldy + r;
        Gemv<1>(&band, nb, x, t, &yr);
      }
    }
  }

  static void Rows(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y, int64_t ldy) {
    const int64_t nb = x.cols / kQ8Block, T = x.n_tokens;
    const uint8_t* base = static_cast<const uint8_t*>(w.data);
    // interleaved matrices have rows % 8 == 0 and bands start at multiples of 8
    const int64_t full = r0 + (r1 - r0) / kBandRows * kBandRows;
    if (w.interleaved8 && T <= kBandDecodeMaxTokens) {
      DecodeBands(w, x, r0, full, y, ldy);
      return;
    }
    if (full > r0) {
      // 64-byte aligned: Tokens reads it as __m256i, Tokens16 as __m512i
      // (kUnpackedBytes is a multiple of 32)
      int8_t* unpacked = static_cast<int8_t*>(std::aligned_alloc(64, nb * 2 * kUnpackedBytes));
      float* scales = new float[nb * 2 * kBandRows];
      int64_t r = r0;
#if YUAN_X86_VNNI
      // AMX for batches of 16 tokens and more; the last group's tokens are
      // copied beside zero rows to make a whole tile
      const bool amx = T >= 16 && AmxEnabled();
      alignas(64) int32_t cbuf[512];
      // The tokens from t_last on (the last 32, or fewer), zero-padded to 32
      // rows: tile A of a partial group reads its rows here.
      const int64_t t_last = (T - 1) / 32 * 32;
      std::vector<int8_t> last;
      if (amx) {
        AmxTiles::Configure();
        last.assign(32 * x.cols, 0);
        std::memcpy(last.data(), x.qs + t_last * x.cols, (T - t_last) * x.cols);
      }
      auto group_rows = [&](int64_t t) { return t >= t_last ? last.data() + (t - t_last) * x.cols : x.qs + t * x.cols; };
      // Blocks [b0, b0 + n) of the band pair at row rr, unpacked for AMX.
      auto unpack_pair = [&](int64_t rr, int64_t b0, int64_t n, int8_t* out, float* sc) {
        for (int64_t b = 0; b < n; ++b) {
          Unpack<true>(base + rr * w.row_bytes, w.row_bytes, w.interleaved8, b0 + b, out + b * 2 * kUnpackedBytes,
                       sc + b * 2 * kBandRows, 2);
          Unpack<true>(base + (rr + kBandRows) * w.row_bytes, w.row_bytes, w.interleaved8, b0 + b,
                       out + b * 2 * kUnpackedBytes + 32, sc + b * 2 * kBandRows + kBandRows, 2);
        }
      };
      if (amx && r + 4 * kBandRows <= full) {
        // 32 rows at a time (TokensAmx2x2), in chunks of kChunk blocks so
        // that both bands' unpacked chunk stays in L1 (bench-0.3b's down
        // projection, 88 blocks a row, lost 10-20 % without), with every
        // token's sums kept between chunks
        constexpr int64_t kChunk = 32;
        const int64_t pairs = (T + 31) / 32;
        int8_t* u1 = static_cast<int8_t*>(std::aligned_alloc(64, kChunk * 2 * kUnpackedBytes));
        float* s1 = new float[kChunk * 2 * kBandRows];
        float* acc = static_cast<float*>(std::aligned_alloc(64, pairs * 32 * 32 * sizeof(float)));
        alignas(64) int32_t cbuf4[1024];
        for (; r + 4 * kBandRows <= full; r += 4 * kBandRows) {
          std::memset(acc, 0, pairs * 32 * 32 * sizeof(float));
          for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
            const int64_t nbc = std::min(kChunk, nb - b0);
            unpack_pair(r, b0, nbc, unpacked, scales);
            unpack_pair(r + 2 * kBandRows, b0, nbc, u1, s1);
            const int8_t* us[2] = {unpacked, u1};
            const float* ss[2] = {scales, s1};
            for (int64_t p = 0; p < pairs; ++p) {
              const int64_t t = p * 32;
              const int64_t count[2] = {std::clamp<int64_t>(T - t, 0, 16), std::clamp<int64_t>(T - t - 16, 0, 16)};
              const int8_t* xa[2] = {group_rows(t), group_rows(t) + 16 * x.cols};
              const int64_t ts[2] = {t, t + 16};
              TokensAmx2x2(us, ss, b0, nbc, x, xa, ts, count, cbuf4, acc + p * 32 * 32);
            }
          }
          for (int64_t tok = 0; tok < T; ++tok) {
            std::memcpy(y + tok * ldy + r, acc + (tok / 32) * 32 * 32 + (tok % 32) * 32, 32 * sizeof(float));
          }
        }
        std::free(u1);
        delete[] s1;
        std::free(acc);
      }
      // a band pair left over: 16 rows at a time
      for (; amx && r + 2 * kBandRows <= full; r += 2 * kBandRows) {
        unpack_pair(r, 0, nb, unpacked, scales);
        for (int64_t t = 0; t < T; t += 16) {
          TokensAmx(unpacked, scales, nb, x, group_rows(t), t, std::min<int64_t>(16, T - t), y + t * ldy + r, ldy, cbuf);
        }
      }
      if (amx) AmxTiles::Release();
      for (; r + 2 * kBandRows <= full; r += 2 * kBandRows) {
        for (int64_t b = 0; b < nb; ++b) {
          int8_t* o = unpacked + b * 2 * kUnpackedBytes;
          float* sc = scales + b * 2 * kBandRows;
          Unpack(base + r * w.row_bytes, w.row_bytes, w.interleaved8, b, o, sc, 2);
          Unpack(base + (r + kBandRows) * w.row_bytes, w.row_bytes, w.interleaved8, b, o + 32, sc + kBandRows, 2);
        }
        int64_t t = 0;
        for (; t + 8 <= T; t += 8) Tokens16<8>(unpacked, scales, nb, x, t, y + t * ldy + r, ldy);
        for (; t + 4 <= T; t += 4) Tokens16<4>(unpacked, scales, nb, x, t, y + t * ldy + r, ldy);
        for (; t + 2 <= T; t += 2) Tokens16<2>(unpacked, scales, nb, x, t, y + t * ldy + r, ldy);
        for (; t < T; ++t) Tokens16<1>(unpacked, scales, nb, x, t, y + t * ldy + r, ldy);
      }
#endif
      for (; r < full; r += kBandRows) {
        for (int64_t b = 0; b < nb; ++b) {
          Unpack(base + r * w.row_bytes, w.row_bytes, w.interleaved8, b, unpacked + b * kUnpackedBytes,
                 scales + b * kBandRows);
        }
        int64_t t = 0;
        for (; t + 4 <= T; t += 4) Tokens<4>(unpacked, scales, nb, x, t, y + t * ldy + r, ldy);
        for (; t + 2 <= T; t += 2) Tokens<2>(unpacked, scales, nb, x, t, y + t * ldy + r, ldy);
        for (; t < T; ++t) Tokens<1>(unpacked, scales, nb, x, t, y + t * ldy + r, ldy);
      }
      std::free(unpacked);
      delete[] scales;
    }
    // rows left over at the end of a row-major matrix: the register-tiled kernel
    if (full < r1) MatMulRowsT<Q8Micro<kType>>(w, x, full, r1, y, ldy);
  }
};

// ---- Q4_1 / Q5_1: 8 weight rows in the 8 lanes, the row-major bits -------
//
// Interleaved Q4_1 and Q5_1 bands (kernels::Interleave8: the 8 scales, the
// 8 minimums, then Q4_0's and Q5_0's layout) decoded with the row-major
// kernels' arithmetic (Q8Micro::Rows, RowPairs), so that a token gives the
// same bits alone as in a batch (BandMin::Batch with AVX-512; without it
// the bands go through those kernels made row-major again,
// MatMulRowsDeinterleaved) and as from a row-major copy of the matrix.
// Rows keeps 8 float partial sums
// per row, lane g summing quants 4g..4g+3 of every block (one FMA each per
// block), then one Hsum and the minimums' FMA chain; here acc[g] holds
// lane g of all 8 rows (one row per lane), so each lane sees the same
// operations in the same order, and the Hsum becomes the same additions
// across the 8 accumulators.
template <DType kType>
struct BandMin {
  static constexpr bool kQ5 = kType == DType::kQ5_1;
  static constexpr int64_t kBlockBytes = kBandRows * sizeof(BlockOf<kType>);  // a band's block
  static constexpr int64_t kQuantsAt = 2 * 2 * kBandRows;  // after scales, minimums

  // One token against one band, prefetching `ahead` bytes past each block
  // it reads; the 8 rows' results to y.
  static void Gemv(const uint8_t* band, int64_t nb, const Acts& x, float* y, int64_t ahead) {
    __m256 acc[8], accm = _mm256_setzero_ps();
    YUAN_UNROLL
    for (int g = 0; g < 8; ++g) acc[g] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = band + b * kBlockBytes;
      // (a hint: an address past the end of the matrix does not fault)
      YUAN_UNROLL
      for (int64_t o = 0; o < kBlockBytes; o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(blk) + ahead + o, _MM_HINT_T0);
      const __m256 dx = _mm256_set1_ps(x.d[b]);
      const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
      const __m256 m = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16)));
      const __m256 scale = _mm256_mul_ps(d, dx);  // Rows' dw * dx
      __m256i q[8];
      BandGroups<kQ5>(blk + kQuantsAt, q);
      YUAN_UNROLL
      for (int g = 0; g < 8; ++g) {
        int32_t x4;
        __builtin_memcpy(&x4, x.qs + b * kQ8Block + 4 * g, 4);
        const __m256i p32 = DotU8S8(q[g], _mm256_set1_epi32(x4));
        acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), scale, acc[g]);
      }
      // fma(m * dx, sum(x), accm)
      accm = _mm256_fmadd_ps(_mm256_mul_ps(m, dx), _mm256_set1_ps(static_cast<float>(x.bsums[b])),
                             accm);
    }
    // Hsum's order: ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
    const __m256 even = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
    const __m256 odd = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
    _mm256_storeu_ps(y, _mm256_add_ps(_mm256_add_ps(even, odd), accm));
  }

#if YUAN_X86_VNNI
  // A band pair's block b in zmm form: band 0 in the low 256 bits, band 1
  // in the high. PairHalves: the 8 f16 at offset o of both blocks (o = 0:
  // the scales, 16: the minimums) as f32. PairQuants: group g of both
  // blocks' quants as unsigned bytes (0..15; Q5_1: 0..31).
  static __m512 PairHalves(const uint8_t* const* blk, int64_t o) {
    return _mm512_maskz_cvtph_ps(
        0xFFFF, _mm256_inserti128_si256(
                    _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[0] + o))),
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[1] + o)), 1));
  }
  static void PairQuants(const uint8_t* const* blk, __m512i* q) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
    auto pair = [&](int64_t o) {  // 32 bytes at offset o of both blocks
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0] + o));
      const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1] + o));
      return _mm512_maskz_inserti64x4(0xFF, _mm512_maskz_inserti64x4(0xFF, _mm512_setzero_si512(), lo, 0), hi,
                                      1);
    };
    __m512i lo = _mm512_setzero_si512(), hi = lo;
    if constexpr (kQ5) {
      hi = pair(kQuantsAt + 4 * 32);
      lo = _mm512_slli_epi16(hi, 4);
    }
    YUAN_UNROLL
    for (int h = 0; h < 4; ++h) {
      const __m512i v = pair(kQuantsAt + 32 * h);
      q[h] = _mm512_and_si512(v, m4);
      q[h + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      if constexpr (kQ5) {
        // q | (bits & 16), one vpternlogd (0xF8: a | (b & c))
        q[h] = _mm512_ternarylogic_epi32(q[h], lo, bit4, 0xF8);
        q[h + 4] = _mm512_ternarylogic_epi32(q[h + 4], hi, bit4, 0xF8);
        lo = _mm512_srli_epi16(lo, 1);
        hi = _mm512_srli_epi16(hi, 1);
      }
    }
  }
  // One token's block against a band pair: acc[g] += cvt(group g's exact
  // int32 sums) * scale (Gemv's steps for both bands at once).
  static void PairGroups(const __m512i* q, const int8_t* xq, __m512 scale, __m512* acc) {
    YUAN_UNROLL
    for (int g = 0; g < 8; ++g) {
      int32_t x4;
      __builtin_memcpy(&x4, xq + 4 * g, 4);
      const __m512i p32 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[g], _mm512_set1_epi32(x4));
      acc[g] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, p32), scale, acc[g]);
    }
  }
  // Hsum's order across the 8 accumulators (as Gemv), plus the minimums'
  // term: band 0's 8 rows to y0, band 1's to y1 (unless null).
  static void PairStore(const __m512* a, __m512 accm, float* y0, float* y1) {
    const __m512 even = _mm512_add_ps(_mm512_add_ps(a[0], a[4]), _mm512_add_ps(a[2], a[6]));
    const __m512 odd = _mm512_add_ps(_mm512_add_ps(a[1], a[5]), _mm512_add_ps(a[3], a[7]));
    const __m512d r = _mm512_castps_pd(_mm512_add_ps(_mm512_add_ps(even, odd), accm));
    _mm256_storeu_ps(y0, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, r, 0)));
    if (y1 != nullptr) _mm256_storeu_ps(y1, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, r, 1)));
  }

  // S bands read side by side (band s's results to y[s]), in pairs: band 2p
  // in the low 256 bits of a zmm and 2p + 1 in the high (as
  // BandQ8::Gemv512). Every lane's operations are Gemv's, so the bits are,
  // in half the instructions and registers: four bands side by side in
  // ymm spilled their 36 accumulators and decoded from cache at 133-143
  // (Q4_1) and 93-105 (Q5_1) GFLOP/s on one Zen 5 thread; these 197-216
  // and 141-171.
  template <int S>
  static void Gemv512(const uint8_t* const* bands, int64_t nb, const Acts& x, float* const* y,
                      int64_t ahead) {
    static_assert(S % 2 == 0, "bands in pairs");
    constexpr int P = S / 2;
    __m512 acc[P][8], accm[P];
    YUAN_UNROLL
    for (int p = 0; p < P; ++p) {
      accm[p] = _mm512_setzero_ps();
      YUAN_UNROLL
      for (int g = 0; g < 8; ++g) acc[p][g] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nb; ++b) {
      const __m512 dx = _mm512_set1_ps(x.d[b]);
      const __m512 sx = _mm512_set1_ps(static_cast<float>(x.bsums[b]));
      YUAN_UNROLL
      for (int p = 0; p < P; ++p) {
        const uint8_t* blk[2] = {bands[2 * p] + b * kBlockBytes,
                                 bands[2 * p + 1] + b * kBlockBytes};
        YUAN_UNROLL
        for (int h = 0; h < 2; ++h) {
          YUAN_UNROLL
          for (int64_t o = 0; o < kBlockBytes; o += 64)
            _mm_prefetch(reinterpret_cast<const char*>(blk[h]) + ahead + o, _MM_HINT_T0);
        }
        const __m512 scale = _mm512_mul_ps(PairHalves(blk, 0), dx);
        const __m512 mdx = _mm512_mul_ps(PairHalves(blk, 16), dx);
        __m512i q[8];
        PairQuants(blk, q);
        PairGroups(q, x.qs + b * kQ8Block, scale, acc[p]);
        accm[p] = _mm512_fmadd_ps(mdx, sx, accm[p]);
      }
    }
    YUAN_UNROLL
    for (int p = 0; p < P; ++p) PairStore(acc[p], accm[p], y[2 * p], y[2 * p + 1]);
  }

  // Prompt batches. A band pair's blocks are unpacked once per call
  // (kPairBytes each: the 8 groups as PairQuants gives them, then the
  // scales and the minimums as f32) and met by C tokens at a time, each
  // with its own 8 accumulators: every lane's operations are still Gemv's,
  // so a token gets the same bits alone as in a batch, and as with the
  // row-major kernels. Where the register tiles on bands made row-major
  // again computed about 118 (Q4_1) and 106 (Q5_1) GFLOP/s on one Zen 5
  // thread (yuan_bench_matmul -n 256), this takes the nibbles' unpacking and
  // the scales out of the tokens' loop.
  static constexpr int64_t kPairBytes = 8 * 64 + 2 * 64;
  static void UnpackPair(const uint8_t* band0, const uint8_t* band1, int64_t nb, uint8_t* out) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk[2] = {band0 + b * kBlockBytes, band1 + b * kBlockBytes};
      uint8_t* o = out + b * kPairBytes;
      __m512i q[8];
      PairQuants(blk, q);
      YUAN_UNROLL
      for (int g = 0; g < 8; ++g) _mm512_store_si512(o + 64 * g, q[g]);
      _mm512_store_ps(o + 512, PairHalves(blk, 0));
      _mm512_store_ps(o + 576, PairHalves(blk, 16));
    }
  }
  // C tokens from t against a band pair, its block b from `src` at
  // b * kPairBytes (unpacked) or, kDirect, from the interleaved bands
  // themselves (src, src + band1: PairQuants and PairHalves per block,
  // prefetching `ahead` bytes past it, as decoding does).
  template <int C, bool kDirect = false>
  static void Tokens(const uint8_t* src, int64_t band1, int64_t nb, const Acts& x, int64_t t, float* y0,
                     float* y1, int64_t ldy, int64_t ahead = 0) {
    __m512 acc[C][8], accm[C];
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) {
      accm[c] = _mm512_setzero_ps();
      YUAN_UNROLL
      for (int g = 0; g < 8; ++g) acc[c][g] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nb; ++b) {
      __m512i q[8];
      __m512 d, m;
      if constexpr (kDirect) {
        const uint8_t* blk[2] = {src + b * kBlockBytes, src + band1 + b * kBlockBytes};
        YUAN_UNROLL
        for (int h = 0; h < 2; ++h) {
          YUAN_UNROLL
          for (int64_t o = 0; o < kBlockBytes; o += 64)
            _mm_prefetch(reinterpret_cast<const char*>(blk[h]) + ahead + o, _MM_HINT_T0);
        }
        PairQuants(blk, q);
        d = PairHalves(blk, 0);
        m = PairHalves(blk, 16);
      } else {
        const uint8_t* u = src + b * kPairBytes;
        YUAN_UNROLL
        for (int g = 0; g < 8; ++g) q[g] = _mm512_load_si512(u + 64 * g);
        d = _mm512_load_ps(u + 512);
        m = _mm512_load_ps(u + 576);
      }
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const int64_t tb = (t + c) * nb + b;
        const __m512 dx = _mm512_set1_ps(x.d[tb]);
        PairGroups(q, x.qs + (t + c) * x.cols + b * kQ8Block, _mm512_mul_ps(d, dx), acc[c]);
        accm[c] = _mm512_fmadd_ps(_mm512_mul_ps(m, dx), _mm512_set1_ps(static_cast<float>(x.bsums[tb])), accm[c]);
      }
    }
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) PairStore(acc[c], accm[c], y0 + c * ldy, y1 != nullptr ? y1 + c * ldy : nullptr);
  }
  // Whole bands [r0, r1) against all of x's tokens, two bands at a time (a
  // last odd band paired with itself, its copy's results dropped). Up to
  // kDirectMaxTokens tokens (batched decoding of a few sequences) read the
  // bands in place with decoding's prefetches, the pair's later tokens from
  // the cache, so the weights stream by once: bench-0.3b Q4_1 pp2 447-451
  // -> 495-634 t/s, pp3 601-608 -> 782-850 against unpacking every pair
  // first. From 5 tokens on each pair is unpacked once (at 16 and 32
  // tokens the in-place form was 7-12 % slower; at 8 it was faster on
  // bench-0.3b Q4_1 and slower on bench-0.5b Q5_K_M, whose Q5_1 fifth
  // bits make the repeated unpacking dearer).
  static constexpr int64_t kDirectMaxTokens = 4;
  static void Batch(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y, int64_t ldy) {
    const int64_t nb = x.cols / kQ8Block, T = x.n_tokens;
    const uint8_t* base = static_cast<const uint8_t*>(w.data);
    const bool direct = T <= kDirectMaxTokens;
    const int64_t ahead = DecodePrefetchBytes();
    uint8_t* u = direct ? nullptr : static_cast<uint8_t*>(std::aligned_alloc(64, nb * kPairBytes));
    for (int64_t r = r0; r < r1; r += 2 * kBandRows) {
      const bool two = r + 2 * kBandRows <= r1;
      const uint8_t* band0 = base + r * w.row_bytes;
      const int64_t band1 = two ? kBandRows * static_cast<int64_t>(w.row_bytes) : 0;
      float* y1 = two ? y + r + kBandRows : nullptr;
      auto out1 = [&](int64_t t) { return two ? y1 + t * ldy : nullptr; };
      int64_t t = 0;
      if (direct) {
        for (; t + 2 <= T; t += 2) Tokens<2, true>(band0, band1, nb, x, t, y + t * ldy + r, out1(t), ldy, ahead);
        for (; t < T; ++t) Tokens<1, true>(band0, band1, nb, x, t, y + t * ldy + r, out1(t), ldy, ahead);
        continue;
      }
      UnpackPair(band0, band0 + band1, nb, u);
      for (; t + 2 <= T; t += 2) Tokens<2>(u, 0, nb, x, t, y + t * ldy + r, out1(t), ldy);
      for (; t < T; ++t) Tokens<1>(u, 0, nb, x, t, y + t * ldy + r, out1(t), ldy);
    }
    std::free(u);
  }
#endif

  // Whole bands [r0, r1): the runs BandQ8::DecodeBands reads
  // (DecodeBandRuns: what the pool's workers read ahead), side by side, then
  // the bands left over one at a time.
  static void Decode(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y) {
    if (DecodeBandRuns(r1 - r0, w.row_bytes) == 4) return DecodeRuns<4>(w, x, r0, r1, y);
    DecodeRuns<2>(w, x, r0, r1, y);
  }
  template <int kRuns>
  static void DecodeRuns(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y) {
    const int64_t nb = x.cols / kQ8Block;
    const uint8_t* base = static_cast<const uint8_t*>(w.data);
    const int64_t per = (r1 - r0) / kBandRows / kRuns;  // bands per run
    const int64_t ahead = DecodePrefetchBytes();
    if (per > 0) PrimeRuns(base, w.row_bytes, r0, per * kBandRows, kRuns, ahead);
    for (int64_t i = 0; i < per; ++i) {
      const uint8_t* bands[kRuns];
      float* ys[kRuns];
      for (int s = 0; s < kRuns; ++s) {
        const int64_t r = r0 + (s * per + i) * kBandRows;
        bands[s] = base + r * w.row_bytes;
        ys[s] = y + r;
      }
#if YUAN_X86_VNNI
      Gemv512<kRuns>(bands, nb, x, ys, ahead);
#else
      // (16 registers: one band's 9 accumulators at a time, the runs in turn)
      for (int s = 0; s < kRuns; ++s) Gemv(bands[s], nb, x, ys[s], ahead);
#endif
    }
    for (int64_t r = r0 + kRuns * per * kBandRows; r < r1; r += kBandRows) {
      Gemv(base + r * w.row_bytes, nb, x, y + r, ahead);
    }
  }
};

// ---- k-quants, Q8_K activations ---------------------------------------------

// The int16 scales of 32 values in value order, group g of a 128-value
// half whose 8 sub-block scales `sch` holds as int16 in both 128-bit
// lanes: sub-block 2g's in the low lane, 2g + 1's in the high one (what
// vpmaddwd meets with the 16 pair sums of vpmaddubsw).
inline __m256i GroupScales(__m256i sch, int g) {
  return _mm256_shuffle_epi8(
      sch, _mm256_setr_epi8(4 * g, 4 * g + 1, 4 * g, 4 * g + 1, 4 * g, 4 * g + 1, 4 * g, 4 * g + 1, 4 * g, 4 * g + 1,
                            4 * g, 4 * g + 1, 4 * g, 4 * g + 1, 4 * g, 4 * g + 1, 4 * g + 2, 4 * g + 3, 4 * g + 2,
                            4 * g + 3, 4 * g + 2, 4 * g + 3, 4 * g + 2, 4 * g + 3, 4 * g + 2, 4 * g + 3, 4 * g + 2,
                            4 * g + 3, 4 * g + 2, 4 * g + 3, 4 * g + 2, 4 * g + 3));
}

// One Q6_K row against C tokens (decoding: C = 1): the row's quants are
// unpacked once per block and met by every token. Each token's sum is computed exactly as
// with C = 1 (the same integer sums, one FMA per block, one Hsum), so a
// token's result does not depend on the batch.
struct Q6KDot {
  template <int C>
  static void Tokens(const uint8_t* row, const Acts& x, int64_t t, float* out, int64_t ld) {
    const int64_t nb = x.cols / kQ8KBlock;
    const BlockQ6_K* w = reinterpret_cast<const BlockQ6_K*>(row);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    float acc[C];
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) acc[c] = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* ql = w[b].ql;
      const uint8_t* qh = w[b].qh;
      // The 16 group scales as int16: [sc0..sc7 | sc8..sc15].
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].scales)));
      // sum over groups of scale * (q - 32) . y = scale * q . y - 32 * scale * sum(y)
      __m256i sumi[C];
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const int16_t* bs = x.bsums + ((t + c) * nb + b) * (kQ8KBlock / 16);
        const int32_t offset =
            HsumI32(_mm256_madd_epi16(sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bs))));
        sumi[c] = _mm256_setr_epi32(-32 * offset, 0, 0, 0, 0, 0, 0, 0);
      }
      for (int half = 0; half < 2; ++half) {
        // this half's 8 scales in both 128-bit lanes; group g takes scale
        // 2g in its low lane and 2g + 1 in its high lane
        const __m256i sch = half == 0 ? _mm256_permute2x128_si256(sc16, sc16, 0x00)
                                      : _mm256_permute2x128_si256(sc16, sc16, 0x11);
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
        YUAN_UNROLL
        for (int g = 0; g < 4; ++g) {
          const __m256i sg = GroupScales(sch, g);
          YUAN_UNROLL
          for (int c = 0; c < C; ++c) {
            const int8_t* y = x.qs + (t + c) * x.cols + b * kQ8KBlock + 128 * half + 32 * g;
            // q . y per 16-group (the -32 offset is in sumi from bsums)
            const __m256i p = _mm256_maddubs_epi16(q[g], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y)));
            sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(p, sg));
          }
        }
        ql += 64;
        qh += 32;
      }
      // the block's exact integer sum, then one FMA per block: what each
      // lane of BandK<kQ6_K> computes, so batches give single tokens' bits
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const float d = HalfToFloat(w[b].d) * x.d[(t + c) * nb + b];
        acc[c] = std::fma(static_cast<float>(HsumI32(sumi[c])), d, acc[c]);
      }
    }
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) out[c * ld] = acc[c];
  }

#if YUAN_X86_VNNI
  // S rows (read block by block) against one token (decoding) in 512-bit
  // registers, each row as Tokens<1> would but in other instructions: the block's
  // 256 quants as 4 zmm in value order, (q - 32) . y by vpdpbusd (int32 lane i of
  // zmm k covers values 64k + 4i .. + 3, in sub-block 4k + i / 4) started from
  // -32 times the 4 activations' sum (computed once per block for all S
  // rows, where the -32 * scale * 16-value sums took four instructions per
  // row), packed to int16 and multiplied by the sub-block scales and summed
  // into int32 lanes by one vpdpwssd, and the block's exact integer sum into
  // one FMA: the bits of Tokens<1>, whatever the order of the integer sums.
  // Each quant's top two bits are shifted into place and merged with its
  // nibble by one vpternlogd. With S a multiple of 4, the four rows' lane
  // sums are reduced together and their FMAs done as one 4-lane FMA (the
  // same operation per lane). About 40 instructions per row and block where
  // the previous form (the offset from the 16-value sums per row, the
  // scales spread by vpermd, one horizontal sum per row) took about 58: from
  // cache, one thread, 97 -> 131-140 GFLOP/s (yuan_bench_matmul -t 1 -n 1
  // --types q6_k, Zen 5). (Masked intrinsic forms with every lane on: GCC
  // 12 warns about the plain ones' undefined pass-through operands.)
  template <int S, bool kPrefetch = false>
  static void Decode512(const uint8_t* const* rows, const Acts& x, int64_t t, float* const* out,
                        int64_t ahead = 0) {
    const int64_t nb = x.cols / kQ8KBlock;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    // qh's bit pairs: bits 0-1 for the first 32 values of a half, 2-3 for
    // the next 32 (the upper 256 bits), 4-5 and 6-7 for the other two; each
    // shifted to bits 4-5, the 6-bit quant's top, then masked.
    const __m512i up_lo = _mm512_mask_set1_epi16(_mm512_set1_epi16(4), 0xFFFF0000, 2);
    const __m512i down_hi = _mm512_mask_set1_epi16(_mm512_setzero_si512(), 0xFFFF0000, 2);
    const __m512i m30 = _mm512_set1_epi8(0x30);
    const __m512i u32 = _mm512_set1_epi8(32);
    // After vpackssdw of the products of zmm 2h and 2h + 1 (half h), int16
    // lane m (128-bit lane L = m / 8) holds zmm 2h's int32 lane 4L + m % 8
    // for m % 8 < 4 (sub-block 8h + L) and zmm 2h + 1's lane 4L + m % 8 - 4
    // (sub-block 8h + 4 + L) for the rest: the byte of the block's 16
    // scales each int16 lane takes (vpshufb within a 128-bit lane of the
    // scales broadcast to both).
    alignas(32) static constexpr int8_t kScaleOfLane[2][32] = {
        {0, 0, 0, 0, 4, 4, 4, 4, 1, 1, 1, 1, 5, 5, 5, 5, 2, 2, 2, 2, 6, 6, 6, 6, 3, 3, 3, 3, 7, 7, 7, 7},
        {8, 8, 8, 8, 12, 12, 12, 12, 9, 9, 9, 9, 13, 13, 13, 13,
         10, 10, 10, 10, 14, 14, 14, 14, 11, 11, 11, 11, 15, 15, 15, 15}};
    const __m256i scale_of_lane[2] = {_mm256_load_si256(reinterpret_cast<const __m256i*>(kScaleOfLane[0])),
                                      _mm256_load_si256(reinterpret_cast<const __m256i*>(kScaleOfLane[1]))};
    constexpr int kGroups = S % 4 == 0 ? S / 4 : 0;
    float acc[S];
    __m128 acc4[kGroups > 0 ? kGroups : 1];
    YUAN_UNROLL
    for (int r = 0; r < S; ++r) acc[r] = 0.0f;
    YUAN_UNROLL
    for (int g = 0; g < kGroups; ++g) acc4[g] = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const int8_t* y = x.qs + t * x.cols + b * kQ8KBlock;
      const float dx = x.d[t * nb + b];
      __m512i yv[4], off[4];
      YUAN_UNROLL
      for (int k = 0; k < 4; ++k) {
        yv[k] = _mm512_loadu_si512(y + 64 * k);
        const __m512i sum32 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u32, yv[k]);
        off[k] = _mm512_sub_epi32(_mm512_setzero_si512(), sum32);
      }
      __m512i sum[S];
      YUAN_UNROLL
      for (int r = 0; r < S; ++r) {
        const BlockQ6_K& w = reinterpret_cast<const BlockQ6_K*>(rows[r])[b];
        if constexpr (kPrefetch) PrefetchBlockAhead(w, ahead);
        const __m256i sc =
            _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales)));
        sum[r] = _mm512_setzero_si512();
        YUAN_UNROLL
        for (int half = 0; half < 2; ++half) {
          const __m512i l = _mm512_loadu_si512(w.ql + 64 * half);
          const __m512i h =
              _mm512_maskz_broadcast_i64x4(0xFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.qh + 32 * half)));
          // q = (low nibble & 0x0F) | top, one vpternlogd (0xEC: A & C | B)
          const __m512i top0 = _mm512_and_si512(_mm512_sllv_epi16(h, up_lo), m30);
          const __m512i top1 = _mm512_and_si512(_mm512_srlv_epi16(h, down_hi), m30);
          const __m512i q0 = _mm512_ternarylogic_epi32(l, top0, m4, 0xEC);
          const __m512i q1 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), top1, m4, 0xEC);
          // each lane is (q - 32) . y over 4 values, within +-4 * 32 * 128:
          // as int16 (no saturation), then times its scale and summed in
          // pairs into sum's int32 lanes
          const __m512i p0 = _mm512_dpbusd_epi32(off[2 * half], q0, yv[2 * half]);
          const __m512i p1 = _mm512_dpbusd_epi32(off[2 * half + 1], q1, yv[2 * half + 1]);
          const __m512i scales =
              _mm512_maskz_cvtepi8_epi16(0xFFFFFFFF, _mm256_shuffle_epi8(sc, scale_of_lane[half]));
          sum[r] = _mm512_dpwssd_epi32(sum[r], _mm512_maskz_packs_epi32(0xFFFFFFFF, p0, p1), scales);
        }
      }
      if constexpr (kGroups > 0) {
        YUAN_UNROLL
        for (int g = 0; g < kGroups; ++g) {
          const __m512i* s = sum + 4 * g;
          // 128-bit lanes [row 4g + r's lanes L0 + L2, L1 + L3] for r = 0, 1,
          // then 2, 3; then one lane per row; then each lane's 4 int32 summed
          const __m512i s01 = _mm512_add_epi32(_mm512_maskz_shuffle_i32x4(0xFFFF, s[0], s[1], 0x44),
                                               _mm512_maskz_shuffle_i32x4(0xFFFF, s[0], s[1], 0xEE));
          const __m512i s23 = _mm512_add_epi32(_mm512_maskz_shuffle_i32x4(0xFFFF, s[2], s[3], 0x44),
                                               _mm512_maskz_shuffle_i32x4(0xFFFF, s[2], s[3], 0xEE));
          __m512i z = _mm512_add_epi32(_mm512_maskz_shuffle_i32x4(0xFFFF, s01, s23, 0x88),
                                       _mm512_maskz_shuffle_i32x4(0xFFFF, s01, s23, 0xDD));
          z = _mm512_add_epi32(z, _mm512_maskz_shuffle_epi32(0xFFFF, z, _MM_PERM_BADC));
          z = _mm512_add_epi32(z, _mm512_maskz_shuffle_epi32(0xFFFF, z, _MM_PERM_CDAB));
          const __m512i first = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
          const __m128i totals =
              _mm512_maskz_extracti32x4_epi32(0xF, _mm512_maskz_permutexvar_epi32(0xFFFF, first, z), 0);
          const BlockQ6_K* w[4];
          YUAN_UNROLL
          for (int r = 0; r < 4; ++r) w[r] = reinterpret_cast<const BlockQ6_K*>(rows[4 * g + r]) + b;
          const __m128 dw = _mm_cvtph_ps(
              _mm_setr_epi16(static_cast<int16_t>(w[0]->d), static_cast<int16_t>(w[1]->d),
                             static_cast<int16_t>(w[2]->d), static_cast<int16_t>(w[3]->d), 0, 0, 0, 0));
          acc4[g] = _mm_fmadd_ps(_mm_cvtepi32_ps(totals), _mm_mul_ps(dw, _mm_set1_ps(dx)), acc4[g]);
        }
      } else {
        YUAN_UNROLL
        for (int r = 0; r < S; ++r) {
          const __m256i sum8 = _mm256_add_epi32(_mm512_maskz_extracti64x4_epi64(0xF, sum[r], 0),
                                                _mm512_maskz_extracti64x4_epi64(0xF, sum[r], 1));
          const float dw = HalfToFloat(reinterpret_cast<const BlockQ6_K*>(rows[r])[b].d);
          acc[r] = std::fma(static_cast<float>(HsumI32(sum8)), dw * dx, acc[r]);
        }
      }
    }
    YUAN_UNROLL
    for (int g = 0; g < kGroups; ++g) {
      alignas(16) float a[4];
      _mm_store_ps(a, acc4[g]);
      YUAN_UNROLL
      for (int r = 0; r < 4; ++r) acc[4 * g + r] = a[r];
    }
    YUAN_UNROLL
    for (int r = 0; r < S; ++r) *out[r] = acc[r];
  }

  // One token against rows [r0, r1): kStreams runs of rows read side by
  // side, block by block (see BandQ8::Gemv), then the rest one at a time.
  // Each run prefetches DecodePrefetchBytes() ahead, as Gemv's four runs do,
  // starting with that window for every run. On the Intel Xeon VM the
  // head of bench-0.3b Q4_0 then read 41.9-42.2 GB/s instead of 28.7-33.0
  // (yuan bench --steps), as fast as the Q4_0 products; the prefetchers
  // alone did not keep four runs going there.
  static void Decode(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y) {
    DecodeInRuns<kQ6KDecodeRuns>(
        w, r0, r1, y,
        [&](const uint8_t* const* rows, float* const* outs, int64_t ahead) {
          Decode512<kQ6KDecodeRuns, true>(rows, x, 0, outs, ahead);
        },
        [&](const uint8_t* row, float* out) { Decode512<1>(&row, x, 0, &out); });
  }

#endif

  // The register tile for MatMulRowsT: one row, kC tokens.
  static constexpr int kR = 1, kC = 4, kRDecode = 1;
  template <int R, int C>
  static void Tile(const uint8_t* w, uint64_t rb, const Acts& x, int64_t t, float* y, int64_t ldy) {
#if YUAN_X86_VNNI
    if constexpr (C == 1) {
      YUAN_UNROLL
      for (int r = 0; r < R; ++r) {
        const uint8_t* row = w + r * rb;
        float* out = y + r;
        Decode512<1>(&row, x, t, &out);
      }
      return;
    }
#endif
    YUAN_UNROLL
    for (int r = 0; r < R; ++r) Tokens<C>(w + r * rb, x, t, y + r, ldy);
  }
};

// Q2_K and Q3_K: one row against C tokens (as Q6KDot::Tokens). Per
// 128-value half, group g of 32 values is bits 2g..2g+1 of the half's 32
// qs bytes (Q3_K: plus bit 4 * half + g of hmask[l] as the third bit), so
// each group is one shift and mask of the same register; vpmaddubsw against
// the token's 32 bytes gives the pair sums of sub-blocks 2g (low lane) and
// 2g + 1 (high lane), vpmaddwd multiplies them by the sub-block scales, and
// the block's exact integer sum goes into one FMA per term:
//   Q2_K: d . dx . sum(sc q.y) and dmin . dx . sum(m sum16(y)), subtracted
//         at the end (as Q4_K's min term);
//   Q3_K: d . dx . sum((sc - 32) (q.y - 4 sum16(y))), the offset from the
//         16-value sums of y (as Q6_K's -32).
// The scalar Q23KDot computes the same integers and FMAs: the same bits.
template <DType kType>
struct Q23KDot {
  static constexpr bool kQ2 = kType == DType::kQ2_K;
  using Block = BlockOf<kType>;

  // The 16 sub-block scales as int16 [s0..s7 | s8..s15]: Q2_K's low
  // nibbles, Q3_K's 6-bit values minus 32.
  static __m256i Scales(const Block& w) {
    if constexpr (kQ2) {
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales));
      return _mm256_cvtepu8_epi16(_mm_and_si128(raw, _mm_set1_epi8(0x0F)));
    } else {
      // scale j's low 4 bits are the low (j < 8) or high nibble of
      // scales[j % 8]; its top 2 bits are bits 2 * (j / 4) of
      // scales[8 + j % 4] (dtype.h): dword k of t (scales[8..11] shifted
      // right by 2k) holds those of scales 4k .. 4k + 3
      int32_t top;
      std::memcpy(&top, w.scales + 8, 4);
      const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(w.scales)), m4 = _mm_set1_epi8(0x0F);
      const __m128i low = _mm_unpacklo_epi64(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
      const __m128i t = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(top), _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
      return _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_or_si128(low, _mm_slli_epi16(t, 4))), _mm256_set1_epi16(32));
    }
  }

  // ahead > 0: prefetch the lines `ahead` bytes past each block (decoding).
  template <int C>
  static void Tokens(const uint8_t* row, const Acts& x, int64_t t, float* out, int64_t ld, int64_t ahead = 0) {
    const int64_t nb = x.cols / kQ8KBlock;
    const Block* w = reinterpret_cast<const Block*>(row);
    const __m256i m2 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    float acc[C], acc_min[C];
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) acc[c] = acc_min[c] = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      if (ahead > 0) PrefetchBlockAhead(w[b], ahead);
      const __m256i sc16 = Scales(w[b]);
      __m256i sumi[C];
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const __m256i bs = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(x.bsums + ((t + c) * nb + b) * (kQ8KBlock / 16)));
        if constexpr (kQ2) {
          const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].scales));
          const __m256i m16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F)));
          const float dmin = HalfToFloat(w[b].dmin) * x.d[(t + c) * nb + b];
          acc_min[c] = std::fma(static_cast<float>(HsumI32(_mm256_madd_epi16(m16, bs))), dmin, acc_min[c]);
          sumi[c] = _mm256_setzero_si256();
        } else {
          const int32_t offset = HsumI32(_mm256_madd_epi16(sc16, bs));
          sumi[c] = _mm256_setr_epi32(-4 * offset, 0, 0, 0, 0, 0, 0, 0);
        }
      }
      [[maybe_unused]] __m256i hm;
      if constexpr (!kQ2) hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].hmask));
      for (int half = 0; half < 2; ++half) {
        const __m256i sch = half == 0 ? _mm256_permute2x128_si256(sc16, sc16, 0x00)
                                      : _mm256_permute2x128_si256(sc16, sc16, 0x11);
        __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs + 32 * half));
        YUAN_UNROLL
        for (int g = 0; g < 4; ++g) {
          __m256i q = _mm256_and_si256(qs, m2);
          qs = _mm256_srli_epi16(qs, 2);
          if constexpr (!kQ2) {
            q = _mm256_or_si256(q, _mm256_slli_epi16(_mm256_and_si256(hm, one), 2));
            hm = _mm256_srli_epi16(hm, 1);
          }
          const __m256i sg = GroupScales(sch, g);
          YUAN_UNROLL
          for (int c = 0; c < C; ++c) {
            const int8_t* y = x.qs + (t + c) * x.cols + b * kQ8KBlock + 128 * half + 32 * g;
            const __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y)));
            sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(p, sg));
          }
        }
      }
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const float d = HalfToFloat(w[b].d) * x.d[(t + c) * nb + b];
        acc[c] = std::fma(static_cast<float>(HsumI32(sumi[c])), d, acc[c]);
      }
    }
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) out[c * ld] = acc[c] - acc_min[c];
  }

  // The register tile for MatMulRowsT: one row, kC tokens.
  static constexpr int kR = 1, kC = 4, kRDecode = 1;
  template <int R, int C>
  static void Tile(const uint8_t* w, uint64_t rb, const Acts& x, int64_t t, float* y, int64_t ldy) {
    YUAN_UNROLL
    for (int r = 0; r < R; ++r) Tokens<C>(w + r * rb, x, t, y + r, ldy);
  }

#if YUAN_X86_VNNI
  // Four rows (read block by block) against one token in 512-bit registers:
  // a block's 64 qs bytes as one zmm, so group g of both halves is one
  // shift and mask (Q3_K: the third bits or-ed in by one vpternlogd from
  // hmask and its copy shifted down 4, in the two halves), met by the
  // token's values 32g.. and 128 + 32g.. side by side (arranged once per
  // block for the four rows); vpmaddubsw's pair sums are multiplied by the
  // sub-block scales (spread by one vpermw) and summed by vpdpwssd, which
  // also adds Q3_K's -4 sum16(y) sc term. The four rows' block sums are
  // reduced together (Totals4) and finished by one 4-lane FMA per term:
  // the integers and FMAs of Tokens<1>, so the same bits.
  static void Decode4(const uint8_t* const* rows, const Acts& x, float* const* out, int64_t ahead) {
    const int64_t nb = x.cols / kQ8KBlock;
    const __m512i m3 = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
    // vpermw indices: group g's four 128-bit chunks take the scales of
    // sub-blocks 2g, 2g + 1 (half 0) and 8 + 2g, 9 + 2g (half 1)
    alignas(64) int16_t kIdx[4][32];
    for (int g = 0; g < 4; ++g) {
      for (int i = 0; i < 32; ++i) kIdx[g][i] = static_cast<int16_t>((i >= 16 ? 8 : 0) + 2 * g + (i / 8) % 2);
    }
    __m512i idx[4];
    YUAN_UNROLL
    for (int g = 0; g < 4; ++g) idx[g] = _mm512_load_si512(kIdx[g]);
    __m128 sum = _mm_setzero_ps(), sum_min = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const int8_t* y = x.qs + b * kQ8KBlock;
      __m512i yv[4];
      YUAN_UNROLL
      for (int g = 0; g < 4; ++g) {
        yv[g] = _mm512_maskz_inserti64x4(0xFF, _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 32 * g))),
                                   _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 128 + 32 * g)), 1);
      }
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums + b * (kQ8KBlock / 16)));
      // Q3_K: -4 sum16(y), met by the scales in the same vpdpwssd
      const __m512i bs4 = ZeroExtend(_mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(bs, 2)));
      __m256i sumi[4], summ[4];
      float d[4], dmin[4];
      YUAN_UNROLL
      for (int k = 0; k < 4; ++k) {
        const Block& blk = reinterpret_cast<const Block*>(rows[k])[b];
        if (ahead > 0) PrefetchBlockAhead(blk, ahead);
        const __m256i sc16 = Scales(blk);
        const __m512i scz = ZeroExtend(sc16);
        __m512i acc = kQ2 ? _mm512_setzero_si512() : _mm512_dpwssd_epi32(_mm512_setzero_si512(), scz, bs4);
        __m512i qs = _mm512_loadu_si512(blk.qs);
        [[maybe_unused]] __m512i h2;
        if constexpr (!kQ2) {
          const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.hmask));
          // bit g + 2 of each byte: value 32g + l's third bit (half 0), 128 + 32g + l's (half 1)
          h2 = _mm512_slli_epi16(_mm512_maskz_inserti64x4(0xFF, _mm512_castsi256_si512(hm), _mm256_srli_epi16(hm, 4), 1), 2);
        }
        YUAN_UNROLL
        for (int g = 0; g < 4; ++g) {
          __m512i q = _mm512_and_si512(qs, m3);
          qs = _mm512_srli_epi16(qs, 2);
          if constexpr (!kQ2) {
            q = _mm512_ternarylogic_epi32(q, h2, four, 0xF8);  // q | (h2 & 4)
            h2 = _mm512_srli_epi16(h2, 1);
          }
          const __m512i p = _mm512_maddubs_epi16(q, yv[g]);
          acc = _mm512_dpwssd_epi32(acc, p, _mm512_permutexvar_epi16(idx[g], scz));
        }
        sumi[k] = _mm256_add_epi32(_mm512_maskz_extracti64x4_epi64(0xFF, acc, 0), _mm512_maskz_extracti64x4_epi64(0xFF, acc, 1));
        d[k] = HalfToFloat(blk.d);
        if constexpr (kQ2) {
          const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales));
          const __m256i m16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F)));
          summ[k] = _mm256_madd_epi16(m16, bs);
          dmin[k] = HalfToFloat(blk.dmin);
        }
      }
      const __m128 dx = _mm_set1_ps(x.d[b]);
      sum = _mm_fmadd_ps(_mm_cvtepi32_ps(Totals4(sumi)), _mm_mul_ps(_mm_loadu_ps(d), dx), sum);
      if constexpr (kQ2) {
        sum_min = _mm_fmadd_ps(_mm_cvtepi32_ps(Totals4(summ)), _mm_mul_ps(_mm_loadu_ps(dmin), dx), sum_min);
      }
    }
    alignas(16) float r[4];
    _mm_store_ps(r, kQ2 ? _mm_sub_ps(sum, sum_min) : sum);
    YUAN_UNROLL
    for (int k = 0; k < 4; ++k) *out[k] = r[k];
  }
#endif

  // One token against rows [r0, r1): kQ23KDecodeRuns runs read side by
  // side, each prefetching DecodePrefetchBytes() ahead (with AVX-512 block
  // by block, Decode4; else a row of each in turn).
  static void Decode(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y) {
    static_assert(kQ23KDecodeRuns == 4, "Decode4 reads four runs");
    DecodeInRuns<kQ23KDecodeRuns>(
        w, r0, r1, y,
        [&](const uint8_t* const* rows, float* const* outs, int64_t ahead) {
#if YUAN_X86_VNNI
          return Decode4(rows, x, outs, ahead);
#endif
          YUAN_UNROLL
          for (int s = 0; s < kQ23KDecodeRuns; ++s) Tokens<1>(rows[s], x, 0, outs[s], 0, ahead);
        },
        [&](const uint8_t* row, float* out) { Tokens<1>(row, x, 0, out, 0); });
  }
};

// Q6_K, Q3_K and Q2_K against a prompt batch, 16 rows in the lanes of a zmm
// (as BandQ8's Tokens16; without AVX-512 8 rows in a ymm, vpdpbusd's sums
// done by vpmaddubsw, whose int16 pairs of two groups stay below
// 2 * 2 * 63 * 127 < 32768, and vpmaddwd): each block of rows is first unpacked to 6-bit
// quants q (0..63) in groups of 4 per row, with the sub-block scales as
// int32. Per token and sub-block j (16 values): a = q . x by vpdpbusd, then
// isum += sc_j * (a - 32 * sum_j(x)), the block's exact integer sum for all
// 16 rows at once; one FMA per block applies d_w * d_x. Q3_K goes in as
// q + 28 with sc - 32 (so (q6 - 32) = (q - 4), its own offset), Q2_K as
// q + 32 with its 4-bit sc, plus its min term: per token and block
// msum = sum_j m_j sum_j(x) (two sub-blocks per vpdpwssd), into a second
// FMA with dmin * d_x, subtracted at the end. Q6KDot and Q23KDot compute
// the same integers and the same FMAs per row, so the bits match single
// tokens.
//
// Q4_K and Q5_K go through it too, as q + 32 (at most 63) with each 32-value
// sub-block's 6-bit scale and min given to both its 16-value halves: the
// same integer sums and FMAs as Q45KDot's.
template <class B>
struct Q45KDot;

template <DType kType>
struct BandK {
  static constexpr bool kQ45 = kType == DType::kQ4_K || kType == DType::kQ5_K;
  static_assert(kType == DType::kQ6_K || kType == DType::kQ3_K || kType == DType::kQ2_K || kQ45,
                "k-quants");
  static constexpr bool kMin = kType == DType::kQ2_K || kQ45;
  using Block = BlockOf<kType>;
  static constexpr int kRows = YUAN_X86_VNNI ? 16 : 8;
  static constexpr int64_t kVec = 4 * kRows;         // bytes of one vector register
  static constexpr int64_t kGroups = kQ8KBlock / 4;  // 64 groups of 4 values
  // Per block: 64 groups of kRows x 4 quant bytes, 16 x kRows int32 scales,
  // kRows f32 d (in 64 bytes); with a min term then 8 x kRows pairs of
  // int16 mins (sub-blocks 2k, 2k + 1) and kRows f32 dmin (in 64 bytes).
  static constexpr int64_t kQuantBytes = kGroups * kVec, kScaleBytes = 16 * kVec, kMinBytes = 8 * kVec;
  static constexpr int64_t kBlockBytes = kQuantBytes + kScaleBytes + 64 + (kMin ? kMinBytes + 64 : 0);

  // Row r's block b as q6 values in value order, its 16 sub-block scales
  // and d (and Q2_K's mins and dmin) into the unpacked block ob.
  static void UnpackRow(const Block& blk, int r, uint8_t* q, uint8_t* ob) {
    int32_t* sc = reinterpret_cast<int32_t*>(ob + kQuantBytes);
    float* d = reinterpret_cast<float*>(ob + kQuantBytes + kScaleBytes);
    if constexpr (kType == DType::kQ6_K) {
      for (int half = 0; half < 2; ++half) {  // ggml's Q6_K layout
        const uint8_t* ql = blk.ql + 64 * half;
        const uint8_t* qh = blk.qh + 32 * half;
        uint8_t* qo = q + 128 * half;
        for (int l = 0; l < 32; ++l) {
          qo[l] = static_cast<uint8_t>((ql[l] & 0x0F) | ((qh[l] & 3) << 4));
          qo[l + 32] = static_cast<uint8_t>((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4));
          qo[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
          qo[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
        }
      }
      for (int j = 0; j < 16; ++j) sc[j * kRows + r] = blk.scales[j];
    } else if constexpr (kQ45) {
      // qs[32k + l]: value 64k + l (low nibble) and 64k + 32 + l (high);
      // Q5_K's fifth bits in bits 2k, 2k + 1 of qh[l]
      for (int k = 0; k < 4; ++k) {
        for (int l = 0; l < 32; ++l) {
          int lo = blk.qs[32 * k + l] & 0x0F, hi = blk.qs[32 * k + l] >> 4;
          if constexpr (kType == DType::kQ5_K) {
            lo |= ((blk.qh[l] >> (2 * k)) & 1) << 4;
            hi |= ((blk.qh[l] >> (2 * k + 1)) & 1) << 4;
          }
          q[64 * k + l] = static_cast<uint8_t>(lo + 32);
          q[64 * k + 32 + l] = static_cast<uint8_t>(hi + 32);
        }
      }
      uint8_t sc8[8], m8[8];
      UnpackQ4KScales(blk.scales, sc8, m8);
      int16_t* m = reinterpret_cast<int16_t*>(ob + kQuantBytes + kScaleBytes + 64);
      for (int j = 0; j < 16; ++j) {
        sc[j * kRows + r] = sc8[j / 2];
        m[(j / 2) * 2 * kRows + 2 * r + j % 2] = m8[j / 2];
      }
      reinterpret_cast<float*>(ob + kQuantBytes + kScaleBytes + 64 + kMinBytes)[r] = HalfToFloat(blk.dmin);
    } else {
      for (int half = 0; half < 2; ++half) {  // dtype.h's Q2_K/Q3_K layout
        const uint8_t* qs = blk.qs + 32 * half;
        uint8_t* qo = q + 128 * half;
        for (int j = 0; j < 4; ++j) {
          for (int l = 0; l < 32; ++l) {
            int v = (qs[l] >> (2 * j)) & 3;
            if constexpr (kType == DType::kQ3_K) {
              v = (v | ((blk.hmask[l] >> (4 * half + j)) & 1) << 2) + 28;
            } else {
              v += 32;
            }
            qo[32 * j + l] = static_cast<uint8_t>(v);
          }
        }
      }
      for (int j = 0; j < 16; ++j) {
        if constexpr (kType == DType::kQ3_K) {
          sc[j * kRows + r] = Q3KScale(blk.scales, j);
        } else {
          sc[j * kRows + r] = blk.scales[j] & 0xF;
          int16_t* m = reinterpret_cast<int16_t*>(ob + kQuantBytes + kScaleBytes + 64);
          m[(j / 2) * 2 * kRows + 2 * r + j % 2] = static_cast<int16_t>(blk.scales[j] >> 4);
        }
      }
      if constexpr (kMin) {
        reinterpret_cast<float*>(ob + kQuantBytes + kScaleBytes + 64 + kMinBytes)[r] = HalfToFloat(blk.dmin);
      }
    }
    d[r] = HalfToFloat(blk.d);
  }

  static void Unpack(const uint8_t* w, uint64_t rb, int64_t nb, uint8_t* out) {
    alignas(64) uint8_t q[kQ8KBlock];
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* ob = out + b * kBlockBytes;
      for (int r = 0; r < kRows; ++r) {
        UnpackRow(reinterpret_cast<const Block*>(w + r * rb)[b], r, q, ob);
        for (int64_t g = 0; g < kGroups; ++g) std::memcpy(ob + g * kVec + 4 * r, q + 4 * g, 4);
      }
    }
  }

#if YUAN_X86_VNNI
  template <int C>
  static void Tokens(const uint8_t* unpacked, int64_t nb, const Acts& x, int64_t t, float* y, int64_t ldy) {
    __m512 acc[C], accm[C];
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) acc[c] = accm[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* ob = unpacked + b * kBlockBytes;
      const __m512i* qv = reinterpret_cast<const __m512i*>(ob);
      const __m512i* scv = reinterpret_cast<const __m512i*>(ob + kQuantBytes);
      __m512i isum[C];
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) isum[c] = _mm512_setzero_si512();
      for (int j = 0; j < 16; ++j) {
        __m512i q[4];
        YUAN_UNROLL
        for (int g = 0; g < 4; ++g) q[g] = _mm512_load_si512(qv + 4 * j + g);
        const __m512i sc = _mm512_load_si512(scv + j);
        YUAN_UNROLL
        for (int c = 0; c < C; ++c) {
          const int8_t* xb = x.qs + (t + c) * x.cols + b * kQ8KBlock + 16 * j;
          __m512i a = _mm512_set1_epi32(-32 * x.bsums[((t + c) * nb + b) * 16 + j]);
          YUAN_UNROLL
          for (int g = 0; g < 4; ++g) {
            int32_t x4;
            __builtin_memcpy(&x4, xb + 4 * g, 4);
            a = _mm512_dpbusd_epi32(a, q[g], _mm512_set1_epi32(x4));
          }
          isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(a, sc));
        }
      }
      const __m512 dw = _mm512_load_ps(reinterpret_cast<const float*>(ob + kQuantBytes + kScaleBytes));
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(x.d[(t + c) * nb + b]));
        acc[c] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, isum[c]), scale, acc[c]);
      }
      if constexpr (kMin) {
        const __m512i* mv = reinterpret_cast<const __m512i*>(ob + kQuantBytes + kScaleBytes + 64);
        const __m512 dmin = _mm512_load_ps(reinterpret_cast<const float*>(ob + kQuantBytes + kScaleBytes + 64 + kMinBytes));
        YUAN_UNROLL
        for (int c = 0; c < C; ++c) {
          const int16_t* bs = x.bsums + ((t + c) * nb + b) * 16;
          __m512i msum = _mm512_setzero_si512();
          YUAN_UNROLL
          for (int k = 0; k < 8; ++k) {
            int32_t pair;
            __builtin_memcpy(&pair, bs + 2 * k, 4);
            msum = _mm512_dpwssd_epi32(msum, _mm512_load_si512(mv + k), _mm512_set1_epi32(pair));
          }
          const __m512 scale = _mm512_mul_ps(dmin, _mm512_set1_ps(x.d[(t + c) * nb + b]));
          accm[c] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, msum), scale, accm[c]);
        }
      }
    }
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + c * ldy, kMin ? _mm512_sub_ps(acc[c], accm[c]) : acc[c]);
  }

#else
  template <int C>
  static void Tokens(const uint8_t* unpacked, int64_t nb, const Acts& x, int64_t t, float* y, int64_t ldy) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[C], accm[C];
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) acc[c] = accm[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* ob = unpacked + b * kBlockBytes;
      const __m256i* qv = reinterpret_cast<const __m256i*>(ob);
      const __m256i* scv = reinterpret_cast<const __m256i*>(ob + kQuantBytes);
      __m256i isum[C];
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) isum[c] = _mm256_setzero_si256();
      for (int j = 0; j < 16; ++j) {
        __m256i q[4];
        YUAN_UNROLL
        for (int g = 0; g < 4; ++g) q[g] = _mm256_load_si256(qv + 4 * j + g);
        const __m256i sc = _mm256_load_si256(scv + j);
        YUAN_UNROLL
        for (int c = 0; c < C; ++c) {
          const int8_t* xb = x.qs + (t + c) * x.cols + b * kQ8KBlock + 16 * j;
          int32_t x4[4];
          __builtin_memcpy(x4, xb, 16);
          // two groups' pair sums in int16, then to int32
          const __m256i p01 = _mm256_add_epi16(_mm256_maddubs_epi16(q[0], _mm256_set1_epi32(x4[0])),
                                               _mm256_maddubs_epi16(q[1], _mm256_set1_epi32(x4[1])));
          const __m256i p23 = _mm256_add_epi16(_mm256_maddubs_epi16(q[2], _mm256_set1_epi32(x4[2])),
                                               _mm256_maddubs_epi16(q[3], _mm256_set1_epi32(x4[3])));
          const __m256i a = _mm256_add_epi32(
              _mm256_set1_epi32(-32 * x.bsums[((t + c) * nb + b) * 16 + j]),
              _mm256_add_epi32(_mm256_madd_epi16(p01, ones), _mm256_madd_epi16(p23, ones)));
          isum[c] = _mm256_add_epi32(isum[c], _mm256_mullo_epi32(a, sc));
        }
      }
      const __m256 dw = _mm256_load_ps(reinterpret_cast<const float*>(ob + kQuantBytes + kScaleBytes));
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(x.d[(t + c) * nb + b]));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), scale, acc[c]);
      }
      if constexpr (kMin) {
        const __m256i* mv = reinterpret_cast<const __m256i*>(ob + kQuantBytes + kScaleBytes + 64);
        const __m256 dmin = _mm256_load_ps(reinterpret_cast<const float*>(ob + kQuantBytes + kScaleBytes + 64 + kMinBytes));
        YUAN_UNROLL
        for (int c = 0; c < C; ++c) {
          const int16_t* bs = x.bsums + ((t + c) * nb + b) * 16;
          __m256i msum = _mm256_setzero_si256();
          YUAN_UNROLL
          for (int k = 0; k < 8; ++k) {
            int32_t pair;
            __builtin_memcpy(&pair, bs + 2 * k, 4);
            msum = _mm256_add_epi32(msum, _mm256_madd_epi16(_mm256_load_si256(mv + k), _mm256_set1_epi32(pair)));
          }
          const __m256 scale = _mm256_mul_ps(dmin, _mm256_set1_ps(x.d[(t + c) * nb + b]));
          accm[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), scale, accm[c]);
        }
      }
    }
    YUAN_UNROLL
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(y + c * ldy, kMin ? _mm256_sub_ps(acc[c], accm[c]) : acc[c]);
  }
#endif

  static void Rows(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y, int64_t ldy) {
    const int64_t nb = x.cols / kQ8KBlock, T = x.n_tokens;
    const uint8_t* base = static_cast<const uint8_t*>(w.data);
    const int64_t full = r0 + (r1 - r0) / kRows * kRows;
    if (full > r0) {
      uint8_t* unpacked = static_cast<uint8_t*>(std::aligned_alloc(64, nb * kBlockBytes));
      for (int64_t r = r0; r < full; r += kRows) {
        Unpack(base + r * w.row_bytes, w.row_bytes, nb, unpacked);
        int64_t t = 0;
        for (; t + 4 <= T; t += 4) Tokens<4>(unpacked, nb, x, t, y + t * ldy + r, ldy);
        for (; t < T; ++t) Tokens<1>(unpacked, nb, x, t, y + t * ldy + r, ldy);
      }
      std::free(unpacked);
    }
    if (full >= r1) return;
    if constexpr (kType == DType::kQ6_K) {
      MatMulRowsT<Q6KDot>(w, x, full, r1, y, ldy);
    } else if constexpr (kQ45) {
      MatMulRowsT<Q45KDot<Block>>(w, x, full, r1, y, ldy);
    } else {
      MatMulRowsT<Q23KDot<kType>>(w, x, full, r1, y, ldy);
    }
  }
};

// Q4_K and Q5_K (B = BlockQ4_K or BlockQ5_K): Q5_K is Q4_K with a fifth
// bit per quant, which Unpack (AVX-512) or Products (AVX2) puts above each
// nibble; everything else is shared, so both types give the same bits with
// either kernel set.
template <class B>
struct Q45KDot {
  static constexpr bool kQ5 = std::is_same_v<B, BlockQ5_K>;
  // Per row and block the 256 nibbles (Unpack) meet one token's values
  // (Arrange) in Products: each 4 (AVX-512: vpdpbusd) or 2 (AVX2:
  // vpmaddubsw) products summed in a lane, scaled per sub-block and summed
  // again into 8 int32 lanes (AVX-512: packed to int16 first, vpdpwssd;
  // AVX2: vpmaddwd), and the mins' term from the activations' 16-value sums
  // by vpmaddwd. The block's exact integer sums then go into one FMA each
  // (the scale's and the min's): four at a time as 4-lane FMAs (four rows
  // when decoding, four tokens in a batch) or one at a time by std::fma,
  // the same operations per row and token either way, so batches keep
  // single tokens' bits, and both kernel sets give the same bits. (Until
  // the sixteenth session a row and a token went at a time, the scales
  // unpacked by a call per block: 37 GFLOP/s from cache on one Zen 5
  // thread, and a bench-0.3b Q4_K token's products read 16-18 GB/s.)
  //
  // The 8 (scale, min) pairs as ggml's get_scale_min_k4 unpacks them, in
  // one vector (bytes 0-7 the scales, 8-15 the mins), from the block's
  // first 16 bytes (d, dmin, then the 12 scale bytes q[0..11] at bytes
  // 4-15): scale j < 4 is q[j] & 63, min j < 4 q[j + 4] & 63; for j >= 4
  // the scale is q[j + 4] & 15 and the min q[j + 4] >> 4, each with the
  // top two bits of q[j - 4] (scale) or q[j] (min) above. kHeadShuffles
  // holds the byte shuffles and masks, for one 128-bit lane (Decode4 does
  // four rows' at once, a row in each lane).
  enum { kLow6, kTop2Bytes, kLowMask, kHighNibble, kTop2Mask, kHeadShuffles };
  static constexpr int8_t kHeadShuffle[kHeadShuffles][16] = {
      {4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15},        // q[0..3], q[8..11], q[4..7], q[8..11]
      {-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11},        // 0, q[0..3], 0, q[4..7]
      {63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0},
      {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15},
      {0, 0, 0, 0, 48, 48, 48, 48, 0, 0, 0, 0, 48, 48, 48, 48}};
  static __m128i ScalesMins(const B& w) {
    const auto pattern = [](int i) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(kHeadShuffle[i])); };
    const __m128i head = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&w));
    const __m128i low6 = _mm_shuffle_epi8(head, pattern(kLow6));
    const __m128i top2 = _mm_shuffle_epi8(head, pattern(kTop2Bytes));
    return _mm_or_si128(_mm_or_si128(_mm_and_si128(low6, pattern(kLowMask)),
                                     _mm_and_si128(_mm_srli_epi16(low6, 4), pattern(kHighNibble))),
                        _mm_and_si128(_mm_srli_epi16(top2, 2), pattern(kTop2Mask)));
  }

#if YUAN_X86_VNNI
  // AVX-512: the nibbles are two halves of two zmm, the values rearranged
  // to match (bytes 0-31 and 32-63 of zmm k hold the values of the two
  // sub-blocks that the low or high nibbles of the same qs bytes encode).
  struct Block {
    __m512i lo[2], hi[2];  // half h: qs[64h .. 64h + 63]'s low and high nibbles
    __m512i scales[2];     // half h's sub-block scales as vpdpwssd takes them
    __m256i mins;          // min s at int16 lanes 2s and 2s + 1
  };
  static Block Unpack(const B& w) {
    // int16 scale k sits at bytes 2k, 2k + 1 of each 128-bit lane; half h's
    // packed products (sub-blocks 4h .. 4h + 3) take, in lanes 0 and 1,
    // scale 4h four times then 4h + 1 four times, and in lanes 2 and 3
    // scales 4h + 2 and 4h + 3 (see Products)
    alignas(64) static constexpr int8_t kScaleBytes[2][64] = {
        {0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3,
         4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7},
        {8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11,
         12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15,
         12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15}};
    const __m128i sm = ScalesMins(w);
    const __m512i sc16 = _mm512_maskz_broadcast_i32x4(0xFFFF, _mm_cvtepu8_epi16(sm));
    Block k;
    Quants(w, k.lo, k.hi);
    YUAN_UNROLL
    for (int h = 0; h < 2; ++h) k.scales[h] = _mm512_maskz_shuffle_epi8(~0ULL, sc16, _mm512_load_si512(kScaleBytes[h]));
    k.mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
    return k;
  }
  // The block's quants as Block's lo and hi.
  static void Quants(const B& w, __m512i* lo, __m512i* hi) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    // Q5_K: qh[l]'s bits 2j and 2j + 1 go above the low and high nibbles
    // of qs[32j + l]. hb holds qh in bytes 0-31 and qh >> 2 in bytes
    // 32-63, so that bits 0 and 1 of its byte i are the fifth bits of
    // half 0's bytes i of lo and hi, and bits 4 and 5 half 1's (the 16-bit
    // shifts move no bit that is read across a byte).
    __m512i hb = _mm512_setzero_si512();
    if constexpr (kQ5) {
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.qh));
      hb = _mm512_maskz_inserti64x4(0xFF, _mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
    }
    const __m512i bit4 = _mm512_set1_epi8(0x10);
    YUAN_UNROLL
    for (int h = 0; h < 2; ++h) {
      const __m512i q = _mm512_loadu_si512(w.qs + 64 * h);
      lo[h] = _mm512_and_si512(q, m4);
      hi[h] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
      if constexpr (kQ5) {
        // lo |= (hb << 4) & 16, hi |= (hb << 3) & 16 (ternary 0xF8: a | (b & c))
        lo[h] = _mm512_ternarylogic_epi32(lo[h], _mm512_slli_epi16(hb, 4), bit4, 0xF8);
        hi[h] = _mm512_ternarylogic_epi32(hi[h], _mm512_slli_epi16(hb, 3), bit4, 0xF8);
        hb = _mm512_srli_epi16(hb, 4);
      }
    }
  }
  // v[2h + n]: the values the low (n = 0) or high (n = 1) nibbles of
  // qs[64h .. 64h + 63] meet: y[128h + 32n ..] then y[128h + 64 + 32n ..]
  struct ActBlock {
    __m512i v[4];
  };
  static void Arrange(const int8_t* y, ActBlock* a) {
    YUAN_UNROLL
    for (int k = 0; k < 4; ++k) {
      const int8_t* p = y + 128 * (k / 2) + 32 * (k % 2);
      a->v[k] = _mm512_maskz_inserti64x4(0xFF, _mm512_maskz_loadu_epi64(0x0F, p),
                                       _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64)), 1);
    }
  }
  // One row's block against one token's: the 8 int32 lanes whose sum is
  // sum_s scale_s * (q . y over sub-block s) (*sumi) and those whose sum
  // is sum_s min_s * (y's sum over sub-block s) (*summ).
  static void Products(const Block& k, const ActBlock& a, const int16_t* bsums, __m256i* sumi, __m256i* summ) {
    __m512i acc = _mm512_setzero_si512();
    YUAN_UNROLL
    for (int h = 0; h < 2; ++h) {
      // lanes 0-7: sub-block 4h (lo) / 4h + 1 (hi), lanes 8-15: 4h + 2 /
      // 4h + 3; each lane's 4 products within +-4 * 31 * 128, so int16
      // holds them; packed, 128-bit lane L holds plo's lanes 4L .. 4L + 3,
      // then phi's
      const __m512i plo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), k.lo[h], a.v[2 * h]);
      const __m512i phi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), k.hi[h], a.v[2 * h + 1]);
      acc = _mm512_dpwssd_epi32(acc, _mm512_maskz_packs_epi32(0xFFFFFFFF, plo, phi), k.scales[h]);
    }
    *sumi = _mm256_add_epi32(_mm512_maskz_extracti64x4_epi64(0xF, acc, 0), _mm512_maskz_extracti64x4_epi64(0xF, acc, 1));
    *summ = _mm256_madd_epi16(k.mins, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums)));
  }

  // Four rows (read block by block) against one token: Products' integers
  // for each row, with what Unpack and Step4 do per row done once for the
  // four. The rows' block headers (d, dmin and the 12 scale bytes: a
  // block's first 16 bytes) go in the four 128-bit lanes of one zmm, where
  // ScalesMins' shuffles and masks unpack all four at once; each row's
  // scales are then spread by one vpermw each half, and two rows' mins by
  // one vpermw and one vpmaddwd. The four rows' scale and min sums are
  // reduced together, and both terms finished by one 8-lane FMA (lanes 0-3
  // the scales' terms, 4-7 the mins'): the same integers and the same
  // operation per lane as Step4, so the bits of Rows. About 30
  // instructions per row and block where Rows takes about 44.
  static void Decode4(const uint8_t* const* rows, const Acts& x, float* const* out, int64_t ahead) {
    // Tables: ScalesMins' patterns in each 128-bit lane, and vpermw
    // indices (row r's scales and mins are int16 8r .. 8r + 7 of
    // `scales` and `mins` below): row r's scales for half h as
    // kScaleBytes spreads them (scale_idx), rows 2q and 2q + 1's mins at
    // int16 lanes 2s and 2s + 1 of each 256 bits (min_idx), and the rows'
    // d (int16 0-3) and dmin (4-7) from the headers (head_idx).
    struct Tables {
      int8_t head[kHeadShuffles][64];
      int16_t scale_idx[4][2][32], min_idx[2][32], head_idx[32];
    };
    alignas(64) static constexpr Tables kT = [] {
      Tables t{};
      for (int k = 0; k < kHeadShuffles; ++k) {
        for (int i = 0; i < 64; ++i) t.head[k][i] = kHeadShuffle[k][i % 16];
      }
      for (int i = 0; i < 32; ++i) {
        const int lane = i / 8, p = i % 8;
        for (int r = 0; r < 4; ++r) {
          for (int h = 0; h < 2; ++h) t.scale_idx[r][h][i] = static_cast<int16_t>(8 * r + 4 * h + 2 * (lane / 2) + p / 4);
        }
        for (int q = 0; q < 2; ++q) t.min_idx[q][i] = static_cast<int16_t>(8 * (2 * q + i / 16) + (i % 16) / 2);
        t.head_idx[i] = static_cast<int16_t>(i < 8 ? 8 * (i % 4) + i / 4 : 0);
      }
      return t;
    }();
    const int64_t nb = x.cols / kQ8KBlock;
    const auto load = [](const void* p) { return _mm512_load_si512(p); };
    const __m512i head_idx = load(kT.head_idx);
    __m256 acc = _mm256_setzero_ps();  // lanes 0-3: the rows' scale terms, 4-7: their min terms
    for (int64_t b = 0; b < nb; ++b) {
      ActBlock act;
      Arrange(x.qs + b * kQ8KBlock, &act);
      const __m512i bs = _mm512_maskz_broadcast_i64x4(
          0xFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums + b * (kQ8KBlock / 16))));
      const B* w[4];
      __m512i head = _mm512_setzero_si512();
      YUAN_UNROLL
      for (int r = 0; r < 4; ++r) {
        w[r] = reinterpret_cast<const B*>(rows[r]) + b;
        if (ahead > 0) PrefetchBlockAhead(*w[r], ahead);
        head = _mm512_mask_broadcast_i32x4(head, static_cast<__mmask16>(0xF << (4 * r)),
                                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[r])));
      }
      // lane r: row r's 8 scales in bytes 0-7, its 8 mins in 8-15 (ScalesMins)
      const __m512i lo6 = _mm512_maskz_shuffle_epi8(~0ULL, head, load(kT.head[kLow6]));
      const __m512i hi2 = _mm512_maskz_shuffle_epi8(~0ULL, head, load(kT.head[kTop2Bytes]));
      const __m512i sm = _mm512_or_si512(_mm512_or_si512(_mm512_and_si512(lo6, load(kT.head[kLowMask])),
                                                         _mm512_and_si512(_mm512_srli_epi16(lo6, 4), load(kT.head[kHighNibble]))),
                                         _mm512_and_si512(_mm512_srli_epi16(hi2, 2), load(kT.head[kTop2Mask])));
      const __m512i scales = _mm512_maskz_unpacklo_epi8(~0ULL, sm, _mm512_setzero_si512());
      const __m512i mins = _mm512_maskz_unpackhi_epi8(~0ULL, sm, _mm512_setzero_si512());
      __m512i sumi[4], summ[2];
      YUAN_UNROLL
      for (int r = 0; r < 4; ++r) {
        __m512i lo[2], hi[2];
        Quants(*w[r], lo, hi);
        sumi[r] = _mm512_setzero_si512();
        YUAN_UNROLL
        for (int h = 0; h < 2; ++h) {
          const __m512i plo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[h], act.v[2 * h]);
          const __m512i phi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi[h], act.v[2 * h + 1]);
          sumi[r] = _mm512_dpwssd_epi32(sumi[r], _mm512_maskz_packs_epi32(0xFFFFFFFF, plo, phi),
                                        _mm512_permutexvar_epi16(load(kT.scale_idx[r][h]), scales));
        }
      }
      YUAN_UNROLL
      for (int q = 0; q < 2; ++q) summ[q] = _mm512_madd_epi16(_mm512_permutexvar_epi16(load(kT.min_idx[q]), mins), bs);
      // 128-bit lane r of zi: row r's scale sums in 4 int32; of zm: its min sums
      const __m512i s01 = _mm512_add_epi32(_mm512_maskz_shuffle_i32x4(0xFFFF, sumi[0], sumi[1], 0x44),
                                           _mm512_maskz_shuffle_i32x4(0xFFFF, sumi[0], sumi[1], 0xEE));
      const __m512i s23 = _mm512_add_epi32(_mm512_maskz_shuffle_i32x4(0xFFFF, sumi[2], sumi[3], 0x44),
                                           _mm512_maskz_shuffle_i32x4(0xFFFF, sumi[2], sumi[3], 0xEE));
      const __m512i zi = _mm512_add_epi32(_mm512_maskz_shuffle_i32x4(0xFFFF, s01, s23, 0x88),
                                          _mm512_maskz_shuffle_i32x4(0xFFFF, s01, s23, 0xDD));
      const __m512i zm = _mm512_add_epi32(_mm512_maskz_shuffle_i32x4(0xFFFF, summ[0], summ[1], 0x88),
                                          _mm512_maskz_shuffle_i32x4(0xFFFF, summ[0], summ[1], 0xDD));
      // lane r: [scale total, scale total, min total, min total] of row r
      __m512i z = _mm512_add_epi32(_mm512_maskz_unpacklo_epi64(0xFF, zi, zm), _mm512_maskz_unpackhi_epi64(0xFF, zi, zm));
      z = _mm512_add_epi32(z, _mm512_maskz_shuffle_epi32(0xFFFF, z, _MM_PERM_CDAB));
      const __m512i pick = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0);
      const __m256i totals = _mm512_maskz_extracti64x4_epi64(0xF, _mm512_maskz_permutexvar_epi32(0xFF, pick, z), 0);
      // the rows' d then dmin, as Step4 takes them
      const __m256 dd = _mm256_cvtph_ps(
          _mm512_maskz_extracti32x4_epi32(0xF, _mm512_maskz_permutexvar_epi16(0xFF, head_idx, head), 0));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(totals), _mm256_mul_ps(dd, _mm256_set1_ps(x.d[b])), acc);
    }
    alignas(32) float r[8];
    _mm256_store_ps(r, acc);
    YUAN_UNROLL
    for (int k = 0; k < 4; ++k) *out[k] = r[k] - r[4 + k];
  }
#else
  // AVX2: the quants and values are read in place, 32 bytes at a time
  // (qs[32j ..]'s low nibbles meet y[64j ..], its high nibbles y[64j + 32 ..]),
  // and each sub-block's scale is spread over a vector by a byte shuffle.
  struct Block {
    const uint8_t* qs;
    const uint8_t* qh;  // Q5_K's fifth bits (nullptr for Q4_K)
    __m256i scales;  // the 8 scales as int16, in both 128-bit lanes
    __m256i mins;    // min s at int16 lanes 2s and 2s + 1
  };
  static Block Unpack(const B& w) {
    const __m128i sm = ScalesMins(w);
    const uint8_t* qh = nullptr;
    if constexpr (kQ5) qh = w.qh;
    return {w.qs, qh, _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm)),
            _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm))};
  }
  struct ActBlock {
    const int8_t* y;
  };
  static void Arrange(const int8_t* y, ActBlock* a) { a->y = y; }
  static void Products(const Block& k, const ActBlock& a, const int16_t* bsums, __m256i* sumi, __m256i* summ) {
    // scale s at every int16 lane: bytes 2s, 2s + 1 of each 128-bit lane
    alignas(32) static constexpr int8_t kSpread[8][32] = {
        {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1},
        {2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3},
        {4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5},
        {6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7},
        {8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9},
        {10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11,
         10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11},
        {12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13,
         12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13},
        {14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15,
         14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15}};
    const __m256i m4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
    // Q5_K: bits 0 and 1 of hb's byte l are qh[l]'s bits 2j and 2j + 1
    // (the 16-bit shifts move no bit that is read across a byte)
    __m256i hb = _mm256_setzero_si256();
    if constexpr (kQ5) hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k.qh));
    __m256i acc = _mm256_setzero_si256();
    YUAN_UNROLL
    for (int j = 0; j < 4; ++j) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k.qs + 32 * j));
      const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.y + 64 * j));
      const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.y + 64 * j + 32));
      __m256i qlo = _mm256_and_si256(q, m4), qhi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      if constexpr (kQ5) {
        qlo = _mm256_or_si256(qlo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), bit4));
        qhi = _mm256_or_si256(qhi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), bit4));
        hb = _mm256_srli_epi16(hb, 2);
      }
      // pairs of products within +-2 * 31 * 128: no saturation
      const __m256i plo = _mm256_maddubs_epi16(qlo, y0);
      const __m256i phi = _mm256_maddubs_epi16(qhi, y1);
      const __m256i slo = _mm256_shuffle_epi8(k.scales, _mm256_load_si256(reinterpret_cast<const __m256i*>(kSpread[2 * j])));
      const __m256i shi =
          _mm256_shuffle_epi8(k.scales, _mm256_load_si256(reinterpret_cast<const __m256i*>(kSpread[2 * j + 1])));
      acc = _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(plo, slo), _mm256_madd_epi16(phi, shi)));
    }
    *sumi = acc;
    *summ = _mm256_madd_epi16(k.mins, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums)));
  }
#endif

  // sum = fma(sumi, d * dx, sum) and sum_min likewise, as one row's and
  // token's step (S = 1) or four at once (lanes).
  static void Step1(__m256i sumi, __m256i summ, float d, float dmin, float dx, float* sum, float* sum_min) {
    *sum = std::fma(static_cast<float>(HsumI32(sumi)), d * dx, *sum);
    *sum_min = std::fma(static_cast<float>(HsumI32(summ)), dmin * dx, *sum_min);
  }
  static void Step4(const __m256i* sumi, const __m256i* summ, __m128 d, __m128 dmin, __m128 dx, __m128* sum,
                    __m128* sum_min) {
    *sum = _mm_fmadd_ps(_mm_cvtepi32_ps(Totals4(sumi)), _mm_mul_ps(d, dx), *sum);
    *sum_min = _mm_fmadd_ps(_mm_cvtepi32_ps(Totals4(summ)), _mm_mul_ps(dmin, dx), *sum_min);
  }

  // S rows (read block by block, optionally prefetching `ahead` bytes on)
  // against token t.
  template <int S, bool kPrefetch = false>
  static void Rows(const uint8_t* const* rows, const Acts& x, int64_t t, float* const* out, int64_t ahead = 0) {
    const int64_t nb = x.cols / kQ8KBlock;
    constexpr int kGroups = S % 4 == 0 ? S / 4 : 0;
    float sum[S], sum_min[S];
    __m128 sum4[kGroups > 0 ? kGroups : 1], sum_min4[kGroups > 0 ? kGroups : 1];
    YUAN_UNROLL
    for (int r = 0; r < S; ++r) sum[r] = sum_min[r] = 0.0f;
    YUAN_UNROLL
    for (int g = 0; g < kGroups; ++g) sum4[g] = sum_min4[g] = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const int16_t* bs = x.bsums + (t * nb + b) * (kQ8KBlock / 16);
      const float dx = x.d[t * nb + b];
      ActBlock act;
      Arrange(x.qs + t * x.cols + b * kQ8KBlock, &act);
      __m256i sumi[S], summ[S];
      YUAN_UNROLL
      for (int r = 0; r < S; ++r) {
        const B& w = reinterpret_cast<const B*>(rows[r])[b];
        if constexpr (kPrefetch) PrefetchBlockAhead(w, ahead);
        Products(Unpack(w), act, bs, &sumi[r], &summ[r]);
      }
      YUAN_UNROLL
      for (int g = 0; g < kGroups; ++g) {
        const B* w[4];
        YUAN_UNROLL
        for (int j = 0; j < 4; ++j) w[j] = reinterpret_cast<const B*>(rows[4 * g + j]) + b;
        const __m128 d = _mm_cvtph_ps(_mm_setr_epi16(static_cast<int16_t>(w[0]->d), static_cast<int16_t>(w[1]->d),
                                                     static_cast<int16_t>(w[2]->d), static_cast<int16_t>(w[3]->d), 0,
                                                     0, 0, 0));
        const __m128 dmin = _mm_cvtph_ps(_mm_setr_epi16(
            static_cast<int16_t>(w[0]->dmin), static_cast<int16_t>(w[1]->dmin), static_cast<int16_t>(w[2]->dmin),
            static_cast<int16_t>(w[3]->dmin), 0, 0, 0, 0));
        Step4(sumi + 4 * g, summ + 4 * g, d, dmin, _mm_set1_ps(dx), &sum4[g], &sum_min4[g]);
      }
      if constexpr (kGroups == 0) {
        YUAN_UNROLL
        for (int r = 0; r < S; ++r) {
          const B& w = reinterpret_cast<const B*>(rows[r])[b];
          Step1(sumi[r], summ[r], HalfToFloat(w.d), HalfToFloat(w.dmin), dx, &sum[r], &sum_min[r]);
        }
      }
    }
    YUAN_UNROLL
    for (int g = 0; g < kGroups; ++g) {
      alignas(16) float a[4], m[4];
      _mm_store_ps(a, sum4[g]);
      _mm_store_ps(m, sum_min4[g]);
      YUAN_UNROLL
      for (int j = 0; j < 4; ++j) {
        sum[4 * g + j] = a[j];
        sum_min[4 * g + j] = m[j];
      }
    }
    YUAN_UNROLL
    for (int r = 0; r < S; ++r) *out[r] = sum[r] - sum_min[r];
  }

  // R rows against C tokens from t (a prompt batch): each row's block is
  // unpacked once for all C tokens and each token's activations arranged
  // once for all R rows; row r's result for token c goes to
  // out[c * ld + r]. With C = 4 the tokens' sums are reduced in pairs as
  // they come (fewer registers live) and finished as Totals4 would.
  template <int R, int C>
  static void Tokens(const uint8_t* row0, uint64_t rb, const Acts& x, int64_t t, float* out, int64_t ld) {
    const int64_t nb = x.cols / kQ8KBlock;
    float sum[R][C], sum_min[R][C];
    __m128 sum4[R], sum_min4[R];
    YUAN_UNROLL
    for (int r = 0; r < R; ++r) {
      sum4[r] = sum_min4[r] = _mm_setzero_ps();
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) sum[r][c] = sum_min[r][c] = 0.0f;
    }
    for (int64_t b = 0; b < nb; ++b) {
      const B* w[R];
      Block k[R];
      YUAN_UNROLL
      for (int r = 0; r < R; ++r) {
        w[r] = reinterpret_cast<const B*>(row0 + r * rb) + b;
        k[r] = Unpack(*w[r]);
      }
      // C == 4: pi[r][0] = hadd(token 0, token 1), pi[r][1] for 2, 3 (pm: the mins)
      __m256i sumi[R][C], summ[R][C], pi[R][2], pm[R][2];
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) {
        ActBlock act;
        Arrange(x.qs + (t + c) * x.cols + b * kQ8KBlock, &act);
        const int16_t* bs = x.bsums + ((t + c) * nb + b) * (kQ8KBlock / 16);
        YUAN_UNROLL
        for (int r = 0; r < R; ++r) {
          Products(k[r], act, bs, &sumi[r][c], &summ[r][c]);
          if constexpr (C == 4) {
            if (c % 2 == 1) {
              pi[r][c / 2] = _mm256_hadd_epi32(sumi[r][c - 1], sumi[r][c]);
              pm[r][c / 2] = _mm256_hadd_epi32(summ[r][c - 1], summ[r][c]);
            }
          }
        }
      }
      YUAN_UNROLL
      for (int r = 0; r < R; ++r) {
        const float d = HalfToFloat(w[r]->d), dmin = HalfToFloat(w[r]->dmin);
        if constexpr (C == 4) {
          const __m128 dx = _mm_setr_ps(x.d[t * nb + b], x.d[(t + 1) * nb + b], x.d[(t + 2) * nb + b],
                                        x.d[(t + 3) * nb + b]);
          sum4[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(TotalsOfPairs(pi[r][0], pi[r][1])), _mm_mul_ps(_mm_set1_ps(d), dx), sum4[r]);
          sum_min4[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(TotalsOfPairs(pm[r][0], pm[r][1])), _mm_mul_ps(_mm_set1_ps(dmin), dx), sum_min4[r]);
        } else {
          YUAN_UNROLL
          for (int c = 0; c < C; ++c) {
            Step1(sumi[r][c], summ[r][c], d, dmin, x.d[(t + c) * nb + b], &sum[r][c], &sum_min[r][c]);
          }
        }
      }
    }
    YUAN_UNROLL
    for (int r = 0; r < R; ++r) {
      if constexpr (C == 4) {
        _mm_storeu_ps(sum[r], sum4[r]);
        _mm_storeu_ps(sum_min[r], sum_min4[r]);
      }
      YUAN_UNROLL
      for (int c = 0; c < C; ++c) out[c * ld + r] = sum[r][c] - sum_min[r][c];
    }
  }

  static float Dot(const uint8_t* row, const Acts& x, int64_t t) {
    float y;
    float* out = &y;
    Rows<1>(&row, x, t, &out);
    return y;
  }

  // The register tile for MatMulRowsT: kR rows, kC tokens.
  static constexpr int kR = 2, kC = 4, kRDecode = 1;
  template <int R, int C>
  static void Tile(const uint8_t* w, uint64_t rb, const Acts& x, int64_t t, float* y, int64_t ldy) {
    Tokens<R, C>(w, rb, x, t, y, ldy);
  }

  // One token against rows [r0, r1): kQ4KDecodeRuns runs of rows read side
  // by side, each prefetching DecodePrefetchBytes() ahead (as
  // Q6KDot::Decode), then the rows left over.
  static void Decode(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y) {
    static_assert(kQ4KDecodeRuns == 4, "Decode4 reads four runs");
    DecodeInRuns<kQ4KDecodeRuns>(
        w, r0, r1, y,
        [&](const uint8_t* const* rows, float* const* outs, int64_t ahead) {
#if YUAN_X86_VNNI
          return Decode4(rows, x, outs, ahead);
#endif
          Rows<kQ4KDecodeRuns, true>(rows, x, 0, outs, ahead);
        },
        [&](const uint8_t* row, float* out) { *out = Dot(row, x, 0); });
  }
};

// One token through the micro-kernel's own decoding (runs of rows read side
// by side), batches through its register tiles.
template <class M>
void DecodeOrTiles(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  if (x.n_tokens == 1) return M::Decode(w, x, r0, r1, y);
  MatMulRowsT<M>(w, x, r0, r1, y, ldy);
}

// Interleaved Q4_1/Q5_1: one token by BandMin; batches by BandMin::Batch
// with AVX-512, else by the register tiles on the bands made row-major
// (the same bits either way).
template <DType kType>
void BandMinRows(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  if (x.n_tokens == 1) return BandMin<kType>::Decode(w, x, r0, r1, y);
#if YUAN_X86_VNNI
  BandMin<kType>::Batch(w, x, r0, r1, y, ldy);
#else
  MatMulRowsDeinterleaved(GetKernels(Isa::kAvx2), w, x, r0, r1, y, ldy);
#endif
}

void MatMulRows(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  if (w.interleaved8 && !CanInterleave8(w.type, w.rows)) {
    return MatMulRowsDeinterleaved(ScalarKernels(), w, x, r0, r1, y, ldy);  // not made by Interleave8
  }
  switch (w.type) {
    case DType::kF32: return DecodeOrTiles<FloatMicro<DType::kF32>>(w, x, r0, r1, y, ldy);
    case DType::kF16: return DecodeOrTiles<FloatMicro<DType::kF16>>(w, x, r0, r1, y, ldy);
    case DType::kBF16: return DecodeOrTiles<FloatMicro<DType::kBF16>>(w, x, r0, r1, y, ldy);
    case DType::kQ8_0:
      if (x.n_tokens >= kBandMinTokens || w.interleaved8) return BandQ8<DType::kQ8_0>::Rows(w, x, r0, r1, y, ldy);
      return MatMulRowsT<Q8Micro<DType::kQ8_0>>(w, x, r0, r1, y, ldy);
    case DType::kQ4_0:
      if (x.n_tokens >= kBandMinTokens || w.interleaved8) return BandQ8<DType::kQ4_0>::Rows(w, x, r0, r1, y, ldy);
      return MatMulRowsT<Q8Micro<DType::kQ4_0>>(w, x, r0, r1, y, ldy);
    case DType::kIQ4_NL:
      if (x.n_tokens >= kBandMinTokens) return BandQ8<DType::kIQ4_NL>::Rows(w, x, r0, r1, y, ldy);
      return DecodeOrTiles<Q8Micro<DType::kIQ4_NL>>(w, x, r0, r1, y, ldy);
    case DType::kIQ4_XS:
      if (x.n_tokens >= kBandMinTokens) return BandQ8<DType::kIQ4_XS>::Rows(w, x, r0, r1, y, ldy);
      return DecodeOrTiles<Q8Micro<DType::kIQ4_XS>>(w, x, r0, r1, y, ldy);
    case DType::kQ2_K:
      if (x.n_tokens >= kBandMinTokens) return BandK<DType::kQ2_K>::Rows(w, x, r0, r1, y, ldy);
      return DecodeOrTiles<Q23KDot<DType::kQ2_K>>(w, x, r0, r1, y, ldy);
    case DType::kQ3_K:
      if (x.n_tokens >= kBandMinTokens) return BandK<DType::kQ3_K>::Rows(w, x, r0, r1, y, ldy);
      return DecodeOrTiles<Q23KDot<DType::kQ3_K>>(w, x, r0, r1, y, ldy);
    case DType::kQ5_0:
      if (x.n_tokens >= kBandMinTokens || w.interleaved8) return BandQ8<DType::kQ5_0>::Rows(w, x, r0, r1, y, ldy);
      return DecodeOrTiles<Q8Micro<DType::kQ5_0>>(w, x, r0, r1, y, ldy);
    case DType::kQ4_1:
      if (w.interleaved8) return BandMinRows<DType::kQ4_1>(w, x, r0, r1, y, ldy);
      return DecodeOrTiles<Q8Micro<DType::kQ4_1>>(w, x, r0, r1, y, ldy);
    case DType::kQ5_1:
      if (w.interleaved8) return BandMinRows<DType::kQ5_1>(w, x, r0, r1, y, ldy);
      return DecodeOrTiles<Q8Micro<DType::kQ5_1>>(w, x, r0, r1, y, ldy);
    case DType::kQ4_K:
      if (x.n_tokens >= kBandKMinTokens) return BandK<DType::kQ4_K>::Rows(w, x, r0, r1, y, ldy);
      return DecodeOrTiles<Q45KDot<BlockQ4_K>>(w, x, r0, r1, y, ldy);
    case DType::kQ5_K:
      if (x.n_tokens >= kBandKMinTokens) return BandK<DType::kQ5_K>::Rows(w, x, r0, r1, y, ldy);
      return DecodeOrTiles<Q45KDot<BlockQ5_K>>(w, x, r0, r1, y, ldy);
    case DType::kQ6_K:
      if (x.n_tokens >= kBandKMinTokens) return BandK<DType::kQ6_K>::Rows(w, x, r0, r1, y, ldy);
#if YUAN_X86_VNNI
      if (x.n_tokens == 1) return Q6KDot::Decode(w, x, r0, r1, y);
#endif
      return MatMulRowsT<Q6KDot>(w, x, r0, r1, y, ldy);
    default: return MatMulRowsDequant(w, x, r0, r1, y, ldy);
  }
}

// Blocks of 8 outputs, one per lane: the lanes compute exactly what
// LoraUpScalar does (FMA in r order, then fma(s, acc, y)), which takes the
// outputs before the first whole block and after the last. Each lane's sum is
// a chain of `rank` dependent FMAs, so LoraUpT runs kBlocks = 4 blocks at
// once to keep that many chains in flight (one alone waits on the FMA latency).
template <DType kType, int kBlocks>
void LoraUpBlocks(const void* b, int64_t rank, const float* u, __m256 sv, float* y, int64_t o) {
  const auto* h = static_cast<const uint16_t*>(b);
  const auto* f = static_cast<const float*>(b);
  constexpr int64_t kElem = kType == DType::kF16 ? 2 : 4, kAhead = 2048;
  const int64_t base = (o / 8) * rank * 8;
  __m256 acc[kBlocks];
  YUAN_UNROLL
  for (int j = 0; j < kBlocks; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t r = 0; r < rank; ++r) {
    const __m256 ur = _mm256_set1_ps(u[r]);
    YUAN_UNROLL
    for (int j = 0; j < kBlocks; ++j) {
      const int64_t at = base + (j * rank + r) * 8;
      if ((at * kElem) % 64 == 0) {  // one stream: fetch kAhead bytes on
        _mm_prefetch(reinterpret_cast<const char*>(b) + at * kElem + kAhead, _MM_HINT_T0);
      }
      const __m256 w = kType == DType::kF16 ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + at)))
                                            : _mm256_loadu_ps(f + at);
      acc[j] = _mm256_fmadd_ps(ur, w, acc[j]);
    }
  }
  YUAN_UNROLL
  for (int j = 0; j < kBlocks; ++j) {
    float* yj = y + o + 8 * j;
    _mm256_storeu_ps(yj, _mm256_fmadd_ps(sv, acc[j], _mm256_loadu_ps(yj)));
  }
}

template <DType kType>
void LoraUpT(const void* b, int64_t rank, const float* u, float s, float* y, int64_t o0, int64_t o1) {
  constexpr int kUpBlocks = 4;
  const int64_t first = std::min(o1, (o0 + 7) / 8 * 8);
  LoraUpScalar(kType, b, rank, u, s, y, o0, first);
  const __m256 sv = _mm256_set1_ps(s);
  int64_t o = first;
  for (; o + 8 * kUpBlocks <= o1; o += 8 * kUpBlocks) LoraUpBlocks<kType, kUpBlocks>(b, rank, u, sv, y, o);
  for (; o + 8 <= o1; o += 8) LoraUpBlocks<kType, 1>(b, rank, u, sv, y, o);
  LoraUpScalar(kType, b, rank, u, s, y, o, o1);
}

void LoraUp(DType type, const void* b, int64_t rank, const float* u, float s, float* y, int64_t o0,
            int64_t o1) {
  if (type == DType::kF16) return LoraUpT<DType::kF16>(b, rank, u, s, y, o0, o1);
  return LoraUpT<DType::kF32>(b, rank, u, s, y, o0, o1);
}

// One block of 8 outputs per step, one per lane: qB . u summed in int32 as
// DotU8S8(|u|, sign(qB, u)) (exact: both factors within +-127), then what
// LoraUpQ8Scalar does. With kGroups (rank4 / 4) known at compile time, |u|
// and u's signs are broadcast once per call and stay in registers; kGroups
// = 0 takes any rank and broadcasts them per block. The sums are exact, so
// one block at a time loses nothing to latency chains; the stream is
// prefetched kAhead bytes on.
template <int kGroups>
void LoraUpQ8T(const uint8_t* b, int64_t rank4, const int8_t* u, float s, float* y, int64_t o0,
               int64_t o1) {
  constexpr int64_t kAhead = 2048;
  const int64_t groups = kGroups > 0 ? kGroups : rank4 / 4;
  auto broadcast = [u](int64_t g) {
    int32_t u4;
    std::memcpy(&u4, u + 4 * g, sizeof u4);
    return _mm256_set1_epi32(u4);
  };
  __m256i uv[kGroups > 0 ? kGroups : 1], ua[kGroups > 0 ? kGroups : 1];
  if constexpr (kGroups > 0) {
    for (int g = 0; g < kGroups; ++g) {
      uv[g] = broadcast(g);
      ua[g] = _mm256_abs_epi8(uv[g]);
    }
  }
  const int64_t first = std::min(o1, (o0 + 7) / 8 * 8);
  LoraUpQ8Scalar(b, rank4, u, s, y, o0, first);
  const int64_t block = LoraUpQ8BlockBytes(rank4);
  const __m256 sv = _mm256_set1_ps(s);
  int64_t o = first;
  for (; o + 8 <= o1; o += 8) {
    const uint8_t* blk = b + (o / 8) * block;
    for (int64_t at = 0; at < block; at += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(blk) + at + kAhead, _MM_HINT_T0);
    }
    __m256i acc = _mm256_setzero_si256();
    YUAN_UNROLL
    for (int64_t g = 0; g < groups; ++g) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * g));
      if constexpr (kGroups > 0) {
        acc = _mm256_add_epi32(acc, DotU8S8(ua[g], _mm256_sign_epi8(q, uv[g])));
      } else {
        const __m256i ug = broadcast(g);
        acc = _mm256_add_epi32(acc, DotU8S8(_mm256_abs_epi8(ug), _mm256_sign_epi8(q, ug)));
      }
    }
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), d);
    _mm256_storeu_ps(y + o, _mm256_fmadd_ps(sv, v, _mm256_loadu_ps(y + o)));
  }
  LoraUpQ8Scalar(b, rank4, u, s, y, o, o1);
}

void LoraUpQ8(const uint8_t* b, int64_t rank4, const int8_t* u, float s, float* y, int64_t o0,
              int64_t o1) {
  switch (rank4 / 4) {  // ranks 5..8, 13..16, 29..32 with their broadcasts in registers
    case 2: return LoraUpQ8T<2>(b, rank4, u, s, y, o0, o1);
    case 4: return LoraUpQ8T<4>(b, rank4, u, s, y, o0, o1);
    case 8: return LoraUpQ8T<8>(b, rank4, u, s, y, o0, o1);
    default: return LoraUpQ8T<0>(b, rank4, u, s, y, o0, o1);
  }
}

const KernelSet kSet = {YUAN_X86_VNNI ? Isa::kAvx512 : Isa::kAvx2, QuantizeQ8_0, QuantizeQ8_K,
                        MatMulRows, LoraUp, LoraUpQ8};

}  // namespace

#if YUAN_X86_VNNI
const KernelSet* Avx512Kernels() { return &kSet; }
#else
const KernelSet* Avx2Kernels() { return &kSet; }
#endif

}  // namespace yuan::kernels

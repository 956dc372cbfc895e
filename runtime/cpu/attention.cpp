#include "runtime/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "runtime/cpu/kernels.h"
#include "runtime/cpu/ops.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define YUAN_ATTN_X86 1
#define YUAN_AVX2 __attribute__((target("avx2,fma,f16c")))
#define YUAN_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512vl")))
#endif

// Fully unrolls a short loop over registers (an array of vectors would
// otherwise live in memory). GCC and clang both read the GCC spelling.
#define YUAN_PRAGMA(x) _Pragma(#x)
#define YUAN_UNROLL(n) YUAN_PRAGMA(GCC unroll n)

namespace yuan {
namespace {

// Positions per block in the vector kernel: scores, softmax weights and
// value updates are computed a block at a time.
constexpr int64_t kBlock = 64;

// Row of position p in a contiguous (pages == nullptr) or paged K or V.
inline const void* KvRow(const AttentionKv& kv, const void* base, const void* const* pages,
                         int64_t p) {
  const int64_t row_bytes = kv.row_stride * (kv.type == DType::kF16 ? 2 : 4);
  if (pages == nullptr) return static_cast<const char*>(base) + p * row_bytes;
  return static_cast<const char*>(pages[p / kv.page_size]) + (p % kv.page_size) * row_bytes;
}

// The view of positions [p0, p0 + kBlock) as a contiguous K/V starting at
// its first row (a block lies within one page: pages are multiples of it).
inline AttentionKv BlockView(const AttentionKv& kv, int64_t p0) {
  AttentionKv b = kv;
  b.k = KvRow(kv, kv.k, kv.k_pages, p0);
  b.v = KvRow(kv, kv.v, kv.v_pages, p0);
  b.k_pages = b.v_pages = nullptr;
  return b;
}

// ---- scalar reference -------------------------------------------------------

// One head, one position at a time: the formula of attention.h as written.
// `scratch` holds 2 * hd floats.
template <bool kF16>
void AttendOneScalar(const AttentionKv& kv, const float* q, int64_t n_kv, float* scratch,
                     float* out) {
  using Elem = std::conditional_t<kF16, uint16_t, float>;
  auto load = [](Elem e) -> float {
    if constexpr (kF16) return F16ToF32Fast(e); else return e;
  };
  auto round = [](float x) -> float {
    if constexpr (kF16) return RoundToF16(x); else return x;
  };
  const int64_t hd = kv.head_dim;
  float* qr = scratch;
  float* acc = scratch + hd;
  for (int64_t d = 0; d < hd; ++d) {
    qr[d] = round(q[d]);
    acc[d] = 0.0f;
  }
  float M = -INFINITY, S = 0.0f;
  for (int64_t p = 0; p < n_kv; ++p) {
    const Elem* k = static_cast<const Elem*>(KvRow(kv, kv.k, kv.k_pages, p));
    const Elem* v = static_cast<const Elem*>(KvRow(kv, kv.v, kv.v_pages, p));
    float dot = 0.0f;
    for (int64_t d = 0; d < hd; ++d) dot += qr[d] * load(k[d]);
    const float score = dot * kv.scale;
    float ms = 1.0f;  // rescales the old accumulator
    float vs = 1.0f;  // weight of this position's value
    if (score > M) {
      ms = std::exp(M - score);
      M = score;
      for (int64_t d = 0; d < hd; ++d) acc[d] = round(acc[d] * ms);
    } else {
      vs = std::exp(score - M);
    }
    for (int64_t d = 0; d < hd; ++d) acc[d] = round(acc[d] + load(v[d]) * vs);
    S = S * ms + vs;
  }
  for (int64_t d = 0; d < hd; ++d) out[d] = acc[d] / S;
}

// ---- AVX2 + FMA + F16C ------------------------------------------------------
//
// Per block of positions, for each head of the group:
//   A. scores s_p = (q . k_p) * scale, eight positions at a time (eight
//      accumulators over d, reduced together);
//   B. the running max: a new maximum gives ms_p = exp(M_old - s_p), vs_p = 1,
//      else ms_p = 1, vs_p = exp(s_p - M); both exps in one vector pass;
//   C. S = S * ms_p + vs_p, in position order;
//   D. for eight columns at a time and every head in registers, in position
//      order: acc = round(acc * ms_p) when some head has a new maximum
//      (times 1 is exact for the others), then acc = round(acc + v_p * vs_p)
//      with one FMA, round() being the f16 rounding for an f16 cache.
// The order of operations per output is fixed, so results do not depend on
// how heads, tokens or threads are grouped.
#ifdef YUAN_ATTN_X86

template <bool kF16>
YUAN_AVX2 inline __m256 Load8(const void* base, int64_t i) {
  if constexpr (kF16) {
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
  } else {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  }
}

template <bool kF16>
YUAN_AVX2 inline float Load1(const void* base, int64_t i) {
  if constexpr (kF16) return F16ToF32Fast(static_cast<const uint16_t*>(base)[i]);
  else return static_cast<const float*>(base)[i];
}

template <bool kF16>
YUAN_AVX2 inline __m256 Round8(__m256 x) {
  if constexpr (kF16) {
    return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  } else {
    return x;
  }
}

template <bool kF16>
YUAN_AVX2 inline float Round1(float x) {
  if constexpr (kF16) {
    return _mm_cvtss_f32(_mm_cvtph_ps(
        _mm_cvtps_ph(_mm_set_ss(x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
  } else {
    return x;
  }
}

YUAN_AVX2 inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The eight lane sums of a[0..8) as one vector.
YUAN_AVX2 inline __m256 HorizontalSum8(const __m256* a) {
  const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
}

// s[i] = (qr . k_{p0 + i}) * scale for i < n (n <= kBlock).
template <bool kF16>
YUAN_AVX2 void Scores(const AttentionKv& kv, const float* qr, int64_t p0, int64_t n, float* s) {
  const int64_t hd = kv.head_dim, hd8 = hd & ~int64_t{7};
  const __m256 scale = _mm256_set1_ps(kv.scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const void* k[8];
    YUAN_UNROLL(8)
    for (int r = 0; r < 8; ++r) {
      k[r] = static_cast<const char*>(kv.k) +
             (p0 + i + r) * kv.row_stride * static_cast<int64_t>(kF16 ? 2 : 4);
    }
    __m256 a[8];
    YUAN_UNROLL(8)
    for (int r = 0; r < 8; ++r) a[r] = _mm256_setzero_ps();
    for (int64_t d = 0; d < hd8; d += 8) {
      const __m256 qv = _mm256_loadu_ps(qr + d);
      YUAN_UNROLL(8)
      for (int r = 0; r < 8; ++r) a[r] = _mm256_fmadd_ps(qv, Load8<kF16>(k[r], d), a[r]);
    }
    __m256 dots = HorizontalSum8(a);
    if (hd8 < hd) {
      alignas(32) float t[8];
      _mm256_store_ps(t, dots);
      for (int r = 0; r < 8; ++r) {
        for (int64_t d = hd8; d < hd; ++d) t[r] += qr[d] * Load1<kF16>(k[r], d);
      }
      dots = _mm256_load_ps(t);
    }
    _mm256_storeu_ps(s + i, _mm256_mul_ps(dots, scale));
  }
  for (; i < n; ++i) {
    const void* k = static_cast<const char*>(kv.k) +
                    (p0 + i) * kv.row_stride * static_cast<int64_t>(kF16 ? 2 : 4);
    __m256 a = _mm256_setzero_ps();
    for (int64_t d = 0; d < hd8; d += 8) {
      a = _mm256_fmadd_ps(_mm256_loadu_ps(qr + d), Load8<kF16>(k, d), a);
    }
    float dot = HorizontalSum(a);
    for (int64_t d = hd8; d < hd; ++d) dot += qr[d] * Load1<kF16>(k, d);
    s[i] = dot * kv.scale;
  }
}

// Step D for NQ heads over positions [p0, p0 + n), columns [d, d + 8 * DC):
// the accumulators stay in registers for the whole block. Each update is a
// chain fma -> f16 -> f32 of ~15 cycles, so NQ * DC independent chains keep
// the core busy.
template <bool kF16, int NQ, int DC>
YUAN_AVX2 void AccumulateColumns(const AttentionKv& kv, const char* v0, int64_t n, int64_t d,
                                 const float* ms, const float* vs, const uint8_t* any_new_max,
                                 float* acc) {
  const int64_t hd = kv.head_dim;
  const int64_t row_bytes = kv.row_stride * (kF16 ? 2 : 4);
  __m256 a[NQ][DC];
  YUAN_UNROLL(8)
  for (int j = 0; j < NQ; ++j) {
    YUAN_UNROLL(8)
    for (int c = 0; c < DC; ++c) a[j][c] = _mm256_loadu_ps(acc + j * hd + d + 8 * c);
  }
  for (int64_t p = 0; p < n; ++p) {
    const char* vp = v0 + p * row_bytes;
    if (any_new_max[p]) {
      YUAN_UNROLL(8)
      for (int j = 0; j < NQ; ++j) {
        const __m256 m = _mm256_broadcast_ss(ms + j * kBlock + p);
        YUAN_UNROLL(8)
        for (int c = 0; c < DC; ++c) a[j][c] = Round8<kF16>(_mm256_mul_ps(a[j][c], m));
      }
    }
    __m256 v[DC];
    YUAN_UNROLL(8)
    for (int c = 0; c < DC; ++c) v[c] = Load8<kF16>(vp, d + 8 * c);
    YUAN_UNROLL(8)
    for (int j = 0; j < NQ; ++j) {
      const __m256 w = _mm256_broadcast_ss(vs + j * kBlock + p);
      YUAN_UNROLL(8)
      for (int c = 0; c < DC; ++c) a[j][c] = Round8<kF16>(_mm256_fmadd_ps(v[c], w, a[j][c]));
    }
  }
  YUAN_UNROLL(8)
  for (int j = 0; j < NQ; ++j) {
    YUAN_UNROLL(8)
    for (int c = 0; c < DC; ++c) _mm256_storeu_ps(acc + j * hd + d + 8 * c, a[j][c]);
  }
}

// ---- AVX-512: step D with 16-float vectors ----------------------------------
//
// AccumulateColumns with twice the columns per vector and 32 registers: the
// accumulators of all 64 columns of up to five heads fit at once, so one
// pass over the block's positions does what took the 8-float form four
// passes, and twice as many latency-bound (fma -> f16 -> f32) chains run
// side by side. Each column sees the same operations in the same order as
// in AccumulateColumns: the same bits.

template <bool kF16>
YUAN_AVX512 inline __m512 Load16(const void* base, int64_t i) {
  if constexpr (kF16) {
    // (the masked forms with every lane on: GCC 12 warns about the plain
    // intrinsics' undefined pass-through operand)
    return _mm512_maskz_cvtph_ps(
        0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + i)));
  } else {
    return _mm512_loadu_ps(static_cast<const float*>(base) + i);
  }
}

template <bool kF16>
YUAN_AVX512 inline __m512 Round16(__m512 x) {
  if constexpr (kF16) {
    return _mm512_maskz_cvtph_ps(
        0xFFFF, _mm512_maskz_cvtps_ph(0xFFFF, x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  } else {
    return x;
  }
}

template <bool kF16, int NQ, int DC>
YUAN_AVX512 void AccumulateColumns512(const AttentionKv& kv, const char* v0, int64_t n, int64_t d,
                                      const float* ms, const float* vs, const uint8_t* any_new_max,
                                      float* acc) {
  const int64_t hd = kv.head_dim;
  const int64_t row_bytes = kv.row_stride * (kF16 ? 2 : 4);
  __m512 a[NQ][DC];
  YUAN_UNROLL(8)
  for (int j = 0; j < NQ; ++j) {
    YUAN_UNROLL(8)
    for (int c = 0; c < DC; ++c) a[j][c] = _mm512_loadu_ps(acc + j * hd + d + 16 * c);
  }
  for (int64_t p = 0; p < n; ++p) {
    const char* vp = v0 + p * row_bytes;
    if (any_new_max[p]) {
      YUAN_UNROLL(8)
      for (int j = 0; j < NQ; ++j) {
        const __m512 m = _mm512_set1_ps(ms[j * kBlock + p]);
        YUAN_UNROLL(8)
        for (int c = 0; c < DC; ++c) a[j][c] = Round16<kF16>(_mm512_mul_ps(a[j][c], m));
      }
    }
    __m512 v[DC];
    YUAN_UNROLL(8)
    for (int c = 0; c < DC; ++c) v[c] = Load16<kF16>(vp, d + 16 * c);
    YUAN_UNROLL(8)
    for (int j = 0; j < NQ; ++j) {
      const __m512 w = _mm512_set1_ps(vs[j * kBlock + p]);
      YUAN_UNROLL(8)
      for (int c = 0; c < DC; ++c) a[j][c] = Round16<kF16>(_mm512_fmadd_ps(v[c], w, a[j][c]));
    }
  }
  YUAN_UNROLL(8)
  for (int j = 0; j < NQ; ++j) {
    YUAN_UNROLL(8)
    for (int c = 0; c < DC; ++c) _mm512_storeu_ps(acc + j * hd + d + 16 * c, a[j][c]);
  }
}

// k32[p][d] = f32 of f16 k[p * row_stride + d] for p < n, d < hd.
YUAN_AVX512 void WidenRows512(const uint16_t* k, int64_t row_stride, int64_t n, int64_t hd, float* k32) {
  const int64_t hd16 = hd & ~int64_t{15};
  for (int64_t p = 0; p < n; ++p) {
    const uint16_t* kp = k + p * row_stride;
    float* o = k32 + p * hd;
    int64_t d = 0;
    for (; d < hd16; d += 16) _mm512_storeu_ps(o + d, Load16<true>(kp, d));
    for (; d < hd; ++d) o[d] = F16ToF32Fast(kp[d]);
  }
}

// Step D for NQ heads over columns [0, hd rounded down to 16) of positions
// [0, n) of `v0`; returns the first column left.
template <bool kF16, int NQ>
YUAN_AVX512 int64_t Accumulate512(const AttentionKv& kv, const char* v0, int64_t n, const float* ms,
                                  const float* vs, const uint8_t* any_new_max, float* acc) {
  // column vectors per pass: NQ * DC accumulators + DC values in <= 29 registers
  constexpr int kDC = NQ <= 2 ? 8 : NQ <= 5 ? 4 : 2;
  const int64_t hd16 = kv.head_dim & ~int64_t{15};
  int64_t d = 0;
  for (; d + 16 * kDC <= hd16; d += 16 * kDC) {
    AccumulateColumns512<kF16, NQ, kDC>(kv, v0, n, d, ms, vs, any_new_max, acc);
  }
  for (; d < hd16; d += 16) AccumulateColumns512<kF16, NQ, 1>(kv, v0, n, d, ms, vs, any_new_max, acc);
  return d;
}

// Step D for NQ heads over positions [p0, p0 + n): acc[j] += ... in place;
// the leading columns with 16-float vectors when `wide` (AVX-512).
template <bool kF16, int NQ>
YUAN_AVX2 void Accumulate(const AttentionKv& kv, int64_t p0, int64_t n, const float* ms,
                          const float* vs, const uint8_t* any_new_max, bool wide, float* acc) {
  // column vectors per pass: about 8 to 12 chains in at most ~13 registers
  constexpr int kDC = NQ == 1 ? 8 : NQ == 2 ? 4 : NQ == 3 ? 3 : NQ <= 5 ? 2 : 1;
  const int64_t hd = kv.head_dim, hd8 = hd & ~int64_t{7};
  const int64_t elem = kF16 ? 2 : 4;
  const char* v0 = static_cast<const char*>(kv.v) + p0 * kv.row_stride * elem;
  int64_t d = wide ? Accumulate512<kF16, NQ>(kv, v0, n, ms, vs, any_new_max, acc) : 0;
  for (; d + 8 * kDC <= hd8; d += 8 * kDC) {
    AccumulateColumns<kF16, NQ, kDC>(kv, v0, n, d, ms, vs, any_new_max, acc);
  }
  for (; d < hd8; d += 8) AccumulateColumns<kF16, NQ, 1>(kv, v0, n, d, ms, vs, any_new_max, acc);
  for (d = hd8; d < hd; ++d) {  // columns past the last multiple of 8
    for (int j = 0; j < NQ; ++j) {
      float x = acc[j * hd + d];
      for (int64_t p = 0; p < n; ++p) {
        const float v = Load1<kF16>(v0 + p * kv.row_stride * elem, d);
        if (any_new_max[p]) x = Round1<kF16>(x * ms[j * kBlock + p]);
        x = Round1<kF16>(std::fma(v, vs[j * kBlock + p], x));
      }
      acc[j * hd + d] = x;
    }
  }
}

template <bool kF16>
YUAN_AVX2 void AttendGroupAvx2(const AttentionKv& kv, const float* q, int64_t q_stride, int n_q,
                               int64_t n_kv, float* out, int64_t out_stride, bool wide, float* scratch) {
  const int64_t hd = kv.head_dim, hd8 = hd & ~int64_t{7};
  float* qr = scratch;                 // [n_q][hd] q rounded as K is stored
  float* acc = qr + n_q * hd;          // [n_q][hd]
  float* ms = acc + n_q * hd;          // [n_q][kBlock]
  float* vs = ms + n_q * kBlock;       // [n_q][kBlock]
  float* arg = vs + n_q * kBlock;      // [n_q][kBlock]
  float* k32 = arg + n_q * kBlock;     // [kBlock][hd]: an f16 block widened once for all heads
  AttentionKv kv32 = kv;  // K of the block as f32, or the cache itself
  kv32.k_pages = kv32.v_pages = nullptr;
  kv32.type = DType::kF32;
  kv32.k = k32;
  kv32.row_stride = hd;
  const bool widen = kF16 && n_q > 1;
  uint8_t any_new_max[kBlock];
  float M[kAttnMaxGroup], S[kAttnMaxGroup];
  for (int j = 0; j < n_q; ++j) {
    const float* qj = q + j * q_stride;
    int64_t d = 0;
    for (; d < hd8; d += 8) _mm256_storeu_ps(qr + j * hd + d, Round8<kF16>(_mm256_loadu_ps(qj + d)));
    for (; d < hd; ++d) qr[j * hd + d] = Round1<kF16>(qj[d]);
    for (d = 0; d < hd; ++d) acc[j * hd + d] = 0.0f;
    M[j] = -INFINITY;
    S[j] = 0.0f;
  }
  for (int64_t p0 = 0; p0 < n_kv; p0 += kBlock) {
    const int64_t n = std::min(kBlock, n_kv - p0);
    const AttentionKv kb = BlockView(kv, p0);  // this block's rows, from 0
    for (int64_t p = 0; p < n; ++p) any_new_max[p] = 0;
    if (widen && wide) {
      WidenRows512(static_cast<const uint16_t*>(kb.k), kv.row_stride, n, hd, k32);
    } else if (widen) {  // exact: every f16 value is a float
      for (int64_t p = 0; p < n; ++p) {
        const uint16_t* kp = static_cast<const uint16_t*>(kb.k) + p * kv.row_stride;
        int64_t d = 0;
        for (; d < hd8; d += 8) _mm256_storeu_ps(k32 + p * hd + d, Load8<true>(kp, d));
        for (; d < hd; ++d) k32[p * hd + d] = Load1<true>(kp, d);
      }
    }
    for (int j = 0; j < n_q; ++j) {
      float* s = arg + j * kBlock;
      if (widen) {
        Scores<false>(kv32, qr + j * hd, 0, n, s);
      } else {
        Scores<kF16>(kb, qr + j * hd, 0, n, s);
      }
      float m = M[j];
      uint8_t new_max[kBlock];
      for (int64_t p = 0; p < n; ++p) {  // s becomes the exp argument
        const float sp = s[p];
        new_max[p] = sp > m;
        if (new_max[p]) {
          s[p] = m - sp;
          m = sp;
        } else {
          s[p] = sp - m;
        }
      }
      M[j] = m;
      ExpArray(s, s, n);
      float sum = S[j];
      for (int64_t p = 0; p < n; ++p) {
        const float e = s[p];
        ms[j * kBlock + p] = new_max[p] ? e : 1.0f;
        vs[j * kBlock + p] = new_max[p] ? 1.0f : e;
        sum = sum * ms[j * kBlock + p] + vs[j * kBlock + p];
        any_new_max[p] |= new_max[p];
      }
      S[j] = sum;
    }
    switch (n_q) {
      case 1: Accumulate<kF16, 1>(kb, 0, n, ms, vs, any_new_max, wide, acc); break;
      case 2: Accumulate<kF16, 2>(kb, 0, n, ms, vs, any_new_max, wide, acc); break;
      case 3: Accumulate<kF16, 3>(kb, 0, n, ms, vs, any_new_max, wide, acc); break;
      case 4: Accumulate<kF16, 4>(kb, 0, n, ms, vs, any_new_max, wide, acc); break;
      case 5: Accumulate<kF16, 5>(kb, 0, n, ms, vs, any_new_max, wide, acc); break;
      case 6: Accumulate<kF16, 6>(kb, 0, n, ms, vs, any_new_max, wide, acc); break;
      case 7: Accumulate<kF16, 7>(kb, 0, n, ms, vs, any_new_max, wide, acc); break;
      default: Accumulate<kF16, 8>(kb, 0, n, ms, vs, any_new_max, wide, acc); break;
    }
  }
  for (int j = 0; j < n_q; ++j) {
    float* o = out + j * out_stride;
    const __m256 s = _mm256_set1_ps(S[j]);
    int64_t d = 0;
    for (; d < hd8; d += 8) _mm256_storeu_ps(o + d, _mm256_div_ps(_mm256_loadu_ps(acc + j * hd + d), s));
    for (; d < hd; ++d) o[d] = acc[j * hd + d] / S[j];
  }
}

#endif  // YUAN_ATTN_X86

}  // namespace

int64_t AttentionScratchFloats(int n_q, int64_t head_dim) {
  return int64_t{n_q} * (2 * head_dim + 3 * kBlock) + kBlock * head_dim;
}

void AttendGroupScalar(const AttentionKv& kv, const float* q, int64_t q_stride, int n_q,
                       int64_t n_kv, float* out, int64_t out_stride, float* scratch) {
  for (int j = 0; j < n_q; ++j) {
    if (kv.type == DType::kF16) {
      AttendOneScalar<true>(kv, q + j * q_stride, n_kv, scratch, out + j * out_stride);
    } else {
      AttendOneScalar<false>(kv, q + j * q_stride, n_kv, scratch, out + j * out_stride);
    }
  }
}

void AttendGroup(const AttentionKv& kv, const float* q, int64_t q_stride, int n_q, int64_t n_kv,
                 float* out, int64_t out_stride, float* scratch) {
#ifdef YUAN_ATTN_X86
  if (CpuHasAvx2Fma16c()) {
    // AVX-512 where the matrix kernels use it (so tests that switch the
    // kernel set check both forms against each other)
    const bool wide = kernels::ActiveKernels().isa == kernels::Isa::kAvx512;
    for (int j0 = 0; j0 < n_q; j0 += kAttnMaxGroup) {
      const int nj = std::min(kAttnMaxGroup, n_q - j0);
      if (kv.type == DType::kF16) {
        AttendGroupAvx2<true>(kv, q + j0 * q_stride, q_stride, nj, n_kv, out + j0 * out_stride,
                              out_stride, wide, scratch);
      } else {
        AttendGroupAvx2<false>(kv, q + j0 * q_stride, q_stride, nj, n_kv, out + j0 * out_stride,
                               out_stride, wide, scratch);
      }
    }
    return;
  }
#endif
  AttendGroupScalar(kv, q, q_stride, n_q, n_kv, out, out_stride, scratch);
}

}  // namespace yuan

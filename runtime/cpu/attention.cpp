#include "runtime/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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

// Positions per block: the unit of the online softmax (attention.h).
constexpr int64_t kBlock = 64;

// Row of position p in a contiguous (pages == nullptr) or paged K or V.
inline const void* KvRow(const AttentionKv& kv, const void* base, const void* const* pages,
                         int64_t p) {
  const int64_t row_bytes = kv.row_stride * (kv.type == DType::kF16 ? 2 : 4);
  if (pages == nullptr) return static_cast<const char*>(base) + p * row_bytes;
  return static_cast<const char*>(pages[p / kv.page_size]) + (p % kv.page_size) * row_bytes;
}

inline float LoadValue(const AttentionKv& kv, const void* row, int64_t d) {
  if (kv.type == DType::kF16) return F16ToF32Fast(static_cast<const uint16_t*>(row)[d]);
  return static_cast<const float*>(row)[d];
}

// ---- scalar reference -------------------------------------------------------

// One head (one row), one position at a time: the formula of attention.h as
// written. `scratch` holds 2 * hd floats.
void AttendRowScalar(const AttentionKv& kv, const float* q, int64_t n_kv, float* scratch,
                     float* out) {
  const bool f16 = kv.type == DType::kF16;
  auto round = [f16](float x) { return f16 ? RoundToF16(x) : x; };
  const int64_t hd = kv.head_dim;
  float* qr = scratch;
  float* acc = qr + hd;
  for (int64_t d = 0; d < hd; ++d) {
    qr[d] = round(q[d]);
    acc[d] = 0.0f;
  }
  float M = -INFINITY, S = 0.0f;
  for (int64_t p = 0; p < n_kv; ++p) {
    const void* k = KvRow(kv, kv.k, kv.k_pages, p);
    const void* v = KvRow(kv, kv.v, kv.v_pages, p);
    float dot = 0.0f;
    for (int64_t d = 0; d < hd; ++d) dot = std::fma(qr[d], LoadValue(kv, k, d), dot);
    const float score = dot * kv.scale;
    float ms = 1.0f;  // rescales the old accumulator
    float vs = 1.0f;  // weight of this position's value
    if (score > M) {
      ms = std::exp(M - score);
      M = score;
      if (ms != 1.0f) {
        for (int64_t d = 0; d < hd; ++d) acc[d] = round(acc[d] * ms);
      }
    } else {
      vs = std::exp(score - M);
    }
    for (int64_t d = 0; d < hd; ++d) acc[d] = round(std::fma(LoadValue(kv, v, d), vs, acc[d]));
    S = std::fma(S, ms, vs);
  }
  for (int64_t d = 0; d < hd; ++d) out[d] = acc[d] / S;
}

#ifdef YUAN_ATTN_X86

// ---- vector kernels ---------------------------------------------------------
//
// A tile's rows (its tokens' query heads) go through each block of 64
// positions together:
//   1. the block's K is widened to f32 and transposed (kt[d][p]) and its V
//      widened (vb[p][d]), once for all rows;
//   2. scores: positions in the lanes, one FMA chain over d per score, in
//      register tiles of rows x 64 positions (each K vector serves every row
//      of the tile, each broadcast q value 64 positions);
//   3. per row (AVX2 code shared by both kernel sets): the running maximum
//      position by position, the weights ms_p and vs_p by one ExpArray, the
//      running sum;
//   4. values: d in the lanes, in register tiles of rows x up to 64
//      columns, position by position: acc = round(acc * ms_p) where some
//      row of the register tile has a new maximum (times 1 is exact for the
//      others), then acc = round(fma(v_p, vs_p, acc)), round() being the f16
//      rounding for an f16 cache: a latency-bound fma -> f16 -> f32 chain
//      per vector, with rows x columns of them side by side.
// Every output sees the same operations in the same order as the scalar
// reference (only exp differs, ExpArray against std::exp) whatever the
// vector width, rows per tile or register tile: one token alone gives the
// bits it gets in a prompt's tile, and the AVX2 and AVX-512 sets agree.
// (A position past a row's last in a tile's diagonal block has vs = 0,
// ms = 1: round(acc + 0 * v) = acc, but for the sign of a zero.)

// Block state shared by the steps: rows [r0, rows) take part (the others
// have no position in the block yet).
struct Tile {
  const AttentionKv* kv;
  int64_t hd;
  int n_q;           // heads per token
  int64_t rows;      // n_q * tokens
  int64_t n_kv0;     // positions the tile's first token attends
  float* qr;         // [rows][hd] q rounded as K is stored
  float* acc;        // [rows][hd]
  float* s;          // [rows][kBlock] scores, then vs
  float* ms;         // [rows][kBlock]
  uint64_t* resc;    // [rows] positions of the block with ms != 1
  float* M;          // [rows] running maximum
  float* S;          // [rows] running sum
  float* kt;         // [hd][kBlock]
  float* vb;         // [kBlock][hd]
  // Where step 4 reads V: vb, or the cache's rows where there are too few
  // rows to repay widening them (elements of stride, f16 or not).
  const void* vsrc;
  int64_t vstride;
  // Positions of the block [p0, p0 + kBlock) row r attends.
  int64_t Limit(int64_t r, int64_t p0) const {
    return std::clamp<int64_t>(n_kv0 + r / n_q - p0, 0, kBlock);
  }
};

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
YUAN_AVX2 inline float Round1(float x) {
  if constexpr (kF16) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
  } else {
    return x;
  }
}

template <bool kF16>
YUAN_AVX2 inline __m256 Round8(__m256 x) {
  if constexpr (kF16) {
    return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  } else {
    return x;
  }
}

// Lane j <- lane j - k, -inf into the first k lanes.
template <int k>
YUAN_AVX2 inline __m256 ShiftIn(__m256 v) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i idx = _mm256_max_epi32(_mm256_sub_epi32(iota, _mm256_set1_epi32(k)), _mm256_setzero_si256());
  return _mm256_blend_ps(_mm256_permutevar8x32_ps(v, idx), _mm256_set1_ps(-INFINITY), (1 << k) - 1);
}

// Step 3 for rows [r0, rows) over the block at p0: each row's scores s
// become vs, with ms beside them (ms = 1, vs = 0 past the row's last
// position), and M and S move on; the operations of the scalar reference,
// position by position, with the running maximum as a prefix maximum in
// 8-float vectors and the rows' running sums side by side.
YUAN_AVX2 void SoftmaxRows(const Tile& t, int64_t r0, int64_t p0, int64_t n) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY), one = _mm256_set1_ps(1.0f);
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  for (int64_t r = r0; r < t.rows; ++r) {
    float* s = t.s + r * kBlock;
    const int64_t lim = t.Limit(r, p0);
    // the exp arguments: m_before - s at a new maximum, else s - m_before,
    // m_before = max(M, s[0..i)); -inf past lim
    __m256 carry = _mm256_set1_ps(t.M[r]);
    uint64_t is_new = 0;
    for (int64_t i0 = 0; i0 < n; i0 += 8) {
      const __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(lim - i0)), iota);
      const __m256 x = _mm256_blendv_ps(ninf, _mm256_loadu_ps(s + i0), _mm256_castsi256_ps(valid));
      __m256 incl = _mm256_max_ps(x, ShiftIn<1>(x));
      incl = _mm256_max_ps(incl, ShiftIn<2>(incl));
      incl = _mm256_max_ps(incl, ShiftIn<4>(incl));
      const __m256 before = _mm256_max_ps(ShiftIn<1>(incl), carry);
      const __m256 nw = _mm256_cmp_ps(x, before, _CMP_GT_OQ);
      _mm256_storeu_ps(s + i0, _mm256_blendv_ps(_mm256_sub_ps(x, before), _mm256_sub_ps(before, x), nw));
      is_new |= static_cast<uint64_t>(_mm256_movemask_ps(nw)) << i0;
      carry = _mm256_max_ps(carry, _mm256_permutevar8x32_ps(incl, _mm256_set1_epi32(7)));
    }
    t.M[r] = _mm256_cvtss_f32(carry);
    t.resc[r] = is_new;  // for the moment: which positions are new maxima
  }
  // (positions from n on are not read again)
  const int64_t n8 = (n + 7) & ~int64_t{7};
  if (n8 == kBlock) {
    ExpArray(t.s + r0 * kBlock, t.s + r0 * kBlock, (t.rows - r0) * kBlock);
  } else {
    for (int64_t r = r0; r < t.rows; ++r) ExpArray(t.s + r * kBlock, t.s + r * kBlock, n8);
  }
  for (int64_t r = r0; r < t.rows; ++r) {
    float* s = t.s + r * kBlock;
    float* ms = t.ms + r * kBlock;
    const uint64_t is_new = t.resc[r];
    uint64_t resc = 0;
    for (int64_t i0 = 0; i0 < n8; i0 += 8) {
      const __m256i bits = _mm256_set1_epi32(static_cast<int32_t>((is_new >> i0) & 0xFF));
      const __m256 nw = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(bits, bit), bit));
      const __m256 e = _mm256_loadu_ps(s + i0);
      const __m256 m = _mm256_blendv_ps(one, e, nw);
      _mm256_storeu_ps(ms + i0, m);
      _mm256_storeu_ps(s + i0, _mm256_blendv_ps(e, one, nw));
      resc |= static_cast<uint64_t>(_mm256_movemask_ps(_mm256_cmp_ps(m, one, _CMP_NEQ_UQ))) << i0;
    }
    t.resc[r] = resc;
  }
  // S = fma(S, ms_i, vs_i) position by position, four rows' chains at once
  int64_t r = r0;
  for (; r + 4 <= t.rows; r += 4) {
    float S[4];
    for (int j = 0; j < 4; ++j) S[j] = t.S[r + j];
    for (int64_t i = 0; i < n; ++i) {
      YUAN_UNROLL(4)
      for (int j = 0; j < 4; ++j) S[j] = std::fma(S[j], t.ms[(r + j) * kBlock + i], t.s[(r + j) * kBlock + i]);
    }
    for (int j = 0; j < 4; ++j) t.S[r + j] = S[j];
  }
  for (; r < t.rows; ++r) {
    float S = t.S[r];
    for (int64_t i = 0; i < n; ++i) S = std::fma(S, t.ms[r * kBlock + i], t.s[r * kBlock + i]);
    t.S[r] = S;
  }
}

// Value (i, d) of step 4's source.
template <bool kVF16>
inline float VAt(const Tile& t, int64_t i, int64_t d) {
  if constexpr (kVF16) return F16ToF32Fast(static_cast<const uint16_t*>(t.vsrc)[i * t.vstride + d]);
  return static_cast<const float*>(t.vsrc)[i * t.vstride + d];
}

template <bool kF16, bool kVF16>
YUAN_AVX2 void ValuesTail(const Tile& t, int64_t r0, int64_t n, int64_t d0) {
  for (int64_t r = r0; r < t.rows; ++r) {
    const float* vs = t.s + r * kBlock;
    const float* ms = t.ms + r * kBlock;
    float* a = t.acc + r * t.hd;
    for (int64_t d = d0; d < t.hd; ++d) {
      float x = a[d];
      for (int64_t i = 0; i < n; ++i) {
        if (ms[i] != 1.0f) x = Round1<kF16>(x * ms[i]);
        x = Round1<kF16>(std::fma(VAt<kVF16>(t, i, d), vs[i], x));
      }
      a[d] = x;
    }
  }
}

// qr (q rounded as K is stored), acc = 0, M = -inf, S = 0 for every row.
YUAN_AVX2 void StartRows(const Tile& t, const float* q, int64_t q_head_stride, int64_t q_tok_stride) {
  const bool f16 = t.kv->type == DType::kF16;
  for (int64_t r = 0; r < t.rows; ++r) {
    const float* qj = q + (r / t.n_q) * q_tok_stride + (r % t.n_q) * q_head_stride;
    float* qr = t.qr + r * t.hd;
    int64_t d = 0;
    for (; d + 8 <= t.hd; d += 8) {
      const __m256 x = _mm256_loadu_ps(qj + d);
      _mm256_storeu_ps(qr + d, f16 ? Round8<true>(x) : x);
    }
    for (; d < t.hd; ++d) qr[d] = f16 ? Round1<true>(qj[d]) : qj[d];
    std::fill_n(t.acc + r * t.hd, t.hd, 0.0f);
    t.M[r] = -INFINITY;
    t.S[r] = 0.0f;
  }
}

// out = acc / S for every row of the tile.
YUAN_AVX2 void FinishRows(const Tile& t, float* out, int64_t out_head_stride, int64_t out_tok_stride) {
  for (int64_t r = 0; r < t.rows; ++r) {
    float* o = out + (r / t.n_q) * out_tok_stride + (r % t.n_q) * out_head_stride;
    const float* a = t.acc + r * t.hd;
    const __m256 s = _mm256_set1_ps(t.S[r]);
    int64_t d = 0;
    for (; d + 8 <= t.hd; d += 8) _mm256_storeu_ps(o + d, _mm256_div_ps(_mm256_loadu_ps(a + d), s));
    for (; d < t.hd; ++d) o[d] = a[d] / t.S[r];
  }
}

// -- AVX2: 8 floats per vector

// kt[d][i] and vb[i][d] for the n positions of the block at k, v.
template <bool kF16>
YUAN_AVX2 void WidenBlockAvx2(const Tile& t, const void* k, const void* v, int64_t n, bool widen_v) {
  const int64_t hd = t.hd, stride = t.kv->row_stride, elem = kF16 ? 2 : 4;
  const int64_t hd8 = hd & ~int64_t{7};
  float* const kt = t.kt;  // (a local: the stores could alias t's fields)
  for (int64_t i0 = 0; i0 < n; i0 += 8) {
    for (int64_t d0 = 0; d0 < hd8; d0 += 8) {
      __m256 r[8];
      YUAN_UNROLL(8)
      for (int j = 0; j < 8; ++j) {
        r[j] = i0 + j < n ? Load8<kF16>(static_cast<const char*>(k) + (i0 + j) * stride * elem, d0)
                          : _mm256_setzero_ps();
      }
      __m256 a[8], b[8];
      YUAN_UNROLL(4)
      for (int j = 0; j < 4; ++j) {
        a[2 * j] = _mm256_unpacklo_ps(r[2 * j], r[2 * j + 1]);
        a[2 * j + 1] = _mm256_unpackhi_ps(r[2 * j], r[2 * j + 1]);
      }
      YUAN_UNROLL(2)
      for (int j = 0; j < 2; ++j) {
        b[4 * j + 0] = _mm256_shuffle_ps(a[4 * j], a[4 * j + 2], 0x44);
        b[4 * j + 1] = _mm256_shuffle_ps(a[4 * j], a[4 * j + 2], 0xEE);
        b[4 * j + 2] = _mm256_shuffle_ps(a[4 * j + 1], a[4 * j + 3], 0x44);
        b[4 * j + 3] = _mm256_shuffle_ps(a[4 * j + 1], a[4 * j + 3], 0xEE);
      }
      YUAN_UNROLL(4)
      for (int c = 0; c < 4; ++c) {
        _mm256_storeu_ps(kt + (d0 + c) * kBlock + i0, _mm256_permute2f128_ps(b[c], b[4 + c], 0x20));
        _mm256_storeu_ps(kt + (d0 + 4 + c) * kBlock + i0, _mm256_permute2f128_ps(b[c], b[4 + c], 0x31));
      }
    }
    for (int64_t d = hd8; d < hd; ++d) {
      for (int64_t j = 0; j < 8; ++j) {
        const void* row = static_cast<const char*>(k) + (i0 + j) * stride * elem;
        t.kt[d * kBlock + i0 + j] = i0 + j < n ? LoadValue(*t.kv, row, d) : 0.0f;
      }
    }
  }
  for (int64_t i = 0; widen_v && i < n; ++i) {
    const void* row = static_cast<const char*>(v) + i * stride * elem;
    int64_t d = 0;
    for (; d < hd8; d += 8) _mm256_storeu_ps(t.vb + i * hd + d, Load8<kF16>(row, d));
    for (; d < hd; ++d) t.vb[i * hd + d] = LoadValue(*t.kv, row, d);
  }
}

// Scores of rows [r0, r0 + R) for the block's first 8 * NV positions.
template <int R, int NV>
YUAN_AVX2 void ScoresAvx2(const Tile& t, int64_t r0) {
  __m256 a[R][NV];
  YUAN_UNROLL(4)
  for (int r = 0; r < R; ++r) {
    YUAN_UNROLL(8)
    for (int c = 0; c < NV; ++c) a[r][c] = _mm256_setzero_ps();
  }
  for (int64_t d = 0; d < t.hd; ++d) {
    const float* k = t.kt + d * kBlock;
    YUAN_UNROLL(4)
    for (int r = 0; r < R; ++r) {
      const __m256 q = _mm256_broadcast_ss(t.qr + (r0 + r) * t.hd + d);
      YUAN_UNROLL(8)
      for (int c = 0; c < NV; ++c) a[r][c] = _mm256_fmadd_ps(q, _mm256_loadu_ps(k + 8 * c), a[r][c]);
    }
  }
  const __m256 scale = _mm256_set1_ps(t.kv->scale);
  YUAN_UNROLL(4)
  for (int r = 0; r < R; ++r) {
    YUAN_UNROLL(8)
    for (int c = 0; c < NV; ++c) _mm256_storeu_ps(t.s + (r0 + r) * kBlock + 8 * c, _mm256_mul_ps(a[r][c], scale));
  }
}

// The positions of the block where some row of [r0, r0 + R) rescales.
template <int R>
inline uint64_t Rescales(const Tile& t, int64_t r0) {
  uint64_t m = 0;
  for (int r = 0; r < R; ++r) m |= t.resc[r0 + r];
  return m;
}

template <int NV>
YUAN_AVX2 void ScoresRowsAvx2(const Tile& t, int64_t r0) {
  int64_t r = r0;
  for (; r + 2 <= t.rows; r += 2) ScoresAvx2<2, NV>(t, r);
  if (r < t.rows) ScoresAvx2<1, NV>(t, r);
}

template <bool kF16, bool kVF16, int R, int DC>
YUAN_AVX2 void ValuesAvx2(const Tile& t, int64_t r0, int64_t n, int64_t d0) {
  const uint64_t resc = Rescales<R>(t, r0);
  __m256 a[R][DC];
  YUAN_UNROLL(4)
  for (int r = 0; r < R; ++r) {
    YUAN_UNROLL(4)
    for (int c = 0; c < DC; ++c) a[r][c] = _mm256_loadu_ps(t.acc + (r0 + r) * t.hd + d0 + 8 * c);
  }
  for (int64_t i = 0; i < n; ++i) {
    if ((resc >> i) & 1) {
      YUAN_UNROLL(4)
      for (int r = 0; r < R; ++r) {
        const __m256 m = _mm256_broadcast_ss(t.ms + (r0 + r) * kBlock + i);
        YUAN_UNROLL(4)
        for (int c = 0; c < DC; ++c) a[r][c] = Round8<kF16>(_mm256_mul_ps(a[r][c], m));
      }
    }
    __m256 v[DC];
    YUAN_UNROLL(4)
    for (int c = 0; c < DC; ++c) {
      v[c] = Load8<kVF16>(static_cast<const char*>(t.vsrc) + i * t.vstride * (kVF16 ? 2 : 4), d0 + 8 * c);
    }
    YUAN_UNROLL(4)
    for (int r = 0; r < R; ++r) {
      const __m256 w = _mm256_broadcast_ss(t.s + (r0 + r) * kBlock + i);
      YUAN_UNROLL(4)
      for (int c = 0; c < DC; ++c) a[r][c] = Round8<kF16>(_mm256_fmadd_ps(v[c], w, a[r][c]));
    }
  }
  YUAN_UNROLL(4)
  for (int r = 0; r < R; ++r) {
    YUAN_UNROLL(4)
    for (int c = 0; c < DC; ++c) _mm256_storeu_ps(t.acc + (r0 + r) * t.hd + d0 + 8 * c, a[r][c]);
  }
}

template <bool kF16, bool kVF16, int R>
YUAN_AVX2 void ValuesRowsAvx2(const Tile& t, int64_t r0, int64_t n) {
  const int64_t hd8 = t.hd & ~int64_t{7};
  int64_t d = 0;
  for (; d + 32 <= hd8; d += 32) ValuesAvx2<kF16, kVF16, R, 4>(t, r0, n, d);
  for (; d < hd8; d += 8) ValuesAvx2<kF16, kVF16, R, 1>(t, r0, n, d);
}

template <bool kF16, bool kVF16>
YUAN_AVX2 void ValuesBlockAvx2(const Tile& t, int64_t r0, int64_t n) {
  int64_t r = r0;
  for (; r + 3 <= t.rows; r += 3) ValuesRowsAvx2<kF16, kVF16, 3>(t, r, n);
  for (; r < t.rows; ++r) ValuesRowsAvx2<kF16, kVF16, 1>(t, r, n);
  ValuesTail<kF16, kVF16>(t, r0, n, t.hd & ~int64_t{7});
}

template <bool kF16>
YUAN_AVX2 void BlockAvx2(const Tile& tile, const void* k, const void* v, int64_t p0, int64_t r0, int64_t n) {
  // V from the cache itself for one register tile of rows (decoding) or an
  // f32 cache; else widened once
  Tile t = tile;
  const bool direct = !kF16 || t.rows - r0 <= 3;
  t.vsrc = direct ? v : t.vb;
  t.vstride = direct ? t.kv->row_stride : t.hd;
  WidenBlockAvx2<kF16>(t, k, v, n, !direct);
  switch ((n + 7) / 8) {
    case 1: ScoresRowsAvx2<1>(t, r0); break;
    case 2: ScoresRowsAvx2<2>(t, r0); break;
    case 3: ScoresRowsAvx2<3>(t, r0); break;
    case 4: ScoresRowsAvx2<4>(t, r0); break;
    case 5: ScoresRowsAvx2<5>(t, r0); break;
    case 6: ScoresRowsAvx2<6>(t, r0); break;
    case 7: ScoresRowsAvx2<7>(t, r0); break;
    default: ScoresRowsAvx2<8>(t, r0); break;
  }
  SoftmaxRows(t, r0, p0, n);
  if (direct) {
    ValuesBlockAvx2<kF16, kF16>(t, r0, n);
  } else {
    ValuesBlockAvx2<kF16, false>(t, r0, n);
  }
}

// -- AVX-512: 16 floats per vector

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
YUAN_AVX512 void WidenBlock512(const Tile& t, const void* k, const void* v, int64_t n, bool widen_v) {
  const int64_t hd = t.hd, stride = t.kv->row_stride, elem = kF16 ? 2 : 4;
  const int64_t hd16 = hd & ~int64_t{15};
  float* const kt = t.kt;  // (a local: the stores could alias t's fields)
  for (int64_t i0 = 0; i0 < n; i0 += 16) {
    for (int64_t d0 = 0; d0 < hd16; d0 += 16) {
      // a 16 x 16 transpose: pairs of rows, then quads, then 128-bit lanes
      __m512 r[16], a[16], b[16];
      YUAN_UNROLL(16)
      for (int j = 0; j < 16; ++j) {
        r[j] = i0 + j < n ? Load16<kF16>(static_cast<const char*>(k) + (i0 + j) * stride * elem, d0)
                          : _mm512_setzero_ps();
      }
      YUAN_UNROLL(8)
      for (int j = 0; j < 8; ++j) {
        a[2 * j] = _mm512_maskz_unpacklo_ps(0xFFFF, r[2 * j], r[2 * j + 1]);
        a[2 * j + 1] = _mm512_maskz_unpackhi_ps(0xFFFF, r[2 * j], r[2 * j + 1]);
      }
      // b[4j + c], 128-bit lane L: column 4L + c of rows 4j .. 4j + 3
      YUAN_UNROLL(4)
      for (int j = 0; j < 4; ++j) {
        b[4 * j + 0] = _mm512_maskz_shuffle_ps(0xFFFF, a[4 * j], a[4 * j + 2], 0x44);
        b[4 * j + 1] = _mm512_maskz_shuffle_ps(0xFFFF, a[4 * j], a[4 * j + 2], 0xEE);
        b[4 * j + 2] = _mm512_maskz_shuffle_ps(0xFFFF, a[4 * j + 1], a[4 * j + 3], 0x44);
        b[4 * j + 3] = _mm512_maskz_shuffle_ps(0xFFFF, a[4 * j + 1], a[4 * j + 3], 0xEE);
      }
      YUAN_UNROLL(4)
      for (int c = 0; c < 4; ++c) {
        const __m512 e0 = _mm512_maskz_shuffle_f32x4(0xFFFF, b[c], b[4 + c], 0x44);
        const __m512 e1 = _mm512_maskz_shuffle_f32x4(0xFFFF, b[c], b[4 + c], 0xEE);
        const __m512 e2 = _mm512_maskz_shuffle_f32x4(0xFFFF, b[8 + c], b[12 + c], 0x44);
        const __m512 e3 = _mm512_maskz_shuffle_f32x4(0xFFFF, b[8 + c], b[12 + c], 0xEE);
        _mm512_storeu_ps(kt + (d0 + c) * kBlock + i0, _mm512_maskz_shuffle_f32x4(0xFFFF, e0, e2, 0x88));
        _mm512_storeu_ps(kt + (d0 + 4 + c) * kBlock + i0, _mm512_maskz_shuffle_f32x4(0xFFFF, e0, e2, 0xDD));
        _mm512_storeu_ps(kt + (d0 + 8 + c) * kBlock + i0, _mm512_maskz_shuffle_f32x4(0xFFFF, e1, e3, 0x88));
        _mm512_storeu_ps(kt + (d0 + 12 + c) * kBlock + i0, _mm512_maskz_shuffle_f32x4(0xFFFF, e1, e3, 0xDD));
      }
    }
    for (int64_t d = hd16; d < hd; ++d) {
      for (int64_t j = 0; j < 16; ++j) {
        const void* row = static_cast<const char*>(k) + (i0 + j) * stride * elem;
        t.kt[d * kBlock + i0 + j] = i0 + j < n ? LoadValue(*t.kv, row, d) : 0.0f;
      }
    }
  }
  for (int64_t i = 0; widen_v && i < n; ++i) {
    const void* row = static_cast<const char*>(v) + i * stride * elem;
    int64_t d = 0;
    for (; d < hd16; d += 16) _mm512_storeu_ps(t.vb + i * hd + d, Load16<kF16>(row, d));
    for (; d < hd; ++d) t.vb[i * hd + d] = LoadValue(*t.kv, row, d);
  }
}

// Scores of rows [r0, r0 + R) for the block's first 16 * NV positions.
template <int R, int NV>
YUAN_AVX512 void Scores512(const Tile& t, int64_t r0) {
  __m512 a[R][NV];
  YUAN_UNROLL(4)
  for (int r = 0; r < R; ++r) {
    YUAN_UNROLL(4)
    for (int c = 0; c < NV; ++c) a[r][c] = _mm512_setzero_ps();
  }
  for (int64_t d = 0; d < t.hd; ++d) {
    const float* k = t.kt + d * kBlock;
    __m512 kv[NV];
    YUAN_UNROLL(4)
    for (int c = 0; c < NV; ++c) kv[c] = _mm512_loadu_ps(k + 16 * c);
    YUAN_UNROLL(4)
    for (int r = 0; r < R; ++r) {
      const __m512 q = _mm512_set1_ps(t.qr[(r0 + r) * t.hd + d]);
      YUAN_UNROLL(4)
      for (int c = 0; c < NV; ++c) a[r][c] = _mm512_fmadd_ps(q, kv[c], a[r][c]);
    }
  }
  const __m512 scale = _mm512_set1_ps(t.kv->scale);
  YUAN_UNROLL(4)
  for (int r = 0; r < R; ++r) {
    YUAN_UNROLL(4)
    for (int c = 0; c < NV; ++c) _mm512_storeu_ps(t.s + (r0 + r) * kBlock + 16 * c, _mm512_mul_ps(a[r][c], scale));
  }
}

template <int NV>
YUAN_AVX512 void ScoresRows512(const Tile& t, int64_t r0) {
  int64_t r = r0;
  for (; r + 4 <= t.rows; r += 4) Scores512<4, NV>(t, r);
  switch (t.rows - r) {
    case 3: Scores512<3, NV>(t, r); break;
    case 2: Scores512<2, NV>(t, r); break;
    case 1: Scores512<1, NV>(t, r); break;
    default: break;
  }
}

template <bool kF16>
YUAN_AVX512 inline __m512 Round16(__m512 x) {
  if constexpr (kF16) {
    return _mm512_maskz_cvtph_ps(0xFFFF, _mm512_maskz_cvtps_ph(0xFFFF, x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  } else {
    return x;
  }
}

template <bool kF16, bool kVF16, int R, int DC>
YUAN_AVX512 void Values512(const Tile& t, int64_t r0, int64_t n, int64_t d0) {
  const uint64_t resc = Rescales<R>(t, r0);
  __m512 a[R][DC];
  YUAN_UNROLL(4)
  for (int r = 0; r < R; ++r) {
    YUAN_UNROLL(4)
    for (int c = 0; c < DC; ++c) a[r][c] = _mm512_loadu_ps(t.acc + (r0 + r) * t.hd + d0 + 16 * c);
  }
  for (int64_t i = 0; i < n; ++i) {
    if ((resc >> i) & 1) {
      YUAN_UNROLL(4)
      for (int r = 0; r < R; ++r) {
        const __m512 m = _mm512_set1_ps(t.ms[(r0 + r) * kBlock + i]);
        YUAN_UNROLL(4)
        for (int c = 0; c < DC; ++c) a[r][c] = Round16<kF16>(_mm512_mul_ps(a[r][c], m));
      }
    }
    __m512 v[DC];
    YUAN_UNROLL(4)
    for (int c = 0; c < DC; ++c) {
      v[c] = Load16<kVF16>(static_cast<const char*>(t.vsrc) + i * t.vstride * (kVF16 ? 2 : 4), d0 + 16 * c);
    }
    YUAN_UNROLL(4)
    for (int r = 0; r < R; ++r) {
      const __m512 w = _mm512_set1_ps(t.s[(r0 + r) * kBlock + i]);
      YUAN_UNROLL(4)
      for (int c = 0; c < DC; ++c) a[r][c] = Round16<kF16>(_mm512_fmadd_ps(v[c], w, a[r][c]));
    }
  }
  YUAN_UNROLL(4)
  for (int r = 0; r < R; ++r) {
    YUAN_UNROLL(4)
    for (int c = 0; c < DC; ++c) _mm512_storeu_ps(t.acc + (r0 + r) * t.hd + d0 + 16 * c, a[r][c]);
  }
}

template <bool kF16, bool kVF16, int R>
YUAN_AVX512 void ValuesRows512(const Tile& t, int64_t r0, int64_t n) {
  const int64_t hd16 = t.hd & ~int64_t{15};
  int64_t d = 0;
  for (; d + 64 <= hd16; d += 64) Values512<kF16, kVF16, R, 4>(t, r0, n, d);
  for (; d < hd16; d += 16) Values512<kF16, kVF16, R, 1>(t, r0, n, d);
}

template <bool kF16, bool kVF16>
YUAN_AVX512 void ValuesBlock512(const Tile& t, int64_t r0, int64_t n) {
  int64_t r = r0;
  for (; r + 4 <= t.rows; r += 4) ValuesRows512<kF16, kVF16, 4>(t, r, n);
  switch (t.rows - r) {
    case 3: ValuesRows512<kF16, kVF16, 3>(t, r, n); break;
    case 2: ValuesRows512<kF16, kVF16, 2>(t, r, n); break;
    case 1: ValuesRows512<kF16, kVF16, 1>(t, r, n); break;
    default: break;
  }
  ValuesTail<kF16, kVF16>(t, r0, n, t.hd & ~int64_t{15});
}

template <bool kF16>
YUAN_AVX512 void Block512(const Tile& tile, const void* k, const void* v, int64_t p0, int64_t r0, int64_t n) {
  // V from the cache itself for one register tile of rows (decoding) or an
  // f32 cache; else widened once
  Tile t = tile;
  const bool direct = !kF16 || t.rows - r0 <= 4;
  t.vsrc = direct ? v : t.vb;
  t.vstride = direct ? t.kv->row_stride : t.hd;
  WidenBlock512<kF16>(t, k, v, n, !direct);
  switch ((n + 15) / 16) {
    case 1: ScoresRows512<1>(t, r0); break;
    case 2: ScoresRows512<2>(t, r0); break;
    case 3: ScoresRows512<3>(t, r0); break;
    default: ScoresRows512<4>(t, r0); break;
  }
  SoftmaxRows(t, r0, p0, n);
  if (direct) {
    ValuesBlock512<kF16, kF16>(t, r0, n);
  } else {
    ValuesBlock512<kF16, false>(t, r0, n);
  }
}

#endif  // YUAN_ATTN_X86

}  // namespace

int64_t AttentionScratchFloats(int n_rows, int64_t head_dim) {
  // resc (2 floats a row, first for its alignment), qr, acc, s, ms, M, S,
  // then kt and vb
  return int64_t{n_rows} * (2 + 2 * head_dim + 2 * kBlock + 2) + 2 * kBlock * head_dim;
}

void AttendGroupScalar(const AttentionKv& kv, const float* q, int64_t q_stride, int n_q,
                       int64_t n_kv, float* out, int64_t out_stride, float* scratch) {
  for (int j = 0; j < n_q; ++j) AttendRowScalar(kv, q + j * q_stride, n_kv, scratch, out + j * out_stride);
}

void PrefetchKv(const AttentionKv& kv, int64_t p0, int64_t n) {
  const int64_t bytes = kv.head_dim * (kv.type == DType::kF16 ? 2 : 4);
  for (int64_t p = p0; p < p0 + n; ++p) {
    const char* k = static_cast<const char*>(KvRow(kv, kv.k, kv.k_pages, p));
    const char* v = static_cast<const char*>(KvRow(kv, kv.v, kv.v_pages, p));
    for (int64_t o = 0; o < bytes; o += 64) {
      __builtin_prefetch(k + o, 0, 3);
      __builtin_prefetch(v + o, 0, 3);
    }
  }
}

void AttendTile(const AttentionKv& kv, const float* q, int64_t q_head_stride, int64_t q_tok_stride,
                int n_q, int n_tok, int64_t n_kv0, float* out, int64_t out_head_stride,
                int64_t out_tok_stride, float* scratch) {
#ifdef YUAN_ATTN_X86
  if (CpuHasAvx2Fma16c()) {
    // AVX-512 where the matrix kernels use it (so tests that switch the
    // kernel set check both forms against each other)
    const bool wide = kernels::ActiveKernels().isa == kernels::Isa::kAvx512;
    const int64_t hd = kv.head_dim, rows = int64_t{n_q} * n_tok;
    Tile t;
    t.kv = &kv;
    t.hd = hd;
    t.n_q = n_q;
    t.rows = rows;
    t.n_kv0 = n_kv0;
    t.resc = reinterpret_cast<uint64_t*>(scratch);
    t.qr = scratch + 2 * rows;
    t.acc = t.qr + rows * hd;
    t.s = t.acc + rows * hd;
    t.ms = t.s + rows * kBlock;
    t.M = t.ms + rows * kBlock;
    t.S = t.M + rows;
    t.kt = t.S + rows;
    t.vb = t.kt + kBlock * hd;
    const int64_t n_kv = n_kv0 + n_tok - 1;  // the last token's positions
    // K and V rows are a head's slice of each position's row, one row
    // stride apart, and by the time a decoded token reaches a layer's
    // attention the token's weights have pushed them out of the caches. The
    // loads of the kernel below alone kept few of them in flight; asking for
    // a whole block first (and the next block before each block's work)
    // took decoding's attention on bench-1b Q4_0 from 37-38 to 25-27 µs per
    // layer on the Intel Xeon VM (tg128, 2 threads).
    PrefetchKv(kv, 0, std::min(kBlock, n_kv));
    StartRows(t, q, q_head_stride, q_tok_stride);
    for (int64_t p0 = 0; p0 < n_kv; p0 += kBlock) {
      const int64_t n = std::min(kBlock, n_kv - p0);
      if (p0 + kBlock < n_kv) PrefetchKv(kv, p0 + kBlock, std::min(kBlock, n_kv - p0 - kBlock));
      // the first token with a position in this block, and its first row
      const int64_t r0 = std::max<int64_t>(0, p0 - n_kv0 + 1) * n_q;
      const void* k = KvRow(kv, kv.k, kv.k_pages, p0);  // a block lies in one page
      const void* v = KvRow(kv, kv.v, kv.v_pages, p0);
      if (kv.type == DType::kF16) {
        wide ? Block512<true>(t, k, v, p0, r0, n) : BlockAvx2<true>(t, k, v, p0, r0, n);
      } else {
        wide ? Block512<false>(t, k, v, p0, r0, n) : BlockAvx2<false>(t, k, v, p0, r0, n);
      }
    }
    FinishRows(t, out, out_head_stride, out_tok_stride);
    return;
  }
#endif
  for (int i = 0; i < n_tok; ++i) {
    AttendGroupScalar(kv, q + i * q_tok_stride, q_head_stride, n_q, n_kv0 + i,
                      out + i * out_tok_stride, out_head_stride, scratch);
  }
}

void AttendGroup(const AttentionKv& kv, const float* q, int64_t q_stride, int n_q, int64_t n_kv,
                 float* out, int64_t out_stride, float* scratch) {
  AttendTile(kv, q, q_stride, 0, n_q, 1, n_kv, out, out_stride, 0, scratch);
}

}  // namespace yuan

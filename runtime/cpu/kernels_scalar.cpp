// Portable kernels: the fallback on CPUs without AVX2 and the scalar
// reference the vector kernels are tested against. Plain loops, integer
// arithmetic where the vector kernels use integers, so they agree to float
// rounding.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "runtime/cpu/kernels_driver.h"

namespace yuan::kernels {
namespace {

// One block of n values: d = amax / 127, q = round-half-even(x / d).
void QuantizeBlock(const float* x, int n, int8_t* q, float* d) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  const float db = amax / 127.0f;
  const float id = db != 0.0f ? 1.0f / db : 0.0f;
  *d = db;
  for (int i = 0; i < n; ++i) q[i] = static_cast<int8_t>(std::nearbyint(x[i] * id));
}

void QuantizeQ8_0(const float* x, int64_t n, int8_t* qs, float* d, int16_t* bsums) {
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    int8_t* q = qs + b * kQ8Block;
    QuantizeBlock(x + b * kQ8Block, kQ8Block, q, d + b);
    int sum = 0;
    for (int i = 0; i < kQ8Block; ++i) sum += q[i];
    bsums[b] = static_cast<int16_t>(sum);
  }
}

void QuantizeQ8_K(const float* x, int64_t n, int8_t* qs, float* d, int16_t* bsums) {
  for (int64_t b = 0; b < n / kQ8KBlock; ++b) {
    int8_t* q = qs + b * kQ8KBlock;
    QuantizeBlock(x + b * kQ8KBlock, kQ8KBlock, q, d + b);
    for (int g = 0; g < kQ8KBlock / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += q[g * 16 + i];
      bsums[b * (kQ8KBlock / 16) + g] = static_cast<int16_t>(sum);
    }
  }
}

// f32 x f32/f16/bf16 with 8 partial sums (as the vector kernel's lanes).
template <DType kType>
struct FloatDot {
  static float W(const uint8_t* row, int64_t k) {
    if constexpr (kType == DType::kF32) return reinterpret_cast<const float*>(row)[k];
    if constexpr (kType == DType::kF16) return F16ToF32Fast(reinterpret_cast<const uint16_t*>(row)[k]);
    if constexpr (kType == DType::kBF16) return BF16ToF32(reinterpret_cast<const uint16_t*>(row)[k]);
  }
  static float Dot(const uint8_t* row, const Acts& x, int64_t t) {
    const int64_t n = x.cols;
    const float* xr = x.f32 + t * n;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
      for (int j = 0; j < 8; ++j) acc[j] += W(row, k + j) * xr[k + j];
    }
    float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; k < n; ++k) sum += W(row, k) * xr[k];
    return sum;
  }
};

// Q8_0 / Q4_0 / IQ4_NL / IQ4_XS / Q5_0 / Q4_1 / Q5_1 weights against Q8_0 activations: an exact
// int32 sum per 32-element block, scaled by both blocks' scales; Q4_1's and
// Q5_1's minimum m adds m . dx . sum(xq) per block, summed apart and added
// at the end.
template <DType kType>
struct Q8Dot {
  static float Dot(const uint8_t* row, const Acts& x, int64_t t) {
    const int64_t nb = x.cols / kQ8Block;
    const int8_t* xq = x.qs + t * x.cols;
    const float* xd = x.d + t * nb;
    float sum = 0.0f, sum_min = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      int32_t isum = 0;
      float dw;
      if constexpr (kType == DType::kQ8_0) {
        const BlockQ8_0& blk = reinterpret_cast<const BlockQ8_0*>(row)[b];
        dw = F16ToF32Fast(blk.d);
        for (int i = 0; i < kQ8Block; ++i) isum += blk.qs[i] * xq[b * kQ8Block + i];
      } else if constexpr (kType == DType::kIQ4_NL || kType == DType::kIQ4_XS) {
        // IQ4_XS: each 32-value sub-block as an IQ4_NL block of scale d (ls - 32)
        const uint8_t* qs;
        if constexpr (kType == DType::kIQ4_NL) {
          const BlockIQ4_NL& blk = reinterpret_cast<const BlockIQ4_NL*>(row)[b];
          dw = F16ToF32Fast(blk.d);
          qs = blk.qs;
        } else {
          const BlockIQ4_XS& blk = reinterpret_cast<const BlockIQ4_XS*>(row)[b / 8];
          dw = F16ToF32Fast(blk.d) * static_cast<float>(IQ4XSScale(blk, static_cast<int>(b % 8)));
          qs = blk.qs + 16 * (b % 8);
        }
        for (int i = 0; i < kQ8Block / 2; ++i) {
          isum += kIQ4NLValues[qs[i] & 0x0F] * xq[b * kQ8Block + i];
          isum += kIQ4NLValues[qs[i] >> 4] * xq[b * kQ8Block + i + kQ8Block / 2];
        }
      } else if constexpr (kType == DType::kQ4_0) {
        const BlockQ4_0& blk = reinterpret_cast<const BlockQ4_0*>(row)[b];
        dw = F16ToF32Fast(blk.d);
        for (int i = 0; i < kQ8Block / 2; ++i) {
          isum += ((blk.qs[i] & 0x0F) - 8) * xq[b * kQ8Block + i];
          isum += ((blk.qs[i] >> 4) - 8) * xq[b * kQ8Block + i + kQ8Block / 2];
        }
      } else {  // Q5_0, Q4_1, Q5_1: bit i of qh above element i's nibble
        using B = BlockOf<kType>;
        const B& blk = reinterpret_cast<const B*>(row)[b];
        dw = F16ToF32Fast(blk.d);
        uint32_t qh = 0;
        if constexpr (kType != DType::kQ4_1) __builtin_memcpy(&qh, blk.qh, 4);
        constexpr int kOffset = kType == DType::kQ5_0 ? 16 : 0;
        for (int i = 0; i < kQ8Block / 2; ++i) {
          isum += (((blk.qs[i] & 0x0F) | ((qh >> i) & 1) << 4) - kOffset) * xq[b * kQ8Block + i];
          isum += (((blk.qs[i] >> 4) | ((qh >> (i + 16)) & 1) << 4) - kOffset) * xq[b * kQ8Block + i + kQ8Block / 2];
        }
        // Q4_1, Q5_1: + m . x, from the activation block's sum
        if constexpr (kType != DType::kQ5_0) {
          sum_min += (F16ToF32Fast(blk.m) * xd[b]) * static_cast<float>(x.bsums[t * nb + b]);
        }
      }
      sum += (dw * xd[b]) * static_cast<float>(isum);
    }
    return sum + sum_min;
  }
};

// Q2_K and Q3_K: per sub-block s of 16, an exact integer q . y, then
//   Q2_K: d * dx * sum_s(sc_s q.y_s) - dmin * dx * sum_s(m_s sum_s(y))
//   Q3_K: d * dx * sum_s((sc_s - 32) (q.y_s - 4 sum_s(y)))
// with the 16-value sums of y from the activations; one FMA per block for
// each term, as the x86 kernels do.
template <DType kType>
struct Q23KDot {
  static float Dot(const uint8_t* row, const Acts& x, int64_t t) {
    const int64_t nb = x.cols / kQ8KBlock;
    float sum = 0.0f, sum_min = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      const int8_t* y = x.qs + t * x.cols + b * kQ8KBlock;
      const int16_t* bs = x.bsums + (t * nb + b) * (kQ8KBlock / 16);
      const float dx = x.d[t * nb + b];
      int32_t sumi = 0, summ = 0;
      if constexpr (kType == DType::kQ2_K) {
        const BlockQ2_K& w = reinterpret_cast<const BlockQ2_K*>(row)[b];
        for (int s = 0; s < 16; ++s) {
          int32_t qy = 0;
          for (int i = 16 * s; i < 16 * s + 16; ++i) {
            qy += ((w.qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3) * y[i];
          }
          sumi += (w.scales[s] & 0xF) * qy;
          summ += (w.scales[s] >> 4) * bs[s];
        }
        sum = std::fma(static_cast<float>(sumi), F16ToF32Fast(w.d) * dx, sum);
        sum_min = std::fma(static_cast<float>(summ), F16ToF32Fast(w.dmin) * dx, sum_min);
      } else {
        const BlockQ3_K& w = reinterpret_cast<const BlockQ3_K*>(row)[b];
        for (int s = 0; s < 16; ++s) {
          int32_t qy = 0;
          for (int i = 16 * s; i < 16 * s + 16; ++i) {
            const int q = ((w.qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3) |
                          ((w.hmask[i % 32] >> (i / 32)) & 1) << 2;
            qy += q * y[i];
          }
          sumi += Q3KScale(w.scales, s) * (qy - 4 * bs[s]);
        }
        sum = std::fma(static_cast<float>(sumi), F16ToF32Fast(w.d) * dx, sum);
      }
    }
    return sum - sum_min;
  }
};

// Q6_K: x = d * scale[16-group] * (q6 - 32).
struct Q6KDot {
  static float Dot(const uint8_t* row, const Acts& x, int64_t t) {
    const int64_t nb = x.cols / kQ8KBlock;
    const BlockQ6_K* w = reinterpret_cast<const BlockQ6_K*>(row);
    float sum = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      const int8_t* y = x.qs + t * x.cols + b * kQ8KBlock;
      const uint8_t* ql = w[b].ql;
      const uint8_t* qh = w[b].qh;
      const int8_t* sc = w[b].scales;
      int32_t sumi = 0;
      for (int half = 0; half < 2; ++half) {
        int32_t g[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // per 16-element group
        for (int l = 0; l < 32; ++l) {
          const int q0 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
          const int q1 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
          const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
          const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
          const int is = l / 16;
          g[is + 0] += q0 * y[l];
          g[is + 2] += q1 * y[l + 32];
          g[is + 4] += q2 * y[l + 64];
          g[is + 6] += q3 * y[l + 96];
        }
        for (int i = 0; i < 8; ++i) sumi += sc[i] * g[i];
        ql += 64;
        qh += 32;
        sc += 8;
        y += 128;
      }
      sum += (F16ToF32Fast(w[b].d) * x.d[t * nb + b]) * static_cast<float>(sumi);
    }
    return sum;
  }
};

}  // namespace

// Q4_K's packed 6-bit (scale, min) pairs, as ggml's get_scale_min_k4.
void UnpackQ4KScales(const uint8_t* q, uint8_t* sc, uint8_t* m) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      sc[j] = q[j] & 63;
      m[j] = q[j + 4] & 63;
    } else {
      sc[j] = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
      m[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
  }
}

namespace {

// Q4_K and Q5_K: x = d * sc[32-group] * q - dmin * m[32-group], q the
// nibble (Q5_K: plus 16 times its bit of qh); the min term uses the
// activation's 16-element sums.
template <class B>
struct Q45KDot {
  static float Dot(const uint8_t* row, const Acts& x, int64_t t) {
    constexpr bool kQ5 = std::is_same_v<B, BlockQ5_K>;
    const int64_t nb = x.cols / kQ8KBlock;
    const B* w = reinterpret_cast<const B*>(row);
    float sum = 0.0f, sum_min = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      const int8_t* y = x.qs + t * x.cols + b * kQ8KBlock;
      const int16_t* bs = x.bsums + (t * nb + b) * (kQ8KBlock / 16);
      uint8_t sc[8], m[8];
      UnpackQ4KScales(w[b].scales, sc, m);
      int32_t sumi = 0, summ = 0;
      for (int j = 0; j < 4; ++j) {
        const uint8_t* q = w[b].qs + 32 * j;
        int32_t lo = 0, hi = 0;
        for (int l = 0; l < 32; ++l) {
          int qlo = q[l] & 0xF, qhi = q[l] >> 4;
          if constexpr (kQ5) {
            qlo |= ((w[b].qh[l] >> (2 * j)) & 1) << 4;
            qhi |= ((w[b].qh[l] >> (2 * j + 1)) & 1) << 4;
          }
          lo += qlo * y[64 * j + l];
          hi += qhi * y[64 * j + 32 + l];
        }
        sumi += sc[2 * j] * lo + sc[2 * j + 1] * hi;
        summ += m[2 * j] * (bs[4 * j] + bs[4 * j + 1]) + m[2 * j + 1] * (bs[4 * j + 2] + bs[4 * j + 3]);
      }
      const float dx = x.d[t * nb + b];
      sum += (F16ToF32Fast(w[b].d) * dx) * static_cast<float>(sumi);
      sum_min += (F16ToF32Fast(w[b].dmin) * dx) * static_cast<float>(summ);
    }
    return sum - sum_min;
  }
};

void MatMulRows(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y, int64_t ldy);
const KernelSet kScalar = {Isa::kScalar, QuantizeQ8_0, QuantizeQ8_K, MatMulRows, LoraUpScalar,
                           LoraUpQ8Scalar};

void MatMulRows(const MatRef& w, const Acts& x, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  if (w.interleaved8) return MatMulRowsDeinterleaved(kScalar, w, x, r0, r1, y, ldy);
  switch (w.type) {
    case DType::kF32: return MatMulRowsT<PairwiseMicro<FloatDot<DType::kF32>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kF16: return MatMulRowsT<PairwiseMicro<FloatDot<DType::kF16>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kBF16: return MatMulRowsT<PairwiseMicro<FloatDot<DType::kBF16>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kQ8_0: return MatMulRowsT<PairwiseMicro<Q8Dot<DType::kQ8_0>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kQ4_0: return MatMulRowsT<PairwiseMicro<Q8Dot<DType::kQ4_0>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kQ4_1: return MatMulRowsT<PairwiseMicro<Q8Dot<DType::kQ4_1>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kQ5_0: return MatMulRowsT<PairwiseMicro<Q8Dot<DType::kQ5_0>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kQ5_1: return MatMulRowsT<PairwiseMicro<Q8Dot<DType::kQ5_1>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kIQ4_NL: return MatMulRowsT<PairwiseMicro<Q8Dot<DType::kIQ4_NL>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kIQ4_XS: return MatMulRowsT<PairwiseMicro<Q8Dot<DType::kIQ4_XS>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kQ2_K: return MatMulRowsT<PairwiseMicro<Q23KDot<DType::kQ2_K>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kQ3_K: return MatMulRowsT<PairwiseMicro<Q23KDot<DType::kQ3_K>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kQ4_K: return MatMulRowsT<PairwiseMicro<Q45KDot<BlockQ4_K>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kQ5_K: return MatMulRowsT<PairwiseMicro<Q45KDot<BlockQ5_K>, 1, 1>>(w, x, r0, r1, y, ldy);
    case DType::kQ6_K: return MatMulRowsT<PairwiseMicro<Q6KDot, 1, 1>>(w, x, r0, r1, y, ldy);
    default: return MatMulRowsDequant(w, x, r0, r1, y, ldy);
  }
}

}  // namespace

const KernelSet& ScalarKernels() { return kScalar; }

}  // namespace yuan::kernels

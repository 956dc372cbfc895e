#include "runtime/cpu/ops.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "runtime/core/dtype.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define YUAN_OPS_X86 1
#define YUAN_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

namespace yuan {

bool CpuHasAvx2Fma16c() {
  static const bool have = [] {
    // YUAN_CPU_ISA=scalar (also read by the matmul kernels) forces the
    // portable paths, e.g. to test them on a machine that has AVX2.
    const char* env = std::getenv("YUAN_CPU_ISA");
    if (env != nullptr && std::strcmp(env, "scalar") == 0) return false;
#ifdef YUAN_OPS_X86
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return false;
    unsigned a = 0, b = 0, c = 0, d = 0;  // F16C is CPUID.1:ECX bit 29
    if (__get_cpuid(1, &a, &b, &c, &d) == 0) return false;
    return (c & (1u << 29)) != 0;
#else
    return false;
#endif
  }();
  return have;
}

// ---- scalar references ------------------------------------------------------

namespace ops_scalar {

void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* out) {
  double ss = 0.0;  // double: the mean of squares over thousands of values
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  if (w != nullptr) {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale;
  }
}

void SiluMul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void AddInPlace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void ExpArray(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

void F32ToF16Row(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = F32ToF16(x[i]);
}

}  // namespace ops_scalar

// ---- AVX2 + FMA + F16C ------------------------------------------------------

#ifdef YUAN_OPS_X86
namespace {

// exp(x) as Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by a
// degree-6 polynomial, times 2^n through the exponent bits. About 1 ulp
// over the normal range; exp(x) = 0 below -87.34 (where the result would be
// subnormal), +inf above 88.37, NaN stays NaN.
YUAN_AVX2 inline __m256 Exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.3762626647949f);
  const __m256 lo = _mm256_set1_ps(-87.3365478515625f);
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 fx = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 r2 = _mm256_mul_ps(r, r);
  __m256 y = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

YUAN_AVX2 inline double HorizontalSum(__m256d v) {
  const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

YUAN_AVX2 void RmsNormAvx2(const float* x, const float* w, int64_t n, float eps, float* out) {
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                    _mm256_setzero_pd()};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {  // products of floats are exact in double
    const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
    const __m256d a0 = _mm256_cvtps_pd(_mm256_castps256_ps128(a));
    const __m256d a1 = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
    const __m256d b0 = _mm256_cvtps_pd(_mm256_castps256_ps128(b));
    const __m256d b1 = _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1));
    acc[0] = _mm256_fmadd_pd(a0, a0, acc[0]);
    acc[1] = _mm256_fmadd_pd(a1, a1, acc[1]);
    acc[2] = _mm256_fmadd_pd(b0, b0, acc[2]);
    acc[3] = _mm256_fmadd_pd(b1, b1, acc[3]);
  }
  double ss = HorizontalSum(
      _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3])));
  for (; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  const __m256 vs = _mm256_set1_ps(scale);
  i = 0;
  if (w != nullptr) {
    for (; i + 8 <= n; i += 8) {
      _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs),
                                              _mm256_loadu_ps(w + i)));
    }
    for (; i < n; ++i) out[i] = x[i] * scale * w[i];
  } else {
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
    for (; i < n; ++i) out[i] = x[i] * scale;
  }
}

// silu(g) * u = g / (1 + exp(-g)) * u, with the vector exp.
YUAN_AVX2 void SiluMulAvx2(float* gate, const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = Exp8(_mm256_xor_ps(g, sign));
    const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
  }
  if (i < n) {  // the tail through a zero-padded vector, so it uses the same exp
    float g[8] = {0}, u[8] = {0};
    std::memcpy(g, gate + i, (n - i) * sizeof(float));
    std::memcpy(u, up + i, (n - i) * sizeof(float));
    SiluMulAvx2(g, u, 8);
    std::memcpy(gate + i, g, (n - i) * sizeof(float));
  }
}

YUAN_AVX2 void AddInPlaceAvx2(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    _mm256_storeu_ps(y + i + 8,
                     _mm256_add_ps(_mm256_loadu_ps(y + i + 8), _mm256_loadu_ps(x + i + 8)));
  }
  for (; i < n; ++i) y[i] += x[i];
}

YUAN_AVX2 void ExpArrayAvx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, Exp8(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float t[8] = {0};
    std::memcpy(t, x + i, (n - i) * sizeof(float));
    _mm256_storeu_ps(t, Exp8(_mm256_loadu_ps(t)));
    std::memcpy(y + i, t, (n - i) * sizeof(float));
  }
}

YUAN_AVX2 void F32ToF16RowAvx2(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) y[i] = F32ToF16(x[i]);
}

}  // namespace
#endif  // YUAN_OPS_X86

// ---- dispatch -------------------------------------------------------------

#ifdef YUAN_OPS_X86
#define YUAN_DISPATCH(fast, ...)                   \
  if (CpuHasAvx2Fma16c()) return fast(__VA_ARGS__)
#else
#define YUAN_DISPATCH(fast, ...) (void)0
#endif

void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* out) {
  YUAN_DISPATCH(RmsNormAvx2, x, w, n, eps, out);
  ops_scalar::RmsNorm(x, w, n, eps, out);
}

void SiluMul(float* gate, const float* up, int64_t n) {
  YUAN_DISPATCH(SiluMulAvx2, gate, up, n);
  ops_scalar::SiluMul(gate, up, n);
}

void AddInPlace(float* y, const float* x, int64_t n) {
  YUAN_DISPATCH(AddInPlaceAvx2, y, x, n);
  ops_scalar::AddInPlace(y, x, n);
}

void ExpArray(const float* x, float* y, int64_t n) {
  YUAN_DISPATCH(ExpArrayAvx2, x, y, n);
  ops_scalar::ExpArray(x, y, n);
}

void F32ToF16Row(const float* x, uint16_t* y, int64_t n) {
  YUAN_DISPATCH(F32ToF16RowAvx2, x, y, n);
  ops_scalar::F32ToF16Row(x, y, n);
}

// ---- rotary embedding -------------------------------------------------------

void RopeTable(int64_t n_rot, int64_t pos, float base, float freq_scale,
               const float* freq_factors, float* cos_sin) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    double theta = static_cast<double>(pos) * freq_scale *
                   std::pow(static_cast<double>(base), -2.0 * i / static_cast<double>(n_rot));
    if (freq_factors != nullptr) theta /= freq_factors[i];
    cos_sin[2 * i] = static_cast<float>(std::cos(theta));
    cos_sin[2 * i + 1] = static_cast<float>(std::sin(theta));
  }
}

void RopeApply(float* x, int64_t n_rot, bool neox, const float* cos_sin) {
  const int64_t half = n_rot / 2;
  if (neox) {
    for (int64_t i = 0; i < half; ++i) {
      const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
      const float x0 = x[i], x1 = x[i + half];
      x[i] = x0 * c - x1 * s;
      x[i + half] = x0 * s + x1 * c;
    }
  } else {
    for (int64_t i = 0; i < half; ++i) {
      const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
      const float x0 = x[2 * i], x1 = x[2 * i + 1];
      x[2 * i] = x0 * c - x1 * s;
      x[2 * i + 1] = x0 * s + x1 * c;
    }
  }
}

void Rope(float* x, int64_t n_rot, int64_t pos, float base, float freq_scale, bool neox,
          const float* freq_factors) {
  std::vector<float> cos_sin(static_cast<size_t>(n_rot));
  RopeTable(n_rot, pos, base, freq_scale, freq_factors, cos_sin.data());
  RopeApply(x, n_rot, neox, cos_sin.data());
}

// ---- softmax --------------------------------------------------------------

void Softmax(float* x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace yuan

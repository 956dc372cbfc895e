#include "runtime/core/dtype.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

namespace yuan {
namespace {

struct Entry {
  uint32_t id;
  DTypeInfo info;
};

// ggml's type traits (ggml.c `type_traits`): block size and bytes per block.
constexpr Entry kTypes[] = {
    {0, {"f32", 1, 4, true}},         {1, {"f16", 1, 2, true}},
    {2, {"q4_0", 32, 18, true}},      {3, {"q4_1", 32, 20, true}},
    {6, {"q5_0", 32, 22, true}},     {7, {"q5_1", 32, 24, true}},
    {8, {"q8_0", 32, 34, true}},      {9, {"q8_1", 32, 36, false}},
    {10, {"q2_K", 256, 84, true}},    {11, {"q3_K", 256, 110, true}},
    {12, {"q4_K", 256, 144, true}},   {13, {"q5_K", 256, 176, true}},
    {14, {"q6_K", 256, 210, true}},   {15, {"q8_K", 256, 292, false}},
    {16, {"iq2_xxs", 256, 66, false}}, {17, {"iq2_xs", 256, 74, false}},
    {18, {"iq3_xxs", 256, 98, false}}, {19, {"iq1_s", 256, 50, false}},
    {20, {"iq4_nl", 32, 18, true}},  {21, {"iq3_s", 256, 110, false}},
    {22, {"iq2_s", 256, 82, false}},  {23, {"iq4_xs", 256, 136, true}},
    {24, {"i8", 1, 1, false}},        {25, {"i16", 1, 2, false}},
    {26, {"i32", 1, 4, false}},       {27, {"i64", 1, 8, false}},
    {28, {"f64", 1, 8, false}},       {29, {"iq1_m", 256, 56, false}},
    {30, {"bf16", 1, 2, true}},       {34, {"tq1_0", 256, 54, false}},
    {35, {"tq2_0", 256, 66, false}},  {39, {"mxfp4", 32, 17, false}},
};

}  // namespace

std::optional<DTypeInfo> GetDTypeInfo(uint32_t type_id) {
  for (const Entry& e : kTypes) {
    if (e.id == type_id) return e.info;
  }
  return std::nullopt;
}

std::string_view DTypeName(DType type) {
  auto info = GetDTypeInfo(static_cast<uint32_t>(type));
  return info ? info->name : std::string_view("unknown");
}

std::optional<uint64_t> RowBytes(DType type, int64_t n_elements) {
  auto info = GetDTypeInfo(static_cast<uint32_t>(type));
  if (!info || n_elements < 0 || n_elements % info->block_size != 0) return std::nullopt;
  uint64_t blocks = static_cast<uint64_t>(n_elements / info->block_size);
  uint64_t bytes;
  if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(info->type_size), &bytes)) {
    return std::nullopt;
  }
  return bytes;
}

// ---- f16 / bf16 ----------------------------------------------------------

float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;  // inf / nan
  } else {
    bits = sign | (exp + (127 - 15)) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

namespace {
struct F16Table {
  float v[65536];
  F16Table() {
    for (uint32_t h = 0; h < 65536; ++h) v[h] = F16ToF32(static_cast<uint16_t>(h));
  }
};
}  // namespace

float F16ToF32Fast(uint16_t h) {
  static const F16Table* table = new F16Table();  // 256 KiB, built once
  return table->v[h];
}

uint16_t F32ToF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or nan
    return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);
  }
  if (abs >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: overflow to inf
  if (abs < 0x38800000u) {                         // result is subnormal or zero
    if (abs < 0x33000000u) return sign;            // below half the smallest subnormal
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - e;  // 14 + (113 - e)... aligns to 2^-24 units
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return sign | static_cast<uint16_t>(q);
  }
  uint32_t q = ((abs >> 13) - ((127 - 15) << 10));
  const uint32_t rem = abs & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) ++q;
  return sign | static_cast<uint16_t>(q);
}

uint16_t F32ToBF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 64);  // quiet nan
  return static_cast<uint16_t>((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

// ---- dequantize ----------------------------------------------------------

namespace {

// Q4_K packs eight 6-bit (scale, min) pairs into 12 bytes (ggml get_scale_min_k4).
inline void ScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// The 32-value 4- and 5-bit types: element j (j < 16) in qs[j]'s low nibble,
// j + 16 in its high one, Q5's fifth bit of element j in bit j of qh;
// x = d * (q - 8) (Q4_0), d * (q - 16) (Q5_0) or d * q + m (Q4_1, Q5_1).
template <class B>
constexpr bool kHasMin = std::is_same_v<B, BlockQ4_1> || std::is_same_v<B, BlockQ5_1>;
template <class B>
constexpr bool kHasFifthBit = std::is_same_v<B, BlockQ5_0> || std::is_same_v<B, BlockQ5_1>;

template <class B>
uint32_t FifthBits(const B& b) {
  if constexpr (kHasFifthBit<B>) {
    return static_cast<uint32_t>(b.qh[0]) | static_cast<uint32_t>(b.qh[1]) << 8 |
           static_cast<uint32_t>(b.qh[2]) << 16 | static_cast<uint32_t>(b.qh[3]) << 24;
  }
  return 0;
}

template <class B>
void DequantizeQ45(const B* b, float* dst, int64_t n) {
  constexpr int kOffset = kHasMin<B> ? 0 : kHasFifthBit<B> ? 16 : 8;
  for (int64_t i = 0; i < n / 32; ++i) {
    const float d = F16ToF32(b[i].d);
    float m = 0.0f;
    if constexpr (kHasMin<B>) m = F16ToF32(b[i].m);
    const uint32_t qh = FifthBits(b[i]);
    float* y = dst + i * 32;
    for (int j = 0; j < 16; ++j) {
      const int lo = ((b[i].qs[j] & 0x0F) | ((qh >> j) & 1) << 4) - kOffset;
      const int hi = ((b[i].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - kOffset;
      if constexpr (kHasMin<B>) {
        y[j] = lo * d + m;
        y[j + 16] = hi * d + m;
      } else {
        y[j] = d * lo;
        y[j + 16] = d * hi;
      }
    }
  }
}

// Q4_K and Q5_K: x = d * sc * q - dmin * m per sub-block of 32; Q5_K's q
// takes a fifth bit from qh (bit 2k for the low nibbles of qs[32k ..], bit
// 2k + 1 for the high ones).
template <class B>
void DequantizeQ45K(const B* x, float* y, int64_t n) {
  constexpr bool kQ5 = std::is_same_v<B, BlockQ5_K>;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float d = F16ToF32(x[b].d);
    const float dmin = F16ToF32(x[b].dmin);
    const uint8_t* q = x[b].qs;
    for (int k = 0; k < 4; ++k, q += 32) {
      uint8_t sc, m;
      ScaleMinK4(2 * k, x[b].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      ScaleMinK4(2 * k + 1, x[b].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) {
        int high = 0;
        if constexpr (kQ5) high = ((x[b].qh[l] >> (2 * k)) & 1) << 4;
        *y++ = d1 * ((q[l] & 0xF) | high) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        int high = 0;
        if constexpr (kQ5) high = ((x[b].qh[l] >> (2 * k + 1)) & 1) << 4;
        *y++ = d2 * ((q[l] >> 4) | high) - m2;
      }
    }
  }
}

// Q2_K: x = d * sc * q - dmin * m per sub-block of 16 (dtype.h).
void DequantizeQ2K(const BlockQ2_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float d = F16ToF32(x[b].d), dmin = F16ToF32(x[b].dmin);
    for (int i = 0; i < kQK_K; ++i) {
      const int half = i / 128, j = (i % 128) / 32, l = i % 32;
      const uint8_t sc = x[b].scales[i / 16];
      const int q = (x[b].qs[32 * half + l] >> (2 * j)) & 3;
      y[b * kQK_K + i] = d * (sc & 0xF) * q - dmin * (sc >> 4);
    }
  }
}

// Q3_K: x = d * (sc - 32) * (q - 4) per sub-block of 16 (dtype.h).
void DequantizeQ3K(const BlockQ3_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float d = F16ToF32(x[b].d);
    for (int i = 0; i < kQK_K; ++i) {
      const int half = i / 128, j = (i % 128) / 32, l = i % 32;
      const int q = ((x[b].qs[32 * half + l] >> (2 * j)) & 3) | ((x[b].hmask[l] >> (i / 32)) & 1) << 2;
      y[b * kQK_K + i] = d * static_cast<float>(Q3KScale(x[b].scales, i / 16)) * (q - 4);
    }
  }
}

// 32 values of IQ4_NL's grid with scale d from 16 bytes of nibbles.
void DequantizeIQ4Block(float d, const uint8_t* qs, float* y) {
  for (int j = 0; j < 16; ++j) {
    y[j] = d * kIQ4NLValues[qs[j] & 0xF];
    y[j + 16] = d * kIQ4NLValues[qs[j] >> 4];
  }
}

void DequantizeIQ4NL(const BlockIQ4_NL* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK4_NL; ++i) DequantizeIQ4Block(F16ToF32(b[i].d), b[i].qs, y + 32 * i);
}

void DequantizeIQ4XS(const BlockIQ4_XS* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = F16ToF32(b[i].d);
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      DequantizeIQ4Block(d * static_cast<float>(IQ4XSScale(b[i], ib)), b[i].qs + 16 * ib, y + kQK_K * i + 32 * ib);
    }
  }
}

void DequantizeQ6K(const BlockQ6_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float d = F16ToF32(x[b].d);
    const uint8_t* ql = x[b].ql;
    const uint8_t* qh = x[b].qh;
    const int8_t* sc = x[b].scales;
    for (int half = 0; half < kQK_K; half += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = static_cast<int8_t>((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = static_cast<int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = static_cast<int8_t>((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

}  // namespace

void DequantizeRow(DType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(s[i]);
      return;
    }
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(s[i]);
      return;
    }
    case DType::kQ8_0: {
      const BlockQ8_0* b = static_cast<const BlockQ8_0*>(src);
      for (int64_t i = 0; i < n / kQK8_0; ++i) {
        const float d = F16ToF32(b[i].d);
        for (int j = 0; j < kQK8_0; ++j) dst[i * kQK8_0 + j] = d * b[i].qs[j];
      }
      return;
    }
    case DType::kQ4_0:
      return DequantizeQ45(static_cast<const BlockQ4_0*>(src), dst, n);
    case DType::kQ4_1:
      return DequantizeQ45(static_cast<const BlockQ4_1*>(src), dst, n);
    case DType::kQ5_0:
      return DequantizeQ45(static_cast<const BlockQ5_0*>(src), dst, n);
    case DType::kQ5_1:
      return DequantizeQ45(static_cast<const BlockQ5_1*>(src), dst, n);
    case DType::kIQ4_NL:
      return DequantizeIQ4NL(static_cast<const BlockIQ4_NL*>(src), dst, n);
    case DType::kIQ4_XS:
      return DequantizeIQ4XS(static_cast<const BlockIQ4_XS*>(src), dst, n);
    case DType::kQ2_K:
      return DequantizeQ2K(static_cast<const BlockQ2_K*>(src), dst, n);
    case DType::kQ3_K:
      return DequantizeQ3K(static_cast<const BlockQ3_K*>(src), dst, n);
    case DType::kQ4_K:
      DequantizeQ45K(static_cast<const BlockQ4_K*>(src), dst, n);
      return;
    case DType::kQ5_K:
      DequantizeQ45K(static_cast<const BlockQ5_K*>(src), dst, n);
      return;
    case DType::kQ6_K:
      DequantizeQ6K(static_cast<const BlockQ6_K*>(src), dst, n);
      return;
    default:
      // Unreachable for tensors that passed loading (can_compute is checked
      // there); fill with NaN rather than crash if a caller slips.
      for (int64_t i = 0; i < n; ++i) dst[i] = std::numeric_limits<float>::quiet_NaN();
      return;
  }
}

// ---- k-quant quantizers (ggml's reference algorithms) ---------------------
//
// These follow ggml-quants.c's quantize_row_q4_K_ref / quantize_row_q6_K_ref
// step for step, in the same float arithmetic, so a file we write holds the
// bytes llama-quantize (without an importance matrix) would write.

namespace {

// ggml's roundf (half away from zero), which std::lround matches but as a
// libm call that dominated writing Q8_0 files. v - trunc(v) is exact in
// float, so the comparison decides the tie exactly. NaN gives 0.
inline int RoundHalfAway(float v) {
  if (!(std::fabs(v) < 4194304.0f)) return std::isnan(v) ? 0 : (v > 0 ? 4194304 : -4194304);
  const int t = static_cast<int>(v);  // toward zero
  const float frac = v - static_cast<float>(t);
  return t + (frac >= 0.5f) - (frac <= -0.5f);
}

// ggml's nearest_int: adding 1.5 * 2^23 leaves round(f) (half to even) in
// the low mantissa bits. Hostile inputs (NaN, inf, overflow) are clamped
// instead of giving garbage; ggml asserts.
inline int NearestInt(float f) {
  if (!(std::fabs(f) <= 4194303.0f)) return std::isnan(f) ? 0 : (f > 0 ? 4194303 : -4194303);
  const float v = f + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

// Symmetric quantization of n values to integers in [-nmax, nmax-1] (stored
// as L + nmax) with the scale that minimizes sum x^2 * (x - scale*l)^2: the
// plain amax scale, then 18 nudged scales (nmax + 0.1*is) / max, keeping the
// best (ggml make_qx_quants with rmse_type 1 and no importance weights).
float MakeQxQuants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {  // all zero (ggml GROUP_MAX_EPS)
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float w[kQK_K];  // the weights x^2 (n <= kQK_K)
  for (int i = 0; i < n; ++i) w[i] = x[i] * x[i];
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    sumlx += w[i] * x[i] * l;
    suml2 += w[i] * l * l;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;  // = sumlx^2 / suml2, the error reduction to maximize
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
      sumlx += w[i] * x[i] * l;
      suml2 += w[i] * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        L[i] = static_cast<int8_t>(nmax + std::clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Asymmetric quantization x ~ scale * l - min with l in [0, nmax]: starts
// from the (min, max) range, then tries nstep+1 stretched grids and, for
// each, the weighted least-squares (scale, min) for those levels; keeps the
// best by weighted squared error, or weighted absolute error with use_mad
// (ggml make_qkx2_quants). Returns the scale; *the_min gets -min (>= 0).
float MakeQkx2Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                     float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                     bool use_mad = false) {
  auto error = [use_mad](float diff) { return use_mad ? std::fabs(diff) : diff * diff; };
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;  // the offset only ever moves the grid down
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
    L[i] = static_cast<uint8_t>(l);
    best_error += weights[i] * error(scale * L[i] + min - x[i]);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        cur_error += weights[i] * error(this_scale * Laux[i] + this_min - x[i]);
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// Symmetric quantization of n values to l in [-nmax, nmax - 1] (stored as
// l + nmax): the amax grid, then up to 5 passes that move single levels
// while that raises sum(w x l)^2 / sum(w l^2) with w = x^2; returns the
// least-squares scale for the levels kept (ggml make_q3_quants, do_rmse).
float MakeQ3Quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < 1e-15f) {  // all zero (ggml GROUP_MAX_EPS)
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (slx <= 0) continue;
      float sl2 = suml2 - w * L[i] * L[i];
      const int l = std::clamp(NearestInt(x[i] * sl2 / slx), -nmax, nmax - 1);
      if (l == L[i]) continue;
      slx += w * x[i] * l;
      sl2 += w * l * l;
      if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = static_cast<int8_t>(l);
        sumlx = slx;
        suml2 = sl2;
        ++changed;
      }
    }
    if (changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return sumlx / suml2;
}

// A level from v = x * id + offset + 0.5, truncated as ggml's casts are
// (v lies in [0.5, top + 0.5] for finite rows); a NaN gives level 0 instead
// of an undefined cast.
inline int Level(float v, int top) { return v >= 0.0f ? static_cast<int>(std::min(v, static_cast<float>(top))) : 0; }

// Stores the 32 levels L of a Q4_0/Q4_1/Q5_0/Q5_1 block: element j in qs[j]'s
// low nibble, j + 16 in its high one, the Q5 types' fifth bits in qh.
template <class B>
void PackLevels(const int* L, B* b) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    b->qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | (L[j + 16] & 0x0F) << 4);
    qh |= static_cast<uint32_t>(L[j] >> 4) << j | static_cast<uint32_t>(L[j + 16] >> 4) << (j + 16);
  }
  if constexpr (kHasFifthBit<B>) {
    for (int k = 0; k < 4; ++k) b->qh[k] = static_cast<uint8_t>(qh >> (8 * k));
  }
}

// Q4_0 and Q5_0 (ggml quantize_row_q4_0_ref / _q5_0_ref): the value of
// largest magnitude is level 0, d = it / -8 (Q4_0) or / -16 (Q5_0).
template <class B>
void QuantizeAbsMax(const float* src, B* b, int64_t n) {
  constexpr int kHalf = kHasFifthBit<B> ? 16 : 8;
  for (int64_t i = 0; i < n / 32; ++i) {
    const float* x = src + i * 32;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -static_cast<float>(kHalf);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = F32ToF16(d);
    int L[32];
    for (int j = 0; j < 32; ++j) L[j] = Level(x[j] * id + (kHalf + 0.5f), 2 * kHalf - 1);
    PackLevels(L, &b[i]);
  }
}

// Q4_1 and Q5_1 (ggml quantize_row_q4_1_ref / _q5_1_ref): the block's
// [min, max] in 15 or 31 steps, x ~ d * q + min.
template <class B>
void QuantizeMinMax(const float* src, B* b, int64_t n) {
  constexpr int kLevels = kHasFifthBit<B> ? 31 : 15;
  for (int64_t i = 0; i < n / 32; ++i) {
    const float* x = src + i * 32;
    float min = std::numeric_limits<float>::max(), max = -std::numeric_limits<float>::max();
    for (int j = 0; j < 32; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / kLevels;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = F32ToF16(d);
    b[i].m = F32ToF16(min);
    int L[32];
    for (int j = 0; j < 32; ++j) L[j] = Level((x[j] - min) * id + 0.5f, kLevels);
    PackLevels(L, &b[i]);
  }
}

// Q4_K and Q5_K: 8 sub-blocks of 32, each x ~ d*sc*q - dmin*m with q in
// [0, 15] (Q4_K) or [0, 31] (Q5_K) and 6-bit (sc, m) pairs scaled by the
// block's f16 d and dmin. The two differ only in the levels, the grids
// MakeQkx2Quants tries (ggml: rmin -1, 20 steps for Q4_K; -0.5, 15 for
// Q5_K) and Q5_K's fifth bits in qh.
template <class B>
void QuantizeQ45K(const float* x, B* y, int64_t n) {
  constexpr bool kQ5 = std::is_same_v<B, BlockQ5_K>;
  constexpr int kLevels = kQ5 ? 31 : 15;
  uint8_t L[kQK_K];
  uint8_t Laux[32];
  float weights[32];
  float mins[kQK_K / 32];
  float scales[kQK_K / 32];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    B& out = y[b];
    float max_scale = 0, max_min = 0;  // scales and mins are >= 0 here
    for (int j = 0; j < kQK_K / 32; ++j) {
      // Weight each value by |x| plus the sub-block's rms: large values
      // matter more, but small ones are not ignored.
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
      scales[j] = MakeQkx2Quants(32, kLevels, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                 kQ5 ? -0.5f : -1.0f, 0.1f, kQ5 ? 15 : 20);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    std::memset(out.scales, 0, sizeof out.scales);
    for (int j = 0; j < kQK_K / 32; ++j) {
      const uint8_t ls = static_cast<uint8_t>(std::min(63, NearestInt(inv_scale * scales[j])));
      const uint8_t lm = static_cast<uint8_t>(std::min(63, NearestInt(inv_min * mins[j])));
      // The packing ScaleMinK4 reads back.
      if (j < 4) {
        out.scales[j] = ls;
        out.scales[j + 4] = lm;
      } else {
        out.scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
        out.scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        out.scales[j] |= static_cast<uint8_t>((lm >> 4) << 6);
      }
    }
    out.d = F32ToF16(max_scale / 63.0f);
    out.dmin = F32ToF16(max_min / 63.0f);
    // Requantize against the scales as stored (6-bit, f16), not the ideal ones.
    for (int j = 0; j < kQK_K / 32; ++j) {
      uint8_t sc, m;
      ScaleMinK4(j, out.scales, &sc, &m);
      const float d = F16ToF32(out.d) * sc;
      if (d == 0.0f) continue;
      const float dm = F16ToF32(out.dmin) * m;
      for (int i = 0; i < 32; ++i) {
        L[32 * j + i] = static_cast<uint8_t>(std::clamp(NearestInt((x[32 * j + i] + dm) / d), 0, kLevels));
      }
    }
    // qs[32*k + l] holds element 64k + l (low nibble) and 64k + 32 + l
    // (high); Q5_K's fifth bits go to bits 2k and 2k + 1 of qh[l].
    if constexpr (kQ5) std::memset(out.qh, 0, sizeof out.qh);
    uint8_t* q = out.qs;
    for (int k = 0; k < 4; ++k, q += 32) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * k + l], hi = L[64 * k + 32 + l];
        q[l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        if constexpr (kQ5) out.qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * k)) | ((hi >> 4) << (2 * k + 1)));
      }
    }
  }
}

// Q6_K: 16 sub-blocks of 16, x ~ d * sc * (q - 32) with q in [0, 63] and
// signed 8-bit sc scaled by the block's f16 d.
void QuantizeQ6K(const float* x, BlockQ6_K* y, int64_t n) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    BlockQ6_K& out = y[b];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      scales[ib] = MakeQxQuants(16, 32, x + 16 * ib, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    if (max_abs_scale < 1e-15f) {  // all zero
      std::memset(&out, 0, sizeof out);
      continue;
    }
    // The sign of the largest scale goes into d so its 8-bit scale is -128.
    const float iscale = -128.0f / max_scale;
    out.d = F32ToF16(1 / iscale);
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      out.scales[ib] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[ib])));
    }
    // Requantize against the stored scales.
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = F16ToF32(out.d) * out.scales[j];
      if (d == 0.0f) continue;
      for (int i = 0; i < 16; ++i) {
        L[16 * j + i] = static_cast<int8_t>(std::clamp(NearestInt(x[16 * j + i] / d), -32, 31) + 32);
      }
    }
    // Per 128 values: ql[l] = q[l] | q[l+64] << 4, ql[l+32] = q[l+32] | q[l+96] << 4,
    // qh[l] = the top 2 bits of q[l], q[l+32], q[l+64], q[l+96].
    uint8_t* ql = out.ql;
    uint8_t* qh = out.qh;
    for (int j = 0; j < kQK_K; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
        ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

// Stores 256 2-bit levels as Q2_K and Q3_K do: per 128 values, value
// 32j + l in bits 2j..2j+1 of qs[l].
void PackTwoBits(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK_K; j += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6);
    }
  }
}

// Q2_K (ggml quantize_row_q2_K_ref): each sub-block of 16 by
// MakeQkx2Quants on 4 levels weighted by |x| with absolute errors, the
// scales and mins to 4 bits against the block's largest, then the levels
// again against the stored scales.
void QuantizeQ2K(const float* x, BlockQ2_K* y, int64_t n) {
  uint8_t L[kQK_K], Laux[16];
  float weights[16], mins[kQK_K / 16], scales[kQK_K / 16];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    BlockQ2_K& out = y[b];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < kQK_K / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = MakeQkx2Quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15,
                                 /*use_mad=*/true);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    // (levels from NearestInt stay in [0, 15] for finite rows; the mask
    // keeps hostile ones from spilling into the other nibble)
    const float iscale = max_scale > 0 ? 15.0f / max_scale : 0.0f;
    const float imin = max_min > 0 ? 15.0f / max_min : 0.0f;
    for (int j = 0; j < kQK_K / 16; ++j) {
      out.scales[j] = static_cast<uint8_t>((NearestInt(iscale * scales[j]) & 0xF) |
                                           (NearestInt(imin * mins[j]) & 0xF) << 4);
    }
    out.d = F32ToF16(max_scale > 0 ? max_scale / 15.0f : 0.0f);
    out.dmin = F32ToF16(max_min > 0 ? max_min / 15.0f : 0.0f);
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = F16ToF32(out.d) * (out.scales[j] & 0xF);
      if (d == 0.0f) continue;
      const float dm = F16ToF32(out.dmin) * (out.scales[j] >> 4);
      for (int i = 0; i < 16; ++i) {
        L[16 * j + i] = static_cast<uint8_t>(std::clamp(NearestInt((x[16 * j + i] + dm) / d), 0, 3));
      }
    }
    PackTwoBits(L, out.qs);
  }
}

// Q3_K (ggml quantize_row_q3_K_ref): each sub-block of 16 by MakeQ3Quants
// on 8 levels, the scales to 6 signed bits against the largest (which
// gets -32), then the levels again against the stored scales.
void QuantizeQ3K(const float* x, BlockQ3_K* y, int64_t n) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    BlockQ3_K& out = y[b];
    float max_scale = 0, amax = 0;
    for (int j = 0; j < kQK_K / 16; ++j) {
      scales[j] = MakeQ3Quants(16, 4, x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    std::memset(out.scales, 0, sizeof out.scales);
    if (max_scale != 0.0f) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < kQK_K / 16; ++j) {
        const int l = std::clamp(NearestInt(iscale * scales[j]), -32, 31) + 32;
        if (j < 8) {
          out.scales[j] = static_cast<uint8_t>(l & 0xF);
        } else {
          out.scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
        }
        out.scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      out.d = F32ToF16(1 / iscale);
    } else {
      out.d = F32ToF16(0.0f);
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = F16ToF32(out.d) * Q3KScale(out.scales, j);
      if (d == 0.0f) continue;
      for (int i = 0; i < 16; ++i) {
        L[16 * j + i] = static_cast<int8_t>(std::clamp(NearestInt(x[16 * j + i] / d), -4, 3) + 4);
      }
    }
    // the third bit of value i into bit i / 32 of hmask[i % 32]
    std::memset(out.hmask, 0, sizeof out.hmask);
    uint8_t low[kQK_K];
    for (int i = 0; i < kQK_K; ++i) {
      if (L[i] > 3) out.hmask[i % 32] |= static_cast<uint8_t>(1 << (i / 32));
      low[i] = static_cast<uint8_t>(L[i] & 3);
    }
    PackTwoBits(low, out.qs);
  }
}

// The index of the kIQ4NLValues entry nearest v (ggml best_index_int8).
int NearestIQ4NL(float v) {
  if (!(v > kIQ4NLValues[0])) return std::isnan(v) ? 8 : 0;
  if (v >= kIQ4NLValues[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    (v < kIQ4NLValues[mid] ? hi : lo) = mid;
  }
  return v - kIQ4NLValues[hi - 1] < kIQ4NLValues[hi] - v ? hi - 1 : hi;
}

// The scale of 32 values on IQ4_NL's grid (ggml quantize_row_iq4_nl_impl
// without an importance matrix): the grid's end at the value of largest
// magnitude, then 15 scales around it (of either sign), keeping the one that
// maximizes sum(w x q)^2 / sum(w q^2) with w = x^2; returns the
// least-squares d for those indices (0 for an all-zero block).
float IQ4BlockScale(const float* x) {
  constexpr int kTries = 7;
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax < 1e-15f) return 0.0f;  // (ggml GROUP_MAX_EPS)
  auto fit = [&](float id, float* sumqx, float* sumq2) {
    *sumqx = *sumq2 = 0;
    for (int j = 0; j < 32; ++j) {
      const float q = kIQ4NLValues[NearestIQ4NL(id * x[j])], w = x[j] * x[j];
      *sumqx += w * q * x[j];
      *sumq2 += w * q * q;
    }
  };
  float sumqx, sumq2;
  fit(-kIQ4NLValues[0] / max, &sumqx, &sumq2);
  float d = sumqx / sumq2;
  float best = d * sumqx;
  for (int t = -kTries; t <= kTries; ++t) {
    fit((t + kIQ4NLValues[0]) / max, &sumqx, &sumq2);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

// 32 values' nearest grid indices at scale d, packed as IQ4_NL's nibbles.
void PackIQ4Block(const float* x, float d, uint8_t* qs) {
  const float id = d != 0.0f ? 1 / d : 0.0f;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>(NearestIQ4NL(id * x[j]) | NearestIQ4NL(id * x[j + 16]) << 4);
  }
}

// IQ4_NL (ggml quantize_iq4_nl without an importance matrix).
void QuantizeIQ4NL(const float* src, BlockIQ4_NL* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK4_NL; ++i) {
    const float d = IQ4BlockScale(src + 32 * i);
    y[i].d = F32ToF16(d);
    PackIQ4Block(src + 32 * i, d, y[i].qs);
  }
}

// IQ4_XS (ggml quantize_iq4_xs without an importance matrix): each
// sub-block's scale as IQ4_NL's, then 6-bit levels against the super-block
// scale d = -(the scale of largest magnitude) / 32, and each sub-block's
// indices again against d * level.
void QuantizeIQ4XS(const float* src, BlockIQ4_XS* y, int64_t n) {
  float scales[kQK_K / 32];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + kQK_K * i;
    BlockIQ4_XS& out = y[i];
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      scales[ib] = IQ4BlockScale(x + 32 * ib);
      if (std::fabs(scales[ib]) > amax_scale) {
        amax_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    const float d = -max_scale / 32;
    out.d = F32ToF16(d);
    const float id = d != 0.0f ? 1 / d : 0.0f;
    out.scales_h = 0;
    std::memset(out.scales_l, 0, sizeof out.scales_l);
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const int l = std::clamp(NearestInt(id * scales[ib]), -32, 31);
      PackIQ4Block(x + 32 * ib, d * static_cast<float>(l), out.qs + 16 * ib);
      out.scales_l[ib / 2] |= static_cast<uint8_t>(((l + 32) & 0xF) << (4 * (ib % 2)));
      out.scales_h |= static_cast<uint16_t>(((l + 32) >> 4) << (2 * ib));
    }
  }
}

}  // namespace

void QuantizeRow(DType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToF16(src[i]);
      return;
    }
    case DType::kBF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToBF16(src[i]);
      return;
    }
    case DType::kQ8_0: {  // ggml quantize_row_q8_0_ref
      BlockQ8_0* b = static_cast<BlockQ8_0*>(dst);
      for (int64_t i = 0; i < n / kQK8_0; ++i) {
        const float* x = src + i * kQK8_0;
        float amax = 0.0f;
        for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = F32ToF16(d);
        for (int j = 0; j < kQK8_0; ++j) b[i].qs[j] = static_cast<int8_t>(RoundHalfAway(x[j] * id));
      }
      return;
    }
    case DType::kQ4_0:
      QuantizeAbsMax(src, static_cast<BlockQ4_0*>(dst), n);
      return;
    case DType::kQ5_0:
      QuantizeAbsMax(src, static_cast<BlockQ5_0*>(dst), n);
      return;
    case DType::kQ4_1:
      QuantizeMinMax(src, static_cast<BlockQ4_1*>(dst), n);
      return;
    case DType::kQ5_1:
      QuantizeMinMax(src, static_cast<BlockQ5_1*>(dst), n);
      return;
    case DType::kIQ4_NL:
      QuantizeIQ4NL(src, static_cast<BlockIQ4_NL*>(dst), n);
      return;
    case DType::kIQ4_XS:
      QuantizeIQ4XS(src, static_cast<BlockIQ4_XS*>(dst), n);
      return;
    case DType::kQ2_K:
      QuantizeQ2K(src, static_cast<BlockQ2_K*>(dst), n);
      return;
    case DType::kQ3_K:
      QuantizeQ3K(src, static_cast<BlockQ3_K*>(dst), n);
      return;
    case DType::kQ4_K:
      QuantizeQ45K(src, static_cast<BlockQ4_K*>(dst), n);
      return;
    case DType::kQ5_K:
      QuantizeQ45K(src, static_cast<BlockQ5_K*>(dst), n);
      return;
    case DType::kQ6_K:
      QuantizeQ6K(src, static_cast<BlockQ6_K*>(dst), n);
      return;
    default:
      std::memset(dst, 0, RowBytes(type, n).value_or(0));
      return;
  }
}

}  // namespace yuan

// Element-wise and row-wise ops of the transformer block, f32 in and out.
//
// Each op has a portable scalar version (namespace ops_scalar, the reference)
// and, where the CPU has AVX2, FMA and F16C, a vectorised one chosen at run
// time; the plain names dispatch. tests/cpu/ops_test.cpp holds each fast path
// to its reference on random inputs.
#pragma once

#include <cstdint>

namespace yuan {

// Whether this CPU runs the AVX2 + FMA + F16C paths (checked once).
bool CpuHasAvx2Fma16c();

// out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]   (w may be null: no gain)
// The mean of squares is summed in double; out may alias x.
void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* out);

// Rotary position embedding of one head vector in place.
//   theta_i = pos * freq_scale * base^(-2i / n_rot) / freq_factors[i],  i < n_rot / 2
// neox == false rotates adjacent pairs (x[2i], x[2i+1]) (llama GGUF layout);
// neox == true rotates (x[i], x[i + n_rot/2]) (HF rotate_half layout).
// `freq_factors` (n_rot / 2 values, may be null: all 1) divide each pair's
// frequency, as ggml_rope_ext's freq_factors do (Llama 3 rope scaling).
void Rope(float* x, int64_t n_rot, int64_t pos, float base, float freq_scale, bool neox,
          const float* freq_factors = nullptr);

// The same rotation from a precomputed table: cos_sin holds (cos theta_i,
// sin theta_i) for i < n_rot / 2, as RopeTable writes it. Bit-identical to
// Rope, without a pow, sin and cos per pair: a forward pass fills the table
// once per position and reuses it for every head of every layer.
void RopeTable(int64_t n_rot, int64_t pos, float base, float freq_scale,
               const float* freq_factors, float* cos_sin);
void RopeApply(float* x, int64_t n_rot, bool neox, const float* cos_sin);

// In-place softmax over n values; returns nothing, max-subtracted for range.
void Softmax(float* x, int64_t n);

// gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g))
void SiluMul(float* gate, const float* up, int64_t n);

// y[i] += x[i]
void AddInPlace(float* y, const float* x, int64_t n);

// y[i] = exp(x[i]); exp(-inf) = 0. The vector path is within 2 ulp of expf
// and flushes results below FLT_MIN (x < -87.34) to 0.
void ExpArray(const float* x, float* y, int64_t n);

// Rounds n floats to IEEE half (round to nearest even), as F32ToF16 does.
void F32ToF16Row(const float* x, uint16_t* y, int64_t n);

namespace ops_scalar {
void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* out);
void SiluMul(float* gate, const float* up, int64_t n);
void AddInPlace(float* y, const float* x, int64_t n);
void ExpArray(const float* x, float* y, int64_t n);
void F32ToF16Row(const float* x, uint16_t* y, int64_t n);
}  // namespace ops_scalar

}  // namespace yuan

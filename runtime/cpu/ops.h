// Element-wise and row-wise ops of the transformer block, f32 in and out.
#pragma once

#include <cstdint>

namespace yuan {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]   (w may be null: no gain)
void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* out);

// Rotary position embedding of one head vector in place.
//   theta_i = pos * freq_scale * base^(-2i / n_rot) / freq_factors[i],  i < n_rot / 2
// neox == false rotates adjacent pairs (x[2i], x[2i+1]) (llama GGUF layout);
// neox == true rotates (x[i], x[i + n_rot/2]) (HF rotate_half layout).
// `freq_factors` (n_rot / 2 values, may be null: all 1) divide each pair's
// frequency, as ggml_rope_ext's freq_factors do (Llama 3 rope scaling).
void Rope(float* x, int64_t n_rot, int64_t pos, float base, float freq_scale, bool neox,
          const float* freq_factors = nullptr);

// In-place softmax over n values; returns nothing, max-subtracted for range.
void Softmax(float* x, int64_t n);

// gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g))
void SiluMul(float* gate, const float* up, int64_t n);

// y[i] += x[i]
void AddInPlace(float* y, const float* x, int64_t n);

}  // namespace yuan

#include "runtime/cpu/ops.h"

#include <cmath>

namespace yuan {

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

void Rope(float* x, int64_t n_rot, int64_t pos, float base, float freq_scale, bool neox,
          const float* freq_factors) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    double theta = static_cast<double>(pos) * freq_scale *
                   std::pow(static_cast<double>(base), -2.0 * i / static_cast<double>(n_rot));
    if (freq_factors != nullptr) theta /= freq_factors[i];
    const float c = static_cast<float>(std::cos(theta));
    const float s = static_cast<float>(std::sin(theta));
    float* a = neox ? &x[i] : &x[2 * i];
    float* b = neox ? &x[i + half] : &x[2 * i + 1];
    const float x0 = *a, x1 = *b;
    *a = x0 * c - x1 * s;
    *b = x0 * s + x1 * c;
  }
}

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

void SiluMul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void AddInPlace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace yuan

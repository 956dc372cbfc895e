// Every kernel path against its scalar reference on random inputs.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "runtime/cpu/matmul.h"
#include "runtime/cpu/ops.h"

namespace yuan {
namespace {

std::vector<uint8_t> Quantized(DType type, const std::vector<float>& v, int64_t cols) {
  const uint64_t row_bytes = *RowBytes(type, cols);
  const int64_t rows = static_cast<int64_t>(v.size()) / cols;
  std::vector<uint8_t> q(row_bytes * rows);
  for (int64_t r = 0; r < rows; ++r) QuantizeRow(type, &v[r * cols], &q[r * row_bytes], cols);
  return q;
}

TEST_CASE("DotRow agrees with the dequantize-then-f32 reference", "[cpu]") {
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    for (int64_t n : {32, 64, 256, 4096}) {
      INFO(DTypeName(type) << " n=" << n);
      std::vector<float> w(n), x(n);
      for (auto& v : w) v = nd(rng);
      for (auto& v : x) v = nd(rng);
      auto q = Quantized(type, w, n);
      const float fast = DotRow(type, q.data(), x.data(), n);
      const float ref = DotRowReference(type, q.data(), x.data(), n);
      // f32 accumulation of n products of O(1) terms: error ~ sqrt(n) ulp-ish.
      CHECK(std::isfinite(fast));
      CHECK(fast == Approx(ref).margin(1e-4 * std::sqrt(static_cast<double>(n))));
    }
  }
}

TEST_CASE("MatMul matches per-row dots, for one and many tokens, any thread count", "[cpu]") {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t rows = 67, cols = 128;  // rows not a multiple of the grain
  for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0, DType::kQ4_0}) {
    INFO(DTypeName(type));
    std::vector<float> w(rows * cols);
    for (auto& v : w) v = nd(rng);
    auto q = Quantized(type, w, cols);
    MatRef m{type, rows, cols, q.data(), *RowBytes(type, cols)};
    for (int64_t T : {1, 5}) {
      std::vector<float> x(T * cols);
      for (auto& v : x) v = nd(rng);
      std::vector<float> y1(T * rows), y3(T * rows);
      ThreadPool p1(1), p3(3);
      MatMul(m, x.data(), T, y1.data(), &p1);
      MatMul(m, x.data(), T, y3.data(), &p3);
      CHECK(y1 == y3);  // bit-identical across thread counts
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
          const float ref = DotRowReference(type, q.data() + r * m.row_bytes, &x[t * cols], cols);
          CHECK(y1[t * rows + r] == Approx(ref).margin(1e-3));
        }
      }
    }
  }
}

TEST_CASE("RmsNorm, Softmax, SiluMul and Rope follow their formulas", "[cpu]") {
  std::vector<float> x = {1.0f, -2.0f, 3.0f, 0.5f}, w = {1.0f, 2.0f, 0.5f, 1.0f}, out(4);
  RmsNorm(x.data(), w.data(), 4, 1e-5f, out.data());
  const double ms = (1 + 4 + 9 + 0.25) / 4.0;
  for (int i = 0; i < 4; ++i) CHECK(out[i] == Approx(x[i] / std::sqrt(ms + 1e-5) * w[i]));

  std::vector<float> s = {1.0f, 2.0f, 3.0f};
  Softmax(s.data(), 3);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  for (int i = 0; i < 3; ++i) CHECK(s[i] == Approx(std::exp(i + 1.0) / z));

  std::vector<float> g = {-1.0f, 0.0f, 2.0f}, u = {2.0f, 3.0f, 0.5f};
  SiluMul(g.data(), u.data(), 3);
  CHECK(g[0] == Approx(-1.0 / (1 + std::exp(1.0)) * 2.0));
  CHECK(g[1] == Approx(0.0));
  CHECK(g[2] == Approx(2.0 / (1 + std::exp(-2.0)) * 0.5));

  // Rope: pair i rotates by pos * base^(-2i/d); norms are preserved.
  std::vector<float> a = {1, 0, 1, 0, 0, 1, 0, 1}, b = a;
  Rope(a.data(), 8, 3, 10000.0f, 1.0f, /*neox=*/false);
  for (int i = 0; i < 4; ++i) {
    const double th = 3 * std::pow(10000.0, -2.0 * i / 8);
    const double x0 = b[2 * i], x1 = b[2 * i + 1];
    CHECK(a[2 * i] == Approx(x0 * std::cos(th) - x1 * std::sin(th)).margin(1e-6));
    CHECK(a[2 * i + 1] == Approx(x0 * std::sin(th) + x1 * std::cos(th)).margin(1e-6));
  }
  std::vector<float> c = b;
  Rope(c.data(), 8, 3, 10000.0f, 1.0f, /*neox=*/true);
  for (int i = 0; i < 4; ++i) {
    const double th = 3 * std::pow(10000.0, -2.0 * i / 8);
    CHECK(c[i] == Approx(b[i] * std::cos(th) - b[i + 4] * std::sin(th)).margin(1e-6));
    CHECK(c[i + 4] == Approx(b[i] * std::sin(th) + b[i + 4] * std::cos(th)).margin(1e-6));
  }
}

}  // namespace
}  // namespace yuan

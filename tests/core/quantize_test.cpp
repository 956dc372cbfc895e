// The quantizers (the k-quants Q2_K..Q6_K and the 32-value Q4_0, Q4_1,
// Q5_0, Q5_1, IQ4_NL, IQ4_XS): error of the expected size on normal data, exact on
// values the format can represent, and sane on hostile rows.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <iterator>
#include <random>
#include <vector>

#include "runtime/core/dtype.h"

namespace yuan {
namespace {

std::vector<float> RoundTrip(DType type, const std::vector<float>& x) {
  std::vector<uint8_t> q(*RowBytes(type, static_cast<int64_t>(x.size())));
  QuantizeRow(type, x.data(), q.data(), static_cast<int64_t>(x.size()));
  std::vector<float> y(x.size());
  DequantizeRow(type, q.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

// rms(y - x) / rms(x) over [begin, end).
double RelRmse(const std::vector<float>& x, const std::vector<float>& y, size_t begin = 0,
               size_t end = 0) {
  if (end == 0) end = x.size();
  double err = 0, ref = 0;
  for (size_t i = begin; i < end; ++i) {
    err += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
    ref += static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(err / ref);
}

std::vector<float> Normal(size_t n, float stddev, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, stddev);
  std::vector<float> x(n);
  for (auto& v : x) v = nd(rng);
  return x;
}

TEST_CASE("k-quants on normal data have the error their bit widths predict", "[core]") {
  // A uniform quantizer with step s has rms error s / sqrt(12). Q6_K's step
  // is about amax/32 of a 16-value sub-block (amax ~ 1.8 sigma): ~0.016
  // sigma. Q4_K's is (max - min)/15 of a 32-value sub-block (~4.1 sigma),
  // ~0.08 sigma before its least-squares refinement. Q4_0 (amax/8 per 32)
  // is the baseline Q4_K must beat; Q5_0 (amax/16) has half its error. Q5_K
  // has twice Q4_K's levels on the same sub-blocks: about half its error
  // (~0.04 sigma before refinement).
  for (float stddev : {1.0f, 0.02f}) {
    const std::vector<float> x = Normal(256 * 64, stddev, 11);
    const double q6 = RelRmse(x, RoundTrip(DType::kQ6_K, x));
    const double q5k = RelRmse(x, RoundTrip(DType::kQ5_K, x));
    const double q4k = RelRmse(x, RoundTrip(DType::kQ4_K, x));
    const double q40 = RelRmse(x, RoundTrip(DType::kQ4_0, x));
    const double q50 = RelRmse(x, RoundTrip(DType::kQ5_0, x));
    INFO("stddev " << stddev << ": q6_K " << q6 << ", q5_K " << q5k << ", q4_K " << q4k << ", q4_0 " << q40
                   << ", q5_0 " << q50);
    // Q5_0: Q4_0's block scale (amax / 16) with twice its levels, half its error
    CHECK(q50 * 1.7 < q40);
    CHECK(q50 * 2.3 > q40);
    // Q4_1: the block's (max - min) / 15 (~0.27 sigma per step for 32
    // normal values): ~0.079 sigma; Q5_1 the same range in 31 steps
    const double q41 = RelRmse(x, RoundTrip(DType::kQ4_1, x));
    const double q51 = RelRmse(x, RoundTrip(DType::kQ5_1, x));
    INFO("q4_1 " << q41 << ", q5_1 " << q51);
    CHECK(q41 > 0.07);
    CHECK(q41 < 0.09);
    CHECK(q51 * 1.8 < q41);
    CHECK(q51 * 2.3 > q41);
    CHECK(q6 > 0.008);
    CHECK(q6 < 0.025);
    CHECK(q5k > 0.02);
    CHECK(q5k < 0.045);
    CHECK(q4k > 0.04);
    CHECK(q4k < 0.09);
    CHECK(q4k < q40);
    CHECK(q5k * 1.7 < q4k);
    CHECK(q6 * 1.5 < q5k);
    CHECK(q6 * 3 < q4k);
    // Q3_K: 8 levels on a 16-value sub-block's amax (~1.8 sigma), a step of
    // ~0.45 sigma: ~0.13 sigma, more where values on the side opposite
    // the amax pass the grid's +3 (measured: 0.151). Q2_K: 4 levels on its
    // (max - min) (~3.5 sigma), a step of ~1.2 sigma: ~0.34 sigma before.
    // IQ4_NL: Q4_0's block scale on a grid denser near zero, where most
    // normal values are: between Q4_0 and Q5_0.
    const double q3k = RelRmse(x, RoundTrip(DType::kQ3_K, x));
    const double q2k = RelRmse(x, RoundTrip(DType::kQ2_K, x));
    const double iq4 = RelRmse(x, RoundTrip(DType::kIQ4_NL, x));
    // IQ4_XS: IQ4_NL's blocks with their scales on a 6-bit grid, a little more
    const double iq4xs = RelRmse(x, RoundTrip(DType::kIQ4_XS, x));
    INFO("q3_K " << q3k << ", q2_K " << q2k << ", iq4_nl " << iq4 << ", iq4_xs " << iq4xs);
    CHECK(iq4xs >= iq4 * 0.99);
    CHECK(iq4xs < iq4 * 1.1);
    CHECK(q3k > 0.07);
    CHECK(q3k < 0.17);
    CHECK(q2k > 0.2);
    CHECK(q2k < 0.36);
    CHECK(q4k * 1.3 < q3k);
    CHECK(q3k * 1.6 < q2k);
    CHECK(iq4 < q40);
    CHECK(iq4 > q50);
  }
}

TEST_CASE("Q2_K and Q3_K reproduce a row they can represent exactly", "[core]") {
  // Q2_K: x = d * sc[j] * q - dmin * m[j] with q in [0, 3] and 4-bit sc,
  // m, each sub-block holding a 0 and a 3 and the largest sc and m 15.
  // Q3_K: x = d * sc[j] * q with q in [-4, 3] and sc in [-32, 31], a -4 in
  // every sub-block and -32 the scale of largest magnitude. The
  // quantizers' starting grids then land on the stored ones.
  std::mt19937 rng(13);
  const float d = F16ToF32(F32ToF16(0.0013f)), dmin = F16ToF32(F32ToF16(0.0009f));
  std::vector<float> x2(2 * kQK_K), x3(2 * kQK_K);
  std::uniform_int_distribution<int> q2d(0, 3), s2d(1, 15), m2d(0, 15), q3d(-4, 3), s3d(-31, 31);
  for (int j = 0; j < 2 * kQK_K / 16; ++j) {
    const int sc2 = j % 16 == 4 ? 15 : s2d(rng), m2 = j % 16 == 9 ? 15 : m2d(rng);
    int sc3 = j % 16 == 7 ? -32 : s3d(rng);
    if (sc3 == 0) sc3 = 1;
    for (int i = 0; i < 16; ++i) {
      const int q2 = i == 2 ? 0 : i == 11 ? 3 : q2d(rng);
      x2[16 * j + i] = d * static_cast<float>(sc2) * static_cast<float>(q2) - dmin * static_cast<float>(m2);
      const int q3 = i == 5 ? -4 : q3d(rng);
      x3[16 * j + i] = d * static_cast<float>(sc3) * static_cast<float>(q3);
    }
  }
  const std::vector<float> y2 = RoundTrip(DType::kQ2_K, x2), y3 = RoundTrip(DType::kQ3_K, x3);
  for (size_t i = 0; i < x2.size(); ++i) {
    INFO("element " << i);
    CHECK(std::fabs(y2[i] - x2[i]) <= 1e-5f * (std::fabs(x2[i]) + d));
    CHECK(std::fabs(y3[i] - x3[i]) <= 1e-5f * (std::fabs(x3[i]) + d));
  }
}

TEST_CASE("Q6_K reproduces a row it can represent exactly", "[core]") {
  // x = d * sc[j] * q with q in [-32, 31], d an f16 value, one sub-block
  // scale at -128 (so d is what the quantizer must pick) and a q = -32 in
  // every sub-block (so its largest magnitude pins the scale).
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> qd(-32, 31), scd(-127, 127);
  const float d = F16ToF32(F32ToF16(0.00037f));
  std::vector<float> x(2 * kQK_K);
  for (int b = 0; b < 2; ++b) {
    for (int j = 0; j < 16; ++j) {
      int sc = j == 5 ? -128 : scd(rng);
      if (sc == 0) sc = 1;
      for (int i = 0; i < 16; ++i) {
        const int q = i == (j % 16) ? -32 : qd(rng);
        x[b * kQK_K + 16 * j + i] = d * static_cast<float>(sc) * static_cast<float>(q);
      }
    }
  }
  const std::vector<float> y = RoundTrip(DType::kQ6_K, x);
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("element " << i);
    CHECK(std::fabs(y[i] - x[i]) <= 1e-6f * std::fabs(x[i]));
  }
}

TEST_CASE("Q4_K and Q5_K reproduce a row they can represent exactly", "[core]") {
  // x = d * sc[j] * q - dmin * m[j] with q in [0, 15] (Q4_K) or [0, 31]
  // (Q5_K) and 6-bit sc, m; each sub-block holds a 0 and the top level, and
  // the largest sc and m are 63, so the quantizer's range-based start lands
  // on the stored grid.
  for (DType type : {DType::kQ4_K, DType::kQ5_K}) {
    INFO(DTypeName(type));
    const int top = type == DType::kQ5_K ? 31 : 15;
    std::mt19937 rng(9);
    std::uniform_int_distribution<int> qd(0, top), sd(1, 63), md(0, 63);
    const float d = F16ToF32(F32ToF16(0.0011f));
    const float dmin = F16ToF32(F32ToF16(0.0007f));
    std::vector<float> x(2 * kQK_K);
    for (int b = 0; b < 2; ++b) {
      for (int j = 0; j < 8; ++j) {
        const int sc = j == 2 ? 63 : sd(rng);
        const int m = j == 6 ? 63 : md(rng);
        const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
        for (int i = 0; i < 32; ++i) {
          const int q = i == 3 ? 0 : i == 17 ? top : qd(rng);
          x[b * kQK_K + 32 * j + i] = d1 * static_cast<float>(q) - m1;  // as DequantizeRow computes it
        }
      }
    }
    const std::vector<float> y = RoundTrip(type, x);
    for (size_t i = 0; i < x.size(); ++i) {
      INFO("element " << i);
      CHECK(std::fabs(y[i] - x[i]) <= 1e-5f * (std::fabs(x[i]) + d));
    }
  }
}

TEST_CASE("k-quants and the 32-value types handle zero rows, an outlier and non-finite values", "[core]") {
  // Per type: half a step of the outlier's grid (5000 over the levels of its
  // sub-block or block), and a bound on the other block's error above the
  // type's error on normal data. (Q4_0 is left out: its outlier's block has
  // steps of 625; under UBSan the non-finite rows check for undefined casts.)
  struct Case {
    DType type;
    float half_step;
    double rmse;
  };
  for (const Case& c : {Case{DType::kQ4_K, 200, 0.09}, Case{DType::kQ5_K, 200, 0.09}, Case{DType::kQ6_K, 200, 0.09},
                        Case{DType::kQ4_1, 200, 0.09}, Case{DType::kQ5_0, 200, 0.09}, Case{DType::kQ5_1, 200, 0.09},
                        Case{DType::kIQ4_NL, 250, 0.09}, Case{DType::kIQ4_XS, 250, 0.09}, Case{DType::kQ3_K, 700, 0.2},
                        Case{DType::kQ2_K, 900, 0.36}}) {
    const DType type = c.type;
    INFO(DTypeName(type));
    // All zeros: exact zeros back, no NaN from 0/0.
    const std::vector<float> zeros(2 * kQK_K, 0.0f);
    for (float v : RoundTrip(type, zeros)) CHECK(v == 0.0f);

    // One huge value: it survives to within a few per cent; its block loses
    // the small values (their scales round to zero against it) but stays
    // finite, and the other block keeps its normal accuracy.
    std::vector<float> x = Normal(2 * kQK_K, 1.0f, 21);
    x[40] = 5000.0f;
    std::vector<float> y = RoundTrip(type, x);
    CHECK(y[40] == Approx(5000.0f).epsilon(0.03));
    for (int i = 0; i < kQK_K; ++i) {
      if (i == 40) continue;
      CHECK(std::isfinite(y[i]));
      CHECK(std::fabs(y[i] - x[i]) < c.half_step);
    }
    CHECK(RelRmse(x, y, kQK_K, 2 * kQK_K) < c.rmse);

    // A non-finite value spoils at most its own block, and does not crash.
    x = Normal(2 * kQK_K, 1.0f, 23);
    x[7] = INFINITY;
    x[8] = NAN;
    y = RoundTrip(type, x);
    CHECK(RelRmse(x, y, kQK_K, 2 * kQK_K) < c.rmse);
  }
}

TEST_CASE("Q8_0 rounds halves away from zero, as ggml's roundf", "[core]") {
  // amax 127 makes d = 1 exactly, so x * id is x and the ties are exact.
  std::vector<float> x(kQK8_0, 0.0f);
  const float in[] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 0.49999997f, -1.5f, 126.5f, 3.4999998f};
  const int want[] = {127, 3, -3, 1, -1, 0, -2, 127, 3};
  std::copy(std::begin(in), std::end(in), x.begin());
  BlockQ8_0 b;
  QuantizeRow(DType::kQ8_0, x.data(), &b, kQK8_0);
  CHECK(F16ToF32(b.d) == 1.0f);
  for (size_t i = 0; i < std::size(want); ++i) {
    INFO("x = " << in[i]);
    CHECK(b.qs[i] == want[i]);
  }
}

}  // namespace
}  // namespace yuan

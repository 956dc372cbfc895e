#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>

#include "runtime/core/dtype.h"

namespace yuan {
namespace {

TEST_CASE("f16 conversion round-trips every half value", "[core]") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      CHECK(std::isnan(F16ToF32(F32ToF16(f))));
      continue;
    }
    INFO("half bits " << h);
    CHECK(F32ToF16(f) == h);
  }
}

TEST_CASE("f16 rounding is to nearest, ties to even", "[core]") {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even -> 1.
  CHECK(F16ToF32(F32ToF16(1.0f + std::ldexp(1.0f, -11))) == 1.0f);
  CHECK(F16ToF32(F32ToF16(1.0f + 3 * std::ldexp(1.0f, -11))) == 1.0f + std::ldexp(1.0f, -9));
  CHECK(F16ToF32(F32ToF16(65520.0f)) == INFINITY);
  CHECK(F16ToF32(F32ToF16(65519.0f)) == 65504.0f);
  CHECK(F16ToF32(F32ToF16(std::ldexp(1.0f, -25))) == 0.0f);          // half of min subnormal: even -> 0
  CHECK(F16ToF32(F32ToF16(std::ldexp(1.5f, -25))) == std::ldexp(1.0f, -24));
  // Against the double-precision definition on random values.
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-70000.0f, 70000.0f);
  for (int i = 0; i < 100000; ++i) {
    const float f = u(rng) * (i % 2 ? 1.0f : 1e-4f);
    const float r = F16ToF32(F32ToF16(f));
    if (std::fabs(f) >= 65520.0f) continue;
    // |r - f| is at most half an f16 ulp at f's magnitude.
    int e;
    std::frexp(std::fabs(f), &e);
    const double ulp = std::ldexp(1.0, std::max(e - 11, -24));
    CHECK(std::fabs(static_cast<double>(r) - f) <= ulp / 2);
  }
}

TEST_CASE("bf16 conversion rounds to nearest even and keeps NaN", "[core]") {
  CHECK(BF16ToF32(F32ToBF16(1.0f)) == 1.0f);
  CHECK(BF16ToF32(F32ToBF16(1.0f + std::ldexp(1.0f, -8))) == 1.0f);  // tie -> even
  CHECK(BF16ToF32(F32ToBF16(1.0f + 3 * std::ldexp(1.0f, -8))) == 1.0f + std::ldexp(1.0f, -6));
  CHECK(std::isnan(BF16ToF32(F32ToBF16(NAN))));
}

TEST_CASE("Q8_0 and Q4_0 reproduce ggml's reference quantizers", "[core]") {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(64), y(64);
  for (auto& v : x) v = nd(rng);
  BlockQ8_0 q8[2];
  QuantizeRow(DType::kQ8_0, x.data(), q8, 64);
  DequantizeRow(DType::kQ8_0, q8, y.data(), 64);
  for (int b = 0; b < 2; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    CHECK(F16ToF32(q8[b].d) == Approx(amax / 127).epsilon(1e-3));
    for (int j = 0; j < 32; ++j) CHECK(std::fabs(y[b * 32 + j] - x[b * 32 + j]) <= amax / 127 * 0.51f);
  }
  BlockQ4_0 q4[2];
  QuantizeRow(DType::kQ4_0, x.data(), q4, 64);
  DequantizeRow(DType::kQ4_0, q4, y.data(), 64);
  for (int b = 0; b < 2; ++b) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(x[b * 32 + j]) > amax) {
        amax = std::fabs(x[b * 32 + j]);
        max = x[b * 32 + j];
      }
    }
    const float d = max / -8;
    CHECK(F16ToF32(q4[b].d) == Approx(d).epsilon(1e-3));
    for (int j = 0; j < 32; ++j) CHECK(std::fabs(y[b * 32 + j] - x[b * 32 + j]) <= std::fabs(d) * 0.51f + 1e-6f);
  }
}

TEST_CASE("type traits and row sizes match ggml", "[core]") {
  CHECK(GetDTypeInfo(2)->type_size == 18);
  CHECK(GetDTypeInfo(12)->type_size == 144);
  CHECK(GetDTypeInfo(14)->type_size == 210);
  CHECK(!GetDTypeInfo(4).has_value());   // removed Q4_2
  CHECK(!GetDTypeInfo(999).has_value());
  CHECK(*RowBytes(DType::kQ4_0, 64) == 36);
  CHECK(!RowBytes(DType::kQ4_0, 33).has_value());
  CHECK(!RowBytes(DType::kF32, int64_t{1} << 62).has_value());  // 2^64 bytes: overflow
}

}  // namespace
}  // namespace yuan

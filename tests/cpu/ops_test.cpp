// The vectorised ops and attention against straightforward references on
// random inputs, including lengths that are not multiples of the vector width.
// On a CPU without AVX2 the dispatching functions are the scalar ones and the
// comparisons hold trivially.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/cpu/attention.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/ops.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

const int64_t kLengths[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 64, 100, 1000, 1027};

std::vector<float> Random(std::mt19937& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = u(rng);
  return v;
}

// |a - b| in units of b's last place (float).
double Ulps(float a, float b) {
  if (a == b) return 0.0;
  const double ulp = std::ldexp(1.0, std::ilogb(b) - 23);
  return std::fabs(static_cast<double>(a) - b) / ulp;
}

TEST_CASE("RmsNorm: the vector path matches the scalar reference and the formula", "[cpu][ops]") {
  std::mt19937 rng(1);
  for (int64_t n : kLengths) {
    INFO("n=" << n);
    const auto x = Random(rng, n, -3.0f, 3.0f);
    const auto w = Random(rng, n, 0.5f, 1.5f);
    for (const float* gain : {w.data(), static_cast<const float*>(nullptr)}) {
      std::vector<float> fast(n), ref(n);
      RmsNorm(x.data(), gain, n, 1e-5f, fast.data());
      ops_scalar::RmsNorm(x.data(), gain, n, 1e-5f, ref.data());
      double ss = 0.0;
      for (float v : x) ss += static_cast<double>(v) * v;
      const double scale = 1.0 / std::sqrt(ss / n + 1e-5);
      for (int64_t i = 0; i < n; ++i) {
        // the sums differ only in their order (in double): at most 1 ulp
        CHECK(Ulps(fast[i], ref[i]) <= 1.0);
        const double want = x[i] * scale * (gain ? gain[i] : 1.0);
        CHECK(fast[i] == Approx(want).epsilon(1e-6).margin(1e-7));
      }
    }
    // in place (out == x), as the q/k norms use it
    std::vector<float> y = x, ref(n);
    RmsNorm(y.data(), w.data(), n, 1e-5f, y.data());
    ops_scalar::RmsNorm(x.data(), w.data(), n, 1e-5f, ref.data());
    for (int64_t i = 0; i < n; ++i) CHECK(Ulps(y[i], ref[i]) <= 1.0);
  }
}

TEST_CASE("SiluMul and ExpArray stay within a few ulp of libm", "[cpu][ops]") {
  std::mt19937 rng(2);
  for (int64_t n : kLengths) {
    INFO("n=" << n);
    const auto g = Random(rng, n, -30.0f, 30.0f);
    const auto u = Random(rng, n, -2.0f, 2.0f);
    std::vector<float> fast = g, ref = g;
    SiluMul(fast.data(), u.data(), n);
    ops_scalar::SiluMul(ref.data(), u.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double want = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
      CHECK(fast[i] == Approx(want).epsilon(1e-6).margin(1e-30));
      CHECK(Ulps(fast[i], ref[i]) <= 4.0);
    }
  }
  // exp over its whole normal range, and the edges
  std::vector<float> x = Random(rng, 100003, -87.0f, 88.0f);
  x.insert(x.end(), {0.0f, -0.0f, 1.0f, -1.0f, 1e-8f, -1e-8f, 88.3f, -87.3f, -88.0f, -100.0f,
                     -INFINITY, 100.0f, INFINITY, std::numeric_limits<float>::quiet_NaN()});
  std::vector<float> y(x.size());
  ExpArray(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("x=" << x[i] << " exp=" << y[i]);
    if (std::isnan(x[i])) {
      CHECK(std::isnan(y[i]));
    } else if (x[i] < -87.34f) {
      // the vector path gives 0 where the result would be subnormal
      CHECK(y[i] >= 0.0f);
      CHECK(y[i] < std::numeric_limits<float>::min());
    } else if (x[i] > 88.38f) {
      CHECK(y[i] == INFINITY);
    } else {
      const double ulps = Ulps(y[i], static_cast<float>(std::exp(static_cast<double>(x[i]))));
      worst = std::max(worst, ulps);
      CHECK(ulps <= 2.0);
    }
  }
  CHECK(y[x.size() - 14] == 1.0f);  // exp(0) is exact
  INFO("worst " << worst << " ulp");
  SUCCEED();
}

TEST_CASE("AddInPlace and F32ToF16Row are exact", "[cpu][ops]") {
  std::mt19937 rng(3);
  for (int64_t n : kLengths) {
    INFO("n=" << n);
    const auto x = Random(rng, n, -10.0f, 10.0f);
    const auto y0 = Random(rng, n, -10.0f, 10.0f);
    std::vector<float> fast = y0, ref = y0;
    AddInPlace(fast.data(), x.data(), n);
    ops_scalar::AddInPlace(ref.data(), x.data(), n);
    CHECK(fast == ref);

    // f16 rounding, including subnormal, overflowing and tie values
    std::vector<float> h = Random(rng, n, -70000.0f, 70000.0f);
    for (int64_t i = 0; i < n; i += 3) h[i] *= 1e-9f;
    if (n > 2) {
      h[1] = 1.0f + 1.0f / 2048.0f;  // a tie: rounds to even (1.0)
      h[2] = 65520.0f;               // rounds up to infinity
    }
    std::vector<uint16_t> a(n), b(n);
    F32ToF16Row(h.data(), a.data(), n);
    for (int64_t i = 0; i < n; ++i) b[i] = F32ToF16(h[i]);
    CHECK(a == b);
  }
}

// The rotation as first written: pow, sin and cos per pair.
void RopeFormula(float* x, int64_t n_rot, int64_t pos, float base, float freq_scale, bool neox,
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

TEST_CASE("RopeTable + RopeApply are bit-identical to the formula", "[cpu][ops]") {
  std::mt19937 rng(4);
  for (int64_t hd : {8, 64, 128}) {
    for (int64_t n_rot : {hd, hd / 2}) {
      const auto ff = Random(rng, n_rot / 2, 1.0f, 8.0f);
      for (bool neox : {false, true}) {
        for (const float* factors : {static_cast<const float*>(nullptr), ff.data()}) {
          for (int64_t pos : {0, 1, 17, 4095, 100000}) {
            INFO("hd=" << hd << " n_rot=" << n_rot << " neox=" << neox << " pos=" << pos);
            const auto x = Random(rng, hd, -2.0f, 2.0f);
            std::vector<float> a = x, b = x, c = x;
            std::vector<float> table(n_rot);
            RopeTable(n_rot, pos, 10000.0f, 0.5f, factors, table.data());
            RopeApply(a.data(), n_rot, neox, table.data());
            RopeFormula(b.data(), n_rot, pos, 10000.0f, 0.5f, neox, factors);
            Rope(c.data(), n_rot, pos, 10000.0f, 0.5f, neox, factors);
            CHECK(a == b);
            CHECK(c == b);
          }
        }
      }
    }
  }
}

// Attention of one head in double: softmax(q . K^T * scale) . V over the
// stored K/V values (q unrounded).
std::vector<double> AttendDouble(const AttentionKv& kv, const float* q, int64_t n_kv) {
  const int64_t hd = kv.head_dim;
  auto at = [&](const void* base, int64_t p, int64_t d) -> double {
    if (kv.type == DType::kF16) return F16ToF32(static_cast<const uint16_t*>(base)[p * kv.row_stride + d]);
    return static_cast<const float*>(base)[p * kv.row_stride + d];
  };
  std::vector<double> s(n_kv);
  double max = -INFINITY;
  for (int64_t p = 0; p < n_kv; ++p) {
    double dot = 0.0;
    for (int64_t d = 0; d < hd; ++d) dot += q[d] * at(kv.k, p, d);
    s[p] = dot * kv.scale;
    max = std::max(max, s[p]);
  }
  double sum = 0.0;
  for (auto& v : s) sum += (v = std::exp(v - max));
  std::vector<double> out(hd, 0.0);
  for (int64_t p = 0; p < n_kv; ++p) {
    for (int64_t d = 0; d < hd; ++d) out[d] += s[p] / sum * at(kv.v, p, d);
  }
  return out;
}

TEST_CASE("AttendGroup matches double-precision softmax attention", "[cpu][attention]") {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (DType type : {DType::kF16, DType::kF32}) {
    for (int64_t hd : {8, 12, 64, 128}) {
      for (int n_q : {1, 3, 4, 9}) {
        for (int64_t n_kv : {1, 5, 64, 65, 300}) {
          INFO(DTypeName(type) << " hd=" << hd << " n_q=" << n_q << " n_kv=" << n_kv);
          const int64_t stride = hd * 3;  // the head is one of several in a cache row
          std::vector<float> kf(n_kv * stride), vf(n_kv * stride);
          // sharp scores (large q.k) and flat ones in the same test
          for (auto& v : kf) v = nd(rng) * (hd == 64 ? 2.0f : 1.0f);
          for (auto& v : vf) v = nd(rng);
          std::vector<uint16_t> kh(kf.size()), vh(vf.size());
          for (size_t i = 0; i < kf.size(); ++i) {
            kh[i] = F32ToF16(kf[i]);
            vh[i] = F32ToF16(vf[i]);
          }
          AttentionKv kv;
          kv.type = type;
          const int64_t col = hd;  // the second head of the row
          kv.k = type == DType::kF16 ? static_cast<const void*>(kh.data() + col) : kf.data() + col;
          kv.v = type == DType::kF16 ? static_cast<const void*>(vh.data() + col) : vf.data() + col;
          kv.row_stride = stride;
          kv.head_dim = hd;
          kv.scale = 1.0f / std::sqrt(static_cast<float>(hd));
          std::vector<float> q(n_q * hd);
          for (auto& v : q) v = nd(rng);

          std::vector<float> scratch(AttentionScratchFloats(n_q, hd));
          std::vector<float> fast(n_q * hd), ref(n_q * hd), one(n_q * hd);
          AttendGroup(kv, q.data(), hd, n_q, n_kv, fast.data(), hd, scratch.data());
          AttendGroupScalar(kv, q.data(), hd, n_q, n_kv, ref.data(), hd, scratch.data());
          for (int j = 0; j < n_q; ++j) {  // each head alone gives the same bits
            AttendGroup(kv, &q[j * hd], hd, 1, n_kv, &one[j * hd], hd, scratch.data());
          }
          CHECK(one == fast);
          // AVX-512 (with that kernel set active) widens the value updates
          // to 16 floats, in the same order per column: the AVX2 bits. The
          // other vector sets against the best (the one `fast` used).
          for (kernels::Isa isa : testing::SupportedIsas()) {
            if (isa == kernels::Isa::kScalar || isa == kernels::BestIsa()) continue;
            testing::IsaScope scope(isa);
            std::vector<float> other(n_q * hd);
            AttendGroup(kv, q.data(), hd, n_q, n_kv, other.data(), hd, scratch.data());
            CHECK(other == fast);
          }

          // f16: q rounded to f16 and the accumulator rounded every step
          // (~2^-11 relative each); f32: float rounding only. Against the
          // scalar reference only exp differs (ExpArray is within 2 ulp of
          // expf), which can move an f16 rounding.
          const double tol = type == DType::kF16 ? 1e-2 : 1e-5;
          const double tol_vs_scalar = type == DType::kF16 ? 4e-3 : 1e-5;
          double worst = 0.0;
          for (int j = 0; j < n_q; ++j) {
            const auto want = AttendDouble(kv, &q[j * hd], n_kv);
            for (int64_t d = 0; d < hd; ++d) {
              const float f = fast[j * hd + d], r = ref[j * hd + d];
              REQUIRE(std::isfinite(f));
              worst = std::max(worst, std::fabs(f - want[d]));
              CHECK(std::fabs(f - want[d]) <= tol);
              CHECK(std::fabs(r - want[d]) <= tol);
              CHECK(std::fabs(f - r) <= tol_vs_scalar);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("AttendTile gives every token the bits it gets alone", "[cpu][attention]") {
  // A prompt's tile of consecutive tokens against the same tokens decoded
  // one at a time (AttendGroup), contiguous and paged, every kernel set.
  std::mt19937 rng(6);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (DType type : {DType::kF16, DType::kF32}) {
    for (int64_t hd : {12, 64}) {
      for (int n_q : {1, 4}) {
        for (int64_t n_kv0 : {1, 63, 100}) {
          for (int n_tok : {1, 7, 16}) {
            for (bool paged : {false, true}) {
              INFO(DTypeName(type) << " hd=" << hd << " n_q=" << n_q << " n_kv0=" << n_kv0
                                   << " n_tok=" << n_tok << " paged=" << paged);
              const int64_t n_pos = n_kv0 + n_tok - 1, stride = hd * 2;
              const int64_t page = 64, n_pages = (n_pos + page - 1) / page;
              // Position p lives in row p % page of physical page order[p / page].
              std::vector<int64_t> order(n_pages);
              for (int64_t i = 0; i < n_pages; ++i) order[i] = paged ? n_pages - 1 - i : i;
              const size_t elem = type == DType::kF16 ? 2 : 4;
              std::vector<uint8_t> kmem(n_pages * page * stride * elem), vmem(kmem.size());
              for (int64_t p = 0; p < n_pos; ++p) {
                for (int64_t d = 0; d < stride; ++d) {
                  const size_t at = (order[p / page] * page + p % page) * stride + d;
                  const float kf = nd(rng) * 2.0f, vf = nd(rng);
                  if (type == DType::kF16) {
                    reinterpret_cast<uint16_t*>(kmem.data())[at] = F32ToF16(kf);
                    reinterpret_cast<uint16_t*>(vmem.data())[at] = F32ToF16(vf);
                  } else {
                    reinterpret_cast<float*>(kmem.data())[at] = kf;
                    reinterpret_cast<float*>(vmem.data())[at] = vf;
                  }
                }
              }
              std::vector<const void*> kp(n_pages), vp(n_pages);
              for (int64_t i = 0; i < n_pages; ++i) {
                kp[i] = kmem.data() + (order[i] * page * stride + hd) * elem;  // the second head
                vp[i] = vmem.data() + (order[i] * page * stride + hd) * elem;
              }
              AttentionKv kv;
              kv.type = type;
              kv.row_stride = stride;
              kv.head_dim = hd;
              kv.scale = 1.0f / std::sqrt(static_cast<float>(hd));
              if (paged) {
                kv.k_pages = kp.data();
                kv.v_pages = vp.data();
                kv.page_size = page;
              } else {
                kv.k = kp[0];
                kv.v = vp[0];
              }
              // q of token i, head j at [i][j][hd]; the outputs likewise
              std::vector<float> q(n_tok * n_q * hd);
              for (auto& x : q) x = nd(rng);
              const int64_t tok = n_q * hd;
              std::vector<float> scratch(AttentionScratchFloats(n_q * n_tok, hd));
              std::vector<float> tile(q.size()), alone(q.size()), ref(q.size());
              for (kernels::Isa isa : testing::SupportedIsas()) {
                testing::IsaScope scope(isa);
                AttendTile(kv, q.data(), hd, tok, n_q, n_tok, n_kv0, tile.data(), hd, tok, scratch.data());
                for (int i = 0; i < n_tok; ++i) {
                  AttendGroup(kv, &q[i * tok], hd, n_q, n_kv0 + i, &alone[i * tok], hd, scratch.data());
                  AttendGroupScalar(kv, &q[i * tok], hd, n_q, n_kv0 + i, &ref[i * tok], hd, scratch.data());
                }
                CHECK(tile == alone);
                // only exp differs from the scalar reference (see above)
                const double tol = type == DType::kF16 ? 4e-3 : 1e-5;
                for (size_t i = 0; i < q.size(); ++i) CHECK(std::fabs(tile[i] - ref[i]) <= tol);
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace yuan

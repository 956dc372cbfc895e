// Every kernel path against its scalar reference on random inputs.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "runtime/cpu/kernels.h"
#include "runtime/cpu/matmul.h"
#include "runtime/cpu/ops.h"
#include "tests/common/test_support.h"

namespace yuan {
namespace {

// Random weights of `type`: float types and the 32-blocks are quantized from
// normal values; k-quant blocks are random bytes with small f16 scales (every
// byte pattern is a valid block, which also exercises extreme sub-scales).
std::vector<uint8_t> RandomWeights(DType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  const uint64_t rb = *RowBytes(type, cols);
  std::vector<uint8_t> q(rb * rows);
  if (type == DType::kQ2_K || type == DType::kQ3_K || type == DType::kQ4_K || type == DType::kQ5_K ||
      type == DType::kQ6_K) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
    for (auto& v : q) v = static_cast<uint8_t>(byte(rng));
    const int64_t nblocks = rows * cols / kQK_K;
    for (int64_t b = 0; b < nblocks; ++b) {
      if (type == DType::kQ2_K) {
        auto* blk = reinterpret_cast<BlockQ2_K*>(q.data()) + b;
        blk->d = F32ToF16(std::fabs(scale(rng)));
        blk->dmin = F32ToF16(std::fabs(scale(rng)));
      } else if (type == DType::kQ3_K) {
        reinterpret_cast<BlockQ3_K*>(q.data())[b].d = F32ToF16(scale(rng));
      } else if (type == DType::kQ4_K) {
        auto* blk = reinterpret_cast<BlockQ4_K*>(q.data()) + b;
        blk->d = F32ToF16(std::fabs(scale(rng)));
        blk->dmin = F32ToF16(std::fabs(scale(rng)));
      } else if (type == DType::kQ5_K) {
        auto* blk = reinterpret_cast<BlockQ5_K*>(q.data()) + b;
        blk->d = F32ToF16(std::fabs(scale(rng)));
        blk->dmin = F32ToF16(std::fabs(scale(rng)));
      } else {
        reinterpret_cast<BlockQ6_K*>(q.data())[b].d = F32ToF16(scale(rng));
      }
    }
    return q;
  }
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> w(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : w) v = nd(rng);
    QuantizeRow(type, w.data(), &q[r * rb], cols);
  }
  return q;
}

std::vector<float> RandomActs(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = nd(rng);
  x[n / 3] = 9.5f;  // an outlier, as real activations have
  return x;
}

using testing::IsaScope;
using testing::SupportedIsas;

constexpr DType kComputeTypes[] = {DType::kF32,    DType::kF16,    DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                                   DType::kQ4_1,   DType::kQ5_0,   DType::kQ5_1, DType::kIQ4_NL, DType::kIQ4_XS,
                                   DType::kQ2_K,   DType::kQ3_K,   DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

TEST_CASE("every kernel path quantizes activations to the same bytes", "[cpu]") {
  std::mt19937 rng(3);
  const int64_t n = 512;
  std::vector<float> x = RandomActs(n, rng);
  std::fill(x.begin() + 256, x.begin() + 288, 0.0f);  // an all-zero block
  const auto& ref = kernels::ScalarKernels();
  std::vector<int8_t> q0(n), q1(n);
  std::vector<float> d0(n / 32), d1(n / 32);
  std::vector<int16_t> s0(n / 16), s1(n / 16);
  for (auto isa : SupportedIsas()) {
    INFO(kernels::IsaName(isa));
    const auto& ks = kernels::GetKernels(isa);
    std::fill(s1.begin(), s1.end(), int16_t{-1});
    ref.quantize_q8_0(x.data(), n, q0.data(), d0.data(), s0.data());
    ks.quantize_q8_0(x.data(), n, q1.data(), d1.data(), s1.data());
    CHECK(q0 == q1);
    CHECK(d0 == d1);
    CHECK(std::equal(s0.begin(), s0.begin() + n / 32, s1.begin()));
    // each block's sum is the sum of its quants
    for (int64_t b = 0; b < n / 32; ++b) {
      int sum = 0;
      for (int i = 0; i < 32; ++i) sum += q1[b * 32 + i];
      CHECK(s1[b] == sum);
    }
    ref.quantize_q8_K(x.data(), n, q0.data(), d0.data(), s0.data());
    ks.quantize_q8_K(x.data(), n, q1.data(), d1.data(), s1.data());
    CHECK(q0 == q1);
    CHECK(std::equal(d0.begin(), d0.begin() + n / 256, d1.begin()));
    CHECK(s0 == s1);
  }
  // The quantization itself: |x - d q| <= d / 2 per element.
  ref.quantize_q8_0(x.data(), n, q0.data(), d0.data(), s0.data());
  for (int64_t i = 0; i < n; ++i) CHECK(std::fabs(x[i] - d0[i / 32] * q0[i]) <= d0[i / 32] * 0.5f + 1e-6f);
}

TEST_CASE("every kernel path agrees with the scalar dequantize reference", "[cpu]") {
  std::mt19937 rng(42);
  const int64_t rows = 37;  // not a multiple of any tile or the row grain
  for (auto isa : SupportedIsas()) {
    IsaScope scope(isa);
    for (DType type : kComputeTypes) {
      for (int64_t cols : {256, 1024}) {
        INFO(kernels::IsaName(isa) << " " << DTypeName(type) << " cols=" << cols);
        auto q = RandomWeights(type, rows, cols, rng);
        MatRef m{type, rows, cols, q.data(), *RowBytes(type, cols)};
        const int64_t T = 7;
        std::vector<float> x = RandomActs(T * cols, rng);
        std::vector<float> y(T * rows);
        ThreadPool pool(1);
        MatMul(m, x.data(), T, y.data(), &pool);

        // The activations the kernels see: quantized like the scalar set does.
        std::vector<float> xs = x;
        const DType act = kernels::ActKind(type);
        if (act != DType::kF32) {
          const int64_t block = act == DType::kQ8_0 ? 32 : 256;
          std::vector<int8_t> qs(cols);
          std::vector<float> d(cols / block);
          std::vector<int16_t> bs(cols / 16);
          for (int64_t t = 0; t < T; ++t) {
            if (act == DType::kQ8_0) {
              kernels::ScalarKernels().quantize_q8_0(&x[t * cols], cols, qs.data(), d.data(), bs.data());
            } else {
              kernels::ScalarKernels().quantize_q8_K(&x[t * cols], cols, qs.data(), d.data(), bs.data());
            }
            for (int64_t i = 0; i < cols; ++i) xs[t * cols + i] = d[i / block] * qs[i];
          }
        }
        std::vector<float> wr(cols);
        for (int64_t t = 0; t < T; ++t) {
          for (int64_t r = 0; r < rows; ++r) {
            DequantizeRow(type, q.data() + r * m.row_bytes, wr.data(), cols);
            double exact = 0, mag = 0, f32_ref = 0, qbound = 0;
            for (int64_t i = 0; i < cols; ++i) {
              exact += static_cast<double>(wr[i]) * xs[t * cols + i];
              f32_ref += static_cast<double>(wr[i]) * x[t * cols + i];
              mag += std::fabs(static_cast<double>(wr[i]) * x[t * cols + i]);
              qbound += std::fabs(wr[i]) * std::fabs(x[t * cols + i] - xs[t * cols + i]);
            }
            const double got = y[t * rows + r];
            // f32 accumulation of the same products: a few ulps of the magnitude
            CHECK(std::fabs(got - exact) <= 2e-6 * mag + 1e-6);
            // against unquantized activations: within the activation rounding
            CHECK(std::fabs(got - f32_ref) <= qbound + 2e-6 * mag + 1e-6);
          }
        }
      }
    }
  }
}

// The x86 Q8_0/Q4_0/Q5_0/IQ4_NL/IQ4_XS batch kernels keep 8 rows in the lanes of a
// register (kernels_x86.h) and round differently from the one-token kernel.
bool BatchMatchesSingleBitwise(kernels::Isa isa, DType type) {
  return isa == kernels::Isa::kScalar || (type != DType::kQ8_0 && type != DType::kQ4_0 && type != DType::kQ5_0 &&
                                           type != DType::kIQ4_NL && type != DType::kIQ4_XS);
}

TEST_CASE("MatMul gives the same bits for any thread count, and batches match single tokens",
          "[cpu]") {
  std::mt19937 rng(7);
  const int64_t rows = 67, cols = 512;
  for (auto isa : SupportedIsas()) {
    IsaScope scope(isa);
    for (DType type : kComputeTypes) {
      INFO(kernels::IsaName(isa) << " " << DTypeName(type));
      auto q = RandomWeights(type, rows, cols, rng);
      MatRef m{type, rows, cols, q.data(), *RowBytes(type, cols)};
      const int64_t T = 21;  // tiles of 4 tokens plus a tail
      std::vector<float> x = RandomActs(T * cols, rng);
      std::vector<float> y1(T * rows), y3(T * rows), one(rows);
      ThreadPool p1(1), p3(3);
      MatMul(m, x.data(), T, y1.data(), &p1);
      MatMul(m, x.data(), T, y3.data(), &p3);
      CHECK(y1 == y3);
      // a few tokens go through other kernels than 21 (the row-major ones
      // where the batch kernels start at 4 or 9 tokens): the same bits
      for (int64_t few : {3, 6}) {
        std::vector<float> yf(few * rows);
        MatMul(m, x.data(), few, yf.data(), &p3);
        if (BatchMatchesSingleBitwise(isa, type)) {
          CHECK(std::equal(yf.begin(), yf.end(), y1.begin()));
        } else {
          for (int64_t i = 0; i < few * rows; ++i) {
            CHECK(std::fabs(yf[i] - y1[i]) <= 1e-5f * (1.0f + std::fabs(y1[i])));
          }
        }
      }
      for (int64_t t = 0; t < T; ++t) {
        MatMul(m, &x[t * cols], 1, one.data(), &p3);
        if (BatchMatchesSingleBitwise(isa, type)) {
          CHECK(std::equal(one.begin(), one.end(), y1.begin() + t * rows));
        } else {
          // the same exact integer block sums, scaled and summed in another order
          for (int64_t r = 0; r < rows; ++r) {
            CHECK(std::fabs(one[r] - y1[t * rows + r]) <= 1e-5f * (1.0f + std::fabs(one[r])));
          }
        }
      }
    }
  }
}

TEST_CASE("weights interleaved by 8 rows give the row-major results", "[cpu]") {
  std::mt19937 rng(5);
  // Decoding reads runs of bands side by side, then the bands left over one
  // at a time: 80 rows (10 bands) make short runs, read two at a time (with
  // a band left over in some of 3 threads' ranges); 8008 rows (2.2-4.2 MiB)
  // runs long enough to read four at a time, with one band left over (one
  // thread; with two, Q8_0).
  const int64_t cols = 512;
  CHECK_FALSE(kernels::CanInterleave8(DType::kQ4_0, 44));
  CHECK_FALSE(kernels::CanInterleave8(DType::kF16, 48));
  for (int64_t rows : {80, 8008}) {
    for (auto isa : SupportedIsas()) {
      IsaScope scope(isa);
      for (DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ5_0, DType::kQ4_1, DType::kQ5_1}) {
        INFO(kernels::IsaName(isa) << " " << DTypeName(type) << " rows=" << rows);
        REQUIRE(kernels::CanInterleave8(type, rows));
        auto q = RandomWeights(type, rows, cols, rng);
        if (type == DType::kQ8_0) {  // the extreme quant -128 must survive |w|
          reinterpret_cast<BlockQ8_0*>(q.data())[3].qs[5] = -128;
        }
        MatRef m{type, rows, cols, q.data(), *RowBytes(type, cols)};
        std::vector<uint8_t> packed(q.size());
        kernels::Interleave8(m, 0, rows / 8, packed.data());
        CHECK(packed != q);
        MatRef mi = m;
        mi.data = packed.data();
        mi.interleaved8 = true;
        {  // a row looked up in either layout (a tied head's embeddings)
          std::vector<float> a(cols), b(cols);
          bool same = true;
          for (int64_t r = 0; r < rows; ++r) {
            MatRow(m, r, a.data());
            MatRow(mi, r, b.data());
            same = same && a == b;
          }
          CHECK(same);
        }
        const int64_t T = 9;
        std::vector<float> x = RandomActs(T * cols, rng);
        std::vector<float> y(T * rows), yi(T * rows), yi3(T * rows), one(rows);
        ThreadPool p1(1), p3(3);
        MatMul(m, x.data(), T, y.data(), &p1);
        MatMul(mi, x.data(), T, yi.data(), &p1);
        MatMul(mi, x.data(), T, yi3.data(), &p3);
        CHECK(yi == yi3);
        for (int64_t i = 0; i < T * rows; ++i) {
          CHECK(std::fabs(yi[i] - y[i]) <= 1e-5f * (1.0f + std::fabs(y[i])));
        }
        ThreadPool p2(2);
        if (type == DType::kQ4_1 || type == DType::kQ5_1) {
          // their bands keep the row-major kernels' arithmetic: the same bits
          CHECK(yi == y);
          for (int64_t t = 0; t < T; t += 4) {
            std::vector<float> row_major(rows);
            MatMul(m, &x[t * cols], 1, row_major.data(), &p2);
            MatMul(mi, &x[t * cols], 1, one.data(), &p2);
            CHECK(one == row_major);
          }
        }
        for (int64_t t = 0; t < T; ++t) {  // decoding and batches: the same bits, any thread count
          for (ThreadPool* p : {&p1, &p2, &p3}) {
            MatMul(mi, &x[t * cols], 1, one.data(), p);
            CHECK(std::equal(one.begin(), one.end(), yi.begin() + t * rows));
          }
        }
        // a few tokens: read from the bands in place as decoding reads them
        // (Q8_0/Q4_0/Q5_0 up to 8 tokens, Q4_1/Q5_1 up to 4), else through
        // the batch kernels' unpacked bands (Q4_1/Q5_1 from 5; the rest at 9,
        // above)
        for (int64_t few : {2, 3, 4, 5, 8}) {
          std::vector<float> yf(few * rows);
          MatMul(mi, x.data(), few, yf.data(), &p2);
          CHECK(std::equal(yf.begin(), yf.end(), yi.begin()));
        }
      }
    }
  }
}

TEST_CASE("decoding gives the same bits at any prefetch distance", "[cpu]") {
  const int64_t before = kernels::DecodePrefetchBytes();
  // whole 64-byte lines from 64 bytes to 16 KiB
  kernels::SetDecodePrefetchBytes(5);
  CHECK(kernels::DecodePrefetchBytes() == 64);
  kernels::SetDecodePrefetchBytes(2100);
  CHECK(kernels::DecodePrefetchBytes() == 2048);
  kernels::SetDecodePrefetchBytes(int64_t{1} << 40);
  CHECK(kernels::DecodePrefetchBytes() == 16384);

  std::mt19937 rng(23);
  const int64_t cols = 512;
  ThreadPool pool(2);
  // 8008 interleaved rows: four prefetching runs per thread; the k-quants'
  // and the other 32-value types' rows in four prefetching runs and the
  // rows left over
  for (DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ6_K, DType::kQ4_K, DType::kQ5_K, DType::kQ4_1,
                     DType::kQ5_0, DType::kQ5_1, DType::kIQ4_NL, DType::kIQ4_XS, DType::kQ2_K, DType::kQ3_K}) {
    const int64_t rows = kernels::CanInterleave8(type, 8008) ? 8008 : 203;
    std::vector<uint8_t> q = RandomWeights(type, rows, cols, rng);
    MatRef m{type, rows, cols, q.data(), *RowBytes(type, cols)};
    std::vector<uint8_t> packed(q.size());
    if (kernels::CanInterleave8(type, rows)) {
      kernels::Interleave8(m, 0, rows / 8, packed.data());
      m.data = packed.data();
      m.interleaved8 = true;
    }
    const std::vector<float> x = RandomActs(cols, rng);
    for (auto isa : SupportedIsas()) {
      IsaScope scope(isa);
      INFO(kernels::IsaName(isa) << " " << DTypeName(type));
      std::vector<float> want(rows), got(rows);
      kernels::SetDecodePrefetchBytes(before);
      MatMul(m, x.data(), 1, want.data(), &pool);
      for (int64_t bytes : {64, 1024, 16384}) {
        kernels::SetDecodePrefetchBytes(bytes);
        MatMul(m, x.data(), 1, got.data(), &pool);
        CHECK(got == want);
      }
    }
  }
  kernels::SetDecodePrefetchBytes(before);
}

// One token's float rows go through their own decoding kernel on x86
// (FloatMicro::Decode: four prefetching runs a thread, then the rows left
// over); each row must still get the bits the batch kernel gives it, here
// with a row length that leaves a tail past the last whole vector.
TEST_CASE("float decoding in runs gives each row the batch kernel's bits", "[cpu]") {
  const int64_t before = kernels::DecodePrefetchBytes();
  std::mt19937 rng(29);
  const int64_t rows = 203, cols = 200;
  const int64_t T = 5;
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16}) {
    auto q = RandomWeights(type, rows, cols, rng);
    MatRef m{type, rows, cols, q.data(), *RowBytes(type, cols)};
    std::vector<float> x = RandomActs(T * cols, rng);
    for (auto isa : SupportedIsas()) {
      IsaScope scope(isa);
      INFO(kernels::IsaName(isa) << " " << DTypeName(type));
      std::vector<float> batch(T * rows), one(rows);
      ThreadPool p1(1), p2(2);
      MatMul(m, x.data(), T, batch.data(), &p1);
      for (ThreadPool* pool : {&p1, &p2}) {
        for (int64_t bytes : {int64_t{64}, before, int64_t{16384}}) {
          kernels::SetDecodePrefetchBytes(bytes);
          for (int64_t t = 0; t < T; ++t) {
            MatMul(m, &x[t * cols], 1, one.data(), pool);
            CHECK(std::equal(one.begin(), one.end(), batch.begin() + t * rows));
          }
        }
      }
    }
  }
  kernels::SetDecodePrefetchBytes(before);
}

// The x86 Q4_K/Q5_K/Q2_K/Q3_K and IQ4_NL/IQ4_XS kernels (AVX2 and AVX-512) sum the
// same exact integers per block and do the same FMAs, so they agree to the
// bit, one token or many (the scalar set too for Q2_K and Q3_K, whose
// reference does the same FMAs).
TEST_CASE("Q4_K, Q5_K, Q2_K, Q3_K, IQ4_NL and IQ4_XS give the same bits with every x86 kernel set", "[cpu]") {
  std::mt19937 rng(31);
  const int64_t rows = 203, cols = 512, T = 6;
  for (DType type : {DType::kQ4_K, DType::kQ5_K, DType::kQ2_K, DType::kQ3_K, DType::kIQ4_NL, DType::kIQ4_XS}) {
    INFO(DTypeName(type));
    auto q = RandomWeights(type, rows, cols, rng);
    MatRef m{type, rows, cols, q.data(), *RowBytes(type, cols)};
    std::vector<float> x = RandomActs(T * cols, rng);
    ThreadPool pool(2);
    std::vector<std::vector<float>> results;
    for (auto isa : SupportedIsas()) {
      if (isa == kernels::Isa::kScalar && type != DType::kQ2_K && type != DType::kQ3_K) continue;
      IsaScope scope(isa);
      std::vector<float> y(T * rows), one(rows);
      MatMul(m, x.data(), T, y.data(), &pool);
      MatMul(m, x.data(), 1, one.data(), &pool);
      y.insert(y.end(), one.begin(), one.end());
      results.push_back(y);
    }
    for (size_t i = 1; i < results.size(); ++i) CHECK(results[i] == results[0]);
  }
}

TEST_CASE("MatMulGroup gives each matrix the bits of its own MatMul", "[cpu]") {
  std::mt19937 rng(13);
  const int64_t cols = 512;
  const int64_t rows[3] = {48, 16, 24};  // units of work span matrix boundaries
  for (auto isa : SupportedIsas()) {
    IsaScope scope(isa);
    for (DType type : kComputeTypes) {
      for (bool interleave : {false, true}) {
        if (interleave && !kernels::CanInterleave8(type, 16)) continue;
        INFO(kernels::IsaName(isa) << " " << DTypeName(type) << (interleave ? " interleaved" : ""));
        std::vector<std::vector<uint8_t>> data;
        MatRef ws[3];
        for (int i = 0; i < 3; ++i) {
          data.push_back(RandomWeights(type, rows[i], cols, rng));
          ws[i] = MatRef{type, rows[i], cols, data[i].data(), *RowBytes(type, cols)};
          if (interleave) {
            std::vector<uint8_t> packed(data[i].size());
            kernels::Interleave8(ws[i], 0, rows[i] / 8, packed.data());
            data[i] = std::move(packed);
            ws[i].data = data[i].data();
            ws[i].interleaved8 = true;
          }
        }
        for (int64_t T : {1, 5}) {
          std::vector<float> x = RandomActs(T * cols, rng);
          for (int threads : {1, 2, 3}) {
            ThreadPool pool(threads);
            std::vector<float> want[3], got[3];
            float* ys[3];
            for (int i = 0; i < 3; ++i) {
              want[i].resize(T * rows[i]);
              got[i].resize(T * rows[i]);
              ys[i] = got[i].data();
              MatMul(ws[i], x.data(), T, want[i].data(), &pool);
            }
            MatMulGroup(ws, ys, 3, x.data(), T, &pool);
            for (int i = 0; i < 3; ++i) CHECK(got[i] == want[i]);
          }
        }
      }
    }
  }
}

TEST_CASE("AMX prompt batches give the AVX-512 kernels' bits", "[cpu][amx]") {
  if (!kernels::IsaSupported(kernels::Isa::kAvx512) || !kernels::AmxUsable()) {
    WARN("no AMX here (or the OS does not grant it): skipped");
    return;
  }
  IsaScope scope(kernels::Isa::kAvx512);
  std::mt19937 rng(17);
  for (DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ5_0}) {
    // an odd and an even number of blocks, and more than one chunk of 32
    for (int64_t cols : {96, 512, 1280}) {
      for (bool interleave : {false, true}) {
        // 32 rows at once (TokensAmx2x2), a group of 16 left over, a band of 8
        const int64_t rows = 56;
        INFO(DTypeName(type) << " cols=" << cols << (interleave ? " interleaved" : ""));
        std::vector<uint8_t> data = RandomWeights(type, rows, cols, rng);
        MatRef w{type, rows, cols, data.data(), *RowBytes(type, cols)};
        std::vector<uint8_t> packed(data.size());
        if (interleave) {
          kernels::Interleave8(w, 0, rows / 8, packed.data());
          w.data = packed.data();
          w.interleaved8 = true;
        }
        for (int64_t T : {16, 17, 35, 64}) {
          std::vector<float> x = RandomActs(T * cols, rng);
          ThreadPool pool(2);
          std::vector<float> with(T * rows), without(T * rows);
          kernels::SetAmxEnabled(true);
          REQUIRE(kernels::AmxEnabled());
          MatMul(w, x.data(), T, with.data(), &pool);
          kernels::SetAmxEnabled(false);
          MatMul(w, x.data(), T, without.data(), &pool);
          kernels::SetAmxEnabled(true);
          CHECK(with == without);
        }
      }
    }
  }
}

TEST_CASE("DotRow uses the active kernels", "[cpu]") {
  std::mt19937 rng(11);
  for (DType type : kComputeTypes) {
    const int64_t n = 512;
    auto q = RandomWeights(type, 1, n, rng);
    std::vector<float> x = RandomActs(n, rng), y(1);
    MatRef m{type, 1, n, q.data(), *RowBytes(type, n)};
    ThreadPool pool(1);
    MatMul(m, x.data(), 1, y.data(), &pool);
    CHECK(DotRow(type, q.data(), x.data(), n) == y[0]);
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

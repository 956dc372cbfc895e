#include "runtime/cpu/matmul.h"

#include <algorithm>
#include <vector>

namespace yuan {
namespace {

// Sum of a[i]*b[i] with 8 independent partial sums (the compiler vectorises
// this; a single accumulator would serialise on add latency).
inline float DotF32(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// x[i] = d * q[i] per 32-element block; the int8 products are summed in a
// block-local float before scaling, as ggml does.
float DotQ8_0(const BlockQ8_0* w, const float* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float* xb = x + b * kQK8_0;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < kQK8_0; i += 8) {
      for (int j = 0; j < 8; ++j) acc[j] += w[b].qs[i + j] * xb[i + j];
    }
    const float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    sum += F16ToF32(w[b].d) * s;
  }
  return sum;
}

float DotQ4_0(const BlockQ4_0* w, const float* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    const float* xb = x + b * kQK4_0;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < kQK4_0 / 2; i += 8) {
      for (int j = 0; j < 8; ++j) {
        const uint8_t q = w[b].qs[i + j];
        acc[j] += ((q & 0x0F) - 8) * xb[i + j] + ((q >> 4) - 8) * xb[i + j + kQK4_0 / 2];
      }
    }
    const float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    sum += F16ToF32(w[b].d) * s;
  }
  return sum;
}

// Types without a fused kernel yet: dequantize 256 elements at a time on the
// stack, then dot.
float DotViaDequant(DType type, const void* row, const float* x, int64_t n) {
  const auto info = *GetDTypeInfo(static_cast<uint32_t>(type));
  const int64_t chunk = std::max<int64_t>(256, info.block_size);
  float buf[256 > kQK_K ? 256 : kQK_K];
  float sum = 0.0f;
  const uint8_t* p = static_cast<const uint8_t*>(row);
  for (int64_t i = 0; i < n; i += chunk) {
    const int64_t m = std::min(chunk, n - i);
    DequantizeRow(type, p + (i / info.block_size) * info.type_size, buf, m);
    sum += DotF32(buf, x + i, m);
  }
  return sum;
}

}  // namespace

float DotRow(DType type, const void* row, const float* x, int64_t n) {
  switch (type) {
    case DType::kF32:
      return DotF32(static_cast<const float*>(row), x, n);
    case DType::kQ8_0:
      return DotQ8_0(static_cast<const BlockQ8_0*>(row), x, n);
    case DType::kQ4_0:
      return DotQ4_0(static_cast<const BlockQ4_0*>(row), x, n);
    default:
      return DotViaDequant(type, row, x, n);
  }
}

float DotRowReference(DType type, const void* row, const float* x, int64_t n) {
  std::vector<float> w(static_cast<size_t>(n));
  DequantizeRow(type, row, w.data(), n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(w[i]) * x[i];
  return static_cast<float>(sum);
}

void MatMul(const MatRef& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  if (n_tokens == 1) {
    auto rows = [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) y[r] = DotRow(w.type, base + r * w.row_bytes, x, w.cols);
    };
    pool->ParallelFor(w.rows, 16, rows);
    return;
  }
  // Several tokens: each thread takes a band of weight rows, dequantizes one
  // row at a time into a private buffer and reuses it for every token, so
  // the weights stream from memory once per batch instead of once per token.
  auto rows = [&](int64_t r0, int64_t r1) {
    std::vector<float> wrow(w.type == DType::kF32 ? 0 : static_cast<size_t>(w.cols));
    for (int64_t r = r0; r < r1; ++r) {
      const float* wr;
      if (w.type == DType::kF32) {
        wr = reinterpret_cast<const float*>(base + r * w.row_bytes);
      } else {
        DequantizeRow(w.type, base + r * w.row_bytes, wrow.data(), w.cols);
        wr = wrow.data();
      }
      for (int64_t t = 0; t < n_tokens; ++t) y[t * w.rows + r] = DotF32(wr, x + t * w.cols, w.cols);
    }
  };
  pool->ParallelFor(w.rows, 16, rows);
}

}  // namespace yuan

#include "trainer/model_ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/cpu/kernels.h"
#include "runtime/cpu/ops.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace yuan::train {

uint64_t Mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

float RmsNormFwd(const float* x, const float* w, int64_t n, float eps, float* out) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  if (w != nullptr) {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale;
  }
  return scale;
}

void RmsNormBwd(const float* x, float r, const float* w, const float* dy, int64_t n, float* dx,
                bool accumulate, float* dw_part) {
  double sgx = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float g = w != nullptr ? dy[i] * w[i] : dy[i];
    sgx += static_cast<double>(g) * x[i];
  }
  const float c = static_cast<float>(sgx * r * r * r / static_cast<double>(n));
  if (dw_part != nullptr) {  // before dx: dx may alias dy
    for (int64_t i = 0; i < n; ++i) dw_part[i] = dy[i] * x[i] * r;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float g = w != nullptr ? dy[i] * w[i] : dy[i];
    const float d = r * g - x[i] * c;
    dx[i] = accumulate ? dx[i] + d : d;
  }
}

void SumRowsInto(const float* part, int64_t T, int64_t n, float* grad, ThreadPool* pool) {
  constexpr int64_t kChunk = 64;
  ParallelEach(pool, (n + kChunk - 1) / kChunk, [&](int64_t b) {
    const int64_t i0 = b * kChunk, i1 = std::min(n, i0 + kChunk);
    for (int64_t t = 0; t < T; ++t) {
      const float* p = part + t * n;
      for (int64_t i = i0; i < i1; ++i) grad[i] += p[i];
    }
  });
}

namespace {

#if defined(__x86_64__)
// dst[c * ldd + r] = src[r * lds + c] for an 8 x 8 block, in registers:
// pairs of rows interleaved, then 4-row groups, then 128-bit halves swapped.
__attribute__((target("avx2"))) void Transpose8x8Avx2(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // columns 0,1 | 4,5 of rows i, i+1
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // columns 2,3 | 6,7
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);      // column 0 | 4 of 4 rows
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);  // column 1 | 5
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);  // column 2 | 6
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);  // column 3 | 7
  }
  for (int c = 0; c < 4; ++c) {
    _mm256_storeu_ps(dst + c * ldd, _mm256_permute2f128_ps(u[c], u[c + 4], 0x20));
    _mm256_storeu_ps(dst + (c + 4) * ldd, _mm256_permute2f128_ps(u[c], u[c + 4], 0x31));
  }
}

const bool kHaveAvx2 = __builtin_cpu_supports("avx2");
#endif

// dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols: whole 8 x 8
// blocks in registers, the edges one at a time.
void TransposeStrided(const float* src, int64_t rows, int64_t cols, int64_t lds, float* dst,
                      int64_t ldd) {
  int64_t r8 = 0, c8 = 0;
#if defined(__x86_64__)
  if (kHaveAvx2) {
    r8 = rows / 8 * 8;
    c8 = cols / 8 * 8;
    for (int64_t r = 0; r < r8; r += 8) {
      for (int64_t c = 0; c < c8; c += 8) Transpose8x8Avx2(src + r * lds + c, lds, dst + c * ldd + r, ldd);
    }
  }
#endif
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = r < r8 ? c8 : 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
  }
}

constexpr int64_t kQueryBlock = 64;

}  // namespace

void AttentionFwd(const AttnShape& a, const float* q, const float* k, const float* v, float* out,
                  float* lse, ThreadPool* pool) {
  const int64_t hd = a.head_dim, q_dim = a.n_head * hd, kv_dim = a.n_head_kv * hd;
  const int64_t group = a.n_head / a.n_head_kv, S = a.seq_len;
  // items (row, KV head): K^T once for the group's query heads
  const int64_t n_items = a.n_rows * a.n_head_kv;
  pool->ParallelFor(n_items, 1, [&](int64_t i0, int64_t i1) {
    const int64_t QB = std::min(kQueryBlock, S);
    std::vector<float> kt(static_cast<size_t>(hd * S)), sc(static_cast<size_t>(QB * S));
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t row = item / a.n_head_kv, g = item % a.n_head_kv;
      const int64_t base = row * S;
      TransposeStrided(k + base * kv_dim + g * hd, S, hd, kv_dim, kt.data(), S);
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        for (int64_t q0 = 0; q0 < S; q0 += QB) {
          const int64_t nq = std::min(QB, S - q0), t0 = base + q0;
          const int64_t ks0 = a.start[t0] - base, nk = q0 + nq - ks0;
          // scores [nq][nk] = Q K^T
          SmallInnerRows({q + t0 * q_dim + h * hd, q_dim, 1, kt.data() + ks0, S, sc.data(), nk, hd, nk, false}, 0, nq);
          for (int64_t i = 0; i < nq; ++i) {
            float* p = &sc[i * nk];
            const int64_t lo = a.start[t0 + i] - base - ks0, hi = q0 + i - ks0;  // keys [lo, hi]
            float mx = -std::numeric_limits<float>::infinity();
            for (int64_t j = lo; j <= hi; ++j) mx = std::max(mx, p[j] * a.scale);
            for (int64_t j = lo; j <= hi; ++j) p[j] = p[j] * a.scale - mx;
            ExpArray(p + lo, p + lo, hi - lo + 1);
            float sum = 0.0f;
            for (int64_t j = lo; j <= hi; ++j) sum += p[j];
            const float inv = 1.0f / sum;
            for (int64_t j = 0; j < nk; ++j) p[j] = j >= lo && j <= hi ? p[j] * inv : 0.0f;
            lse[(t0 + i) * a.n_head + h] = mx + std::log(sum);
          }
          // out = P V, V read in place
          SmallInnerRows({sc.data(), nk, 1, v + (base + ks0) * kv_dim + g * hd, kv_dim,
                          out + t0 * q_dim + h * hd, q_dim, nk, hd, false}, 0, nq);
        }
      }
    }
  });
}

void AttentionBwd(const AttnShape& a, const float* q, const float* k, const float* v,
                  const float* out, const float* lse, const float* dout, float* dq, float* dk,
                  float* dv, ThreadPool* pool) {
  const int64_t hd = a.head_dim, q_dim = a.n_head * hd, kv_dim = a.n_head_kv * hd;
  const int64_t group = a.n_head / a.n_head_kv, S = a.seq_len;
  const int64_t n_items = a.n_rows * a.n_head_kv;
  pool->ParallelFor(n_items, 1, [&](int64_t i0, int64_t i1) {
    const int64_t QB = std::min(kQueryBlock, S);
    std::vector<float> kt(static_cast<size_t>(hd * S)), vt(static_cast<size_t>(hd * S)),
        p(static_cast<size_t>(QB * S)), dp(static_cast<size_t>(QB * S)),
        dk_acc(static_cast<size_t>(S * hd)), dv_acc(static_cast<size_t>(S * hd));
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t row = item / a.n_head_kv, g = item % a.n_head_kv;
      const int64_t base = row * S;
      const float* kg = k + base * kv_dim + g * hd;
      const float* vg = v + base * kv_dim + g * hd;
      TransposeStrided(kg, S, hd, kv_dim, kt.data(), S);
      TransposeStrided(vg, S, hd, kv_dim, vt.data(), S);
      std::fill(dk_acc.begin(), dk_acc.end(), 0.0f);
      std::fill(dv_acc.begin(), dv_acc.end(), 0.0f);
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        for (int64_t q0 = 0; q0 < S; q0 += QB) {
          const int64_t nq = std::min(QB, S - q0), t0 = base + q0;
          const int64_t ks0 = a.start[t0] - base, nk = q0 + nq - ks0;
          const float* qh = q + t0 * q_dim + h * hd;
          const float* doh = dout + t0 * q_dim + h * hd;
          SmallInnerRows({qh, q_dim, 1, kt.data() + ks0, S, p.data(), nk, hd, nk, false}, 0, nq);    // scores
          SmallInnerRows({doh, q_dim, 1, vt.data() + ks0, S, dp.data(), nk, hd, nk, false}, 0, nq);  // dO V^T
          for (int64_t i = 0; i < nq; ++i) {
            const int64_t t = t0 + i;
            const int64_t lo = a.start[t] - base - ks0, hi = q0 + i - ks0;
            const float l = lse[t * a.n_head + h];
            float D = 0.0f;
            for (int64_t d = 0; d < hd; ++d) D += doh[i * q_dim + d] * out[t * q_dim + h * hd + d];
            float* pi = &p[i * nk];
            float* di = &dp[i * nk];
            for (int64_t j = lo; j <= hi; ++j) pi[j] = pi[j] * a.scale - l;
            ExpArray(pi + lo, pi + lo, hi - lo + 1);  // the probabilities, from lse
            for (int64_t j = 0; j < nk; ++j) {
              const float pr = j >= lo && j <= hi ? pi[j] : 0.0f;
              pi[j] = pr;
              di[j] = pr * (di[j] - D) * a.scale;  // scale * dS
            }
          }
          // dQ = scale * dS K, K read in place
          SmallInnerRows({dp.data(), nk, 1, kg + ks0 * kv_dim, kv_dim, dq + t0 * q_dim + h * hd, q_dim, nk, hd, false},
                         0, nq);
          // dK += scale * dS^T Q and dV += P^T dO (dS and P read transposed)
          SmallInnerRows({dp.data(), 1, nk, qh, q_dim, dk_acc.data() + ks0 * hd, hd, nq, hd, true}, 0, nk);
          SmallInnerRows({p.data(), 1, nk, doh, q_dim, dv_acc.data() + ks0 * hd, hd, nq, hd, true}, 0, nk);
        }
      }
      for (int64_t s = 0; s < S; ++s) {
        std::copy(&dk_acc[s * hd], &dk_acc[(s + 1) * hd], dk + (base + s) * kv_dim + g * hd);
        std::copy(&dv_acc[s * hd], &dv_acc[(s + 1) * hd], dv + (base + s) * kv_dim + g * hd);
      }
    }
  });
}


void Transpose(const float* src, int64_t rows, int64_t cols, float* dst, ThreadPool* pool) {
  constexpr int64_t kB = 32;
  const int64_t n_cb = (cols + kB - 1) / kB;
  ParallelEach(pool, n_cb, [&](int64_t cb) {
    const int64_t c0 = cb * kB, c1 = std::min(cols, c0 + kB);
    for (int64_t r0 = 0; r0 < rows; r0 += kB) {
      const int64_t r1 = std::min(rows, r0 + kB);
      int64_t c = c0;
#if defined(__x86_64__)
      if (kHaveAvx2) {  // whole 8 x 8 blocks in registers, the edges below
        const int64_t r8 = r0 + (r1 - r0) / 8 * 8;
        for (; c + 8 <= c1; c += 8) {
          for (int64_t r = r0; r < r8; r += 8) Transpose8x8Avx2(src + r * cols + c, cols, dst + c * rows + r, rows);
          for (int64_t cc = c; cc < c + 8; ++cc) {
            for (int64_t r = r8; r < r1; ++r) dst[cc * rows + r] = src[r * cols + cc];
          }
        }
      }
#endif
      for (; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * cols + c];
      }
    }
  });
}

void AccumulateOuter(const float* dy, int64_t R, const float* x, int64_t C, int64_t T,
                     float* grad, OuterScratch* s, ThreadPool* pool) {
  if (T <= 0) return;
  s->a.resize(static_cast<size_t>(R * T));
  s->b.resize(static_cast<size_t>(C * T));
  s->out.resize(static_cast<size_t>(R * C));
  Transpose(dy, T, R, s->a.data(), pool);  // [R][T]
  Transpose(x, T, C, s->b.data(), pool);   // [C][T]
  const uint64_t rb = static_cast<uint64_t>(T) * sizeof(float);
  if (C >= R) {
    // weight rows = C (threaded over them), tokens = R: out[r][c]
    MatMul(MatRef{DType::kF32, C, T, s->b.data(), rb, false}, s->a.data(), R, s->out.data(), pool);
    AddScaled(s->out.data(), 1.0f, R * C, grad, pool);
  } else {
    // weight rows = R, tokens = C: out[c][r]
    MatMul(MatRef{DType::kF32, R, T, s->a.data(), rb, false}, s->b.data(), C, s->out.data(), pool);
    ParallelEach(pool, R, [&](int64_t r) {
      float* g = grad + r * C;
      for (int64_t c = 0; c < C; ++c) g[c] += s->out[c * R + r];
    });
  }
}

namespace {

// The 4 x 4 tile loops must be unrolled for the accumulators to live in
// registers (rolled, GCC keeps them on the stack).
#define YUAN_TRAIN_UNROLL _Pragma("GCC unroll 16")

// Rows [t0, t1) of y: tiles of 4 rows x 4 vectors of y, then one row at a
// time, and the last columns of each row under a mask; every element a
// chain of K FMAs (a broadcast of x times a row of w), as the scalar form.
#if defined(__x86_64__)
__attribute__((target("avx512f"))) void SmallInner512(const SmallInner& a, int64_t t0, int64_t t1) {
  constexpr int64_t kV = 16, kN = 4 * kV;
  const int64_t K = a.K, N = a.N;
  auto X = [&](int64_t t, int64_t k) { return a.x[t * a.xt + k * a.xk]; };
  int64_t t = t0;
  for (; t + 4 <= t1; t += 4) {
    int64_t n = 0;
    for (; n + kN <= N; n += kN) {
      __m512 acc[4][4];
      YUAN_TRAIN_UNROLL
      for (int i = 0; i < 4; ++i) {
        YUAN_TRAIN_UNROLL
        for (int j = 0; j < 4; ++j) {
          acc[i][j] = a.accumulate ? _mm512_loadu_ps(a.y + (t + i) * a.ldy + n + j * kV) : _mm512_setzero_ps();
        }
      }
      for (int64_t k = 0; k < K; ++k) {
        __m512 wv[4];
        YUAN_TRAIN_UNROLL
        for (int j = 0; j < 4; ++j) wv[j] = _mm512_loadu_ps(a.w + k * a.ldw + n + j * kV);
        YUAN_TRAIN_UNROLL
        for (int i = 0; i < 4; ++i) {
          const __m512 xv = _mm512_set1_ps(X(t + i, k));
          YUAN_TRAIN_UNROLL
          for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
        }
      }
      YUAN_TRAIN_UNROLL
      for (int i = 0; i < 4; ++i) {
        YUAN_TRAIN_UNROLL
        for (int j = 0; j < 4; ++j) _mm512_storeu_ps(a.y + (t + i) * a.ldy + n + j * kV, acc[i][j]);
      }
    }
    for (; n < N; n += kV) {  // 16 columns (or the last few, masked) of the 4 rows
      const __mmask16 m = N - n >= kV ? __mmask16(0xFFFF) : __mmask16((1u << (N - n)) - 1);
      __m512 acc[4];
      YUAN_TRAIN_UNROLL
      for (int i = 0; i < 4; ++i) {
        acc[i] = a.accumulate ? _mm512_maskz_loadu_ps(m, a.y + (t + i) * a.ldy + n) : _mm512_setzero_ps();
      }
      for (int64_t k = 0; k < K; ++k) {
        const __m512 wv = _mm512_maskz_loadu_ps(m, a.w + k * a.ldw + n);
        YUAN_TRAIN_UNROLL
        for (int i = 0; i < 4; ++i) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(X(t + i, k)), wv, acc[i]);
      }
      YUAN_TRAIN_UNROLL
      for (int i = 0; i < 4; ++i) _mm512_mask_storeu_ps(a.y + (t + i) * a.ldy + n, m, acc[i]);
    }
  }
  for (; t < t1; ++t) {  // the rows left over, 16 columns at a time
    for (int64_t n = 0; n < N; n += kV) {
      const __mmask16 m = N - n >= kV ? __mmask16(0xFFFF) : __mmask16((1u << (N - n)) - 1);
      __m512 acc = a.accumulate ? _mm512_maskz_loadu_ps(m, a.y + t * a.ldy + n) : _mm512_setzero_ps();
      for (int64_t k = 0; k < K; ++k) {
        acc = _mm512_fmadd_ps(_mm512_set1_ps(X(t, k)), _mm512_maskz_loadu_ps(m, a.w + k * a.ldw + n), acc);
      }
      _mm512_mask_storeu_ps(a.y + t * a.ldy + n, m, acc);
    }
  }
}

// The AVX2 + FMA form: tiles of 4 rows x 2 vectors of 8 (8 accumulators of
// the 16 registers), the last columns one at a time (an FMA instruction).
__attribute__((target("avx2,fma"))) void SmallInner256(const SmallInner& a, int64_t t0, int64_t t1) {
  constexpr int64_t kV = 8, kN = 2 * kV;
  const int64_t K = a.K, N = a.N;
  auto X = [&](int64_t t, int64_t k) { return a.x[t * a.xt + k * a.xk]; };
  auto tail = [&](int64_t t, int64_t n) {
    float s = a.accumulate ? a.y[t * a.ldy + n] : 0.0f;
    for (int64_t k = 0; k < K; ++k) s = __builtin_fmaf(X(t, k), a.w[k * a.ldw + n], s);
    a.y[t * a.ldy + n] = s;
  };
  int64_t t = t0;
  for (; t + 4 <= t1; t += 4) {
    int64_t n = 0;
    for (; n + kN <= N; n += kN) {
      __m256 acc[4][2];
      YUAN_TRAIN_UNROLL
      for (int i = 0; i < 4; ++i) {
        YUAN_TRAIN_UNROLL
        for (int j = 0; j < 2; ++j) {
          acc[i][j] = a.accumulate ? _mm256_loadu_ps(a.y + (t + i) * a.ldy + n + j * kV) : _mm256_setzero_ps();
        }
      }
      for (int64_t k = 0; k < K; ++k) {
        const __m256 w0 = _mm256_loadu_ps(a.w + k * a.ldw + n), w1 = _mm256_loadu_ps(a.w + k * a.ldw + n + kV);
        YUAN_TRAIN_UNROLL
        for (int i = 0; i < 4; ++i) {
          const __m256 xv = _mm256_set1_ps(X(t + i, k));
          acc[i][0] = _mm256_fmadd_ps(xv, w0, acc[i][0]);
          acc[i][1] = _mm256_fmadd_ps(xv, w1, acc[i][1]);
        }
      }
      YUAN_TRAIN_UNROLL
      for (int i = 0; i < 4; ++i) {
        YUAN_TRAIN_UNROLL
        for (int j = 0; j < 2; ++j) _mm256_storeu_ps(a.y + (t + i) * a.ldy + n + j * kV, acc[i][j]);
      }
    }
    for (int i = 0; i < 4; ++i) {
      for (int64_t nn = n; nn < N; ++nn) tail(t + i, nn);
    }
  }
  for (; t < t1; ++t) {
    int64_t n = 0;
    for (; n + kV <= N; n += kV) {
      __m256 acc = a.accumulate ? _mm256_loadu_ps(a.y + t * a.ldy + n) : _mm256_setzero_ps();
      for (int64_t k = 0; k < K; ++k) {
        acc = _mm256_fmadd_ps(_mm256_set1_ps(X(t, k)), _mm256_loadu_ps(a.w + k * a.ldw + n), acc);
      }
      _mm256_storeu_ps(a.y + t * a.ldy + n, acc);
    }
    for (; n < N; ++n) tail(t, n);
  }
}
#endif

// The same in plain C++ (the same FMA chain per element, so the same bits).
void SmallInnerScalar(const SmallInner& a, int64_t t0, int64_t t1) {
  for (int64_t t = t0; t < t1; ++t) {
    float* yr = a.y + t * a.ldy;
    if (!a.accumulate) std::fill(yr, yr + a.N, 0.0f);
    for (int64_t k = 0; k < a.K; ++k) {
      const float xv = a.x[t * a.xt + k * a.xk];
      const float* wr = a.w + k * a.ldw;
      for (int64_t n = 0; n < a.N; ++n) yr[n] = std::fma(xv, wr[n], yr[n]);
    }
  }
}

}  // namespace

void SmallInnerRows(const SmallInner& a, int64_t t0, int64_t t1) {
#if defined(__x86_64__)
  // the kernel set's choice (YUAN_CPU_ISA, tests) picks the form here too
  const kernels::Isa isa = kernels::ActiveKernels().isa;
  if (isa == kernels::Isa::kAvx512) return SmallInner512(a, t0, t1);
  if (isa == kernels::Isa::kAvx2) return SmallInner256(a, t0, t1);
#endif
  SmallInnerScalar(a, t0, t1);
}

void MulSmallInner(const float* x, int64_t T, int64_t K, const float* w, int64_t N, float* y,
                   bool accumulate, ThreadPool* pool) {
  const SmallInner a{x, K, 1, w, N, y, N, K, N, accumulate};
  // whole tiles of 4 tokens per thread
  ParallelEach(pool, (T + 3) / 4, N * K, [&](int64_t tb) { SmallInnerRows(a, tb * 4, std::min(T, tb * 4 + 4)); });
}

void OuterSmall(const float* a, int64_t R, const float* b, int64_t N, int64_t T, float* out,
                ThreadPool* pool) {
  constexpr int64_t kCols = 256;
  ParallelEach(pool, (N + kCols - 1) / kCols, R * T * kCols, [&](int64_t cb) {
    const int64_t n0 = cb * kCols, n = std::min(N - n0, kCols);
    SmallInnerRows({a, 1, R, b + n0, N, out + n0, N, T, n, false}, 0, R);
  });
}

void AddScaled(const float* x, float s, int64_t n, float* y, ThreadPool* pool) {
  constexpr int64_t kChunk = 1 << 14;
  ParallelEach(pool, (n + kChunk - 1) / kChunk, [&](int64_t b) {
    const int64_t i0 = b * kChunk, i1 = std::min(n, i0 + kChunk);
    if (s == 1.0f) {
      for (int64_t i = i0; i < i1; ++i) y[i] += x[i];
    } else {
      for (int64_t i = i0; i < i1; ++i) y[i] += s * x[i];
    }
  });
}

OwnedMatrix TransposedCopy(const MatRef& w, ThreadPool* pool) {
  const int64_t R = w.rows, C = w.cols;
  std::vector<float> f(static_cast<size_t>(R * C)), t(static_cast<size_t>(R * C));
  ParallelEach(pool, R, [&](int64_t r) {
    DequantizeRow(w.type, static_cast<const uint8_t*>(w.data) + r * w.row_bytes, &f[r * C], C);
  });
  Transpose(f.data(), R, C, t.data(), pool);
  std::vector<float>().swap(f);
  OwnedMatrix m;
  m.rows = C;
  m.cols = R;
  if (w.type == DType::kF16 || w.type == DType::kBF16 || w.type == DType::kF32) {
    m.type = w.type;
  } else {
    m.type = R % kQK8_0 == 0 ? DType::kQ8_0 : DType::kF32;
  }
  m.row_bytes = *RowBytes(m.type, R);
  m.data.resize(static_cast<size_t>(m.row_bytes * C));
  ParallelEach(pool, C, [&](int64_t c) {
    QuantizeRow(m.type, &t[c * R], m.data.data() + c * m.row_bytes, R);
  });
  MaybeInterleave(&m, pool);
  return m;
}

void MaybeInterleave(OwnedMatrix* m, ThreadPool* pool) {
  if (m->interleaved8 || !kernels::CanInterleave8(m->type, m->rows) ||
      kernels::ActiveKernels().isa == kernels::Isa::kScalar) {
    return;
  }
  std::vector<uint8_t> dst(m->data.size());
  const MatRef src = m->ref();
  ParallelEach(pool, m->rows / 8, [&](int64_t b) { kernels::Interleave8(src, b, b + 1, dst.data()); });
  m->data.swap(dst);
  m->interleaved8 = true;
}

OwnedMatrix InterleavedCopy(const MatRef& w, ThreadPool* pool) {
  OwnedMatrix m;
  if (w.interleaved8 || !kernels::CanInterleave8(w.type, w.rows) ||
      kernels::ActiveKernels().isa == kernels::Isa::kScalar) {
    return m;
  }
  m.type = w.type;
  m.rows = w.rows;
  m.cols = w.cols;
  m.row_bytes = w.row_bytes;
  m.data.resize(static_cast<size_t>(w.rows * w.row_bytes));
  ParallelEach(pool, w.rows / 8, [&](int64_t b) { kernels::Interleave8(w, b, b + 1, m.data.data()); });
  m.interleaved8 = true;
  return m;
}

void TransposedF32(const float* w, int64_t rows, int64_t cols, OwnedMatrix* out,
                   ThreadPool* pool) {
  out->type = DType::kF32;
  out->rows = cols;
  out->cols = rows;
  out->row_bytes = static_cast<uint64_t>(rows) * sizeof(float);
  out->data.resize(static_cast<size_t>(rows * cols) * sizeof(float));
  Transpose(w, rows, cols, reinterpret_cast<float*>(out->data.data()), pool);
}

}  // namespace yuan::train

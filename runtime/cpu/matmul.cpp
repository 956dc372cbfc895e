#include "runtime/cpu/matmul.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "runtime/cpu/kernels.h"

namespace yuan {
namespace {

// Rows per unit of work handed to a thread: a multiple of every kernel's
// register tile (2, 3, 4, 6 rows) and of the 8-row bands, so only the last
// band has a ragged edge (a thread's 16-row pairs may end in one 8-row band).
constexpr int64_t kRowGrain = 24;

// Matrices of a MatMulGroup whose part the workers get by value (q, k, v).
constexpr int kMaxByValue = 3;

// The pool's name for this kind of product: weight types and shapes, one
// token or a batch (each kind keeps its own balanced shares).
uint64_t Site(const MatRef* w, int n, int64_t n_tokens) {
  uint64_t site = n_tokens > 1 ? 2 : 1;
  for (int i = 0; i < n; ++i) {
    for (uint64_t v : {static_cast<uint64_t>(w[i].type), static_cast<uint64_t>(w[i].rows),
                       static_cast<uint64_t>(w[i].cols)}) {
      site = site * 0x100000001b3ULL + v;
    }
  }
  return site;
}

// What each worker reads ahead of the product of `w` (n matrices taken as
// one MatMulGroup of n_tokens tokens): in each matrix of the range the pool
// plans to give it, the starts of the runs its decoding kernel will read
// side by side (kernels::kDecodeMinRunBytes). For a prompt batch, whose
// kernels read a range in one pass, this is still the range's start.
void PlanWarm(const MatRef* w, int n, int64_t n_tokens, const ThreadPool& pool,
              std::vector<ThreadPool::WarmSet>* sets) {
  sets->assign(static_cast<size_t>(pool.size()), ThreadPool::WarmSet{});
  int64_t total = 0;
  for (int i = 0; i < n; ++i) total += w[i].rows;
  const uint64_t site = Site(w, n, n_tokens);
  for (int t = 1; t < pool.size(); ++t) {
    int64_t r0, r1;
    pool.PlannedRange(total, kRowGrain, site, t, &r0, &r1);
    ThreadPool::WarmSet& set = (*sets)[t];
    int64_t base = 0;
    for (int i = 0; i < n && base < r1; base += w[i].rows, ++i) {
      const int64_t a = std::max(r0, base) - base, b = std::min(r1, base + w[i].rows) - base;
      if (a >= b) continue;
      const int64_t rb = static_cast<int64_t>(w[i].row_bytes);
      int runs = 1;
      int64_t unit = 1;  // rows a run is a multiple of
      if (w[i].interleaved8) {
        runs = kernels::DecodeBandRuns(b - a, w[i].row_bytes);
        unit = 8;
      } else if (w[i].type == DType::kQ6_K) {
        runs = kernels::kQ6KDecodeRuns;
      } else if (w[i].type == DType::kQ4_K || w[i].type == DType::kQ5_K) {
        runs = kernels::kQ4KDecodeRuns;
      } else if (w[i].type == DType::kQ2_K || w[i].type == DType::kQ3_K) {
        runs = kernels::kQ23KDecodeRuns;
      } else if (w[i].type == DType::kQ4_1 || w[i].type == DType::kQ5_0 || w[i].type == DType::kQ5_1 ||
                 w[i].type == DType::kIQ4_NL || w[i].type == DType::kIQ4_XS) {
        runs = kernels::kLegacyDecodeRuns;
      } else if (w[i].type == DType::kF32 || w[i].type == DType::kF16 || w[i].type == DType::kBF16) {
        runs = kernels::kFloatDecodeRuns;
      }
      const int64_t per = std::max<int64_t>((b - a) / unit / runs, 1) * unit;
      for (int64_t r = a; r < b && set.n < ThreadPool::kMaxWarmStreams; r += per) {
        set.streams[set.n++] = {static_cast<const uint8_t*>(w[i].data) + r * rb, std::min(per, b - r) * rb};
      }
    }
  }
}

// Rows [r0, r1) of the n matrices w taken one after the other (a range may
// span two), into their outputs y.
void GroupRows(const kernels::KernelSet& ks, const MatRef* w, float* const* y, int n, const kernels::Acts& x,
               int64_t r0, int64_t r1) {
  int64_t base = 0;
  for (int i = 0; i < n && base < r1; base += w[i].rows, ++i) {
    const int64_t a = std::max(r0, base), b = std::min(r1, base + w[i].rows);
    if (a < b) ks.matmul_rows(w[i], x, a - base, b - base, y[i], w[i].rows);
  }
}

}  // namespace

void MatRow(const MatRef& w, int64_t r, float* out) {
  const uint8_t* data = static_cast<const uint8_t*>(w.data);
  if (!w.interleaved8) return DequantizeRow(w.type, data + r * w.row_bytes, out, w.cols);
  thread_local std::vector<uint8_t> tls_row;
  tls_row.resize(w.row_bytes);
  kernels::DeinterleaveRow(w, r, tls_row.data());
  DequantizeRow(w.type, tls_row.data(), out, w.cols);
}

void MatMul(const MatRef& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  MatMulGroup(&w, &y, 1, x, n_tokens, pool);
}

void MatMulGroup(const MatRef* w, float* const* y, int n, const float* x, int64_t n_tokens, ThreadPool* pool,
                 const MatRef* next, int n_next) {
  int64_t total = 0;
  bool together = true;
  for (int i = 0; i < n; ++i) {
    total += w[i].rows;
    // One set of activations, and every boundary between matrices on a
    // whole 8-row band (so interleaved bands stay whole). Otherwise
    // separately: e.g. a Q6_K v beside Q4_K q and k meets other activations.
    together = together && w[i].cols == w[0].cols && kernels::ActKind(w[i].type) == kernels::ActKind(w[0].type) &&
               (i == n - 1 || w[i].rows % 8 == 0);
  }
  if (!together) {
    for (int i = 0; i < n; ++i) {
      const bool last = i + 1 == n;
      MatMulGroup(&w[i], &y[i], 1, x, n_tokens, pool, last ? next : nullptr, last ? n_next : 0);
    }
    return;
  }
  const kernels::KernelSet& ks = kernels::ActiveKernels();
  // Buffers reused across calls. Named through a reference so the workers'
  // lambda sees this thread's object, not their own thread_local copies.
  thread_local kernels::Acts tls_acts;
  kernels::Acts& acts = tls_acts;
  acts.kind = kernels::ActKind(w[0].type);
  acts.n_tokens = n_tokens;
  acts.cols = w[0].cols;
  acts.f32 = x;
  kernels::PrepareActs(ks, &acts, pool);
  // Rows of the matrices one after the other; a unit of work may span two.
  // Per row the kernels compute the same for any partition, so the threads'
  // shares can follow their speeds.
  // The threads' shares are kept per kind of product (weight types and
  // shapes; one token or a batch).
  thread_local std::vector<ThreadPool::WarmSet> tls_warm;
  if (n_next > 0) PlanWarm(next, n_next, n_tokens, *pool, &tls_warm);
  const uint64_t site = Site(w, n, n_tokens);
  const ThreadPool::WarmSet* warm = n_next > 0 ? tls_warm.data() : nullptr;
  if (n > kMaxByValue) {
    pool->ParallelForBalanced(
        total, kRowGrain, [&](int64_t r0, int64_t r1) { GroupRows(ks, w, y, n, acts, r0, r1); }, site, warm);
    return;
  }
  // Everything a part needs, by value: the pool copies it into the lines a
  // worker reads when it sees the job (ThreadPool::JobOf), where references
  // would send the worker to this thread's stack and thread-locals, one
  // cross-core read after another before its first weight load. (Against
  // a lambda capturing by reference, held by a std::function on the heap:
  // bench-0.3b tg128 alternating in one process 1.02-1.10x, bench-1b
  // Q4_0 1.00x.)
  struct Part {
    const kernels::KernelSet* ks;
    int n;
    MatRef w[kMaxByValue];
    float* y[kMaxByValue];
    DType kind;
    int64_t n_tokens, cols;
    const float* f32;
    const int8_t* qs;
    const float* d;
    const int16_t* bsums;
    void operator()(int64_t r0, int64_t r1) const {
      kernels::Acts x;  // (its buffers stay empty)
      x.kind = kind;
      x.n_tokens = n_tokens;
      x.cols = cols;
      x.f32 = f32;
      x.qs = qs;
      x.d = d;
      x.bsums = bsums;
      GroupRows(*ks, w, y, n, x, r0, r1);
    }
  };
  static_assert(sizeof(Part) <= ThreadPool::kJobBytes && std::is_trivially_copyable_v<Part>);
  Part part{&ks, n, {}, {}, acts.kind, acts.n_tokens, acts.cols, acts.f32, acts.qs, acts.d, acts.bsums};
  std::copy(w, w + n, part.w);
  std::copy(y, y + n, part.y);
  pool->ParallelForBalanced(total, kRowGrain, part, site, warm);
}

float DotRow(DType type, const void* row, const float* x, int64_t n) {
  MatRef w{type, 1, n, row, *RowBytes(type, n)};
  kernels::Acts acts;
  acts.kind = kernels::ActKind(type);
  acts.n_tokens = 1;
  acts.cols = n;
  acts.f32 = x;
  const kernels::KernelSet& ks = kernels::ActiveKernels();
  kernels::PrepareActs(ks, &acts);
  float y = 0.0f;
  ks.matmul_rows(w, acts, 0, 1, &y, 1);
  return y;
}

float DotRowReference(DType type, const void* row, const float* x, int64_t n) {
  std::vector<float> w(static_cast<size_t>(n));
  DequantizeRow(type, row, w.data(), n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(w[i]) * x[i];
  return static_cast<float>(sum);
}

}  // namespace yuan

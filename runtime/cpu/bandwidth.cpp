#include "runtime/cpu/bandwidth.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <sys/mman.h>

#include "runtime/core/thread_pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define YUAN_BW_X86 1
#endif

namespace yuan {
namespace {

constexpr size_t kLine = 64;

// Reads `streams` consecutive parts of `part` bytes each, advancing through
// all of them together one cache line at a time, so the core keeps that many
// independent sequential streams in flight. Returns a checksum so the loads
// cannot be optimized away.
template <int S>
uint64_t ReadScalar(const uint8_t* base, size_t part) {
  uint64_t acc[S] = {};
  for (size_t off = 0; off < part; off += kLine) {
    for (int s = 0; s < S; ++s) {
      const uint64_t* p = reinterpret_cast<const uint64_t*>(base + s * part + off);
      acc[s] ^= p[0] ^ p[1] ^ p[2] ^ p[3] ^ p[4] ^ p[5] ^ p[6] ^ p[7];
    }
  }
  uint64_t r = 0;
  for (int s = 0; s < S; ++s) r ^= acc[s];
  return r;
}

#ifdef YUAN_BW_X86
template <int S>
__attribute__((target("avx2"))) uint64_t ReadAvx2(const uint8_t* base, size_t part) {
  __m256i acc[S];
  for (int s = 0; s < S; ++s) acc[s] = _mm256_setzero_si256();
  for (size_t off = 0; off < part; off += kLine) {
    for (int s = 0; s < S; ++s) {
      const uint8_t* p = base + s * part + off;
      const __m256i a = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
      const __m256i b = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32));
      acc[s] = _mm256_xor_si256(acc[s], _mm256_xor_si256(a, b));
    }
  }
  __m256i r = acc[0];
  for (int s = 1; s < S; ++s) r = _mm256_xor_si256(r, acc[s]);
  return static_cast<uint64_t>(_mm256_extract_epi64(r, 0) ^ _mm256_extract_epi64(r, 1) ^
                               _mm256_extract_epi64(r, 2) ^ _mm256_extract_epi64(r, 3));
}
#endif

using ReadFn = uint64_t (*)(const uint8_t*, size_t);

// The stream count is a template parameter so the accumulators live in
// registers; other counts round down to a power of two (at most 16).
ReadFn PickReader(bool simd, int streams, int* used) {
  const int s = streams >= 16 ? 16 : streams >= 8 ? 8 : streams >= 4 ? 4 : streams >= 2 ? 2 : 1;
  *used = s;
#ifdef YUAN_BW_X86
  if (simd) {
    switch (s) {
      case 16: return &ReadAvx2<16>;
      case 8: return &ReadAvx2<8>;
      case 4: return &ReadAvx2<4>;
      case 2: return &ReadAvx2<2>;
      default: return &ReadAvx2<1>;
    }
  }
#endif
  switch (s) {
    case 16: return &ReadScalar<16>;
    case 8: return &ReadScalar<8>;
    case 4: return &ReadScalar<4>;
    case 2: return &ReadScalar<2>;
    default: return &ReadScalar<1>;
  }
}

bool HasAvx2() {
#ifdef YUAN_BW_X86
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

}  // namespace

BandwidthResult MeasureReadBandwidth(const BandwidthOptions& o) {
  BandwidthResult result;
  result.simd = HasAvx2();
  const int n_threads = o.pool != nullptr ? o.pool->size() : std::max(1, o.n_threads);
  int streams = 1;
  const ReadFn read = PickReader(result.simd, std::max(1, o.streams), &streams);
  result.streams = streams;

  // Each thread owns `slice` bytes, split into `streams` parts of whole lines.
  const size_t part = o.bytes / n_threads / streams / kLine * kLine;
  if (part == 0) return result;
  const size_t slice = part * streams;
  const size_t total = slice * n_threads;
  // 2 MiB aligned and advised as huge pages: on a virtual machine a TLB miss
  // costs a two-level page walk, which would otherwise cap the probe below
  // what the memory delivers (a higher figure makes the bound stricter).
  // Whether the kernel grants them varies from run to run, which is why the
  // probe can also read memory in place (o.data).
  constexpr size_t kHuge = size_t{2} << 20;
  const bool own = o.data == nullptr;
  uint8_t* buf = const_cast<uint8_t*>(static_cast<const uint8_t*>(o.data));
  if (own) {
    const size_t alloc = (total + kHuge - 1) / kHuge * kHuge;
    buf = static_cast<uint8_t*>(std::aligned_alloc(kHuge, alloc));
    if (buf == nullptr) return result;
#ifdef MADV_HUGEPAGE
    madvise(buf, alloc, MADV_HUGEPAGE);  // a hint; failure only costs speed
#endif
  }

  const int passes = std::max(1, o.passes);
  if (o.pool != nullptr) {  // the pool's threads, one slice each, one job per pass
    std::atomic<uint64_t> sink{0};
    if (own) o.pool->ParallelFor(n_threads, 1, [&](int64_t t, int64_t) { std::memset(buf + t * slice, 1, slice); });
    double best = 0;
    for (int p = 0; p < passes; ++p) {
      const auto t0 = std::chrono::steady_clock::now();
      o.pool->ParallelFor(n_threads, 1, [&](int64_t t, int64_t) {
        sink.fetch_xor(read(buf + t * slice, part), std::memory_order_relaxed);
      });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (s > 0) best = std::max(best, static_cast<double>(total) / s / 1e9);
    }
    if (own) std::free(buf);
    asm volatile("" : : "r"(sink.load()));
    result.gb_per_s = best;
    return result;
  }

  // Workers touch their slice first (so its pages are resident and, on NUMA
  // machines, local), then run one read per pass between two barriers; the
  // main thread times from the first barrier to the second.
  std::barrier start(n_threads + 1), done(n_threads + 1);
  std::atomic<uint64_t> sink{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < n_threads; ++t) {
    workers.emplace_back([&, t] {
      uint8_t* mine = buf + t * slice;
      if (own) std::memset(mine, t + 1, slice);
      done.arrive_and_wait();
      for (int p = 0; p < passes; ++p) {
        start.arrive_and_wait();
        sink.fetch_xor(read(mine, part), std::memory_order_relaxed);
        done.arrive_and_wait();
      }
    });
  }
  done.arrive_and_wait();  // all slices touched
  double best = 0;
  for (int p = 0; p < passes; ++p) {
    const auto t0 = std::chrono::steady_clock::now();
    start.arrive_and_wait();
    done.arrive_and_wait();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0) best = std::max(best, static_cast<double>(total) / s / 1e9);
  }
  for (auto& w : workers) w.join();
  if (own) std::free(buf);
  // Consume the checksum (opaque to the optimizer) so the reads stay.
  asm volatile("" : : "r"(sink.load()));
  result.gb_per_s = best;
  return result;
}

}  // namespace yuan

#include <catch2/catch.hpp>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <utility>
#include <thread>
#include <vector>

#include "runtime/core/thread_pool.h"

namespace yuan {
namespace {

TEST_CASE("SplitRange covers [0, n) exactly once in grain-aligned chunks", "[core]") {
  for (int64_t n : {0, 1, 15, 16, 17, 1000}) {
    for (int64_t grain : {1, 16}) {
      for (int parts : {1, 2, 3, 8}) {
        int64_t expect = 0;
        for (int i = 0; i < parts; ++i) {
          int64_t b, e;
          SplitRange(n, grain, parts, i, &b, &e);
          CHECK(b == expect);
          CHECK(e >= b);
          if (e < n) CHECK(e % grain == 0);
          expect = e;
        }
        CHECK(expect == n);
      }
    }
  }
}

TEST_CASE("ParallelFor runs every index once, from several callers", "[core]") {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(10000);
  auto body = [&] {
    for (int rep = 0; rep < 20; ++rep) {
      pool.ParallelFor(10000, 7, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
    }
  };
  std::thread other(body);
  body();
  other.join();
  for (auto& h : hits) CHECK(h.load() == 40);
}

TEST_CASE("ParallelFor runs each call's own callable, copied or called through a pointer", "[core]") {
  // A small trivially copyable lambda is copied into the pool's job lines at
  // every call (each call must see its own captures, not the previous
  // job's); a larger one, or one holding a std::vector, is called in place.
  ThreadPool pool(3);
  constexpr int64_t n = 1000;
  std::vector<int64_t> sums(n, 0);
  int64_t expected = 0;
  std::array<int64_t, 64> big{};  // 512 bytes by value: more than kJobBytes
  static_assert(sizeof(big) > ThreadPool::kJobBytes);
  for (int64_t rep = 1; rep <= 30; ++rep) {
    big[63] = rep;
    const std::vector<int64_t> vec(3, rep);
    int64_t* out = sums.data();
    pool.ParallelFor(n, 7, [out, rep](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] += rep;
    });
    pool.ParallelFor(n, 7, [out, big](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] += big[63];
    });
    pool.ParallelForBalanced(n, 8, [out, vec](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] += vec[2];
    });
    pool.ParallelForBalanced(n, 8, [out, rep](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] -= 2 * rep;
    });
    expected += rep;
  }
  for (int64_t v : sums) CHECK(v == expected);
}

TEST_CASE("ParallelForBalanced runs every index once in contiguous grain-aligned ranges", "[core]") {
  // 3 threads take their bounds from the job's cache line, 6 from the
  // pool's array (more than kLineThreads).
  const int threads = GENERATE(3, 6);
  ThreadPool pool(threads);
  for (int64_t n : {1, 7, 8, 9, 1000, 4099}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    std::mutex mu;
    std::vector<std::pair<int64_t, int64_t>> ranges;
    pool.ParallelForBalanced(n, 8, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      std::lock_guard<std::mutex> lock(mu);
      ranges.emplace_back(b, e);
    });
    for (auto& h : hits) CHECK(h.load() == 1);
    CHECK(ranges.size() <= static_cast<size_t>(threads));
    for (auto [b, e] : ranges) {
      CHECK(b % 8 == 0);
      if (e < n) CHECK(e % 8 == 0);
    }
  }
}

TEST_CASE("ParallelForBalanced gives a slower thread less work", "[core]") {
  // The calling thread takes twice as long per unit as the worker: the
  // shares should settle near 1/3 and 2/3, where both finish together.
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  auto work = [&](int64_t b, int64_t e) {
    const int per_unit_us = std::this_thread::get_id() == caller ? 2 : 1;
    std::this_thread::sleep_for(std::chrono::microseconds(per_unit_us * (e - b)));
  };
  CHECK(pool.shares()[0] == Approx(0.5));
  for (int i = 0; i < 40; ++i) pool.ParallelForBalanced(3000, 10, work);
  const std::vector<double> shares = pool.shares();
  CHECK(shares[0] + shares[1] == Approx(1.0));
  CHECK(shares[0] == Approx(1.0 / 3).margin(0.06));
  // ParallelFor keeps its even split whatever the shares.
  std::atomic<int64_t> caller_units{0};
  pool.ParallelFor(3000, 10, [&](int64_t b, int64_t e) {
    if (std::this_thread::get_id() == caller) caller_units += e - b;
  });
  CHECK(caller_units.load() == 1500);
}

TEST_CASE("ParallelForBalanced keeps each site's shares apart", "[core]") {
  // On site 1 the caller is the slow one, on site 2 the worker: each site
  // settles on its own split, and an unseen site starts even.
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  auto work = [&](bool caller_slow) {
    return [&, caller_slow](int64_t b, int64_t e) {
      const bool slow = (std::this_thread::get_id() == caller) == caller_slow;
      std::this_thread::sleep_for(std::chrono::microseconds((slow ? 2 : 1) * (e - b)));
    };
  };
  for (int i = 0; i < 40; ++i) {
    pool.ParallelForBalanced(3000, 10, work(true), 1);
    pool.ParallelForBalanced(3000, 10, work(false), 2);
  }
  CHECK(pool.shares(1)[0] == Approx(1.0 / 3).margin(0.06));
  CHECK(pool.shares(2)[0] == Approx(2.0 / 3).margin(0.06));
  CHECK(pool.shares(3)[0] == Approx(0.5));
}

TEST_CASE("PlannedRange names the range each thread then runs", "[core]") {
  ThreadPool pool(3);
  // Uneven shares first: each thread sleeps 1, 2 or 3 us per index.
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> ran;
  auto work = [&](int64_t b, int64_t e) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ran.emplace_back(b, e);
    }
    std::this_thread::sleep_for(std::chrono::microseconds((1 + b % 3) * (e - b)));
  };
  for (int i = 0; i < 10; ++i) pool.ParallelForBalanced(3000, 10, work, 7);
  std::vector<std::pair<int64_t, int64_t>> planned(3);
  for (int i = 0; i < 3; ++i) pool.PlannedRange(3000, 10, 7, i, &planned[i].first, &planned[i].second);
  ran.clear();
  pool.ParallelForBalanced(3000, 10, work, 7);
  std::sort(ran.begin(), ran.end());
  CHECK(ran == planned);
  CHECK(planned[1].second - planned[1].first != 1000);  // the shares did move
  // A call too small to share is the caller's alone.
  int64_t b = -1, e = -1;
  pool.PlannedRange(10, 10, 7, 1, &b, &e);
  CHECK(b == e);
  pool.PlannedRange(10, 10, 7, 0, &b, &e);
  CHECK((b == 0 && e == 10));
}

// Which 4 KiB pages of [p, p + bytes) have been touched: fresh anonymous
// memory without huge pages becomes resident (the zero page) when read.
std::vector<bool> Touched(const uint8_t* p, size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> v(bytes / page);
  REQUIRE(mincore(const_cast<uint8_t*>(p), bytes, v.data()) == 0);
  std::vector<bool> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = (v[i] & 1) != 0;
  return out;
}

TEST_CASE("a worker reads its WarmSet while it waits, up to kMaxWarmBytes", "[core]") {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (page != 4096) {
    WARN("the test counts 4 KiB pages");
    return;
  }
  constexpr size_t kMiB = size_t{1} << 20;
  const size_t bytes = 8 * kMiB;
  void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(map != MAP_FAILED);
  madvise(map, bytes, MADV_NOHUGEPAGE);
  const auto* base = static_cast<const uint8_t*>(map);
  const uint8_t* mine = base;                  // the worker's two streams
  const uint8_t* callers = base + 4 * kMiB;     // the caller's entry: ignored
  const uint8_t* replaced = base + 6 * kMiB;    // a WarmSet the next call replaces
  auto count = [&](const uint8_t* p, size_t n) {
    const std::vector<bool> t = Touched(p, n);
    return static_cast<size_t>(std::count(t.begin(), t.end(), true));
  };
  REQUIRE(count(base, bytes) == 0);

  ThreadPool pool(2);
  const auto noop = [](int64_t, int64_t) {};
  auto wait_for = [&](const uint8_t* p, size_t n, size_t pages) {
    for (int i = 0; i < 2000 && count(p, n) < pages; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // and nothing more
  };
  // A WarmSet holds until the next balanced call, even one the caller runs
  // alone: read after the first call, not after a later job once replaced
  // (the memory made fresh again in between).
  std::vector<ThreadPool::WarmSet> warm(2);
  warm[1].n = 1;
  warm[1].streams[0] = {replaced, static_cast<int64_t>(kMiB)};
  pool.ParallelForBalanced(100, 1, noop, 0, warm.data());
  wait_for(replaced, kMiB, ThreadPool::kMaxWarmBytes / page);
  CHECK(count(replaced, kMiB) == ThreadPool::kMaxWarmBytes / page);
  pool.ParallelForBalanced(1, 1, noop);
  REQUIRE(mmap(const_cast<uint8_t*>(replaced), kMiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
               -1, 0) == replaced);
  madvise(const_cast<uint8_t*>(replaced), kMiB, MADV_NOHUGEPAGE);
  pool.ParallelFor(100, 1, noop);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(count(replaced, kMiB) == 0);

  warm[0].n = 1;
  warm[0].streams[0] = {callers, static_cast<int64_t>(kMiB)};
  warm[1].n = 2;
  warm[1].streams[0] = {mine, static_cast<int64_t>(2 * kMiB)};
  warm[1].streams[1] = {mine + 2 * kMiB, 64 << 10};  // shorter than its half
  pool.ParallelForBalanced(100, 1, noop, 0, warm.data());
  // Each stream gets half of kMaxWarmBytes; the second is read in full.
  const size_t first = ThreadPool::kMaxWarmBytes / 2 / page, second = (64 << 10) / page;
  wait_for(mine, 4 * kMiB, first + second);
  const std::vector<bool> t = Touched(mine, 4 * kMiB);
  for (size_t i = 0; i < t.size(); ++i) {
    const bool expected = i < first || (i >= 2 * kMiB / page && i < 2 * kMiB / page + second);
    if (t[i] != expected) FAIL_CHECK("page " << i << " touched: " << t[i]);
  }
  CHECK(count(callers, kMiB) == 0);
  munmap(map, bytes);
}

TEST_CASE("an idle pool does not spin", "[core]") {
  ThreadPool pool(2);
  pool.ParallelFor(100, 1, [](int64_t, int64_t) {});
  const std::clock_t c0 = std::clock();  // process CPU time
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double cpu_ms = 1000.0 * (std::clock() - c0) / CLOCKS_PER_SEC;
  CHECK(cpu_ms < 30.0);
}

}  // namespace
}  // namespace yuan

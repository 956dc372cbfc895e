#include <catch2/catch.hpp>
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

TEST_CASE("ParallelForBalanced runs every index once in contiguous grain-aligned ranges", "[core]") {
  ThreadPool pool(3);
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
    CHECK(ranges.size() <= 3);
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

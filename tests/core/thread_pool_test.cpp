#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
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

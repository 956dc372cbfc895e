#include "runtime/cpu/bandwidth.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "runtime/core/thread_pool.h"

namespace yuan {
namespace {

TEST_CASE("the bandwidth probe reads memory in place without writing it", "[cpu][bandwidth]") {
  // yuan bench points it at the model's weights: it must leave them as they are.
  const size_t bytes = size_t{8} << 20;
  auto* buf = static_cast<uint8_t*>(std::aligned_alloc(64, bytes));
  REQUIRE(buf != nullptr);
  for (size_t i = 0; i < bytes; ++i) buf[i] = static_cast<uint8_t>(i * 131 + 7);
  BandwidthOptions o;
  o.n_threads = 2;
  o.streams = 4;
  o.passes = 2;
  o.data = buf;
  o.bytes = bytes;
  const BandwidthResult r = MeasureReadBandwidth(o);
  CHECK(r.gb_per_s > 0);
  CHECK(r.streams == 4);
  size_t changed = 0;
  for (size_t i = 0; i < bytes; ++i) changed += buf[i] != static_cast<uint8_t>(i * 131 + 7);
  CHECK(changed == 0);

  // The same with a pool's threads (its size is the thread count).
  ThreadPool pool(2);
  o.pool = &pool;
  o.n_threads = 7;
  CHECK(MeasureReadBandwidth(o).gb_per_s > 0);
  changed = 0;
  for (size_t i = 0; i < bytes; ++i) changed += buf[i] != static_cast<uint8_t>(i * 131 + 7);
  CHECK(changed == 0);
  o.pool = nullptr;
  o.n_threads = 2;
  std::free(buf);

  // Its own buffer: allocated, touched, read and freed; by new threads or
  // the pool's.
  o.data = nullptr;
  CHECK(MeasureReadBandwidth(o).gb_per_s > 0);
  o.pool = &pool;
  CHECK(MeasureReadBandwidth(o).gb_per_s > 0);
}

}  // namespace
}  // namespace yuan

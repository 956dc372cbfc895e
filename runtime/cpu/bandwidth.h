// Memory read-bandwidth probe: the denominator of "% of the bandwidth bound"
// in `yuan bench` (decoding reads every weight once per token, so tokens/s
// can be at most bandwidth / bytes per token).
//
// A single sequential stream per core reads low on modern x86 (the L2
// streamer and the memory controller want several pages in flight per core;
// llama.cpp's decode beats such a probe), so the probe reads `streams`
// independent sequential streams per thread, interleaved, with 256-bit loads,
// from a buffer backed by huge pages where the kernel grants them.
#pragma once

#include <cstddef>

namespace yuan {

class ThreadPool;

struct BandwidthOptions {
  int n_threads = 1;               // reader threads (std::thread), each with its own slice
  size_t bytes = size_t{512} << 20;  // buffer size: keep it far above the last-level cache
  int streams = 8;                 // streams per thread: 1, 2, 4, 8 or 16 (others round down)
  int passes = 8;                  // timed passes; the best one counts
  // Read these `bytes` in place instead of a buffer of the probe's own (the
  // model's weights, in the pages decoding reads them from); 64-byte aligned.
  const void* data = nullptr;
  // Read with this pool's threads (n_threads is then its size): the threads
  // that decode, already placed and running. New threads can start on one
  // core and share it for a while, which on a 2-vCPU VM made the probe read
  // as little as half of what the pool's threads read right beside it.
  ThreadPool* pool = nullptr;
};

struct BandwidthResult {
  double gb_per_s = 0;  // best pass, 1e9 bytes per second
  bool simd = false;    // read with AVX2 loads (else a scalar 64-bit loop)
  int streams = 1;      // streams per thread actually used
};

// Allocates and touches the buffer, reads it `passes` times on n_threads
// threads and returns the best rate. The buffer is freed before returning.
// Returns gb_per_s 0 if the buffer cannot be allocated.
BandwidthResult MeasureReadBandwidth(const BandwidthOptions& options);

}  // namespace yuan

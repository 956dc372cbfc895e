// A fixed pool of worker threads for data-parallel loops.
//
// Workers sleep on a condition variable between jobs, so an idle pool costs
// no CPU (the engine sits idle inside host applications most of the time).
// Work is split into contiguous, deterministic ranges: a given (n, n_threads)
// always produces the same partition, and kernels compute each output element
// in one thread with a fixed order of operations, so results do not depend on
// the thread count.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace yuan {

class ThreadPool {
 public:
  // n_threads counts the calling thread: a pool of 1 starts no workers.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end) over [0, n) split into at most size() chunks whose
  // boundaries are multiples of `grain`; returns when all are done. Callers
  // from several threads are serialised.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void WorkerLoop(int index);

  const int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // one ParallelFor at a time
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_grain_ = 1;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

// Splits [0, n) into `parts` contiguous chunks aligned to `grain`; chunk i is
// [*begin, *end). Exposed for tests.
void SplitRange(int64_t n, int64_t grain, int parts, int i, int64_t* begin, int64_t* end);

}  // namespace yuan

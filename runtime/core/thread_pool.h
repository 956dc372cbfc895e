// A fixed pool of worker threads for data-parallel loops.
//
// Decoding one token runs ~100 short parallel loops back to back, so waking
// sleeping threads through the kernel for each (tens of microseconds) would
// cost as much as the work. Workers therefore spin briefly after a job,
// watching for the next one, and only then sleep on a condition variable: a
// pool that has had no work for kSpinMicros costs no CPU (the engine sits
// idle inside host applications most of the time).
//
// ParallelFor splits work into contiguous, deterministic ranges: a given
// (n, n_threads) always produces the same partition, and kernels compute each
// output element in one thread with a fixed order of operations, so results
// do not depend on the thread count.
//
// ParallelForBalanced sizes each thread's range by the speed the thread
// showed in earlier balanced calls, for work whose results do not depend on
// the partition (the matrix products). The threads of a virtual machine or
// of a hybrid CPU often run at unequal speeds, and an even split then leaves
// the faster ones waiting: on one 2-vCPU machine one vCPU ran for minutes at
// 70 % of the other's clock. The ranges stay contiguous, so a thread still
// streams its weights in long sequential runs (handing out small chunks
// instead cut decoding speed by 7-13 % there).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace yuan {

class ThreadPool {
 public:
  // How long a thread polls for the next job (or for its helpers to finish)
  // before it blocks.
  static constexpr int kSpinMicros = 200;

  // n_threads counts the calling thread: a pool of 1 starts no workers.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end) over [0, n) split into at most size() chunks whose
  // boundaries are multiples of `grain`; returns when all are done. Callers
  // from several threads are serialised.
  //
  // fn is any callable taking (int64_t, int64_t). One that is trivially
  // copyable and at most kJobBytes (a lambda capturing a few pointers or
  // values) is copied into the pool's own cache lines, next to the line the
  // workers poll; any other is called through a pointer to it.
  template <class Fn>
  void ParallelFor(int64_t n, int64_t grain, const Fn& fn) {
    ParallelForJob(n, grain, JobOf(fn));
  }

  // As ParallelFor, but thread i's range is about shares(site)[i] of
  // [0, n) (boundaries still multiples of `grain`), and the shares then
  // move towards each thread's measured rate in this call: units per
  // second, counted from when the job was published (for a worker that was
  // polling for it; from its own start after sleeping), so its lag in
  // seeing the job counts against it and the shares settle where the
  // threads finish together. `site` names the kind of work, each with its own shares:
  // where a slower thread falls behind depends on the work (a product whose
  // last rows span three matrices, compute-bound against memory-bound
  // weights). fn must compute the same results for any partition.
  //
  // `warm`, when given, has size() entries: memory each worker (entry i for
  // thread i; entry 0, the caller's, is ignored) reads into its cache while
  // it waits for work, after its part of this call and of any later job
  // until the next balanced call (see WarmSet).
  struct WarmSet;
  template <class Fn>
  void ParallelForBalanced(int64_t n, int64_t grain, const Fn& fn, uint64_t site = 0,
                           const WarmSet* warm = nullptr) {
    ParallelForBalancedJob(n, grain, JobOf(fn), site, warm);
  }

  // The current fractions of `site`'s work per thread (sum 1); even for a
  // site not seen yet.
  std::vector<double> shares(uint64_t site = 0) const;

  // Thread i's range [*begin, *end) in a balanced call of (n, grain, site)
  // made now.
  void PlannedRange(int64_t n, int64_t grain, uint64_t site, int i, int64_t* begin, int64_t* end) const;

  // Reading ahead while waiting. Between the matrix products of a decoded
  // token the caller works alone (RoPE, norms, SiLU, quantizing the next
  // input) while the workers poll, and the memory is idle. A worker given a
  // WarmSet reads its streams then, a few cache lines of each in turn (the
  // order of a decoding kernel that reads them side by side), until a new
  // job is published or kMaxWarmBytes are read (half of a Zen core's L2).
  // When the streams are the start of the worker's share of the next
  // product, that share begins from its cache instead of from memory, and
  // its balanced share grows. The memory must stay readable until the next
  // balanced call.
  static constexpr int kMaxWarmStreams = 8;
  static constexpr int64_t kMaxWarmBytes = int64_t{512} << 10;
  struct WarmStream {
    const void* begin = nullptr;
    int64_t bytes = 0;
  };
  struct WarmSet {
    WarmStream streams[kMaxWarmStreams];
    int n = 0;
  };

  // Bytes of a callable kept in the pool's job lines (see ParallelFor).
  static constexpr size_t kJobBytes = 256;

 private:
  // A job as the workers run it: invoke(args, begin, end), where args are
  // what was copied into job_args_ when the job was published: the `bytes`
  // bytes of the callable at `fn`, or with bytes == 0 the pointer `fn`.
  using Invoke = void (*)(const void* args, int64_t begin, int64_t end);
  struct Job {
    Invoke invoke;
    const void* fn;
    size_t bytes;
    // Runs [b, e) on the calling thread, from the callable where it is.
    void RunHere(int64_t b, int64_t e) const { invoke(bytes > 0 ? fn : static_cast<const void*>(&fn), b, e); }
  };
  template <class Fn>
  static Job JobOf(const Fn& fn) {
    if constexpr (std::is_trivially_copyable_v<Fn> && sizeof(Fn) <= kJobBytes && alignof(Fn) <= 64) {
      return {[](const void* args, int64_t b, int64_t e) { (*static_cast<const Fn*>(args))(b, e); }, &fn,
              sizeof(Fn)};
    } else {
      return {[](const void* args, int64_t b, int64_t e) {
                const void* f;
                std::memcpy(&f, args, sizeof(f));
                (*static_cast<const Fn*>(f))(b, e);
              },
              &fn, 0};
    }
  }
  void ParallelForJob(int64_t n, int64_t grain, Job job);
  void ParallelForBalancedJob(int64_t n, int64_t grain, Job job, uint64_t site, const WarmSet* warm);

  void WorkerLoop(int index);
  // Publishes a job over the ranges in bounds_, runs the caller's range and
  // waits for the workers.
  void Run(const Job& job);
  // Runs thread `index`'s range of the current job, timing it; `woken`:
  // the thread slept before the job instead of polling for it.
  void RunPart(int index, bool woken);
  // `site`'s balanced shares, made even the first time it is seen.
  std::vector<double>& SharesOf(uint64_t site);

  const int n_threads_;
  std::vector<std::thread> workers_;
  mutable std::mutex call_mu_;  // one ParallelFor at a time
  std::vector<int64_t> bounds_;  // thread i runs [bounds_[i], bounds_[i + 1])
  // Balanced calls' shares per thread, per site (at most kMaxSites, the
  // oldest replaced first); only touched under call_mu_.
  static constexpr size_t kMaxSites = 32;
  struct SiteShares {
    uint64_t site;
    std::vector<double> shares;
  };
  std::vector<SiteShares> sites_;
  size_t next_replaced_ = 0;
  // The job, published by bumping `generation`. A worker that sees it
  // change finds the rest of what it needs to start in the same cache
  // line: one read from the caller's core, where fields spread over the
  // pool object and the heap took a chain of them (on the development VM
  // the two vCPUs are 270-300 ns apart). A pool of more than kLineThreads
  // threads reads the bounds from bounds_.
  static constexpr int kLineThreads = 4;
  struct alignas(64) JobLine {
    std::atomic<uint64_t> generation{0};
    Invoke invoke = nullptr;
    std::chrono::steady_clock::time_point published{};  // when generation moved
    int64_t bounds[kLineThreads + 1] = {};               // bounds_, copied
  };
  static_assert(sizeof(JobLine) == 64);
  JobLine job_;
  // The job's callable (Job): on the lines right after job_, whose
  // addresses a worker knows before it sees a job, so it asks for all of
  // them at once instead of following pointers into the caller's stack and
  // heap one cross-core read after another.
  alignas(64) unsigned char job_args_[kJobBytes];
  // Workers still running the current job; on a line of its own, as the
  // workers write it.
  alignas(64) std::atomic<int> pending_{0};
  // Sleeping happens under mu_; the counters tell the other side whether a
  // notify is needed (both sides use sequentially consistent atomics, so one
  // of them always sees the other's update).
  alignas(64) std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
  // Per thread, on lines of their own: how long its part of the last job
  // took (see RunPart), and the WarmSet of the last balanced call (a worker
  // copies its own before reporting its part done, so the next call may
  // replace it).
  struct alignas(64) PerThread {
    int64_t part_ns = 0;
    WarmSet warm;
  };
  std::vector<PerThread> threads_;
  // Reads `w` (see WarmSet) until the job's generation moves on from `seen`.
  void Warm(const WarmSet& w, uint64_t seen) const;
};

// Splits [0, n) into `parts` contiguous chunks aligned to `grain`; chunk i is
// [*begin, *end). Exposed for tests.
void SplitRange(int64_t n, int64_t grain, int parts, int i, int64_t* begin, int64_t* end);

}  // namespace yuan

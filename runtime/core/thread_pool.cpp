#include "runtime/core/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

namespace yuan {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Polls `ready` for up to kSpinMicros; true when it became true.
template <class Pred>
bool SpinUntil(Pred ready) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      CpuRelax();
    }
    if (Clock::now() >= deadline) return ready();
  }
}

// Thread i's part [*begin, *end) of [0, n) by `shares` (one per thread),
// on multiples of grain.
void BalancedRange(int64_t n, int64_t grain, const std::vector<double>& shares, int i, int64_t* begin,
                   int64_t* end) {
  const int parts = static_cast<int>(shares.size());
  const int64_t units = (n + grain - 1) / grain;
  double cum = 0.0;
  int64_t b = 0;
  for (int j = 0; j <= i; ++j) {
    cum += shares[j];
    const int64_t u = j + 1 == parts ? units : std::llround(cum * static_cast<double>(units));
    *begin = b;
    b = std::clamp<int64_t>(u * grain, b, n);
    *end = b;
  }
}

}  // namespace

void SplitRange(int64_t n, int64_t grain, int parts, int i, int64_t* begin, int64_t* end) {
  grain = std::max<int64_t>(grain, 1);
  const int64_t units = (n + grain - 1) / grain;
  const int64_t per = units / parts, extra = units % parts;
  const int64_t u0 = i * per + std::min<int64_t>(i, extra);
  const int64_t u1 = u0 + per + (i < extra ? 1 : 0);
  *begin = std::min(n, u0 * grain);
  *end = std::min(n, u1 * grain);
}

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::max(1, n_threads)),
      bounds_(static_cast<size_t>(n_threads_) + 1),
      threads_(static_cast<size_t>(n_threads_)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto has_job = [&] { return stop_.load() || job_.generation.load() != seen; };
    const bool polled = SpinUntil(has_job);
    if (!polled) {
      std::unique_lock<std::mutex> lock(mu_);
      sleeping_workers_.fetch_add(1);
      wake_.wait(lock, has_job);
      sleeping_workers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    seen = job_.generation.load();
    for (size_t o = 0; o < kJobBytes; o += 64) __builtin_prefetch(job_args_ + o);  // all at once
    RunPart(index, !polled);
    const WarmSet warm = threads_[index].warm;
    if (pending_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      done_.notify_one();
    }
    if (warm.n > 0) Warm(warm, seen);
  }
}

void ThreadPool::Warm(const WarmSet& w, uint64_t seen) const {
  constexpr int64_t kLine = 64;
  // Lines of each stream between looks for a new job: with 8 streams 4 KiB
  // of loads, a few hundred nanoseconds from memory.
  constexpr int64_t kStep = 8 * kLine;
  const int64_t per_stream = kMaxWarmBytes / w.n;
  uint64_t sink = 0;
  for (int64_t off = 0; off < per_stream; off += kStep) {
    if (job_.generation.load(std::memory_order_relaxed) != seen || stop_.load(std::memory_order_relaxed)) break;
    bool more = false;
    for (int s = 0; s < w.n; ++s) {
      const auto* p = static_cast<const volatile uint8_t*>(w.streams[s].begin);
      const int64_t end = std::min({w.streams[s].bytes, off + kStep, per_stream});
      for (int64_t o = off; o < end; o += kLine) sink += p[o];
      more = more || end < w.streams[s].bytes;
    }
    if (!more) break;
  }
  asm volatile("" : : "r"(sink));  // the loads are the point; keep them
}

void ThreadPool::RunPart(int index, bool woken) {
  // Timed from the publication when the thread was polling for it (its lag
  // in seeing the job counts against it), from its own start after a
  // wake-up through the kernel (which says nothing about its speed).
  const auto t0 = woken ? std::chrono::steady_clock::now() : job_.published;
  const int64_t* bounds = n_threads_ <= kLineThreads ? job_.bounds : bounds_.data();
  const int64_t b = bounds[index], e = bounds[index + 1];
  if (b < e) job_.invoke(job_args_, b, e);
  threads_[index].part_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
}

void ThreadPool::ParallelForJob(int64_t n, int64_t grain, Job job) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> call_lock(call_mu_);
  if (n_threads_ == 1 || n <= grain) {
    job.RunHere(0, n);
    return;
  }
  for (int i = 0; i < n_threads_; ++i) SplitRange(n, grain, n_threads_, i, &bounds_[i], &bounds_[i + 1]);
  Run(job);
}

void ThreadPool::ParallelForBalancedJob(int64_t n, int64_t grain, Job job, uint64_t site,
                                        const WarmSet* warm) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  std::lock_guard<std::mutex> call_lock(call_mu_);
  // Replaced even when the caller runs this call alone, so that no worker
  // reads memory named by an earlier call after this one.
  for (int i = 1; i < n_threads_; ++i) {
    WarmSet& w = threads_[i].warm;
    w = warm != nullptr ? warm[i] : WarmSet{};
    w.n = std::clamp(w.n, 0, kMaxWarmStreams);
  }
  if (n_threads_ == 1 || n <= grain) {
    job.RunHere(0, n);
    return;
  }
  std::vector<double>& shares = SharesOf(site);
  for (int i = 0; i < n_threads_; ++i) BalancedRange(n, grain, shares, i, &bounds_[i], &bounds_[i + 1]);
  Run(job);
  // Move the shares a quarter of the way towards the rates just measured.
  // Calls shorter than kMinTimedNs are left out: timer resolution and
  // wake-up jitter would dominate them. No share falls below a quarter of
  // an even one, so every thread keeps being timed.
  constexpr int64_t kMinTimedNs = 5000;
  auto rate = [&](int i) {
    return static_cast<double>(bounds_[i + 1] - bounds_[i]) / static_cast<double>(threads_[i].part_ns);
  };
  double total_rate = 0.0;
  for (int i = 0; i < n_threads_; ++i) {
    if (threads_[i].part_ns < kMinTimedNs || bounds_[i + 1] <= bounds_[i]) return;
    total_rate += rate(i);
  }
  const double floor = 0.25 / n_threads_;
  double sum = 0.0;
  for (int i = 0; i < n_threads_; ++i) {
    shares[i] = std::max(floor, 0.75 * shares[i] + 0.25 * rate(i) / total_rate);
    sum += shares[i];
  }
  for (double& v : shares) v /= sum;
}

void ThreadPool::PlannedRange(int64_t n, int64_t grain, uint64_t site, int i, int64_t* begin,
                              int64_t* end) const {
  grain = std::max<int64_t>(grain, 1);
  if (n_threads_ == 1 || n <= grain) {  // the caller runs it alone
    *begin = 0;
    *end = i == 0 ? std::max<int64_t>(n, 0) : 0;
    return;
  }
  BalancedRange(n, grain, shares(site), i, begin, end);
}

std::vector<double>& ThreadPool::SharesOf(uint64_t site) {
  for (SiteShares& s : sites_) {
    if (s.site == site) return s.shares;
  }
  SiteShares fresh{site, std::vector<double>(static_cast<size_t>(n_threads_), 1.0 / n_threads_)};
  if (sites_.size() < kMaxSites) {
    sites_.push_back(std::move(fresh));
    return sites_.back().shares;
  }
  SiteShares& replaced = sites_[next_replaced_];
  next_replaced_ = (next_replaced_ + 1) % kMaxSites;
  replaced = std::move(fresh);
  return replaced.shares;
}

std::vector<double> ThreadPool::shares(uint64_t site) const {
  std::lock_guard<std::mutex> call_lock(call_mu_);
  for (const SiteShares& s : sites_) {
    if (s.site == site) return s.shares;
  }
  return std::vector<double>(static_cast<size_t>(n_threads_), 1.0 / n_threads_);
}

void ThreadPool::Run(const Job& job) {
  if (job.bytes > 0) {
    std::memcpy(job_args_, job.fn, job.bytes);
  } else {
    std::memcpy(job_args_, &job.fn, sizeof(job.fn));
  }
  job_.invoke = job.invoke;
  if (n_threads_ <= kLineThreads) std::copy(bounds_.begin(), bounds_.end(), job_.bounds);
  pending_.store(n_threads_ - 1);
  job_.published = std::chrono::steady_clock::now();
  job_.generation.fetch_add(1);  // publishes the job
  if (sleeping_workers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    wake_.notify_all();
  }
  RunPart(0, false);
  auto all_done = [&] { return pending_.load() == 0; };
  if (!SpinUntil(all_done)) {
    std::unique_lock<std::mutex> lock(mu_);
    caller_sleeping_.store(true);
    done_.wait(lock, all_done);
    caller_sleeping_.store(false);
  }
}

}  // namespace yuan

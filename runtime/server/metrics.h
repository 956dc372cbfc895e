// Prometheus metrics of `yuan serve`, in the text exposition format 0.0.4
// (what GET /metrics returns): request counts by endpoint and status, token
// counters, the scheduler's gauges, and latency histograms (time to first
// token, inter-token latency, request duration) with vLLM-like buckets.
//
// Threading: every method is thread-safe (one mutex; updates are a few adds).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace yuan::server {

// A cumulative histogram: counts[i] counts observations <= bounds[i]
// (rendered cumulatively), plus +Inf, sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // Appends the _bucket / _sum / _count lines of metric `name`.
  void Render(std::string_view name, std::string* out) const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last = +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  // One finished HTTP exchange. `endpoint` should be a known route (the
  // server maps anything else to "other" so hostile paths cannot grow the
  // label set).
  void CountRequest(std::string_view endpoint, int status);
  void AddPromptTokens(int64_t n);
  void AddGeneratedTokens(int64_t n);
  void ObserveTimeToFirstToken(double seconds);
  void ObserveInterTokenLatency(double seconds);
  void ObserveRequestDuration(double seconds);

  // The scheduler's state at the time of the scrape.
  struct Gauges {
    int running = 0;
    int queued = 0;
    double kv_cache_usage = 0;  // 0..1
  };
  std::string Render(const Gauges& gauges) const;

  // For tests.
  uint64_t requests(std::string_view endpoint, int status) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  Histogram ttft_, itl_, duration_;
};

// A label value escaped for the exposition format (\\, \", \n).
std::string EscapeLabelValue(std::string_view v);

}  // namespace yuan::server

#include "runtime/server/metrics.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/core/status.h"

namespace yuan::server {
namespace {

// Prometheus floats: shortest round-trip form, +Inf / -Inf / NaN spelled out.
std::string Num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return absl::StrFormat("%.17g", v);
}

std::string Bound(double v) { return absl::StrFormat("%g", v); }

void Header(std::string* out, std::string_view name, std::string_view type, std::string_view help) {
  absl::StrAppend(out, "# HELP ", Sv(name), " ", Sv(help), "\n# TYPE ", Sv(name), " ", Sv(type), "\n");
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::Render(std::string_view name, std::string* out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    absl::StrAppend(out, Sv(name), "_bucket{le=\"", Bound(bounds_[i]), "\"} ", cumulative, "\n");
  }
  cumulative += counts_.back();
  absl::StrAppend(out, Sv(name), "_bucket{le=\"+Inf\"} ", cumulative, "\n");
  absl::StrAppend(out, Sv(name), "_sum ", Num(sum_), "\n");
  absl::StrAppend(out, Sv(name), "_count ", count_, "\n");
}

Metrics::Metrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0}),
      itl_({0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5}),
      duration_({0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0}) {}

void Metrics::CountRequest(std::string_view endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{std::string(endpoint), status}];
}

void Metrics::AddPromptTokens(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  if (n > 0) prompt_tokens_ += static_cast<uint64_t>(n);
}

void Metrics::AddGeneratedTokens(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  if (n > 0) generated_tokens_ += static_cast<uint64_t>(n);
}

void Metrics::ObserveTimeToFirstToken(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.Observe(s);
}

void Metrics::ObserveInterTokenLatency(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  itl_.Observe(s);
}

void Metrics::ObserveRequestDuration(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  duration_.Observe(s);
}

uint64_t Metrics::requests(std::string_view endpoint, int status) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = requests_.find({std::string(endpoint), status});
  return it == requests_.end() ? 0 : it->second;
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Metrics::Render(const Gauges& g) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  Header(&out, "yuan_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
  for (const auto& [key, count] : requests_) {
    absl::StrAppend(&out, "yuan_requests_total{endpoint=\"", EscapeLabelValue(key.first), "\",status=\"",
                    key.second, "\"} ", count, "\n");
  }
  Header(&out, "yuan_prompt_tokens_total", "counter", "Prompt tokens of finished requests.");
  absl::StrAppend(&out, "yuan_prompt_tokens_total ", prompt_tokens_, "\n");
  Header(&out, "yuan_generated_tokens_total", "counter", "Tokens generated for finished requests.");
  absl::StrAppend(&out, "yuan_generated_tokens_total ", generated_tokens_, "\n");
  Header(&out, "yuan_requests_running", "gauge", "Sequences the scheduler is decoding now.");
  absl::StrAppend(&out, "yuan_requests_running ", g.running, "\n");
  Header(&out, "yuan_requests_queued", "gauge", "Sequences waiting for admission.");
  absl::StrAppend(&out, "yuan_requests_queued ", g.queued, "\n");
  Header(&out, "yuan_kv_cache_usage_ratio", "gauge", "Fraction of the shared KV cache pages in use (0..1).");
  absl::StrAppend(&out, "yuan_kv_cache_usage_ratio ", Num(g.kv_cache_usage), "\n");
  Header(&out, "yuan_time_to_first_token_seconds", "histogram", "Time from request arrival to the first generated token.");
  ttft_.Render("yuan_time_to_first_token_seconds", &out);
  Header(&out, "yuan_inter_token_latency_seconds", "histogram", "Time between consecutive generated tokens of a sequence.");
  itl_.Render("yuan_inter_token_latency_seconds", &out);
  Header(&out, "yuan_request_duration_seconds", "histogram", "Time from request arrival to its last token.");
  duration_.Render("yuan_request_duration_seconds", &out);
  return out;
}

}  // namespace yuan::server

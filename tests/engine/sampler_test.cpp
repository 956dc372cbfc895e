// Sampler tests. Every expectation is computed here, independently of the
// sampler: a plain reference of the chain (full sort, explicit loops) for the
// distributions, and hand arithmetic for the penalties.
#include "runtime/engine/sampler.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

namespace yuan {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr int kDraws = 20000;

// Filters off: the plain softmax at temperature 1.
SamplingParams Plain(uint64_t seed = 1) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

// Sample() modifies its input, so each draw gets a fresh copy.
std::vector<int> Histogram(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<int> counts(logits.size(), 0);
  std::vector<float> buf;
  for (int i = 0; i < draws; ++i) {
    buf = logits;
    const int32_t t = s.Sample(buf.data(), static_cast<int32_t>(buf.size()));
    REQUIRE(t >= 0);
    REQUIRE(t < static_cast<int32_t>(logits.size()));
    ++counts[t];
  }
  return counts;
}

// Reference chain, written for clarity: full sort by probability, explicit
// cumulative sums. Returns the probability of each token after top-k, top-p,
// min-p and temperature.
std::vector<double> ReferenceChain(const std::vector<float>& logits, int top_k, double top_p,
                                   double min_p, double temperature) {
  const size_t n = logits.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return logits[a] > logits[b]; });
  std::vector<bool> alive(n, true);
  auto survivors = [&] {
    std::vector<size_t> v;
    for (size_t i : order) {
      if (alive[i]) v.push_back(i);
    }
    return v;
  };
  auto probs_at_t1 = [&] {
    std::vector<double> p(n, 0.0);
    double z = 0.0;
    for (size_t i : survivors()) z += std::exp(static_cast<double>(logits[i]));
    for (size_t i : survivors()) p[i] = std::exp(static_cast<double>(logits[i])) / z;
    return p;
  };
  if (top_k > 0) {
    for (size_t r = static_cast<size_t>(top_k); r < n; ++r) alive[order[r]] = false;
  }
  if (top_p < 1.0) {
    const std::vector<double> p = probs_at_t1();
    double cum = 0.0;
    bool reached = false;
    for (size_t i : survivors()) {
      if (reached) {
        alive[i] = false;
        continue;
      }
      cum += p[i];
      reached = cum >= top_p;
    }
  }
  if (min_p > 0.0) {
    const std::vector<double> p = probs_at_t1();
    const double pmax = *std::max_element(p.begin(), p.end());
    for (size_t i = 0; i < n; ++i) {
      if (alive[i] && p[i] < min_p * pmax) alive[i] = false;
    }
  }
  std::vector<double> out(n, 0.0);
  double z = 0.0;
  for (size_t i : survivors()) z += std::exp(static_cast<double>(logits[i]) / temperature);
  for (size_t i : survivors()) out[i] = std::exp(static_cast<double>(logits[i]) / temperature) / z;
  return out;
}

// Pearson's chi-square against `expected`; tokens with zero probability must
// never be drawn. With df <= 5 the 1e-4 critical value is below 26, and the
// draws are deterministic, so 30 is a stable bound that still catches any
// real error (a 2% shift of one token's mass gives chi-square >> 30).
void CheckDistribution(const std::vector<int>& counts, const std::vector<double>& expected) {
  REQUIRE(counts.size() == expected.size());
  const int total = std::accumulate(counts.begin(), counts.end(), 0);
  double chi2 = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    INFO("token " << i << " expected p=" << expected[i] << " got " << counts[i] << "/" << total);
    if (expected[i] == 0.0) {
      CHECK(counts[i] == 0);
      continue;
    }
    const double e = expected[i] * total;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    CHECK(std::abs(counts[i] / static_cast<double>(total) - expected[i]) < 0.015);
  }
  INFO("chi-square " << chi2);
  CHECK(chi2 < 30.0);
}

// Ranked probabilities 0.4 > 0.3 > 0.15 > 0.1 > 0.05 placed at shuffled ids,
// so a sampler that forgets to sort would be caught.
std::vector<float> FiveTokens() {
  return {std::log(0.10f), std::log(0.40f), std::log(0.05f), std::log(0.30f), std::log(0.15f)};
}

std::vector<float> Penalized(const SamplingParams& params, std::vector<float> logits,
                             const std::vector<int32_t>& accepted, int32_t* picked = nullptr) {
  Sampler s(params);
  for (int32_t t : accepted) s.Accept(t);
  const int32_t t = s.Sample(logits.data(), static_cast<int32_t>(logits.size()));
  if (picked != nullptr) *picked = t;
  return logits;
}

TEST_CASE("Greedy picks the argmax, ties to the lowest id", "[sampler]") {
  SamplingParams p = Plain();
  p.temperature = 0.0f;
  Sampler s(p);
  std::vector<float> a = {0.1f, 2.5f, -3.0f, 2.4f};
  CHECK(s.Sample(a.data(), 4) == 1);
  std::vector<float> b = {1.0f, 3.0f, 3.0f, 2.0f, 3.0f};
  CHECK(s.Sample(b.data(), 5) == 1);
  std::vector<float> c = {-1.0f, -1.0f};
  CHECK(s.Sample(c.data(), 2) == 0);
  // A negative temperature is greedy too.
  p.temperature = -1.0f;
  Sampler neg(p);
  std::vector<float> d = {0.0f, 0.0f, 7.0f};
  CHECK(neg.Sample(d.data(), 3) == 2);
}

TEST_CASE("Greedy ignores the filters and never draws", "[sampler]") {
  SamplingParams p = Plain(7);
  p.temperature = 0.0f;
  p.top_k = 2;
  p.top_p = 0.1f;
  p.min_p = 0.9f;
  Sampler greedy(p);
  for (int i = 0; i < 100; ++i) {
    std::vector<float> l = FiveTokens();
    REQUIRE(greedy.Sample(l.data(), 5) == 1);
  }
}

TEST_CASE("Logit bias is added before everything else", "[sampler]") {
  SamplingParams p = Plain();
  p.temperature = 0.0f;
  p.logit_bias = {{0, 5.0f}, {99, 100.0f}, {-1, 100.0f}};  // out-of-range ids are ignored
  std::vector<float> l = {1.0f, 2.0f, 3.0f};
  Sampler s(p);
  CHECK(s.Sample(l.data(), 3) == 0);
  CHECK(l[0] == Approx(6.0f));
  CHECK(l[1] == Approx(2.0f));
  CHECK(l[2] == Approx(3.0f));

  // -inf bans a token from sampling altogether.
  SamplingParams ban = Plain(3);
  ban.logit_bias = {{1, -kInf}};
  Sampler sb(ban);
  const std::vector<int> counts = Histogram(sb, {0.0f, 5.0f, 0.0f}, 2000);
  CHECK(counts[1] == 0);
  CHECK(counts[0] > 800);
  CHECK(counts[2] > 800);
}

TEST_CASE("Repeat penalty divides positive and multiplies negative logits", "[sampler]") {
  SamplingParams p = Plain();
  p.temperature = 0.0f;
  p.repeat_penalty = 2.0f;
  // Token 0 twice and token 1 once: the repeat penalty ignores the count.
  const std::vector<float> out = Penalized(p, {2.0f, -1.0f, 0.5f, 3.0f}, {0, 1, 0});
  CHECK(out[0] == Approx(1.0f));
  CHECK(out[1] == Approx(-2.0f));
  CHECK(out[2] == Approx(0.5f));
  CHECK(out[3] == Approx(3.0f));

  // It can move the argmax: 3.0 / 4 = 0.75 < 2.0.
  p.repeat_penalty = 4.0f;
  int32_t picked = -1;
  Penalized(p, {2.0f, -1.0f, 0.5f, 3.0f}, {3}, &picked);
  CHECK(picked == 0);
}

TEST_CASE("Frequency penalty subtracts penalty * count", "[sampler]") {
  SamplingParams p = Plain();
  p.temperature = 0.0f;
  p.frequency_penalty = 0.5f;
  const std::vector<float> out = Penalized(p, {2.0f, -1.0f, 0.5f, 3.0f}, {0, 0, 0, 2});
  CHECK(out[0] == Approx(2.0f - 1.5f));
  CHECK(out[1] == Approx(-1.0f));
  CHECK(out[2] == Approx(0.0f).margin(1e-6));
  CHECK(out[3] == Approx(3.0f));
}

TEST_CASE("Presence penalty subtracts once per present token", "[sampler]") {
  SamplingParams p = Plain();
  p.temperature = 0.0f;
  p.presence_penalty = 0.7f;
  const std::vector<float> out = Penalized(p, {2.0f, -1.0f, 0.5f, 3.0f}, {0, 0, 3});
  CHECK(out[0] == Approx(1.3f));
  CHECK(out[1] == Approx(-1.0f));
  CHECK(out[2] == Approx(0.5f));
  CHECK(out[3] == Approx(2.3f));
}

TEST_CASE("All penalties together follow llama.cpp's order", "[sampler]") {
  SamplingParams p = Plain();
  p.temperature = 0.0f;
  p.repeat_penalty = 2.0f;
  p.frequency_penalty = 0.1f;
  p.presence_penalty = 0.5f;
  int32_t picked = -1;
  const std::vector<float> out = Penalized(p, {2.0f, -1.0f, 0.5f, 3.0f}, {0, 1, 0, 3}, &picked);
  // token 0: 2 / 2 - 2 * 0.1 - 0.5;  token 1: -1 * 2 - 0.1 - 0.5;  token 3: 3 / 2 - 0.1 - 0.5
  CHECK(out[0] == Approx(0.3f));
  CHECK(out[1] == Approx(-2.6f));
  CHECK(out[2] == Approx(0.5f));
  CHECK(out[3] == Approx(0.9f));
  CHECK(picked == 3);
}

TEST_CASE("Penalty window follows repeat_last_n", "[sampler]") {
  SamplingParams p = Plain();
  p.temperature = 0.0f;
  p.repeat_penalty = 2.0f;
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f};

  SECTION("only the last n tokens count") {
    p.repeat_last_n = 2;
    const std::vector<float> out = Penalized(p, logits, {3, 0, 1});
    CHECK(out[0] == Approx(1.0f));
    CHECK(out[1] == Approx(-2.0f));
    CHECK(out[3] == Approx(3.0f));  // fell out of the window
  }
  SECTION("0 disables the penalties") {
    p.repeat_last_n = 0;
    const std::vector<float> out = Penalized(p, logits, {0, 1, 3});
    CHECK(out == logits);
  }
  SECTION("-1 keeps the whole context") {
    std::vector<int32_t> accepted = {3};
    accepted.insert(accepted.end(), 200, 2);
    p.repeat_last_n = 64;
    CHECK(Penalized(p, logits, accepted)[3] == Approx(3.0f));
    p.repeat_last_n = -1;
    CHECK(Penalized(p, logits, accepted)[3] == Approx(1.5f));
  }
  SECTION("out-of-range tokens in the window are ignored") {
    const std::vector<float> out = Penalized(p, logits, {-5, 99, 4, 1});
    CHECK(out[0] == Approx(2.0f));
    CHECK(out[1] == Approx(-2.0f));
    CHECK(out[3] == Approx(3.0f));
  }
  SECTION("Reset clears the window") {
    Sampler s(p);
    s.Accept(3);
    s.Reset();
    std::vector<float> l = logits;
    CHECK(s.Sample(l.data(), 4) == 3);
    CHECK(l[3] == Approx(3.0f));
  }
}

TEST_CASE("Temperature: draws follow softmax(logits / T)", "[sampler]") {
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f, 0.5f, -1.0f};
  for (float t : {0.5f, 1.0f, 1.7f}) {
    INFO("T = " << t);
    SamplingParams p = Plain(42);
    p.temperature = t;
    Sampler s(p);
    std::vector<double> expected(logits.size());
    double z = 0.0;
    for (float l : logits) z += std::exp(l / static_cast<double>(t));
    for (size_t i = 0; i < logits.size(); ++i)
      expected[i] = std::exp(logits[i] / static_cast<double>(t)) / z;
    CheckDistribution(Histogram(s, logits, kDraws), expected);
  }
}

TEST_CASE("Top-k keeps the k most likely tokens", "[sampler]") {
  const std::vector<float> logits = FiveTokens();
  SECTION("k = 2") {
    SamplingParams p = Plain(11);
    p.top_k = 2;
    Sampler s(p);
    // Hand check of the reference: ids 1 (0.4) and 3 (0.3) remain.
    const std::vector<double> expected = ReferenceChain(logits, 2, 1.0, 0.0, 1.0);
    CHECK(expected[1] == Approx(0.4 / 0.7));
    CHECK(expected[3] == Approx(0.3 / 0.7));
    CheckDistribution(Histogram(s, logits, kDraws), expected);
  }
  SECTION("k = 3") {
    SamplingParams p = Plain(12);
    p.top_k = 3;
    Sampler s(p);
    CheckDistribution(Histogram(s, logits, kDraws), ReferenceChain(logits, 3, 1.0, 0.0, 1.0));
  }
  SECTION("k = 1 with tied logits keeps the lowest id") {
    SamplingParams p = Plain(13);
    p.top_k = 1;
    Sampler s(p);
    const std::vector<int> counts = Histogram(s, {3.0f, 1.0f, 3.0f}, 500);
    CHECK(counts[0] == 500);
  }
  SECTION("k larger than the vocabulary keeps everything") {
    SamplingParams p = Plain(14);
    p.top_k = 100;
    Sampler s(p);
    CheckDistribution(Histogram(s, logits, kDraws), ReferenceChain(logits, 0, 1.0, 0.0, 1.0));
  }
}

TEST_CASE("Top-p keeps the smallest set reaching the mass", "[sampler]") {
  const std::vector<float> logits = FiveTokens();
  // 0.4, 0.7, 0.85, 0.95, 1.0: each top_p below sits between two of these.
  for (float top_p : {0.5f, 0.8f, 0.9f}) {
    INFO("top_p = " << top_p);
    SamplingParams p = Plain(21);
    p.top_p = top_p;
    Sampler s(p);
    CheckDistribution(Histogram(s, logits, kDraws), ReferenceChain(logits, 0, top_p, 0.0, 1.0));
  }
  // Hand check of the reference for 0.8: {0.4, 0.3, 0.15} renormalised.
  const std::vector<double> r = ReferenceChain(logits, 0, 0.8, 0.0, 1.0);
  CHECK(r[1] == Approx(0.4 / 0.85));
  CHECK(r[4] == Approx(0.15 / 0.85));
  CHECK(r[0] == 0.0);
  CHECK(r[2] == 0.0);

  SECTION("a tiny top_p still keeps the best token") {
    SamplingParams p = Plain(22);
    p.top_p = 0.0f;
    Sampler s(p);
    const std::vector<int> counts = Histogram(s, logits, 500);
    CHECK(counts[1] == 500);
  }
}

TEST_CASE("Min-p drops tokens below min_p * p_max", "[sampler]") {
  const std::vector<float> logits = FiveTokens();
  // min_p * 0.4 = 0.08 keeps four tokens; 0.2 keeps two.
  for (float min_p : {0.2f, 0.5f}) {
    INFO("min_p = " << min_p);
    SamplingParams p = Plain(31);
    p.min_p = min_p;
    Sampler s(p);
    CheckDistribution(Histogram(s, logits, kDraws), ReferenceChain(logits, 0, 1.0, min_p, 1.0));
  }
  const std::vector<double> r = ReferenceChain(logits, 0, 1.0, 0.5, 1.0);
  CHECK(r[1] == Approx(0.4 / 0.7));
  CHECK(r[3] == Approx(0.3 / 0.7));

  SECTION("min_p above 1 keeps the best token") {
    SamplingParams p = Plain(32);
    p.min_p = 2.0f;
    Sampler s(p);
    CHECK(Histogram(s, logits, 300)[1] == 300);
  }
}

TEST_CASE("The whole chain: top-k, top-p, min-p, then temperature", "[sampler]") {
  const std::vector<float> logits = FiveTokens();
  SamplingParams p = Plain(41);
  p.top_k = 4;     // {0.4, 0.3, 0.15, 0.1}
  p.top_p = 0.9f;  // renormalised cumulative 0.42, 0.74, 0.89, 1.0: keeps all four
  p.min_p = 0.3f;  // 0.3 * 0.4 = 0.12: drops 0.1
  p.temperature = 0.7f;
  Sampler s(p);
  const std::vector<double> expected = ReferenceChain(logits, 4, 0.9, 0.3, 0.7);
  // Hand check: survivors 0.4, 0.3, 0.15 with p^(1/T) weights.
  const double w1 = std::pow(0.4, 1 / 0.7), w3 = std::pow(0.3, 1 / 0.7),
               w4 = std::pow(0.15, 1 / 0.7);
  CHECK(expected[1] == Approx(w1 / (w1 + w3 + w4)).epsilon(1e-5));
  CHECK(expected[4] == Approx(w4 / (w1 + w3 + w4)).epsilon(1e-5));
  CHECK(expected[0] == 0.0);
  CheckDistribution(Histogram(s, logits, kDraws), expected);
}

TEST_CASE("Top-k on a large vocabulary stays within the true top k", "[sampler]") {
  constexpr int kVocab = 32000;  // a real vocabulary's size
  std::mt19937_64 gen(2024);
  std::vector<float> logits(kVocab);
  for (float& l : logits)
    l = static_cast<float>(static_cast<double>(gen() >> 11) * 0x1.0p-53 * 20.0 - 10.0);
  std::vector<int32_t> ids(kVocab);
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  });
  const std::set<int32_t> top40(ids.begin(), ids.begin() + 40);

  SamplingParams p = Plain(5);
  p.top_k = 40;
  p.top_p = 0.9f;
  Sampler s(p);
  std::set<int32_t> seen;
  std::vector<float> buf;
  for (int i = 0; i < 300; ++i) {
    buf = logits;
    const int32_t t = s.Sample(buf.data(), kVocab);
    REQUIRE(top40.count(t) == 1);
    seen.insert(t);
  }
  CHECK(seen.size() > 10);  // it samples, it does not collapse to the argmax

  // top_p alone on the large vocabulary (the incremental sort path).
  SamplingParams q = Plain(6);
  q.top_p = 0.05f;
  Sampler sq(q);
  std::vector<double> e(kVocab);
  double z = 0.0;
  for (int i = 0; i < kVocab; ++i) z += std::exp(static_cast<double>(logits[i]));
  double cum = 0.0;
  size_t keep = 0;
  while (cum < static_cast<double>(0.05f) * z)
    cum += std::exp(static_cast<double>(logits[ids[keep++]]));
  const std::set<int32_t> nucleus(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(keep));
  INFO("nucleus size " << keep);
  CHECK(keep > 64);  // forces the chunked sort past its first chunk
  for (int i = 0; i < 200; ++i) {
    buf = logits;
    REQUIRE(nucleus.count(sq.Sample(buf.data(), kVocab)) == 1);
  }
}

TEST_CASE("NaN and infinite logits", "[sampler]") {
  SECTION("greedy: NaN never wins, all -inf or NaN gives 0") {
    SamplingParams p = Plain();
    p.temperature = 0.0f;
    Sampler s(p);
    std::vector<float> a = {kNaN, 1.0f, kNaN, 0.5f};
    CHECK(s.Sample(a.data(), 4) == 1);
    std::vector<float> b = {kNaN, kNaN, kNaN};
    CHECK(s.Sample(b.data(), 3) == 0);
    std::vector<float> c = {-kInf, -kInf};
    CHECK(s.Sample(c.data(), 2) == 0);
    std::vector<float> d = {1.0f, kInf, 2.0f, kInf};
    CHECK(s.Sample(d.data(), 4) == 1);
  }
  SECTION("sampling: NaN is never drawn") {
    SamplingParams p = Plain(51);
    Sampler s(p);
    const std::vector<int> counts = Histogram(s, {kNaN, 0.0f, kNaN, 0.0f}, 4000);
    CHECK(counts[0] == 0);
    CHECK(counts[2] == 0);
    CHECK(std::abs(counts[1] - 2000) < 200);
  }
  SECTION("sampling: +inf tokens take all the mass") {
    SamplingParams p = Plain(52);
    Sampler s(p);
    const std::vector<int> counts = Histogram(s, {kInf, 50.0f, kInf, -kInf}, 4000);
    CHECK(counts[1] == 0);
    CHECK(counts[3] == 0);
    CHECK(std::abs(counts[0] - 2000) < 200);
  }
  SECTION("sampling: everything banned gives 0") {
    SamplingParams p = Plain(53);
    p.top_k = 2;
    p.top_p = 0.5f;
    p.min_p = 0.1f;
    Sampler s(p);
    std::vector<float> a = {-kInf, kNaN, -kInf};
    CHECK(s.Sample(a.data(), 3) == 0);
  }
  SECTION("inf - inf from a bias is NaN, then banned") {
    SamplingParams p = Plain(54);
    p.logit_bias = {{0, -kInf}};
    Sampler s(p);
    const std::vector<int> counts = Histogram(s, {kInf, 0.0f}, 500);
    CHECK(counts[0] == 0);
  }
  SECTION("empty input") {
    Sampler s(Plain());
    CHECK(s.Sample(nullptr, 0) == 0);
  }
}

TEST_CASE("Same seed, same tokens; different seeds differ", "[sampler]") {
  const std::vector<float> logits = {0.1f, 0.2f, 0.0f, 0.3f, -0.1f, 0.25f, 0.05f, 0.15f};
  auto run = [&](Sampler& s) {
    std::vector<int32_t> out;
    std::vector<float> buf;
    for (int i = 0; i < 200; ++i) {
      buf = logits;
      out.push_back(s.Sample(buf.data(), static_cast<int32_t>(buf.size())));
    }
    return out;
  };
  SamplingParams p = Plain(1234);
  p.top_k = 6;
  p.top_p = 0.95f;
  Sampler a(p), b(p);
  const std::vector<int32_t> seq_a = run(a);
  CHECK(seq_a == run(b));

  p.seed = 1235;
  Sampler c(p);
  CHECK(seq_a != run(c));

  // Reset restarts the generator from the seed.
  a.Reset();
  CHECK(seq_a == run(a));
}

// Pinned output for seed 42 with the default parameters. The sequence was
// cross-checked against a separate Python model (its own MT19937-64, the
// documented chain, u = (x >> 11) * 2^-53, survivors walked from most to
// least likely). mt19937_64 is fully specified by the standard and ties are
// broken by id, so any standard library or CPU must give the same tokens; a
// change here is a user-visible change of seeded output.
TEST_CASE("Seeded output is pinned", "[sampler]") {
  SamplingParams p;  // the defaults: T 0.8, top-k 40, top-p 0.95, min-p 0.05
  p.seed = 42;
  Sampler s(p);
  std::vector<float> logits(16);
  std::vector<int32_t> got;
  for (int step = 0; step < 24; ++step) {
    for (int i = 0; i < 16; ++i) logits[i] = static_cast<float>(((i * 7 + step * 3) % 16)) * 0.25f;
    got.push_back(s.Sample(logits.data(), 16));
  }
  const std::vector<int32_t> expected = {13, 15, 3, 10, 11, 0,  13, 15, 1, 5, 7, 4,
                                         8,  3,  0, 13, 13, 13, 15, 10, 9, 0, 4, 6};
  CHECK(got == expected);
}

}  // namespace
}  // namespace yuan

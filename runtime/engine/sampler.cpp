#include "runtime/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "runtime/grammar/matcher.h"

namespace yuan {
namespace {

using Candidate = std::pair<float, int32_t>;  // (logit, token id)

// Upper bound on the penalty window; repeat_last_n == -1 ("whole context")
// would otherwise grow without limit over a long-lived session.
constexpr size_t kMaxWindow = size_t{1} << 20;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

size_t WindowCapacity(int32_t repeat_last_n) {
  if (repeat_last_n == -1) return kMaxWindow;
  if (repeat_last_n <= 0) return 0;
  return std::min(static_cast<size_t>(repeat_last_n), kMaxWindow);
}

// Descending logit, ties by ascending id: a strict total order on finite
// values, so every sort and selection below gives the same result with any
// standard library.
bool Before(const Candidate& a, const Candidate& b) {
  if (a.first != b.first) return a.first > b.first;
  return a.second < b.second;
}

// u in [0, 1) from the top 53 bits: exactly representable and the same on
// every platform, unlike std::uniform_real_distribution, whose algorithm the
// standard leaves to the implementation.
double UniformFromBits(uint64_t x) { return static_cast<double>(x >> 11) * 0x1.0p-53; }

// Makes every logit comparable: NaN (a broken model or a bias/penalty of
// inf - inf) can never win, and +inf becomes the largest finite float so
// that differences such as l - max stay finite in double instead of inf - inf.
void SanitizeLogits(float* logits, int32_t n_vocab) {
  constexpr float kMax = std::numeric_limits<float>::max();
  for (int32_t i = 0; i < n_vocab; ++i) {
    const float l = logits[i];
    if (std::isnan(l)) {
      logits[i] = kNegInf;
    } else if (l > kMax) {
      logits[i] = kMax;
    }
  }
}

int32_t Argmax(const float* logits, int32_t n_vocab) {
  int32_t best = 0;
  for (int32_t i = 1; i < n_vocab; ++i) {
    if (logits[i] > logits[best]) best = i;  // strict: ties keep the lowest id
  }
  return best;
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, std::shared_ptr<const grammar::TokenVocab> vocab)
    : params_(params), rng_(params.seed) {
  if (params_.grammar != nullptr && vocab != nullptr) {
    matcher_ = std::make_unique<grammar::GrammarMatcher>(params_.grammar, std::move(vocab));
  }
}

Sampler::~Sampler() = default;

bool Sampler::GrammarDone() const { return matcher_ != nullptr && matcher_->IsDone(); }

int32_t Sampler::Sample(float* logits, int32_t n_vocab) {
  if (params_.grammar == nullptr) return SampleFree(logits, n_vocab);
  if (matcher_ == nullptr || logits == nullptr || n_vocab <= 0) return kNoToken;
  original_.assign(logits, logits + n_vocab);
  int32_t token = SampleFree(logits, n_vocab);
  if (!matcher_->IsTokenAllowed(token)) {
    std::copy(original_.begin(), original_.end(), logits);
    matcher_->MaskLogits(logits, n_vocab);
    bool any = false;
    for (int32_t i = 0; i < n_vocab && !any; ++i) any = logits[i] > kNegInf;
    if (!any) return kNoToken;
    token = SampleFree(logits, n_vocab);
  }
  if (!matcher_->Accept(token).ok()) return kNoToken;
  return token;
}

void Sampler::Accept(int32_t token) {
  const size_t cap = WindowCapacity(params_.repeat_last_n);
  if (cap == 0) return;
  recent_.push_back(token);
  while (recent_.size() > cap) recent_.pop_front();
}

// A new generation starts from the same state as a fresh Sampler, so the
// same seed reproduces the same tokens.
void Sampler::Reset() {
  recent_.clear();
  rng_.seed(params_.seed);
  if (matcher_ != nullptr) matcher_->Reset();
}

int32_t Sampler::SampleFree(float* logits, int32_t n_vocab) {
  // Nothing to choose from is a caller bug; 0 keeps any indexing in bounds
  // for a caller that does have a vocabulary.
  if (logits == nullptr || n_vocab <= 0) return 0;

  // 1. Logit bias. Out-of-range ids are ignored: they come from user input.
  for (const auto& [token, bias] : params_.logit_bias) {
    if (token >= 0 && token < n_vocab) logits[token] += bias;
  }

  // 2. Penalties over the window, as llama.cpp's penalties sampler:
  //    l = l <= 0 ? l * repeat : l / repeat
  //    l -= count * frequency + (count > 0) * presence
  const bool penalize = params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f ||
                        params_.presence_penalty != 0.0f;
  if (penalize && !recent_.empty()) {
    // Sorting a copy gives each token's count in one pass without a hash
    // map; the window is 64 tokens by default.
    std::vector<int32_t> window(recent_.begin(), recent_.end());
    std::sort(window.begin(), window.end());
    for (size_t i = 0; i < window.size();) {
      size_t j = i;
      while (j < window.size() && window[j] == window[i]) ++j;
      const int32_t token = window[i];
      const size_t count = j - i;
      i = j;
      if (token < 0 || token >= n_vocab) continue;
      float& l = logits[token];
      if (l <= 0.0f) {
        l *= params_.repeat_penalty;
      } else {
        l /= params_.repeat_penalty;
      }
      l -= static_cast<float>(count) * params_.frequency_penalty +
           static_cast<float>(count > 0) * params_.presence_penalty;
    }
  }

  SanitizeLogits(logits, n_vocab);

  // !(t > 0) also sends a NaN temperature to greedy.
  const double temperature = params_.temperature;
  if (!(temperature > 0.0)) return Argmax(logits, n_vocab);

  // Exactly one generator output per non-greedy step, whatever the filters
  // leave, so a run's random stream depends only on the number of steps.
  const double u = UniformFromBits(rng_());

  // Tokens at -inf have probability 0 under every filter below; leaving them
  // out also makes "everything banned" an empty set.
  candidates_.clear();
  for (int32_t i = 0; i < n_vocab; ++i) {
    if (logits[i] > kNegInf) candidates_.emplace_back(logits[i], i);
  }
  if (candidates_.empty()) return 0;

  // candidates_[0, sorted) holds the largest candidates in order, the rest
  // are all after them. Sorting only as much as a filter needs keeps top-k
  // at O(n + k log k) instead of a sort of the whole vocabulary.
  size_t sorted = 0;
  auto sort_prefix = [&](size_t m) {
    m = std::min(m, candidates_.size());
    if (m <= sorted) return;
    const auto first = candidates_.begin() + static_cast<ptrdiff_t>(sorted);
    const auto mid = candidates_.begin() + static_cast<ptrdiff_t>(m);
    if (mid != candidates_.end()) std::nth_element(first, mid, candidates_.end(), Before);
    std::sort(first, mid, Before);
    sorted = m;
  };
  auto max_logit = [&]() -> double {
    if (sorted > 0) return candidates_[0].first;
    float m = candidates_[0].first;
    for (const Candidate& c : candidates_) m = std::max(m, c.first);
    return m;
  };

  // 3. Top-k.
  const int32_t top_k = params_.top_k;
  if (top_k > 0 && static_cast<size_t>(top_k) < candidates_.size()) {
    sort_prefix(static_cast<size_t>(top_k));
    candidates_.resize(static_cast<size_t>(top_k));
  }

  // 4. Top-p: the smallest most-probable prefix whose softmax mass reaches
  // top_p (at least one token). The prefix is sorted in growing chunks,
  // since with a peaked distribution it is usually a handful of tokens.
  const float top_p = params_.top_p;
  if (top_p < 1.0f && candidates_.size() > 1) {
    const double lmax = max_logit();
    double total = 0.0;
    for (const Candidate& c : candidates_) total += std::exp(c.first - lmax);
    const double target = static_cast<double>(top_p) * total;
    double cum = 0.0;
    size_t keep = 0;
    while (keep < candidates_.size()) {
      if (keep == sorted) sort_prefix(std::max<size_t>(64, 2 * sorted));
      cum += std::exp(candidates_[keep].first - lmax);
      ++keep;
      if (cum >= target) break;
    }
    candidates_.resize(keep);
  }

  // 5. Min-p: drop p_i < min_p * p_max, i.e. exp(l_i - l_max) < min_p. The
  // top token is always kept so that min_p > 1 cannot empty the set.
  const float min_p = params_.min_p;
  if (min_p > 0.0f && candidates_.size() > 1) {
    Candidate top = candidates_[0];
    for (const Candidate& c : candidates_) {
      if (Before(c, top)) top = c;
    }
    const double lmax = top.first;
    const auto removed =
        std::remove_if(candidates_.begin(), candidates_.end(), [&](const Candidate& c) {
          return c.second != top.second && std::exp(c.first - lmax) < static_cast<double>(min_p);
        });
    candidates_.erase(removed, candidates_.end());
  }

  // 6. Temperature and 7. draw: p_i = exp((l_i - l_max) / T) / sum, walked
  // in the candidates' order (sorted when a filter sorted them, id order
  // otherwise) until the running mass passes u * sum. The weights are
  // recomputed in the second pass with the same expression, so the running
  // sum ends exactly at `total`.
  const double lmax = max_logit();
  double total = 0.0;
  for (const Candidate& c : candidates_) total += std::exp((c.first - lmax) / temperature);
  const double target = u * total;
  double cum = 0.0;
  int32_t last_positive = candidates_[0].second;
  for (const Candidate& c : candidates_) {
    const double w = std::exp((c.first - lmax) / temperature);
    if (w <= 0.0) continue;
    cum += w;
    last_positive = c.second;
    if (target < cum) return c.second;
  }
  // Only reached when u * total rounded up to total.
  return last_positive;
}

}  // namespace yuan

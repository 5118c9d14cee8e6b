// Token selection for one request (see sampler.h): penalties, warpers and the draw, with
// Hugging Face / TGI semantics. Works in place on the logits row and reuses its scratch vectors,
// so a step allocates nothing once the vectors have grown to the vocabulary size. Knows nothing
// of tokenizers, text or batching.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace lmstream {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kPosInf = std::numeric_limits<float>::infinity();

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("SamplingParams: " + what);
}

// Makes every logit finite or -inf with a finite maximum, so softmax is well defined:
// NaN counts as -inf; if some logits are +inf, exactly those share the mass (they become 0, the
// rest -inf); if every logit is -inf, all are equal and the distribution is uniform.
void canonicalize(std::span<float> x) {
  float m = kNegInf;
  for (float& v : x) {
    if (std::isnan(v)) v = kNegInf;
    m = std::max(m, v);
  }
  if (m == kPosInf) {
    for (float& v : x) v = (v == kPosInf) ? 0.f : kNegInf;
  } else if (m == kNegInf) {
    std::fill(x.begin(), x.end(), 0.f);
  }
}

float max_of(std::span<const float> x) {
  float m = kNegInf;
  for (float v : x) m = std::max(m, v);
  return m;
}

// Lowest id among the largest values.
int32_t argmax(std::span<const float> x) {
  size_t best = 0;
  for (size_t i = 1; i < x.size(); ++i)
    if (x[i] > x[best]) best = i;
  return static_cast<int32_t>(best);
}

// log(sum(exp(x))) over the finite logits; x has a finite maximum (canonicalize).
float log_sum_exp(std::span<const float> x) {
  float m = max_of(x);
  double z = 0;
  for (float v : x)
    if (v != kNegInf) z += std::exp(v - m);
  return m + static_cast<float>(std::log(z));
}

// Orders idx by cmp lazily, only as far as needed: returns the length of the shortest ordered
// prefix whose weights sum to at least target (all of idx if none does). On return
// idx[0, result) holds that prefix in order and the rest holds the other ids in any order.
template <class Cmp>
size_t ordered_prefix_reaching(std::vector<int32_t>& idx, Cmp cmp, const float* w, double target) {
  size_t done = 0;
  size_t chunk = 64;
  double acc = 0;
  while (done < idx.size()) {
    size_t end = std::min(idx.size(), done + chunk);
    std::partial_sort(idx.begin() + done, idx.begin() + end, idx.end(), cmp);
    for (; done < end; ++done) {
      acc += w[idx[done]];
      if (acc >= target) return done + 1;
    }
    chunk *= 4;
  }
  return idx.size();
}

}  // namespace

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {
  require(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0,
          "repetition_penalty must be a finite number > 0");
  require(std::isfinite(p.frequency_penalty), "frequency_penalty must be finite");
  require(p.top_k >= 0, "top_k must be >= 0");
  require(p.top_n_tokens >= 0, "top_n_tokens must be >= 0");
  if (p.do_sample) {
    require(std::isfinite(p.temperature) && p.temperature > 0, "temperature must be > 0");
    require(p.top_p > 0 && p.top_p <= 1, "top_p must be in (0, 1]");
    require(p.typical_p > 0 && p.typical_p <= 1, "typical_p must be in (0, 1]");
  }
}

SampleResult Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  if (logits.empty()) throw std::invalid_argument("Sampler::sample: empty logits");
  if (probs_.size() < logits.size()) {
    probs_.resize(logits.size());
    aux_.resize(logits.size());
  }
  apply_penalties(logits, history);
  if (p_.do_sample && p_.temperature != 1.f)
    for (float& v : logits) v /= p_.temperature;
  canonicalize(logits);

  SampleResult out;
  if (!p_.do_sample) {
    out.id = argmax(logits);
  } else {
    apply_top_k(logits);
    if (p_.top_p < 1.f || p_.typical_p < 1.f) {
      collect_candidates(logits);
      if (p_.top_p < 1.f) apply_top_p(logits);
      if (p_.typical_p < 1.f) apply_typical_p(logits);
    }
    out.id = draw(logits);
  }
  float log_norm = log_sum_exp(logits);
  out.logprob = logits[out.id] - log_norm;
  if (p_.top_n_tokens > 0) fill_top(logits, log_norm, out);
  return out;
}

// Repetition penalty (HF: once per distinct id) then frequency penalty (OpenAI: count times).
// Both act on each id independently, so applying them id by id keeps TGI's order.
void Sampler::apply_penalties(std::span<float> x, std::span<const int32_t> history) {
  const bool rep = p_.repetition_penalty != 1.f;
  const bool freq = p_.frequency_penalty != 0.f;
  if (!rep && !freq) return;
  const int64_t n = static_cast<int64_t>(x.size());
  if (counts_.size() < x.size()) counts_.resize(x.size(), 0);
  for (int32_t id : history)
    if (id >= 0 && id < n) ++counts_[id];
  for (int32_t id : history) {
    if (id < 0 || id >= n || counts_[id] == 0) continue;
    float& v = x[id];
    if (rep) v = v < 0 ? v * p_.repetition_penalty : v / p_.repetition_penalty;
    if (freq) v -= static_cast<float>(counts_[id]) * p_.frequency_penalty;
    counts_[id] = 0;  // handled; also restores the all-zero invariant
  }
}

// HF TopKLogitsWarper: threshold = k-th largest value; everything below it is removed, so ties
// with the k-th value are all kept.
void Sampler::apply_top_k(std::span<float> x) {
  const size_t k = static_cast<size_t>(p_.top_k);
  if (k == 0 || k >= x.size()) return;
  float threshold;
  if (k <= 1024) {
    // Min-heap of the k largest values seen so far; its top is the k-th largest.
    auto heap_end = aux_.begin() + k;
    std::copy(x.begin(), x.begin() + k, aux_.begin());
    std::make_heap(aux_.begin(), heap_end, std::greater<float>());
    for (size_t i = k; i < x.size(); ++i) {
      if (x[i] > aux_[0]) {
        std::pop_heap(aux_.begin(), heap_end, std::greater<float>());
        *(heap_end - 1) = x[i];
        std::push_heap(aux_.begin(), heap_end, std::greater<float>());
      }
    }
    threshold = aux_[0];
  } else {
    std::copy(x.begin(), x.end(), aux_.begin());
    std::nth_element(aux_.begin(), aux_.begin() + (k - 1), aux_.begin() + x.size(),
                     std::greater<float>());
    threshold = aux_[k - 1];
  }
  for (float& v : x)
    if (v < threshold) v = kNegInf;
}

// idx_ = ids still in play (finite logits), in id order.
void Sampler::collect_candidates(std::span<const float> x) {
  idx_.clear();
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i] != kNegInf) idx_.push_back(static_cast<int32_t>(i));
}

// HF TopPLogitsWarper: sort ascending, softmax, cumsum, remove cumsum <= 1 - p, keep >= 1.
// Equivalently: in descending order (ties: lower id first), a token is kept while the mass
// strictly before it is < p, i.e. keep the shortest top prefix whose mass reaches p.
void Sampler::apply_top_p(std::span<float> x) {
  float m = kNegInf;
  for (int32_t id : idx_) m = std::max(m, x[id]);
  double z = 0;
  for (int32_t id : idx_) z += probs_[id] = std::exp(x[id] - m);
  auto better = [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
  size_t keep = ordered_prefix_reaching(idx_, better, probs_.data(), double(p_.top_p) * z);
  for (size_t i = keep; i < idx_.size(); ++i) x[idx_[i]] = kNegInf;
  idx_.resize(keep);
}

// HF TypicalLogitsWarper: with p = softmax, H = -sum p log p and score = |-log p - H|, sort by
// score ascending, take the shortest prefix whose mass reaches typical_p, and keep every token
// whose score is <= the last score of that prefix (ties kept).
void Sampler::apply_typical_p(std::span<float> x) {
  float m = kNegInf;
  for (int32_t id : idx_) m = std::max(m, x[id]);
  double z = 0;
  for (int32_t id : idx_) z += probs_[id] = std::exp(x[id] - m);
  const double log_z = std::log(z);
  double entropy = 0;
  for (int32_t id : idx_) {
    double logp = double(x[id] - m) - log_z;
    if (probs_[id] > 0) entropy -= double(probs_[id]) / z * logp;
  }
  for (int32_t id : idx_) {
    double logp = double(x[id] - m) - log_z;
    aux_[id] = static_cast<float>(std::fabs(-logp - entropy));
  }
  auto more_typical = [&](int32_t a, int32_t b) {
    return aux_[a] < aux_[b] || (aux_[a] == aux_[b] && a < b);
  };
  size_t prefix = ordered_prefix_reaching(idx_, more_typical, probs_.data(),
                                          double(p_.typical_p) * z);
  const float limit = aux_[idx_[prefix - 1]];
  size_t kept = prefix;
  for (size_t i = prefix; i < idx_.size(); ++i) {
    int32_t id = idx_[i];
    if (aux_[id] <= limit) {
      idx_[kept++] = id;
    } else {
      x[id] = kNegInf;
    }
  }
  idx_.resize(kept);
}

// Inverse-CDF draw over the remaining tokens in id order: one 53-bit uniform from the request's
// generator per step, so the choice depends only on the generator state and the distribution.
int32_t Sampler::draw(std::span<const float> x) {
  const float m = max_of(x);
  double z = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    float w = (x[i] == kNegInf) ? 0.f : std::exp(x[i] - m);
    probs_[i] = w;
    z += w;
  }
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;  // [0, 1)
  const double target = u * z;
  double acc = 0;
  int32_t last_positive = -1;
  for (size_t i = 0; i < x.size(); ++i) {
    if (probs_[i] <= 0.f) continue;
    acc += probs_[i];
    last_positive = static_cast<int32_t>(i);
    if (acc > target) return last_positive;
  }
  // Only reached when rounding left target just above the running total; the maximum always
  // has weight 1, so some token had positive weight.
  return last_positive >= 0 ? last_positive : argmax(x);
}

// The top_n_tokens tokens with the highest warped logprob (ties: lower id first). Removed tokens
// (logprob -inf) are never listed, as in TGI, so the list may be shorter.
void Sampler::fill_top(std::span<const float> x, float log_norm, SampleResult& out) {
  collect_candidates(x);
  const size_t n = std::min(idx_.size(), static_cast<size_t>(p_.top_n_tokens));
  std::partial_sort(idx_.begin(), idx_.begin() + n, idx_.end(), [&](int32_t a, int32_t b) {
    return x[a] > x[b] || (x[a] == x[b] && a < b);
  });
  out.top.clear();
  out.top.reserve(n);
  for (size_t i = 0; i < n; ++i) out.top.push_back({idx_[i], x[idx_[i]] - log_norm});
}

}  // namespace lmstream

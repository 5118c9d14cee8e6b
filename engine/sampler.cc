// Token selection for one request (see sampler.h): penalties, warpers and the draw, with
// Hugging Face / TGI semantics. Works in place on the logits row and reuses its scratch vectors,
// so a step allocates nothing but the returned top list once the scratch has grown to the
// vocabulary size. Greedy costs two passes over the row (one with exp, for the logprob); the
// truncating warpers select their kept set in expected linear time instead of sorting.
// Knows nothing of tokenizers, text or batching.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/ops.h"

namespace lmstream {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kPosInf = std::numeric_limits<float>::infinity();

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("SamplingParams: " + what);
}

struct MaxAt {
  float value;
  int32_t id;  // lowest id holding value
};

// Makes every logit finite or -inf with a finite maximum, so softmax is well defined, and
// returns that maximum: NaN counts as -inf; if some logits are +inf, exactly those share the mass
// (they become 0, the rest -inf); if every logit is -inf, all are equal (uniform).
MaxAt canonicalize(std::span<float> x) {
  // Fast path (every real row): no NaN and a finite maximum leave the row as it is.
  const RowMax r = row_max(x.data(), int64_t(x.size()));
  if (!r.any_nan && std::isfinite(r.value)) return {r.value, static_cast<int32_t>(r.index)};
  MaxAt m{kNegInf, 0};
  for (size_t i = 0; i < x.size(); ++i) {
    float& v = x[i];
    if (std::isnan(v)) v = kNegInf;
    if (v > m.value) m = {v, static_cast<int32_t>(i)};
  }
  if (m.value == kPosInf) {
    for (float& v : x) v = (v == kPosInf) ? 0.f : kNegInf;
    m.value = 0.f;
  } else if (m.value == kNegInf) {
    std::fill(x.begin(), x.end(), 0.f);
    m.value = 0.f;
  }
  return m;
}

// Reorders idx so that idx[0, L) holds the L best ids under `better` (a strict total order) and
// returns L, the length of the shortest best-first prefix whose weights sum to >= target
// (idx.size() when none does); idx[L-1] is the worst of them. Quickselect on accumulated
// weight: expected linear time, falling back to a sort after too many partition rounds.
template <class Better>
size_t select_mass_prefix(std::vector<int32_t>& idx, Better better, const float* w, double target) {
  size_t lo = 0, hi = idx.size();
  double acc = 0;  // weight of idx[0, lo), all better than idx[lo, hi)
  for (int rounds = 0; hi - lo > 32 && rounds < 64; ++rounds) {
    int32_t a = idx[lo], b = idx[lo + (hi - lo) / 2], c = idx[hi - 1];
    if (better(b, a)) std::swap(a, b);
    if (better(c, b)) std::swap(b, c);
    if (better(b, a)) std::swap(a, b);
    const int32_t pivot = b;  // median of three
    auto first = idx.begin() + lo, last = idx.begin() + hi;
    auto split = std::partition(first, last, [&](int32_t id) { return better(id, pivot); });
    std::iter_swap(split, std::find(split, last, pivot));
    const size_t mid = static_cast<size_t>(split - idx.begin());
    double mass = 0;
    for (size_t i = lo; i < mid; ++i) mass += w[idx[i]];
    if (acc + mass >= target) {
      hi = mid;
    } else if (acc + mass + w[pivot] >= target) {
      return mid + 1;
    } else {
      acc += mass + w[pivot];
      lo = mid + 1;
    }
  }
  std::sort(idx.begin() + lo, idx.begin() + hi, better);
  for (size_t i = lo; i < hi; ++i) {
    acc += w[idx[i]];
    if (acc >= target) return i + 1;
  }
  return hi;  // the better part reached target (rounding aside), or nothing did: keep all
}

}  // namespace

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {
  require(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0,
          "repetition_penalty must be a finite number > 0");
  require(std::isfinite(p.frequency_penalty), "frequency_penalty must be finite");
  require(std::isfinite(p.presence_penalty), "presence_penalty must be finite");
  for (auto& [id, bias] : p.logit_bias)
    require(id >= 0 && std::isfinite(bias), "logit_bias needs token ids >= 0 and finite biases");
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
  const MaxAt max = canonicalize(logits);

  SampleResult out;
  double z = 0;  // sum of exp(logit - max) over the remaining tokens
  if (!p_.do_sample) {
    out.id = max.id;
    z = sum_exp(logits.data(), int64_t(logits.size()), max.value);
  } else {
    const bool truncate = (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < logits.size()) ||
                          p_.top_p < 1.f || p_.typical_p < 1.f;
    if (truncate) {
      select_candidates(logits, max.value);
      if (p_.top_p < 1.f) apply_top_p(logits);
      if (p_.typical_p < 1.f) apply_typical_p(logits, max.value);
    }
    out.id = draw(logits, max.value, truncate, z);
  }
  const float log_norm = max.value + static_cast<float>(std::log(z));
  out.logprob = logits[out.id] - log_norm;
  if (p_.top_n_tokens > 0) fill_top(logits, log_norm, out);
  return out;
}

// Logit bias (OpenAI: added to the raw logits), then repetition penalty (HF: once per distinct id),
// frequency penalty (OpenAI: count times) and presence penalty (OpenAI: once per id seen). They
// act on each id independently, so applying them id by id keeps TGI's order.
void Sampler::apply_penalties(std::span<float> x, std::span<const int32_t> history) {
  for (auto& [id, bias] : p_.logit_bias)
    if (id >= 0 && static_cast<size_t>(id) < x.size()) x[id] += bias;
  const bool rep = p_.repetition_penalty != 1.f;
  const bool freq = p_.frequency_penalty != 0.f;
  const bool pres = p_.presence_penalty != 0.f;
  if (!rep && !freq && !pres) return;
  const int64_t n = static_cast<int64_t>(x.size());
  if (counts_.size() < x.size()) counts_.resize(x.size(), 0);
  for (int32_t id : history)
    if (id >= 0 && id < n) ++counts_[id];
  for (int32_t id : history) {
    if (id < 0 || id >= n || counts_[id] == 0) continue;
    float& v = x[id];
    if (rep) v = v < 0 ? v * p_.repetition_penalty : v / p_.repetition_penalty;
    if (freq) v -= static_cast<float>(counts_[id]) * p_.frequency_penalty;
    if (pres) v -= p_.presence_penalty;
    counts_[id] = 0;  // handled; also restores the all-zero invariant
  }
}

// Top-k (HF TopKLogitsWarper: threshold = k-th largest value, everything below it removed, so
// ties with the k-th value are all kept), then idx_ = the ids still in play and probs_ = their
// weights.
void Sampler::select_candidates(std::span<float> x, float max) {
  const size_t k = static_cast<size_t>(p_.top_k);
  float threshold = kNegInf;
  if (k > 0 && k < x.size()) {
    if (k <= 1024) {
      // Min-heap of the k largest values seen so far; its top is the k-th largest.
      auto heap_end = aux_.begin() + static_cast<std::ptrdiff_t>(k);
      std::copy(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(k), aux_.begin());
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
      auto kth = aux_.begin() + static_cast<std::ptrdiff_t>(k - 1);
      std::nth_element(aux_.begin(), kth, aux_.begin() + static_cast<std::ptrdiff_t>(x.size()),
                       std::greater<float>());
      threshold = *kth;
    }
  }
  idx_.clear();
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] < threshold) x[i] = kNegInf;
    if (x[i] == kNegInf) continue;
    idx_.push_back(static_cast<int32_t>(i));
    probs_[i] = std::exp(x[i] - max);
  }
}

// HF TopPLogitsWarper: sort ascending, softmax, cumsum, remove cumsum <= 1 - p, keep >= 1.
// Equivalently: in descending order (ties: lower id first), a token is kept while the mass
// strictly before it is < p, i.e. keep the shortest top prefix whose mass reaches p.
void Sampler::apply_top_p(std::span<float> x) {
  double z = 0;
  for (int32_t id : idx_) z += probs_[id];
  auto better = [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
  size_t keep = select_mass_prefix(idx_, better, probs_.data(), double(p_.top_p) * z);
  for (size_t i = keep; i < idx_.size(); ++i) x[idx_[i]] = kNegInf;
  idx_.resize(keep);
}

// HF TypicalLogitsWarper: with p = softmax, H = -sum p log p and score = |-log p - H|, sort by
// score ascending, take the shortest prefix whose mass reaches typical_p, and keep every token
// whose score is <= the last score of that prefix (ties kept).
void Sampler::apply_typical_p(std::span<float> x, float max) {
  double z = 0;
  for (int32_t id : idx_) z += probs_[id];
  const double log_z = std::log(z);
  double entropy = 0;
  for (int32_t id : idx_) {
    double logp = double(x[id] - max) - log_z;
    entropy -= double(probs_[id]) / z * logp;
  }
  for (int32_t id : idx_) {
    double logp = double(x[id] - max) - log_z;
    aux_[id] = static_cast<float>(std::fabs(-logp - entropy));
  }
  auto more_typical = [&](int32_t a, int32_t b) {
    return aux_[a] < aux_[b] || (aux_[a] == aux_[b] && a < b);
  };
  const size_t prefix =
      select_mass_prefix(idx_, more_typical, probs_.data(), double(p_.typical_p) * z);
  const float limit = aux_[idx_[prefix - 1]];
  size_t kept = prefix;
  for (size_t i = prefix; i < idx_.size(); ++i) {
    const int32_t id = idx_[i];
    if (aux_[id] <= limit) {
      idx_[kept++] = id;
    } else {
      x[id] = kNegInf;
    }
  }
  idx_.resize(kept);
}

// Inverse-CDF draw over the remaining tokens in id order with one 53-bit uniform from the
// request's generator, so the choice depends only on the generator state and the distribution.
// Sets z to the remaining weight. have_weights: probs_ already holds the remaining weights.
int32_t Sampler::draw(std::span<const float> x, float max, bool have_weights, double& z) {
  z = 0;
  if (!have_weights) sum_exp(x.data(), int64_t(x.size()), max, probs_.data());
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] == kNegInf) continue;
    z += probs_[i];
  }
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;  // [0, 1)
  const double target = u * z;
  double acc = 0;
  int32_t last = -1;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] == kNegInf || probs_[i] <= 0.f) continue;
    acc += probs_[i];
    last = static_cast<int32_t>(i);
    if (acc > target) return last;
  }
  // Reached only when rounding left target at the very top of the total. The kept tokens always
  // carry positive weight (the maximum has exp(0) = 1, and typical_p keeps a share of the total
  // mass when it drops the maximum), so last is set; the scan is only a guard.
  if (last >= 0) return last;
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i] != kNegInf) return static_cast<int32_t>(i);
  return 0;
}

// The top_n_tokens tokens with the highest warped logprob (ties: lower id first). Removed tokens
// (logprob -inf) are never listed, as in TGI, so the list may be shorter.
void Sampler::fill_top(std::span<const float> x, float log_norm, SampleResult& out) {
  const size_t n = static_cast<size_t>(p_.top_n_tokens);
  auto better = [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
  out.top.clear();
  if (n <= 16) {
    // One scan keeping the best n in order. Ids arrive ascending and only a strictly greater
    // value moves ahead, so equal values stay lowest id first.
    out.top.reserve(n + 1);
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i] == kNegInf) continue;
      if (out.top.size() == n && !(x[i] > x[out.top.back().id])) continue;
      auto pos = std::find_if(out.top.begin(), out.top.end(),
                              [&](const TokenLogprob& t) { return x[i] > x[t.id]; });
      out.top.insert(pos, {static_cast<int32_t>(i), 0.f});
      if (out.top.size() > n) out.top.pop_back();
    }
  } else {
    idx_.clear();
    for (size_t i = 0; i < x.size(); ++i)
      if (x[i] != kNegInf) idx_.push_back(static_cast<int32_t>(i));
    const size_t m = std::min(idx_.size(), n);
    std::partial_sort(idx_.begin(), idx_.begin() + static_cast<std::ptrdiff_t>(m), idx_.end(),
                      better);
    out.top.reserve(m);
    for (size_t i = 0; i < m; ++i) out.top.push_back({idx_[i], 0.f});
  }
  for (TokenLogprob& t : out.top) t.logprob = x[t.id] - log_norm;
}

}  // namespace lmstream

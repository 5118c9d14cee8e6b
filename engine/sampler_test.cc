// Tests for engine/sampler: each stage against a plain double-precision reference written here,
// the stage order, seeding, the empirical distribution of draws, NaN/inf logits and top lists.
#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

namespace lmstream {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

bool sanitized() {
  const char* v = std::getenv("LMSTREAM_SANITIZED");
  return v != nullptr && v[0] == '1';
}

std::vector<float> random_logits(size_t n, uint32_t seed, float scale = 3.f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = d(gen);
  return x;
}

// ---- Reference computations (double, written plainly) ----

std::vector<double> ref_log_softmax(const std::vector<double>& x) {
  double m = -kInf;
  for (double v : x) m = std::max(m, v);
  double z = 0;
  for (double v : x)
    if (v != -kInf) z += std::exp(v - m);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] == -kInf ? -kInf : x[i] - m - std::log(z);
  return out;
}

std::vector<double> ref_softmax(const std::vector<double>& x) {
  std::vector<double> lp = ref_log_softmax(x);
  for (double& v : lp) v = std::exp(v);
  return lp;
}

// Ids sorted by descending value, lower id first on ties.
std::vector<size_t> ref_order_desc(const std::vector<double>& x) {
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] > x[b]; });
  return order;
}

void ref_top_k(std::vector<double>& x, int k) {
  if (k <= 0 || size_t(k) >= x.size()) return;
  std::vector<double> sorted = x;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  double threshold = sorted[k - 1];
  for (double& v : x)
    if (v < threshold) v = -kInf;
}

// HF TopPLogitsWarper: ascending sort, cumsum of softmax, remove cumsum <= 1 - p, keep the top 1.
void ref_top_p(std::vector<double>& x, double p) {
  if (p >= 1) return;
  std::vector<double> probs = ref_softmax(x);
  std::vector<size_t> asc = ref_order_desc(x);
  std::reverse(asc.begin(), asc.end());
  double cum = 0;
  for (size_t i = 0; i + 1 < asc.size(); ++i) {
    cum += probs[asc[i]];
    if (cum <= 1 - p) x[asc[i]] = -kInf;
  }
}

// HF TypicalLogitsWarper.
void ref_typical_p(std::vector<double>& x, double mass) {
  if (mass >= 1) return;
  std::vector<double> logp = ref_log_softmax(x);
  double entropy = 0;
  for (double lp : logp)
    if (lp != -kInf) entropy -= std::exp(lp) * lp;
  std::vector<double> score(x.size());
  for (size_t i = 0; i < x.size(); ++i) score[i] = std::fabs(-logp[i] - entropy);
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return score[a] < score[b]; });
  double cum = 0;
  size_t last = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    cum += std::exp(logp[order[i]]);
    if (cum < mass) last = i + 1;
  }
  last = std::min(last, order.size() - 1);
  double limit = score[order[last]];
  for (size_t i = 1; i < order.size(); ++i)
    if (score[order[i]] > limit) x[order[i]] = -kInf;
}

std::vector<double> to_double(const std::vector<float>& x) { return {x.begin(), x.end()}; }

// Runs one step with every token reported in the top list and returns the warped logprob per
// id (-inf where the token was removed), plus the chosen id.
std::vector<double> observed_logprobs(SamplingParams p, std::vector<float> logits,
                                      const std::vector<int32_t>& history = {},
                                      int32_t* chosen = nullptr) {
  p.top_n_tokens = static_cast<int>(logits.size());
  Sampler s(p);
  SampleResult r = s.sample(logits, history);
  std::vector<double> out(logits.size(), -kInf);
  for (const TokenLogprob& t : r.top) out[t.id] = t.logprob;
  if (chosen != nullptr) *chosen = r.id;
  EXPECT_FLOAT_EQ(float(out[r.id]), r.logprob);
  return out;
}

void expect_logprobs_near(const std::vector<double>& got, const std::vector<double>& want,
                          double tol = 1e-4) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (want[i] == -kInf) {
      EXPECT_EQ(got[i], -kInf) << "token " << i << " should have been removed";
    } else {
      EXPECT_NEAR(got[i], want[i], tol) << "token " << i;
    }
  }
}

size_t kept_count(const std::vector<double>& lp) {
  return size_t(std::count_if(lp.begin(), lp.end(), [](double v) { return v != -kInf; }));
}

SamplingParams sampling() {
  SamplingParams p;
  p.do_sample = true;
  p.seed = 1234;
  return p;
}

// Samples from a copy (sample() uses the logits as scratch).
SampleResult sample_copy(Sampler& s, std::vector<float> x, const std::vector<int32_t>& history) {
  return s.sample(x, history);
}

// ---- Greedy ----

TEST(Sampler, GreedyPicksArgmaxWithLogSoftmax) {
  std::vector<float> x = random_logits(1000, 1);
  x[417] = 20.f;
  SamplingParams p;
  p.temperature = 0.3f;  // ignored without do_sample
  p.top_k = 2;
  int32_t chosen = -1;
  std::vector<double> lp = observed_logprobs(p, x, {}, &chosen);
  EXPECT_EQ(chosen, 417);
  expect_logprobs_near(lp, ref_log_softmax(to_double(x)));
}

TEST(Sampler, GreedyTieTakesLowestId) {
  std::vector<float> x = {1.f, 5.f, 3.f, 5.f, 5.f};
  Sampler s{SamplingParams{}};
  SampleResult r = s.sample(x, {});
  EXPECT_EQ(r.id, 1);
}

// ---- Penalties ----

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  std::vector<float> x = {2.f, -2.f, 1.f, -1.f, 0.5f, 0.f};
  SamplingParams p;
  p.repetition_penalty = 2.f;
  // Token 0 occurs twice (penalised once), 1 from the "prompt", 5 is zero, 99 / -3 are out of
  // range and ignored.
  std::vector<int32_t> history = {0, 1, 0, 5, 99, -3};
  std::vector<double> want = {1.0, -4.0, 1.0, -1.0, 0.5, 0.0};
  expect_logprobs_near(observed_logprobs(p, x, history), ref_log_softmax(want));
}

TEST(Sampler, RepetitionPenaltyChangesGreedyChoice) {
  std::vector<float> x = {3.f, 2.f, 1.f};
  SamplingParams p;
  p.repetition_penalty = 1.8f;  // 3/1.8 = 1.67 < 2
  Sampler s(p);
  std::vector<int32_t> prompt = {0};
  EXPECT_EQ(sample_copy(s, x, prompt).id, 1);
  EXPECT_EQ(sample_copy(s, x, {}).id, 0);
}

TEST(Sampler, FrequencyPenaltySubtractsCountTimesPenalty) {
  std::vector<float> x = {2.f, -2.f, 1.f, 0.f};
  SamplingParams p;
  p.frequency_penalty = 0.5f;
  std::vector<int32_t> history = {0, 0, 0, 1, 3};
  std::vector<double> want = {0.5, -2.5, 1.0, -0.5};
  expect_logprobs_near(observed_logprobs(p, x, history), ref_log_softmax(want));
}

TEST(Sampler, RepetitionPenaltyComesBeforeFrequencyPenalty) {
  std::vector<float> x = {-1.f, 4.f};
  SamplingParams p;
  p.repetition_penalty = 2.f;
  p.frequency_penalty = 1.f;
  std::vector<int32_t> history = {0, 1, 1};
  // 0: -1*2 - 1 = -3; 1: 4/2 - 2 = 0 (the other order would give (4-2)/2 = 1).
  std::vector<double> want = {-3.0, 0.0};
  expect_logprobs_near(observed_logprobs(p, x, history), ref_log_softmax(want));
}

TEST(Sampler, PresencePenaltySubtractsOncePerSeenId) {
  std::vector<float> x = {2.f, -2.f, 1.f, 0.f};
  SamplingParams p;
  p.presence_penalty = 0.5f;
  std::vector<int32_t> history = {0, 0, 0, 1, 3};
  std::vector<double> want = {1.5, -2.5, 1.0, -0.5};
  expect_logprobs_near(observed_logprobs(p, x, history), ref_log_softmax(want));
}

TEST(Sampler, LogitBiasIsAddedToRawLogitsAndCanBanTheArgmax) {
  std::vector<float> x = {2.f, -2.f, 1.f, 0.f};
  SamplingParams p;
  p.logit_bias = {{0, -100.f}, {3, 0.5f}, {99, 5.f}};  // out-of-vocabulary ids are ignored
  std::vector<double> want = {-98.0, -2.0, 1.0, 0.5};
  expect_logprobs_near(observed_logprobs(p, x), ref_log_softmax(want));
  std::vector<float> y = x;
  EXPECT_EQ(Sampler(p).sample(y, {}).id, 2);
}

// ---- Warpers in isolation ----

TEST(Sampler, TemperatureDividesLogits) {
  std::vector<float> x = random_logits(500, 3);
  SamplingParams p = sampling();
  p.temperature = 0.37f;
  std::vector<double> want = to_double(x);
  for (double& v : want) v /= double(p.temperature);
  expect_logprobs_near(observed_logprobs(p, x), ref_log_softmax(want), 1e-3);
}

TEST(Sampler, TopKKeepsKLargest) {
  for (int k : {1, 5, 40, 999, 2000, 5000}) {
    std::vector<float> x = random_logits(4000, 4 + k);
    SamplingParams p = sampling();
    p.top_k = k;
    std::vector<double> want = to_double(x);
    ref_top_k(want, k);
    std::vector<double> got = observed_logprobs(p, x);
    EXPECT_EQ(kept_count(got), std::min(size_t(k), x.size()));
    expect_logprobs_near(got, ref_log_softmax(want));
  }
}

TEST(Sampler, TopKKeepsAllTiesAtTheBoundary) {
  std::vector<float> x = {1.f, 3.f, 2.f, 2.f, 0.f, 2.f};
  SamplingParams p = sampling();
  p.top_k = 2;  // 2nd largest is 2, held by three tokens
  std::vector<double> got = observed_logprobs(p, x);
  EXPECT_EQ(kept_count(got), 4u);
  std::vector<double> want = {-kInf, 3, 2, 2, -kInf, 2};
  expect_logprobs_near(got, ref_log_softmax(want));
}

TEST(Sampler, TopPMatchesHuggingFace) {
  for (double top_p : {0.05, 0.3, 0.5, 0.9, 0.95, 0.999}) {
    std::vector<float> x = random_logits(3000, uint32_t(top_p * 1000), 2.f);
    SamplingParams p = sampling();
    p.top_p = float(top_p);
    std::vector<double> want = to_double(x);
    ref_top_p(want, double(p.top_p));
    std::vector<double> got = observed_logprobs(p, x);
    EXPECT_EQ(kept_count(got), kept_count(want)) << "top_p " << top_p;
    expect_logprobs_near(got, ref_log_softmax(want));
  }
}

TEST(Sampler, TopPKeepsAtLeastOne) {
  std::vector<float> x = {0.f, 10.f, 0.f};
  SamplingParams p = sampling();
  p.top_p = 0.01f;
  int32_t chosen = -1;
  std::vector<double> got = observed_logprobs(p, x, {}, &chosen);
  EXPECT_EQ(chosen, 1);
  EXPECT_EQ(kept_count(got), 1u);
  EXPECT_NEAR(got[1], 0.0, 1e-6);
}

TEST(Sampler, TopPSmallExample) {
  // probs 0.5, 0.3, 0.2 (as logits of their logs): p = 0.6 keeps the first two, p = 0.45 only the
  // first (the mass before the second token, 0.5, is not < 0.45).
  std::vector<float> x = {std::log(0.3f), std::log(0.5f), std::log(0.2f)};
  SamplingParams p = sampling();
  p.top_p = 0.6f;
  EXPECT_EQ(kept_count(observed_logprobs(p, x)), 2u);
  p.top_p = 0.45f;
  EXPECT_EQ(kept_count(observed_logprobs(p, x)), 1u);
}

TEST(Sampler, TopPExactBoundaryIsRemoved) {
  // Four equal tokens, p = 0.5: HF's ascending cumsum is 0.25, 0.5, 0.75, 1 (exact in float), so
  // cumsum <= 1 - p removes two; the kept two are the lowest ids here.
  std::vector<float> x(4, 0.5f);
  SamplingParams p = sampling();
  p.top_p = 0.5f;
  std::vector<double> got = observed_logprobs(p, x);
  expect_logprobs_near(got, {std::log(0.5), std::log(0.5), -kInf, -kInf});
}

TEST(Sampler, TopPExactBoundaryInALargeVocabulary) {
  // 4096 equal tokens (all partial sums exact): p = 0.5 keeps exactly 2048, the lowest ids.
  std::vector<float> x(4096, 1.f);
  SamplingParams p = sampling();
  p.top_p = 0.5f;
  std::vector<double> got = observed_logprobs(p, x);
  EXPECT_EQ(kept_count(got), 2048u);
  EXPECT_NE(got[2047], -kInf);
  EXPECT_EQ(got[2048], -kInf);
}

TEST(Sampler, TypicalPKeepsTiesWithTheLastKeptScore) {
  // Equal tokens all have score 0: the prefix reaching 0.3 has two tokens, the ties keep all.
  std::vector<float> x(4, -1.f);
  SamplingParams p = sampling();
  p.typical_p = 0.3f;
  EXPECT_EQ(kept_count(observed_logprobs(p, x)), 4u);
}

TEST(Sampler, TypicalPMatchesHuggingFace) {
  for (double mass : {0.1, 0.5, 0.8, 0.95}) {
    std::vector<float> x = random_logits(3000, uint32_t(mass * 100) + 7, 2.f);
    SamplingParams p = sampling();
    p.typical_p = float(mass);
    std::vector<double> want = to_double(x);
    ref_typical_p(want, double(p.typical_p));
    std::vector<double> got = observed_logprobs(p, x);
    EXPECT_EQ(kept_count(got), kept_count(want)) << "typical_p " << mass;
    expect_logprobs_near(got, ref_log_softmax(want));
  }
}

TEST(Sampler, TypicalPCanDropTheArgmax) {
  // One dominant token and many unlikely ones: the dominant token is atypical (its surprise is
  // far below the entropy), the rest are not, so a small mass keeps only unlikely tokens.
  std::vector<float> x(1001, 0.f);
  x[0] = 4.f;
  std::vector<double> want = to_double(x);
  ref_typical_p(want, 0.2);
  SamplingParams p = sampling();
  p.typical_p = 0.2f;
  std::vector<double> got = observed_logprobs(p, x);
  EXPECT_EQ(got[0], -kInf);
  expect_logprobs_near(got, ref_log_softmax(want));
}

// ---- Order ----

TEST(Sampler, TemperatureComesBeforeTopP) {
  std::vector<float> x = {2.f, 1.f, 0.f, -1.f};
  SamplingParams p = sampling();
  p.top_p = 0.8f;
  std::vector<double> plain = to_double(x);
  ref_top_p(plain, 0.8);
  p.temperature = 0.3f;
  std::vector<double> cold = to_double(x);
  for (double& v : cold) v /= 0.3;
  ref_top_p(cold, 0.8);
  ASSERT_NE(kept_count(plain), kept_count(cold));  // the test is only meaningful if they differ
  std::vector<double> got = observed_logprobs(p, x);
  EXPECT_EQ(kept_count(got), kept_count(cold));
  expect_logprobs_near(got, ref_log_softmax(cold));
}

TEST(Sampler, FullPipelineMatchesReferenceChain) {
  std::vector<float> x = random_logits(2000, 99, 2.5f);
  std::vector<int32_t> history = {5, 17, 17, 1999, 3, 5, 600};
  SamplingParams p = sampling();
  p.repetition_penalty = 1.3f;
  p.frequency_penalty = 0.2f;
  p.temperature = 0.8f;
  p.top_k = 300;
  p.top_p = 0.7f;
  p.typical_p = 0.9f;
  std::vector<double> want = to_double(x);
  std::vector<int> count(x.size(), 0);
  for (int32_t id : history) ++count[id];
  for (size_t i = 0; i < want.size(); ++i) {
    if (count[i] == 0) continue;
    want[i] = want[i] < 0 ? want[i] * double(p.repetition_penalty)
                          : want[i] / double(p.repetition_penalty);
    want[i] -= count[i] * double(p.frequency_penalty);
  }
  for (double& v : want) v /= double(p.temperature);
  ref_top_k(want, p.top_k);
  ref_top_p(want, double(p.top_p));
  ref_typical_p(want, double(p.typical_p));
  std::vector<double> got = observed_logprobs(p, x, history);
  EXPECT_EQ(kept_count(got), kept_count(want));
  expect_logprobs_near(got, ref_log_softmax(want), 1e-3);
}

// ---- Randomness ----

std::vector<int32_t> draws(uint64_t seed, int n, const std::vector<float>& x) {
  SamplingParams p = sampling();
  p.seed = seed;
  Sampler s(p);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(sample_copy(s, x, {}).id);
  return out;
}

TEST(Sampler, SameSeedSameDrawsDifferentSeedDifferentDraws) {
  std::vector<float> x = random_logits(1000, 5, 1.f);
  std::vector<int32_t> a = draws(42, 64, x);
  EXPECT_EQ(a, draws(42, 64, x));
  EXPECT_NE(a, draws(43, 64, x));
  std::set<int32_t> distinct(a.begin(), a.end());
  EXPECT_GT(distinct.size(), 10u);  // a flat distribution really is sampled
}

TEST(Sampler, EmpiricalDistributionMatchesFilteredSoftmax) {
  std::vector<float> x = {1.f, 0.2f, -0.5f, 2.f, 0.7f, -3.f, 1.5f, 0.f};
  SamplingParams p = sampling();
  p.seed = 7;
  p.temperature = 0.9f;
  p.top_k = 6;  // drops -3 and -0.5
  std::vector<double> want = to_double(x);
  for (double& v : want) v /= double(p.temperature);
  ref_top_k(want, p.top_k);
  std::vector<double> expected = ref_softmax(want);

  const int n = sanitized() ? 4000 : 40000;
  Sampler s(p);
  std::vector<int> hist(x.size(), 0);
  for (int i = 0; i < n; ++i) ++hist[sample_copy(s, x, {}).id];
  double chi2 = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (expected[i] == 0) {
      EXPECT_EQ(hist[i], 0) << "removed token " << i << " was drawn";
      continue;
    }
    double e = expected[i] * n;
    chi2 += (hist[i] - e) * (hist[i] - e) / e;
  }
  // 5 degrees of freedom: P(chi2 > 25) < 2e-4; the seed is fixed, so this is deterministic.
  EXPECT_LT(chi2, 25.0);
}

// ---- Non-finite logits ----

TEST(Sampler, NaNIsNeverChosen) {
  std::vector<float> x = {kNaN, 1.f, kNaN, 0.5f};
  for (bool sample : {false, true}) {
    SamplingParams p = sampling();
    p.do_sample = sample;
    int32_t chosen = -1;
    std::vector<double> got = observed_logprobs(p, x, {}, &chosen);
    EXPECT_TRUE(chosen == 1 || chosen == 3);
    expect_logprobs_near(got, ref_log_softmax({-kInf, 1, -kInf, 0.5}));
  }
}

TEST(Sampler, AllNaNIsUniform) {
  std::vector<float> x(4, kNaN);
  for (bool sample : {false, true}) {
    SamplingParams p = sampling();
    p.do_sample = sample;
    p.repetition_penalty = 1.5f;
    int32_t chosen = -1;
    std::vector<double> got = observed_logprobs(p, x, {1, 2}, &chosen);
    EXPECT_GE(chosen, 0);
    EXPECT_LT(chosen, 4);
    for (double v : got) EXPECT_NEAR(v, std::log(0.25), 1e-6);
  }
}

TEST(Sampler, PositiveInfinityTakesAllTheMass) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {1.f, inf, 3.f, inf, -inf};
  for (bool sample : {false, true}) {
    SamplingParams p = sampling();
    p.do_sample = sample;
    p.temperature = 0.5f;
    p.top_p = 0.9f;
    int32_t chosen = -1;
    std::vector<double> got = observed_logprobs(p, x, {}, &chosen);
    EXPECT_TRUE(chosen == 1 || chosen == 3);
    EXPECT_TRUE(std::isfinite(got[chosen]));
    EXPECT_EQ(got[0], -kInf);
  }
}

TEST(Sampler, PenaltyOverflowStaysFinite) {
  std::vector<float> x = {std::numeric_limits<float>::max(), 1.f,
                          -std::numeric_limits<float>::max()};
  SamplingParams p = sampling();
  p.repetition_penalty = 0.5f;  // max / 0.5 overflows to +inf
  p.frequency_penalty = 1e38f;
  int32_t chosen = -1;
  std::vector<double> got = observed_logprobs(p, x, {0, 0, 0, 2}, &chosen);
  EXPECT_TRUE(std::isfinite(got[chosen]));
}

// ---- Top lists ----

TEST(Sampler, TopListIsBestFirstWithTiesByLowerId) {
  std::vector<float> x = {0.f, 2.f, 5.f, 2.f, 4.f, 2.f};
  SamplingParams p;
  p.top_n_tokens = 4;
  Sampler s(p);
  SampleResult r = s.sample(x, {});
  std::vector<double> lp = ref_log_softmax(to_double({0.f, 2.f, 5.f, 2.f, 4.f, 2.f}));
  ASSERT_EQ(r.top.size(), 4u);
  std::vector<int32_t> ids;
  for (const TokenLogprob& t : r.top) ids.push_back(t.id);
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 4, 1, 3}));
  for (const TokenLogprob& t : r.top) EXPECT_NEAR(t.logprob, lp[t.id], 1e-5);
  EXPECT_EQ(r.id, 2);
  EXPECT_FLOAT_EQ(r.logprob, r.top[0].logprob);
}

TEST(Sampler, TopListOnlyHoldsKeptTokens) {
  std::vector<float> x = random_logits(100, 8);
  SamplingParams p = sampling();
  p.top_k = 3;
  p.top_n_tokens = 5;
  Sampler s(p);
  SampleResult r = s.sample(x, {});
  ASSERT_EQ(r.top.size(), 3u);
  EXPECT_GE(r.top[0].logprob, r.top[1].logprob);
  EXPECT_GE(r.top[1].logprob, r.top[2].logprob);
  bool chosen_listed = false;
  for (const TokenLogprob& t : r.top) chosen_listed |= t.id == r.id;
  EXPECT_TRUE(chosen_listed);
}

TEST(Sampler, NoTopListByDefault) {
  std::vector<float> x = random_logits(10, 9);
  Sampler s{SamplingParams{}};
  EXPECT_TRUE(s.sample(x, {}).top.empty());
}

// ---- Invalid input ----

TEST(Sampler, RejectsInvalidParams) {
  auto bad = [](auto edit) {
    SamplingParams p = sampling();
    edit(p);
    EXPECT_THROW(Sampler{p}, std::invalid_argument);
  };
  bad([](SamplingParams& p) { p.temperature = 0.f; });
  bad([](SamplingParams& p) { p.temperature = kNaN; });
  bad([](SamplingParams& p) { p.top_k = -1; });
  bad([](SamplingParams& p) { p.top_p = 0.f; });
  bad([](SamplingParams& p) { p.top_p = 1.5f; });
  bad([](SamplingParams& p) { p.typical_p = kNaN; });
  bad([](SamplingParams& p) { p.repetition_penalty = 0.f; });
  bad([](SamplingParams& p) { p.frequency_penalty = kNaN; });
  bad([](SamplingParams& p) { p.top_n_tokens = -2; });
  SamplingParams greedy;
  greedy.temperature = 0.f;  // irrelevant without do_sample (OpenAI's temperature 0)
  EXPECT_NO_THROW(Sampler{greedy});
}

TEST(Sampler, RejectsEmptyLogits) {
  Sampler s{SamplingParams{}};
  std::vector<float> empty;
  EXPECT_THROW(s.sample(empty, {}), std::invalid_argument);
}

}  // namespace
}  // namespace lmstream

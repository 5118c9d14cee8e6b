// Token selection for one request, in TGI's order with Hugging Face semantics:
// logit_bias -> repetition_penalty (over prompt and generated tokens) -> frequency_penalty ->
// presence_penalty -> temperature ->
// top_k -> top_p -> typical_p -> draw. Greedy (argmax) when do_sample is false. A request's draws
// come from its own seeded generator, so its output never depends on other requests.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace lmstream {

struct SamplingParams {
  bool do_sample = false;
  float temperature = 1.f;         // > 0
  int top_k = 0;                   // 0 = off
  float top_p = 1.f;               // 1 = off
  float typical_p = 1.f;           // 1 = off
  float repetition_penalty = 1.f;  // 1 = off
  float frequency_penalty = 0.f;   // OpenAI-style, 0 = off
  float presence_penalty = 0.f;    // OpenAI-style: once per id seen in the history, 0 = off
  // OpenAI logit_bias: added to the raw logits of these ids before everything else.
  std::vector<std::pair<int32_t, float>> logit_bias;
  uint64_t seed = 0;
  int top_n_tokens = 0;  // how many alternatives to report per step (TGI top_n_tokens)

  // TGI's and lmi-dist's rule: any active warper turns sampling on, whatever do_sample says.
  bool warpers_active() const {
    return temperature != 1.f || top_k != 0 || top_p < 1.f || typical_p < 1.f;
  }
};

struct TokenLogprob {
  int32_t id;
  float logprob;
};

struct SampleResult {
  int32_t id = 0;
  float logprob = 0.f;            // log-softmax of the warped scores at the chosen token
  std::vector<TokenLogprob> top;  // top_n_tokens best by warped logprob, best first
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // Picks the next token. logits (size n_vocab) is used as scratch and modified. history holds the
  // prompt and generated tokens so far (for the penalties).
  SampleResult sample(std::span<float> logits, std::span<const int32_t> history);
  const SamplingParams& params() const { return p_; }

 private:
  // Pipeline stages (sampler.cc); each works in place on the logits. max is the largest logit
  // after temperature; weights in probs_ are exp(logit - max).
  void apply_penalties(std::span<float> logits, std::span<const int32_t> history);
  void select_candidates(std::span<float> logits, float max);
  void apply_top_p(std::span<float> logits);
  void apply_typical_p(std::span<float> logits, float max);
  int32_t draw(std::span<const float> logits, float max, bool have_weights, double& z);
  void fill_top(std::span<const float> logits, float log_norm, SampleResult& out);

  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<int32_t> idx_;     // scratch: candidate ids
  std::vector<float> probs_;     // scratch: per-id weights exp(logit - max)
  std::vector<float> aux_;       // scratch: per-id typical-p scores, top-k heap
  std::vector<int32_t> counts_;  // scratch: per-id occurrence counts in history (kept all-zero)
};

}  // namespace lmstream

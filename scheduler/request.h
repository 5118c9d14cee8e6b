// The seam between the engine and the HTTP layer: a request goes in as tokens and parameters, and
// comes back as a stream of token events and one final event. Producers (the engine thread) never
// block on a consumer: events are queued and the consumer is notified.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "engine/sampler.h"

namespace lmstream {

struct StopCriteria {
  int max_new_tokens = 20;
  std::vector<std::string> stop;  // stop strings, matched on decoded output text
  bool include_stop = true;       // TGI keeps the matched stop string in the text, OpenAI drops it
  bool ignore_eos = false;
};

struct GenerateRequest {
  std::vector<int32_t> prompt;  // token ids, BOS included when wanted
  SamplingParams sampling;
  StopCriteria stop;
  // Also compute each prompt token's log-probability under the model (TGI decoder_input_details).
  bool prompt_logprobs = false;
  // Prefix caching: requests share cached KV blocks only when their salts are equal (vLLM's
  // cache_salt), so tenants that must not observe each other's cache timing use distinct salts.
  std::string cache_salt{};
};

struct TokenEvent {
  int32_t id = 0;
  std::string text;  // this token's own text (complete UTF-8 only; may be ""), as TGI sends it
  std::string emit;  // text now safe to show after stop-string holdback (per include_stop)
  float logprob = 0.f;
  bool special = false;           // control token (e.g. </s>)
  std::vector<TokenLogprob> top;  // top_n_tokens alternatives
  double t = 0;                   // seconds since submit when the token existed
};

enum class FinishReason { kLength, kEosToken, kStopSequence, kCancelled, kError };
const char* finish_reason_name(FinishReason r);  // "length", "eos_token", "stop_sequence", ...

// Why a request ended with kError, typed, so each wire encodes it once (server/errors.h maps it
// to every wire) and nothing downstream parses text.
enum class GenerationErrorKind {
  kNone,      // not an error
  kRejected,  // refused at submit (empty prompt, longer than the context or the KV pool, bad
              // sampling)
  kFailed,    // the engine or the sampler failed while the request was running
};

struct FinalEvent {
  FinishReason reason = FinishReason::kLength;
  int generated_tokens = 0;
  int input_tokens = 0;
  int cached_tokens = 0;  // leading prompt tokens whose K/V came from the prefix cache
  uint64_t seed = 0;
  std::string generated_text;  // all emitted text (skip_special), stop policy applied
  std::string tail;            // held-back text released at the end (emit it after the last token)
  // For kError: what kind of failure, and its cause as people read it (no wire prefix).
  GenerationErrorKind error_kind = GenerationErrorKind::kNone;
  std::string error;
  // Seconds since submit: when the request left the queue, when its prefill finished, when its
  // first token existed, when it ended.
  double queued_s = 0, prefill_s = 0, first_token_s = 0, total_s = 0;
  int preemptions = 0;
  // When requested: log-softmax of the raw logits at each prompt token given the ones before it,
  // one per prompt token; the first (nothing before it) is NaN.
  std::vector<float> prompt_logprobs;
};

using StreamEvent = std::variant<TokenEvent, FinalEvent>;

// One request's stream. Thread-safe: the engine pushes, one consumer pops.
class RequestStream {
 public:
  explicit RequestStream(uint64_t id) : id_(id), start_(std::chrono::steady_clock::now()) {}
  uint64_t id() const { return id_; }
  std::chrono::steady_clock::time_point start() const { return start_; }

  // Consumer side.
  bool try_pop(StreamEvent& ev);
  // Waits up to timeout for an event; false on timeout.
  bool wait_pop(StreamEvent& ev, std::chrono::milliseconds timeout);
  // fn is called (on the engine thread, must be quick and never block) after each push. Events
  // pushed before set_notify are delivered by try_pop as usual; fn is called once at once if any.
  void set_notify(std::function<void()> fn);
  // Asks the scheduler to stop this request; it leaves at the next step with kCancelled.
  void cancel();
  bool cancelled() const;
  bool finished() const;  // the final event has been pushed

  // Producer side (scheduler).
  void push(StreamEvent ev);

 private:
  uint64_t id_;
  std::chrono::steady_clock::time_point start_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StreamEvent> q_;
  std::function<void()> notify_;
  bool cancelled_ = false;
  bool finished_ = false;
};

}  // namespace lmstream

// One request inside the scheduler: its tokens (prompt + generated), its own Sampler (seeded RNG,
// kept across preemptions so the next draw is the one it would have been), the incremental
// detokenizer and stop-string matcher, and the stream its events go to. Turns a row of logits into
// a TokenEvent and decides when the request is finished. Knows nothing of blocks or batches.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "engine/stop.h"
#include "scheduler/request.h"
#include "tokenizer/tokenizer.h"

namespace lmstream {

class Sequence {
 public:
  // Throws std::invalid_argument (with a message for the client) when the sampling parameters are
  // rejected by the Sampler.
  Sequence(GenerateRequest req, std::shared_ptr<RequestStream> stream, const Tokenizer& tok);

  uint64_t id() const { return stream_->id(); }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int generated() const { return int(tokens_.size() - prompt_len_); }
  RequestStream& stream() { return *stream_; }
  bool cancel_requested() const { return stream_->cancelled(); }

  // Seconds since submit.
  double now_s() const;
  void mark_admitted();  // first time only: the end of queueing
  void mark_preempted() { preemptions_++; }
  const std::string& cache_salt() const { return req_.cache_salt; }
  // Prompt tokens taken from the prefix cache at the first admission (what usage reports).
  void set_cached_tokens(int n) {
    if (cached_tokens_ < 0) cached_tokens_ = n;
  }

  // Samples the next token from logits (scratch, modified), pushes its TokenEvent and returns
  // true when the request is finished (the FinalEvent has then been pushed). capacity: the most
  // tokens this sequence can ever hold in the KV cache; one more token cannot be fed past it.
  bool on_logits(std::span<float> logits, int capacity);

  // Prompt logprobs: true while some are still to be computed (then prefill chunks ask the engine
  // for every row's logits). on_prompt_logits takes the rows of a chunk starting at position
  // start; row j (position start + j) scores prompt token start + j + 1. Rows already scored
  // (a recomputation after preemption) are ignored.
  bool wants_prompt_logits() const {
    return req_.prompt_logprobs && prompt_lp_.size() < prompt_len_;
  }
  void on_prompt_logits(int start, const float* rows, int n_rows, int vocab);

  // Ends the request (any held-back text is released as the final event's tail).
  void finish(FinishReason reason, const std::string& error = "");

 private:
  GenerateRequest req_;
  std::shared_ptr<RequestStream> stream_;
  const Tokenizer& tok_;
  Sampler sampler_;
  StreamDecoder decoder_;
  StopMatcher stop_;
  std::vector<int32_t> tokens_;
  size_t prompt_len_;
  std::vector<float> prompt_lp_;  // prompt logprobs computed so far (when requested)
  std::string text_;              // everything emitted so far
  double queued_s_ = -1, prefill_s_ = 0, first_token_s_ = 0;
  int preemptions_ = 0;
  int cached_tokens_ = -1;
  bool done_ = false;
};

}  // namespace lmstream

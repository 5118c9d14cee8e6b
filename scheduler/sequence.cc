// Sequence: sampling, detokenizing, stop strings and finish decisions for one request.
#include "scheduler/sequence.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace lmstream {

static Sampler make_sampler(const SamplingParams& p) {
  try {
    return Sampler(p);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("invalid sampling parameters: ") + e.what());
  }
}

Sequence::Sequence(GenerateRequest req, std::shared_ptr<RequestStream> stream, const Tokenizer& tok)
    : req_(std::move(req)),
      stream_(std::move(stream)),
      tok_(tok),
      sampler_(make_sampler(req_.sampling)),
      decoder_(tok, /*strip_leading_space=*/false, /*skip_special=*/true),
      stop_(req_.stop.stop, req_.stop.include_stop),
      tokens_(req_.prompt),
      prompt_len_(req_.prompt.size()) {
  if (req_.prompt_logprobs && prompt_len_ > 0) {
    prompt_lp_.reserve(prompt_len_);
    prompt_lp_.push_back(std::numeric_limits<float>::quiet_NaN());
  }
}

void Sequence::on_prompt_logits(int start, const float* rows, int n_rows, int vocab) {
  for (int j = 0; j < n_rows && wants_prompt_logits(); ++j) {
    const size_t target = size_t(start) + size_t(j) + 1;
    if (target != prompt_lp_.size()) continue;  // already scored, or not contiguous
    const float* x = rows + size_t(j) * size_t(vocab);
    float mx = x[0];
    for (int v = 1; v < vocab; ++v) mx = std::max(mx, x[v]);
    double sum = 0;
    for (int v = 0; v < vocab; ++v) sum += std::exp(double(x[v] - mx));
    prompt_lp_.push_back(float(double(x[tokens_[target]] - mx) - std::log(sum)));
  }
}

double Sequence::now_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - stream_->start()).count();
}

void Sequence::mark_admitted() {
  if (queued_s_ < 0) queued_s_ = now_s();
}

bool Sequence::on_logits(std::span<float> logits, int capacity) {
  if (done_) return true;
  bool first = generated() == 0;
  if (first) prefill_s_ = now_s();
  SampleResult r = sampler_.sample(logits, tokens_);
  tokens_.push_back(r.id);

  TokenEvent ev;
  ev.id = r.id;
  ev.logprob = r.logprob;
  ev.top = std::move(r.top);
  ev.special = tok_.is_special(r.id);
  std::string piece = decoder_.push(r.id);  // "" for special tokens (skip_special)
  ev.emit = stop_.push(piece);
  ev.text = ev.special ? piece + tok_.piece(r.id) : piece;
  ev.t = now_s();
  if (first) first_token_s_ = ev.t;
  text_ += ev.emit;
  stream_->push(std::move(ev));

  // TGI's order of finish reasons.
  if (generated() >= req_.stop.max_new_tokens) {
    finish(FinishReason::kLength);
  } else if (r.id == tok_.eos() && !req_.stop.ignore_eos) {
    finish(FinishReason::kEosToken);
  } else if (stop_.stopped()) {
    finish(FinishReason::kStopSequence);
  } else if (int(tokens_.size()) > capacity) {
    finish(FinishReason::kLength);  // the context (or the whole KV pool) is full
  }
  return done_;
}

void Sequence::finish(FinishReason reason, const std::string& error) {
  if (done_) return;
  done_ = true;
  FinalEvent fin;
  fin.reason = reason;
  fin.generated_tokens = generated();
  fin.input_tokens = int(prompt_len_);
  fin.cached_tokens = std::max(0, cached_tokens_);
  fin.seed = req_.sampling.seed;
  if (reason == FinishReason::kError) fin.error_kind = GenerationErrorKind::kFailed;
  fin.error = error;
  if (!stop_.stopped()) {
    fin.tail = stop_.push(decoder_.finish());
    if (!stop_.stopped()) fin.tail += stop_.flush();
  }
  fin.generated_text = text_ + fin.tail;
  fin.total_s = now_s();
  fin.queued_s = queued_s_ < 0 ? fin.total_s : queued_s_;
  fin.prefill_s = prefill_s_;
  fin.first_token_s = first_token_s_;
  fin.preemptions = preemptions_;
  fin.prompt_logprobs = std::move(prompt_lp_);
  stream_->push(std::move(fin));
}

}  // namespace lmstream

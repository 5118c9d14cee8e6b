// Test-only helpers for the scheduler tests (header-only, never part of lms_scheduler): a fake
// paged executor whose logits are a deterministic function of the token history it reads back
// through the block tables (so a wrong block, an overwritten block or a wrong position changes
// the output), a small synthetic tokenizer, and a collector that drains a RequestStream.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "scheduler/executor.h"
#include "scheduler/request.h"
#include "tokenizer/tokenizer.h"

namespace lmstream::testing {

inline uint64_t mix64(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

class FakeExecutor final : public Executor {
 public:
  FakeExecutor(int vocab, int block_size, int n_blocks, int max_pos = 0, int eos = 2)
      : vocab_(vocab),
        bs_(block_size),
        nb_(n_blocks),
        max_pos_(max_pos),
        eos_(eos),
        slots_(size_t(block_size) * size_t(n_blocks), -1) {}

  void step(std::span<const SeqStep> batch, float* logits_out) override {
    steps++;
    size_t row = 0;
    for (const SeqStep& s : batch) {
      const int end = s.pos + int(s.tokens.size());
      if (s.tokens.empty() || s.pos < 0) throw std::invalid_argument("fake: empty chunk");
      if (max_pos_ > 0 && end > max_pos_) throw std::invalid_argument("fake: past max_pos");
      if (int(s.block_table.size()) * bs_ < end) throw std::invalid_argument("fake: short table");
      for (int32_t b : s.block_table)
        if (b < 0 || b >= nb_) throw std::invalid_argument("fake: block out of range");
      for (size_t i = 0; i < s.tokens.size(); ++i) {
        if (s.tokens[i] < 0 || s.tokens[i] >= vocab_) throw std::invalid_argument("fake: token");
        slots_[slot(s.block_table, s.pos + int(i))] = s.tokens[i];
      }
      max_rows = std::max(max_rows, int(batch.size()));
      if (!s.want_logits && !s.all_logits) continue;
      // Each logits row hashes the whole history up to its position, as read back through the
      // block table.
      const int first_end = s.all_logits ? s.pos + 1 : end;
      for (int e = first_end; e <= end; ++e) {
        uint64_t h = 0x1234;
        for (int p = 0; p < e; ++p) {
          int32_t t = slots_[slot(s.block_table, p)];
          if (t < 0) throw std::invalid_argument("fake: reading an unwritten slot");
          h = mix64(h ^ uint64_t(t));
        }
        float* out = logits_out + row * size_t(vocab_);
        for (int v = 0; v < vocab_; ++v)
          out[v] = float(mix64(h ^ (uint64_t(v) << 32)) >> 40) / float(1 << 24) * 8.f - 4.f;
        out[eos_] -= eos_penalty;
        if (eos_at_len > 0 && e + 1 >= eos_at_len) out[eos_] = 100.f;
        ++row;
      }
    }
  }
  int vocab() const override { return vocab_; }
  int block_size() const override { return bs_; }
  int n_blocks() const override { return nb_; }
  int max_pos() const override { return max_pos_; }

  float eos_penalty = 3.f;  // makes eos rare but possible
  int eos_at_len = 0;       // > 0: force eos once the sequence would reach this length
  int steps = 0;
  int max_rows = 0;

 private:
  size_t slot(std::span<const int32_t> table, int pos) const {
    return size_t(table[size_t(pos / bs_)]) * size_t(bs_) + size_t(pos % bs_);
  }
  int vocab_, bs_, nb_, max_pos_, eos_;
  std::vector<int32_t> slots_;
};

// 0 <unk>, 1 <s>, 2 </s>, then "▁w3".."▁w39" and "x40".."x63" (some with multi-byte text).
inline std::unique_ptr<Tokenizer> make_test_tokenizer() {
  TokenizerSpec spec;
  spec.tokens = {"<unk>", "<s>", "</s>"};
  spec.types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl};
  for (int i = 3; i < 64; ++i) {
    std::string p = i < 40 ? "\xe2\x96\x81w" + std::to_string(i) : "x" + std::to_string(i);
    if (i % 7 == 0) p += "\xc3\xa9";  // é
    spec.tokens.push_back(p);
    spec.types.push_back(TokenType::kNormal);
  }
  spec.scores.assign(spec.tokens.size(), 0.f);
  return make_tokenizer(spec);
}

struct Collected {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::string text, emit;
  std::vector<double> times;
  bool done = false;
  FinalEvent fin;
};

// Pops everything available; returns true once the final event has been seen.
inline bool drain(RequestStream& s, Collected& c) {
  StreamEvent ev;
  while (s.try_pop(ev)) {
    if (auto* t = std::get_if<TokenEvent>(&ev)) {
      if (c.done) throw std::logic_error("token event after the final event");
      c.ids.push_back(t->id);
      c.logprobs.push_back(t->logprob);
      c.text += t->text;
      c.emit += t->emit;
      c.times.push_back(t->t);
    } else {
      if (c.done) throw std::logic_error("two final events");
      c.fin = std::get<FinalEvent>(ev);
      c.done = true;
    }
  }
  return c.done;
}

}  // namespace lmstream::testing

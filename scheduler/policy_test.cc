// Tests of the scheduling policy alone: plain SchedState in, plain StepPlan out, no model.
// Admission limits, decode-first, the prefill budget, preemption order, cancellation at each
// stage, decode cadence under a long prompt, and a randomized soak with the block invariant
// checked after every step.
#include "scheduler/policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

namespace lmstream {
namespace {

PolicyConfig cfg(int max_running, int prefill, int block_size = 4, int max_pos = 0) {
  PolicyConfig c;
  c.max_running = max_running;
  c.max_prefill_tokens = prefill;
  c.block_size = block_size;
  c.max_pos = max_pos;
  return c;
}

// What the executor does after a step: K/V written, one token sampled per logits row.
// Sequences reaching their target length are finished and removed.
void apply(SchedState& st, const StepPlan& plan, const std::map<uint64_t, int>& target = {}) {
  for (const auto& c : plan.chunks) {
    SeqState& s = st.seqs.at(c.id);
    ASSERT_EQ(c.start, s.n_computed);
    s.n_computed += c.n;
    ASSERT_LE(s.n_computed, s.n_tokens);
    if (c.want_logits) {
      ASSERT_EQ(s.n_computed, s.n_tokens);
      s.n_tokens++;
      auto it = target.find(c.id);
      if (it != target.end() && s.n_tokens >= it->second) remove_sequence(st, c.id);
    } else {
      ASSERT_LT(s.n_computed, s.n_tokens);
    }
  }
}

const ScheduledChunk* find(const StepPlan& p, uint64_t id) {
  for (const auto& c : p.chunks)
    if (c.id == id) return &c;
  return nullptr;
}

TEST(Policy, AdmitsUpToMaxRunning) {
  SchedState st(100);
  PolicyConfig c = cfg(2, 1000);
  for (uint64_t id = 1; id <= 3; ++id) add_sequence(st, id, 5);
  StepPlan p = schedule_step(st, c);
  EXPECT_EQ(p.admitted, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(st.waiting, (std::deque<uint64_t>{3}));
  ASSERT_EQ(p.chunks.size(), 2u);
  EXPECT_TRUE(p.chunks[0].want_logits);  // whole 5-token prompt in one chunk
  EXPECT_EQ(p.prefill_tokens, 10);
  EXPECT_EQ(check_state(st, c), "");
  apply(st, p);
  p = schedule_step(st, c);
  EXPECT_TRUE(p.admitted.empty());  // still full
  EXPECT_EQ(p.decode_tokens, 2);
  remove_sequence(st, 1);  // finished
  p = schedule_step(st, c);
  EXPECT_EQ(p.admitted, (std::vector<uint64_t>{3}));
  EXPECT_EQ(check_state(st, c), "");
}

TEST(Policy, AdmissionNeedsBlocksForPromptPlusOneAndIsStrictFcfs) {
  SchedState st(4);  // 4 blocks of 4 tokens
  PolicyConfig c = cfg(8, 1000);
  add_sequence(st, 1, 10);  // 3 blocks, check 3 (11 tokens)
  add_sequence(st, 2, 4);   // check: 5 tokens -> 2 blocks; only 1 left
  add_sequence(st, 3, 1);   // would fit, but must not overtake 2
  StepPlan p = schedule_step(st, c);
  EXPECT_EQ(p.admitted, (std::vector<uint64_t>{1}));
  EXPECT_EQ(st.seqs.at(1).blocks.size(), 3u);
  EXPECT_EQ(st.pool.n_free(), 1);
  EXPECT_EQ(st.waiting, (std::deque<uint64_t>{2, 3}));
  remove_sequence(st, 1);
  p = schedule_step(st, c);
  EXPECT_EQ(p.admitted, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(check_state(st, c), "");
}

TEST(Policy, ExactFitAtPoolCapacityIsAdmitted) {
  SchedState st(2);  // 8 tokens
  PolicyConfig c = cfg(8, 1000);
  add_sequence(st, 1, 7);  // 7 + 1 = 8 = capacity
  StepPlan p = schedule_step(st, c);
  EXPECT_EQ(p.admitted.size(), 1u);
  EXPECT_EQ(sequence_capacity(st, c), 8);
  EXPECT_EQ(sequence_capacity(st, cfg(8, 1000, 4, 6)), 6);  // context smaller than the pool
}

TEST(Policy, DecodesFirstThenPrefillWithinBudget) {
  SchedState st(1000);
  PolicyConfig c = cfg(8, 32);
  add_sequence(st, 1, 3);
  add_sequence(st, 2, 3);
  apply(st, schedule_step(st, c));  // both prefilled, both sampled a token
  add_sequence(st, 3, 100);
  StepPlan p = schedule_step(st, c);
  ASSERT_EQ(p.chunks.size(), 3u);
  EXPECT_TRUE(p.chunks[0].decode);
  EXPECT_TRUE(p.chunks[1].decode);
  EXPECT_EQ(p.chunks[2].id, 3u);
  EXPECT_EQ(p.chunks[2].n, 32);
  EXPECT_FALSE(p.chunks[2].want_logits);
  EXPECT_EQ(p.decode_tokens, 2);
  EXPECT_EQ(p.prefill_tokens, 32);
  // The whole prompt's blocks are allocated at admission.
  EXPECT_EQ(st.seqs.at(3).blocks.size(), 25u);
  apply(st, p);
  int steps = 1;
  for (;;) {
    p = schedule_step(st, c);
    const ScheduledChunk* ch = find(p, 3);
    ASSERT_NE(ch, nullptr);
    EXPECT_LE(p.prefill_tokens, 32);
    EXPECT_NE(find(p, 1), nullptr);
    EXPECT_NE(find(p, 2), nullptr);
    bool last = ch->want_logits;
    apply(st, p);
    ++steps;
    if (last) break;
  }
  EXPECT_EQ(steps, 4);  // 32 + 32 + 32 + 4
  EXPECT_EQ(check_state(st, c), "");
}

TEST(Policy, PerSequenceChunkCapLeavesTheBudgetToOthers) {
  SchedState st(1000);
  PolicyConfig c = cfg(8, 32);
  add_sequence(st, 1, 20);
  st.seqs.at(1).max_chunk = 6;
  add_sequence(st, 2, 50);
  StepPlan p = schedule_step(st, c);
  ASSERT_EQ(p.chunks.size(), 2u);
  EXPECT_EQ(p.chunks[0].n, 6);
  EXPECT_EQ(p.chunks[1].n, 26);  // the rest of the budget
  int chunks1 = 1;
  apply(st, p);
  for (int i = 0; i < 20; ++i) {
    p = schedule_step(st, c);
    const ScheduledChunk* ch = find(p, 1);
    if (ch && !ch->decode) {
      EXPECT_LE(ch->n, 6);
      ++chunks1;
    }
    apply(st, p);
    EXPECT_EQ(check_state(st, c), "");
  }
  EXPECT_EQ(chunks1, 4);  // 6 + 6 + 6 + 2
}

TEST(Policy, PrefillBudgetSharedFcfsAcrossNewPrompts) {
  SchedState st(1000);
  PolicyConfig c = cfg(8, 10);
  add_sequence(st, 1, 6);
  add_sequence(st, 2, 6);
  add_sequence(st, 3, 6);
  StepPlan p = schedule_step(st, c);
  EXPECT_EQ(p.admitted, (std::vector<uint64_t>{1, 2}));  // budget gone after 6 + 4
  ASSERT_EQ(p.chunks.size(), 2u);
  EXPECT_EQ(p.chunks[1].n, 4);
  EXPECT_FALSE(p.chunks[1].want_logits);
  apply(st, p);
  p = schedule_step(st, c);
  // 1 decodes, 2 finishes its prompt (2 tokens), 3 admitted with the remaining 8.
  EXPECT_EQ(p.decode_tokens, 1);
  ASSERT_NE(find(p, 2), nullptr);
  EXPECT_EQ(find(p, 2)->n, 2);
  EXPECT_TRUE(find(p, 2)->want_logits);
  EXPECT_EQ(p.admitted, (std::vector<uint64_t>{3}));
  EXPECT_EQ(find(p, 3)->n, 6);
}

TEST(Policy, PreemptsNewestWhenDecodeNeedsABlock) {
  SchedState st(6);  // 24 tokens
  PolicyConfig c = cfg(8, 1000);
  add_sequence(st, 1, 4);  // 1 block, full
  add_sequence(st, 2, 4);
  add_sequence(st, 3, 12);  // 3 blocks
  StepPlan p = schedule_step(st, c);
  ASSERT_EQ(p.admitted.size(), 3u);
  EXPECT_EQ(st.pool.n_free(), 1);
  apply(st, p);  // each sampled one token: 1 and 2 now need a 2nd block to decode
  p = schedule_step(st, c);
  // 1 takes the last free block; 2 needs one -> the newest (3) is preempted.
  EXPECT_EQ(p.preempted, (std::vector<uint64_t>{3}));
  EXPECT_NE(find(p, 1), nullptr);
  EXPECT_NE(find(p, 2), nullptr);
  EXPECT_EQ(find(p, 3), nullptr);
  EXPECT_EQ(st.waiting.front(), 3u);
  const SeqState& s3 = st.seqs.at(3);
  EXPECT_EQ(s3.n_computed, 0);
  EXPECT_EQ(s3.n_tokens, 13);  // keeps its generated token
  EXPECT_TRUE(s3.blocks.empty());
  EXPECT_EQ(s3.preemptions, 1);
  EXPECT_TRUE(p.admitted.empty());  // no admission in a step that preempted
  EXPECT_EQ(check_state(st, c), "");
  apply(st, p, {{1, 6}, {2, 6}});
  remove_sequence(st, 1);
  remove_sequence(st, 2);
  p = schedule_step(st, c);
  // Readmitted: re-prefills prompt + generated (13 tokens) and samples its next token.
  EXPECT_EQ(p.admitted, (std::vector<uint64_t>{3}));
  ASSERT_NE(find(p, 3), nullptr);
  EXPECT_EQ(find(p, 3)->n, 13);
  EXPECT_TRUE(find(p, 3)->want_logits);
}

TEST(Policy, PreemptsItselfWhenNewest) {
  SchedState st(3);
  PolicyConfig c = cfg(8, 1000);
  add_sequence(st, 1, 4);
  add_sequence(st, 2, 4);
  StepPlan p = schedule_step(st, c);
  apply(st, p);
  // Free: 1 block. Seq 1 takes it; seq 2 (newest) needs one: it preempts itself.
  p = schedule_step(st, c);
  EXPECT_EQ(p.preempted, (std::vector<uint64_t>{2}));
  ASSERT_EQ(p.chunks.size(), 1u);
  EXPECT_EQ(p.chunks[0].id, 1u);
  EXPECT_EQ(st.running, (std::vector<uint64_t>{1}));
  EXPECT_EQ(check_state(st, c), "");
}

TEST(Policy, CancellationAtEachStageFreesBlocksAtTheNextStep) {
  SchedState st(100);
  PolicyConfig c = cfg(2, 8);
  add_sequence(st, 1, 3);   // will be decoding
  add_sequence(st, 2, 20);  // will be prefilling (chunked)
  add_sequence(st, 3, 3);   // will be waiting (max_running = 2)
  apply(st, schedule_step(st, c));
  ASSERT_EQ(st.seqs.at(1).n_tokens - st.seqs.at(1).n_computed, 1);  // decoding
  ASSERT_GT(st.seqs.at(2).n_tokens - st.seqs.at(2).n_computed, 1);  // mid-prefill
  ASSERT_EQ(st.waiting, (std::deque<uint64_t>{3}));
  for (uint64_t id : {3u, 2u, 1u}) {
    st.seqs.at(id).cancelled = true;
    StepPlan p = schedule_step(st, c);
    EXPECT_EQ(p.cancelled, (std::vector<uint64_t>{id}));
    EXPECT_EQ(find(p, id), nullptr);
    EXPECT_EQ(st.seqs.count(id), 0u);
    EXPECT_EQ(check_state(st, c), "");
    apply(st, p);
  }
  EXPECT_EQ(st.pool.n_free(), 100);
  EXPECT_TRUE(st.seqs.empty());
}

TEST(Policy, CadenceWhileALongPromptPrefills) {
  // 8 streams decode; a 2,000-token prompt arrives. Count, per stream, the steps between tokens.
  SchedState st(2000);
  PolicyConfig c = cfg(64, 512, 16);
  for (uint64_t id = 1; id <= 8; ++id) add_sequence(st, id, 50);
  apply(st, schedule_step(st, c));
  std::map<uint64_t, int> last_token_step;
  for (uint64_t id = 1; id <= 8; ++id) last_token_step[id] = 0;
  add_sequence(st, 99, 2000);
  int max_gap = 0;
  bool long_done = false;
  int steps = 0;
  for (int step = 1; step <= 20 && !long_done; ++step) {
    StepPlan p = schedule_step(st, c);
    EXPECT_LE(p.prefill_tokens, 512);
    for (const auto& ch : p.chunks) {
      if (ch.id == 99) long_done = ch.want_logits;
      if (ch.id != 99 && ch.want_logits) {
        max_gap = std::max(max_gap, step - last_token_step[ch.id]);
        last_token_step[ch.id] = step;
      }
    }
    apply(st, p);
    steps = step;
  }
  EXPECT_TRUE(long_done);
  EXPECT_EQ(steps, 4);  // 2000 tokens in chunks of at most 512
  for (auto& [id, s] : last_token_step) EXPECT_EQ(s, steps) << id;
  EXPECT_LE(max_gap, 2);
  EXPECT_EQ(max_gap, 1);
}

TEST(Policy, RandomSoakKeepsInvariantAndFinishesEverything) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 20; ++round) {
    SchedState st(int(rng() % 20) + 8);
    PolicyConfig c = cfg(int(rng() % 6) + 1, int(rng() % 40) + 1, int(rng() % 4) + 1);
    const int cap = sequence_capacity(st, c);
    std::map<uint64_t, int> target;
    std::map<uint64_t, int> progress;  // highest n_tokens seen: must never go down
    uint64_t next = 1;
    int live_max = 0;
    for (int step = 0; step < 3000; ++step) {
      if (next <= 40 && rng() % 3 == 0) {
        int prompt = int(rng() % uint32_t(cap - 1)) + 1;
        add_sequence(st, next, prompt);
        target[next] = std::min(cap, prompt + int(rng() % 20) + 1);
        ++next;
      }
      if (!st.seqs.empty() && rng() % 50 == 0) {
        auto it = st.seqs.begin();
        std::advance(it, rng() % st.seqs.size());
        it->second.cancelled = true;
      }
      StepPlan p = schedule_step(st, c);
      ASSERT_EQ(check_state(st, c), "") << "round " << round << " step " << step;
      for (uint64_t id : p.cancelled) target.erase(id);
      if (!st.seqs.empty()) {
        ASSERT_FALSE(p.chunks.empty()) << "no progress";
      }
      apply(st, p, target);
      ASSERT_EQ(check_state(st, c), "");
      for (auto& [id, s] : st.seqs) {
        ASSERT_GE(s.n_tokens, progress[id]);
        progress[id] = s.n_tokens;
      }
      live_max = std::max(live_max, int(st.seqs.size()));
      if (next > 40 && st.seqs.empty()) break;
    }
    EXPECT_TRUE(st.seqs.empty()) << "round " << round << " did not drain";
    EXPECT_EQ(st.pool.n_free(), st.pool.n_blocks());
  }
}

TEST(Policy, RejectsBadInput) {
  SchedState st(4);
  EXPECT_THROW(add_sequence(st, 1, 0), std::invalid_argument);
  add_sequence(st, 1, 1);
  EXPECT_THROW(add_sequence(st, 1, 2), std::invalid_argument);
  EXPECT_THROW(schedule_step(st, cfg(1, 1, 0)), std::invalid_argument);
}

}  // namespace
}  // namespace lmstream

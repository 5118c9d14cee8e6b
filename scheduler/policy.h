// The scheduling policy as plain data: SchedState (queues, per-sequence token counts, the block
// pool) goes in, a StepPlan comes out. No model, no threads, no tokens: only counts and blocks,
// so every decision is testable without an engine. Policy (vLLM v1 / TGI style):
//  1. cancelled sequences leave (blocks freed), wherever they are;
//  2. every decoding sequence (one token to feed) gets its token, in admission order; a decode that
//     needs a new block and finds none preempts the most recently admitted running sequence by
//     recomputation (blocks freed, n_computed = 0, back to the FRONT of the waiting queue);
//  3. prefill chunks of running sequences, in admission order, within max_batch_prefill_tokens;
//  4. if nothing was preempted, admit waiting sequences FCFS while running < max_running, prefill
//     budget remains and the pool holds the whole (re)prefill plus one token. Blocks for the
//     whole (re)prefill are allocated at admission, so prefill never waits for blocks.
// Decode tokens do not count against the prefill budget. Only a chunk that reaches the end of
// the sequence's known tokens wants logits.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "scheduler/block_pool.h"

namespace lmstream {

struct PolicyConfig {
  int max_running = 64;          // max_rolling_batch_size
  int max_prefill_tokens = 512;  // max_batch_prefill_tokens per step
  int block_size = 16;
  int max_pos = 0;  // the model's context; 0 = unbounded
};

// What the policy knows of one sequence.
struct SeqState {
  uint64_t id = 0;
  int n_tokens = 0;    // prompt + generated tokens known so far
  int n_computed = 0;  // leading tokens whose K/V are in the sequence's blocks
  std::vector<int32_t> blocks;
  bool cancelled = false;
  int preemptions = 0;
  int max_chunk = 0;  // most prefill tokens per step for this sequence (0 = the step budget)
};

struct SchedState {
  explicit SchedState(int n_blocks) : pool(n_blocks) {}
  BlockPool pool;
  std::unordered_map<uint64_t, SeqState> seqs;  // every live sequence, waiting or running
  std::deque<uint64_t> waiting;                 // FCFS; preempted sequences go to the front
  std::vector<uint64_t> running;                // admission order (oldest first)
};

// Feed tokens [start, start + n) of sequence id this step.
struct ScheduledChunk {
  uint64_t id = 0;
  int start = 0;
  int n = 0;
  bool want_logits = false;  // the chunk ends at the sequence's last known token
  bool decode = false;       // a single next token of a sequence that already had its prefill
};

struct StepPlan {
  std::vector<ScheduledChunk> chunks;  // decodes first, then prefill chunks
  std::vector<uint64_t> admitted;      // left the waiting queue this step
  std::vector<uint64_t> preempted;     // blocks freed, back at the front of the waiting queue
  std::vector<uint64_t> cancelled;     // left for good, blocks freed, removed from seqs
  int decode_tokens = 0;
  int prefill_tokens = 0;
};

// Tokens the whole pool (or the model's context, if smaller) can hold for one sequence.
int sequence_capacity(const SchedState& st, const PolicyConfig& cfg);
inline int blocks_for(int tokens, int block_size) { return (tokens + block_size - 1) / block_size; }

// Adds a sequence with n_tokens prompt tokens at the back of the waiting queue.
void add_sequence(SchedState& st, uint64_t id, int n_tokens);
// Removes a sequence wherever it is and frees its blocks (finished or failed).
void remove_sequence(SchedState& st, uint64_t id);
// Decides the next step. Mutates st (allocations, preemptions, admissions, cancellations) and
// returns what it did. The caller then runs the chunks, adds n to n_computed, and appends sampled
// tokens (n_tokens += 1) for chunks that want logits.
StepPlan schedule_step(SchedState& st, const PolicyConfig& cfg);
// The block invariant over st's live sequences: "" when it holds.
std::string check_state(const SchedState& st, const PolicyConfig& cfg);

}  // namespace lmstream

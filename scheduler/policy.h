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
// Prefix caching (PolicyConfig::prefix_caching, sequences that give their tokens): at admission
// the longest chain of cached full blocks matching the sequence's leading tokens is taken from the
// pool (shared, not recomputed; never the whole sequence: at least one token is computed, for its
// logits) and prefill starts after it. Every full block whose K/V are computed is published to the
// cache: each step for running sequences, and when a sequence finishes, is cancelled or preempted.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "scheduler/block_pool.h"
#include "scheduler/prefix_hash.h"

namespace lmstream {

struct PolicyConfig {
  int max_running = 64;          // max_rolling_batch_size
  int max_prefill_tokens = 512;  // max_batch_prefill_tokens per step
  int block_size = 16;
  int max_pos = 0;  // the model's context; 0 = unbounded
  bool prefix_caching = false;
  // Everything besides tokens that changes the K/V (model identity, KV dtype, block size): part
  // of every block's key.
  std::string cache_namespace;
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

  // Prefix caching: only when tokens is set (it points at the caller's token vector, which must
  // hold n_tokens tokens and outlive the sequence's state) and the config turns it on.
  const std::vector<int32_t>* tokens = nullptr;
  std::string salt;       // cache_salt: sequences with different salts never share blocks
  bool use_cache = true;  // take cached blocks at admission (publishing happens regardless)
  int cached_tokens = 0;  // tokens taken from the cache at the last admission
  // Scheduler-internal chain state.
  std::vector<BlockDigest> digests;  // of the leading full blocks hashed so far
  std::vector<uint64_t> serials;     // per leading block: the canonical cached block's serial
  int n_published = 0;               // leading blocks published (or taken from the cache)
  bool publish_stuck = false;        // a key collision stopped this sequence's chain
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
  int lookup_tokens = 0;  // tokens of the sequences admitted with a cache lookup
  int cached_tokens = 0;  // of those, tokens taken from the cache
};

// Tokens the whole pool (or the model's context, if smaller) can hold for one sequence.
int sequence_capacity(const SchedState& st, const PolicyConfig& cfg);
inline int blocks_for(int tokens, int block_size) { return (tokens + block_size - 1) / block_size; }

// Adds a sequence with n_tokens prompt tokens at the back of the waiting queue.
void add_sequence(SchedState& st, uint64_t id, int n_tokens);
// Removes a sequence wherever it is and frees its blocks (finished or failed). With cfg, its
// computed full blocks are published to the prefix cache first.
void remove_sequence(SchedState& st, uint64_t id);
void remove_sequence(SchedState& st, uint64_t id, const PolicyConfig& cfg);
// Decides the next step. Mutates st (allocations, preemptions, admissions, cancellations) and
// returns what it did. The caller then runs the chunks, adds n to n_computed, and appends sampled
// tokens (n_tokens += 1) for chunks that want logits.
StepPlan schedule_step(SchedState& st, const PolicyConfig& cfg);
// The block invariant over st's live sequences: "" when it holds.
std::string check_state(const SchedState& st, const PolicyConfig& cfg);

}  // namespace lmstream

// Continuous ("rolling") batching: requests join and leave the running batch at every engine step.
// FCFS admission bounded by max_rolling_batch_size and free KV blocks, decode tokens first then
// chunked prefill within max_batch_prefill_tokens, preemption of the newest sequence by
// recomputation when blocks run out, cancellation at every stage. Runs its own engine thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "scheduler/request.h"
#include "tokenizer/tokenizer.h"

namespace lmstream {

struct SchedulerOptions {
  int max_rolling_batch_size = 64;  // running sequences at most (LMI option.max_rolling_batch_size)
  int max_batch_prefill_tokens = 512;  // prefill tokens per step (TGI MAX_BATCH_PREFILL_TOKENS)
  // Test-only fault injection: a request that has generated this many tokens (and asked for more)
  // fails with kError "injected engine failure", as an engine fault mid-stream would. 0 = off.
  int fail_after_tokens = 0;
  // Test-only pacing: the engine thread sleeps this long after every step that ran a batch, so
  // tests can hold streams open for a known time on any machine. 0 = off.
  int step_delay_ms = 0;
  // Automatic prefix caching (vLLM's enable_prefix_caching, TGI's PREFIX_CACHING): full KV blocks
  // are kept after their sequences end and shared by later requests with the same prefix.
  bool prefix_caching = true;
  // Mixed into every prefix-cache key: what besides the tokens changes the K/V. The Scheduler
  // fills it from the engine (Engine::cache_identity) when empty.
  std::string cache_namespace;
};

struct SchedulerStats {
  int running = 0;  // sequences in the batch (prefilling or decoding)
  int waiting = 0;  // queued, including preempted ones
  int blocks_used = 0;
  int blocks_free = 0;
  uint64_t steps = 0;
  uint64_t preemptions = 0;
  int last_batch_size = 0;
  // Prefix cache.
  bool prefix_caching = false;
  int cached_blocks = 0;       // blocks holding cached prefixes (in use or evictable)
  uint64_t evictions = 0;      // cached blocks reused for other data
  uint64_t lookup_tokens = 0;  // prompt tokens of admissions that looked up the cache
  uint64_t cached_tokens = 0;  // of those, tokens whose K/V came from the cache
};

class Scheduler {
 public:
  // The engine's KV pool (engine.n_blocks()) is managed by the scheduler's BlockPool.
  Scheduler(Engine& engine, const Tokenizer& tok, const SchedulerOptions& opts);
  ~Scheduler();  // stops the engine thread; unfinished requests end with kCancelled

  // Queues a request. Never blocks on the engine. A request that can never fit (prompt + 1 token
  // more than the whole KV pool or than max_pos) ends at once with kError.
  std::shared_ptr<RequestStream> submit(GenerateRequest req);
  SchedulerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lmstream

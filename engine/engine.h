// The forward pass of the Llama architecture over a ragged batch with a paged KV cache.
// One step = one pass over every weight matrix for all rows of the batch (decode tokens and
// prefill chunks of any number of sequences). Each row's result is bit-identical whatever else is
// in the batch (batch invariance): kernels never let batch size or row position change the order of
// a reduction. The engine knows which KV blocks to read and write from the block tables it is
// given; who owns which block is the caller's business (scheduler/block_pool.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/shard.h"
#include "model/model.h"

namespace lmstream {
namespace dist {
class Comm;
}

enum class KvType { F32, F16 };

struct EngineOptions {
  int threads = 0;      // 0 = all cores
  int block_size = 16;  // tokens per KV block
  int n_blocks = 0;     // KV pool size in blocks; 0 = enough for one max_pos sequence
  KvType kv_type = KvType::F16;
  // Tensor parallelism: the ranks' communicator and this rank's shard (the model given to the
  // engine is then shard_model()'s slice). Rank 0 broadcasts each step's plan (lockstep.h); the
  // other ranks run run_worker(). Two all-reduces per layer; logits gathered on rank 0.
  dist::Comm* tp_comm = nullptr;
  ShardPlan shard;
  // The packed-weight cache (engine/packed_cache.h): its directory ("" = off), the least packed
  // size worth caching (smaller models pack in milliseconds), and where its background writer's
  // outcome is reported.
  std::string packed_cache_dir;
  size_t packed_cache_min_bytes = 0;
  std::function<void(const std::string&)> packed_cache_log;
};

// One sequence's share of a step: tokens at positions [pos, pos + tokens.size()) of the sequence.
// Their K/V are written to the sequence's blocks; attention reads its first pos + tokens.size()
// positions through block_table (which must cover them).
struct SeqStep {
  std::span<const int32_t> tokens;
  int32_t pos = 0;
  std::span<const int32_t> block_table;
  bool want_logits = true;  // logits of the last token of this chunk
  bool all_logits = false;  // logits of every token of this chunk (prompt logprobs, tests)
};

class ThreadPool;
class KvCache;

// Where the big allocations landed (for the start-up log and benchmarks).
struct MemoryReport {
  std::string thp_mode;           // the host's transparent huge page setting
  size_t weight_arena_bytes = 0;  // the packed matrices' arena
  size_t weight_huge_bytes = 0;   // of it, backed by huge pages now
  std::string weight_reason;      // why huge pages are (not) used
  size_t kv_bytes = 0;
  size_t kv_huge_bytes = 0;  // KV pages touched so far that are huge pages
  std::string kv_reason;
  std::string weight_cache;  // what the packed-weight cache did (hit, miss and why, off)
};
// One line for the start-up log: "weights: 1 arena of 1090.0 MiB, 1088.0 MiB in huge pages (THP
// madvise, MADV_HUGEPAGE ...); KV: ...".
std::string describe(const MemoryReport& r);

// How the KV pool is sized, first rule that applies: an explicit block count; a capacity in
// tokens (TGI's MAX_BATCH_TOTAL_TOKENS); a memory budget in bytes (--kv-cache-memory); otherwise
// default_tokens (the model's context when 0). min_tokens floors a token count (given or
// default), never a block count or a memory budget.
struct KvSizing {
  int64_t blocks = 0;
  int64_t tokens = 0;
  size_t memory_bytes = 0;
  int64_t default_tokens = 0;
  int64_t min_tokens = 0;
};

class Engine {
 public:
  Engine(const Model& model, const EngineOptions& opts);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs the batch. logits_out gets, in batch order, one row of vocab() floats per SeqStep with
  // want_logits (tokens.size() rows when all_logits). Throws std::invalid_argument on a malformed
  // batch (bad token id, position past max_pos, block table too short or with an out-of-range
  // block).
  void step(std::span<const SeqStep> batch, float* logits_out);

  const LlamaConfig& cfg() const { return model_.cfg; }
  int vocab() const { return model_.cfg.vocab_size; }
  int block_size() const { return opts_.block_size; }
  int n_blocks() const { return opts_.n_blocks; }
  int threads() const;
  size_t kv_bytes() const;
  KvType kv_type() const { return opts_.kv_type; }
  MemoryReport memory_report() const;
  // What besides the tokens determines the K/V this engine computes (the model file and its
  // shape, the KV dtype, the block size): the prefix cache's key namespace.
  std::string cache_identity() const;
  static size_t kv_bytes_per_token(const LlamaConfig& c, KvType t);
  // KV pool size in blocks; the one sizing rule for every caller (see KvSizing).
  static int kv_blocks(const LlamaConfig& c, KvType t, int block_size, const KvSizing& s);

  // Tensor parallelism (1 without it). Ranks other than 0 call run_worker(), which executes rank
  // 0's step plans until rank 0 shuts the workers down (its destructor does, or
  // shutdown_workers()); a rank that hears nothing for the timeout aborts every rank.
  int tp_size() const;
  int tp_rank() const;
  const ShardPlan* shard() const;  // nullptr without tensor parallelism
  void run_worker();
  void shutdown_workers();

 private:
  struct Scratch;
  struct Row;
  struct Tp;
  std::vector<Row> validate(std::span<const SeqStep> batch) const;
  void compute(std::span<const SeqStep> batch, const std::vector<Row>& rows, float* logits_out);
  void tp_start();  // engine_tp.cc
  void forward_rows(std::span<const SeqStep> batch, const Row* rows, size_t n, const char* want,
                    float* logits);
  const Model& model_;
  EngineOptions opts_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<Scratch> s_;
  std::unique_ptr<Tp> tp_;
};

}  // namespace lmstream

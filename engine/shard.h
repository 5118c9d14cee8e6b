// Tensor-parallel slicing of a model (the Megatron split): which heads, FFN units and vocabulary
// rows a rank owns, and a Model holding only that rank's slices. q/k/v, gate, up and the output
// matrix split by output rows (whole heads, whole FFN units, vocabulary ranges); o_proj and down
// split by input columns, so each rank's result is a partial sum that one all-reduce completes.
// With fewer KV heads than ranks, KV heads are replicated (vLLM's rule: consecutive ranks share
// one). Quantized blocks are never cut: the FFN partition is uneven where needed so that every
// rank's down columns start and end on a block boundary. The embedding stays whole (a lookup
// reads only the batch's rows from the file mapping; nothing to reduce).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace lmstream {

struct ShardPlan {
  int rank = 0, size = 1;
  int head0 = 0, heads = 0;   // query heads [head0, head0 + heads)
  int kv0 = 0, kv_heads = 0;  // KV heads [kv0, kv0 + kv_heads)
  int kv_replicas = 1;        // ranks holding each KV head (> 1 when fewer KV heads than ranks)
  int64_t ffn0 = 0, ffn = 0;  // FFN units [ffn0, ffn0 + ffn)
  std::vector<int64_t> vocab_begin;  // per rank: first output row; vocab_begin[size] = vocab
  int64_t vocab0() const { return vocab_begin[size_t(rank)]; }
  int64_t vocab() const { return vocab_begin[size_t(rank) + 1] - vocab_begin[size_t(rank)]; }
  // "rank 1/2: heads 4-7 of 8, KV heads 1-1 of 2, FFN 352-703 of 704, vocab 16000-31999"
  std::string describe(const LlamaConfig& full) const;
};

// The split for rank of size ranks; throws std::invalid_argument saying why a model cannot be
// split that way (heads not divisible, a quantized block that would be cut).
ShardPlan plan_shard(const Model& m, int rank, int size);

// A model with only p's slices: row slices are views into full's storage, column slices (o_proj,
// down) are copies. Takes over full's storage (file mappings, owned buffers). cfg gives the local
// head, KV head and FFN counts; vocab_size stays the full vocabulary (the embedding is whole) and
// output holds p.vocab() rows.
std::unique_ptr<Model> shard_model(std::unique_ptr<Model> full, const ShardPlan& p);

}  // namespace lmstream

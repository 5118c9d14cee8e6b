// Storage for the keys and values of every layer, in blocks of block_size positions. Layout per
// layer: [block][K|V][kv_head] then, for K, [head_dim][slot] (transposed, so a block's scores are
// vector FMAs) and, for V, [slot][head_dim]; fp16 or fp32. Which block belongs to which sequence
// is not known here (scheduler/block_pool.h owns that).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/engine.h"
#include "kernels/huge_arena.h"

namespace lmstream {

class KvCache {
 public:
  KvCache(const LlamaConfig& c, int n_blocks, int block_size, KvType type);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  size_t elt() const { return elt_; }
  const HugeArena& arena() const { return *arena_; }
  size_t bytes() const { return bytes_; }
  // Bytes between consecutive blocks of one layer.
  size_t block_stride() const { return block_stride_; }
  uint8_t* k(int layer, int kv_head) const {
    return base_ + size_t(layer) * layer_bytes_ + size_t(kv_head) * head_bytes_;
  }
  uint8_t* v(int layer, int kv_head) const { return k(layer, kv_head) + kv_bytes_; }

 private:
  std::unique_ptr<HugeArena> arena_;
  uint8_t* base_ = nullptr;
  size_t bytes_ = 0, elt_ = 2, layer_bytes_ = 0, block_stride_ = 0, head_bytes_ = 0, kv_bytes_ = 0;
};

}  // namespace lmstream

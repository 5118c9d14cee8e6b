// KvCache: one huge-page arena (kernels/huge_arena.h), lazily committed, so untouched parts cost
// no resident memory.
#include "engine/kv_cache.h"

#include <new>
#include <stdexcept>
#include <string>

namespace lmstream {

KvCache::KvCache(const LlamaConfig& c, int n_blocks, int block_size, KvType type) {
  elt_ = type == KvType::F16 ? 2 : 4;
  head_bytes_ = size_t(block_size) * size_t(c.head_dim) * elt_;  // one head, one block, K or V
  kv_bytes_ = head_bytes_ * size_t(c.n_kv_heads);                // all heads of K in a block
  block_stride_ = 2 * kv_bytes_;
  layer_bytes_ = block_stride_ * size_t(n_blocks);
  bytes_ = layer_bytes_ * size_t(c.n_layers);
  if (bytes_ == 0) throw std::invalid_argument("KV cache of zero size");
  try {
    arena_ = std::make_unique<HugeArena>(bytes_);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot allocate a KV cache of " + std::to_string(bytes_) +
                             " bytes: " + e.what());
  }
  base_ = arena_->data();
}

KvCache::~KvCache() = default;

}  // namespace lmstream

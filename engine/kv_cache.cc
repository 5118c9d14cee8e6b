// KvCache: one anonymous mapping, so untouched blocks cost no resident memory.
#include "engine/kv_cache.h"

#include <sys/mman.h>

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
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    throw std::runtime_error("cannot allocate a KV cache of " + std::to_string(bytes_) + " bytes");
  base_ = static_cast<uint8_t*>(p);
}

KvCache::~KvCache() {
  if (base_) munmap(base_, bytes_);
}

}  // namespace lmstream

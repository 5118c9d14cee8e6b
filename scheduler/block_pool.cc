// BlockPool: the single owner of KV block accounting (see block_pool.h). A free stack plus a
// per-block owner array, so allocate/release are O(blocks moved) and the invariant is checkable.
#include "scheduler/block_pool.h"

#include <stdexcept>

namespace lmstream {

BlockPool::BlockPool(int n_blocks) {
  if (n_blocks < 0) throw std::invalid_argument("BlockPool: negative block count");
  owner_.assign(size_t(n_blocks), kFree);
  free_.reserve(size_t(n_blocks));
  // Stack order: block 0 is handed out first.
  for (int b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

bool BlockPool::allocate(uint64_t owner, int n, std::vector<int32_t>& table) {
  if (owner == kFree) throw std::invalid_argument("BlockPool: reserved owner id");
  if (n < 0) throw std::invalid_argument("BlockPool: negative allocation");
  if (n > n_free()) return false;
  for (int i = 0; i < n; ++i) {
    int32_t b = free_.back();
    free_.pop_back();
    owner_[size_t(b)] = owner;
    table.push_back(b);
  }
  return true;
}

void BlockPool::release(uint64_t owner, std::vector<int32_t>& table) {
  // Validate everything first so a bad table changes nothing.
  for (int32_t b : table) {
    if (b < 0 || b >= n_blocks())
      throw std::logic_error("BlockPool: release of out-of-range block " + std::to_string(b));
    if (owner_[size_t(b)] != owner)
      throw std::logic_error("BlockPool: sequence " + std::to_string(owner) + " releases block " +
                             std::to_string(b) + " it does not own");
  }
  // Release in reverse so the stack hands the same blocks back in the same order next time.
  for (auto it = table.rbegin(); it != table.rend(); ++it) {
    owner_[size_t(*it)] = kFree;
    free_.push_back(*it);
  }
  table.clear();
}

std::string BlockPool::check(
    const std::unordered_map<uint64_t, const std::vector<int32_t>*>& live) const {
  const size_t n = owner_.size();
  std::vector<uint8_t> seen(n, 0);
  size_t owned = 0;
  for (const auto& [seq, table] : live) {
    if (!table) return "sequence " + std::to_string(seq) + " has no table";
    for (int32_t b : *table) {
      if (b < 0 || size_t(b) >= n)
        return "sequence " + std::to_string(seq) + " holds out-of-range block " + std::to_string(b);
      if (seen[size_t(b)])
        return "block " + std::to_string(b) + " appears in more than one table (or twice)";
      seen[size_t(b)] = 1;
      if (owner_[size_t(b)] != seq)
        return "block " + std::to_string(b) + " is in sequence " + std::to_string(seq) +
               "'s table but the pool records owner " +
               (owner_[size_t(b)] == kFree ? std::string("free")
                                           : std::to_string(owner_[size_t(b)]));
      ++owned;
    }
  }
  for (int32_t b : free_) {
    if (b < 0 || size_t(b) >= n) return "free list holds out-of-range block " + std::to_string(b);
    if (seen[size_t(b)] == 2) return "block " + std::to_string(b) + " is on the free list twice";
    if (seen[size_t(b)] == 1)
      return "block " + std::to_string(b) + " is both free and owned by a live sequence";
    if (owner_[size_t(b)] != kFree)
      return "block " + std::to_string(b) + " is on the free list but has an owner";
    seen[size_t(b)] = 2;
  }
  for (size_t b = 0; b < n; ++b)
    if (!seen[b])
      return "block " + std::to_string(b) + " is neither free nor in a live sequence's table" +
             (owner_[b] == kFree ? "" : " (leaked by sequence " + std::to_string(owner_[b]) + ")");
  if (owned + free_.size() != n) return "block count mismatch";
  return "";
}

}  // namespace lmstream

// The one owner of KV block accounting. Blocks are handed to sequences and returned; the invariant
// "every block is free or owned by exactly one live sequence" is checkable at any time.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace lmstream {

class BlockPool {
 public:
  explicit BlockPool(int n_blocks);
  int n_blocks() const { return int(owner_.size()); }
  int n_free() const { return int(free_.size()); }
  int n_used() const { return n_blocks() - n_free(); }
  // Appends n blocks to owner's table. Returns false (and changes nothing) if fewer are free.
  bool allocate(uint64_t owner, int n, std::vector<int32_t>& table);
  // Returns every block of the table to the pool and clears it.
  void release(uint64_t owner, std::vector<int32_t>& table);
  // Checks the invariant against the live sequences' tables; returns "" when it holds, otherwise
  // a description of the first violation.
  std::string check(const std::unordered_map<uint64_t, const std::vector<int32_t>*>& live) const;

 private:
  static constexpr uint64_t kFree = ~uint64_t(0);
  std::vector<uint64_t> owner_;  // per block: owning sequence id or kFree
  std::vector<int32_t> free_;    // stack of free block ids
};

}  // namespace lmstream

// The one owner of KV block accounting, including the automatic prefix cache. A block is held by
// zero or more live sequences (a reference per holder); a full block whose K/V are computed can be
// published under its prefix key (prefix_hash.h) so later sequences with the same prefix share it
// instead of recomputing it. A published block whose last holder leaves stays cached, evictable in
// least-recently-used order when the pool needs room. Invariant, checkable at any time: every block
// is either free (unheld, uncached), evictable (unheld, cached, on the LRU list once) or held by
// exactly the sequences whose tables list it; every cached block is in the key index under its own
// key, and nothing else is.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace lmstream {

class BlockPool {
 public:
  explicit BlockPool(int n_blocks);
  int n_blocks() const { return int(meta_.size()); }
  // Blocks an allocation can take now: free ones plus evictable cached ones.
  int n_free() const { return int(free_.size()) + n_evictable_; }
  int n_used() const { return n_blocks() - n_free(); }
  int n_cached() const { return int(index_.size()); }  // held or evictable
  int n_evictable() const { return n_evictable_; }
  uint64_t evictions() const { return evictions_; }

  // Appends n blocks to owner's table, free ones first, then evicting cached blocks least
  // recently used first. Returns false (and changes nothing) if fewer than n can be had.
  bool allocate(uint64_t owner, int n, std::vector<int32_t>& table);
  // Drops owner's reference to every block of the table and clears it. Blocks nobody holds any
  // more return to the free list or, when cached, to the LRU tail in reverse table order (so a
  // sequence's last blocks are evicted before its first ones).
  void release(uint64_t owner, std::vector<int32_t>& table);

  // Prefix cache. A cached block is identified by its key (the truncated hash chain) and
  // verified by value: its own token ids, its parent (the cached block before it, by serial; 0
  // for the first block) and, for a first block, the cache salt. Returns the block or -1.
  int32_t lookup(uint64_t key, std::span<const int32_t> tokens, uint64_t parent_serial,
                 const std::string& salt) const;
  // The serial of a cached block (unique over the pool's life; 0 when not cached).
  uint64_t serial(int32_t block) const { return meta_.at(size_t(block)).serial; }
  bool held(int32_t block) const { return !meta_.at(size_t(block)).holders.empty(); }
  int refs(int32_t block) const { return int(meta_.at(size_t(block)).holders.size()); }
  // Adds owner as a holder of a cached block and appends it to the table (removing it from the
  // LRU list if nobody held it).
  void acquire(uint64_t owner, int32_t block, std::vector<int32_t>& table);
  // Publishes a block owner holds, full and computed, under key. When an equal block (same key
  // and contents) is already cached, nothing changes and that block's serial is returned (the
  // caller's copy stays private); otherwise the block becomes cached and its new serial is
  // returned.
  uint64_t publish(uint64_t owner, int32_t block, uint64_t key, std::span<const int32_t> tokens,
                   uint64_t parent_serial, const std::string& salt);

  // Checks the invariant against the live sequences' tables; returns "" when it holds, otherwise
  // a description of the first violation.
  std::string check(const std::unordered_map<uint64_t, const std::vector<int32_t>*>& live) const;

 private:
  struct Meta {
    std::vector<uint64_t> holders;  // live sequences holding it (one entry per reference)
    // When cached (serial != 0):
    uint64_t serial = 0;
    uint64_t key = 0;
    uint64_t parent_serial = 0;
    std::vector<int32_t> tokens;
    std::string salt;  // first blocks only
    // LRU links when evictable (-1 = none).
    int32_t prev = -1, next = -1;
    bool in_lru = false;
    bool in_free = false;
  };
  void lru_push_back(int32_t b);
  void lru_remove(int32_t b);
  void uncache(int32_t b);

  std::vector<Meta> meta_;
  std::vector<int32_t> free_;                    // stack of free (uncached, unheld) block ids
  std::unordered_map<uint64_t, int32_t> index_;  // key -> cached block
  int32_t lru_head_ = -1, lru_tail_ = -1;        // head = least recently used
  int n_evictable_ = 0;
  uint64_t next_serial_ = 1;
  uint64_t evictions_ = 0;
};

}  // namespace lmstream

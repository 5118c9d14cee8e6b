// BlockPool: the single owner of KV block accounting and of the prefix cache's blocks (see
// block_pool.h). A free stack, an intrusive LRU list of evictable cached blocks (O(1) removal from
// the middle when a cached block is hit), a key index, and per-block holders so the invariant is
// checkable against the live sequences' tables.
#include "scheduler/block_pool.h"

#include <algorithm>
#include <stdexcept>

namespace lmstream {

BlockPool::BlockPool(int n_blocks) {
  if (n_blocks < 0) throw std::invalid_argument("BlockPool: negative block count");
  meta_.resize(size_t(n_blocks));
  free_.reserve(size_t(n_blocks));
  // Stack order: block 0 is handed out first.
  for (int b = n_blocks - 1; b >= 0; --b) {
    free_.push_back(b);
    meta_[size_t(b)].in_free = true;
  }
}

void BlockPool::lru_push_back(int32_t b) {
  Meta& m = meta_[size_t(b)];
  m.prev = lru_tail_;
  m.next = -1;
  if (lru_tail_ >= 0)
    meta_[size_t(lru_tail_)].next = b;
  else
    lru_head_ = b;
  lru_tail_ = b;
  m.in_lru = true;
  ++n_evictable_;
}

void BlockPool::lru_remove(int32_t b) {
  Meta& m = meta_[size_t(b)];
  if (m.prev >= 0)
    meta_[size_t(m.prev)].next = m.next;
  else
    lru_head_ = m.next;
  if (m.next >= 0)
    meta_[size_t(m.next)].prev = m.prev;
  else
    lru_tail_ = m.prev;
  m.prev = m.next = -1;
  m.in_lru = false;
  --n_evictable_;
}

void BlockPool::uncache(int32_t b) {
  Meta& m = meta_[size_t(b)];
  auto it = index_.find(m.key);
  if (it != index_.end() && it->second == b) index_.erase(it);
  m.serial = 0;
  m.key = 0;
  m.parent_serial = 0;
  m.tokens.clear();
  m.salt.clear();
}

bool BlockPool::allocate(uint64_t owner, int n, std::vector<int32_t>& table) {
  if (n < 0) throw std::invalid_argument("BlockPool: negative allocation");
  if (n > n_free()) return false;
  (void)owner;
  for (int i = 0; i < n; ++i) {
    int32_t b;
    if (!free_.empty()) {
      b = free_.back();
      free_.pop_back();
      meta_[size_t(b)].in_free = false;
    } else {
      b = lru_head_;  // least recently used cached block
      lru_remove(b);
      uncache(b);
      ++evictions_;
    }
    meta_[size_t(b)].holders.push_back(owner);
    table.push_back(b);
  }
  return true;
}

void BlockPool::release(uint64_t owner, std::vector<int32_t>& table) {
  // Validate everything first so a bad table changes nothing.
  for (int32_t b : table) {
    if (b < 0 || b >= n_blocks())
      throw std::logic_error("BlockPool: release of out-of-range block " + std::to_string(b));
    const auto& h = meta_[size_t(b)].holders;
    if (std::find(h.begin(), h.end(), owner) == h.end())
      throw std::logic_error("BlockPool: sequence " + std::to_string(owner) + " releases block " +
                             std::to_string(b) + " it does not hold");
  }
  // In reverse: the free stack then hands the same blocks back in the same order next time, and
  // the LRU list gets a sequence's last blocks first (evicted first).
  for (auto it = table.rbegin(); it != table.rend(); ++it) {
    Meta& m = meta_[size_t(*it)];
    m.holders.erase(std::find(m.holders.begin(), m.holders.end(), owner));
    if (!m.holders.empty()) continue;
    if (m.serial != 0) {
      lru_push_back(*it);
    } else {
      m.in_free = true;
      free_.push_back(*it);
    }
  }
  table.clear();
}

int32_t BlockPool::lookup(uint64_t key, std::span<const int32_t> tokens, uint64_t parent_serial,
                          const std::string& salt) const {
  auto it = index_.find(key);
  if (it == index_.end()) return -1;
  const Meta& m = meta_[size_t(it->second)];
  // Verified by value, never on the key alone.
  if (m.parent_serial != parent_serial) return -1;
  if (!std::equal(m.tokens.begin(), m.tokens.end(), tokens.begin(), tokens.end())) return -1;
  if (parent_serial == 0 && m.salt != salt) return -1;
  return it->second;
}

void BlockPool::acquire(uint64_t owner, int32_t block, std::vector<int32_t>& table) {
  if (block < 0 || block >= n_blocks())
    throw std::logic_error("BlockPool: acquire of out-of-range block " + std::to_string(block));
  Meta& m = meta_[size_t(block)];
  if (m.serial == 0) throw std::logic_error("BlockPool: acquire of an uncached block");
  if (std::find(m.holders.begin(), m.holders.end(), owner) != m.holders.end())
    throw std::logic_error("BlockPool: sequence acquires a block it already holds");
  if (m.holders.empty()) lru_remove(block);
  m.holders.push_back(owner);
  table.push_back(block);
}

uint64_t BlockPool::publish(uint64_t owner, int32_t block, uint64_t key,
                            std::span<const int32_t> tokens, uint64_t parent_serial,
                            const std::string& salt) {
  if (block < 0 || block >= n_blocks())
    throw std::logic_error("BlockPool: publish of out-of-range block " + std::to_string(block));
  Meta& m = meta_[size_t(block)];
  if (std::find(m.holders.begin(), m.holders.end(), owner) == m.holders.end())
    throw std::logic_error("BlockPool: sequence publishes a block it does not hold");
  if (m.serial != 0) return m.serial;  // already cached (it came from the cache)
  auto it = index_.find(key);
  if (it != index_.end()) {
    int32_t same = lookup(key, tokens, parent_serial, salt);
    // An equal block is cached already: keep it canonical. (A different block under the same
    // key, a truncated-hash collision, keeps its place; this one stays private.)
    return same >= 0 ? meta_[size_t(same)].serial : 0;
  }
  m.serial = next_serial_++;
  m.key = key;
  m.parent_serial = parent_serial;
  m.tokens.assign(tokens.begin(), tokens.end());
  m.salt = parent_serial == 0 ? salt : std::string();
  index_.emplace(key, block);
  return m.serial;
}

std::string BlockPool::check(
    const std::unordered_map<uint64_t, const std::vector<int32_t>*>& live) const {
  const size_t n = meta_.size();
  std::vector<std::vector<uint64_t>> holders(n);
  for (const auto& [seq, table] : live) {
    if (!table) return "sequence " + std::to_string(seq) + " has no table";
    for (int32_t b : *table) {
      if (b < 0 || size_t(b) >= n)
        return "sequence " + std::to_string(seq) + " holds out-of-range block " + std::to_string(b);
      auto& h = holders[size_t(b)];
      if (std::find(h.begin(), h.end(), seq) != h.end())
        return "block " + std::to_string(b) + " appears twice in sequence " + std::to_string(seq) +
               "'s table";
      h.push_back(seq);
    }
  }
  size_t n_in_free = 0, n_in_lru = 0, n_serial = 0;
  for (size_t b = 0; b < n; ++b) {
    const Meta& m = meta_[b];
    std::vector<uint64_t> want = holders[b], have = m.holders;
    std::sort(want.begin(), want.end());
    std::sort(have.begin(), have.end());
    const std::string blk = "block " + std::to_string(b);
    if (want != have) {
      if (have.empty())
        return blk + " is in a live sequence's table but the pool records no holder";
      if (want.empty())
        return blk + " is neither free nor in a live sequence's table (leaked by sequence " +
               std::to_string(have.front()) + ")";
      return blk + " is held by " + std::to_string(have.size()) + " sequence(s) per the pool but " +
             std::to_string(want.size()) + " live table(s) list it";
    }
    if (m.serial != 0) {
      ++n_serial;
      auto it = index_.find(m.key);
      if (it == index_.end() || it->second != int32_t(b))
        return blk + " is cached but not indexed under its key";
    }
    n_in_free += m.in_free;
    n_in_lru += m.in_lru;
    if (m.in_free && m.in_lru) return blk + " is both free and evictable";
    if (have.empty()) {
      if (m.serial == 0 && !m.in_free) return blk + " is unheld and uncached but not free";
      if (m.serial != 0 && !m.in_lru) return blk + " is unheld and cached but not evictable";
    } else if (m.in_free || m.in_lru) {
      return blk + " is held by a live sequence but also " + (m.in_free ? "free" : "evictable");
    }
    if (m.in_free && m.serial != 0) return blk + " is free but still cached";
  }
  if (n_in_free != free_.size()) return "free list and free flags disagree";
  std::vector<uint8_t> seen(n, 0);
  for (int32_t b : free_) {
    if (b < 0 || size_t(b) >= n) return "free list holds out-of-range block " + std::to_string(b);
    if (seen[size_t(b)]) return "block " + std::to_string(b) + " is on the free list twice";
    seen[size_t(b)] = 1;
  }
  size_t walked = 0;
  int32_t prev = -1;
  for (int32_t b = lru_head_; b >= 0; b = meta_[size_t(b)].next) {
    if (size_t(b) >= n || ++walked > n) return "LRU list is corrupt";
    if (!meta_[size_t(b)].in_lru || meta_[size_t(b)].prev != prev)
      return "LRU list links disagree at block " + std::to_string(b);
    prev = b;
  }
  if (prev != lru_tail_) return "LRU tail is wrong";
  if (walked != n_in_lru || int(walked) != n_evictable_) return "LRU count disagrees";
  if (n_serial != index_.size()) return "key index holds blocks that are not cached";
  return "";
}

}  // namespace lmstream

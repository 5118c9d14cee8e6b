// The scheduling policy (see policy.h): plain data in, plain data out.
#include "scheduler/policy.h"

#include <algorithm>
#include <climits>
#include <stdexcept>

namespace lmstream {

int sequence_capacity(const SchedState& st, const PolicyConfig& cfg) {
  long long pool_tokens = (long long)st.pool.n_blocks() * cfg.block_size;
  long long cap = cfg.max_pos > 0 ? std::min<long long>(pool_tokens, cfg.max_pos) : pool_tokens;
  return int(std::min<long long>(cap, INT_MAX));
}

void add_sequence(SchedState& st, uint64_t id, int n_tokens) {
  if (n_tokens < 1) throw std::invalid_argument("add_sequence: a sequence needs at least 1 token");
  auto [it, fresh] = st.seqs.try_emplace(id);
  if (!fresh) throw std::invalid_argument("add_sequence: duplicate sequence id");
  it->second.id = id;
  it->second.n_tokens = n_tokens;
  st.waiting.push_back(id);
}

static void erase_id(std::vector<uint64_t>& v, uint64_t id) {
  v.erase(std::remove(v.begin(), v.end(), id), v.end());
}
static void erase_id(std::deque<uint64_t>& v, uint64_t id) {
  v.erase(std::remove(v.begin(), v.end(), id), v.end());
}

static bool caching(const SeqState& s, const PolicyConfig& cfg) {
  return cfg.prefix_caching && s.tokens != nullptr;
}

// Hashes the sequence's leading full blocks up to n (tokens are only ever appended, so digests
// once computed stay valid).
static void ensure_digests(SeqState& s, const PolicyConfig& cfg, int n) {
  const int bs = cfg.block_size;
  if (int(s.tokens->size()) < n * bs) throw std::logic_error("prefix cache: tokens missing");
  while (int(s.digests.size()) < n) {
    const size_t i = s.digests.size();
    BlockDigest parent = i == 0 ? prefix_root(cfg.cache_namespace, s.salt) : s.digests.back();
    s.digests.push_back(prefix_block(
        parent, std::span<const int32_t>(s.tokens->data() + i * size_t(bs), size_t(bs))));
  }
}

// Publishes the sequence's full, computed blocks not yet published.
static void publish_blocks(SchedState& st, SeqState& s, const PolicyConfig& cfg) {
  if (!caching(s, cfg) || s.publish_stuck) return;
  const int bs = cfg.block_size;
  const int full = std::min(s.n_computed / bs, int(s.blocks.size()));
  if (s.n_published >= full) return;
  ensure_digests(s, cfg, full);
  s.serials.resize(size_t(full));
  for (int i = s.n_published; i < full; ++i) {
    const uint64_t parent = i == 0 ? 0 : s.serials[size_t(i) - 1];
    const uint64_t serial = st.pool.publish(
        s.id, s.blocks[size_t(i)], prefix_key(s.digests[size_t(i)]),
        std::span<const int32_t>(s.tokens->data() + size_t(i) * bs, size_t(bs)), parent, s.salt);
    if (serial == 0) {  // a truncated-key collision with a different block: the chain ends here
      s.publish_stuck = true;
      return;
    }
    s.serials[size_t(i)] = serial;
    s.n_published = i + 1;
  }
}

void remove_sequence(SchedState& st, uint64_t id, const PolicyConfig& cfg) {
  auto it = st.seqs.find(id);
  if (it == st.seqs.end()) return;
  publish_blocks(st, it->second, cfg);
  remove_sequence(st, id);
}

void remove_sequence(SchedState& st, uint64_t id) {
  auto it = st.seqs.find(id);
  if (it == st.seqs.end()) return;
  st.pool.release(id, it->second.blocks);
  erase_id(st.running, id);
  erase_id(st.waiting, id);
  st.seqs.erase(it);
}

// Frees the newest running sequence's blocks and puts it at the front of the waiting queue.
static uint64_t preempt_newest(SchedState& st, StepPlan& plan, const PolicyConfig& cfg) {
  uint64_t victim = st.running.back();
  st.running.pop_back();
  SeqState& v = st.seqs.at(victim);
  publish_blocks(st, v, cfg);  // its computed blocks stay cached: readmission may take them back
  st.pool.release(victim, v.blocks);
  v.n_computed = 0;
  v.preemptions++;
  st.waiting.push_front(victim);
  plan.preempted.push_back(victim);
  return victim;
}

StepPlan schedule_step(SchedState& st, const PolicyConfig& cfg) {
  if (cfg.block_size < 1) throw std::invalid_argument("schedule_step: block_size must be >= 1");
  StepPlan plan;

  // 1. Cancelled sequences leave wherever they are.
  std::vector<uint64_t> gone;
  for (auto& [id, s] : st.seqs)
    if (s.cancelled) gone.push_back(id);
  std::sort(gone.begin(), gone.end());
  for (uint64_t id : gone) {
    remove_sequence(st, id, cfg);
    plan.cancelled.push_back(id);
  }

  // Blocks computed by the last step join the cache, so sequences admitted now can share them.
  for (uint64_t id : st.running) publish_blocks(st, st.seqs.at(id), cfg);

  // 2. Decodes, oldest first; a missing block preempts the newest running sequence.
  for (size_t i = 0; i < st.running.size(); ++i) {
    SeqState& s = st.seqs.at(st.running[i]);
    if (s.n_tokens - s.n_computed != 1) continue;
    int need = blocks_for(s.n_computed + 1, cfg.block_size) - int(s.blocks.size());
    bool self_preempted = false;
    while (need > 0 && !st.pool.allocate(s.id, need, s.blocks)) {
      if (preempt_newest(st, plan, cfg) == s.id) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) break;  // it was the newest: nothing after it is running any more
    plan.chunks.push_back({s.id, s.n_computed, 1, true, true});
    plan.decode_tokens++;
  }

  // 3. Prefill chunks of running sequences within the budget (their blocks are all allocated).
  int budget = std::max(0, cfg.max_prefill_tokens);
  for (uint64_t id : st.running) {
    if (budget == 0) break;
    SeqState& s = st.seqs.at(id);
    int remaining = s.n_tokens - s.n_computed;
    if (remaining <= 1) continue;
    int n = std::min(remaining, budget);
    if (s.max_chunk > 0) n = std::min(n, s.max_chunk);
    plan.chunks.push_back({id, s.n_computed, n, n == remaining, false});
    plan.prefill_tokens += n;
    budget -= n;
  }

  // 4. Admission, FCFS, only when nothing had to be preempted this step.
  const int cap = sequence_capacity(st, cfg);
  while (plan.preempted.empty() && budget > 0 && !st.waiting.empty() &&
         int(st.running.size()) < cfg.max_running) {
    SeqState& s = st.seqs.at(st.waiting.front());
    if (s.n_tokens > cap) throw std::logic_error("schedule_step: sequence longer than the pool");
    int check = blocks_for(std::min(s.n_tokens + 1, cap), cfg.block_size);
    // The longest verified chain of cached blocks; never the whole sequence (one token at least
    // is computed, for its logits).
    std::vector<int32_t> hits;
    int unheld_hits = 0;
    if (caching(s, cfg) && s.use_cache) {
      const int most = (s.n_tokens - 1) / cfg.block_size;
      ensure_digests(s, cfg, most);
      uint64_t parent = 0;
      for (int i = 0; i < most; ++i) {
        int32_t b =
            st.pool.lookup(prefix_key(s.digests[size_t(i)]),
                           std::span<const int32_t>(s.tokens->data() + size_t(i) * cfg.block_size,
                                                    size_t(cfg.block_size)),
                           parent, s.salt);
        if (b < 0) break;
        hits.push_back(b);
        if (!st.pool.held(b)) ++unheld_hits;  // counted in n_free until taken
        parent = st.pool.serial(b);
      }
    }
    if (st.pool.n_free() < check - int(hits.size()) + unheld_hits)
      break;  // strict FCFS: nobody overtakes the head
    s.serials.clear();
    for (int32_t b : hits) {
      st.pool.acquire(s.id, b, s.blocks);
      s.serials.push_back(st.pool.serial(b));
    }
    s.n_published = int(hits.size());
    s.publish_stuck = false;
    if (!st.pool.allocate(s.id, blocks_for(s.n_tokens, cfg.block_size) - int(hits.size()),
                          s.blocks))
      throw std::logic_error("schedule_step: allocation failed after the free-block check");
    if (caching(s, cfg) && s.use_cache) {
      plan.lookup_tokens += s.n_tokens;
      plan.cached_tokens += int(hits.size()) * cfg.block_size;
    }
    s.cached_tokens = int(hits.size()) * cfg.block_size;
    st.waiting.pop_front();
    st.running.push_back(s.id);
    plan.admitted.push_back(s.id);
    s.n_computed = s.cached_tokens;
    const int remaining = s.n_tokens - s.n_computed;
    int n = std::min(remaining, budget);
    if (s.max_chunk > 0) n = std::min(n, s.max_chunk);
    plan.chunks.push_back({s.id, s.n_computed, n, n == remaining, false});
    plan.prefill_tokens += n;
    budget -= n;
  }
  return plan;
}

std::string check_state(const SchedState& st, const PolicyConfig& cfg) {
  std::unordered_map<uint64_t, const std::vector<int32_t>*> live;
  for (const auto& [id, s] : st.seqs) live[id] = &s.blocks;
  std::string err = st.pool.check(live);
  if (!err.empty()) return err;
  if (st.running.size() + st.waiting.size() != st.seqs.size())
    return "queues and sequence table disagree";
  for (uint64_t id : st.waiting) {
    auto it = st.seqs.find(id);
    if (it == st.seqs.end()) return "waiting sequence " + std::to_string(id) + " unknown";
    if (!it->second.blocks.empty())
      return "waiting sequence " + std::to_string(id) + " holds blocks";
  }
  for (uint64_t id : st.running) {
    auto it = st.seqs.find(id);
    if (it == st.seqs.end()) return "running sequence " + std::to_string(id) + " unknown";
    const SeqState& s = it->second;
    if (int(s.blocks.size()) < blocks_for(s.n_computed, cfg.block_size))
      return "running sequence " + std::to_string(id) + " has fewer blocks than its K/V";
    // Blocks it will still write (from the one holding position n_computed on) are its own:
    // never shared, never cached.
    for (size_t b = size_t(s.n_computed / cfg.block_size); b < s.blocks.size(); ++b)
      if (st.pool.refs(s.blocks[b]) != 1 || st.pool.serial(s.blocks[b]) != 0)
        return "running sequence " + std::to_string(id) + " will write block " +
               std::to_string(s.blocks[b]) + ", which is shared or cached";
  }
  return "";
}

}  // namespace lmstream

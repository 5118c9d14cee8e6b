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

void remove_sequence(SchedState& st, uint64_t id) {
  auto it = st.seqs.find(id);
  if (it == st.seqs.end()) return;
  st.pool.release(id, it->second.blocks);
  erase_id(st.running, id);
  erase_id(st.waiting, id);
  st.seqs.erase(it);
}

// Frees the newest running sequence's blocks and puts it at the front of the waiting queue.
static uint64_t preempt_newest(SchedState& st, StepPlan& plan) {
  uint64_t victim = st.running.back();
  st.running.pop_back();
  SeqState& v = st.seqs.at(victim);
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
    remove_sequence(st, id);
    plan.cancelled.push_back(id);
  }

  // 2. Decodes, oldest first; a missing block preempts the newest running sequence.
  for (size_t i = 0; i < st.running.size(); ++i) {
    SeqState& s = st.seqs.at(st.running[i]);
    if (s.n_tokens - s.n_computed != 1) continue;
    int need = blocks_for(s.n_computed + 1, cfg.block_size) - int(s.blocks.size());
    bool self_preempted = false;
    while (need > 0 && !st.pool.allocate(s.id, need, s.blocks)) {
      if (preempt_newest(st, plan) == s.id) {
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
    if (st.pool.n_free() < check) break;  // strict FCFS: nobody overtakes the head
    if (!st.pool.allocate(s.id, blocks_for(s.n_tokens, cfg.block_size), s.blocks))
      throw std::logic_error("schedule_step: allocation failed after the free-block check");
    st.waiting.pop_front();
    st.running.push_back(s.id);
    plan.admitted.push_back(s.id);
    s.n_computed = 0;
    int n = std::min(s.n_tokens, budget);
    if (s.max_chunk > 0) n = std::min(n, s.max_chunk);
    plan.chunks.push_back({s.id, 0, n, n == s.n_tokens, false});
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
  }
  return "";
}

}  // namespace lmstream

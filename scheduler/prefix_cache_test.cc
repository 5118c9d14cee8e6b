// Tests of automatic prefix caching: the SHA-256 hash chain, the BlockPool's shared, cached and
// evictable blocks (verified hits, LRU order, invariant), and the scheduler with the cache on
// against runs with it off, over the fake paged executor (which reads every position back through
// the block tables, so a wrong shared block changes the output) and over the real engine: a
// prefix hit must give bit-identical tokens and logprobs, alone and in a busy batch, with seeded
// sampling, under eviction, preemption and cancellation; different cache salts never share.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "scheduler/block_pool.h"
#include "scheduler/engine_test_support.h"
#include "scheduler/policy.h"
#include "scheduler/prefix_hash.h"
#include "scheduler/scheduler_core.h"
#include "scheduler/test_support.h"

namespace lmstream {
namespace {

using testing::Collected;
using testing::drain;
using testing::FakeExecutor;
using Live = std::unordered_map<uint64_t, const std::vector<int32_t>*>;

// ---- hash chain ----

TEST(PrefixHash, ChainCoversParentTokensNamespaceAndSalt) {
  const std::vector<int32_t> a{1, 2, 3, 4}, b{1, 2, 3, 5};
  const BlockDigest r = prefix_root("model-x|kv=f16", "");
  EXPECT_EQ(prefix_root("model-x|kv=f16", ""), r);  // deterministic across calls
  EXPECT_NE(prefix_root("model-x|kv=f32", ""), r);
  EXPECT_NE(prefix_root("model-y|kv=f16", ""), r);
  EXPECT_NE(prefix_root("model-x|kv=f16", "tenant-a"), r);
  // Lengths separate the fields: moving bytes between namespace and salt changes the root.
  EXPECT_NE(prefix_root("ab", "c"), prefix_root("a", "bc"));
  const BlockDigest d = prefix_block(r, a);
  EXPECT_EQ(prefix_block(r, a), d);
  EXPECT_NE(prefix_block(r, b), d);
  EXPECT_NE(prefix_block(prefix_root("model-x|kv=f16", "s"), a), d);
  EXPECT_NE(prefix_block(d, a), prefix_block(prefix_block(r, b), a));  // the parent matters
  EXPECT_NE(prefix_key(d), prefix_key(prefix_block(r, b)));
  // It is SHA-256: the digest of 32 zero bytes followed by one little-endian int32 1.
  BlockDigest zero{};
  const BlockDigest one = prefix_block(zero, std::vector<int32_t>{1});
  // sha256(00*32 || 01 00 00 00) begins 71c99cc3bc21757f (computed with Python's hashlib); the
  // key is its first 8 bytes read little-endian.
  const uint8_t want[8] = {0x71, 0xc9, 0x9c, 0xc3, 0xbc, 0x21, 0x75, 0x7f};
  EXPECT_EQ(std::memcmp(one.data(), want, 8), 0);
  uint64_t key = 0;
  for (int i = 7; i >= 0; --i) key = (key << 8) | want[i];
  EXPECT_EQ(prefix_key(one), key);
}

// ---- BlockPool ----

TEST(BlockPoolCache, PublishReleaseHitShareAndEvictInLruOrder) {
  BlockPool pool(4);
  const std::vector<int32_t> t0{5, 6}, t1{7, 8};
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.allocate(1, 3, a));
  const uint64_t s0 = pool.publish(1, a[0], 100, t0, 0, "");
  const uint64_t s1 = pool.publish(1, a[1], 101, t1, s0, "");
  EXPECT_NE(s0, 0u);
  EXPECT_NE(s1, 0u);
  EXPECT_EQ(pool.n_cached(), 2);
  EXPECT_EQ(pool.check({{1, &a}}), "");
  // A second sequence shares both while the first still holds them.
  std::vector<int32_t> b;
  ASSERT_EQ(pool.lookup(100, t0, 0, ""), a[0]);
  pool.acquire(2, a[0], b);
  ASSERT_EQ(pool.lookup(101, t1, s0, ""), a[1]);
  pool.acquire(2, a[1], b);
  EXPECT_EQ(pool.refs(a[0]), 2);
  EXPECT_EQ(pool.check({{1, &a}, {2, &b}}), "");
  // The check notices a holder whose table forgot a shared block.
  EXPECT_NE(pool.check({{1, &a}}), "");
  const std::vector<int32_t> a_copy = a;
  pool.release(1, a);
  EXPECT_EQ(pool.n_free(), 2);  // a[2] free; a[0], a[1] still held by 2
  EXPECT_EQ(pool.check({{2, &b}}), "");
  pool.release(2, b);
  EXPECT_EQ(pool.n_free(), 4);  // 2 free + 2 evictable
  EXPECT_EQ(pool.n_evictable(), 2);
  EXPECT_EQ(pool.n_cached(), 2);
  EXPECT_EQ(pool.check({}), "");
  // Allocation takes free blocks first, then evicts: the last block of the table first.
  std::vector<int32_t> c;
  ASSERT_TRUE(pool.allocate(3, 2, c));
  EXPECT_EQ(pool.evictions(), 0u);
  EXPECT_EQ(pool.lookup(100, t0, 0, ""), a_copy[0]);
  ASSERT_TRUE(pool.allocate(3, 1, c));
  EXPECT_EQ(pool.evictions(), 1u);
  EXPECT_EQ(c.back(), a_copy[1]);  // block 1 of the chain went first
  EXPECT_EQ(pool.lookup(101, t1, s0, ""), -1);
  EXPECT_EQ(pool.lookup(100, t0, 0, ""), a_copy[0]);
  EXPECT_EQ(pool.check({{3, &c}}), "");
  EXPECT_FALSE(pool.allocate(3, 2, c));  // 1 evictable left: all or nothing
  ASSERT_TRUE(pool.allocate(3, 1, c));
  EXPECT_EQ(pool.n_cached(), 0);
  EXPECT_EQ(pool.evictions(), 2u);
  EXPECT_EQ(pool.check({{3, &c}}), "");
  pool.release(3, c);
  EXPECT_EQ(pool.check({}), "");
  EXPECT_EQ(pool.n_free(), 4);
}

TEST(BlockPoolCache, HitsAreVerifiedByValueNotByKey) {
  BlockPool pool(4);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.allocate(1, 2, a));
  const uint64_t s0 = pool.publish(1, a[0], 7, std::vector<int32_t>{1, 2}, 0, "salt");
  pool.publish(1, a[1], 8, std::vector<int32_t>{3, 4}, s0, "salt");
  // Same key, other tokens (a forged collision): a miss.
  EXPECT_EQ(pool.lookup(7, std::vector<int32_t>{1, 3}, 0, "salt"), -1);
  // Same key and tokens, other salt: a miss.
  EXPECT_EQ(pool.lookup(7, std::vector<int32_t>{1, 2}, 0, "other"), -1);
  // Same key and tokens, other parent: a miss.
  EXPECT_EQ(pool.lookup(8, std::vector<int32_t>{3, 4}, s0 + 99, "salt"), -1);
  EXPECT_EQ(pool.lookup(8, std::vector<int32_t>{3, 4}, s0, "salt"), a[1]);
  // Publishing a different block under a taken key keeps the first (the chain stops: serial 0).
  std::vector<int32_t> b;
  ASSERT_TRUE(pool.allocate(2, 1, b));
  EXPECT_EQ(pool.publish(2, b[0], 7, std::vector<int32_t>{9, 9}, 0, "salt"), 0u);
  // Publishing an equal block returns the canonical serial and leaves the copy private.
  std::vector<int32_t> c;
  ASSERT_TRUE(pool.allocate(3, 1, c));
  EXPECT_EQ(pool.publish(3, c[0], 7, std::vector<int32_t>{1, 2}, 0, "salt"), s0);
  EXPECT_EQ(pool.serial(c[0]), 0u);
  EXPECT_EQ(pool.check({{1, &a}, {2, &b}, {3, &c}}), "");
  // Only holders may publish; foreign releases change nothing.
  EXPECT_THROW(pool.publish(9, a[0], 1, std::vector<int32_t>{1, 2}, 0, ""), std::logic_error);
  EXPECT_THROW(pool.release(2, a), std::logic_error);
  EXPECT_EQ(pool.check({{1, &a}, {2, &b}, {3, &c}}), "");
}

TEST(BlockPoolCache, RandomChurnWithSharingNeverBreaksInvariant) {
  std::mt19937 rng(3);
  BlockPool pool(32);
  std::map<uint64_t, std::vector<int32_t>> tables;
  std::map<uint64_t, std::vector<std::pair<uint64_t, int32_t>>> published;  // key -> (serial, blk)
  uint64_t next = 1;
  for (int it = 0; it < 4000; ++it) {
    const int op = int(rng() % 4);
    if (op == 0 || tables.empty()) {
      uint64_t id = next++;
      auto& t = tables[id];
      // Take up to two cached keys, then fresh blocks.
      for (uint64_t key = 1; key <= 2; ++key) {
        int32_t b = pool.lookup(key, std::vector<int32_t>{int32_t(key)}, 0, "");
        if (b >= 0 && std::find(t.begin(), t.end(), b) == t.end()) pool.acquire(id, b, t);
      }
      if (!pool.allocate(id, int(rng() % 5), t) && t.empty()) tables.erase(id);
    } else if (op == 1) {
      auto itr = std::next(tables.begin(), long(rng() % tables.size()));
      for (int32_t b : itr->second)
        if (pool.serial(b) == 0 && rng() % 2) {
          uint64_t key = 1 + rng() % 3;
          pool.publish(itr->first, b, key, std::vector<int32_t>{int32_t(key)}, 0, "");
        }
    } else {
      auto itr = std::next(tables.begin(), long(rng() % tables.size()));
      pool.release(itr->first, itr->second);
      tables.erase(itr);
    }
    Live live;
    for (auto& [id, t] : tables) live[id] = &t;
    ASSERT_EQ(pool.check(live), "") << "iteration " << it;
  }
  for (auto& [id, t] : tables) pool.release(id, t);
  EXPECT_EQ(pool.check({}), "");
  EXPECT_EQ(pool.n_free(), 32);
}

// ---- scheduler over the fake executor ----

constexpr int kVocab = 64;

CoreOptions opts(bool caching, int max_running = 64, int prefill = 512) {
  CoreOptions o;
  o.sched.max_rolling_batch_size = max_running;
  o.sched.max_batch_prefill_tokens = prefill;
  o.sched.prefix_caching = caching;
  o.sched.cache_namespace = "fake";
  o.check_each_step = true;  // the block invariant (shared and cached blocks too) every step
  return o;
}

bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

void expect_same(const Collected& got, const Collected& want, const std::string& what) {
  EXPECT_EQ(got.ids, want.ids) << what;
  EXPECT_TRUE(same_floats(got.logprobs, want.logprobs)) << what;
  EXPECT_TRUE(same_floats(got.fin.prompt_logprobs, want.fin.prompt_logprobs)) << what;
  EXPECT_EQ(got.fin.reason, want.fin.reason) << what;
  EXPECT_EQ(got.text, want.text) << what;
}

Collected run_alone(const GenerateRequest& r, const Tokenizer& tok, int bs = 4) {
  FakeExecutor ex(kVocab, bs, 512);
  SchedulerCore core(ex, tok, opts(false));
  auto s = core.submit(r);
  Collected c;
  for (int i = 0; i < 100000 && !drain(*s, c); ++i) core.run_once();
  EXPECT_EQ(core.stats().blocks_used, 0);
  return c;
}

// Runs requests one after the other on one core (the cache persists between them).
std::vector<Collected> run_in_turn(SchedulerCore& core, const std::vector<GenerateRequest>& rs) {
  std::vector<Collected> out;
  for (const auto& r : rs) {
    auto s = core.submit(r);
    Collected c;
    for (int i = 0; i < 100000 && !drain(*s, c); ++i) core.run_once();
    EXPECT_EQ(core.check(), "");
    out.push_back(c);
  }
  return out;
}

std::vector<int32_t> random_tokens(std::mt19937& rng, int n) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(int32_t(3 + rng() % (kVocab - 3)));
  return t;
}

GenerateRequest with_prompt(std::vector<int32_t> p, int max_new, uint64_t seed, bool sample) {
  GenerateRequest r;
  r.prompt = std::move(p);
  r.stop.max_new_tokens = max_new;
  r.stop.ignore_eos = true;
  r.sampling.seed = seed;
  if (sample) {
    r.sampling.do_sample = true;
    r.sampling.temperature = 0.9f;
    r.sampling.top_k = 20;
    r.sampling.top_n_tokens = 2;
  }
  return r;
}

TEST(PrefixCache, SecondRequestReusesThePrefixAndMatchesAComputedRun) {
  auto tok = testing::make_test_tokenizer();
  std::mt19937 rng(1);
  const std::vector<int32_t> system = random_tokens(rng, 37);  // 9 full blocks of 4, and one more
  for (bool sample : {false, true}) {
    std::vector<int32_t> p1 = system, p2 = system;
    auto x = random_tokens(rng, 5), y = random_tokens(rng, 6);
    p1.insert(p1.end(), x.begin(), x.end());
    p2.insert(p2.end(), y.begin(), y.end());
    const GenerateRequest r1 = with_prompt(p1, 9, 42, sample), r2 = with_prompt(p2, 11, 43, sample);
    FakeExecutor ex(kVocab, 4, 64);
    SchedulerCore core(ex, *tok, opts(true));
    auto got = run_in_turn(core, {r1, r2, r2});
    EXPECT_EQ(got[0].fin.cached_tokens, 0);
    EXPECT_EQ(got[1].fin.cached_tokens, 36);  // the shared full blocks
    EXPECT_EQ(got[2].fin.cached_tokens, 40);  // all of its own prompt's full blocks: (43-1)/4*4
    expect_same(got[0], run_alone(r1, *tok), "first");
    expect_same(got[1], run_alone(r2, *tok), "second (prefix from the cache)");
    expect_same(got[2], run_alone(r2, *tok), "third (whole prompt but one block cached)");
    const SchedulerStats st = core.stats();
    EXPECT_TRUE(st.prefix_caching);
    EXPECT_EQ(st.lookup_tokens, uint64_t(p1.size() + 2 * p2.size()));
    EXPECT_EQ(st.cached_tokens, 76u);
    EXPECT_GT(st.cached_blocks, 0);
    EXPECT_EQ(st.blocks_used, 0);  // cached blocks are evictable, not used
  }
}

TEST(PrefixCache, OffMeansNoSharing) {
  auto tok = testing::make_test_tokenizer();
  std::mt19937 rng(2);
  const GenerateRequest r = with_prompt(random_tokens(rng, 30), 5, 1, false);
  FakeExecutor ex(kVocab, 4, 64);
  SchedulerCore core(ex, *tok, opts(false));
  auto got = run_in_turn(core, {r, r});
  EXPECT_EQ(got[1].fin.cached_tokens, 0);
  EXPECT_EQ(core.stats().cached_blocks, 0);
  EXPECT_EQ(core.stats().lookup_tokens, 0u);
  EXPECT_FALSE(core.stats().prefix_caching);
  expect_same(got[1], got[0], "repeat");
}

TEST(PrefixCache, DifferentSaltsNeverShare) {
  auto tok = testing::make_test_tokenizer();
  std::mt19937 rng(3);
  GenerateRequest a = with_prompt(random_tokens(rng, 30), 5, 1, false), b = a, c = a, d = a;
  a.cache_salt = "tenant-a";
  b.cache_salt = "tenant-b";
  c.cache_salt = "";
  d.cache_salt = "tenant-a";
  FakeExecutor ex(kVocab, 4, 64);
  SchedulerCore core(ex, *tok, opts(true));
  auto got = run_in_turn(core, {a, b, c, d});
  EXPECT_EQ(got[0].fin.cached_tokens, 0);
  EXPECT_EQ(got[1].fin.cached_tokens, 0);
  EXPECT_EQ(got[2].fin.cached_tokens, 0);
  EXPECT_EQ(got[3].fin.cached_tokens, 28);  // the same salt shares
  for (int i = 1; i < 4; ++i) expect_same(got[size_t(i)], got[0], "salt run " + std::to_string(i));
  // Too long a salt is refused with a clear error.
  GenerateRequest e = a;
  e.cache_salt.assign(2000, 's');
  auto bad = run_in_turn(core, {e});
  EXPECT_EQ(bad[0].fin.reason, FinishReason::kError);
  EXPECT_NE(bad[0].fin.error.find("cache_salt"), std::string::npos);
}

TEST(PrefixCache, PromptLogprobsAreComputedNotTakenFromTheCache) {
  auto tok = testing::make_test_tokenizer();
  std::mt19937 rng(4);
  GenerateRequest plain = with_prompt(random_tokens(rng, 26), 4, 9, true);
  GenerateRequest scored = plain;
  scored.prompt_logprobs = true;
  FakeExecutor ex(kVocab, 4, 64);
  SchedulerCore core(ex, *tok, opts(true));
  auto got = run_in_turn(core, {plain, scored, plain});
  EXPECT_EQ(got[1].fin.cached_tokens, 0);  // its prompt logprobs need every position's logits
  EXPECT_EQ(got[1].fin.prompt_logprobs.size(), scored.prompt.size());
  expect_same(got[1], run_alone(scored, *tok), "prompt logprobs with the cache on");
  EXPECT_EQ(got[2].fin.cached_tokens, 24);
  expect_same(got[2], run_alone(plain, *tok), "plain after");
}

TEST(PrefixCache, EvictionUnderPressureManyDistinctPromptsThenTheFirstAgain) {
  auto tok = testing::make_test_tokenizer();
  std::mt19937 rng(5);
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 30; ++i)
    reqs.push_back(with_prompt(random_tokens(rng, 20 + i % 7), 6, i, i % 2));
  reqs.push_back(reqs[0]);         // the first again, long after it was evicted
  reqs.push_back(reqs[29]);        // the last again, still cached
  FakeExecutor ex(kVocab, 4, 24);  // 96 tokens of KV: a few prompts' worth
  SchedulerCore core(ex, *tok, opts(true));
  auto got = run_in_turn(core, reqs);
  for (size_t i = 0; i < reqs.size(); ++i)
    expect_same(got[i], run_alone(reqs[i], *tok), "request " + std::to_string(i));
  EXPECT_EQ(got[30].fin.cached_tokens, 0);  // evicted by then
  EXPECT_GT(got[31].fin.cached_tokens, 0);  // most recently used: still there
  const SchedulerStats st = core.stats();
  EXPECT_GT(st.evictions, 0u);
  EXPECT_EQ(st.blocks_used, 0);
  EXPECT_EQ(st.blocks_free, 24);  // nothing leaked: every block free or evictable
  EXPECT_LE(st.cached_blocks, 24);
  EXPECT_EQ(core.check(), "");
}

// Many requests over a few shared system prompts, arriving at random steps into a running batch,
// some cancelled, with a pool small enough to preempt: every finished request matches its solo run
// with the cache off, and every block is accounted for at every step.
void busy_batch(int n_blocks, int max_running, int prefill, uint32_t seed, bool expect_preempt) {
  auto tok = testing::make_test_tokenizer();
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> systems;
  for (int i = 0; i < 3; ++i) systems.push_back(random_tokens(rng, 12 + 9 * i));
  const int n = 40;
  std::vector<GenerateRequest> reqs;
  std::vector<int> arrive, cancel_at;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> p = systems[rng() % systems.size()];
    auto tail = random_tokens(rng, 1 + int(rng() % 9));
    p.insert(p.end(), tail.begin(), tail.end());
    GenerateRequest r = with_prompt(p, 1 + int(rng() % 14), rng(), rng() % 2);
    r.stop.ignore_eos = rng() % 2;
    r.prompt_logprobs = rng() % 5 == 0;
    if (rng() % 7 == 0) r.cache_salt = "other";
    reqs.push_back(r);
    arrive.push_back(int(rng() % 60));
    cancel_at.push_back(rng() % 8 == 0 ? arrive.back() + int(rng() % 6) : -1);
  }
  FakeExecutor ex(kVocab, 4, n_blocks);
  SchedulerCore core(ex, *tok, opts(true, max_running, prefill));
  std::vector<std::shared_ptr<RequestStream>> streams(n);
  std::vector<Collected> got(n);
  int finished = 0;
  for (int step = 0; finished < n && step < 100000; ++step) {
    for (int i = 0; i < n; ++i) {
      if (arrive[i] == step) streams[i] = core.submit(reqs[i]);
      if (cancel_at[i] == step && streams[i]) streams[i]->cancel();
    }
    core.run_once();  // aborts if the block invariant breaks (check_each_step)
    finished = 0;
    for (int i = 0; i < n; ++i)
      if (streams[i] && drain(*streams[i], got[i])) ++finished;
  }
  ASSERT_EQ(finished, n);
  int compared = 0, hits = 0;
  for (int i = 0; i < n; ++i) {
    if (got[i].fin.reason == FinishReason::kCancelled) continue;
    expect_same(got[i], run_alone(reqs[i], *tok), "request " + std::to_string(i));
    hits += got[i].fin.cached_tokens > 0;
    ++compared;
  }
  EXPECT_GT(compared, n / 2);
  EXPECT_GT(hits, 5);
  const SchedulerStats st = core.stats();
  if (expect_preempt) {
    EXPECT_GT(st.preemptions, 0u);
  }
  EXPECT_EQ(st.blocks_used, 0);
  EXPECT_EQ(st.blocks_free, n_blocks);
  EXPECT_EQ(core.check(), "");
}

TEST(PrefixCache, BusyBatchMatchesSoloRunsWithoutTheCache) { busy_batch(256, 16, 64, 6, false); }

TEST(PrefixCache, BusyBatchUnderConstantPreemptionAndEviction) { busy_batch(20, 8, 32, 7, true); }

// Cancelling or preempting a sequence that shares cached blocks drops exactly its references.
TEST(PrefixCache, CancelledAndPreemptedSequencesReleaseTheirReferences) {
  auto tok = testing::make_test_tokenizer();
  std::mt19937 rng(8);
  const std::vector<int32_t> sys = random_tokens(rng, 16);
  auto prompt = [&](int extra) {
    std::vector<int32_t> p = sys;
    auto t = random_tokens(rng, extra);
    p.insert(p.end(), t.begin(), t.end());
    return p;
  };
  FakeExecutor ex(kVocab, 4, 16);  // 64 tokens
  SchedulerCore core(ex, *tok, opts(true, 8, 512));
  run_in_turn(core, {with_prompt(prompt(3), 2, 1, false)});  // caches the system prompt
  // 19 prompt + 2 generated tokens, 20 of them fed: 5 full blocks (generated tokens cache too).
  EXPECT_EQ(core.stats().cached_blocks, 5);
  // Two sharers: one cancelled after its first step, one run to completion.
  GenerateRequest keep = with_prompt(prompt(2), 30, 2, false),
                  drop = with_prompt(prompt(2), 30, 3, false);
  auto sk = core.submit(keep);
  auto sd = core.submit(drop);
  core.run_once();
  EXPECT_EQ(core.check(), "");
  sd->cancel();
  Collected ck, cd;
  // keep grows to 18 + 30 tokens: with drop gone it fits; before that, one of them is preempted.
  for (int i = 0; i < 10000 && !(drain(*sk, ck) && drain(*sd, cd)); ++i) core.run_once();
  EXPECT_EQ(cd.fin.reason, FinishReason::kCancelled);
  EXPECT_EQ(ck.fin.cached_tokens, 16);
  expect_same(ck, run_alone(keep, *tok), "survivor");
  EXPECT_EQ(core.check(), "");
  EXPECT_EQ(core.stats().blocks_used, 0);
  EXPECT_EQ(core.stats().blocks_free, 16);

  // Preemption: three sharers that together outgrow the pool.
  std::vector<GenerateRequest> rs;
  for (int i = 0; i < 3; ++i) rs.push_back(with_prompt(prompt(3), 20, 10 + i, i % 2));
  std::vector<std::shared_ptr<RequestStream>> ss;
  for (auto& r : rs) ss.push_back(core.submit(r));
  std::vector<Collected> cs(3);
  for (int i = 0; i < 10000; ++i) {
    core.run_once();
    ASSERT_EQ(core.check(), "");
    if (drain(*ss[0], cs[0]) & drain(*ss[1], cs[1]) & drain(*ss[2], cs[2])) break;
  }
  EXPECT_GT(core.stats().preemptions, 0u);
  for (int i = 0; i < 3; ++i) expect_same(cs[size_t(i)], run_alone(rs[size_t(i)], *tok), "sharer");
  EXPECT_EQ(core.stats().blocks_used, 0);
  EXPECT_EQ(core.stats().blocks_free, 16);
}

// ---- over the real engine ----

TEST(PrefixCacheEngine, CachedPrefixGivesBitIdenticalTokensAndLogprobs) {
  testing::MicroModel& m = testing::micro();
  const int vocab = m.model->cfg.vocab_size;
  std::mt19937 rng(21);
  std::vector<int32_t> sys{1};
  for (int i = 0; i < 300; ++i) sys.push_back(int32_t(3 + rng() % uint32_t(vocab - 3)));
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 8; ++i) {
    GenerateRequest r;
    r.prompt = sys;
    for (int k = 0; k < 3 + i; ++k) r.prompt.push_back(int32_t(3 + rng() % uint32_t(vocab - 3)));
    r.stop.max_new_tokens = 8;
    r.stop.ignore_eos = true;
    r.sampling.seed = 100 + i;
    if (i % 2) {
      r.sampling.do_sample = true;
      r.sampling.temperature = 0.8f;
      r.sampling.top_k = 40;
      r.sampling.top_n_tokens = 2;
    }
    r.prompt_logprobs = i == 3;
    reqs.push_back(r);
  }
  auto engine = testing::make_engine(256);
  EngineExecutor ex(*engine);
  CoreOptions o;
  o.sched.max_rolling_batch_size = 8;
  o.sched.max_batch_prefill_tokens = 128;
  o.sched.cache_namespace = engine->cache_identity();
  o.check_each_step = true;
  SchedulerCore core(ex, *m.tok, o);
  // The first alone (it fills the cache), then the other seven together in one busy batch.
  std::vector<Collected> got(reqs.size());
  auto s0 = core.submit(reqs[0]);
  while (!drain(*s0, got[0])) core.run_once();
  std::vector<std::shared_ptr<RequestStream>> ss;
  for (size_t i = 1; i < reqs.size(); ++i) ss.push_back(core.submit(reqs[i]));
  for (int k = 0; k < 100000; ++k) {
    core.run_once();
    bool all = true;
    for (size_t i = 1; i < reqs.size(); ++i) all &= drain(*ss[i - 1], got[i]);
    if (all) break;
  }
  auto solo_engine = testing::make_engine(256);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EngineExecutor sx(*solo_engine);
    CoreOptions so;
    so.sched.prefix_caching = false;
    so.check_each_step = true;
    SchedulerCore solo(sx, *m.tok, so);
    auto s = solo.submit(reqs[i]);
    Collected want;
    while (!drain(*s, want)) solo.run_once();
    EXPECT_EQ(want.fin.cached_tokens, 0);
    expect_same(got[i], want, "engine request " + std::to_string(i));
    if (i > 0 && i != 3) {
      EXPECT_EQ(got[i].fin.cached_tokens, 288) << i;  // 18 blocks of 16
    }
  }
  EXPECT_EQ(got[3].fin.cached_tokens, 0);
  EXPECT_EQ(core.check(), "");
  EXPECT_EQ(core.stats().blocks_used, 0);
}

}  // namespace
}  // namespace lmstream

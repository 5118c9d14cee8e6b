// End-to-end tests of the scheduler loop over a fake paged executor (no model): batch invariance
// under random arrivals, cancellations and constant preemption; finish reasons; validation errors;
// cancellation at each stage; decode cadence counted in steps; the threaded mode.
#include "scheduler/scheduler_core.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "scheduler/test_support.h"

namespace lmstream {
namespace {

using testing::Collected;
using testing::drain;
using testing::FakeExecutor;

constexpr int kVocab = 64;

CoreOptions core_opts(int max_running = 64, int prefill = 512) {
  CoreOptions o;
  o.sched.max_rolling_batch_size = max_running;
  o.sched.max_batch_prefill_tokens = prefill;
  o.check_each_step = true;
  return o;
}

GenerateRequest make_request(std::mt19937& rng, int max_prompt) {
  GenerateRequest r;
  int n = int(rng() % uint32_t(max_prompt)) + 1;
  for (int i = 0; i < n; ++i) r.prompt.push_back(int32_t(3 + rng() % (kVocab - 3)));
  r.stop.max_new_tokens = int(rng() % 24) + 1;
  switch (rng() % 4) {
    case 0:
      break;  // greedy
    case 1:
      r.sampling.do_sample = true;
      r.sampling.temperature = 0.7f;
      break;
    case 2:
      r.sampling.do_sample = true;
      r.sampling.top_k = 10;
      r.sampling.top_p = 0.9f;
      r.sampling.repetition_penalty = 1.2f;
      break;
    default:
      r.sampling.do_sample = true;
      r.sampling.temperature = 1.3f;
      r.sampling.top_n_tokens = 3;
      break;
  }
  r.sampling.seed = rng();
  r.prompt_logprobs = (r.sampling.seed & 3) == 0;  // some ask for prompt logprobs too
  return r;
}

// Bitwise equality, so NaN (the first prompt token's logprob) equals NaN.
bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// Runs one request alone on a roomy pool, stepping by hand.
Collected run_solo(const GenerateRequest& req, const Tokenizer& tok, int block_size = 4,
                   int n_blocks = 512) {
  FakeExecutor ex(kVocab, block_size, n_blocks);
  SchedulerCore core(ex, tok, core_opts());
  auto s = core.submit(req);
  Collected c;
  for (int i = 0; i < 100000 && !drain(*s, c); ++i) core.run_once();
  EXPECT_TRUE(c.done);
  EXPECT_EQ(core.check(), "");
  EXPECT_EQ(core.stats().blocks_used, 0);
  return c;
}

struct Mix {
  int n_blocks, block_size, max_running, prefill;
  bool expect_preemption;
};

void batch_invariance(const Mix& m, uint32_t seed) {
  auto tok = testing::make_test_tokenizer();
  std::mt19937 rng(seed);
  const int n = 40;
  const int max_prompt = m.n_blocks * m.block_size / 2;
  std::vector<GenerateRequest> reqs;
  std::vector<int> arrive, cancel_at;
  for (int i = 0; i < n; ++i) {
    reqs.push_back(make_request(rng, max_prompt));
    arrive.push_back(int(rng() % 60));
    cancel_at.push_back(rng() % 5 == 0 ? arrive.back() + int(rng() % 20) : -1);
  }
  FakeExecutor ex(kVocab, m.block_size, m.n_blocks);
  SchedulerCore core(ex, *tok, core_opts(m.max_running, m.prefill));
  std::vector<std::shared_ptr<RequestStream>> streams(n);
  std::vector<Collected> got(n);
  int finished = 0;
  for (int step = 0; finished < n && step < 100000; ++step) {
    for (int i = 0; i < n; ++i) {
      if (arrive[i] == step) streams[i] = core.submit(reqs[i]);
      if (cancel_at[i] == step && streams[i]) streams[i]->cancel();
    }
    core.run_once();
    ASSERT_EQ(core.check(), "");
    finished = 0;
    for (int i = 0; i < n; ++i)
      if (streams[i] && drain(*streams[i], got[i])) ++finished;
  }
  ASSERT_EQ(finished, n);
  EXPECT_EQ(core.stats().blocks_used, 0);
  EXPECT_EQ(core.stats().blocks_free, m.n_blocks);
  if (m.expect_preemption) {
    EXPECT_GT(core.stats().preemptions, 0u);
  }
  int compared = 0;
  for (int i = 0; i < n; ++i) {
    if (got[i].fin.reason == FinishReason::kCancelled) {
      EXPECT_GE(cancel_at[i], 0) << i;
      continue;
    }
    Collected solo = run_solo(reqs[i], *tok, m.block_size, std::max(m.n_blocks, 512));
    EXPECT_EQ(got[i].ids, solo.ids) << "request " << i;
    EXPECT_EQ(got[i].logprobs, solo.logprobs) << "request " << i;
    EXPECT_EQ(got[i].fin.reason, solo.fin.reason) << "request " << i;
    EXPECT_EQ(got[i].fin.generated_text, solo.fin.generated_text);
    EXPECT_TRUE(same_floats(got[i].fin.prompt_logprobs, solo.fin.prompt_logprobs))
        << "request " << i;
    EXPECT_EQ(got[i].fin.prompt_logprobs.size(),
              reqs[i].prompt_logprobs ? reqs[i].prompt.size() : 0u);
    ++compared;
  }
  EXPECT_GT(compared, n / 2);
}

TEST(SchedulerCore, BatchInvarianceRoomyPool) { batch_invariance({1024, 4, 64, 512, false}, 1); }
TEST(SchedulerCore, BatchInvarianceSmallBatchAndBudget) {
  batch_invariance({1024, 4, 3, 7, false}, 2);
}
TEST(SchedulerCore, BatchInvarianceUnderConstantPreemption) {
  batch_invariance({24, 4, 16, 64, true}, 3);
}
TEST(SchedulerCore, BatchInvarianceBlockSizeOne) { batch_invariance({80, 1, 8, 16, true}, 4); }

TEST(SchedulerCore, FinishReasons) {
  auto tok = testing::make_test_tokenizer();
  FakeExecutor ex(kVocab, 4, 256);
  SchedulerCore core(ex, *tok, core_opts());
  auto run = [&](GenerateRequest r) {
    auto s = core.submit(std::move(r));
    Collected c;
    for (int i = 0; i < 1000 && !drain(*s, c); ++i) core.run_once();
    return c;
  };
  GenerateRequest base;
  base.prompt = {1, 5, 6, 7};
  base.stop.max_new_tokens = 12;
  ex.eos_penalty = 50.f;  // no eos unless forced

  Collected len = run(base);
  EXPECT_EQ(len.fin.reason, FinishReason::kLength);
  EXPECT_EQ(len.ids.size(), 12u);
  EXPECT_EQ(len.fin.generated_tokens, 12);
  EXPECT_EQ(len.fin.input_tokens, 4);
  EXPECT_EQ(len.emit + len.fin.tail, len.fin.generated_text);
  EXPECT_EQ(len.fin.generated_text, tok->decode(len.ids) == "" ? "" : len.fin.generated_text);
  for (size_t i = 1; i < len.times.size(); ++i) EXPECT_GE(len.times[i], len.times[i - 1]);
  EXPECT_LE(len.fin.queued_s, len.fin.first_token_s);
  EXPECT_LE(len.fin.first_token_s, len.fin.total_s);

  // The generated text starts with the first token's leading space (not stripped).
  EXPECT_EQ(len.text.substr(0, 1), tok->token_bytes(len.ids[0]).substr(0, 1));

  // eos_token: forced when the sequence reaches 4 + 5 tokens.
  ex.eos_at_len = 9;
  Collected eos = run(base);
  EXPECT_EQ(eos.fin.reason, FinishReason::kEosToken);
  EXPECT_EQ(eos.ids.size(), 5u);
  EXPECT_EQ(eos.ids.back(), tok->eos());
  // ignore_eos keeps going to max_new_tokens.
  GenerateRequest ign = base;
  ign.stop.ignore_eos = true;
  Collected ig = run(ign);
  EXPECT_EQ(ig.fin.reason, FinishReason::kLength);
  EXPECT_EQ(ig.ids.size(), 12u);
  // Length wins over eos when both happen at the last token.
  GenerateRequest both = base;
  both.stop.max_new_tokens = 5;
  EXPECT_EQ(run(both).fin.reason, FinishReason::kLength);
  ex.eos_at_len = 0;

  // stop_sequence: stop on a piece of text the greedy run produces.
  ASSERT_GT(len.fin.generated_text.size(), 8u);
  std::string stop = len.fin.generated_text.substr(4, 3);
  size_t at = len.fin.generated_text.find(stop);
  GenerateRequest st = base;
  st.stop.stop = {stop};
  Collected sc = run(st);
  EXPECT_EQ(sc.fin.reason, FinishReason::kStopSequence);
  EXPECT_EQ(sc.fin.generated_text, len.fin.generated_text.substr(0, at + stop.size()));
  st.stop.include_stop = false;
  Collected sd = run(st);
  EXPECT_EQ(sd.fin.reason, FinishReason::kStopSequence);
  EXPECT_EQ(sd.fin.generated_text, len.fin.generated_text.substr(0, at));
  EXPECT_EQ(core.stats().blocks_used, 0);
}

TEST(SchedulerCore, PromptLogprobsMatchEachPrefixScoredAlone) {
  auto tok = testing::make_test_tokenizer();
  GenerateRequest r;
  for (int i = 0; i < 23; ++i) r.prompt.push_back(int32_t(3 + (i * 7) % (kVocab - 3)));
  r.stop.max_new_tokens = 2;
  r.prompt_logprobs = true;
  // Prefilled 5 tokens per step, so the logprobs cross chunk boundaries.
  FakeExecutor ex(kVocab, 4, 64);
  SchedulerCore core(ex, *tok, core_opts(64, 5));
  auto s = core.submit(r);
  Collected c;
  for (int i = 0; i < 1000 && !drain(*s, c); ++i) core.run_once();
  ASSERT_TRUE(c.done);
  const auto& lp = c.fin.prompt_logprobs;
  ASSERT_EQ(lp.size(), r.prompt.size());
  EXPECT_TRUE(std::isnan(lp[0]));
  // Reference: each prefix run alone, last-row logits only, log-softmax in double.
  for (size_t k = 1; k < r.prompt.size(); ++k) {
    FakeExecutor ref(kVocab, 4, 64);
    std::vector<int32_t> table;
    for (int b = 0; b < 8; ++b) table.push_back(b);
    SeqStep st;
    st.tokens = std::span<const int32_t>(r.prompt.data(), k);
    st.block_table = table;
    std::vector<float> row(kVocab);
    ref.step(std::span<const SeqStep>(&st, 1), row.data());
    double mx = *std::max_element(row.begin(), row.end()), sum = 0;
    for (float v : row) sum += std::exp(double(v) - mx);
    double want = double(row[size_t(r.prompt[k])]) - mx - std::log(sum);
    EXPECT_NEAR(lp[k], want, 1e-5) << "prompt token " << k;
  }
  // Not requested: none computed, and the engine is only asked for sampling rows.
  r.prompt_logprobs = false;
  auto s2 = core.submit(r);
  Collected c2;
  for (int i = 0; i < 1000 && !drain(*s2, c2); ++i) core.run_once();
  EXPECT_TRUE(c2.fin.prompt_logprobs.empty());
  EXPECT_EQ(c2.ids, c.ids);
  EXPECT_EQ(core.stats().blocks_used, 0);
}

TEST(SchedulerCore, InjectedFailureEndsTheStreamWithErrorAfterItsTokens) {
  auto tok = testing::make_test_tokenizer();
  FakeExecutor ex(kVocab, 4, 256);
  CoreOptions o = core_opts();
  o.sched.fail_after_tokens = 3;
  SchedulerCore core(ex, *tok, o);
  ex.eos_penalty = 50.f;
  GenerateRequest r;
  r.prompt = {1, 5, 6, 7};
  r.stop.max_new_tokens = 10;
  auto s = core.submit(r);
  Collected c;
  for (int i = 0; i < 1000 && !drain(*s, c); ++i) core.run_once();
  EXPECT_EQ(c.fin.reason, FinishReason::kError);
  EXPECT_NE(c.fin.error.find("injected"), std::string::npos) << c.fin.error;
  EXPECT_EQ(c.ids.size(), 3u);
  // A request that ends by its own limit first is not failed.
  r.stop.max_new_tokens = 3;
  auto s2 = core.submit(r);
  Collected c2;
  for (int i = 0; i < 1000 && !drain(*s2, c2); ++i) core.run_once();
  EXPECT_EQ(c2.fin.reason, FinishReason::kLength);
  EXPECT_EQ(core.stats().blocks_used, 0);
}

TEST(SchedulerCore, InvalidRequestsEndAtOnceWithError) {
  auto tok = testing::make_test_tokenizer();
  FakeExecutor ex(kVocab, 4, 8, /*max_pos=*/20);  // pool 32 tokens, context 20
  SchedulerCore core(ex, *tok, core_opts());
  auto expect_error = [&](GenerateRequest r, const std::string& needle) {
    auto s = core.submit(std::move(r));
    Collected c;
    ASSERT_TRUE(drain(*s, c)) << needle;  // immediately, without a step
    EXPECT_EQ(c.fin.reason, FinishReason::kError);
    EXPECT_NE(c.fin.error.find(needle), std::string::npos) << c.fin.error;
    EXPECT_TRUE(c.ids.empty());
  };
  GenerateRequest r;
  expect_error(r, "empty");
  r.prompt = {1, 64};
  expect_error(r, "outside the vocabulary");
  r.prompt = {1, -1};
  expect_error(r, "outside the vocabulary");
  r.prompt = std::vector<int32_t>(20, 5);
  expect_error(r, "context of 20");
  r.prompt = {1, 2};
  r.stop.max_new_tokens = 0;
  expect_error(r, "max_new_tokens");
  r.stop.max_new_tokens = 5;
  r.sampling.do_sample = true;
  r.sampling.temperature = -1.f;
  expect_error(r, "sampling");

  FakeExecutor small(kVocab, 4, 2);  // 8 tokens of KV, no context limit
  SchedulerCore core2(small, *tok, core_opts());
  auto s = core2.submit(GenerateRequest{std::vector<int32_t>(8, 5), {}, {}});
  Collected c;
  ASSERT_TRUE(drain(*s, c));
  EXPECT_NE(c.fin.error.find("whole KV cache of 8 tokens"), std::string::npos) << c.fin.error;
  // 7 + 1 fits exactly: it generates one token and then stops (the pool is full).
  GenerateRequest fit{std::vector<int32_t>(7, 5), {}, {}};
  fit.stop.max_new_tokens = 10;
  auto s2 = core2.submit(fit);
  Collected c2;
  for (int i = 0; i < 100 && !drain(*s2, c2); ++i) core2.run_once();
  EXPECT_EQ(c2.fin.reason, FinishReason::kLength);
  EXPECT_EQ(c2.ids.size(), 2u);  // the 8th token is fed, the 9th cannot be
  EXPECT_EQ(core2.stats().blocks_used, 0);
}

TEST(SchedulerCore, CancellationAtEachStageFreesBlocksByTheNextStep) {
  auto tok = testing::make_test_tokenizer();
  FakeExecutor ex(kVocab, 4, 100);
  SchedulerCore core(ex, *tok, core_opts(/*max_running=*/2, /*prefill=*/8));
  GenerateRequest dec{{1, 5, 6}, {}, {}};
  dec.stop.max_new_tokens = 100;
  GenerateRequest pre{std::vector<int32_t>(40, 7), {}, {}};
  pre.stop.max_new_tokens = 100;
  auto a = core.submit(dec);  // decoding after one step
  auto b = core.submit(pre);  // prefilling (40 tokens, 8 per step)
  auto c = core.submit(dec);  // queued (max_running = 2)
  core.run_once();
  core.run_once();
  SchedulerStats st = core.stats();
  EXPECT_EQ(st.running, 2);
  EXPECT_EQ(st.waiting, 1);
  Collected ca, cb, cc;
  drain(*a, ca);
  ASSERT_FALSE(ca.ids.empty());  // a is decoding
  drain(*b, cb);
  ASSERT_TRUE(cb.ids.empty());  // b is still in its prefill
  for (auto* s : {c.get(), b.get(), a.get()}) {
    int used_before = core.stats().blocks_used;
    s->cancel();
    core.run_once();
    Collected x;
    drain(*s, x);
    ASSERT_TRUE(x.done);
    EXPECT_EQ(x.fin.reason, FinishReason::kCancelled);
    EXPECT_EQ(core.check(), "");
    if (s != c.get()) {
      EXPECT_LT(core.stats().blocks_used, used_before);
    }
  }
  EXPECT_EQ(core.stats().blocks_used, 0);
  EXPECT_EQ(core.stats().running, 0);
}

TEST(SchedulerCore, CadenceWhileA2000TokenPromptPrefills) {
  auto tok = testing::make_test_tokenizer();
  FakeExecutor ex(kVocab, 16, 512);
  CoreOptions o = core_opts(64, 512);
  int step = 0;
  o.on_step = [&](const StepPlan&) { ++step; };
  SchedulerCore core(ex, *tok, o);
  std::vector<std::shared_ptr<RequestStream>> dec;
  for (int i = 0; i < 8; ++i) {
    GenerateRequest r{std::vector<int32_t>(20 + i, 9), {}, {}};
    r.stop.max_new_tokens = 200;
    r.stop.ignore_eos = true;
    dec.push_back(core.submit(r));
  }
  core.run_once();  // all 8 prefilled, each has its first token
  GenerateRequest big{std::vector<int32_t>(2000, 11), {}, {}};
  big.stop.max_new_tokens = 5;
  auto b = core.submit(big);
  std::vector<int> last(8, step), max_gap(8, 0);
  Collected cb;
  while (cb.ids.empty()) {
    core.run_once();
    drain(*b, cb);
    for (int i = 0; i < 8; ++i) {
      StreamEvent ev;
      while (dec[i]->try_pop(ev)) {
        if (std::holds_alternative<TokenEvent>(ev)) {
          max_gap[i] = std::max(max_gap[i], step - last[i]);
          last[i] = step;
        }
      }
    }
    ASSERT_LT(step, 50);
  }
  EXPECT_EQ(step, 1 + 4);  // the long prompt took 4 steps of <= 512 tokens
  for (int i = 0; i < 8; ++i) {
    EXPECT_LE(max_gap[i], 2) << "stream " << i;
    EXPECT_EQ(last[i], step) << "stream " << i;
  }
}

TEST(SchedulerCore, ThreadedMatchesSoloAndCancelsFromConsumers) {
  auto tok = testing::make_test_tokenizer();
  std::mt19937 rng(77);
  const int n = 24;
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < n; ++i) reqs.push_back(make_request(rng, 30));
  FakeExecutor ex(kVocab, 4, 40);  // tight: preemption happens
  SchedulerCore core(ex, *tok, core_opts(8, 16));
  core.start();
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < n; ++i) {
    streams.push_back(core.submit(reqs[i]));
    if (i % 6 == 5) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  streams[3]->cancel();
  std::vector<Collected> got(n);
  for (int i = 0; i < n; ++i) {
    StreamEvent ev;
    while (!got[i].done) {
      ASSERT_TRUE(streams[i]->wait_pop(ev, std::chrono::seconds(20))) << "request " << i;
      if (auto* t = std::get_if<TokenEvent>(&ev)) {
        got[i].ids.push_back(t->id);
      } else {
        got[i].fin = std::get<FinalEvent>(ev);
        got[i].done = true;
      }
    }
  }
  for (int i = 0; i < n; ++i) {
    if (i == 3 && got[i].fin.reason == FinishReason::kCancelled) continue;
    EXPECT_EQ(got[i].ids, run_solo(reqs[i], *tok).ids) << "request " << i;
  }
  for (int k = 0; k < 200 && core.stats().blocks_used != 0; ++k)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(core.stats().blocks_used, 0);
}

TEST(SchedulerCore, DestructorCancelsUnfinishedRequests) {
  auto tok = testing::make_test_tokenizer();
  FakeExecutor ex(kVocab, 4, 64);
  std::shared_ptr<RequestStream> s1, s2;
  {
    SchedulerCore core(ex, *tok, core_opts());
    GenerateRequest r{{1, 5}, {}, {}};
    r.stop.max_new_tokens = 1000;
    r.stop.ignore_eos = true;
    s1 = core.submit(r);
    core.run_once();
    s2 = core.submit(r);  // never stepped
  }
  for (auto& s : {s1, s2}) {
    Collected c;
    ASSERT_TRUE(drain(*s, c));
    EXPECT_EQ(c.fin.reason, FinishReason::kCancelled);
  }
}

TEST(SchedulerCore, NotifyIsCalledAndPushNeverBlocks) {
  auto tok = testing::make_test_tokenizer();
  FakeExecutor ex(kVocab, 4, 64);
  SchedulerCore core(ex, *tok, core_opts());
  GenerateRequest r{{1, 5}, {}, {}};
  r.stop.max_new_tokens = 50;
  r.stop.ignore_eos = true;
  auto s = core.submit(r);
  int notified = 0;
  core.run_once();  // one event queued before set_notify
  s->set_notify([&] { ++notified; });
  EXPECT_EQ(notified, 1);
  // Nobody consumes: the producer keeps going.
  for (int i = 0; i < 60 && !s->finished(); ++i) core.run_once();
  EXPECT_TRUE(s->finished());
  EXPECT_EQ(notified, 1 + 49 + 1);  // 49 more tokens and the final event
}

}  // namespace
}  // namespace lmstream

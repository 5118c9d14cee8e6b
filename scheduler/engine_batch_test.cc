// The scheduler over the REAL engine (a micro Q8_0 model made on the fly): batch invariance with
// many requests of up to ~1,000 prompt tokens, mixed sampling, random arrivals and cancellations,
// and a KV budget so small that preemption is constant. Every request that was not cancelled must
// produce exactly the tokens of its solo run; every block must be back in the pool.
// Shrinks under LMSTREAM_SANITIZED=1.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "model/model.h"
#include "model/testgen.h"
#include "scheduler/engine_test_support.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_core.h"
#include "scheduler/test_support.h"

namespace lmstream {
namespace {

using testing::Collected;
using testing::drain;
using testing::make_engine;
using testing::micro;
using testing::MicroModel;
using testing::solo;

bool sanitized() {
  const char* v = std::getenv("LMSTREAM_SANITIZED");
  return v && std::string(v) == "1";
}

// Prompt lengths are log-uniform over [1, max_prompt] (most short, some long) unless forced.
GenerateRequest random_request(std::mt19937& rng, int max_prompt, int vocab, int max_new = 12,
                               int force_len = 0) {
  GenerateRequest r;
  std::uniform_real_distribution<double> u(0.0, std::log(double(max_prompt)));
  int n = force_len > 0 ? force_len : std::clamp(int(std::lround(std::exp(u(rng)))), 1, max_prompt);
  r.prompt.push_back(1);  // BOS
  for (int i = 1; i < n; ++i) r.prompt.push_back(int32_t(3 + rng() % uint32_t(vocab - 3)));
  r.stop.max_new_tokens = 1 + int(rng() % uint32_t(max_new));
  r.stop.ignore_eos = rng() % 2;
  switch (rng() % 3) {
    case 0:
      break;
    case 1:
      r.sampling.do_sample = true;
      r.sampling.temperature = 0.8f;
      r.sampling.top_k = 40;
      break;
    default:
      r.sampling.do_sample = true;
      r.sampling.top_p = 0.9f;
      r.sampling.repetition_penalty = 1.1f;
      r.sampling.top_n_tokens = 2;
      break;
  }
  r.sampling.seed = rng();
  return r;
}

struct Scenario {
  int n_requests, max_prompt, n_blocks, max_running, prefill, arrive_within;
  bool cancel_some;
  int max_new = 12;
};

// Runs the scenario's requests together (stepped by hand so arrivals and cancellations land on
// exact steps), then each alone, and compares. Returns the number of preemptions.
uint64_t run_and_compare(const Scenario& sc, uint32_t seed) {
  MicroModel& m = micro();
  const int vocab = m.model->cfg.vocab_size;
  std::mt19937 rng(seed);
  std::vector<GenerateRequest> reqs;
  std::vector<int> arrive, cancel_at;
  for (int i = 0; i < sc.n_requests; ++i) {
    // The first two requests pin the ends of the range: max_prompt tokens and 1 token.
    int force = i == 0 ? sc.max_prompt : i == 1 ? 1 : 0;
    reqs.push_back(random_request(rng, sc.max_prompt, vocab, sc.max_new, force));
    arrive.push_back(int(rng() % uint32_t(sc.arrive_within)));
    cancel_at.push_back(sc.cancel_some && rng() % 6 == 0 ? arrive.back() + int(rng() % 8) : -1);
  }
  auto engine = make_engine(sc.n_blocks);
  EngineExecutor ex(*engine);
  CoreOptions o;
  o.sched.max_rolling_batch_size = sc.max_running;
  o.sched.max_batch_prefill_tokens = sc.prefill;
  o.check_each_step = true;
  SchedulerCore core(ex, *m.tok, o);
  const int n = sc.n_requests;
  std::vector<std::shared_ptr<RequestStream>> streams(static_cast<size_t>(n));
  std::vector<Collected> got(static_cast<size_t>(n));
  int finished = 0;
  for (int step = 0; finished < n; ++step) {
    for (int i = 0; i < n; ++i) {
      if (arrive[i] == step) streams[i] = core.submit(reqs[i]);
      if (cancel_at[i] == step && streams[i]) streams[i]->cancel();
    }
    core.run_once();
    finished = 0;
    for (int i = 0; i < n; ++i)
      if (streams[i] && drain(*streams[i], got[i])) ++finished;
    if (step > 100000) {
      ADD_FAILURE() << "scheduler did not finish";
      break;
    }
  }
  EXPECT_EQ(core.check(), "");
  EXPECT_EQ(core.stats().blocks_used, 0);
  EXPECT_EQ(core.stats().blocks_free, sc.n_blocks);
  uint64_t preemptions = core.stats().preemptions;

  auto solo_engine = make_engine(1100 / 16 + 2);
  int compared = 0;
  for (int i = 0; i < n; ++i) {
    if (got[i].fin.reason == FinishReason::kCancelled) {
      EXPECT_GE(cancel_at[i], 0) << "request " << i << " cancelled without asking";
      continue;
    }
    if (got[i].fin.reason == FinishReason::kError) {
      ADD_FAILURE() << "request " << i << ": " << got[i].fin.error;
      continue;
    }
    Collected s = solo(*solo_engine, reqs[i]);
    EXPECT_EQ(got[i].ids, s.ids) << "request " << i << " (prompt " << reqs[i].prompt.size()
                                 << " tokens, preemptions " << got[i].fin.preemptions << ")";
    EXPECT_EQ(got[i].logprobs, s.logprobs) << "request " << i;
    EXPECT_EQ(got[i].fin.reason, s.fin.reason) << "request " << i;
    ++compared;
  }
  EXPECT_GT(compared, n / 2);
  return preemptions;
}

TEST(EngineBatch, SixtyFourRequestsMatchTheirSoloRuns) {
  Scenario sc{64, 1000, 4096, 64, 512, 40, true};
  if (sanitized()) sc = {12, 150, 512, 64, 128, 10, true};
  run_and_compare(sc, 11);
}

TEST(EngineBatch, ConstantPreemptionStillMatchesSoloRuns) {
  // 256 tokens of KV for up to 8 running sequences that each grow by up to 40 tokens.
  Scenario sc{16, 100, 16, 8, 64, 6, false, 40};
  if (sanitized()) sc = {8, 60, 10, 6, 48, 4, false, 30};
  uint64_t preemptions = run_and_compare(sc, 12);
  EXPECT_GT(preemptions, 2u);
}

TEST(EngineBatch, PublicSchedulerThreadedRoundTrip) {
  MicroModel& m = micro();
  auto engine = make_engine(256);
  std::mt19937 rng(13);
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 6; ++i) reqs.push_back(random_request(rng, 60, m.model->cfg.vocab_size));
  std::vector<Collected> got(reqs.size());
  {
    SchedulerOptions so;
    so.max_rolling_batch_size = 4;
    so.max_batch_prefill_tokens = 32;
    Scheduler sched(*engine, *m.tok, so);
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (auto& r : reqs) streams.push_back(sched.submit(r));
    for (size_t i = 0; i < reqs.size(); ++i) {
      while (!drain(*streams[i], got[i])) {
        StreamEvent ev;
        if (streams[i]->wait_pop(ev, std::chrono::milliseconds(50))) {
          if (auto* t = std::get_if<TokenEvent>(&ev)) {
            got[i].ids.push_back(t->id);
            got[i].logprobs.push_back(t->logprob);
          } else {
            got[i].fin = std::get<FinalEvent>(ev);
            got[i].done = true;
          }
        }
      }
    }
    // Final events are pushed during a step; the stats follow at its end.
    for (int k = 0; k < 400 && sched.stats().blocks_used != 0; ++k)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(sched.stats().blocks_used, 0);
    EXPECT_GT(sched.stats().steps, 0u);
  }
  auto solo_engine = make_engine(256);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(got[i].ids, solo(*solo_engine, reqs[i]).ids);
}

}  // namespace
}  // namespace lmstream

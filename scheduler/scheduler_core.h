// The scheduler loop over any Executor: drain submissions and cancellations -> plan (policy.h) ->
// execute one step -> sample each sequence that produced logits -> push events -> finish and
// free blocks. Either runs its own thread (start()) or is stepped by hand (run_once()) so tests
// can place arrivals and cancellations at exact steps. Scheduler (scheduler.h) wraps this over the
// real Engine.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "scheduler/executor.h"
#include "scheduler/policy.h"
#include "scheduler/scheduler.h"
#include "scheduler/sequence.h"

namespace lmstream {

struct CoreOptions {
  SchedulerOptions sched;
  // Debug hook: check the block invariant after every step and abort (with the violation on
  // stderr) when it breaks. Tests turn it on; it costs O(blocks) per step.
  bool check_each_step = false;
  // Called on the scheduler thread after each step that ran a batch (tests count steps with it).
  std::function<void(const StepPlan&)> on_step;
};

class SchedulerCore {
 public:
  SchedulerCore(Executor& ex, const Tokenizer& tok, CoreOptions opts);
  ~SchedulerCore();  // stops the thread; unfinished requests end with kCancelled
  SchedulerCore(const SchedulerCore&) = delete;
  SchedulerCore& operator=(const SchedulerCore&) = delete;

  // Starts the scheduler thread. Without it, the owner calls run_once().
  void start();
  std::shared_ptr<RequestStream> submit(GenerateRequest req);
  // One iteration: drain, plan, execute, sample. Returns false when there was nothing to do.
  // Only when the thread is not started.
  bool run_once();
  SchedulerStats stats() const;
  // The block invariant now ("" when it holds). Only when the thread is not started.
  std::string check() const;

 private:
  void loop();
  void drain_inbox();
  void execute(const StepPlan& plan);
  void finish_seq(uint64_t id, FinishReason r, const std::string& error = "");
  void update_stats(const StepPlan* plan);

  Executor& ex_;
  const Tokenizer& tok_;
  CoreOptions opts_;
  PolicyConfig pcfg_;
  int pool_tokens_ = 0;  // the whole KV pool, in tokens
  int cap_ = 0;          // the most tokens one sequence can hold (pool or context)

  // Shared with submitters.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Sequence>> inbox_;
  bool stop_ = false;
  uint64_t next_id_ = 1;
  SchedulerStats stats_;

  // Scheduler-thread only.
  SchedState st_;
  std::unordered_map<uint64_t, std::unique_ptr<Sequence>> seqs_;
  std::vector<float> logits_;
  std::vector<SeqStep> batch_;
  std::thread thread_;
};

}  // namespace lmstream

// Scheduler: the public face of continuous batching, SchedulerCore running its own thread over
// the real Engine.
#include "scheduler/scheduler.h"

#include <cstdlib>
#include <cstring>

#include "scheduler/scheduler_core.h"

namespace lmstream {

struct Scheduler::Impl {
  Impl(Engine& e, const Tokenizer& tok, const SchedulerOptions& o)
      : ex(e), core(ex, tok, CoreOptions{with_namespace(o, e), check_from_env(), nullptr}) {}
  static SchedulerOptions with_namespace(SchedulerOptions o, const Engine& e) {
    if (o.cache_namespace.empty()) o.cache_namespace = e.cache_identity();
    return o;
  }
  // LMSTREAM_SCHED_CHECK=1: check the KV block invariant after every step, abort if broken.
  static bool check_from_env() {
    const char* v = std::getenv("LMSTREAM_SCHED_CHECK");
    return v && std::strcmp(v, "1") == 0;
  }
  EngineExecutor ex;
  SchedulerCore core;
};

Scheduler::Scheduler(Engine& engine, const Tokenizer& tok, const SchedulerOptions& opts)
    : impl_(std::make_unique<Impl>(engine, tok, opts)) {
  impl_->core.start();
}

Scheduler::~Scheduler() = default;

std::shared_ptr<RequestStream> Scheduler::submit(GenerateRequest req) {
  return impl_->core.submit(std::move(req));
}

SchedulerStats Scheduler::stats() const { return impl_->core.stats(); }

}  // namespace lmstream

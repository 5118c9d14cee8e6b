// The real Backend: a loaded model, its tokenizer, the engine and the rolling-batch scheduler.
// load_backend() loads, sizes the KV pool, and runs one warm-up step before returning, so the
// caller can flip /ping to 200 right after.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "engine/engine.h"
#include "model/model.h"
#include "scheduler/scheduler.h"
#include "server/backend.h"

namespace lmstream::server {

struct BackendOptions {
  std::string model_path;
  std::string model_id;  // what the user named, when model_path was resolved from it
  LoadOptions load;
  int threads = 0;
  KvSizing kv{.default_tokens = 16384};  // the pool holds at least the model's context
  KvType kv_type = KvType::F16;
  SchedulerOptions sched;
  std::string chat_template;   // a Jinja chat template file instead of the model's ("" = none)
  int test_load_delay_ms = 0;  // test-only: loading takes this much longer (/ping's 503 window)
  std::string test_load_gate;  // test-only: loading waits until this file exists (the same window,
                               // held open for exactly as long as a test needs it)
};

// Throws ModelError / std::runtime_error with a readable message.
std::shared_ptr<Backend> load_backend(const BackendOptions& o);

// Tensor parallelism, ranks other than 0: loads this rank's shard with the engine options rank 0
// uses, then executes rank 0's step plans until it shuts the workers down. No HTTP, tokenizer
// or scheduler here.
void run_tp_worker(const BackendOptions& o);

}  // namespace lmstream::server

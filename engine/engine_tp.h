// Internal to engine/: a flattened batch row, and the tensor-parallel state an Engine carries
// (engine.cc runs the collectives inside the forward pass; engine_tp.cc starts the ranks, runs the
// workers' loop and the heartbeat, and shuts down).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "dist/comm.h"
#include "engine/engine.h"

namespace lmstream {

// One row of the flattened batch.
struct Engine::Row {
  int32_t token;
  int32_t pos;
  int seq;  // index into the batch
};

struct Engine::Tp {
  dist::Comm* comm = nullptr;
  ShardPlan plan;
  std::mutex mu;  // one collective sequence at a time: a step, or a heartbeat
  uint64_t step = 0;
  bool shut = false;
  std::chrono::steady_clock::time_point last;
  double timeout_s = 30;  // a worker that hears no plan for this long aborts the job
  std::thread heartbeat;  // rank 0: an IDLE plan whenever no step ran for a second
  std::condition_variable cv;
  bool stop = false;
  std::vector<float> part, gathered;  // logits: this rank's slice; rank 0's gather buffer
};

}  // namespace lmstream

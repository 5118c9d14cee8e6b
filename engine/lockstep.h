// The step plan rank 0 broadcasts to every other rank before each engine step under tensor
// parallelism: which sequences run, at which positions, with which tokens and block tables (block
// ids are global: rank 0's one allocator decides for all). IDLE is the heartbeat when there is
// no work; SHUTDOWN ends the workers' loop. A sequence absent from a plan is simply not computed
// (that is all cancellation needs). Workers check the step counter, so a lost or repeated plan is
// caught rather than silently computed.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/engine.h"

namespace lmstream {

enum class PlanKind : uint32_t { kRun = 1, kIdle = 2, kShutdown = 3 };

std::vector<uint8_t> encode_plan(PlanKind kind, uint64_t step, std::span<const SeqStep> batch);

struct DecodedPlan {
  PlanKind kind = PlanKind::kIdle;
  uint64_t step = 0;
  std::vector<SeqStep> batch;  // spans point into ints
  std::vector<int32_t> ints;
};
// Throws std::invalid_argument on a malformed or truncated plan.
DecodedPlan decode_plan(std::span<const uint8_t> bytes);

}  // namespace lmstream

// Tensor parallelism around the forward pass (see engine.h, lockstep.h): start-up checks that
// every rank loaded the same model with the same KV pool, the workers' plan loop, rank 0's idle
// heartbeat and the SHUTDOWN plan.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>

#include "engine/engine.h"
#include "engine/engine_tp.h"
#include "engine/lockstep.h"

namespace lmstream {

int Engine::tp_size() const { return tp_ ? tp_->comm->size() : 1; }
int Engine::tp_rank() const { return tp_ ? tp_->comm->rank() : 0; }
const ShardPlan* Engine::shard() const { return tp_ ? &tp_->plan : nullptr; }

void Engine::tp_start() {
  dist::Comm& comm = *opts_.tp_comm;
  if (opts_.shard.size != comm.size() || opts_.shard.rank != comm.rank())
    throw std::invalid_argument("engine: the shard plan is not for this rank");
  tp_ = std::make_unique<Tp>();
  tp_->comm = &comm;
  tp_->plan = opts_.shard;
  if (const char* t = std::getenv("LMSTREAM_TP_TIMEOUT")) tp_->timeout_s = std::atof(t);
  if (tp_->timeout_s <= 0) tp_->timeout_s = 30;
  // Every rank must hold a slice of the same model and the same number of KV blocks (block ids
  // are global). A mismatch is a launch error: abort every rank rather than compute garbage.
  const LlamaConfig& c = model_.cfg;
  std::string id = model_.name + "|" + model_.format;
  for (int v : {c.dim, c.n_layers, c.head_dim, c.vocab_size, c.max_pos, opts_.block_size})
    id += "|" + std::to_string(v);
  const int64_t h = int64_t(std::hash<std::string>{}(id) >> 1);
  if (comm.allreduce_min(h) != comm.allreduce_max(h))
    comm.abort(2, "the ranks loaded different models (or block sizes)");
  if (comm.allreduce_min(opts_.n_blocks) != comm.allreduce_max(opts_.n_blocks))
    comm.abort(2, "the ranks sized their KV pools differently");
  tp_->last = std::chrono::steady_clock::now();
  if (comm.rank() != 0) return;
  tp_->heartbeat = std::thread([this] {
    std::unique_lock<std::mutex> lk(tp_->mu);
    while (!tp_->stop) {
      tp_->cv.wait_for(lk, std::chrono::milliseconds(250));
      if (tp_->stop || tp_->shut) break;
      if (std::chrono::steady_clock::now() - tp_->last < std::chrono::seconds(1)) continue;
      std::vector<uint8_t> plan = encode_plan(PlanKind::kIdle, ++tp_->step, {});
      tp_->comm->bcast(plan, tp_->timeout_s);
      tp_->last = std::chrono::steady_clock::now();
    }
  });
}

void Engine::run_worker() {
  if (!tp_ || tp_->comm->rank() == 0) throw std::logic_error("engine: run_worker on rank 0");
  dist::Comm& comm = *tp_->comm;
  std::vector<uint8_t> buf;
  for (;;) {
    comm.bcast(buf, tp_->timeout_s);
    DecodedPlan p;
    try {
      p = decode_plan(buf);
      if (p.step != tp_->step + 1)
        throw std::invalid_argument("step plan " + std::to_string(p.step) + " after " +
                                    std::to_string(tp_->step));
      tp_->step = p.step;
      if (p.kind == PlanKind::kShutdown) {
        tp_->shut = true;
        return;
      }
      if (p.kind == PlanKind::kIdle) continue;
      compute(p.batch, validate(p.batch), nullptr);
    } catch (const std::exception& e) {
      comm.abort(4, "rank " + std::to_string(comm.rank()) + ": " + e.what());
    }
  }
}

void Engine::shutdown_workers() {
  if (!tp_) return;
  if (tp_->heartbeat.joinable()) {
    {
      std::lock_guard<std::mutex> lk(tp_->mu);
      tp_->stop = true;
    }
    tp_->cv.notify_all();
    tp_->heartbeat.join();
  }
  std::lock_guard<std::mutex> lk(tp_->mu);
  if (tp_->shut || tp_->comm->rank() != 0) return;
  std::vector<uint8_t> plan = encode_plan(PlanKind::kShutdown, ++tp_->step, {});
  tp_->comm->bcast(plan, tp_->timeout_s);
  tp_->shut = true;
}

}  // namespace lmstream

// The executor seam: what the scheduler needs from whatever runs a step. EngineExecutor forwards
// to the real Engine; tests plug in a fake with deterministic logits to exercise the threaded
// scheduler quickly and without a model.
#pragma once

#include <span>

#include "engine/engine.h"

namespace lmstream {

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs one ragged batch; one row of vocab() logits per SeqStep with want_logits, in batch order.
  virtual void step(std::span<const SeqStep> batch, float* logits_out) = 0;
  virtual int vocab() const = 0;
  virtual int block_size() const = 0;
  virtual int n_blocks() const = 0;
  virtual int max_pos() const = 0;  // the model's context length; 0 = unbounded
};

class EngineExecutor final : public Executor {
 public:
  explicit EngineExecutor(Engine& e) : e_(e) {}
  void step(std::span<const SeqStep> batch, float* logits_out) override {
    e_.step(batch, logits_out);
  }
  int vocab() const override { return e_.vocab(); }
  int block_size() const override { return e_.block_size(); }
  int n_blocks() const override { return e_.n_blocks(); }
  int max_pos() const override { return e_.cfg().max_pos; }

 private:
  Engine& e_;
};

}  // namespace lmstream

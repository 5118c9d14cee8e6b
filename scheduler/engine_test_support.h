// Test-only helpers for the tests that run the scheduler over the REAL engine (header-only, never
// part of lms_scheduler; used by scheduler/engine_batch_test.cc and cli/prompts_file_test.cc): one
// micro Q8_0 model per test binary, an engine over it, and a request's solo run.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "model/model.h"
#include "model/test_util.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_core.h"
#include "scheduler/test_support.h"

namespace lmstream::testing {

struct MicroModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
};

// One micro model per test binary, made on the fly. Its context is raised to 1,100 positions
// (RoPE is computed, not tabulated in the file) so prompts of 1,000 tokens fit.
inline MicroModel& micro() {
  static MicroModel m = [] {
    auto dir =
        std::filesystem::temp_directory_path() / ("lms-engine-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    MicroModel mm;
    mm.model = load_model(make_micro((dir / "micro.gguf").string(), "gguf", DType::Q8_0, 5));
    mm.model->cfg.max_pos = 1100;
    mm.tok = make_tokenizer(mm.model->tokenizer);
    std::filesystem::remove_all(dir);
    return mm;
  }();
  return m;
}

inline std::unique_ptr<Engine> make_engine(int n_blocks) {
  EngineOptions eo;
  eo.threads = 2;
  eo.block_size = 16;
  eo.n_blocks = n_blocks;
  return std::make_unique<Engine>(*micro().model, eo);
}

// The request run alone, checking the scheduler's invariant every step; every block must be back.
inline Collected solo(Engine& e, const GenerateRequest& r) {
  EngineExecutor ex(e);
  CoreOptions o;
  o.check_each_step = true;
  SchedulerCore core(ex, *micro().tok, o);
  auto s = core.submit(r);
  Collected c;
  while (!drain(*s, c)) core.run_once();
  EXPECT_EQ(core.stats().blocks_used, 0);
  return c;
}

}  // namespace lmstream::testing

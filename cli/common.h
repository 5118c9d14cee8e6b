// Pieces shared by subcommands: model options, loading, engine options, timing.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace lmstream::cli {

struct ModelArgs {
  std::string path;      // a path, file:// URL or Hub id (store/resolve.h)
  std::string revision;  // Hub branch, tag or commit
  std::string gguf_file;
  std::string quantize;  // "" | q8_0 | q4_0
  int threads = 0;
  std::string kv_type = "f16";
  void add(CLI::App& app, bool required = false);  // without --model: the embedded demo model
  LoadOptions load_options() const;
  KvType kv() const;
  // Engine options for this model: threads, KV type, and the KV pool sized by Engine::kv_blocks,
  // the one sizing rule every subcommand and `serve` use.
  EngineOptions engine_options(const LlamaConfig& c, const KvSizing& kv) const;
};

// Options of the rolling batch, shared by `generate --prompts` and `bench`.
struct BatchArgs {
  int64_t max_batch_total_tokens = 0;  // KV capacity in tokens; 0 = from kv_cache_memory
  std::string kv_cache_memory = "1GiB";
  int max_rolling_batch_size = 64;
  int max_batch_prefill_tokens = 512;
  void add(CLI::App& app);
  // Engine options for this model, with the KV pool sized as asked; logs the capacity.
  EngineOptions engine_options(const ModelArgs& m, const LlamaConfig& c) const;
};

struct Loaded {
  std::string path;  // the local path the model was loaded from (after resolving --model)
  std::unique_ptr<Model> model;  // under mpirun with several ranks: this rank's shard
  std::unique_ptr<Tokenizer> tokenizer;
};
// Under mpirun with several ranks, the model is this rank's tensor-parallel shard, and every
// EngineOptions from ModelArgs::engine_options carries the communicator and shard plan.
Loaded load(const ModelArgs& a);
// Tensor parallelism: on ranks other than 0, runs the engine as a worker until rank 0 shuts it
// down and returns true (the command then has nothing more to do); false on rank 0 or alone.
bool run_as_tp_worker(Engine& e);

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Resident set size of this process in bytes (from /proc/self/status), 0 if unknown.
size_t resident_bytes();

}  // namespace lmstream::cli

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
  std::string path;
  std::string quantize;  // "" | q8_0 | q4_0
  int threads = 0;
  std::string kv_type = "f16";
  void add(CLI::App& app, bool required = true);
  LoadOptions load_options() const;
  KvType kv() const;
};

struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};
Loaded load(const ModelArgs& a);

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Resident set size of this process in bytes (from /proc/self/status), 0 if unknown.
size_t resident_bytes();

}  // namespace lmstream::cli

// What a container definition becomes on this machine (reference/control-plane.md §5): the image
// picks the personality (TGI images run `lmstream serve --api tgi` with the container's
// Environment, DJL/LMI images run `--api lmi` with the serving.properties found in the model
// data), the model data is passed through to the worker (local paths, and the URLs the model
// resolver of `serve` understands), and the memory a worker will need is estimated (weights
// file size + KV cache). Pure apart from reading the model data's files.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lmstream::control {

enum class Personality { kTgi, kLmi };

// The image's personality, or nullopt with *why saying why lmstream cannot stand in for it.
std::optional<Personality> personality_of(const std::string& image, std::string* why);

// A container that cannot be started: the text is the endpoint's FailureReason.
class ContainerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LaunchOptions {
  uint64_t worker_kv_memory = 256ull
                              << 20;  // KV budget given to workers without MAX_BATCH_TOTAL_TOKENS
  int worker_threads = 0;
  // Added to each worker's nice value (0..19), so that the control plane's proxy can preempt the
  // workers' engine threads when a worker's bytes arrive (no measurable effect on a 2-core host:
  // bench/RESULTS.md).
  int worker_nice = 0;
  double shutdown_grace_s = 30;
};

struct LaunchPlan {
  Personality personality = Personality::kTgi;
  std::vector<std::string> serve_args;                   // after `serve`, without host/port
  std::vector<std::pair<std::string, std::string>> env;  // set in the worker's environment
  std::vector<std::string> notes;                        // logged: what was adapted and why
  std::string model_ref;                                 // what the worker loads
  std::optional<uint64_t> weights_bytes, kv_bytes;       // unknown for remote model data
  std::optional<uint64_t> memory() const {
    if (!weights_bytes || !kv_bytes) return std::nullopt;
    return *weights_bytes + *kv_bytes;
  }
};

// Throws ContainerError (the FailureReason) when the container cannot run here.
LaunchPlan plan_container(const nlohmann::json& container, const LaunchOptions& opts);

// Bytes of a local model: the file, or every regular file under the directory; nullopt when the
// reference is not a local path.
std::optional<uint64_t> local_size(const std::string& path);
// KV-cache bytes per token (f16 K and V over every layer) from a GGUF file's metadata or an HF
// directory's config.json; nullopt when it cannot be read.
std::optional<uint64_t> kv_bytes_per_token(const std::string& model_path);

}  // namespace lmstream::control

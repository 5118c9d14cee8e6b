// `lmstream serve` settings and where they come from. Every setting has a flag and the
// environment names of the TGI and LMI (DJL-Serving) containers; a flag wins over the
// environment, which wins over serving.properties — except DJL's own OPTION_* forms, which DJL
// applies only when the file lacks the key (api.md §2.2), so the file wins over those.
// Pure: the environment is passed in as a lookup function so precedence is unit-testable.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lmstream::server {

enum class ApiMode { kTgi, kLmi };
enum class OutputFormatter { kJson, kJsonLines };

// Values given on the command line (unset = not given).
struct ServeFlags {
  std::optional<std::string> model, host, api, properties, quantize, kv_type, kv_cache_memory;
  std::optional<std::string> log_level, log_format;
  std::optional<int> port, threads, max_concurrent_requests, max_input_length, max_total_tokens,
      max_batch_total_tokens, max_batch_prefill_tokens, max_stop_sequences, max_top_n_tokens,
      num_shard, max_rolling_batch_size, kv_blocks;
  std::optional<double> shutdown_grace;
  // SageMaker runtime routes and authentication.
  std::optional<std::string> endpoint_name, aws_access_key_id, aws_secret_access_key,
      aws_credentials_file, region, api_key;
  std::optional<bool> require_eula;
  // Where the model comes from when it is a Hub id (store/resolve.h).
  std::optional<std::string> revision, gguf_file;
  std::optional<std::string> prefix_caching;  // on | off
};

struct ServeConfig {
  std::string model;  // what names the model: a path, file://, s3://, a Hub id (store/resolve.h)
  std::string model_revision;  // --revision, HF_MODEL_REVISION, option.revision ("" = main)
  std::string gguf_file;       // --gguf-file: the GGUF file of a Hub repository
  std::string host = "0.0.0.0";
  int port = 8080;
  ApiMode api = ApiMode::kTgi;
  std::string properties_path;  // "" when none was used
  int threads = 0;              // engine threads, 0 = all cores
  int io_threads = 2;
  int kv_blocks = 0;            // 0 = engine default sizing from max_batch_total_tokens
  std::string quantize;         // "" = keep the file's types; q8_0 | q4_0 converts at load
  std::string kv_type = "f16";  // KV cache element type: f16 | f32
  size_t kv_cache_memory = 0;   // KV pool memory budget in bytes, 0 = unset
  bool prefix_caching = true;   // automatic prefix caching of KV blocks

  // TGI router limits.
  int max_concurrent_requests = 128;
  int max_best_of = 2;
  int max_stop_sequences = 4;
  int max_top_n_tokens = 5;
  int max_client_batch_size = 4;  // TGI's MAX_CLIENT_BATCH_SIZE: prompts or dialogs per request
  int max_input_length = 0;       // 0 = derive from the model (min(1024, ctx - 1))
  int max_total_tokens = 0;       // 0 = derive from the model (min(2048, ctx))
  int max_batch_total_tokens = 0;
  int max_batch_prefill_tokens = 0;  // 0 = derive (max(4096 capped, max_input_length))
  int num_shard = 1;
  // Logging: spdlog level ("" = info, or SPDLOG_LEVEL), text or json lines (TGI's JSON_OUTPUT).
  std::string log_level;
  bool log_json = false;
  // MESSAGES_API_ENABLED: /invocations also takes TGI's Messages API ({"messages": ...}).
  bool messages_api_enabled = false;

  // LMI.
  int max_rolling_batch_size = 64;
  OutputFormatter output_formatter = OutputFormatter::kJson;
  int rolling_batch_buffer = 4;        // SERVING_ROLLING_BATCH_BUFFER
  double model_loading_timeout_s = 0;  // 0 = none

  // HTTP.
  size_t body_limit = 6 * 1024 * 1024;  // SageMaker's BodyBlob max
  size_t header_limit = 16 * 1024;
  double idle_timeout_s = 60;   // keep-alive connection with no request
  double read_timeout_s = 30;   // one request's headers + body
  double write_timeout_s = 60;  // a stalled reader (SERVING_CHUNKED_READ_TIMEOUT)
  double keepalive_s = 15;      // SSE ':' comment when no event for this long
  double shutdown_grace_s = 30;

  // SageMaker runtime routes (/endpoints/{name}/...).
  std::string endpoint_name;         // "" = derive from the model's name (finalize_sagemaker)
  std::optional<bool> require_eula;  // nullopt = on for Llama 2 chat models (finalize_sagemaker)
  // Authentication: SigV4 keys for /endpoints/*, a bearer key for the other routes.
  std::string aws_access_key_id, aws_secret_access_key;
  std::string aws_credentials_file;  // ~/.aws/credentials format; every profile is a key
  std::string region;                // "" = any region in the credential scope
  std::string api_key;
};

struct ConfigMessage {
  enum Level { kInfo, kWarn } level;
  std::string text;
};

using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup process_env();

// Resolves the configuration. Throws std::invalid_argument with a clear message on settings that
// make serving impossible (bad numbers, NUM_SHARD > 1, no model). Settings this build accepts
// but cannot honour, and unknown serving.properties keys, become messages.
ServeConfig resolve_config(const ServeFlags& flags, const EnvLookup& env,
                           std::vector<ConfigMessage>* messages);

// Fills the SageMaker settings that depend on the loaded model: the endpoint name (from the model's
// name) and the licence gate (on when the model's name or path says Llama 2 chat).
void finalize_sagemaker(ServeConfig& cfg, const std::string& model_name);

// Fills the 0 = derive limits from the model's context length and checks TGI's start-up rules.
void finalize_limits(ServeConfig& cfg, int max_position);

}  // namespace lmstream::server

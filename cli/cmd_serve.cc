// `lmstream serve`: the HTTP server (TGI, LMI, OpenAI and SageMaker container routes) over one
// model. Settings come from flags, then the TGI/LMI containers' environment names, then
// serving.properties (server/config.h).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/demo_model.h"
#include "dist/comm.h"
#include "dist/launch.h"
#include "model/dtype.h"
#include "server/config.h"
#include "server/serve.h"

namespace lmstream::cli {
namespace {

struct ServeArgs {
  std::string model, revision, gguf_file, host, api, properties, quantize, kv_type, kv_cache_memory,
      chat_template, log_level, log_format, prefix_caching;
  std::string endpoint_name, aws_access_key_id, aws_secret_access_key, aws_credentials_file, region,
      api_key;
  bool require_eula = false;
  int port = 0, threads = 0, max_concurrent = 0, max_input = 0, max_total = 0, max_batch_total = 0,
      max_batch_prefill = 0, max_stop = 0, max_top_n = 0, num_shard = 0, max_rolling = 0,
      kv_blocks = 0;
  double grace = 0;
  int tensor_parallel = 0;
  std::string mpi_hostfile;
};

template <class T>
std::optional<T> given(CLI::App& app, const char* name, const T& v) {
  return app.count(name) ? std::optional<T>(v) : std::nullopt;
}

void run(CLI::App& sub, const ServeArgs& a) {
  // Tensor parallelism: not started by mpirun, run this same command line under it.
  if (a.tensor_parallel > 1 && !dist::launched_by_mpi()) {
    const int rc = dist::relaunch_under_mpirun({a.tensor_parallel, a.mpi_hostfile});
    if (rc != 0) throw CLI::RuntimeError(rc);
    return;
  }
  if (a.tensor_parallel > 0 && dist::launched_by_mpi() &&
      dist::Comm::world().size() != a.tensor_parallel)
    throw std::invalid_argument("--tensor-parallel " + std::to_string(a.tensor_parallel) +
                                " but mpirun started " +
                                std::to_string(dist::Comm::world().size()) + " ranks");
  server::ServeFlags f;
  f.model = given(sub, "--model", a.model);
  f.revision = given(sub, "--revision", a.revision);
  f.gguf_file = given(sub, "--gguf-file", a.gguf_file);
  f.host = given(sub, "--host", a.host);
  f.api = given(sub, "--api", a.api);
  f.log_level = given(sub, "--log-level", a.log_level);
  f.log_format = given(sub, "--log-format", a.log_format);
  f.properties = given(sub, "--properties", a.properties);
  f.quantize = given(sub, "--quantize", a.quantize);
  f.kv_type = given(sub, "--kv-type", a.kv_type);
  f.kv_cache_memory = given(sub, "--kv-cache-memory", a.kv_cache_memory);
  f.prefix_caching = given(sub, "--prefix-caching", a.prefix_caching);
  f.port = given(sub, "--port", a.port);
  f.threads = given(sub, "--threads", a.threads);
  f.max_concurrent_requests = given(sub, "--max-concurrent-requests", a.max_concurrent);
  f.max_input_length = given(sub, "--max-input-length", a.max_input);
  f.max_total_tokens = given(sub, "--max-total-tokens", a.max_total);
  f.max_batch_total_tokens = given(sub, "--max-batch-total-tokens", a.max_batch_total);
  f.max_batch_prefill_tokens = given(sub, "--max-batch-prefill-tokens", a.max_batch_prefill);
  f.max_stop_sequences = given(sub, "--max-stop-sequences", a.max_stop);
  f.max_top_n_tokens = given(sub, "--max-top-n-tokens", a.max_top_n);
  f.num_shard = given(sub, "--num-shard", a.num_shard);
  f.max_rolling_batch_size = given(sub, "--max-rolling-batch-size", a.max_rolling);
  f.kv_blocks = given(sub, "--kv-blocks", a.kv_blocks);
  f.shutdown_grace = given(sub, "--shutdown-grace", a.grace);
  f.endpoint_name = given(sub, "--endpoint-name", a.endpoint_name);
  f.aws_access_key_id = given(sub, "--aws-access-key-id", a.aws_access_key_id);
  f.aws_secret_access_key = given(sub, "--aws-secret-access-key", a.aws_secret_access_key);
  f.aws_credentials_file = given(sub, "--aws-credentials-file", a.aws_credentials_file);
  f.region = given(sub, "--region", a.region);
  f.api_key = given(sub, "--api-key", a.api_key);
  if (sub.count("--require-eula") || sub.count("--no-require-eula"))
    f.require_eula = a.require_eula;

  std::vector<server::ConfigMessage> msgs;
  server::ServeConfig cfg = [&] {
    try {
      return server::resolve_config(f, server::process_env(), &msgs);
    } catch (const std::invalid_argument& e) {  // no model named anywhere: the embedded default
      if (std::string_view(e.what()).rfind("no model:", 0) != 0) throw;
      msgs.clear();
      f.model = demo_model_path();
      auto c = server::resolve_config(f, server::process_env(), &msgs);
      msgs.insert(msgs.begin(), {server::ConfigMessage::kInfo, demo_model_note(*f.model)});
      return c;
    }
  }();
  server::BackendOptions b;
  b.model_path = cfg.model;
  if (!cfg.quantize.empty()) b.load.quantize = dtype_from_name(cfg.quantize);
  b.threads = cfg.threads;
  b.chat_template = a.chat_template;
  b.kv.blocks = cfg.kv_blocks;
  b.kv.tokens = cfg.max_batch_total_tokens;
  b.kv.memory_bytes = cfg.kv_cache_memory;
  b.kv_type = cfg.kv_type == "f32" ? KvType::F32 : KvType::F16;
  b.sched.max_rolling_batch_size = cfg.max_rolling_batch_size;
  b.sched.prefix_caching = cfg.prefix_caching;
  if (cfg.max_batch_prefill_tokens > 0)
    b.sched.max_batch_prefill_tokens = cfg.max_batch_prefill_tokens;
  // Test-only knobs, loud when set: a slow load (/ping's 503 window), engine pacing (streams held
  // open for a known time) and an engine failure after N tokens (mid-stream error paths).
  auto test_knob = [&msgs](const char* name, int& field, const char* effect) {
    if (const char* v = std::getenv(name)) {
      field = std::max(0, std::atoi(v));
      msgs.push_back({server::ConfigMessage::kWarn,
                      std::string(name) + "=" + std::to_string(field) + ": " + effect});
    }
  };
  test_knob("LMSTREAM_TEST_LOAD_DELAY_MS", b.test_load_delay_ms, "loading is delayed");
  if (const char* v = std::getenv("LMSTREAM_TEST_LOAD_GATE"); v && *v) {
    b.test_load_gate = v;
    msgs.push_back({server::ConfigMessage::kWarn, std::string("LMSTREAM_TEST_LOAD_GATE=") + v +
                                                      ": loading waits until that file exists"});
  }
  test_knob("LMSTREAM_TEST_STEP_DELAY_MS", b.sched.step_delay_ms,
            "the engine sleeps after every step");
  test_knob("LMSTREAM_TEST_FAIL_AFTER_TOKENS", b.sched.fail_after_tokens,
            "every request fails after that many tokens");
  int rc = server::serve(cfg, b, msgs);
  if (rc != 0) throw CLI::RuntimeError(rc);
}

const Register reg(
    "serve", "Serve a model over HTTP: SageMaker /ping + /invocations, TGI, LMI and OpenAI routes",
    [](CLI::App& sub) {
      // Settings here are "given or not" (the server, env or files decide the rest), so each
      // description states its default instead of the variable's placeholder value.
      sub.option_defaults()->always_capture_default(false);
      auto a = std::make_shared<ServeArgs>();
      sub.add_option(
          "--model,-m", a->model,
          "GGUF file, model directory, file:// URL, s3:// URL, model.tar.gz or Hugging Face Hub "
          "id org/name[:QUANT] (env HF_MODEL_ID, option.model_id)");
      sub.add_option("--revision", a->revision,
                     "Hub branch, tag or commit (env HF_MODEL_REVISION, option.revision; main)");
      sub.add_option("--gguf-file", a->gguf_file,
                     "the GGUF file of a Hub repository to serve (default: the one named by "
                     "org/name:QUANT, or the repository's only GGUF)");
      sub.add_option(
          "--host", a->host,
          "address or name to listen on (env LMSTREAM_HOST, HOSTNAME as TGI; default 0.0.0.0)");
      sub.add_option("--port", a->port, "port (env SAGEMAKER_BIND_TO_PORT, PORT; default 8080)");
      sub.add_option("--api", a->api,
                     "wire format of /invocations: tgi or lmi (default lmi with a "
                     "serving.properties, else tgi)")
          ->check(CLI::IsMember({"tgi", "lmi"}));
      sub.add_option("--properties", a->properties,
                     "serving.properties file (default: the one in the model directory)");
      sub.add_option("--threads", a->threads, "engine threads (default 0 = all cores)");
      sub.add_option("--max-concurrent-requests", a->max_concurrent,
                     "requests in flight before 429 (env MAX_CONCURRENT_REQUESTS; 128)");
      sub.add_option("--max-input-length", a->max_input,
                     "max prompt tokens (env MAX_INPUT_LENGTH / MAX_INPUT_TOKENS; default "
                     "min(1024, max total tokens - 1))");
      sub.add_option("--max-total-tokens", a->max_total,
                     "max prompt + new tokens per request (env MAX_TOTAL_TOKENS; default "
                     "min(2048, the model's context))");
      sub.add_option("--max-batch-total-tokens", a->max_batch_total,
                     "KV cache size in tokens (env MAX_BATCH_TOTAL_TOKENS; default: what "
                     "--kv-cache-memory holds, else the model's context)");
      sub.add_option(
          "--max-batch-prefill-tokens", a->max_batch_prefill,
          "prefill tokens per engine step (env MAX_BATCH_PREFILL_TOKENS, "
          "option.max_rolling_batch_prefill_tokens; default max(max input length, 512))");
      sub.add_option("--max-stop-sequences", a->max_stop, "env MAX_STOP_SEQUENCES (4)");
      sub.add_option("--max-top-n-tokens", a->max_top_n, "env MAX_TOP_N_TOKENS (5)");
      sub.add_option("--num-shard", a->num_shard,
                     "env NUM_SHARD / SM_NUM_GPUS; only 1 is supported (default 1)");
      sub.add_option("--tensor-parallel,--tp", a->tensor_parallel,
                     "shard the model over this many ranks (tensor parallelism over MPI); "
                     "without mpirun around it, lmstream runs itself under mpirun -np N")
          ->check(CLI::Range(1, 256));
      sub.add_option("--mpi-hostfile", a->mpi_hostfile,
                     "with --tensor-parallel: mpirun host file for ranks on several machines "
                     "(each needs the binary and the model at the same paths)")
          ->check(CLI::ExistingFile);
      sub.add_option("--max-rolling-batch-size", a->max_rolling,
                     "sequences in the running batch (option.max_rolling_batch_size; 64)");
      sub.add_option(
          "--kv-blocks", a->kv_blocks,
          "KV pool size in 16-token blocks (overrides --max-batch-total-tokens; default: "
          "from it)");
      sub.add_option("--kv-cache-memory", a->kv_cache_memory,
                     "KV pool memory budget (e.g. 512MiB) when --max-batch-total-tokens is not "
                     "given (env LMSTREAM_KV_CACHE_MEMORY; default: unset)");
      sub.add_option("--shutdown-grace", a->grace,
                     "seconds in-flight requests may take after SIGTERM/SIGINT (30)");
      sub.add_option("--quantize", a->quantize,
                     "convert F32/F16/BF16 weights at load (q8_0, q4_0; env LMSTREAM_QUANTIZE; "
                     "default: none)");
      sub.add_option("--log-level", a->log_level,
                     "trace, debug, info, warn, error or off (env LMSTREAM_LOG_LEVEL, "
                     "SPDLOG_LEVEL; info)");
      sub.add_option("--log-format", a->log_format,
                     "text or json: one JSON object per line (env LMSTREAM_LOG_FORMAT, TGI's "
                     "JSON_OUTPUT=true; text)");
      sub.add_option("--chat-template", a->chat_template,
                     "a Jinja chat template file for the chat routes, instead of the model's "
                     "chat_template (default: the model's)")
          ->check(CLI::ExistingFile);
      sub.add_option("--kv-type", a->kv_type, "KV cache element type (env LMSTREAM_KV_TYPE; f16)")
          ->check(CLI::IsMember({"f16", "f32"}));
      sub.add_option("--prefix-caching", a->prefix_caching,
                     "automatic prefix caching of KV blocks: on | off (env PREFIX_CACHING, "
                     "option.enable_prefix_caching; on)");
      sub.add_option("--endpoint-name", a->endpoint_name,
                     "SageMaker endpoint name of /endpoints/{name}/... (env "
                     "LMSTREAM_ENDPOINT_NAME; default: from the model's name)");
      sub.add_flag("--require-eula,!--no-require-eula", a->require_eula,
                   "require CustomAttributes accept_eula=true on /invocations and /endpoints/* "
                   "(env LMSTREAM_REQUIRE_EULA; "
                   "default on for Llama 2 chat models)");
      sub.add_option("--aws-access-key-id", a->aws_access_key_id,
                     "require SigV4 (service sagemaker) on /endpoints/* with this key (env "
                     "LMSTREAM_AWS_ACCESS_KEY_ID; default: none, SigV4 not checked)");
      sub.add_option("--aws-secret-access-key", a->aws_secret_access_key,
                     "its secret (env LMSTREAM_AWS_SECRET_ACCESS_KEY; default: none)");
      sub.add_option(
          "--aws-credentials-file", a->aws_credentials_file,
          "AWS credentials file (INI, ~/.aws/credentials format); every profile is an accepted key "
          "(env LMSTREAM_AWS_CREDENTIALS_FILE; default: none)");
      sub.add_option("--region", a->region,
                     "the only region accepted in SigV4 scopes (env LMSTREAM_REGION; default any)");
      sub.add_option("--api-key", a->api_key,
                     "require 'Authorization: Bearer KEY' on every route but /ping, /health (env "
                     "LMSTREAM_API_KEY; default: none, no key asked)");
      sub.callback([&sub, a] { run(sub, *a); });
    });

}  // namespace
}  // namespace lmstream::cli

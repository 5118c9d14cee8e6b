// Configuration resolution for `lmstream serve` (see config.h).
#include "server/config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "base/strings.h"
#include "server/properties.h"
#include "server/sagemaker.h"

namespace lmstream::server {
namespace {

int parse_int(const std::string& what, const std::string& v, int lo, int hi) {
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || errno != 0 || end == v.c_str() || *end != '\0' || x < lo || x > hi)
    throw std::invalid_argument(what + ": '" + v + "' is not an integer in [" + std::to_string(lo) +
                                ", " + std::to_string(hi) + "]");
  return int(x);
}

double parse_double(const std::string& what, const std::string& v, double lo, double hi) {
  errno = 0;
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || errno != 0 || end == v.c_str() || *end != '\0' || !(x >= lo && x <= hi))
    throw std::invalid_argument(what + ": '" + v + "' is not a number in [" + std::to_string(lo) +
                                ", " + std::to_string(hi) + "]");
  return x;
}

bool parse_bool(const std::string& what, const std::string& v) {
  const std::string l = base::to_lower(v);
  if (l == "true" || l == "1") return true;
  if (l == "false" || l == "0") return false;
  throw std::invalid_argument(what + ": '" + v + "' is not true or false");
}

// serving.properties keys this build knows. option.* keys also come from OPTION_<KEY>.
const char* const kKnownKeys[] = {
    "engine",
    "option.entryPoint",
    "option.model_id",
    "option.revision",
    "option.tensor_parallel_degree",
    "option.rolling_batch",
    "option.max_rolling_batch_size",
    "option.max_rolling_batch_prefill_tokens",
    "option.model_loading_timeout",
    "option.paged_attention",
    "option.low_cpu_mem_usage",
    "option.dtype",
    "option.output_formatter",
    "option.quantize",
    "option.max_model_len",
    "option.trust_remote_code",
    "option.enable_streaming",
    "option.enable_prefix_caching",
};

std::string option_env_name(
    const std::string& key) {  // option.max_rolling_batch_size -> OPTION_MAX_...
  std::string s = "OPTION_" + key.substr(std::string("option.").size());
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

// The first value found, in precedence order, with a label for messages.
struct Src {
  std::optional<std::string> value;
  std::string label;
};

// SageMaker endpoint name, licence gate and authentication settings.
template <class Pick>
void resolve_sagemaker(ServeConfig& c, const ServeFlags& flags, const Pick& pick) {
  if (Src s = pick(flags.endpoint_name, "--endpoint-name", {"LMSTREAM_ENDPOINT_NAME"}, "");
      s.value) {
    if (!sagemaker::valid_endpoint_name(*s.value))
      throw std::invalid_argument(
          s.label + ": '" + *s.value +
          "' is not a SageMaker endpoint name (1-63 characters, letters, digits and "
          "hyphens, starting and ending with a letter or digit)");
    c.endpoint_name = *s.value;
  }
  std::optional<std::string> eula_flag;
  if (flags.require_eula) eula_flag = *flags.require_eula ? "true" : "false";
  if (Src s = pick(eula_flag, "--require-eula", {"LMSTREAM_REQUIRE_EULA"}, ""); s.value)
    c.require_eula = parse_bool(s.label, *s.value);

  Src id = pick(flags.aws_access_key_id, "--aws-access-key-id", {"LMSTREAM_AWS_ACCESS_KEY_ID"}, "");
  Src secret = pick(flags.aws_secret_access_key, "--aws-secret-access-key",
                    {"LMSTREAM_AWS_SECRET_ACCESS_KEY"}, "");
  if (id.value.has_value() != secret.value.has_value())
    throw std::invalid_argument(
        std::string(id.value ? "an AWS access key id" : "an AWS secret access key") +
        " was given without its other half: pass both --aws-access-key-id and "
        "--aws-secret-access-key (env LMSTREAM_AWS_ACCESS_KEY_ID / "
        "LMSTREAM_AWS_SECRET_ACCESS_KEY)");
  if (id.value) {
    if (id.value->empty() || secret.value->empty())
      throw std::invalid_argument(id.label + " / " + secret.label + ": must not be empty");
    for (char ch : *id.value)
      if (!std::isalnum(static_cast<unsigned char>(ch)))
        throw std::invalid_argument(id.label + ": an access key id has only letters and digits");
    c.aws_access_key_id = *id.value;
    c.aws_secret_access_key = *secret.value;
  }
  if (Src s = pick(flags.aws_credentials_file, "--aws-credentials-file",
                   {"LMSTREAM_AWS_CREDENTIALS_FILE"}, "");
      s.value) {
    if (s.value->empty()) throw std::invalid_argument(s.label + ": empty path");
    c.aws_credentials_file = *s.value;
  }
  if (Src s = pick(flags.region, "--region", {"LMSTREAM_REGION"}, ""); s.value) {
    bool ok =
        !s.value->empty() && std::all_of(s.value->begin(), s.value->end(), [](unsigned char ch) {
          return std::islower(ch) || std::isdigit(ch) || ch == '-';
        });
    if (!ok)
      throw std::invalid_argument(s.label + ": '" + *s.value +
                                  "' is not an AWS region name (e.g. us-east-1)");
    c.region = *s.value;
  }
  if (Src s = pick(flags.api_key, "--api-key", {"LMSTREAM_API_KEY"}, ""); s.value) {
    if (s.value->empty()) throw std::invalid_argument(s.label + ": the API key must not be empty");
    c.api_key = *s.value;
  }
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

ServeConfig resolve_config(const ServeFlags& flags, const EnvLookup& env,
                           std::vector<ConfigMessage>* messages) {
  ServeConfig c;
  auto info = [&](std::string t) {
    if (messages) messages->push_back({ConfigMessage::kInfo, std::move(t)});
  };
  auto warn = [&](std::string t) {
    if (messages) messages->push_back({ConfigMessage::kWarn, std::move(t)});
  };

  // --- serving.properties: --properties, OPTION-less discovery inside the model directory.
  std::optional<std::string> model_flag_or_env = flags.model ? flags.model : env("HF_MODEL_ID");
  Properties props;
  if (flags.properties) {
    c.properties_path = *flags.properties;
  } else if (model_flag_or_env && std::filesystem::is_directory(*model_flag_or_env) &&
             std::filesystem::exists(std::filesystem::path(*model_flag_or_env) /
                                     "serving.properties")) {
    c.properties_path = (std::filesystem::path(*model_flag_or_env) / "serving.properties").string();
  }
  if (!c.properties_path.empty()) {
    std::vector<std::string> bad;
    props = load_properties(c.properties_path, &bad);
    for (auto& b : bad) warn("serving.properties " + b + ": not a key=value line, ignored");
    for (auto& [k, v] : props.entries) {
      bool known = std::find_if(std::begin(kKnownKeys), std::end(kKnownKeys),
                                [&](const char* x) { return k == x; }) != std::end(kKnownKeys);
      if (!known) warn("serving.properties: unknown key '" + k + "' ignored");
    }
  }
  // A property: the file first, then DJL's OPTION_* environment form (putIfAbsent semantics).
  auto prop = [&](const std::string& key) -> Src {
    if (const std::string* v = props.find(key)) return {*v, "serving.properties " + key};
    if (key.rfind("option.", 0) == 0) {
      std::string e = option_env_name(key);
      if (auto v = env(e)) return {*v, e};
    }
    return {std::nullopt, key};
  };
  // flag > env names (in order) > property.
  auto pick = [&](std::optional<std::string> flag, const std::string& flag_name,
                  std::initializer_list<const char*> envs, const std::string& key) -> Src {
    if (flag) return {flag, flag_name};
    for (const char* e : envs)
      if (auto v = env(e)) return {*v, e};
    if (!key.empty()) return prop(key);
    return {std::nullopt, flag_name};
  };
  auto opt_s = [](const std::optional<int>& x) -> std::optional<std::string> {
    return x ? std::optional<std::string>(std::to_string(*x)) : std::nullopt;
  };
  auto int_setting = [&](int& out, const std::optional<int>& flag, const std::string& flag_name,
                         std::initializer_list<const char*> envs, const std::string& key, int lo,
                         int hi) {
    Src s = pick(opt_s(flag), flag_name, envs, key);
    if (s.value) out = parse_int(s.label, *s.value, lo, hi);
  };

  // --- model
  Src model = pick(flags.model, "--model", {"HF_MODEL_ID"}, "option.model_id");
  if (!model.value || model.value->empty())
    throw std::invalid_argument(
        "no model: pass --model PATH or set HF_MODEL_ID (or option.model_id in "
        "serving.properties)");
  if (model.value->find("{{") != std::string::npos)
    throw std::invalid_argument(model.label + " = '" + *model.value +
                                "': a template placeholder, not a model; pass --model PATH, a "
                                "Hugging Face Hub id or an s3:// URL");
  c.model = *model.value;  // resolved (downloaded) by serve() while /ping answers 503
  if (Src s =
          pick(flags.revision, "--revision", {"HF_MODEL_REVISION", "REVISION"}, "option.revision");
      s.value)
    c.model_revision = *s.value;
  if (flags.gguf_file) c.gguf_file = *flags.gguf_file;

  // --- network
  {
    Src s = pick(opt_s(flags.port), "--port", {"SAGEMAKER_BIND_TO_PORT", "PORT"}, "");
    if (s.value) c.port = parse_int(s.label, *s.value, 0, 65535);
    // TGI's launcher binds to HOSTNAME (default 0.0.0.0), as this does; --host wins over it.
    Src h = pick(flags.host, "--host", {"LMSTREAM_HOST", "HOSTNAME"}, "");
    if (h.value) c.host = *h.value;
  }
  int_setting(c.threads, flags.threads, "--threads", {"LMSTREAM_THREADS"}, "", 0, 1024);
  int_setting(c.kv_blocks, flags.kv_blocks, "--kv-blocks", {"LMSTREAM_KV_BLOCKS"}, "", 0, 1 << 24);
  // TGI's QUANTIZE / HF_MODEL_QUANTIZE and LMI's option.quantize name GPU schemes (bitsandbytes,
  // gptq, awq, ...); this build converts to q8_0 or q4_0 at load and refuses the rest by name.
  if (Src s = pick(flags.quantize, "--quantize",
                   {"LMSTREAM_QUANTIZE", "QUANTIZE", "HF_MODEL_QUANTIZE"}, "option.quantize");
      s.value) {
    const std::string v = base::to_lower(*s.value);
    if (v != "q8_0" && v != "q4_0")
      throw std::invalid_argument(
          s.label + ": '" + *s.value +
          "' is not a type weights can be converted to at load (q8_0, q4_0); GPU quantization "
          "schemes (bitsandbytes, gptq, awq, eetq, fp8, ...) are not in this CPU build");
    c.quantize = v;
  }
  if (auto v = env("DTYPE"))
    throw std::invalid_argument(
        "DTYPE=" + *v +
        ": cannot be honoured; weights keep the model file's types (F32, F16, BF16, Q8_0, Q4_0). "
        "Unset DTYPE, or convert with --quantize q8_0|q4_0");
  for (const char* name : {"MAX_WAITING_TOKENS", "WAITING_SERVED_RATIO"})
    if (auto v = env(name))
      throw std::invalid_argument(
          std::string(name) + "=" + *v +
          ": cannot be honoured; this scheduler admits waiting requests at every step (continuous "
          "batching bounded by MAX_BATCH_SIZE and MAX_BATCH_PREFILL_TOKENS), it has no "
          "waiting-token rule. Unset it");
  if (auto v = env("PAYLOAD_LIMIT"))
    c.body_limit = size_t(parse_int("PAYLOAD_LIMIT", *v, 1, 1 << 30));
  if (Src s = pick(flags.kv_type, "--kv-type", {"LMSTREAM_KV_TYPE"}, ""); s.value) {
    const std::string v = base::to_lower(*s.value);
    if (v != "f16" && v != "f32")
      throw std::invalid_argument(s.label + ": '" + *s.value + "' is not f16 or f32");
    c.kv_type = v;
  }
  if (Src s = pick(flags.kv_cache_memory, "--kv-cache-memory", {"LMSTREAM_KV_CACHE_MEMORY"}, "");
      s.value) {
    try {
      c.kv_cache_memory = base::parse_byte_size(*s.value);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(s.label + ": " + e.what());
    }
  }

  // Automatic prefix caching: --prefix-caching, TGI's PREFIX_CACHING, LMI's
  // option.enable_prefix_caching (also OPTION_ENABLE_PREFIX_CACHING).
  if (Src s = pick(flags.prefix_caching, "--prefix-caching", {"PREFIX_CACHING"},
                   "option.enable_prefix_caching");
      s.value) {
    const std::string v = base::to_lower(*s.value);
    if (v == "on" || v == "true" || v == "1")
      c.prefix_caching = true;
    else if (v == "off" || v == "false" || v == "0")
      c.prefix_caching = false;
    else
      throw std::invalid_argument(s.label + ": '" + *s.value +
                                  "' is not on or off (true/false, 1/0)");
  }

  // --- TGI router limits
  int_setting(c.max_concurrent_requests, flags.max_concurrent_requests, "--max-concurrent-requests",
              {"MAX_CONCURRENT_REQUESTS"}, "", 1, 1 << 20);
  int_setting(c.max_stop_sequences, flags.max_stop_sequences, "--max-stop-sequences",
              {"MAX_STOP_SEQUENCES"}, "", 0, 1024);
  int_setting(c.max_best_of, std::nullopt, "MAX_BEST_OF", {"MAX_BEST_OF"}, "", 1, 1024);
  // TGI's limit on the inputs of one request: here the prompts of a /v1/completions list and the
  // dialogs of a JumpStart batch.
  int_setting(c.max_client_batch_size, std::nullopt, "MAX_CLIENT_BATCH_SIZE",
              {"MAX_CLIENT_BATCH_SIZE"}, "", 1, 1 << 16);
  if (auto v = env("VALIDATION_WORKERS"))
    throw std::invalid_argument(
        "VALIDATION_WORKERS=" + *v +
        ": cannot be honoured; requests are validated and tokenized on the connection's own "
        "thread, there is no pool of validation workers to size. Unset it");
  if (auto v = env("TRUST_REMOTE_CODE"); v && parse_bool("TRUST_REMOTE_CODE", *v))
    info("TRUST_REMOTE_CODE=" + *v +
         ": accepted; no model code is loaded, the built-in Llama engine runs the model");
  int_setting(c.max_top_n_tokens, flags.max_top_n_tokens, "--max-top-n-tokens",
              {"MAX_TOP_N_TOKENS"}, "", 0, 1024);
  int_setting(c.max_input_length, flags.max_input_length, "--max-input-length",
              {"MAX_INPUT_LENGTH", "MAX_INPUT_TOKENS"}, "", 1, 1 << 24);
  int_setting(c.max_total_tokens, flags.max_total_tokens, "--max-total-tokens",
              {"MAX_TOTAL_TOKENS"}, "option.max_model_len", 2, 1 << 24);
  int_setting(c.max_batch_total_tokens, flags.max_batch_total_tokens, "--max-batch-total-tokens",
              {"MAX_BATCH_TOTAL_TOKENS"}, "", 1, 1 << 28);
  int_setting(c.max_batch_prefill_tokens, flags.max_batch_prefill_tokens,
              "--max-batch-prefill-tokens", {"MAX_BATCH_PREFILL_TOKENS"},
              "option.max_rolling_batch_prefill_tokens", 1, 1 << 24);
  {
    int shards = 1;
    int_setting(shards, flags.num_shard, "--num-shard", {"NUM_SHARD", "SM_NUM_GPUS"}, "", 1, 4096);
    if (shards > 1)
      throw std::invalid_argument(
          "NUM_SHARD/SM_NUM_GPUS = " + std::to_string(shards) +
          ": more than one shard needs tensor parallelism, which this build "
          "does not have; set it to 1 or leave it unset");
    c.num_shard = shards;
  }

  if (Src s = pick(flags.log_level, "--log-level", {"LMSTREAM_LOG_LEVEL"}, ""); s.value) {
    const std::string v = base::to_lower(*s.value);
    if (v != "trace" && v != "debug" && v != "info" && v != "warn" && v != "error" && v != "off")
      throw std::invalid_argument(s.label + ": '" + *s.value +
                                  "' is not trace, debug, info, warn, error or off");
    c.log_level = v;
  }
  if (Src s = pick(flags.log_format, "--log-format", {"LMSTREAM_LOG_FORMAT"}, ""); s.value) {
    const std::string v = base::to_lower(*s.value);
    if (v != "text" && v != "json")
      throw std::invalid_argument(s.label + ": '" + *s.value + "' is not text or json");
    c.log_json = v == "json";
  } else if (auto v = env("JSON_OUTPUT")) {
    c.log_json = parse_bool("JSON_OUTPUT", *v);
  }
  if (auto v = env("MESSAGES_API_ENABLED"))
    c.messages_api_enabled = parse_bool("MESSAGES_API_ENABLED", *v);

  // --- LMI options
  int_setting(c.max_rolling_batch_size, flags.max_rolling_batch_size, "--max-rolling-batch-size",
              {"MAX_BATCH_SIZE"}, "option.max_rolling_batch_size", 1, 1 << 16);
  if (Src s = prop("option.trust_remote_code"); s.value) {
    if (parse_bool(s.label, *s.value))
      info(s.label +
           "=true: accepted; no model code is loaded, the built-in Llama engine runs "
           "the model");
  }
  if (Src s = prop("option.enable_streaming"); s.value) {
    std::string v = base::to_lower(*s.value);
    if (v == "false")
      warn(s.label +
           "=false: cannot be honoured; rolling-batch answers are always streamed "
           "(chunked)");
    else if (v == "true" || v == "huggingface")
      info(s.label + "=" + *s.value + ": accepted; rolling-batch answers are streamed (chunked)");
    else
      throw std::invalid_argument(s.label + ": '" + *s.value +
                                  "' is not true, false or huggingface");
  }
  if (Src s = prop("engine"); s.value) {
    std::string e = base::to_lower(*s.value);
    if (e == "mpi")
      info(
          "engine=MPI: accepted; this build serves from one CPU process (no MPI ranks), the "
          "built-in engine runs the model");
    else if (e == "python" || e == "deepspeed")
      info("engine=" + *s.value +
           ": accepted; the built-in engine runs the model (no Python worker)");
    else
      warn("engine=" + *s.value + ": unknown engine, ignored; the built-in engine runs the model");
  }
  if (Src s = prop("option.entryPoint"); s.value)
    info(s.label + "=" + *s.value +
         ": cannot be honoured; no Python handler is loaded, the built-in engine serves the model");
  if (Src s = prop("option.tensor_parallel_degree"); s.value) {
    std::string v = base::to_lower(*s.value);
    if (v != "1")
      warn(s.label + "=" + *s.value +
           ": cannot be honoured (no tensor parallelism in this build); serving with 1 shard on "
           "CPU");
  }
  if (Src s = prop("option.rolling_batch"); s.value) {
    std::string v = base::to_lower(*s.value);
    if (v == "disable" || v == "false")
      warn(s.label + "=" + *s.value +
           ": cannot be honoured; requests always go through the rolling-batch scheduler");
    else
      info(
          s.label + "=" + *s.value +
          ": served by the built-in rolling-batch scheduler (paged KV cache, continuous batching)");
  }
  if (Src s = prop("option.model_loading_timeout"); s.value)
    c.model_loading_timeout_s = parse_double(s.label, *s.value, 0, 1e7);
  else if (auto v = env("MODEL_LOADING_TIMEOUT"))
    c.model_loading_timeout_s = parse_double("MODEL_LOADING_TIMEOUT", *v, 0, 1e7);
  if (Src s = prop("option.paged_attention"); s.value) {
    if (!parse_bool(s.label, *s.value))
      warn(s.label + "=false: cannot be honoured; the KV cache is always paged");
  }
  if (Src s = prop("option.low_cpu_mem_usage"); s.value) {
    parse_bool(s.label, *s.value);
    info(s.label + "=" + *s.value +
         ": accepted; weights are memory-mapped, host memory use is already minimal");
  }
  if (Src s = prop("option.dtype"); s.value)
    warn(s.label + "=" + *s.value +
         ": cannot be honoured; weights keep the model file's type (use `lmstream "
         "convert`/--quantize to change it)");
  if (Src s = prop("option.output_formatter"); s.value) {
    std::string v = base::to_lower(*s.value);
    if (v == "json")
      c.output_formatter = OutputFormatter::kJson;
    else if (v == "jsonlines")
      c.output_formatter = OutputFormatter::kJsonLines;
    else
      warn(s.label + "=" + *s.value +
           ": cannot be honoured (json and jsonlines are supported); using json");
  }
  if (auto v = env("SERVING_ROLLING_BATCH_BUFFER"))
    c.rolling_batch_buffer = parse_int("SERVING_ROLLING_BATCH_BUFFER", *v, 1, 1 << 20);
  if (auto v = env("SERVING_CHUNKED_READ_TIMEOUT"))
    c.write_timeout_s = parse_double("SERVING_CHUNKED_READ_TIMEOUT", *v, 0.1, 1e6);

  // --- API mode of /invocations
  {
    Src s = pick(flags.api, "--api", {"LMSTREAM_API"}, "");
    if (s.value) {
      std::string v = base::to_lower(*s.value);
      if (v == "tgi")
        c.api = ApiMode::kTgi;
      else if (v == "lmi")
        c.api = ApiMode::kLmi;
      else
        throw std::invalid_argument(s.label + ": '" + *s.value + "' is not tgi or lmi");
    } else {
      c.api = c.properties_path.empty() ? ApiMode::kTgi : ApiMode::kLmi;
    }
  }
  if (flags.shutdown_grace) {
    if (!(*flags.shutdown_grace >= 0 && *flags.shutdown_grace <= 86400))
      throw std::invalid_argument("--shutdown-grace must be within [0, 86400] seconds");
    c.shutdown_grace_s = *flags.shutdown_grace;
  }
  resolve_sagemaker(c, flags, pick);
  return c;
}

void finalize_sagemaker(ServeConfig& c, const std::string& model_name) {
  if (c.endpoint_name.empty()) c.endpoint_name = sagemaker::endpoint_name_from(model_name);
  if (!c.require_eula)
    c.require_eula = sagemaker::is_llama2_chat(model_name) || sagemaker::is_llama2_chat(c.model);
}

void finalize_limits(ServeConfig& c, int max_position) {
  int ctx = std::max(max_position, 2);
  if (c.max_total_tokens == 0) c.max_total_tokens = std::min(2048, ctx);
  if (c.max_input_length == 0) c.max_input_length = std::min(1024, c.max_total_tokens - 1);
  if (c.max_batch_prefill_tokens == 0)
    c.max_batch_prefill_tokens = std::max(c.max_input_length, 512);
  if (c.max_input_length >= c.max_total_tokens)
    throw std::invalid_argument("MAX_INPUT_LENGTH (" + std::to_string(c.max_input_length) +
                                ") must be < MAX_TOTAL_TOKENS (" +
                                std::to_string(c.max_total_tokens) + ")");
  if (c.max_total_tokens > ctx)
    throw std::invalid_argument("MAX_TOTAL_TOKENS (" + std::to_string(c.max_total_tokens) +
                                ") exceeds the model's context length (" + std::to_string(ctx) +
                                ")");
  if (c.max_batch_prefill_tokens < c.max_input_length)
    throw std::invalid_argument(
        "MAX_BATCH_PREFILL_TOKENS (" + std::to_string(c.max_batch_prefill_tokens) +
        ") must be >= MAX_INPUT_LENGTH (" + std::to_string(c.max_input_length) + ")");
  if (c.max_batch_total_tokens != 0) {
    if (c.max_batch_prefill_tokens > c.max_batch_total_tokens)
      throw std::invalid_argument("MAX_BATCH_PREFILL_TOKENS must be <= MAX_BATCH_TOTAL_TOKENS");
    if (c.max_total_tokens > c.max_batch_total_tokens)
      throw std::invalid_argument("MAX_TOTAL_TOKENS must be <= MAX_BATCH_TOTAL_TOKENS");
  }
}

}  // namespace lmstream::server

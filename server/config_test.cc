// serving.properties parsing and configuration precedence (flag > env > serving.properties; DJL's
// OPTION_* env only when the file lacks the key).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "server/config.h"
#include "server/properties.h"

namespace lmstream::server {
namespace {

const char* kSeed =
    "engine = MPI\n"
    "option.entryPoint=djl_python.huggingface\n"
    "option.tensor_parallel_degree=4\n"
    "option.low_cpu_mem_usage=TRUE\n"
    "option.rolling_batch=lmi-dist\n"
    "option.max_rolling_batch_size=64\n"
    "option.model_loading_timeout=900\n"
    "option.model_id={{model_id}}\n"
    "option.paged_attention=true\n";

EnvLookup env_of(std::map<std::string, std::string> m) {
  return [m](const std::string& k) -> std::optional<std::string> {
    auto it = m.find(k);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

struct TempDir {
  std::filesystem::path p;
  TempDir() {
    p = std::filesystem::temp_directory_path() /
        ("lms-config-test-" + std::to_string(::getpid()) + "-" +
         std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::create_directories(p);
  }
  ~TempDir() { std::filesystem::remove_all(p); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(p / name) << text;
    return (p / name).string();
  }
};

TEST(Properties, ParsesSeedFileWithSpacesAndComments) {
  std::vector<std::string> bad;
  Properties p = parse_properties(
      std::string("# comment\n! also\n\n") + kSeed + "option.dtype: fp16\nnot a pair\r\n", &bad);
  ASSERT_NE(p.find("engine"), nullptr);
  EXPECT_EQ(*p.find("engine"), "MPI");
  EXPECT_EQ(*p.find("option.max_rolling_batch_size"), "64");
  EXPECT_EQ(*p.find("option.dtype"), "fp16");
  EXPECT_EQ(*p.find("option.model_id"), "{{model_id}}");
  EXPECT_EQ(p.find("option.nope"), nullptr);
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_NE(bad[0].find("not a pair"), std::string::npos);
}

TEST(Properties, LaterKeyWins) {
  Properties p = parse_properties("a=1\na=2\n");
  EXPECT_EQ(*p.find("a"), "2");
}

TEST(Config, SeedPropertiesLoadWithAMessagePerUnhonouredSetting) {
  TempDir d;
  std::string props =
      d.write("serving.properties", std::string(kSeed) + "option.something_new=1\n");
  ServeFlags f;
  f.model = "/models/x.gguf";
  f.properties = props;
  std::vector<ConfigMessage> msgs;
  ServeConfig c = resolve_config(f, env_of({}), &msgs);
  EXPECT_EQ(c.api, ApiMode::kLmi);  // a serving.properties was used
  EXPECT_EQ(c.max_rolling_batch_size, 64);
  EXPECT_EQ(c.model_loading_timeout_s, 900);
  EXPECT_EQ(c.model, "/models/x.gguf");  // the flag wins over option.model_id
  std::string all;
  for (auto& m : msgs) all += m.text + "\n";
  for (const char* k : {"engine=MPI", "option.entryPoint", "option.tensor_parallel_degree=4",
                        "option.rolling_batch=lmi-dist", "option.low_cpu_mem_usage",
                        "unknown key 'option.something_new'"})
    EXPECT_NE(all.find(k), std::string::npos) << k << "\n" << all;
}

TEST(Config, PropertiesFoundInModelDirectory) {
  TempDir d;
  d.write("serving.properties",
          "option.max_rolling_batch_size=12\noption.output_formatter=jsonlines\n");
  ServeFlags f;
  f.model = d.p.string();
  ServeConfig c = resolve_config(f, env_of({}), nullptr);
  EXPECT_EQ(c.max_rolling_batch_size, 12);
  EXPECT_EQ(c.output_formatter, OutputFormatter::kJsonLines);
  EXPECT_EQ(c.api, ApiMode::kLmi);
}

TEST(Config, FlagBeatsEnvBeatsProperties) {
  TempDir d;
  std::string props = d.write("p", "option.max_rolling_batch_prefill_tokens=100\n");
  ServeFlags f;
  f.model = "m";
  f.properties = props;
  EXPECT_EQ(resolve_config(f, env_of({}), nullptr).max_batch_prefill_tokens, 100);
  EXPECT_EQ(resolve_config(f, env_of({{"MAX_BATCH_PREFILL_TOKENS", "200"}}), nullptr)
                .max_batch_prefill_tokens,
            200);
  f.max_batch_prefill_tokens = 300;
  EXPECT_EQ(resolve_config(f, env_of({{"MAX_BATCH_PREFILL_TOKENS", "200"}}), nullptr)
                .max_batch_prefill_tokens,
            300);
}

TEST(Config, OptionEnvOnlyWhenFileLacksKey) {
  TempDir d;
  std::string props = d.write("p", "option.max_rolling_batch_size=5\n");
  ServeFlags f;
  f.model = "m";
  EXPECT_EQ(resolve_config(f, env_of({{"OPTION_MAX_ROLLING_BATCH_SIZE", "7"}}), nullptr)
                .max_rolling_batch_size,
            7);
  f.properties = props;
  EXPECT_EQ(resolve_config(f, env_of({{"OPTION_MAX_ROLLING_BATCH_SIZE", "7"}}), nullptr)
                .max_rolling_batch_size,
            5);
}

TEST(Config, TgiEnvironmentNames) {
  ServeFlags f;
  auto c = resolve_config(f,
                          env_of({{"HF_MODEL_ID", "/m"},
                                  {"MAX_CONCURRENT_REQUESTS", "9"},
                                  {"MAX_INPUT_TOKENS", "10"},
                                  {"MAX_TOTAL_TOKENS", "20"},
                                  {"MAX_STOP_SEQUENCES", "1"},
                                  {"MAX_TOP_N_TOKENS", "2"},
                                  {"SAGEMAKER_BIND_TO_PORT", "9000"},
                                  {"PORT", "9001"},
                                  {"SM_NUM_GPUS", "1"}}),
                          nullptr);
  EXPECT_EQ(c.model, "/m");
  EXPECT_EQ(c.max_concurrent_requests, 9);
  EXPECT_EQ(c.max_input_length, 10);
  EXPECT_EQ(c.max_total_tokens, 20);
  EXPECT_EQ(c.max_stop_sequences, 1);
  EXPECT_EQ(c.max_top_n_tokens, 2);
  EXPECT_EQ(c.port, 9000);  // SAGEMAKER_BIND_TO_PORT before PORT
  EXPECT_EQ(c.api, ApiMode::kTgi);
  EXPECT_EQ(resolve_config(f, env_of({{"HF_MODEL_ID", "/m"}, {"PORT", "9001"}}), nullptr).port,
            9001);
  f.port = 1234;
  EXPECT_EQ(resolve_config(f, env_of({{"HF_MODEL_ID", "/m"}, {"PORT", "9001"}}), nullptr).port,
            1234);
  // TGI's HOSTNAME is the bind address; --host wins over it.
  EXPECT_EQ(resolve_config(f, env_of({{"HF_MODEL_ID", "/m"}}), nullptr).host, "0.0.0.0");
  EXPECT_EQ(
      resolve_config(f, env_of({{"HF_MODEL_ID", "/m"}, {"HOSTNAME", "127.0.0.2"}}), nullptr).host,
      "127.0.0.2");
  f.host = "127.0.0.1";
  EXPECT_EQ(
      resolve_config(f, env_of({{"HF_MODEL_ID", "/m"}, {"HOSTNAME", "127.0.0.2"}}), nullptr).host,
      "127.0.0.1");
}

TEST(Config, ClearErrors) {
  ServeFlags f;
  EXPECT_THROW(resolve_config(f, env_of({}), nullptr), std::invalid_argument);  // no model
  f.model = "m";
  EXPECT_THROW(resolve_config(f, env_of({{"NUM_SHARD", "4"}}), nullptr), std::invalid_argument);
  EXPECT_THROW(resolve_config(f, env_of({{"MAX_TOTAL_TOKENS", "lots"}}), nullptr),
               std::invalid_argument);
  EXPECT_THROW(resolve_config(f, env_of({{"MAX_TOTAL_TOKENS", "99999999999999"}}), nullptr),
               std::invalid_argument);
  // Remote names pass through: serve() resolves them (store/resolve.h) while /ping is 503.
  f.model = "s3://bucket/model";
  EXPECT_EQ(resolve_config(f, env_of({}), nullptr).model, "s3://bucket/model");
  f.model = "{{model_id}}";
  try {
    resolve_config(f, env_of({}), nullptr);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("placeholder"), std::string::npos);
  }
}

TEST(Config, ModelRevision) {
  ServeFlags f;
  f.model = "org/name";
  EXPECT_EQ(resolve_config(f, env_of({}), nullptr).model_revision, "");
  EXPECT_EQ(resolve_config(f, env_of({{"HF_MODEL_REVISION", "v1"}}), nullptr).model_revision, "v1");
  EXPECT_EQ(resolve_config(f, env_of({{"OPTION_REVISION", "v2"}}), nullptr).model_revision, "v2");
  EXPECT_EQ(resolve_config(f, env_of({{"REVISION", "v4"}}), nullptr).model_revision,
            "v4");  // TGI's
  f.revision = "v3";
  EXPECT_EQ(resolve_config(f, env_of({{"HF_MODEL_REVISION", "v1"}}), nullptr).model_revision, "v3");
}

TEST(Config, ClientBatchSizeAndValidationWorkers) {
  ServeFlags f;
  f.model = "m.gguf";
  EXPECT_EQ(resolve_config(f, env_of({}), nullptr).max_client_batch_size, 4);  // TGI's default
  EXPECT_EQ(
      resolve_config(f, env_of({{"MAX_CLIENT_BATCH_SIZE", "9"}}), nullptr).max_client_batch_size,
      9);
  EXPECT_THROW(resolve_config(f, env_of({{"MAX_CLIENT_BATCH_SIZE", "0"}}), nullptr),
               std::invalid_argument);
  EXPECT_THROW(resolve_config(f, env_of({{"VALIDATION_WORKERS", "2"}}), nullptr),
               std::invalid_argument);
  EXPECT_THROW(resolve_config(f, env_of({{"TRUST_REMOTE_CODE", "maybe"}}), nullptr),
               std::invalid_argument);
  EXPECT_NO_THROW(resolve_config(f, env_of({{"TRUST_REMOTE_CODE", "true"}}), nullptr));
}

TEST(Config, FinalizeLimits) {
  ServeConfig c;
  finalize_limits(c, 256);
  EXPECT_EQ(c.max_total_tokens, 256);
  EXPECT_EQ(c.max_input_length, 255);
  ServeConfig d;
  finalize_limits(d, 4096);
  EXPECT_EQ(d.max_total_tokens, 2048);
  EXPECT_EQ(d.max_input_length, 1024);
  ServeConfig e;
  e.max_input_length = 100;
  e.max_total_tokens = 100;
  EXPECT_THROW(finalize_limits(e, 4096), std::invalid_argument);
  ServeConfig g;
  g.max_total_tokens = 5000;
  EXPECT_THROW(finalize_limits(g, 4096), std::invalid_argument);
}

TEST(SageMakerConfig, EndpointNameEulaAndAuthSettings) {
  ServeFlags f;
  f.model = "/models/Llama-2-7b-chat";
  ServeConfig c = resolve_config(f, env_of({}), nullptr);
  EXPECT_EQ(c.endpoint_name, "");
  EXPECT_FALSE(c.require_eula.has_value());
  EXPECT_TRUE(c.api_key.empty());
  finalize_sagemaker(c, "micro test model");
  EXPECT_EQ(c.endpoint_name, "micro-test-model");
  EXPECT_TRUE(*c.require_eula);  // the path says Llama 2 chat

  c = resolve_config(f,
                     env_of({{"LMSTREAM_REQUIRE_EULA", "false"},
                             {"LMSTREAM_ENDPOINT_NAME", "ep-1"},
                             {"LMSTREAM_API_KEY", "k"},
                             {"LMSTREAM_AWS_ACCESS_KEY_ID", "AKID1"},
                             {"LMSTREAM_AWS_SECRET_ACCESS_KEY", "s1"},
                             {"LMSTREAM_REGION", "us-west-2"}}),
                     nullptr);
  finalize_sagemaker(c, "llama-2-chat");
  EXPECT_EQ(c.endpoint_name, "ep-1");
  EXPECT_FALSE(*c.require_eula);
  EXPECT_EQ(c.api_key, "k");
  EXPECT_EQ(c.aws_access_key_id, "AKID1");
  EXPECT_EQ(c.aws_secret_access_key, "s1");
  EXPECT_EQ(c.region, "us-west-2");

  // Flags win over the environment.
  f.require_eula = true;
  f.endpoint_name = "flag-ep";
  f.api_key = "flag-key";
  c = resolve_config(f,
                     env_of({{"LMSTREAM_REQUIRE_EULA", "false"},
                             {"LMSTREAM_ENDPOINT_NAME", "ep-1"},
                             {"LMSTREAM_API_KEY", "k"}}),
                     nullptr);
  EXPECT_TRUE(*c.require_eula);
  EXPECT_EQ(c.endpoint_name, "flag-ep");
  EXPECT_EQ(c.api_key, "flag-key");

  ServeFlags g;
  g.model = "/models/tiny";
  c = resolve_config(g, env_of({}), nullptr);
  finalize_sagemaker(c, "");
  EXPECT_EQ(c.endpoint_name, "lmstream");
  EXPECT_FALSE(*c.require_eula);
}

TEST(SageMakerConfig, RejectsBadSettings) {
  auto bad = [](ServeFlags f, std::map<std::string, std::string> env, const char* needle) {
    f.model = "/m";
    try {
      resolve_config(f, env_of(env), nullptr);
      ADD_FAILURE() << "accepted, expected an error mentioning " << needle;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  ServeFlags f;
  f.endpoint_name = "bad_name";
  bad(f, {}, "--endpoint-name");
  bad({}, {{"LMSTREAM_ENDPOINT_NAME", "-x"}}, "LMSTREAM_ENDPOINT_NAME");
  bad({}, {{"LMSTREAM_ENDPOINT_NAME", std::string(64, 'a')}}, "63");
  bad({}, {{"LMSTREAM_REQUIRE_EULA", "maybe"}}, "LMSTREAM_REQUIRE_EULA");
  ServeFlags k;
  k.aws_access_key_id = "AKID";
  bad(k, {}, "--aws-secret-access-key");
  bad({}, {{"LMSTREAM_AWS_SECRET_ACCESS_KEY", "s"}}, "--aws-access-key-id");
  k.aws_secret_access_key = "";
  bad(k, {}, "must not be empty");
  ServeFlags r;
  r.region = "US EAST";
  bad(r, {}, "--region");
  ServeFlags a;
  a.api_key = "";
  bad(a, {}, "--api-key");
}

}  // namespace
}  // namespace lmstream::server

namespace lmstream::server {
namespace {

// --quantize, --kv-type and --kv-cache-memory go through the resolver like every other setting:
// each has an environment name, the flag wins, and a bad value names where it came from.
TEST(Config, WeightAndKvSettingsHaveEnvironmentNames) {
  ServeFlags f;
  f.model = "/m.gguf";
  ServeConfig c = resolve_config(f,
                                 env_of({{"LMSTREAM_QUANTIZE", "Q8_0"},
                                         {"LMSTREAM_KV_TYPE", "f32"},
                                         {"LMSTREAM_KV_CACHE_MEMORY", "64MiB"}}),
                                 nullptr);
  EXPECT_EQ(c.quantize, "q8_0");
  EXPECT_EQ(c.kv_type, "f32");
  EXPECT_EQ(c.kv_cache_memory, size_t(64) << 20);

  f.quantize = "q4_0";
  f.kv_type = "f16";
  f.kv_cache_memory = "1GiB";
  c = resolve_config(f, env_of({{"LMSTREAM_QUANTIZE", "q8_0"}, {"LMSTREAM_KV_TYPE", "f32"}}),
                     nullptr);
  EXPECT_EQ(c.quantize, "q4_0");
  EXPECT_EQ(c.kv_type, "f16");
  EXPECT_EQ(c.kv_cache_memory, size_t(1) << 30);

  ServeConfig d = resolve_config(ServeFlags{.model = "/m.gguf"}, env_of({}), nullptr);
  EXPECT_EQ(d.quantize, "");
  EXPECT_EQ(d.kv_type, "f16");
  EXPECT_EQ(d.kv_cache_memory, 0u);

  auto error_of = [](std::map<std::string, std::string> env) {
    try {
      resolve_config(ServeFlags{.model = "/m.gguf"}, env_of(env), nullptr);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of({{"LMSTREAM_QUANTIZE", "q2_k"}}).find("LMSTREAM_QUANTIZE: 'q2_k'"),
            std::string::npos);
  EXPECT_NE(
      error_of({{"LMSTREAM_KV_TYPE", "bf16"}}).find("LMSTREAM_KV_TYPE: 'bf16' is not f16 or f32"),
      std::string::npos);
  EXPECT_NE(error_of({{"LMSTREAM_KV_CACHE_MEMORY", "lots"}})
                .find("LMSTREAM_KV_CACHE_MEMORY: bad size 'lots'"),
            std::string::npos);
}

}  // namespace
}  // namespace lmstream::server

namespace lmstream::server {
namespace {

// Prefix caching: on by default; --prefix-caching beats TGI's PREFIX_CACHING, which beats LMI's
// option.enable_prefix_caching (file, then OPTION_ENABLE_PREFIX_CACHING); bad values are named.
TEST(Config, PrefixCachingSetting) {
  auto resolve = [](ServeFlags f, std::map<std::string, std::string> env) {
    f.model = "/m.gguf";
    return resolve_config(f, env_of(env), nullptr);
  };
  auto pc = [](const char* v) {
    ServeFlags f;
    f.prefix_caching = v;
    return f;
  };
  EXPECT_TRUE(resolve({}, {}).prefix_caching);
  EXPECT_FALSE(resolve(pc("off"), {}).prefix_caching);
  EXPECT_TRUE(resolve(pc("on"), {{"PREFIX_CACHING", "0"}}).prefix_caching);
  EXPECT_FALSE(resolve({}, {{"PREFIX_CACHING", "false"}}).prefix_caching);
  EXPECT_TRUE(resolve({}, {{"PREFIX_CACHING", "1"}, {"OPTION_ENABLE_PREFIX_CACHING", "false"}})
                  .prefix_caching);
  EXPECT_FALSE(resolve({}, {{"OPTION_ENABLE_PREFIX_CACHING", "FALSE"}}).prefix_caching);
  TempDir d;
  ServeFlags with_file;
  with_file.properties = d.write("p", "option.enable_prefix_caching=false\n");
  std::vector<ConfigMessage> msgs;
  with_file.model = "/m.gguf";
  EXPECT_FALSE(resolve_config(with_file, env_of({}), &msgs).prefix_caching);
  for (auto& m : msgs) EXPECT_EQ(m.text.find("unknown key"), std::string::npos) << m.text;
  EXPECT_TRUE(resolve(with_file, {{"PREFIX_CACHING", "true"}}).prefix_caching);
  std::string err;
  try {
    resolve({}, {{"PREFIX_CACHING", "maybe"}});
  } catch (const std::invalid_argument& e) {
    err = e.what();
  }
  EXPECT_NE(err.find("PREFIX_CACHING: 'maybe' is not on or off"), std::string::npos) << err;
}

}  // namespace
}  // namespace lmstream::server

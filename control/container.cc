// Container definition -> worker launch plan (see container.h).
#include "control/container.h"

#include <filesystem>
#include <fstream>

#include "base/strings.h"
#include "model/gguf.h"
#include "model/mmap.h"
#include "server/properties.h"

namespace lmstream::control {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The repository part of an image URI: after the last '/', before ':' or '@'.
std::string repository_of(const std::string& image, std::string* tag) {
  std::string rest = image.substr(image.rfind('/') == std::string::npos ? 0 : image.rfind('/') + 1);
  size_t cut = rest.find_first_of(":@");
  if (tag) *tag = cut == std::string::npos ? "" : rest.substr(cut + 1);
  return rest.substr(0, cut);
}

bool is_url(const std::string& s) { return s.find("://") != std::string::npos; }

std::string strip_file_scheme(const std::string& s) {
  return s.rfind("file://", 0) == 0 ? s.substr(7) : s;
}

std::optional<std::string> env_of(const json& environment, const char* key) {
  if (environment.is_object() && environment.contains(key) && environment[key].is_string())
    return environment[key].get<std::string>();
  return std::nullopt;
}

// serving.properties in dir or in its only subdirectory (DJL loads each subdirectory as a model).
std::optional<fs::path> find_properties(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_regular_file(dir / "serving.properties", ec)) return dir / "serving.properties";
  std::optional<fs::path> found;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_directory(ec)) continue;
    if (fs::is_regular_file(e.path() / "serving.properties", ec)) {
      if (found) return std::nullopt;  // several models: not one endpoint's worth
      found = e.path() / "serving.properties";
    }
  }
  return found;
}

}  // namespace

std::optional<Personality> personality_of(const std::string& image, std::string* why) {
  std::string tag;
  std::string repo = repository_of(image, &tag);
  if (repo == "huggingface-pytorch-tgi-inference" || tag.find("-tgi") != std::string::npos)
    return Personality::kTgi;
  if (repo == "djl-inference" || repo == "djl-deepspeed" || repo == "djl-lmi" ||
      repo == "djl-serving")
    return Personality::kLmi;
  *why = "The image \"" + image + "\" (repository \"" + repo +
         "\") is not one lmstream can stand in for: it runs the Hugging Face TGI images "
         "(huggingface-pytorch-tgi-inference:...) and the DJL/LMI images (djl-inference:..., "
         "djl-deepspeed:...).";
  return std::nullopt;
}

std::optional<uint64_t> local_size(const std::string& path) {
  if (path.empty() || is_url(path)) return std::nullopt;
  std::error_code ec;
  fs::path p(path);
  if (fs::is_regular_file(p, ec)) return fs::file_size(p, ec);
  if (!fs::is_directory(p, ec)) return std::nullopt;
  uint64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
       it.increment(ec))
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  return total;
}

std::optional<uint64_t> kv_bytes_per_token(const std::string& model_path) {
  std::error_code ec;
  fs::path p(model_path);
  int64_t layers = 0, emb = 0, heads = 0, kv_heads = 0;
  try {
    if (fs::is_regular_file(p, ec)) {
      auto mf = MappedFile::open(model_path);
      GgufFile g = parse_gguf(mf->data(), mf->size(), model_path);
      auto get = [&](const char* k) -> int64_t {
        const GgufValue* v = g.find(k);
        return v ? v->i : 0;
      };
      layers = get("llama.block_count");
      emb = get("llama.embedding_length");
      heads = get("llama.attention.head_count");
      kv_heads = get("llama.attention.head_count_kv");
    } else if (fs::is_regular_file(p / "config.json", ec)) {
      std::ifstream f(p / "config.json");
      json c = json::parse(f, nullptr, false);
      if (c.is_discarded()) return std::nullopt;
      layers = c.value("num_hidden_layers", 0);
      emb = c.value("hidden_size", 0);
      heads = c.value("num_attention_heads", 0);
      kv_heads = c.value("num_key_value_heads", 0);
    } else {
      return std::nullopt;
    }
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (kv_heads <= 0) kv_heads = heads;
  if (layers <= 0 || emb <= 0 || heads <= 0) return std::nullopt;
  return uint64_t(2) * uint64_t(layers) * uint64_t(kv_heads) * uint64_t(emb / heads) * 2;
}

LaunchPlan plan_container(const json& container, const LaunchOptions& opts) {
  LaunchPlan plan;
  std::string image = container.value("Image", "");
  if (image.empty())
    throw ContainerError(
        "The container definition has no Image: lmstream needs a TGI or DJL/LMI image URI to "
        "know which server to run.");
  std::string why;
  auto pers = personality_of(image, &why);
  if (!pers) throw ContainerError(why);
  plan.personality = *pers;
  json environment = container.value("Environment", json::object());
  std::string data_url = strip_file_scheme(container.value("ModelDataUrl", ""));
  if (data_url.empty() && container.contains("ModelDataSource")) {
    const json& s3 = container["ModelDataSource"].value("S3DataSource", json::object());
    data_url = s3.value("S3Uri", "");
  }
  for (auto& [k, v] : environment.items())
    if (v.is_string()) plan.env.emplace_back(k, v.get<std::string>());
  // SM_NUM_GPUS is the platform's count of the instance's GPUs (the TGI entrypoint turns it into
  // NUM_SHARD); a worker here is one CPU process, so it is 1 whatever the notebook asked for.
  for (auto& [k, v] : plan.env)
    if ((k == "SM_NUM_GPUS" || k == "NUM_SHARD") && v != "1") {
      plan.notes.push_back(k + "=" + v +
                           " from the container Environment: each worker here is one CPU "
                           "process (one shard), so the worker gets " +
                           k + "=1");
      v = "1";
    }

  std::string properties;
  if (plan.personality == Personality::kTgi) {
    plan.serve_args = {"--api", "tgi"};
    if (auto id = env_of(environment, "HF_MODEL_ID"))
      plan.model_ref = *id;
    else if (!data_url.empty())
      plan.model_ref = data_url;
    else
      throw ContainerError(
          "HF_MODEL_ID must be set: the TGI container needs the model (a Hub id or a path) in "
          "its Environment, or a ModelDataUrl.");
  } else {
    plan.serve_args = {"--api", "lmi"};
    std::error_code ec;
    if (!data_url.empty() && !is_url(data_url)) {
      if (!fs::exists(data_url, ec))
        throw ContainerError("Failed to extract model data archive from URL \"" + data_url +
                             "\": no such file or directory.");
      if (fs::is_directory(data_url, ec)) {
        if (auto p = find_properties(data_url)) {
          properties = p->string();
          server::Properties props = server::load_properties(properties);
          if (const std::string* id = props.find("option.model_id")) {
            std::string ref = *id;
            if (!is_url(ref) && fs::path(ref).is_relative() &&
                fs::exists(p->parent_path() / ref, ec))
              ref = (p->parent_path() / ref).string();
            plan.model_ref = ref;
          } else {
            plan.model_ref = p->parent_path().string();
          }
        }
      }
      if (plan.model_ref.empty()) plan.model_ref = data_url;
    } else if (!data_url.empty()) {
      plan.model_ref = data_url;  // s3:// or https://: the worker's model resolver fetches it
    } else if (auto id = env_of(environment, "HF_MODEL_ID")) {
      plan.model_ref = *id;
    } else if (auto id = env_of(environment, "OPTION_MODEL_ID")) {
      plan.model_ref = *id;
    } else {
      throw ContainerError(
          "The LMI container has no model: give a ModelDataUrl holding a serving.properties, or "
          "HF_MODEL_ID / OPTION_MODEL_ID in its Environment.");
    }
    if (!properties.empty()) {
      plan.serve_args.push_back("--properties");
      plan.serve_args.push_back(properties);
    }
  }
  plan.serve_args.push_back("--model");
  plan.serve_args.push_back(plan.model_ref);
  if (opts.worker_threads > 0) {
    plan.serve_args.push_back("--threads");
    plan.serve_args.push_back(std::to_string(opts.worker_threads));
  }
  plan.serve_args.push_back("--shutdown-grace");
  plan.serve_args.push_back(std::to_string(int(opts.shutdown_grace_s)));

  plan.weights_bytes = local_size(plan.model_ref);
  if (auto tokens = env_of(environment, "MAX_BATCH_TOTAL_TOKENS")) {
    char* end = nullptr;
    unsigned long long t = std::strtoull(tokens->c_str(), &end, 10);
    auto per = kv_bytes_per_token(plan.model_ref);
    if (end && *end == '\0' && per) plan.kv_bytes = t * *per;
  } else {
    plan.serve_args.push_back("--kv-cache-memory");
    plan.serve_args.push_back(std::to_string(opts.worker_kv_memory));
    plan.kv_bytes = opts.worker_kv_memory;
  }
  return plan;
}

}  // namespace lmstream::control

// The control plane's operations and endpoint lifecycle (see plane.h).
#include "control/plane.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "base/strings.h"
#include "control/instance_types.h"

extern char** environ;

namespace lmstream::control {
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string lower(const std::string& s) { return base::to_lower(s); }

std::string str(const json& b, const char* k) {
  if (b.is_object() && b.contains(k) && b[k].is_string()) return b[k].get<std::string>();
  return "";
}

std::string q(const std::string& arn) { return "\"" + arn + "\""; }

bool in_progress(const std::string& status) {
  return status == "Creating" || status == "Updating" || status == "Deleting" ||
         status == "SystemUpdating" || status == "RollingBack";
}

// Environment names `lmstream serve` reads: the control plane's own values must not leak into a
// worker, whose settings come from its container definition alone.
bool serve_setting(const std::string& name) {
  static const char* const kExact[] = {"HF_MODEL_ID",
                                       "HF_MODEL_REVISION",
                                       "NUM_SHARD",
                                       "SM_NUM_GPUS",
                                       "PORT",
                                       "SAGEMAKER_BIND_TO_PORT",
                                       "MODEL_LOADING_TIMEOUT",
                                       "HF_MODEL_QUANTIZE",
                                       "HF_MODEL_TRUST_REMOTE_CODE"};
  for (const char* e : kExact)
    if (name == e) return true;
  // The packed-weight cache is the machine's, shared by the workers and `serve` (as HF_HOME is).
  if (name == "LMSTREAM_PACKED_CACHE" || name == "LMSTREAM_PACKED_CACHE_DIR") return false;
  for (const char* p : {"MAX_", "OPTION_", "SERVING_", "LMSTREAM_"})
    if (name.rfind(p, 0) == 0) return true;
  return false;
}

void check_container(Violations& v, const json& c, const std::string& path) {
  if (!c.is_object()) {
    v.add(&c, path, "Member must be a structure");
    return;
  }
  v.max_length(c, "Image", path + ".image", 255);
  if (c.contains("Image") && c["Image"].is_string()) {
    const std::string& img = c["Image"].get_ref<const std::string&>();
    bool ws = img.empty() || std::any_of(img.begin(), img.end(),
                                         [](unsigned char ch) { return std::isspace(ch); });
    if (ws)
      v.add(&c["Image"], path + ".image", "Member must satisfy regular expression pattern: [\\S]+");
  }
  v.max_length(c, "ModelDataUrl", path + ".modelDataUrl", 1024);
  if (c.contains("ModelDataUrl") && c["ModelDataUrl"].is_string()) {
    // The service's pattern is (https|s3)://...; local paths and file:// are this server's own
    // additions (model data already on the machine).
    const std::string& u = c["ModelDataUrl"].get_ref<const std::string&>();
    bool ok = u.rfind("s3://", 0) == 0 || u.rfind("https://", 0) == 0 ||
              u.rfind("file://", 0) == 0 || u.rfind("/", 0) == 0;
    if (!ok)
      v.add(&c["ModelDataUrl"], path + ".modelDataUrl",
            "Member must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$ (or an "
            "absolute local path / file:// URL on this server)");
  }
  if (c.contains("Environment")) {
    const json& env = c["Environment"];
    if (!env.is_object()) {
      v.add(&env, path + ".environment", "Member must be a map");
    } else {
      if (env.size() > 100)
        v.add(&env, path + ".environment", "Member must have length less than or equal to 100");
      for (auto& [k, val] : env.items()) {
        if (k.size() > 1024 || !valid_env_key(k))
          v.add(nullptr, path + ".environment",
                "Map keys must satisfy constraint: [Member must have length less than or equal "
                "to 1024, Member must satisfy regular expression pattern: "
                "[a-zA-Z_][a-zA-Z0-9_]*]");
        if (!val.is_string())
          v.add(&val, path + ".environment", "Map value must be a string");
        else if (val.get_ref<const std::string&>().size() > 1024)
          v.add(&val, path + ".environment",
                "Map value must satisfy constraint: [Member must have length less than or equal "
                "to 1024]");
      }
    }
  }
}

// The three resources' name members: wire names, patterns, ARN kinds and the words the service's
// "Could not find ..." messages use.
struct Kind {
  const char* member;  // ModelName
  const char* wire;    // modelName, as validation messages name it
  bool model;          // models have their own name pattern
  const char* arn;     // model, endpoint-config, endpoint
  const char* noun;    // model, endpoint configuration, endpoint
};
constexpr Kind kModelKind{"ModelName", "modelName", true, "model", "model"};
constexpr Kind kConfigKind{"EndpointConfigName", "endpointConfigName", false, "endpoint-config",
                           "endpoint configuration"};
constexpr Kind kEndpointKind{"EndpointName", "endpointName", false, "endpoint", "endpoint"};

void check_name(Violations& v, const json& b, const Kind& k) {
  v.require(b, k.member, k.wire);
  if (k.model)
    v.name(b, k.member, k.wire, 63, valid_model_name, kModelNamePattern);
  else
    v.name(b, k.member, k.wire, 63, valid_entity_name, kEntityNamePattern);
}

// The request's name member of kind K, validated (required, pattern, length).
std::string named(const json& b, const Kind& k) {
  Violations v;
  check_name(v, b, k);
  v.throw_if_any();
  return str(b, k.member);
}

ApiError not_found(const Account& a, const Kind& k, const std::string& name) {
  return validation_error("Could not find " + std::string(k.noun) + " " +
                          q(make_arn(a, k.arn, name)) + ".");
}

// DescribeModel and DescribeEndpointConfig: the stored document, without its tags (the service
// gives them through ListTags only).
json describe_doc(std::mutex& mu, const std::map<std::string, json>& docs, const json& b,
                  const Account& a, const Kind& k) {
  std::string name = named(b, k);
  std::lock_guard<std::mutex> lock(mu);
  auto it = docs.find(lower(name));
  if (it == docs.end()) throw not_found(a, k, name);
  json d = it->second;
  d.erase("Tags");
  return d;
}

// DeleteModel and DeleteEndpointConfig: gone from memory and from the state database.
json delete_doc(std::mutex& mu, std::map<std::string, json>& docs, Store& store, Table table,
                const json& b, const Account& a, const Kind& k) {
  std::string name = named(b, k);
  std::lock_guard<std::mutex> lock(mu);
  if (!docs.erase(lower(name))) throw not_found(a, k, name);
  store.remove(table, lower(name));
  return json::object();
}

json model_summary_fields(const json& d) {
  return {{"ModelName", d["ModelName"]},
          {"ModelArn", d["ModelArn"]},
          {"CreationTime", d["CreationTime"]}};
}

}  // namespace

static std::string prepare_state_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "logs", ec);
  if (ec)
    throw std::runtime_error("cannot create the state directory " + dir + ": " + ec.message());
  return (fs::path(dir) / "state.db").string();
}

ControlPlane::ControlPlane(PlaneConfig cfg)
    : cfg_(std::move(cfg)), store_(prepare_state_dir(cfg_.state_dir)) {}

ControlPlane::~ControlPlane() { shutdown(); }

void ControlPlane::shutdown() {
  if (quit_.exchange(true)) return;
  std::vector<std::thread> ts;
  {
    std::lock_guard<std::mutex> lock(threads_mu_);
    ts.swap(threads_);
  }
  for (auto& t : ts) t.join();
  supervisor_.stop_all(std::chrono::milliseconds(int64_t(cfg_.drain_grace_s * 1000)));
}

void ControlPlane::spawn_thread(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(threads_mu_);
  threads_.emplace_back(std::move(fn));
}

void ControlPlane::persist(const std::string& key, const Endpoint& e) {
  store_.put(Table::kEndpoints, key, e.doc);
}

json ControlPlane::call(const std::string& op, const json& b, const Account& a) {
  if (!b.is_object())
    throw ApiError("SerializationException", "The request body is not a JSON object.");
  if (op == "CreateModel") return create_model(b, a);
  if (op == "DescribeModel") return describe_model(b, a);
  if (op == "DeleteModel") return delete_model(b, a);
  if (op == "ListModels") return list(b, "model");
  if (op == "CreateEndpointConfig") return create_config(b, a);
  if (op == "DescribeEndpointConfig") return describe_config(b, a);
  if (op == "DeleteEndpointConfig") return delete_config(b, a);
  if (op == "ListEndpointConfigs") return list(b, "endpoint-config");
  if (op == "CreateEndpoint") return create_endpoint(b, a);
  if (op == "DescribeEndpoint") return describe_endpoint(b, a);
  if (op == "UpdateEndpoint") return update_endpoint(b, a);
  if (op == "DeleteEndpoint") return delete_endpoint(b, a);
  if (op == "ListEndpoints") return list(b, "endpoint");
  throw ApiError("UnknownOperationException",
                 "Operation SageMaker." + op +
                     " is not supported by lmstream control-plane (it serves the model, endpoint "
                     "config and endpoint operations).");
}

// ---------------------------------------------------------------- models

json ControlPlane::create_model(const json& b, const Account& a) {
  Violations v;
  check_name(v, b, kModelKind);
  if (b.contains("ExecutionRoleArn")) {
    const json& r = b["ExecutionRoleArn"];
    if (!r.is_string()) {
      v.add(&r, "executionRoleArn", "Member must be a string");
    } else {
      const std::string& s = r.get_ref<const std::string&>();
      if (s.size() < 20)
        v.add(&r, "executionRoleArn", "Member must have length greater than or equal to 20");
      if (s.size() > 2048)
        v.add(&r, "executionRoleArn", "Member must have length less than or equal to 2048");
      if (!valid_role_arn(s))
        v.add(&r, "executionRoleArn",
              "Member must satisfy regular expression pattern: "
              "^arn:aws[a-z\\-]*:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+$");
    }
  }
  if (b.contains("PrimaryContainer")) check_container(v, b["PrimaryContainer"], "primaryContainer");
  if (b.contains("Containers")) {
    const json& cs = b["Containers"];
    if (!cs.is_array())
      v.add(&cs, "containers", "Member must be a list");
    else {
      if (cs.size() > 15)
        v.add(&cs, "containers", "Member must have length less than or equal to 15");
      for (size_t i = 0; i < cs.size(); ++i)
        check_container(v, cs[i], "containers." + std::to_string(i + 1) + ".member");
    }
  }
  if (b.contains("Tags") && (!b["Tags"].is_array() || b["Tags"].size() > 50))
    v.add(&b["Tags"], "tags", "Member must have length less than or equal to 50");
  if (b.contains("EnableNetworkIsolation") && !b["EnableNetworkIsolation"].is_boolean())
    v.add(&b["EnableNetworkIsolation"], "enableNetworkIsolation", "Member must be a boolean");
  v.throw_if_any();
  std::string name = str(b, "ModelName");
  std::string arn = make_arn(a, "model", name);
  if (!b.contains("PrimaryContainer") && !(b.contains("Containers") && !b["Containers"].empty()))
    throw validation_error("No containers were specified for model " + q(arn) +
                           ". Specify PrimaryContainer or Containers.");
  std::lock_guard<std::mutex> lock(mu_);
  if (models_.count(lower(name)))
    throw validation_error("Cannot create already existing model " +
                           q(models_[lower(name)]["ModelArn"].get<std::string>()) + ".");
  json d = {{"ModelName", name}, {"ModelArn", arn}, {"CreationTime", now_epoch()}};
  for (const char* k : {"PrimaryContainer", "Containers", "ExecutionRoleArn", "VpcConfig",
                        "InferenceExecutionConfig", "Tags"})
    if (b.contains(k)) d[k] = b[k];
  d["EnableNetworkIsolation"] = b.value("EnableNetworkIsolation", false);
  store_.put(Table::kModels, lower(name), d);
  models_[lower(name)] = d;
  return {{"ModelArn", arn}};
}

json ControlPlane::describe_model(const json& b, const Account& a) {
  return describe_doc(mu_, models_, b, a, kModelKind);
}

json ControlPlane::delete_model(const json& b, const Account& a) {
  return delete_doc(mu_, models_, store_, Table::kModels, b, a, kModelKind);
}

// ---------------------------------------------------------------- endpoint configs

json ControlPlane::create_config(const json& b, const Account& a) {
  Violations v;
  check_name(v, b, kConfigKind);
  v.require(b, "ProductionVariants", "productionVariants");
  const json empty = json::array();
  const json& pvs = b.contains("ProductionVariants") ? b["ProductionVariants"] : empty;
  if (b.contains("ProductionVariants")) {
    if (!pvs.is_array()) {
      v.add(&pvs, "productionVariants", "Member must be a list");
    } else if (pvs.empty()) {
      v.add(&pvs, "productionVariants", "Member must have length greater than or equal to 1");
    } else if (pvs.size() > 10) {
      v.add(&pvs, "productionVariants", "Member must have length less than or equal to 10");
    }
  }
  if (pvs.is_array())
    for (size_t i = 0; i < pvs.size(); ++i) {
      const json& pv = pvs[i];
      std::string p = "productionVariants." + std::to_string(i + 1) + ".member.";
      if (!pv.is_object()) {
        v.add(&pv, p.substr(0, p.size() - 1), "Member must be a structure");
        continue;
      }
      v.require(pv, "VariantName", p + "variantName");
      v.name(pv, "VariantName", p + "variantName", 63, valid_entity_name, kEntityNamePattern);
      v.name(pv, "ModelName", p + "modelName", 63, valid_model_name, kModelNamePattern);
      v.enum_value(pv, "InstanceType", p + "instanceType", instance_types());
      v.int_range(pv, "InitialInstanceCount", p + "initialInstanceCount", 1, 1000);
      if (pv.contains("InitialVariantWeight") &&
          (!pv["InitialVariantWeight"].is_number() || pv["InitialVariantWeight"].get<double>() < 0))
        v.add(&pv["InitialVariantWeight"], p + "initialVariantWeight",
              "Member must have value greater than or equal to 0");
      v.int_range(pv, "VolumeSizeInGB", p + "volumeSizeInGB", 1, 512);
      v.int_range(pv, "ModelDataDownloadTimeoutInSeconds", p + "modelDataDownloadTimeoutInSeconds",
                  60, 3600);
      v.int_range(pv, "ContainerStartupHealthCheckTimeoutInSeconds",
                  p + "containerStartupHealthCheckTimeoutInSeconds", 60, 3600);
      if (pv.contains("RoutingConfig"))
        v.enum_value(pv["RoutingConfig"], "RoutingStrategy", p + "routingConfig.routingStrategy",
                     {"LEAST_OUTSTANDING_REQUESTS", "RANDOM"});
    }
  if (b.contains("EnableNetworkIsolation") && !b["EnableNetworkIsolation"].is_boolean())
    v.add(&b["EnableNetworkIsolation"], "enableNetworkIsolation", "Member must be a boolean");
  v.throw_if_any();
  std::string name = str(b, "EndpointConfigName");
  std::string arn = make_arn(a, "endpoint-config", name);
  std::lock_guard<std::mutex> lock(mu_);
  if (configs_.count(lower(name)))
    throw validation_error("Cannot create already existing endpoint configuration " +
                           q(configs_[lower(name)]["EndpointConfigArn"].get<std::string>()) + ".");
  json variants = json::array();
  std::vector<std::string> seen;
  for (const json& pv : pvs) {
    std::string vn = str(pv, "VariantName");
    if (std::find(seen.begin(), seen.end(), lower(vn)) != seen.end())
      throw validation_error(
          "The variant name \"" + vn +
          "\" is used by more than one production variant of endpoint configuration " + q(arn) +
          ".");
    seen.push_back(lower(vn));
    if (pv.contains("ServerlessConfig"))
      throw validation_error(
          "Production variant \"" + vn +
          "\" has a ServerlessConfig: lmstream control-plane runs instance-based variants only "
          "(give InstanceType and InitialInstanceCount).");
    if (!pv.contains("InstanceType"))
      throw validation_error("Production variant \"" + vn +
                             "\" has no InstanceType: instance-based variants need InstanceType "
                             "and InitialInstanceCount.");
    if (!pv.contains("ModelName"))
      throw validation_error("Production variant \"" + vn + "\" has no ModelName.");
    std::string mn = str(pv, "ModelName");
    if (!models_.count(lower(mn))) throw not_found(a, kModelKind, mn);
    json x = pv;
    if (!x.contains("InitialVariantWeight")) x["InitialVariantWeight"] = 1.0;
    x["InitialVariantWeight"] = x["InitialVariantWeight"].get<double>();
    if (!x.contains("InitialInstanceCount")) x["InitialInstanceCount"] = 1;
    variants.push_back(std::move(x));
  }
  json d = {{"EndpointConfigName", name},
            {"EndpointConfigArn", arn},
            {"ProductionVariants", variants},
            {"CreationTime", now_epoch()}};
  for (const char* k :
       {"DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ExplainerConfig",
        "ShadowProductionVariants", "ExecutionRoleArn", "VpcConfig", "MetricsConfig", "Tags"})
    if (b.contains(k)) d[k] = b[k];
  d["EnableNetworkIsolation"] = b.value("EnableNetworkIsolation", false);
  store_.put(Table::kEndpointConfigs, lower(name), d);
  configs_[lower(name)] = d;
  return {{"EndpointConfigArn", arn}};
}

json ControlPlane::describe_config(const json& b, const Account& a) {
  return describe_doc(mu_, configs_, b, a, kConfigKind);
}

json ControlPlane::delete_config(const json& b, const Account& a) {
  return delete_doc(mu_, configs_, store_, Table::kEndpointConfigs, b, a, kConfigKind);
}

// ---------------------------------------------------------------- endpoints

uint64_t ControlPlane::reserved_locked() const {
  uint64_t m = 0;
  for (auto& [k, e] : endpoints_) {
    if (e.active) m += e.active->memory();
    if (e.pending) m += e.pending->memory();
  }
  return m;
}

std::shared_ptr<Deployment> ControlPlane::plan(const json& snapshot, const std::string& endpoint,
                                               std::string* failure) {
  auto d = std::make_shared<Deployment>();
  d->config_name = snapshot["Config"]["EndpointConfigName"].get<std::string>();
  std::vector<std::string> base_env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    std::string name = kv.substr(0, kv.find('='));
    if (!serve_setting(name)) base_env.push_back(kv);
  }
  for (const json& pv : snapshot["Config"]["ProductionVariants"]) {
    VariantFleet vf;
    vf.name = pv["VariantName"].get<std::string>();
    vf.weight = pv.value("InitialVariantWeight", 1.0);
    vf.desired = pv.value("InitialInstanceCount", 1);
    vf.resolution_time = now_epoch();
    const json& model = snapshot["Models"][lower(pv["ModelName"].get<std::string>())];
    json container = model.contains("PrimaryContainer") ? model["PrimaryContainer"]
                     : model.contains("Containers") && !model["Containers"].empty()
                         ? model["Containers"][0]
                         : json::object();
    vf.image = container.value("Image", "");
    if (failure->empty()) {
      try {
        LaunchPlan lp = plan_container(container, cfg_.launch);
        for (auto& n : lp.notes) spdlog::warn("endpoint {} variant {}: {}", endpoint, vf.name, n);
        if (auto m = lp.memory()) vf.memory = *m * uint64_t(vf.desired);
        std::vector<std::string> env = base_env;
        for (auto& [k, val] : lp.env) env.push_back(k + "=" + val);
        // The platform's limit on fetching the model data: here the worker fetches it itself.
        if (pv.contains("ModelDataDownloadTimeoutInSeconds"))
          env.push_back("LMSTREAM_DOWNLOAD_TIMEOUT=" +
                        std::to_string(pv["ModelDataDownloadTimeoutInSeconds"].get<int64_t>()));
        for (int i = 0; i < vf.desired; ++i) {
          WorkerSpec s;
          s.argv = {cfg_.worker_exe, "serve",  "--host",          "127.0.0.1",
                    "--port",        "{port}", "--endpoint-name", endpoint};
          s.argv.insert(s.argv.end(), lp.serve_args.begin(), lp.serve_args.end());
          s.env = env;
          s.nice = cfg_.launch.worker_nice;
          s.label = endpoint + "/" + vf.name + "/" + std::to_string(i + 1);
          s.log_path = (fs::path(cfg_.state_dir) / "logs" /
                        (endpoint + "." + vf.name + "." + std::to_string(i + 1) + ".log"))
                           .string();
          vf.workers.push_back(std::make_shared<Worker>(std::move(s)));
        }
      } catch (const ContainerError& e) {
        *failure = "Production variant " + vf.name + ": " + e.what();
      } catch (const std::exception& e) {
        *failure =
            "Production variant " + vf.name + ": the container cannot be prepared: " + e.what();
      }
    }
    d->variants.push_back(std::move(vf));
  }
  return d;
}

static void check_endpoint_names(const json& b) {
  Violations v;
  check_name(v, b, kEndpointKind);
  check_name(v, b, kConfigKind);
  v.throw_if_any();
}

// What a deployment of endpoint configuration CFG_NAME is made from: the configuration and each
// of its variants' models, as they are now (later changes to them do not touch the endpoint).
json ControlPlane::snapshot_locked(const std::string& cfg_name, const Account& a) const {
  auto cit = configs_.find(lower(cfg_name));
  if (cit == configs_.end()) throw not_found(a, kConfigKind, cfg_name);
  json snapshot = {{"Config", cit->second}, {"Models", json::object()}};
  for (const json& pv : cit->second["ProductionVariants"]) {
    std::string mn = pv["ModelName"].get<std::string>();
    auto mit = models_.find(lower(mn));
    if (mit == models_.end()) throw not_found(a, kModelKind, mn);
    snapshot["Models"][lower(mn)] = mit->second;
  }
  return snapshot;
}

json ControlPlane::create_endpoint(const json& b, const Account& a) {
  check_endpoint_names(b);
  std::string name = str(b, "EndpointName"), cfg_name = str(b, "EndpointConfigName");
  std::string arn = make_arn(a, "endpoint", name);
  std::unique_lock<std::mutex> lock(mu_);
  if (endpoints_.count(lower(name)))
    throw validation_error("Cannot create already existing endpoint " +
                           q(endpoints_[lower(name)].doc["EndpointArn"].get<std::string>()) + ".");
  json snapshot = snapshot_locked(cfg_name, a);
  std::string failure;
  auto d = plan(snapshot, name, &failure);
  uint64_t used = reserved_locked(), need = d->memory();
  if (cfg_.memory_budget > 0 && used + need > cfg_.memory_budget)
    throw ApiError("ResourceLimitExceeded",
                   "The account-level service limit 'memory for endpoint workers' is " +
                       std::to_string(cfg_.memory_budget >> 20) +
                       " MiB, with current utilization of " + std::to_string(used >> 20) +
                       " MiB and a request delta of " + std::to_string(need >> 20) +
                       " MiB (model weights + KV cache of every instance). Delete endpoints or "
                       "start the control plane with a larger --memory-budget.");
  double now = now_epoch();
  Endpoint e;
  e.doc = {{"EndpointName", name},         {"EndpointArn", arn},  {"EndpointConfigName", cfg_name},
           {"EndpointStatus", "Creating"}, {"CreationTime", now}, {"LastModifiedTime", now},
           {"Snapshot", snapshot}};
  if (b.contains("Tags")) e.doc["Tags"] = b["Tags"];
  e.pending = d;
  e.busy = true;
  persist(lower(name), e);
  endpoints_[lower(name)] = e;
  lock.unlock();
  deploy(lower(name), d, failure, snapshot, false);
  return {{"EndpointArn", arn}};
}

void ControlPlane::deploy(const std::string& key, std::shared_ptr<Deployment> d,
                          std::string failure, json snapshot, bool update) {
  spawn_thread([this, key, d, failure, snapshot, update]() mutable {
    std::shared_ptr<Worker> culprit;
    std::string why;
    std::string failed_variant;
    if (failure.empty()) {
      for (auto& vf : d->variants)
        for (auto& w : vf.workers) {
          if (!failure.empty()) break;
          try {
            supervisor_.start(w);
          } catch (const std::exception& e) {
            failure = "Production variant " + vf.name + ": cannot start a worker: " + e.what();
          }
        }
    }
    if (failure.empty()) {
      for (size_t i = 0; i < d->variants.size() && failure.empty(); ++i) {
        auto& vf = d->variants[i];
        const json& pv = snapshot["Config"]["ProductionVariants"][i];
        double t =
            pv.value("ContainerStartupHealthCheckTimeoutInSeconds", cfg_.default_health_timeout_s);
        if (!supervisor_.wait_ready(vf.workers, std::chrono::milliseconds(int64_t(t * 1000)), quit_,
                                    &why, &culprit)) {
          if (quit_) return;
          failure = "The primary container for production variant " + vf.name +
                    " did not pass the ping health check. Please check CloudWatch logs for this "
                    "endpoint.";
          std::string tail = culprit->last_error();
          std::string extra = " (lmstream: worker " + culprit->spec().label + " " + why +
                              "; its log " + culprit->spec().log_path +
                              (tail.empty() ? " ends: " : " says: ");
          if (tail.empty()) tail = culprit->log_tail(6);
          size_t room = 1024 > failure.size() + extra.size() + 2
                            ? 1024 - failure.size() - extra.size() - 2
                            : 0;
          if (tail.size() > room) tail = "..." + tail.substr(tail.size() - room + 3);
          failure += extra + tail + ")";
          if (failure.size() > 1024) failure.resize(1024);
        }
      }
    }
    std::shared_ptr<Deployment> old;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto it = endpoints_.find(key);
      bool gone = it == endpoints_.end() || quit_;
      if (gone || !failure.empty()) {
        lock.unlock();
        for (auto& vf : d->variants)
          for (auto& w : vf.workers) supervisor_.stop(w, 5s);
        lock.lock();
        it = endpoints_.find(key);
        if (it == endpoints_.end() || quit_) return;
        Endpoint& e = it->second;
        e.pending.reset();
        e.busy = false;
        if (update) {
          e.doc["EndpointStatus"] = "InService";
          e.doc["FailureReason"] = "Updating to endpoint configuration \"" + d->config_name +
                                   "\" failed; the endpoint keeps serving \"" +
                                   e.doc["EndpointConfigName"].get<std::string>() + "\". " +
                                   failure;
          if (e.doc["FailureReason"].get<std::string>().size() > 1024)
            e.doc["FailureReason"] = e.doc["FailureReason"].get<std::string>().substr(0, 1024);
        } else {
          e.doc["EndpointStatus"] = "Failed";
          e.doc["FailureReason"] = failure;
        }
        e.doc["LastModifiedTime"] = now_epoch();
        spdlog::warn("endpoint {}: {}", e.doc["EndpointName"].get<std::string>(), failure);
        persist(key, e);
        settled_.notify_all();
        return;
      }
      Endpoint& e = it->second;
      for (auto& vf : d->variants)
        for (auto& w : vf.workers) supervisor_.supervise(w);
      old = e.active;
      e.active = d;
      e.pending.reset();
      e.busy = false;
      e.doc["EndpointStatus"] = "InService";
      e.doc["EndpointConfigName"] = d->config_name;
      e.doc["Snapshot"] = snapshot;
      e.doc.erase("FailureReason");
      e.doc["LastModifiedTime"] = now_epoch();
      spdlog::info("endpoint {} is InService on configuration {}",
                   e.doc["EndpointName"].get<std::string>(), d->config_name);
      persist(key, e);
      settled_.notify_all();
    }
    if (old) retire(old);
  });
}

void ControlPlane::retire(std::shared_ptr<Deployment> d) {
  // New requests no longer reach d; the ones in flight finish within the grace period.
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(int64_t(cfg_.drain_grace_s * 1000));
  auto busy = [&] {
    for (auto& vf : d->variants)
      for (auto& w : vf.workers)
        if (w->outstanding > 0 && w->running()) return true;
    return false;
  };
  while (busy() && std::chrono::steady_clock::now() < deadline && !quit_)
    std::this_thread::sleep_for(20ms);
  for (auto& vf : d->variants)
    for (auto& w : vf.workers) supervisor_.stop(w, 10s);
}

json ControlPlane::describe_endpoint(const json& b, const Account& a) {
  std::string name = named(b, kEndpointKind);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = endpoints_.find(lower(name));
  if (it == endpoints_.end()) throw not_found(a, kEndpointKind, name);
  const Endpoint& e = it->second;
  json out;
  for (const char* k : {"EndpointName", "EndpointArn", "EndpointConfigName", "EndpointStatus",
                        "FailureReason", "CreationTime", "LastModifiedTime"})
    if (e.doc.contains(k)) out[k] = e.doc[k];
  json pvs = json::array();
  const std::string status = e.doc["EndpointStatus"];
  const Deployment* shown = e.active ? e.active.get() : e.pending.get();
  if (shown) {
    for (auto& vf : shown->variants) {
      int ready = 0;
      for (auto& w : vf.workers) ready += w->ready();
      json s = {{"VariantName", vf.name},
                {"CurrentWeight", vf.weight},
                {"DesiredWeight", vf.weight},
                {"CurrentInstanceCount", e.active ? ready : 0},
                {"DesiredInstanceCount", vf.desired}};
      if (!vf.image.empty())
        s["DeployedImages"] =
            json::array({{{"SpecifiedImage", vf.image}, {"ResolutionTime", vf.resolution_time}}});
      if (status == "Creating" || status == "Updating" || status == "Deleting")
        s["VariantStatus"] =
            json::array({{{"Status", status}, {"StartTime", e.doc["LastModifiedTime"]}}});
      pvs.push_back(std::move(s));
    }
  }
  out["ProductionVariants"] = pvs;
  return out;
}

json ControlPlane::update_endpoint(const json& b, const Account& a) {
  check_endpoint_names(b);
  std::string name = str(b, "EndpointName"), cfg_name = str(b, "EndpointConfigName");
  std::unique_lock<std::mutex> lock(mu_);
  auto it = endpoints_.find(lower(name));
  if (it == endpoints_.end()) throw not_found(a, kEndpointKind, name);
  Endpoint& e = it->second;
  std::string arn = e.doc["EndpointArn"];
  std::string status = e.doc["EndpointStatus"];
  if (in_progress(status) || e.busy)
    throw validation_error("Cannot update in-progress endpoint " + q(arn) + ".");
  if (status == "Failed")
    throw validation_error("Cannot update endpoint " + q(arn) +
                           " because it is in Failed status; only DeleteEndpoint is allowed.");
  json snapshot = snapshot_locked(cfg_name, a);
  std::string failure;
  auto d = plan(snapshot, e.doc["EndpointName"].get<std::string>(), &failure);
  uint64_t used = reserved_locked(), need = d->memory();
  if (cfg_.memory_budget > 0 && used + need > cfg_.memory_budget)
    throw ApiError("ResourceLimitExceeded",
                   "The account-level service limit 'memory for endpoint workers' is " +
                       std::to_string(cfg_.memory_budget >> 20) +
                       " MiB, with current utilization of " + std::to_string(used >> 20) +
                       " MiB and a request delta of " + std::to_string(need >> 20) +
                       " MiB (blue/green: the new workers start before the old ones stop).");
  e.pending = d;
  e.busy = true;
  e.doc["EndpointStatus"] = "Updating";
  e.doc.erase("FailureReason");
  e.doc["LastModifiedTime"] = now_epoch();
  persist(lower(name), e);
  lock.unlock();
  deploy(lower(name), d, failure, snapshot, true);
  return {{"EndpointArn", arn}};
}

json ControlPlane::delete_endpoint(const json& b, const Account& a) {
  std::string name = named(b, kEndpointKind);
  std::unique_lock<std::mutex> lock(mu_);
  auto it = endpoints_.find(lower(name));
  if (it == endpoints_.end()) throw not_found(a, kEndpointKind, name);
  Endpoint& e = it->second;
  if (in_progress(e.doc["EndpointStatus"]) || e.busy)
    throw validation_error("Cannot update in-progress endpoint " +
                           q(e.doc["EndpointArn"].get<std::string>()) + ".");
  e.doc["EndpointStatus"] = "Deleting";
  e.doc["LastModifiedTime"] = now_epoch();
  e.busy = true;
  persist(lower(name), e);
  auto d = e.active;
  std::string key = lower(name);
  lock.unlock();
  spawn_thread([this, d, key] {
    if (d) retire(d);
    std::lock_guard<std::mutex> lock(mu_);
    endpoints_.erase(key);
    store_.remove(Table::kEndpoints, key);
    settled_.notify_all();
  });
  return json::object();
}

void ControlPlane::wait_settled(const std::string& name, double timeout_s) {
  std::unique_lock<std::mutex> lock(mu_);
  settled_.wait_for(lock, std::chrono::milliseconds(int64_t(timeout_s * 1000)), [&] {
    auto it = endpoints_.find(lower(name));
    return quit_ || it == endpoints_.end() || !it->second.busy;
  });
}

// ---------------------------------------------------------------- lists

json ControlPlane::list(const json& b, const std::string& kind) {
  Violations v;
  bool ep = kind == "endpoint";
  if (ep)
    v.enum_value(b, "SortBy", "sortBy", {"Name", "CreationTime", "Status"});
  else
    v.enum_value(b, "SortBy", "sortBy", {"Name", "CreationTime"});
  v.enum_value(b, "SortOrder", "sortOrder", {"Ascending", "Descending"});
  v.int_range(b, "MaxResults", "maxResults", 1, 100);
  v.max_length(b, "NextToken", "nextToken", 8192);
  v.name(b, "NameContains", "nameContains", 63, valid_name_contains, "[a-zA-Z0-9-]+");
  for (const char* k : {"CreationTimeBefore", "CreationTimeAfter", "LastModifiedTimeBefore",
                        "LastModifiedTimeAfter"})
    if (b.contains(k) && !b[k].is_number()) v.add(&b[k], k, "Member must be a timestamp");
  if (ep)
    v.enum_value(b, "StatusEquals", "statusEquals",
                 {"OutOfService", "Creating", "Updating", "SystemUpdating", "RollingBack",
                  "InService", "Deleting", "Failed", "UpdateRollbackFailed"});
  v.throw_if_any();
  std::vector<json> rows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (kind == "model")
      for (auto& [k, d] : models_) rows.push_back(model_summary_fields(d));
    else if (kind == "endpoint-config")
      for (auto& [k, d] : configs_)
        rows.push_back({{"EndpointConfigName", d["EndpointConfigName"]},
                        {"EndpointConfigArn", d["EndpointConfigArn"]},
                        {"CreationTime", d["CreationTime"]}});
    else
      for (auto& [k, e] : endpoints_)
        rows.push_back({{"EndpointName", e.doc["EndpointName"]},
                        {"EndpointArn", e.doc["EndpointArn"]},
                        {"CreationTime", e.doc["CreationTime"]},
                        {"LastModifiedTime", e.doc["LastModifiedTime"]},
                        {"EndpointStatus", e.doc["EndpointStatus"]}});
  }
  std::string name_key = kind == "model"             ? "ModelName"
                         : kind == "endpoint-config" ? "EndpointConfigName"
                                                     : "EndpointName";
  std::string contains = lower(str(b, "NameContains"));
  auto num = [&](const char* k) { return b.contains(k) ? b[k].get<double>() : NAN; };
  double cb = num("CreationTimeBefore"), ca = num("CreationTimeAfter");
  double mb = num("LastModifiedTimeBefore"), ma = num("LastModifiedTimeAfter");
  std::string status = str(b, "StatusEquals");
  std::erase_if(rows, [&](const json& r) {
    if (!contains.empty() &&
        lower(r[name_key].get<std::string>()).find(contains) == std::string::npos)
      return true;
    double ct = r["CreationTime"].get<double>();
    if (!std::isnan(cb) && !(ct < cb)) return true;
    if (!std::isnan(ca) && !(ct > ca)) return true;
    if (r.contains("LastModifiedTime")) {
      double mt = r["LastModifiedTime"].get<double>();
      if (!std::isnan(mb) && !(mt < mb)) return true;
      if (!std::isnan(ma) && !(mt > ma)) return true;
    }
    if (!status.empty() && r["EndpointStatus"] != status) return true;
    return false;
  });
  std::string sort_by = b.value("SortBy", "CreationTime");
  bool asc = b.value("SortOrder", "Descending") == "Ascending";
  std::stable_sort(rows.begin(), rows.end(), [&](const json& x, const json& y) {
    auto key = [&](const json& r) -> std::pair<std::string, double> {
      if (sort_by == "Name") return {r[name_key].get<std::string>(), 0};
      if (sort_by == "Status") return {r["EndpointStatus"].get<std::string>(), 0};
      return {"", r["CreationTime"].get<double>()};
    };
    auto kx = key(x), ky = key(y);
    if (kx != ky) return asc ? kx < ky : ky < kx;
    return asc ? x[name_key] < y[name_key] : y[name_key] < x[name_key];
  });
  size_t offset = 0;
  if (b.contains("NextToken")) {
    std::string t = str(b, "NextToken");
    const std::string prefix = kind + "-page-";
    bool ok = t.rfind(prefix, 0) == 0 && t.size() > prefix.size() &&
              t.size() < prefix.size() + 10 &&
              std::all_of(t.begin() + prefix.size(), t.end(), ::isdigit);
    if (!ok) throw validation_error("Invalid pagination token: \"" + t.substr(0, 100) + "\".");
    offset = std::stoul(t.substr(prefix.size()));
  }
  size_t max = b.value("MaxResults", 10);
  json page = json::array();
  for (size_t i = offset; i < rows.size() && page.size() < max; ++i) page.push_back(rows[i]);
  std::string list_key = kind == "model"             ? "Models"
                         : kind == "endpoint-config" ? "EndpointConfigs"
                                                     : "Endpoints";
  json out = {{list_key, page}};
  if (offset + page.size() < rows.size())
    out["NextToken"] = kind + "-page-" + std::to_string(offset + page.size());
  return out;
}

// ---------------------------------------------------------------- runtime, recovery

std::optional<Route> ControlPlane::route(const std::string& name, const std::string& target,
                                         const std::shared_ptr<Worker>& avoid, std::string* code,
                                         std::string* message) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = endpoints_.find(lower(name));
  if (it == endpoints_.end() || it->second.doc["EndpointName"] != name || !it->second.active ||
      it->second.doc["EndpointStatus"] == "Deleting") {
    *code = "ValidationError";
    *message = "Endpoint " + name + " of account " + cfg_.account.account + " not found.";
    return std::nullopt;
  }
  Deployment& d = *it->second.active;
  std::vector<VariantFleet*> cands;
  if (!target.empty()) {
    for (auto& vf : d.variants)
      if (vf.name == target) cands.push_back(&vf);
    if (cands.empty()) {
      *code = "ValidationError";
      *message = "The variant \"" + target + "\" does not exist in endpoint " + name + ".";
      return std::nullopt;
    }
  } else {
    double total = 0;
    for (auto& vf : d.variants) {
      bool any =
          std::any_of(vf.workers.begin(), vf.workers.end(), [](auto& w) { return w->ready(); });
      if (any && vf.weight > 0) total += vf.weight;
    }
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    double x = std::uniform_real_distribution<double>(0, total)(rng);
    for (auto& vf : d.variants) {
      bool any =
          std::any_of(vf.workers.begin(), vf.workers.end(), [](auto& w) { return w->ready(); });
      if (!any || vf.weight <= 0) continue;
      cands.push_back(&vf);
      if (x < vf.weight) break;
      x -= vf.weight;
    }
    if (!cands.empty()) cands.erase(cands.begin(), cands.end() - 1);
  }
  std::shared_ptr<Worker> best;
  if (!cands.empty()) {
    rr_++;
    auto& ws = cands[0]->workers;
    for (size_t k = 0; k < ws.size(); ++k) {
      auto& w = ws[(k + rr_) % ws.size()];
      if (!w->ready() || w == avoid) continue;
      if (!best || w->outstanding < best->outstanding) best = w;
    }
  }
  if (!best) {
    *code = "ServiceUnavailable";
    *message = "No instance of endpoint " + name +
               (cands.empty() ? std::string() : " variant " + cands[0]->name) +
               " is ready to serve right now; retry shortly.";
    return std::nullopt;
  }
  best->outstanding++;
  return Route{best, cands[0]->name};
}

std::vector<ControlPlane::WorkerInfo> ControlPlane::workers() {
  std::vector<WorkerInfo> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [k, e] : endpoints_)
    for (auto* d : {e.active.get(), e.pending.get()})
      if (d)
        for (auto& vf : d->variants)
          for (size_t i = 0; i < vf.workers.size(); ++i)
            out.push_back({e.doc["EndpointName"], vf.name, int(i + 1), vf.workers[i]});
  return out;
}

std::map<std::string, int> ControlPlane::endpoint_counts() {
  std::map<std::string, int> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [k, e] : endpoints_) out[e.doc["EndpointStatus"].get<std::string>()]++;
  return out;
}

void ControlPlane::recover() {
  std::vector<std::pair<std::string, json>> todo;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& d : store_.all(Table::kModels)) models_[lower(d["ModelName"])] = d;
    for (auto& d : store_.all(Table::kEndpointConfigs))
      configs_[lower(d["EndpointConfigName"])] = d;
    for (auto& d : store_.all(Table::kEndpoints)) {
      std::string key = lower(d["EndpointName"]);
      std::string status = d["EndpointStatus"];
      if (status == "Deleting") {  // the delete had stopped the workers; finish it
        store_.remove(Table::kEndpoints, key);
        continue;
      }
      Endpoint e;
      e.doc = d;
      if (status != "Failed") {
        e.doc["EndpointStatus"] = "Creating";
        e.doc["LastModifiedTime"] = now_epoch();
        e.busy = true;
        todo.emplace_back(key, d["Snapshot"]);
      }
      store_.put(Table::kEndpoints, key, e.doc);
      endpoints_[key] = e;
    }
  }
  for (auto& [key, snapshot] : todo) {
    std::string failure;
    std::shared_ptr<Deployment> d;
    {
      std::lock_guard<std::mutex> lock(mu_);
      d = plan(snapshot, endpoints_[key].doc["EndpointName"].get<std::string>(), &failure);
      endpoints_[key].pending = d;
    }
    spdlog::info("bringing back endpoint {} (configuration {})", key,
                 snapshot["Config"]["EndpointConfigName"].get<std::string>());
    deploy(key, d, failure, snapshot, false);
  }
}

}  // namespace lmstream::control

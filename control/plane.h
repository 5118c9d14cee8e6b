// The SageMaker control plane's state machine: the 13 hosting operations (models, endpoint
// configs, endpoints) with the real service's validation and messages, persisted in the Store,
// and the endpoints' deployments: sets of Workers per production variant, started and health-
// checked in the background (Creating -> InService | Failed), swapped blue/green on
// UpdateEndpoint, drained and stopped on DeleteEndpoint, brought back when the control plane
// restarts. Also what the runtime proxy needs: pick a worker for an invocation.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control/container.h"
#include "control/store.h"
#include "control/validation.h"
#include "control/workers.h"

namespace lmstream::control {

struct PlaneConfig {
  std::string state_dir;
  std::string worker_exe;  // the lmstream binary the workers run
  Account account;
  uint64_t memory_budget = 0;  // bytes all workers together may use; 0 = no limit
  LaunchOptions launch;
  double drain_grace_s = 30;              // in-flight streams on retiring workers
  double default_health_timeout_s = 240;  // ContainerStartupHealthCheckTimeoutInSeconds default
};

struct VariantFleet {
  std::string name;
  double weight = 1.0;
  std::string image;
  double resolution_time = 0;
  int desired = 1;
  uint64_t memory = 0;  // reserved bytes, all instances
  std::vector<std::shared_ptr<Worker>> workers;
};

struct Deployment {
  std::string config_name;
  std::vector<VariantFleet> variants;
  uint64_t memory() const {
    uint64_t m = 0;
    for (auto& v : variants) m += v.memory;
    return m;
  }
};

// The worker an invocation goes to.
struct Route {
  std::shared_ptr<Worker> worker;
  std::string variant;
};

class ControlPlane {
 public:
  explicit ControlPlane(PlaneConfig cfg);
  ~ControlPlane();  // stops every worker

  // Brings back the endpoints the store holds (Creating -> InService on their workers).
  void recover();

  // One operation: `op` is the X-Amz-Target operation name, `body` the request object. Throws
  // ApiError. `account` carries the caller's region (from its SigV4 scope).
  nlohmann::json call(const std::string& op, const nlohmann::json& body, const Account& account);

  // Waits until the endpoint is no longer Creating/Updating (or `timeout_s` passes).
  void wait_settled(const std::string& endpoint_name, double timeout_s);

  // A ready worker of the endpoint (least outstanding requests within the variant chosen by
  // weight, or `target_variant`); nullopt with *error set (ApiError code and message) otherwise.
  std::optional<Route> route(const std::string& endpoint_name, const std::string& target_variant,
                             const std::shared_ptr<Worker>& avoid, std::string* error_code,
                             std::string* error_message);

  struct WorkerInfo {
    std::string endpoint, variant;
    int instance = 0;
    std::shared_ptr<Worker> worker;
  };
  std::vector<WorkerInfo> workers();
  std::map<std::string, int> endpoint_counts();  // by status

  const PlaneConfig& config() const { return cfg_; }
  void shutdown();

 private:
  struct Endpoint {
    nlohmann::json doc;  // the persisted record
    std::shared_ptr<Deployment> active, pending;
    bool busy = false;  // a deployment thread is working on it
  };

  nlohmann::json create_model(const nlohmann::json& b, const Account& a);
  nlohmann::json describe_model(const nlohmann::json& b, const Account& a);
  nlohmann::json delete_model(const nlohmann::json& b, const Account& a);
  nlohmann::json create_config(const nlohmann::json& b, const Account& a);
  nlohmann::json describe_config(const nlohmann::json& b, const Account& a);
  nlohmann::json delete_config(const nlohmann::json& b, const Account& a);
  nlohmann::json create_endpoint(const nlohmann::json& b, const Account& a);
  nlohmann::json describe_endpoint(const nlohmann::json& b, const Account& a);
  nlohmann::json update_endpoint(const nlohmann::json& b, const Account& a);
  nlohmann::json delete_endpoint(const nlohmann::json& b, const Account& a);
  nlohmann::json list(const nlohmann::json& b, const std::string& kind);

  // Checks the memory budget and plans every variant; throws ApiError (ResourceLimitExceeded)
  // when the workers would not fit. `failure` gets the FailureReason of a container that cannot
  // start (the endpoint is created and fails in the background, as on the real service).
  // The workers are made but not started.
  std::shared_ptr<Deployment> plan(const nlohmann::json& snapshot, const std::string& endpoint,
                                   std::string* failure);
  void deploy(const std::string& key, std::shared_ptr<Deployment> d, std::string failure,
              nlohmann::json snapshot, bool update);
  void retire(std::shared_ptr<Deployment> d);
  void persist(const std::string& key, const Endpoint& e);
  void remove_endpoint(const std::string& key);
  uint64_t reserved_locked() const;
  nlohmann::json snapshot_locked(const std::string& cfg_name, const Account& a) const;
  void spawn_thread(std::function<void()> fn);

  PlaneConfig cfg_;
  Store store_;
  Supervisor supervisor_;
  std::mutex mu_;
  std::condition_variable settled_;
  std::map<std::string, nlohmann::json> models_, configs_;  // by lower-cased name
  std::map<std::string, Endpoint> endpoints_;
  std::atomic<bool> quit_{false};
  std::mutex threads_mu_;
  std::vector<std::thread> threads_;
  uint64_t rr_ = 0;
};

}  // namespace lmstream::control

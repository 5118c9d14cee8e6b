// `lmstream control-plane`: a SageMaker control plane of our own. boto3's `sagemaker` and
// `sagemaker-runtime` clients (and awscli) pointed at --port with endpoint_url create models,
// endpoint configs and endpoints; each endpoint instance runs as a supervised `lmstream serve`
// worker (control/service.h).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "base/strings.h"
#include "cli/command.h"
#include "control/service.h"
#include "http/server.h"

namespace lmstream::cli {
namespace {

struct Args {
  std::string state_dir, host = "127.0.0.1", memory_budget, worker_kv_memory = "256MiB",
                         account = "123456789012", region, key_id, secret, credentials_file;
  int port = 8080, worker_threads = 0, io_slice_us = 0, worker_nice = 0;
  double drain_grace = 30, health_timeout = 240;
  bool wait = false;
};

uint64_t default_budget() {  // 80% of the machine's memory
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit)
    if (key == "MemTotal:") return kb * 1024 / 10 * 8;
  return 0;
}

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  return std::string(buf, size_t(n));
}

void run(const Args& a) {
  control::ServiceConfig c;
  c.plane.state_dir = a.state_dir;
  c.plane.worker_exe = self_exe();
  c.plane.account.account = a.account;
  if (a.account.size() != 12 || a.account.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("--account: '" + a.account + "' is not a 12-digit AWS account id");
  c.plane.memory_budget =
      a.memory_budget.empty() ? default_budget() : base::parse_byte_size(a.memory_budget);
  c.plane.launch.worker_kv_memory = base::parse_byte_size(a.worker_kv_memory);
  c.plane.launch.worker_threads = a.worker_threads;
  c.plane.launch.worker_nice = a.worker_nice;
  c.plane.launch.shutdown_grace_s = a.drain_grace;
  c.plane.drain_grace_s = a.drain_grace;
  c.plane.default_health_timeout_s = a.health_timeout;
  c.host = a.host;
  c.port = a.port;
  c.wait_for_in_service = a.wait;
  if (std::string why = http::check_io_slice_us(a.io_slice_us); !why.empty())
    throw std::invalid_argument("--io-slice-us: " + why);
  c.io_slice_us = a.io_slice_us;
  c.region = a.region;
  if (a.key_id.empty() != a.secret.empty())
    throw std::invalid_argument(
        "pass both --aws-access-key-id and --aws-secret-access-key, or neither");
  c.aws_access_key_id = a.key_id;
  c.aws_secret_access_key = a.secret;
  c.aws_credentials_file = a.credentials_file;
  int rc = control::run_service(c);
  if (rc != 0) throw CLI::RuntimeError(rc);
}

const Register reg(
    "control-plane",
    "A SageMaker control plane: create_model / create_endpoint_config / create_endpoint through "
    "boto3 or awscli, each endpoint instance a supervised `lmstream serve` worker",
    [](CLI::App& sub) {
      auto a = std::make_shared<Args>();
      sub.add_option("--state-dir", a->state_dir,
                     "directory for state.db (SQLite) and the workers' logs")
          ->required();
      sub.add_option("--port", a->port,
                     "port of both the control-plane and the runtime API (8080)");
      sub.add_option("--host", a->host, "address to listen on (127.0.0.1)");
      sub.add_option("--memory-budget", a->memory_budget,
                     "memory all workers together may use (weights + KV cache), e.g. 8GiB; "
                     "default 80% of the machine's memory; an endpoint over it gets "
                     "ResourceLimitExceeded");
      sub.add_option("--worker-kv-memory", a->worker_kv_memory,
                     "KV cache budget of a worker whose container sets no MAX_BATCH_TOTAL_TOKENS "
                     "(256MiB)");
      sub.add_option("--worker-threads", a->worker_threads,
                     "engine threads per worker (0 = all cores)")
          ->default_str("0");
      sub.add_option("--worker-nice", a->worker_nice,
                     "added to the workers' nice value, 0..19, so the proxy can preempt the "
                     "workers' engine threads when a token arrives")
          ->check(CLI::Range(0, 19))
          ->default_str("0");
      sub.add_option("--io-slice-us", a->io_slice_us,
                     "time slice the proxy's io threads ask the kernel for, in µs (100..100000; "
                     "0 = the kernel's default): on Linux >= 6.12 a shorter slice lets the proxy "
                     "preempt busy engine threads as soon as a token arrives")
          ->default_str("0");
      sub.add_flag("--wait-for-in-service", a->wait,
                   "CreateEndpoint answers only once the endpoint is InService or Failed");
      sub.add_option("--drain-grace", a->drain_grace,
                     "seconds in-flight streams may take when workers retire (update, delete, "
                     "shutdown; 30)");
      sub.add_option("--health-check-timeout", a->health_timeout,
                     "default ContainerStartupHealthCheckTimeoutInSeconds (240)");
      sub.add_option("--account", a->account, "AWS account id in ARNs (123456789012)");
      sub.add_option("--region", a->region,
                     "the only region accepted in SigV4 scopes and the ARN region (default: the "
                     "caller's SigV4 region, else us-east-1)");
      sub.add_option("--aws-access-key-id", a->key_id,
                     "require SigV4 (service sagemaker) with this key");
      sub.add_option("--aws-secret-access-key", a->secret, "its secret");
      sub.add_option("--aws-credentials-file", a->credentials_file,
                     "AWS credentials file; every profile is an accepted key");
      sub.callback([a] { run(*a); });
    });

}  // namespace
}  // namespace lmstream::cli

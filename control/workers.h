// Worker processes of the control plane: each instance of a production variant is one
// `lmstream serve` child on a private loopback port, its stdout/stderr appended to a log file in
// the state directory. The Supervisor owns one long-lived thread that spawns every child (so the
// children's parent-death signal is tied to a thread that lives as long as the control plane),
// reaps them, restarts crashed workers of supervised deployments with exponential backoff, and
// polls /ping until a (re)started worker answers 200.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lmstream::control {

struct WorkerSpec {
  std::vector<std::string> argv;  // argv[0] is the executable; "{port}" is replaced by the port
  std::vector<std::string> env;   // NAME=value, the whole environment
  std::string log_path;
  std::string label;  // "endpoint/variant/instance" for logs and metrics
  int nice = 0;       // added to the worker's nice value before exec
};

class Worker {
 public:
  explicit Worker(WorkerSpec spec) : spec_(std::move(spec)) {}
  const WorkerSpec& spec() const { return spec_; }
  int port() const { return port_.load(); }
  pid_t pid() const { return pid_.load(); }
  bool ready() const { return ready_.load(); }
  bool running() const { return pid_.load() > 0; }
  int restarts() const { return restarts_.load(); }
  // Requests proxied to it right now (least-busy routing).
  std::atomic<int> outstanding{0};
  // The last `n` lines of its log file.
  std::string log_tail(int n) const;
  // Why it failed, from its log: the last error it logged (a text or JSON log line at level
  // error, or the command line's "error: ..."), or "" when it logged none. A log that ends in
  // something else (a sanitizer's report, a crash dump) still yields the worker's own reason.
  std::string last_error() const;

 private:
  friend class Supervisor;
  WorkerSpec spec_;
  std::atomic<int> port_{0};
  std::atomic<pid_t> pid_{0};
  std::atomic<bool> ready_{false};
  std::atomic<int> restarts_{0};
  std::atomic<bool> supervised_{false};  // restart when it dies
  std::atomic<bool> stopping_{false};
  int last_exit_ = 0;  // wait status of the last exit
  std::chrono::steady_clock::time_point restart_at_{};
  std::chrono::milliseconds backoff_{250};
};

class Supervisor {
 public:
  Supervisor();
  ~Supervisor();  // stops every worker (SIGTERM, then SIGKILL after 10 s)

  // Spawns the worker on a fresh loopback port (blocking until the child exists). Throws
  // std::runtime_error when fork/exec setup fails.
  void start(const std::shared_ptr<Worker>& w);
  // Waits until every worker answers /ping 200 (true), one of them exits, or the timeout passes
  // (false, with *why saying which worker and how).
  // `cancel` set from another thread abandons the wait (false, *why empty).
  bool wait_ready(const std::vector<std::shared_ptr<Worker>>& ws, std::chrono::milliseconds timeout,
                  const std::atomic<bool>& cancel, std::string* why,
                  std::shared_ptr<Worker>* culprit);
  // From now on a crash of `w` restarts it with backoff (250 ms doubling to 8 s).
  void supervise(const std::shared_ptr<Worker>& w);
  // SIGTERM; SIGKILL after `grace`; returns once the process is gone.
  void stop(const std::shared_ptr<Worker>& w, std::chrono::milliseconds grace);
  void stop_all(std::chrono::milliseconds grace);

 private:
  void loop();
  void spawn_now(Worker& w);
  void reap();
  void ping_pending();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::shared_ptr<Worker>> workers_;
  bool quit_ = false;
  std::thread thread_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_loopback_port();

}  // namespace lmstream::control

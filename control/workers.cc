// Worker processes and their supervisor (see workers.h).
#include "control/workers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "http/client.h"

namespace lmstream::control {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error(std::string("cannot find a free loopback port: ") + std::strerror(e));
  }
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

std::string Worker::log_tail(int n) const {
  std::ifstream f(spec_.log_path, std::ios::binary);
  if (!f) return "";
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t end = all.size();
  while (end > 0 && (all[end - 1] == '\n' || all[end - 1] == '\r')) --end;
  size_t pos = end;
  for (int i = 0; i < n && pos > 0; ++i) {
    size_t nl = all.rfind('\n', pos - 1);
    pos = nl == std::string::npos ? 0 : nl;
    if (pos == 0) break;
  }
  std::string out = all.substr(pos, end - pos);
  if (!out.empty() && out[0] == '\n') out.erase(0, 1);
  return out;
}

std::string Worker::last_error() const {
  std::ifstream f(spec_.log_path, std::ios::binary);
  std::string line, found;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    static const std::string kText = "] [error] ";  // serve's text log: [time] [lmstream] [error]
    if (line.rfind("error: ", 0) == 0) {
      found = line.substr(7);
    } else if (size_t at = line.find(kText); line[0] == '[' && at != std::string::npos) {
      found = line.substr(at + kText.size());
    } else if (line.size() > 2 && line[0] == '{' && line.find("\"error\"") != std::string::npos) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.value("level", "") == "error" && j.contains("message") &&
          j["message"].is_string())
        found = j["message"].get<std::string>();
    }
  }
  return found;
}

namespace {

bool ping(int port) {
  http::ClientRequest r;
  r.url = "http://127.0.0.1:" + std::to_string(port) + "/ping";
  http::ClientOptions o;
  o.connect_timeout = 500ms;
  o.stall_timeout = 2000ms;
  try {
    return http::fetch(r, o, 4096).head.status == 200;
  } catch (const http::ClientError&) {
    return false;
  }
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

}  // namespace

Supervisor::Supervisor() {
  thread_ = std::thread([this] { loop(); });
}

Supervisor::~Supervisor() {
  stop_all(10s);
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Supervisor::spawn_now(Worker& w) {
  int port = free_loopback_port();
  std::vector<std::string> args = w.spec_.argv;
  for (auto& a : args)
    if (a == "{port}") a = std::to_string(port);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = w.spec_.env;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int fd = ::open(w.spec_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error("cannot open the worker log " + w.spec_.log_path + ": " +
                             std::strerror(errno));
  {
    std::string banner = "=== lmstream control-plane: starting worker " + w.spec_.label +
                         " on 127.0.0.1:" + std::to_string(port) + "\n";
    (void)!::write(fd, banner.data(), banner.size());
  }
  // The highest descriptor the child may have inherited (for the fallback below).
  rlimit nofile{};
  const int max_fd = ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY
                         ? int(std::min<rlim_t>(nofile.rlim_cur, 1 << 20))
                         : 65536;
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error(std::string("fork: ") + std::strerror(e));
  }
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    if (w.spec_.nice != 0) (void)!::nice(w.spec_.nice);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    // Nothing of the control plane's beyond stdio: its listening socket, its clients'
    // connections (Asio does not open them close-on-exec) and its state database would otherwise
    // stay open in every worker, keeping the port bound and connections half-open after the
    // control plane closed them.
    if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
      for (int f = 3; f < max_fd; ++f) ::close(f);
    ::execve(argv[0], argv.data(), envp.data());
    const char msg[] = "exec of the worker failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(fd);
  w.port_ = port;
  w.ready_ = false;
  w.pid_ = pid;
  spdlog::info("worker {} started: pid {}, port {}", w.spec_.label, pid, port);
}

void Supervisor::start(const std::shared_ptr<Worker>& w) {
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers_.push_back(w);
    tasks_.push_back([this, w, done] {
      try {
        spawn_now(*w);
        done->set_value();
      } catch (...) {
        done->set_exception(std::current_exception());
      }
    });
  }
  cv_.notify_all();
  fut.get();
}

void Supervisor::supervise(const std::shared_ptr<Worker>& w) { w->supervised_ = true; }

void Supervisor::reap() {
  std::vector<std::shared_ptr<Worker>> ws;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ws = workers_;
  }
  for (auto& w : ws) {
    pid_t pid = w->pid_.load();
    if (pid <= 0) continue;
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r != pid) continue;
    w->last_exit_ = status;
    w->ready_ = false;
    w->pid_ = 0;
    if (w->supervised_ && !w->stopping_) {
      w->restart_at_ = Clock::now() + w->backoff_;
      spdlog::warn("worker {} (pid {}) {}; restarting in {} ms", w->spec_.label, pid,
                   describe_exit(status), w->backoff_.count());
      w->backoff_ = std::min<std::chrono::milliseconds>(w->backoff_ * 2, 8000ms);
    } else {
      spdlog::info("worker {} (pid {}) {}", w->spec_.label, pid, describe_exit(status));
    }
  }
  // Forget workers that are stopped for good.
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(workers_, [](const std::shared_ptr<Worker>& w) {
    return w->pid_.load() == 0 && (w->stopping_ || !w->supervised_) && w.use_count() == 1;
  });
}

void Supervisor::ping_pending() {
  std::vector<std::shared_ptr<Worker>> ws;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ws = workers_;
  }
  auto now = Clock::now();
  for (auto& w : ws) {
    if (!w->supervised_ || w->stopping_) continue;
    if (w->pid_ == 0 && now >= w->restart_at_) {
      try {
        w->restarts_++;
        spawn_now(*w);
      } catch (const std::exception& e) {
        spdlog::error("worker {}: restart failed: {}", w->spec_.label, e.what());
        w->restart_at_ = now + w->backoff_;
      }
      continue;
    }
    if (w->pid_ > 0 && !w->ready_ && ping(w->port_)) {
      w->ready_ = true;
      w->backoff_ = 250ms;
      spdlog::info("worker {} is healthy again (restart {})", w->spec_.label, w->restarts_.load());
    }
  }
}

void Supervisor::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!quit_) {
    cv_.wait_for(lock, 50ms, [this] { return quit_ || !tasks_.empty(); });
    while (!tasks_.empty()) {
      auto t = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      t();
      lock.lock();
    }
    lock.unlock();
    reap();
    ping_pending();
    lock.lock();
  }
}

bool Supervisor::wait_ready(const std::vector<std::shared_ptr<Worker>>& ws,
                            std::chrono::milliseconds timeout, const std::atomic<bool>& cancel,
                            std::string* why, std::shared_ptr<Worker>* culprit) {
  auto deadline = Clock::now() + timeout;
  std::vector<bool> ok(ws.size(), false);
  while (true) {
    bool all = true;
    for (size_t i = 0; i < ws.size(); ++i) {
      if (ok[i]) continue;
      if (ws[i]->pid_ == 0) {
        *why = "the worker " + describe_exit(ws[i]->last_exit_) + " before it passed /ping";
        *culprit = ws[i];
        return false;
      }
      if (ping(ws[i]->port_)) {
        ok[i] = true;
        ws[i]->ready_ = true;
      } else {
        all = false;
      }
    }
    if (all) return true;
    if (cancel) {
      why->clear();
      return false;
    }
    if (Clock::now() >= deadline) {
      for (size_t i = 0; i < ws.size(); ++i)
        if (!ok[i]) {
          *culprit = ws[i];
          break;
        }
      *why = "the worker did not answer /ping with 200 within " +
             std::to_string(timeout.count() / 1000) + " s";
      return false;
    }
    // Polled every 10 ms: a ping costs the worker microseconds, and every ms of latency here is
    // added to Create -> InService.
    std::this_thread::sleep_for(10ms);
  }
}

void Supervisor::stop(const std::shared_ptr<Worker>& w, std::chrono::milliseconds grace) {
  w->stopping_ = true;
  w->supervised_ = false;
  w->ready_ = false;
  pid_t pid = w->pid_.load();
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  auto deadline = Clock::now() + grace;
  while (w->pid_.load() == pid && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
  if (w->pid_.load() == pid) {
    spdlog::warn("worker {} (pid {}) did not stop within {} ms: SIGKILL", w->spec_.label, pid,
                 grace.count());
    ::kill(pid, SIGKILL);
    while (w->pid_.load() == pid) std::this_thread::sleep_for(20ms);
  }
}

void Supervisor::stop_all(std::chrono::milliseconds grace) {
  std::vector<std::shared_ptr<Worker>> ws;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ws = workers_;
  }
  for (auto& w : ws) {
    w->stopping_ = true;
    w->supervised_ = false;
    if (pid_t p = w->pid_.load(); p > 0) ::kill(p, SIGTERM);
  }
  for (auto& w : ws) stop(w, grace);
}

}  // namespace lmstream::control

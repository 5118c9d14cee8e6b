// mpirun self-launch (see launch.h).
#include "dist/launch.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

namespace lmstream::dist {
namespace {
volatile sig_atomic_t child_pid = 0;
void forward(int sig) {
  if (child_pid > 0) kill(pid_t(child_pid), sig);
}
}  // namespace

std::vector<std::string> mpirun_command(const LaunchOptions& o,
                                        const std::vector<std::string>& argv) {
  std::vector<std::string> c = {o.mpirun};
  if (geteuid() == 0) c.push_back("--allow-run-as-root");
  c.insert(c.end(), {"--bind-to", "none", "--mca", "btl_vader_single_copy_mechanism", "none"});
  if (o.hostfile.empty()) {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    if (unsigned(o.ranks) > cores) c.push_back("--oversubscribe");
  } else {
    c.insert(c.end(), {"--hostfile", o.hostfile});
  }
  c.insert(c.end(), {"-np", std::to_string(o.ranks)});
  c.insert(c.end(), argv.begin(), argv.end());
  return c;
}

int relaunch_under_mpirun(const LaunchOptions& o) {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::string> argv;
  for (size_t i = 0; i < raw.size();) {
    const size_t j = raw.find('\0', i);
    argv.push_back(raw.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  char exe[4096] = {0};
  if (readlink("/proc/self/exe", exe, sizeof exe - 1) > 0 && !argv.empty()) argv[0] = exe;
  const std::vector<std::string> cmd = mpirun_command(o, argv);
  std::vector<char*> cargv;
  for (const std::string& s : cmd) cargv.push_back(const_cast<char*>(s.c_str()));
  cargv.push_back(nullptr);
  int pipefd[2];  // reports an exec failure to the parent
  if (pipe2(pipefd, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe: " + std::string(strerror(errno)));
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork: " + std::string(strerror(errno)));
  if (pid == 0) {
    close(pipefd[0]);
    execvp(cargv[0], cargv.data());
    const int e = errno;
    (void)!write(pipefd[1], &e, sizeof e);
    _exit(127);
  }
  close(pipefd[1]);
  int e = 0;
  const bool exec_failed = read(pipefd[0], &e, sizeof e) == sizeof e;
  close(pipefd[0]);
  if (exec_failed) {
    waitpid(pid, nullptr, 0);
    throw std::runtime_error("cannot run " + o.mpirun + ": " + strerror(e) +
                             " (install openmpi-bin, or start the ranks with mpirun yourself)");
  }
  child_pid = pid;
  struct sigaction sa {};
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) sigaction(s, &sa, nullptr);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  child_pid = 0;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

}  // namespace lmstream::dist

// Self-launch for tensor parallelism, as DJL's frontend does: a process that is asked for N ranks
// but was not started by mpirun re-runs its own command line under `mpirun -np N`, with the
// settings a threaded CPU rank needs (--bind-to none; --oversubscribe when N exceeds the cores;
// --allow-run-as-root as root; the vader single-copy mechanism off, which containers without
// CAP_SYS_PTRACE need) and an optional host file for several machines. Signals to the parent are
// forwarded to mpirun, which forwards them to every rank.
#pragma once

#include <string>
#include <vector>

namespace lmstream::dist {

struct LaunchOptions {
  int ranks = 1;
  std::string hostfile;  // mpirun --hostfile; empty = this host
  std::string mpirun = "mpirun";
};

// The mpirun command line that runs argv (argv[0] = the program) with o.ranks ranks.
std::vector<std::string> mpirun_command(const LaunchOptions& o,
                                        const std::vector<std::string>& argv);

// Runs this process's own command line (/proc/self/cmdline, /proc/self/exe) under mpirun and
// returns its exit status (128 + signal when it was killed). Throws std::runtime_error when
// mpirun cannot be started.
int relaunch_under_mpirun(const LaunchOptions& o);

}  // namespace lmstream::dist

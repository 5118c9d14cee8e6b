// Subcommand registration: each cli/cmd_*.cc defines its subcommand with a static Register object,
// so adding a subcommand never touches main.cc.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace lmstream::cli {

// setup(sub) adds the subcommand's options and its callback. A callback reports failure by
// throwing CLI::RuntimeError(exit_code) after printing its message to stderr, or by throwing any
// std::exception (main prints "error: <what()>" and exits 1).
using Setup = std::function<void(CLI::App& sub)>;

struct Register {
  Register(const char* name, const char* description, Setup setup);
};

}  // namespace lmstream::cli

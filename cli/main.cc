// lmstream: entry point. Subcommands register themselves (cli/command.h).
#include <cstdio>
#include <exception>
#include <vector>

#include "cli/command.h"

namespace lmstream::cli {
namespace {
struct Entry {
  const char* name;
  const char* description;
  Setup setup;
};
std::vector<Entry>& registry() {
  static std::vector<Entry> r;
  return r;
}
}  // namespace

Register::Register(const char* name, const char* description, Setup setup) {
  registry().push_back({name, description, std::move(setup)});
}
}  // namespace lmstream::cli

int main(int argc, char** argv) {
  using namespace lmstream::cli;
  CLI::App app{
      "lmstream: streams tokens from Llama-2-family models, on CPU, with TGI/LMI/SageMaker APIs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lmstream 0.1.0");
  for (auto& e : registry()) e.setup(*app.add_subcommand(e.name, e.description));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

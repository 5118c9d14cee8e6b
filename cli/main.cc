// lmstream: entry point. Subcommands register themselves (cli/command.h).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "base/version.h"
#include "cli/command.h"
#include "dist/comm.h"

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
// Levenshtein distance, for "did you mean".
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

CLI::App* find_command(CLI::App& app, std::string_view name) {
  for (CLI::App* s : app.get_subcommands({}))
    if (s->get_name() == name) return s;
  return nullptr;
}
}  // namespace lmstream::cli

int main(int argc, char** argv) {
  using namespace lmstream::cli;
  CLI::App app{
      "lmstream: streams tokens from Llama-2-family models, on CPU, with TGI/LMI/SageMaker APIs"};
  app.name("lmstream");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("lmstream ") + lmstream::base::kVersion);
  // Every option's default is shown in --help, captured from the variable it writes; options
  // whose variable holds a "not given" marker say what not giving them means instead.
  app.option_defaults()->always_capture_default();
  for (auto& e : registry()) e.setup(*app.add_subcommand(e.name, e.description));
  // `lmstream help [COMMAND]`, and an unknown command answered with the closest names.
  if (argc >= 2 && std::string_view(argv[1]) == "help") {
    CLI::App* sub = argc >= 3 ? find_command(app, argv[2]) : nullptr;
    if (argc >= 3 && !sub) {
      std::fprintf(stderr, "error: unknown command '%s'\n%s", argv[2], app.help().c_str());
      return 2;
    }
    std::fputs((sub ? sub->help() : app.help()).c_str(), stdout);
    return 0;
  }
  if (argc >= 2 && argv[1][0] != '-' && !find_command(app, argv[1])) {
    std::string names, close;
    for (auto& e : registry()) {
      names += std::string(names.empty() ? "" : ", ") + e.name;
      if (edit_distance(argv[1], e.name) <= 2 || std::string_view(e.name).rfind(argv[1], 0) == 0)
        close += std::string(close.empty() ? "" : " or ") + "'" + e.name + "'";
    }
    std::fprintf(stderr, "error: unknown command '%s'%s\ncommands: %s\n", argv[1],
                 close.empty() ? "" : ("; did you mean " + close + "?").c_str(), names.c_str());
    std::fprintf(
        stderr,
        "run `lmstream help` for what each does, `lmstream help COMMAND` for its options\n");
    return 2;
  }
  // Under mpirun every rank runs the same command; a rank that fails ends all of them (the others
  // would wait for it in a collective).
  lmstream::dist::Comm& comm = lmstream::dist::Comm::world();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    if (comm.size() > 1 && rc != 0) comm.abort(rc, "bad command line");
    comm.finalize();
    return rc;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    if (comm.size() > 1) comm.abort(1, "rank " + std::to_string(comm.rank()) + ": " + e.what());
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  comm.finalize();
  return 0;
}

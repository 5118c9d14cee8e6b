// `lmstream logits`: logits of every position of a token sequence, as raw float32, for numerical
// checks against an independent reference.
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/common.h"

namespace lmstream::cli {
namespace {

struct LogitsArgs {
  ModelArgs model;
  std::string tokens, out;
  int chunk = 0;
};

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const std::string t = s.substr(i, j - i);
    if (!t.empty()) {
      size_t used = 0;
      const long v = std::stol(t, &used);
      if (used != t.size() || v < 0 || v > INT32_MAX)
        throw std::invalid_argument("bad token id '" + t + "'");
      ids.push_back(int32_t(v));
    }
    i = j + 1;
  }
  return ids;
}

void run(const LogitsArgs& a) {
  Loaded l = load(a.model);
  const std::vector<int32_t> ids = parse_ids(a.tokens);
  if (ids.empty()) throw std::invalid_argument("no tokens given");
  const EngineOptions eo =
      a.model.engine_options(l.model->cfg, KvSizing{.tokens = int64_t(ids.size())});
  Engine engine(*l.model, eo);
  std::vector<int32_t> table(size_t(eo.n_blocks));
  std::iota(table.begin(), table.end(), 0);
  const size_t V = size_t(engine.vocab());
  std::vector<float> logits(ids.size() * V);
  const size_t chunk = a.chunk > 0 ? size_t(a.chunk) : ids.size();
  for (size_t p = 0; p < ids.size(); p += chunk) {
    const size_t n = std::min(chunk, ids.size() - p);
    SeqStep st{std::span<const int32_t>(ids.data() + p, n), int32_t(p), table, true, true};
    engine.step(std::span<const SeqStep>(&st, 1), logits.data() + p * V);
  }
  FILE* f = std::fopen(a.out.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + a.out);
  const size_t w = std::fwrite(logits.data(), sizeof(float), logits.size(), f);
  if (std::fclose(f) != 0 || w != logits.size()) throw std::runtime_error("cannot write " + a.out);
}

const Register reg(
    "logits", "Write the logits of every position of a token sequence (float32)",
    [](CLI::App& app) {
      auto a = std::make_shared<LogitsArgs>();
      a->model.add(app);
      app.add_option("--tokens", a->tokens, "comma-separated token ids")->required();
      app.add_option("--out,-o", a->out, "output file: float32 [n_tokens][vocab]")->required();
      app.add_option("--chunk", a->chunk, "tokens per engine step")->default_str("all at once");
      app.callback([a] { run(*a); });
    });

}  // namespace
}  // namespace lmstream::cli

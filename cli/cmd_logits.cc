// `lmstream logits`: logits of every position of a token sequence, as raw float32, for numerical
// checks against an independent reference; with --greedy N, greedy continuations of many token
// sequences (one batch), each step's top two, as JSON lines. Under mpirun (tensor parallelism)
// rank 0 writes the output and the other ranks execute its steps.
#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"

namespace lmstream::cli {
namespace {

struct LogitsArgs {
  ModelArgs model;
  std::string tokens, out, token_lines;
  int chunk = 0;
  int greedy = 0;
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

// --greedy: every sequence of the file continued by n greedy tokens, all in one ragged batch
// (one prefill step, then n - 1 decode steps). Output: one JSON line per sequence,
// {"tokens": [...], "top2": [[first, second], ...], "top2_logits": [[l1, l2], ...]}.
void run_greedy(const LogitsArgs& a, Loaded& l) {
  std::vector<std::vector<int32_t>> seqs;
  std::ifstream in(a.token_lines);
  if (!in) throw std::invalid_argument("cannot read " + a.token_lines);
  for (std::string line; std::getline(in, line);)
    if (line.find_first_not_of(" \t\r") != std::string::npos) seqs.push_back(parse_ids(line));
  if (seqs.empty()) throw std::invalid_argument(a.token_lines + ": no token sequences");
  const int bs = 16;
  int64_t per_seq = 0;
  for (const auto& q : seqs) {
    if (q.empty()) throw std::invalid_argument(a.token_lines + ": an empty token sequence");
    per_seq = std::max<int64_t>(per_seq, (int64_t(q.size()) + a.greedy + bs - 1) / bs);
  }
  const EngineOptions eo =
      a.model.engine_options(l.model->cfg, KvSizing{.blocks = per_seq * int64_t(seqs.size())});
  Engine engine(*l.model, eo);
  if (run_as_tp_worker(engine)) return;
  const size_t V = size_t(engine.vocab());
  std::vector<std::vector<int32_t>> tables(seqs.size()), out(seqs.size());
  std::vector<std::vector<std::array<int32_t, 2>>> top(seqs.size());
  std::vector<std::vector<std::array<float, 2>>> topl(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    tables[i].resize(size_t(per_seq));
    std::iota(tables[i].begin(), tables[i].end(), int32_t(i * per_seq));
  }
  std::vector<float> logits(seqs.size() * V);
  std::vector<int32_t> last(seqs.size());
  for (int t = 0; t < a.greedy; ++t) {
    std::vector<SeqStep> batch(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i) {
      if (t == 0)
        batch[i] = SeqStep{seqs[i], 0, tables[i], true, false};
      else
        batch[i] = SeqStep{std::span<const int32_t>(&last[i], 1), int32_t(seqs[i].size()) + t - 1,
                           tables[i], true, false};
    }
    engine.step(batch, logits.data());
    for (size_t i = 0; i < seqs.size(); ++i) {
      const float* row = logits.data() + i * V;
      int32_t b1 = 0, b2 = -1;  // ties go to the lower id
      for (int32_t v = 1; v < int32_t(V); ++v) {
        if (row[v] > row[b1]) {
          b2 = b1;
          b1 = v;
        } else if (b2 < 0 || row[v] > row[b2]) {
          b2 = v;
        }
      }
      last[i] = b1;
      out[i].push_back(b1);
      top[i].push_back({b1, b2});
      topl[i].push_back({row[b1], row[b2]});
    }
  }
  std::ofstream f(a.out);
  if (!f) throw std::runtime_error("cannot write " + a.out);
  for (size_t i = 0; i < seqs.size(); ++i)
    f << nlohmann::json{{"tokens", out[i]}, {"top2", top[i]}, {"top2_logits", topl[i]}}.dump()
      << "\n";
  if (!f.flush()) throw std::runtime_error("cannot write " + a.out);
}

void run(const LogitsArgs& a) {
  Loaded l = load(a.model);
  if (a.greedy > 0) return run_greedy(a, l);
  const std::vector<int32_t> ids = parse_ids(a.tokens);
  if (ids.empty()) throw std::invalid_argument("no tokens given");
  const EngineOptions eo =
      a.model.engine_options(l.model->cfg, KvSizing{.tokens = int64_t(ids.size())});
  Engine engine(*l.model, eo);
  if (run_as_tp_worker(engine)) return;
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
      auto* tok = app.add_option("--tokens", a->tokens, "comma-separated token ids");
      auto* lines = app.add_option("--token-lines", a->token_lines,
                                   "with --greedy: a file of comma-separated token ids, one "
                                   "sequence a line");
      tok->excludes(lines);
      app.add_option("--greedy", a->greedy,
                     "continue each sequence by this many greedy tokens; JSON lines of tokens and "
                     "each step's top two to --out")
          ->check(CLI::Range(1, 100000))
          ->needs(lines);
      lines->needs("--greedy");
      app.add_option("--out,-o", a->out, "output file: float32 [n_tokens][vocab]")->required();
      app.add_option("--chunk", a->chunk, "tokens per engine step")->default_str("all at once");
      app.callback([a, tok] {
        if (a->greedy == 0 && tok->count() == 0)
          throw CLI::RequiredError("--tokens (or --token-lines with --greedy)");
        run(*a);
      });
    });

}  // namespace
}  // namespace lmstream::cli

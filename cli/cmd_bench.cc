// `lmstream bench`: prefill and decode speed of the engine on random prompts, alone and with many
// concurrent sequences decoding in one batch. Benchmarks compare it side by side with llama.cpp.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/common.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"

namespace lmstream::cli {
namespace {

struct BenchArgs {
  ModelArgs model;
  int prompt_tokens = 512;
  int gen_tokens = 128;
  std::vector<int> concurrency{1};
  bool json = false;
  uint64_t seed = 1;
};

size_t path_bytes(const std::string& p) {
  namespace fs = std::filesystem;
  if (fs::is_directory(p)) {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(p))
      if (e.is_regular_file()) n += size_t(e.file_size());
    return n;
  }
  return size_t(fs::file_size(p));
}

struct Result {
  int concurrency;
  double prefill_tok_s, decode_tok_s, ttft_s;
};

// N sequences: each prompt prefilled in its own step (TTFT of one request), then all decode
// together, one token each per step, greedy (argmax), for gen_tokens steps.
Result run_level(Engine& engine, const BenchArgs& a, int N, std::mt19937& rng) {
  const int bs = engine.block_size();
  const int per_seq = (a.prompt_tokens + a.gen_tokens + bs - 1) / bs;
  const int V = engine.vocab();
  std::uniform_int_distribution<int32_t> tok(3, V - 1);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(N)), tables(static_cast<size_t>(N));
  for (int i = 0; i < N; ++i) {
    prompts[i].resize(size_t(a.prompt_tokens));
    for (auto& t : prompts[i]) t = tok(rng);
    for (int b = 0; b < per_seq; ++b) tables[i].push_back(i * per_seq + b);
  }
  std::vector<float> logits(size_t(N) * size_t(V));
  std::vector<int32_t> next(static_cast<size_t>(N));
  auto argmax = [&](const float* l) {
    return int32_t(row_max(l, V).index);
  };  // the sampler's greedy pick
  const auto t0 = std::chrono::steady_clock::now();
  double ttft = 0;
  for (int i = 0; i < N; ++i) {
    const auto ts = std::chrono::steady_clock::now();
    SeqStep st{prompts[i], 0, tables[i], true};
    engine.step(std::span<const SeqStep>(&st, 1), logits.data());
    next[i] = argmax(logits.data());
    if (i == 0) ttft = seconds_since(ts);
  }
  const double prefill_s = seconds_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<SeqStep> batch(static_cast<size_t>(N));
  for (int s = 1; s < a.gen_tokens; ++s) {
    for (int i = 0; i < N; ++i)
      batch[i] =
          SeqStep{std::span<const int32_t>(&next[i], 1), a.prompt_tokens + s - 1, tables[i], true};
    engine.step(batch, logits.data());
    for (int i = 0; i < N; ++i) next[i] = argmax(logits.data() + size_t(i) * V);
  }
  const double decode_s = seconds_since(t1);
  return {N, double(N) * a.prompt_tokens / prefill_s,
          a.gen_tokens > 1 ? double(N) * (a.gen_tokens - 1) / decode_s : 0.0, ttft};
}

void run(const BenchArgs& a) {
  Loaded l = load(a.model);
  const int maxc = *std::max_element(a.concurrency.begin(), a.concurrency.end());
  const int bs = EngineOptions{}.block_size;
  const int per_seq = (a.prompt_tokens + a.gen_tokens + bs - 1) / bs;
  if (a.prompt_tokens + a.gen_tokens > l.model->cfg.max_pos)
    throw std::invalid_argument("prompt + generated tokens exceed the model's context");
  // Every concurrent sequence gets whole blocks of its own.
  const EngineOptions eo =
      a.model.engine_options(l.model->cfg, KvSizing{.blocks = int64_t(per_seq) * maxc});
  Engine engine(*l.model, eo);
  std::fprintf(stderr, "[lmstream] memory: %s\n", describe(engine.memory_report()).c_str());
  if (run_as_tp_worker(engine)) return;  // mpirun: rank 0 measures, the others execute
  std::mt19937 rng(uint32_t(a.seed));
  const size_t model_bytes = path_bytes(l.path);
  const size_t kv_used =
      Engine::kv_bytes_per_token(l.model->cfg, eo.kv_type) * size_t(a.prompt_tokens + a.gen_tokens);
  for (int n : a.concurrency) {
    const Result r = run_level(engine, a, n, rng);
    const size_t rss = resident_bytes();
    const MemoryReport mem = engine.memory_report();
    if (a.json) {
      std::printf(
          "{\"concurrency\":%d,\"prompt_tokens\":%d,\"gen_tokens\":%d,\"threads\":%d,"
          "\"prefill_tok_s\":%.3f,\"decode_tok_s\":%.3f,\"ttft_s\":%.4f,\"rss_bytes\":%zu,"
          "\"model_bytes\":%zu,\"kv_bytes\":%zu,\"kernels\":\"%s\",\"thp\":\"%s\","
          "\"weight_arena_bytes\":%zu,\"weight_huge_bytes\":%zu,\"kv_huge_bytes\":%zu,"
          "\"tensor_parallel\":%d}\n",
          n, a.prompt_tokens, a.gen_tokens, engine.threads(), r.prefill_tok_s, r.decode_tok_s,
          r.ttft_s, rss, model_bytes, kv_used * size_t(n), kernels_target_name(),
          mem.thp_mode.c_str(), mem.weight_arena_bytes, mem.weight_huge_bytes, mem.kv_huge_bytes,
          engine.tp_size());
    } else {
      std::printf(
          "concurrency %2d: prefill %.1f tok/s, decode %.1f tok/s (aggregate), TTFT %.1f ms, RSS "
          "%.1f MiB (model %.1f MiB, KV %.1f MiB), %d threads, %s\n",
          n, r.prefill_tok_s, r.decode_tok_s, r.ttft_s * 1e3, rss / 1048576.0,
          model_bytes / 1048576.0, kv_used * n / 1048576.0, engine.threads(),
          kernels_target_name());
    }
    std::fflush(stdout);
  }
}

const Register reg(
    "bench", "Measure prefill and decode speed (random prompts, greedy)", [](CLI::App& app) {
      auto a = std::make_shared<BenchArgs>();
      a->model.add(app, /*required=*/true);
      app.add_option("--prompt-tokens", a->prompt_tokens)->check(CLI::Range(1, 1 << 20));
      app.add_option("--gen-tokens", a->gen_tokens)->check(CLI::Range(1, 1 << 20));
      app.add_option("--concurrency", a->concurrency, "sequences decoding together (list)")
          ->delimiter(',')
          ->check(CLI::Range(1, 4096));
      app.add_option("--seed", a->seed);
      app.add_flag("--json", a->json, "one JSON object per concurrency level");
      app.callback([a] { run(*a); });
    });

}  // namespace
}  // namespace lmstream::cli

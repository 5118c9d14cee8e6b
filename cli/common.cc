// Shared CLI pieces.
#include "cli/common.h"

#include <cstdio>
#include <fstream>
#include <optional>
#include <stdexcept>

#include "base/strings.h"
#include "cli/demo_model.h"
#include "dist/comm.h"
#include "engine/shard.h"
#include "store/progress.h"
#include "store/resolve.h"

namespace lmstream::cli {

void ModelArgs::add(CLI::App& app, bool required) {
  auto* o = app.add_option(
      "--model,-m", path,
      "GGUF file, Hugging Face model directory or Hub id org/name[:QUANT] (default: the embedded "
      "demo model)");
  if (required) o->required();
  app.add_option("--revision", revision,
                 "Hub branch, tag or commit of a Hub model (env HF_MODEL_REVISION; main)");
  app.add_option("--gguf-file", gguf_file, "the GGUF file of a Hub repository");
  app.add_option("--quantize", quantize, "convert F32/F16/BF16 weights at load")
      ->check(CLI::IsMember({"q8_0", "q4_0"}));
  app.add_option("--threads,-t", threads, "compute threads")->default_str("all cores");
  app.add_option("--kv-type", kv_type, "KV cache element type")
      ->check(CLI::IsMember({"f16", "f32"}));
}

LoadOptions ModelArgs::load_options() const {
  LoadOptions o;
  if (!quantize.empty()) o.quantize = dtype_from_name(quantize);
  return o;
}

KvType ModelArgs::kv() const { return kv_type == "f32" ? KvType::F32 : KvType::F16; }

// The shard load() made of the model (set once, before any engine is built; one model per
// process).
static std::optional<ShardPlan> tp_shard;

EngineOptions ModelArgs::engine_options(const LlamaConfig& c, const KvSizing& kv_sizing) const {
  EngineOptions eo;
  eo.threads = threads;
  eo.kv_type = kv();
  eo.n_blocks = Engine::kv_blocks(c, eo.kv_type, eo.block_size, kv_sizing);
  if (tp_shard) {
    eo.tp_comm = &dist::Comm::world();
    eo.shard = *tp_shard;
  }
  return eo;
}

// The embedded demo model, or what --model names resolved to a local path (downloading it).
static std::string use_demo_model_if_empty(const ModelArgs& a) {
  if (a.path.empty()) return use_demo_model();
  store::ResolveOptions ro;
  if (!a.revision.empty()) ro.revision = a.revision;
  if (!a.gguf_file.empty()) ro.gguf_file = a.gguf_file;
  ro.download = store::DownloadOptions::from_env();
  store::Progress progress;
  ro.download.progress = &progress;
  return store::resolve_model(a.path, ro);
}

Loaded load(const ModelArgs& a) {
  Loaded l;
  l.path = use_demo_model_if_empty(a);
  l.model = load_model(l.path, a.load_options());
  l.tokenizer = make_tokenizer(l.model->tokenizer);
  dist::Comm& comm = dist::Comm::world();
  if (comm.size() > 1) {
    try {
      tp_shard = plan_shard(*l.model, comm.rank(), comm.size());
    } catch (const std::exception& e) {
      comm.abort(2, std::string("rank ") + std::to_string(comm.rank()) + ": " + e.what());
    }
    l.model = shard_model(std::move(l.model), *tp_shard);
  }
  return l;
}

bool run_as_tp_worker(Engine& e) {
  if (e.tp_rank() == 0) return false;
  e.run_worker();
  const MemoryReport m = e.memory_report();
  std::fprintf(stderr,
               "[lmstream] rank %d: resident %.1f MiB, packed weights %.1f MiB, KV %.1f MiB\n",
               e.tp_rank(), double(resident_bytes()) / 1048576.0,
               double(m.weight_arena_bytes) / 1048576.0, double(m.kv_bytes) / 1048576.0);
  return true;
}

void BatchArgs::add(CLI::App& app) {
  app.add_option("--max-batch-total-tokens", max_batch_total_tokens,
                 "KV cache capacity in tokens (TGI's MAX_BATCH_TOTAL_TOKENS; default: what "
                 "--kv-cache-memory holds)")
      ->default_str("")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 34));
  app.add_option("--kv-cache-memory", kv_cache_memory,
                 "KV cache memory budget when --max-batch-total-tokens is not given")
      ->capture_default_str();
  app.add_option("--max-rolling-batch-size", max_rolling_batch_size,
                 "sequences in the batch at most (LMI's option.max_rolling_batch_size)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--max-batch-prefill-tokens", max_batch_prefill_tokens,
                 "prompt tokens per engine step at most")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
}

EngineOptions BatchArgs::engine_options(const ModelArgs& m, const LlamaConfig& c) const {
  const EngineOptions eo =
      m.engine_options(c, KvSizing{.tokens = max_batch_total_tokens,
                                   .memory_bytes = base::parse_byte_size(kv_cache_memory)});
  const size_t per_tok = Engine::kv_bytes_per_token(c, eo.kv_type);
  std::fprintf(stderr, "[lmstream] KV cache: %d blocks of %d tokens = %lld tokens, %.1f MiB (%s)\n",
               eo.n_blocks, eo.block_size, static_cast<long long>(eo.n_blocks) * eo.block_size,
               double(per_tok) * eo.n_blocks * eo.block_size / 1048576.0, m.kv_type.c_str());
  return eo;
}

size_t resident_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return size_t(std::stoull(line.substr(6))) * 1024;
  }
  return 0;
}

}  // namespace lmstream::cli

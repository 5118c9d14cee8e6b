// Backend over Model + Tokenizer + Engine + Scheduler (see model_backend.h).
#include "server/model_backend.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <stdexcept>
#include <thread>

#include "chat/formatter.h"
#include "dist/comm.h"
#include "engine/shard.h"
#include "server/tp_info.h"
#include "store/hub_cache.h"
#include "store/sources.h"
#include "tokenizer/tokenizer.h"

namespace lmstream::server {
namespace {

// The packed-weight cache from the environment: LMSTREAM_PACKED_CACHE=off turns it off, =on uses
// it for every model, unset (auto) for models whose packed weights take 256 MiB or more;
// LMSTREAM_PACKED_CACHE_DIR is its directory (default $LMSTREAM_CACHE/packed).
void set_packed_cache(EngineOptions& eo) {
  const store::Env env = store::process_env();
  const std::string mode = env("LMSTREAM_PACKED_CACHE").value_or("auto");
  if (mode == "off" || mode == "0" || mode == "false") return;
  if (mode != "on" && mode != "1" && mode != "true" && mode != "auto" && !mode.empty())
    throw std::invalid_argument("LMSTREAM_PACKED_CACHE must be on, off or auto, not \"" + mode +
                                "\"");
  const auto dir = env("LMSTREAM_PACKED_CACHE_DIR");
  eo.packed_cache_dir = dir && !dir->empty() ? *dir : store::lmstream_cache_dir(env) + "/packed";
  eo.packed_cache_min_bytes = mode == "auto" || mode.empty() ? size_t(256) << 20 : 0;
  eo.packed_cache_log = [](const std::string& m) { spdlog::info("{}", m); };
}

// The model (this rank's shard under tensor parallelism) and the engine options for it; the one
// rule rank 0 and the workers share, so every rank sizes the same KV pool.
EngineOptions load_for_engine(const BackendOptions& o, std::unique_ptr<Model>& model,
                              std::string& shard_desc) {
  model = load_model(o.model_path, o.load);
  EngineOptions eo;
  dist::Comm& comm = dist::Comm::world();
  if (comm.size() > 1) {
    eo.tp_comm = &comm;
    eo.shard = plan_shard(*model, comm.rank(), comm.size());
    shard_desc = eo.shard.describe(model->cfg);  // of the whole model, before slicing
    model = shard_model(std::move(model), eo.shard);
    spdlog::info("tensor parallel: {}", shard_desc);
  }
  eo.threads = o.threads;
  eo.kv_type = o.kv_type;
  KvSizing kv = o.kv;
  kv.min_tokens = model->cfg.max_pos;  // a request of the model's full context always fits
  eo.n_blocks = Engine::kv_blocks(model->cfg, eo.kv_type, eo.block_size, kv);
  // The cache is keyed by the model file, not by a rank's slice of it: one process only.
  if (comm.size() == 1) set_packed_cache(eo);
  return eo;
}

// Each rank's shard description, on rank 0 (a collective: every rank calls it once).
std::vector<std::string> gather_shards(const Engine& e, const std::string& desc) {
  if (!e.shard()) return {};
  return dist::Comm::world().gather_strings(desc);
}

class ModelBackend final : public Backend {
 public:
  explicit ModelBackend(const BackendOptions& o) {
    std::string shard_desc;
    const EngineOptions eo = load_for_engine(o, model_, shard_desc);
    tok_ = make_tokenizer(model_->tokenizer);
    engine_ = std::make_unique<Engine>(*model_, eo);
    set_tp_info({engine_->tp_size(), gather_shards(*engine_, shard_desc)});
    info_.kv_tokens = int64_t(eo.n_blocks) * eo.block_size;
    spdlog::info("KV cache: {} blocks of {} tokens = {} tokens, {:.1f} MiB ({})", eo.n_blocks,
                 eo.block_size, info_.kv_tokens, double(engine_->kv_bytes()) / 1048576.0,
                 eo.kv_type == KvType::F16 ? "f16" : "f32");
    spdlog::info("memory: {}", describe(engine_->memory_report()));
    sched_ = std::make_unique<Scheduler>(*engine_, *tok_, o.sched);
    spdlog::info("prefix caching: {}", o.sched.prefix_caching
                                           ? "on (full KV blocks shared across requests, LRU)"
                                           : "off");
    info_.id = o.model_id.empty() ? o.model_path : o.model_id;
    info_.name = model_->name;
    info_.dtype = model_->layers.empty() ? "unknown" : dtype_name(model_->layers[0].wq.type);
    info_.max_position = model_->cfg.max_pos;
    info_.vocab_size = model_->cfg.vocab_size;
    info_.eos_id = tok_->eos();
    info_.max_new_tokens_default = model_->generation.max_new_tokens;
    // The model's chat_template, checked once on a one-turn conversation: a template this build
    // cannot render is reported now, and chat then uses the built-in Llama 2 format.
    chat_ = std::make_unique<ChatFormatter>(model_->tokenizer, *tok_, o.chat_template);
    if (chat_->source() == ChatFormatter::Source::kTemplateFile)
      spdlog::info("chat: the template file {} ({} bytes)", o.chat_template,
                   chat_->chat_template().size());
    else if (chat_->source() == ChatFormatter::Source::kModelTemplate)
      spdlog::info("chat: the model's chat_template ({} bytes)", chat_->chat_template().size());
    else if (!chat_->fallback_reason().empty())
      spdlog::warn(
          "the model's chat_template cannot be rendered ({}); chat uses the built-in Llama 2 "
          "format",
          chat_->fallback_reason());
    else
      spdlog::info("chat: no chat_template in the model; the built-in Llama 2 format");
  }
  ~ModelBackend() override {
    sched_.reset();  // stops the engine thread before the engine and model go
    engine_.reset();
  }
  const ModelInfo& info() const override { return info_; }
  std::shared_ptr<RequestStream> submit(GenerateRequest req) override {
    return sched_->submit(std::move(req));
  }
  SchedulerStats stats() const override { return sched_->stats(); }
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    return tok_->encode(text, add_bos, /*parse_special=*/true);
  }
  std::string token_text(int32_t id) const override {
    if (id < 0 || id >= tok_->n_vocab()) return "";
    return tok_->is_special(id) ? tok_->piece(id) : tok_->token_bytes(id);
  }
  bool is_special(int32_t id) const override {
    return id >= 0 && id < tok_->n_vocab() && tok_->is_special(id);
  }
  std::vector<int32_t> chat_prompt(const std::vector<ChatMessage>& messages) const override {
    return chat_->apply(messages, /*add_generation_prompt=*/true);
  }
  int n_blocks() const { return engine_->n_blocks(); }

 private:
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Scheduler> sched_;
  std::unique_ptr<ChatFormatter> chat_;
  ModelInfo info_;
};

}  // namespace

void run_tp_worker(const BackendOptions& o) {
  // mpirun forwards SIGTERM/SIGINT to every rank: rank 0 drains and then shuts the workers down
  // with a SHUTDOWN plan, so a worker ignores them (mpirun's own SIGKILL still ends a hung job).
  std::signal(SIGTERM, SIG_IGN);
  std::signal(SIGINT, SIG_IGN);
  std::unique_ptr<Model> model;
  std::string shard_desc;
  const EngineOptions eo = load_for_engine(o, model, shard_desc);
  Engine engine(*model, eo);
  gather_shards(engine, shard_desc);
  spdlog::info("tensor parallel rank {}: executing rank 0's steps", engine.tp_rank());
  engine.run_worker();
  spdlog::info("tensor parallel rank {}: shut down by rank 0", engine.tp_rank());
}

std::shared_ptr<Backend> load_backend(const BackendOptions& o) {
  if (o.test_load_delay_ms > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(o.test_load_delay_ms));
  if (!o.test_load_gate.empty())
    while (::access(o.test_load_gate.c_str(), F_OK) != 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto b = std::make_shared<ModelBackend>(o);
  // Warm-up: one real prefill + decode step through the scheduler.
  GenerateRequest g;
  g.prompt = b->encode("liveness", true);
  g.stop.max_new_tokens = 1;
  auto rs = b->submit(std::move(g));
  StreamEvent ev;
  for (;;) {
    if (!rs->wait_pop(ev, std::chrono::minutes(10)))
      throw std::runtime_error("warm-up step did not finish in 10 minutes");
    if (auto* fe = std::get_if<FinalEvent>(&ev)) {
      if (fe->reason == FinishReason::kError)
        throw std::runtime_error("warm-up step failed: " + fe->error);
      break;
    }
  }
  spdlog::info("model {} loaded: {} KV blocks, warm-up step done", o.model_path, b->n_blocks());
  return b;
}

}  // namespace lmstream::server

// SchedulerCore: the loop that turns StepPlans into engine steps and token events.
#include "scheduler/scheduler_core.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace lmstream {

constexpr int kPromptLogitsChunk = 256;
constexpr size_t kMaxCacheSalt = 1024;

static PolicyConfig make_policy_config(const Executor& ex, const SchedulerOptions& o) {
  if (o.max_rolling_batch_size < 1)
    throw std::invalid_argument("max_rolling_batch_size must be at least 1");
  if (o.max_batch_prefill_tokens < 1)
    throw std::invalid_argument("max_batch_prefill_tokens must be at least 1");
  if (ex.block_size() < 1)
    throw std::invalid_argument("the engine's block size must be at least 1");
  if (ex.n_blocks() < 1) throw std::invalid_argument("the engine has no KV blocks");
  PolicyConfig c;
  c.max_running = o.max_rolling_batch_size;
  c.max_prefill_tokens = o.max_batch_prefill_tokens;
  c.block_size = ex.block_size();
  c.max_pos = ex.max_pos();
  c.prefix_caching = o.prefix_caching;
  c.cache_namespace = o.cache_namespace;
  return c;
}

SchedulerCore::SchedulerCore(Executor& ex, const Tokenizer& tok, CoreOptions opts)
    : ex_(ex),
      tok_(tok),
      opts_(std::move(opts)),
      pcfg_(make_policy_config(ex, opts_.sched)),
      st_(ex.n_blocks()) {
  pool_tokens_ = st_.pool.n_blocks() * pcfg_.block_size;
  cap_ = sequence_capacity(st_, pcfg_);
  stats_.blocks_free = st_.pool.n_free();
  stats_.prefix_caching = pcfg_.prefix_caching;
}

SchedulerCore::~SchedulerCore() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  drain_inbox();
  std::vector<uint64_t> ids;
  for (auto& [id, s] : seqs_) ids.push_back(id);
  for (uint64_t id : ids) finish_seq(id, FinishReason::kCancelled);
}

void SchedulerCore::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { loop(); });
}

static std::string validate(const GenerateRequest& req, int vocab, int cap, int pool_tokens,
                            int max_pos) {
  if (req.prompt.empty()) return "the prompt is empty: at least one input token is needed";
  for (size_t i = 0; i < req.prompt.size(); ++i)
    if (req.prompt[i] < 0 || req.prompt[i] >= vocab)
      return "input token " + std::to_string(i) + " has id " + std::to_string(req.prompt[i]) +
             ", outside the vocabulary [0, " + std::to_string(vocab) + ")";
  if (req.stop.max_new_tokens < 1) return "max_new_tokens must be at least 1";
  if (req.cache_salt.size() > kMaxCacheSalt)
    return "cache_salt has " + std::to_string(req.cache_salt.size()) + " bytes; at most " +
           std::to_string(kMaxCacheSalt) + " are allowed";
  if (req.prompt.size() + 1 > size_t(cap))
    return "the prompt has " + std::to_string(req.prompt.size()) +
           " tokens; with one new token that exceeds " +
           (max_pos > 0 && max_pos <= pool_tokens
                ? "the model's context of " + std::to_string(max_pos) + " tokens"
                : "the whole KV cache of " + std::to_string(pool_tokens) + " tokens");
  return "";
}

std::shared_ptr<RequestStream> SchedulerCore::submit(GenerateRequest req) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lk(mu_);
    id = next_id_++;
  }
  auto stream = std::make_shared<RequestStream>(id);
  std::string err = validate(req, ex_.vocab(), cap_, pool_tokens_, pcfg_.max_pos);
  std::unique_ptr<Sequence> seq;
  if (err.empty()) {
    try {
      seq = std::make_unique<Sequence>(req, stream, tok_);
    } catch (const std::exception& e) {
      err = e.what();
    }
  }
  if (!err.empty()) {
    FinalEvent fin;
    fin.reason = FinishReason::kError;
    fin.error_kind = GenerationErrorKind::kRejected;
    fin.error = err;
    fin.input_tokens = int(req.prompt.size());
    fin.seed = req.sampling.seed;
    stream->push(std::move(fin));
    return stream;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    inbox_.push_back(std::move(seq));
  }
  cv_.notify_all();
  return stream;
}

void SchedulerCore::drain_inbox() {
  std::vector<std::unique_ptr<Sequence>> in;
  {
    std::lock_guard<std::mutex> lk(mu_);
    in.swap(inbox_);
  }
  for (auto& s : in) {
    uint64_t id = s->id();
    add_sequence(st_, id, int(s->tokens().size()));
    SeqState& ss = st_.seqs.at(id);
    ss.tokens = &s->tokens();
    ss.salt = s->cache_salt();
    // Prompt logprobs need the logits of every prompt position, which the cache does not keep:
    // such a request computes its whole prompt (and still publishes its blocks for others).
    ss.use_cache = !s->wants_prompt_logits();
    // Prompt logprobs need every prefill row's logits (vocab floats each): smaller chunks bound
    // that buffer (256 rows x 32000 = 32 MB).
    if (s->wants_prompt_logits()) st_.seqs.at(id).max_chunk = kPromptLogitsChunk;
    seqs_.emplace(id, std::move(s));
  }
}

void SchedulerCore::finish_seq(uint64_t id, FinishReason r, const std::string& error) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return;
  it->second->finish(r, error);
  remove_sequence(st_, id, pcfg_);
  seqs_.erase(it);
}

bool SchedulerCore::run_once() {
  drain_inbox();
  for (auto& [id, s] : seqs_)
    if (s->cancel_requested()) st_.seqs.at(id).cancelled = true;
  if (st_.seqs.empty()) {
    update_stats(nullptr);
    return false;
  }
  StepPlan plan = schedule_step(st_, pcfg_);
  for (uint64_t id : plan.cancelled) {
    // The policy already freed the blocks and forgot the sequence; end its stream.
    auto it = seqs_.find(id);
    if (it != seqs_.end()) {
      it->second->finish(FinishReason::kCancelled);
      seqs_.erase(it);
    }
  }
  for (uint64_t id : plan.admitted) {
    seqs_.at(id)->mark_admitted();
    seqs_.at(id)->set_cached_tokens(st_.seqs.at(id).cached_tokens);
  }
  for (uint64_t id : plan.preempted) seqs_.at(id)->mark_preempted();
  if (!plan.chunks.empty()) execute(plan);
  if (opts_.check_each_step) {
    std::string err = check_state(st_, pcfg_);
    if (err.empty() && st_.seqs.size() != seqs_.size()) err = "policy and scheduler disagree";
    if (!err.empty()) {
      std::fprintf(stderr, "lmstream scheduler: KV block invariant broken: %s\n", err.c_str());
      std::abort();
    }
  }
  update_stats(&plan);
  if (opts_.on_step) opts_.on_step(plan);
  return !plan.chunks.empty() || !plan.cancelled.empty();
}

void SchedulerCore::execute(const StepPlan& plan) {
  const int vocab = ex_.vocab();
  batch_.clear();
  size_t rows = 0;
  for (const ScheduledChunk& c : plan.chunks) {
    const Sequence& seq = *seqs_.at(c.id);
    SeqStep s;
    s.tokens = std::span<const int32_t>(seq.tokens()).subspan(size_t(c.start), size_t(c.n));
    s.pos = c.start;
    s.block_table = st_.seqs.at(c.id).blocks;
    s.want_logits = c.want_logits;
    s.all_logits = seq.wants_prompt_logits();
    batch_.push_back(s);
    rows += s.all_logits ? size_t(c.n) : size_t(c.want_logits);
  }
  logits_.resize(rows * size_t(vocab));
  try {
    ex_.step(batch_, logits_.data());
  } catch (const std::exception& e) {
    // A malformed batch is a scheduler bug; fail its requests loudly rather than loop on it.
    for (const ScheduledChunk& c : plan.chunks)
      finish_seq(c.id, FinishReason::kError, std::string("engine step failed: ") + e.what());
    return;
  }
  size_t row = 0;
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const ScheduledChunk& c = plan.chunks[i];
    st_.seqs.at(c.id).n_computed += c.n;
    Sequence& seq = *seqs_.at(c.id);
    if (batch_[i].all_logits) {
      seq.on_prompt_logits(c.start, logits_.data() + row * size_t(vocab), c.n, vocab);
      row += size_t(c.n) - 1;  // the chunk's last row is the sampling row below
      if (!c.want_logits) {
        ++row;
        continue;
      }
    } else if (!c.want_logits) {
      continue;
    }
    std::span<float> lg(logits_.data() + row * size_t(vocab), size_t(vocab));
    ++row;
    bool done;
    try {
      done = seq.on_logits(lg, cap_);
    } catch (const std::exception& e) {
      finish_seq(c.id, FinishReason::kError, std::string("sampling failed: ") + e.what());
      continue;
    }
    if (!done && opts_.sched.fail_after_tokens > 0 &&
        seq.generated() >= opts_.sched.fail_after_tokens) {
      finish_seq(c.id, FinishReason::kError, "injected engine failure (fail_after_tokens)");
      continue;
    }
    if (done) {
      remove_sequence(st_, c.id, pcfg_);
      seqs_.erase(c.id);
    } else {
      st_.seqs.at(c.id).n_tokens = int(seq.tokens().size());
    }
  }
}

void SchedulerCore::update_stats(const StepPlan* plan) {
  std::lock_guard<std::mutex> lk(mu_);
  stats_.running = int(st_.running.size());
  stats_.waiting = int(st_.waiting.size() + inbox_.size());
  stats_.blocks_used = st_.pool.n_used();
  stats_.blocks_free = st_.pool.n_free();
  if (plan && !plan->chunks.empty()) {
    stats_.steps++;
    stats_.last_batch_size = int(plan->chunks.size());
  }
  if (plan) {
    stats_.preemptions += plan->preempted.size();
    stats_.lookup_tokens += uint64_t(plan->lookup_tokens);
    stats_.cached_tokens += uint64_t(plan->cached_tokens);
  }
  stats_.prefix_caching = pcfg_.prefix_caching;
  stats_.cached_blocks = st_.pool.n_cached();
  stats_.evictions = st_.pool.evictions();
}

SchedulerStats SchedulerCore::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

std::string SchedulerCore::check() const {
  std::string err = check_state(st_, pcfg_);
  if (err.empty() && st_.seqs.size() != seqs_.size()) err = "policy and scheduler disagree";
  return err;
}

void SchedulerCore::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !inbox_.empty() || !seqs_.empty(); });
      if (stop_) return;
    }
    const bool ran = run_once();
    if (ran && opts_.sched.step_delay_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(opts_.sched.step_delay_ms));
  }
}

}  // namespace lmstream

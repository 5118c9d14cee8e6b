// `lmstream generate`: stream one completion to stdout, token by token, with timings on stderr, or
// many (--prompts) through the rolling batch. Both run through the Scheduler, whose Sequence
// decides every token and finish reason: this file has no generation loop of its own.
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "chat/formatter.h"
#include "cli/command.h"
#include "cli/common.h"
#include "cli/prompts_file.h"
#include "engine/sampler.h"
#include "scheduler/scheduler.h"

#include <fstream>
#include <iostream>

namespace lmstream::cli {
namespace {

struct GenerateArgs {
  ModelArgs model;
  std::string prompt, system;
  bool chat = false;
  std::string chat_template;  // template file overriding the model's (with --chat)
  int max_new_tokens = 64;
  bool do_sample = false;
  float temperature = 1.f, top_p = 1.f, typical_p = 1.f, repetition_penalty = 1.f;
  int top_k = 0;
  int64_t seed = -1;
  std::vector<std::string> stop;
  bool print_ids = false;
  bool ignore_eos = false;
  // Many prompts through the rolling batch.
  std::string prompts_file, out_dir;
  int parallel = 8;
  bool jsonl = false;
  BatchArgs batch;
};

void write_out(const std::string& s) {
  if (s.empty()) return;
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

SamplingParams sampling_params(const GenerateArgs& a) {
  SamplingParams sp;
  sp.temperature = a.temperature;
  sp.top_k = a.top_k;
  sp.top_p = a.top_p;
  sp.typical_p = a.typical_p;
  sp.repetition_penalty = a.repetition_penalty;
  sp.do_sample = a.do_sample || sp.warpers_active();
  sp.seed = a.seed >= 0 ? uint64_t(a.seed) : std::random_device{}();
  return sp;
}

// --prompts FILE: every line through the scheduler, --parallel at a time.
void run_batch(const GenerateArgs& a, const Model& m, const Tokenizer& tok) {
  std::ifstream in(a.prompts_file);
  if (!in) throw std::runtime_error("cannot read " + a.prompts_file);
  Engine engine(m, a.batch.engine_options(a.model, m.cfg));
  SchedulerOptions so;
  so.max_rolling_batch_size = a.batch.max_rolling_batch_size;
  so.max_batch_prefill_tokens = a.batch.max_batch_prefill_tokens;
  Scheduler sched(engine, tok, so);
  PromptsFileOptions po;
  po.parallel = a.parallel;
  po.jsonl = a.jsonl;
  po.out_dir = a.out_dir;
  po.defaults.sampling = sampling_params(a);
  po.defaults.stop.max_new_tokens = a.max_new_tokens;
  po.defaults.stop.stop = a.stop;
  po.defaults.stop.include_stop = false;
  po.defaults.stop.ignore_eos = a.ignore_eos;
  const PromptsFileSummary sum = run_prompts_file(sched, tok, in, std::cout, po);
  std::cout.flush();
  std::fprintf(stderr,
               "[lmstream] %d requests (%d failed), %llu tokens generated in %.2f s: %.1f tok/s "
               "aggregate; %d threads\n",
               sum.requests, sum.errors, static_cast<unsigned long long>(sum.generated_tokens),
               sum.seconds, sum.seconds > 0 ? double(sum.generated_tokens) / sum.seconds : 0.0,
               engine.threads());
  if (sum.errors > 0) throw CLI::RuntimeError(1);
}

void run(const GenerateArgs& a) {
  Loaded l = load(a.model);
  const Model& m = *l.model;
  const Tokenizer& tok = *l.tokenizer;
  if (!a.prompts_file.empty()) return run_batch(a, m, tok);
  if (a.prompt.empty()) throw std::invalid_argument("give --prompt TEXT or --prompts FILE");

  std::vector<int32_t> prompt;
  if (a.chat) {
    // The prompt serve would build (chat/formatter.h): --chat-template, else the model's own
    // chat_template, else the built-in Llama 2 format.
    const ChatFormatter chat(m.tokenizer, tok, a.chat_template);
    if (!chat.fallback_reason().empty())
      std::fprintf(stderr,
                   "[lmstream] warning: the model's chat_template cannot be rendered (%s); using "
                   "the built-in Llama 2 format\n",
                   chat.fallback_reason().c_str());
    std::vector<ChatMessage> msgs;
    if (!a.system.empty()) msgs.push_back({"system", a.system});
    msgs.push_back({"user", a.prompt});
    prompt = chat.apply(msgs, /*add_generation_prompt=*/true);
  } else {
    prompt = tok.encode(a.prompt, /*add_bos=*/true, /*parse_special=*/true);
  }
  if (prompt.empty()) throw std::invalid_argument("the prompt is empty");
  if (int(prompt.size()) >= m.cfg.max_pos)
    throw std::invalid_argument("the prompt has " + std::to_string(prompt.size()) +
                                " tokens; the model's context is " + std::to_string(m.cfg.max_pos));

  // One request through the scheduler's loop (scheduler/sequence.cc), the one `serve` and
  // `--prompts` use, so sampling, stop strings and finish reasons are the same everywhere. The
  // KV pool holds just this request, and its whole prompt is prefilled in one step.
  const int total = std::min<int>(m.cfg.max_pos, int(prompt.size()) + a.max_new_tokens);
  Engine engine(m, a.model.engine_options(m.cfg, KvSizing{.tokens = total}));
  SchedulerOptions so;
  so.max_rolling_batch_size = 1;
  so.max_batch_prefill_tokens = int(prompt.size());
  Scheduler sched(engine, tok, so);

  GenerateRequest req;
  req.prompt = prompt;
  req.sampling = sampling_params(a);
  req.stop.max_new_tokens = a.max_new_tokens;
  req.stop.stop = a.stop;
  req.stop.include_stop = false;
  req.stop.ignore_eos = a.ignore_eos;
  const std::shared_ptr<RequestStream> stream = sched.submit(std::move(req));

  std::vector<int32_t> generated;
  FinalEvent fin;
  for (;;) {
    StreamEvent ev;
    if (!stream->wait_pop(ev, std::chrono::seconds(60))) continue;
    if (auto* t = std::get_if<TokenEvent>(&ev)) {
      generated.push_back(t->id);
      write_out(t->emit);
    } else {
      fin = std::get<FinalEvent>(std::move(ev));
      break;
    }
  }
  write_out(fin.tail);
  if (fin.reason == FinishReason::kError) throw std::runtime_error(fin.error);
  // Seconds since submit: prefill ran from leaving the queue to prefill_s.
  const double prefill_s = fin.prefill_s - fin.queued_s;
  const double ttft_s = fin.first_token_s;
  const int decode_steps = int(generated.size()) - 1;
  std::fprintf(stdout, "\n");
  std::fflush(stdout);
  std::fprintf(stderr,
               "[lmstream] prompt %zu tokens, generated %zu (%s); time to first token %.1f ms; "
               "prefill %.1f tok/s; decode %.1f tok/s; seed %llu; %d threads, %s\n",
               prompt.size(), generated.size(), finish_reason_name(fin.reason), ttft_s * 1e3,
               prefill_s > 0 ? double(prompt.size()) / prefill_s : 0.0,
               decode_steps > 0 ? decode_steps / (fin.total_s - ttft_s) : 0.0,
               static_cast<unsigned long long>(fin.seed), engine.threads(), m.name.c_str());
  if (a.print_ids) {
    std::string ids = "[";
    for (size_t i = 0; i < generated.size(); ++i)
      ids += (i ? "," : "") + std::to_string(generated[i]);
    std::fprintf(stderr, "%s]\n", ids.c_str());
  }
}

const Register reg("generate", "Stream a completion of a prompt to stdout", [](CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  a->model.add(app);
  auto* prompt =
      app.add_option("--prompt,-p", a->prompt, "prompt text (special tokens like <s> are parsed)");
  app.add_option("--prompts", a->prompts_file,
                 "file of prompts, one per line (or JSON objects with per-line parameters), run "
                 "through the rolling batch")
      ->excludes(prompt);
  app.add_option("--parallel", a->parallel, "with --prompts: requests in flight at once")
      ->check(CLI::Range(1, 4096));
  app.add_flag("--jsonl", a->jsonl, "with --prompts: JSON lines tagged by request");
  app.add_option("--out-dir", a->out_dir, "with --prompts: stream request i to OUT_DIR/i.txt");
  a->batch.add(app);
  app.add_option("--system", a->system, "system prompt (with --chat)");
  auto* chat =
      app.add_flag("--chat", a->chat,
                   "format the prompt (and --system) as a chat with the model's chat_template "
                   "(the built-in Llama 2 format when it has none), as serve's chat routes do");
  app.add_option("--chat-template", a->chat_template,
                 "with --chat: a Jinja chat template file to use instead of the model's")
      ->check(CLI::ExistingFile)
      ->needs(chat);
  app.add_option("--max-new-tokens,-n", a->max_new_tokens, "tokens to generate at most")
      ->check(CLI::Range(1, 1 << 20));
  app.add_flag("--do-sample", a->do_sample, "sample instead of greedy decoding");
  app.add_option("--temperature", a->temperature)->check(CLI::PositiveNumber);
  app.add_option("--top-k", a->top_k)->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", a->top_p)->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--typical-p", a->typical_p)->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--repetition-penalty", a->repetition_penalty)->check(CLI::PositiveNumber);
  app.add_option("--seed", a->seed, "seed for sampling")->default_str("random");
  app.add_option("--stop", a->stop, "stop string (repeatable); not printed");
  app.add_flag("--ignore-eos", a->ignore_eos, "keep generating past </s>");
  app.add_flag("--print-ids", a->print_ids, "print generated token ids as JSON on stderr");
  app.callback([a] { run(*a); });
});

}  // namespace
}  // namespace lmstream::cli

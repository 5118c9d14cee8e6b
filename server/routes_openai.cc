// OpenAI-style routes (api.md §4): POST /v1/chat/completions (messages through the model's chat
// template) and /v1/completions, streaming (ending with `data: [DONE]`) or not. The request checks
// live in server/validation.h; errors are typed (server/errors.h) and use OpenAI's
// {"error":{message,type,param,code}} shape.
#include <algorithm>
#include <chrono>

#include "server/app.h"
#include "server/errors.h"
#include "server/openai_wire.h"
#include "server/pump.h"
#include "server/reply.h"

namespace lmstream::server {
namespace {

// The role chunk (chat) goes out with the first bytes of the stream.
class OpenAiSse final : public StreamEncoder {
 public:
  explicit OpenAiSse(OpenAiOptions o) : e_(std::move(o)) {}
  std::string on_token(const TokenEvent& ev) override { return lead() + e_.on_token(ev); }
  StreamEnd on_end(const FinalEvent& fe) override {
    StreamEnd end = e_.on_end(fe);  // a framing's view: [DONE] ends a good stream
    end.bytes = lead() + end.bytes + (end.error ? "" : "data: [DONE]\n\n");
    return end;
  }
  std::string error_event(const Error& e) override { return openai_error_event(e); }
  std::string on_final(const FinalEvent& fe) override {  // adds [DONE]
    return lead() + e_.on_final(fe);
  }
  std::string keepalive() override { return ":\n\n"; }

 private:
  std::string lead() {
    if (started_) return "";
    started_ = true;
    return e_.on_start();
  }
  OpenAiStreamEncoder e_;
  bool started_ = false;
};

ErrorAnswer openai_answer(const Error& e) {
  return {e, openai_error_response(e), std::nullopt, ""};
}

}  // namespace

void openai_handle(App& app, std::shared_ptr<Reply> reply, bool chat) {
  const HttpRequest& req = reply->request();
  if (reply->access().route.empty()) reply->access().route = req.path;
  if (auto e = unavailable_error(app)) {
    reply->error(openai_answer(*e));
    return;
  }
  auto backend = app.backend();
  auto error = [&](ErrorKind kind, const std::string& msg, const std::string& param = "") {
    reply->error(openai_answer({kind, msg, param}));
  };
  OpenAiRequest r;
  if (auto e = parse_openai_request(req.body, chat, app.cfg().max_stop_sequences, &r)) {
    reply->error(openai_answer(*e));
    return;
  }
  const int vocab = backend->info().vocab_size;
  for (auto& [id, bias] : r.sampling.logit_bias)
    if (id >= vocab) {
      error(ErrorKind::kInvalidRequest,
            "`logit_bias` names token " + std::to_string(id) + "; the vocabulary has " +
                std::to_string(vocab) + " tokens",
            "logit_bias");
      return;
    }
  // The prompts, tokenized; text = what echo sends back.
  struct Prompt {
    std::vector<int32_t> ids;
    std::string text;
  };
  std::vector<Prompt> prompts;
  if (chat) {
    std::vector<ChatMessage> msgs;
    for (auto& [role, text] : r.messages) msgs.push_back({role, text});
    try {
      prompts.push_back({backend->chat_prompt(msgs), ""});
    } catch (const std::exception& e) {
      error(ErrorKind::kTemplate, std::string("Template error: ") + e.what());
      return;
    }
  } else {
    const size_t count = r.prompts.size() + r.prompt_ids.size();
    if (int(count) > app.cfg().max_client_batch_size) {
      error(ErrorKind::kInvalidRequest,
            "`prompt` holds " + std::to_string(count) + " prompts; at most " +
                std::to_string(app.cfg().max_client_batch_size) +
                " are allowed per request (max_client_batch_size; MAX_CLIENT_BATCH_SIZE)",
            "prompt");
      return;
    }
    for (auto& t : r.prompts) prompts.push_back({backend->encode(t, true), t});
    for (auto& ids : r.prompt_ids) {
      Prompt p{ids, ""};
      for (int32_t id : ids) {
        if (id >= vocab) {
          error(ErrorKind::kInvalidRequest,
                "`prompt` holds token " + std::to_string(id) + "; the vocabulary has " +
                    std::to_string(vocab) + " tokens",
                "prompt");
          return;
        }
        if (!backend->is_special(id)) p.text += backend->token_text(id);
      }
      prompts.push_back(std::move(p));
    }
  }
  const int max_tokens = r.max_tokens;
  for (auto& p : prompts) {
    int in = int(p.ids.size());
    if (int64_t(in) + max_tokens > app.cfg().max_total_tokens) {
      error(ErrorKind::kValidation,
            "`inputs` tokens + `max_new_tokens` must be <= " +
                std::to_string(app.cfg().max_total_tokens) + ". Given: " + std::to_string(in) +
                " `inputs` tokens and " + std::to_string(max_tokens) + " `max_new_tokens`",
            "max_tokens");
      return;
    }
  }
  app.metrics().count_request();
  auto permit = app.try_acquire();
  if (!permit) {
    app.metrics().count_failure(failure_label(ErrorKind::kOverloaded));
    error(ErrorKind::kOverloaded, "");
    return;
  }
  OpenAiOptions o;
  o.chat = chat;
  o.id = std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(req.id);
  o.created = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  o.model = backend->info().name;
  o.logprobs = r.logprobs;
  o.top_logprobs = r.top_logprobs;
  o.include_usage = r.include_usage;
  o.token_text = [backend](int32_t id) { return backend->token_text(id); };
  GenerateRequest g;
  g.sampling = r.sampling;
  if (r.logprobs) g.sampling.top_n_tokens = r.top_logprobs;
  g.stop.stop = r.stop;
  g.cache_salt = r.cache_salt;
  g.stop.max_new_tokens = max_tokens;
  g.stop.include_stop = false;
  g.prompt_logprobs = r.echo && r.logprobs && !r.stream;
  // Sequence k of the request draws with seed + k when a seed is given (n = 1: the seed itself).
  auto seed_of = [&](size_t k) { return r.seed ? *r.seed + k : app.random_seed(); };
  double validation_s = std::chrono::duration<double>(Clock::now() - req.received).count();
  auto held = std::make_shared<Permit>(std::move(*permit));
  Exchange* e = reply->exchange().get();
  if (r.stream) {  // one prompt, one choice (parse_openai_request refuses more)
    g.prompt = prompts[0].ids;
    g.sampling.seed = seed_of(0);
    if (r.echo) o.echo = prompts[0].text;
    auto rs = backend->submit(std::move(g));
    app.track(rs);
    reply->stream({{"Content-Type", "text/event-stream"},
                   {"Cache-Control", "no-cache"},
                   {"X-Accel-Buffering", "no"}},
                  rs, std::make_shared<OpenAiSse>(o), app.cfg().keepalive_s,
                  [&app, e, held, validation_s, max_tokens](const FinalEvent& fe) {
                    record_final(app, *e, fe, validation_s, max_tokens);
                  });
    return;
  }
  // Non-streaming: best_of sequences per prompt, the n best of each (by mean token logprob, as
  // OpenAI ranks best_of) returned in order, index = prompt * n + choice.
  struct Seq {
    std::vector<TokenEvent> tokens;
    FinalEvent fe;
  };
  struct Collect {
    std::vector<Seq> seqs;
    int remaining = 0;
  };
  const int n = r.n, best_of = r.best_of;
  auto c = std::make_shared<Collect>();
  c->seqs.resize(prompts.size() * size_t(best_of));
  c->remaining = int(c->seqs.size());
  std::vector<std::string> echo_text;
  for (auto& p : prompts) echo_text.push_back(r.echo ? p.text : "");
  std::vector<std::vector<int32_t>> prompt_ids;
  for (auto& p : prompts) prompt_ids.push_back(p.ids);
  for (size_t k = 0; k < c->seqs.size(); ++k) {
    GenerateRequest gk = g;
    gk.prompt = prompts[k / size_t(best_of)].ids;
    gk.sampling.seed = seed_of(k);
    auto rs = backend->submit(std::move(gk));
    app.track(rs);
    PumpHooks h;
    h.on_token = [c, k](const TokenEvent& t) { c->seqs[k].tokens.push_back(t); };
    h.on_final = [&app, reply, e, held, c, k, n, best_of, o, echo_text, prompt_ids, backend,
                  validation_s, max_tokens](const FinalEvent& fe) mutable {
      c->seqs[k].fe = fe;
      record_final(app, *e, fe, validation_s, max_tokens);
      if (--c->remaining > 0) return;
      for (auto& s : c->seqs)
        if (auto err = final_error(s.fe)) {
          reply->error(openai_answer(*err));
          held.reset();
          return;
        }
      auto mean_lp = [](const Seq& s) {
        double sum = 0;
        for (auto& t : s.tokens) sum += t.logprob;
        return s.tokens.empty() ? 0.0 : sum / double(s.tokens.size());
      };
      std::vector<OpenAiChoice> choices;
      OpenAiUsage usage;
      for (size_t p = 0; p < prompt_ids.size(); ++p) {
        std::vector<size_t> order;
        for (int b = 0; b < best_of; ++b) order.push_back(p * size_t(best_of) + size_t(b));
        if (best_of > n)
          std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            return mean_lp(c->seqs[a]) > mean_lp(c->seqs[b]);
          });
        usage.prompt_tokens += c->seqs[order[0]].fe.input_tokens;
        usage.cached_tokens += c->seqs[order[0]].fe.cached_tokens;
        for (size_t b : order) usage.completion_tokens += c->seqs[b].fe.generated_tokens;
        for (int i = 0; i < n; ++i) {
          Seq& s = c->seqs[order[size_t(i)]];
          OpenAiChoice ch;
          ch.index = int(p) * n + i;
          ch.tokens = s.tokens;
          ch.fe = s.fe;
          const auto& plp = s.fe.prompt_logprobs;
          for (size_t t = 0; t < plp.size() && t < prompt_ids[p].size(); ++t) {
            TokenEvent te;
            te.id = prompt_ids[p][t];
            te.special = backend->is_special(te.id);
            te.text = backend->token_text(te.id);
            te.logprob = plp[t];
            ch.prompt_tokens.push_back(std::move(te));
          }
          choices.push_back(std::move(ch));
        }
      }
      // echo differs per prompt: the body is built per prompt's text.
      std::string body;
      if (!o.chat && !echo_text.empty()) {
        for (auto& ch : choices)
          ch.fe.generated_text = echo_text[size_t(ch.index / n)] + ch.fe.generated_text;
      }
      body = openai_choices_json(o, choices, usage);
      reply->respond(json_response(200, body));
      held.reset();
    };
    Pump::start(reply->exchange(), rs, std::move(h));
  }
}

void add_openai_routes(App& app) {
  app.routes().add("POST", "/v1/chat/completions",
                   [&app](auto ex) { openai_handle(app, std::make_shared<Reply>(ex), true); });
  app.routes().add("POST", "/v1/completions",
                   [&app](auto ex) { openai_handle(app, std::make_shared<Reply>(ex), false); });
}

}  // namespace lmstream::server

// OpenAI-style routes (api.md §4): POST /v1/chat/completions (messages through the model's chat
// template) and /v1/completions, streaming (ending with `data: [DONE]`) or not. The request checks
// live in server/validation.h; errors are typed (server/errors.h) and use OpenAI's
// {"error":{message,type,param,code}} shape.
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
  auto error = [&](ErrorKind kind, const std::string& msg) {
    reply->error(openai_answer({kind, msg}));
  };
  OpenAiRequest r;
  if (auto e = parse_openai_request(req.body, chat, app.cfg().max_stop_sequences, &r)) {
    reply->error(openai_answer(*e));
    return;
  }
  GenerateRequest g;
  bool stream = r.stream;
  int max_tokens = r.max_tokens;
  g.sampling = r.sampling;
  g.sampling.seed = r.seed ? *r.seed : app.random_seed();
  g.stop.stop = std::move(r.stop);
  if (chat) {
    std::vector<ChatMessage> msgs;
    for (auto& [role, text] : r.messages) msgs.push_back({role, text});
    try {
      g.prompt = backend->chat_prompt(msgs);
    } catch (const std::exception& e) {
      error(ErrorKind::kTemplate, std::string("Template error: ") + e.what());
      return;
    }
  } else {
    g.prompt = backend->encode(r.prompt, true);
  }
  g.stop.max_new_tokens = max_tokens;
  g.stop.include_stop = false;
  int in = int(g.prompt.size());
  if (int64_t(in) + max_tokens > app.cfg().max_total_tokens) {
    error(ErrorKind::kValidation, "`inputs` tokens + `max_new_tokens` must be <= " +
                                      std::to_string(app.cfg().max_total_tokens) +
                                      ". Given: " + std::to_string(in) + " `inputs` tokens and " +
                                      std::to_string(max_tokens) + " `max_new_tokens`");
    return;
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
  double validation_s = std::chrono::duration<double>(Clock::now() - req.received).count();
  auto rs = backend->submit(std::move(g));
  app.track(rs);
  auto held = std::make_shared<Permit>(std::move(*permit));
  Exchange* e = reply->exchange().get();
  if (stream) {
    reply->stream({{"Content-Type", "text/event-stream"},
                   {"Cache-Control", "no-cache"},
                   {"X-Accel-Buffering", "no"}},
                  rs, std::make_shared<OpenAiSse>(o), app.cfg().keepalive_s,
                  [&app, e, held, validation_s, max_tokens](const FinalEvent& fe) {
                    record_final(app, *e, fe, validation_s, max_tokens);
                  });
    return;
  }
  PumpHooks h;
  h.on_final = [&app, reply, e, held, validation_s, max_tokens, o](const FinalEvent& fe) {
    record_final(app, *e, fe, validation_s, max_tokens);
    if (auto err = final_error(fe))
      reply->error(openai_answer(*err));
    else
      reply->respond(json_response(200, openai_response_json(o, fe)));
  };
  Pump::start(reply->exchange(), rs, std::move(h));
}

void add_openai_routes(App& app) {
  app.routes().add("POST", "/v1/chat/completions",
                   [&app](auto ex) { openai_handle(app, std::make_shared<Reply>(ex), true); });
  app.routes().add("POST", "/v1/completions",
                   [&app](auto ex) { openai_handle(app, std::make_shared<Reply>(ex), false); });
}

}  // namespace lmstream::server

// OpenAI-style routes (api.md §4): POST /v1/chat/completions (messages through the model's chat
// template) and /v1/completions, streaming (ending with `data: [DONE]`) or not. The request checks
// live in server/validation.h; errors are typed (server/errors.h) and use OpenAI's
// {"error":{message,type,param,code}} shape.
#include <chrono>

#include "server/app.h"
#include "server/errors.h"
#include "server/openai_wire.h"
#include "server/pump.h"

namespace lmstream::server {
namespace {

class OpenAiSse final : public StreamEncoder {
 public:
  explicit OpenAiSse(OpenAiOptions o) : e_(std::move(o)) {}
  std::string start() { return e_.on_start(); }
  std::string on_token(const TokenEvent& ev) override { return e_.on_token(ev); }
  StreamEnd on_end(const FinalEvent& fe) override { return e_.on_end(fe); }
  std::string error_event(const Error& e) override { return openai_error_event(e); }
  std::string on_final(const FinalEvent& fe) override { return e_.on_final(fe); }  // adds [DONE]
  std::string keepalive() override { return ":\n\n"; }

 private:
  OpenAiStreamEncoder e_;
};

void openai_handle(App& app, std::shared_ptr<Exchange> ex, bool chat) {
  ex->access().route = ex->request().path;
  if (unavailable(app, *ex)) return;
  auto backend = app.backend();
  auto error = [&](ErrorKind kind, const std::string& msg) {
    ex->respond(openai_error_response({kind, msg}));
  };
  OpenAiRequest r;
  if (auto e = parse_openai_request(ex->request().body, chat, app.cfg().max_stop_sequences, &r)) {
    ex->respond(openai_error_response(*e));
    return;
  }
  GenerateRequest g;
  bool stream = r.stream;
  int max_tokens = r.max_tokens;
  g.sampling = r.sampling;
  g.sampling.seed = r.seed ? *r.seed : app.random_seed();
  g.stop.stop = std::move(r.stop);
  g.cache_salt = r.cache_salt;
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
  o.id = std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(ex->request().id);
  o.created = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  o.model = backend->info().name;
  double validation_s =
      std::chrono::duration<double>(Clock::now() - ex->request().received).count();
  auto rs = backend->submit(std::move(g));
  app.track(rs);
  auto held = std::make_shared<Permit>(std::move(*permit));
  Exchange* e = ex.get();
  if (stream) {
    ex->start_stream(200, {{"Content-Type", "text/event-stream"},
                           {"Cache-Control", "no-cache"},
                           {"X-Accel-Buffering", "no"}});
    auto enc = std::make_shared<OpenAiSse>(o);
    ex->write(enc->start());
    pump_encoded(ex, rs, enc, app.cfg().keepalive_s,
                 [&app, e, held, validation_s, max_tokens](const FinalEvent& fe) {
                   record_final(app, *e, fe, validation_s, max_tokens);
                 });
    return;
  }
  PumpHooks h;
  h.on_final = [&app, e, held, validation_s, max_tokens, o](const FinalEvent& fe) {
    record_final(app, *e, fe, validation_s, max_tokens);
    if (auto err = final_error(fe))
      e->respond(openai_error_response(*err));
    else
      e->respond(json_response(200, openai_response_json(o, fe)));
  };
  Pump::start(ex, rs, std::move(h));
}

}  // namespace

void add_openai_routes(App& app) {
  app.routes().add("POST", "/v1/chat/completions",
                   [&app](auto ex) { openai_handle(app, ex, true); });
  app.routes().add("POST", "/v1/completions", [&app](auto ex) { openai_handle(app, ex, false); });
}

}  // namespace lmstream::server

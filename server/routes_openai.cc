// OpenAI-style routes (api.md §4): POST /v1/chat/completions (messages through the model's chat
// template) and /v1/completions, streaming (ending with `data: [DONE]`) or not. Errors use
// OpenAI's {"error":{message,type,param,code}} shape.
#include <chrono>
#include <nlohmann/json.hpp>

#include "server/app.h"
#include "server/openai_wire.h"
#include "server/errors.h"
#include "server/pump.h"

namespace lmstream::server {
namespace {

using json = nlohmann::json;

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

struct BadRequest {
  std::string message;
  ErrorKind kind = ErrorKind::kInvalidRequest;
};

float num(const json& j, const char* k, float def, float lo, float hi) {
  auto it = j.find(k);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) throw BadRequest{std::string("`") + k + "` must be a number"};
  double d = it->get<double>();
  if (!(d >= lo && d <= hi))
    throw BadRequest{std::string("`") + k + "` must be >= " + std::to_string(lo) + " and <= " + std::to_string(hi)};
  return float(d);
}

int integer(const json& j, const char* k, int def, int lo, int hi) {
  auto it = j.find(k);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number_integer())
    throw BadRequest{std::string("`") + k + "` must be an integer"};
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi)
    throw BadRequest{std::string("`") + k + "` must be >= " + std::to_string(lo) + " and <= " + std::to_string(hi)};
  return int(v);
}

std::string text_content(const json& c) {
  if (c.is_string()) return c.get<std::string>();
  if (c.is_null()) return "";
  if (c.is_array()) {  // [{"type":"text","text":"..."}]
    std::string s;
    for (auto& part : c) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
        throw BadRequest{"only text content parts are supported"};
      s += part["text"].get<std::string>();
    }
    return s;
  }
  throw BadRequest{"`content` must be a string or a list of text parts"};
}

void openai_handle(App& app, std::shared_ptr<Exchange> ex, bool chat) {
  ex->access().route = ex->request().path;
  if (unavailable(app, *ex)) return;
  auto backend = app.backend();
  auto error = [&](ErrorKind kind, const std::string& msg) { ex->respond(openai_error_response({kind, msg})); };
  json j;
  try {
    j = json::parse(ex->request().body);
  } catch (const std::exception& e) {
    error(ErrorKind::kInvalidRequest, std::string("the body is not valid JSON: ") + e.what());
    return;
  }
  GenerateRequest g;
  bool stream = false;
  int max_tokens = 100;
  try {
    if (!j.is_object()) throw BadRequest{"the body must be a JSON object"};
    if (auto it = j.find("stream"); it != j.end() && !it->is_null()) {
      if (!it->is_boolean()) throw BadRequest{"`stream` must be a boolean"};
      stream = it->get<bool>();
    }
    if (integer(j, "n", 1, 1, 1) != 1) throw BadRequest{"`n` must be 1"};
    max_tokens = integer(j, "max_tokens", 100, 1, 1 << 24);
    if (chat) max_tokens = integer(j, "max_completion_tokens", max_tokens, 1, 1 << 24);
    float temperature = num(j, "temperature", 1.f, 0.f, 2.f);
    g.sampling.do_sample = temperature > 0.f;
    g.sampling.temperature = temperature > 0.f ? temperature : 1.f;
    g.sampling.top_p = num(j, "top_p", 1.f, 0.f, 1.f);
    if (g.sampling.top_p <= 0.f) throw BadRequest{"`top_p` must be > 0"};
    g.sampling.frequency_penalty = num(j, "frequency_penalty", 0.f, -2.f, 2.f);
    g.sampling.repetition_penalty = num(j, "repetition_penalty", 1.f, 1e-6f, 1e6f);
    g.sampling.top_k = integer(j, "top_k", 0, 0, 1 << 24);
    if (auto it = j.find("seed"); it != j.end() && !it->is_null()) {
      if (!it->is_number_integer()) throw BadRequest{"`seed` must be an integer"};
      g.sampling.seed = it->is_number_unsigned() ? it->get<uint64_t>() : uint64_t(it->get<int64_t>());
    } else {
      g.sampling.seed = app.random_seed();
    }
    if (auto it = j.find("stop"); it != j.end() && !it->is_null()) {
      if (it->is_string()) g.stop.stop.push_back(it->get<std::string>());
      else if (it->is_array()) {
        for (auto& s : *it) {
          if (!s.is_string()) throw BadRequest{"`stop` must be a string or a list of strings"};
          g.stop.stop.push_back(s.get<std::string>());
        }
      } else {
        throw BadRequest{"`stop` must be a string or a list of strings"};
      }
      if (g.stop.stop.size() > size_t(app.cfg().max_stop_sequences))
        throw BadRequest{"`stop` supports up to " + std::to_string(app.cfg().max_stop_sequences) +
                                  " stop sequences. Given: " + std::to_string(g.stop.stop.size()),
                         ErrorKind::kUnprocessable};
    }
    if (chat) {
      auto it = j.find("messages");
      if (it == j.end() || !it->is_array() || it->empty()) throw BadRequest{"`messages` must be a non-empty list"};
      std::vector<ChatMessage> msgs;
      for (auto& m : *it) {
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
          throw BadRequest{"each message needs a string `role`"};
        msgs.push_back({m["role"].get<std::string>(), text_content(m.value("content", json()))});
      }
      try {
        g.prompt = backend->chat_prompt(msgs);
      } catch (const std::exception& e) {
        throw BadRequest{std::string("Template error: ") + e.what(), ErrorKind::kTemplate};
      }
    } else {
      if (j.contains("suffix") && !j["suffix"].is_null())
        throw BadRequest{"Suffix is not supported and can be achieved by preprocessing the prompt.",
                         ErrorKind::kUnsupportedFeature};
      auto it = j.find("prompt");
      std::string prompt;
      if (it != j.end() && it->is_string()) prompt = it->get<std::string>();
      else if (it != j.end() && it->is_array() && it->size() == 1 && (*it)[0].is_string()) prompt = (*it)[0].get<std::string>();
      else throw BadRequest{"`prompt` must be a string"};
      g.prompt = backend->encode(prompt, true);
    }
  } catch (const BadRequest& b) {
    error(b.kind, b.message);
    return;
  }
  g.stop.max_new_tokens = max_tokens;
  g.stop.include_stop = false;
  int in = int(g.prompt.size());
  if (int64_t(in) + max_tokens > app.cfg().max_total_tokens) {
    error(ErrorKind::kValidation, "`inputs` tokens + `max_new_tokens` must be <= " +
                                      std::to_string(app.cfg().max_total_tokens) + ". Given: " + std::to_string(in) +
                                      " `inputs` tokens and " + std::to_string(max_tokens) + " `max_new_tokens`");
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
  o.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  o.model = backend->info().name;
  double validation_s = std::chrono::duration<double>(Clock::now() - ex->request().received).count();
  auto rs = backend->submit(std::move(g));
  app.track(rs);
  auto held = std::make_shared<Permit>(std::move(*permit));
  Exchange* e = ex.get();
  if (stream) {
    ex->start_stream(200, {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}});
    auto enc = std::make_shared<OpenAiSse>(o);
    ex->write(enc->start());
    pump_encoded(ex, rs, enc, app.cfg().keepalive_s, [&app, e, held, validation_s, max_tokens](const FinalEvent& fe) {
      record_final(app, *e, fe, validation_s, max_tokens);
    });
    return;
  }
  PumpHooks h;
  h.on_final = [&app, e, held, validation_s, max_tokens, o](const FinalEvent& fe) {
    record_final(app, *e, fe, validation_s, max_tokens);
    if (auto err = final_error(fe)) e->respond(openai_error_response(*err));
    else e->respond(json_response(200, openai_response_json(o, fe)));
  };
  Pump::start(ex, rs, std::move(h));
}

}  // namespace

void add_openai_routes(App& app) {
  app.routes().add("POST", "/v1/chat/completions", [&app](auto ex) { openai_handle(app, ex, true); });
  app.routes().add("POST", "/v1/completions", [&app](auto ex) { openai_handle(app, ex, false); });
}

}  // namespace lmstream::server

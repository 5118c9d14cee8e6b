// SageMaker JumpStart's Llama 2 chat payload on /invocations (and so on the runtime API's
// /endpoints/{name}/invocations): {"inputs": [[{"role": "system"|"user"|"assistant", "content":
// "..."}, ...], ...], "parameters": {...}}, a batch of dialogs. Each dialog is rendered through
// the model's chat template (as /v1/chat/completions does) and generated on its own; the answer is
// JumpStart's [{"generation": {"role": "assistant", "content": "..."}}, ...], one per dialog, in
// order. "parameters" are read with the rules of the API /invocations speaks (TGI's or LMI's),
// so the same names and checks apply; errors use that API's shapes.
#include <chrono>
#include <nlohmann/json.hpp>

#include "server/app.h"
#include "server/pump.h"
#include "server/reply.h"
#include "server/validation.h"
#include "server/wire_json.h"

namespace lmstream::server {
namespace {

using json = nlohmann::json;

struct Dialogs {
  struct One {
    FinalEvent fe;
  };
  std::vector<One> seqs;
  int remaining = 0;
  std::optional<Permit> permit;
};

// The dialogs of the body, or a message saying what is wrong with them.
std::optional<std::string> parse_dialogs(const json& inputs,
                                         std::vector<std::vector<ChatMessage>>* out) {
  json list = inputs;
  if (!list.empty() && list[0].is_object()) list = json::array({inputs});  // one dialog
  if (list.empty()) return "`inputs` must hold at least one dialog";
  for (size_t d = 0; d < list.size(); ++d) {
    const json& dialog = list[d];
    std::string where = "inputs[" + std::to_string(d) + "]";
    if (!dialog.is_array() || dialog.empty())
      return where + " must be a non-empty list of {`role`, `content`} messages";
    std::vector<ChatMessage> msgs;
    for (size_t m = 0; m < dialog.size(); ++m) {
      const json& msg = dialog[m];
      std::string at = where + "[" + std::to_string(m) + "]";
      if (!msg.is_object()) return at + " must be an object {`role`, `content`}";
      auto role = msg.find("role");
      auto content = msg.find("content");
      if (role == msg.end() || !role->is_string())
        return at + ".role must be `system`, `user` or `assistant`";
      std::string r = role->get<std::string>();
      if (r != "system" && r != "user" && r != "assistant")
        return at + ".role must be `system`, `user` or `assistant`; given `" + r + "`";
      if (content == msg.end() || !content->is_string()) return at + ".content must be a string";
      msgs.push_back({r, content->get<std::string>()});
    }
    if (msgs.back().role != "user")
      return where + ": the last message must be from the user (role `user`)";
    out->push_back(std::move(msgs));
  }
  return std::nullopt;
}

}  // namespace

bool is_dialog_payload(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (!j.is_object()) return false;
  auto in = j.find("inputs");
  return in != j.end() && in->is_array() && !in->empty() &&
         ((*in)[0].is_array() || (*in)[0].is_object());
}

void jumpstart_dialogs(App& app, std::shared_ptr<Reply> reply) {
  const HttpRequest& req = reply->request();
  bool lmi = app.cfg().api == ApiMode::kLmi;
  auto answer = [lmi](const Error& e) -> ErrorAnswer {
    return {e, lmi ? lmi_error_response(e) : tgi_error_response(e), std::nullopt, ""};
  };
  if (auto e = unavailable_error(app)) {
    reply->error(answer(*e));
    return;
  }
  auto backend = app.backend();
  auto fail = [&](const Error& e) {
    app.metrics().count_failure(failure_label(e.kind));
    reply->error(answer(e));
  };
  json j = json::parse(req.body, nullptr, false);
  std::vector<std::vector<ChatMessage>> dialogs;
  if (auto msg = parse_dialogs(j["inputs"], &dialogs)) {
    fail(validation_error(*msg));
    return;
  }
  if (int(dialogs.size()) > app.cfg().max_client_batch_size) {
    fail(validation_error("a batch of " + std::to_string(dialogs.size()) +
                          " dialogs exceeds max_client_batch_size (" +
                          std::to_string(app.cfg().max_client_batch_size) +
                          "; MAX_CLIENT_BATCH_SIZE): send fewer dialogs per request"));
    return;
  }
  // The parameters, read by the rules of the API /invocations speaks, with the first dialog's text
  // standing in for the inputs those rules check (empty only when all its messages are).
  json params = j.contains("parameters") ? j["parameters"] : json::object();
  std::string text;
  for (auto& m : dialogs[0]) text += m.content;
  json probe_json = {{"inputs", text}, {"parameters", params}};
  std::string probe = probe_json.dump(-1, ' ', false, json::error_handler_t::replace);
  GenerateRequest base;
  base.stop.include_stop = false;  // a chat answer, as /v1/chat/completions gives it
  TgiLimits limits = app.tgi_limits();
  TgiParams tp;
  uint64_t seed_base = app.random_seed();
  if (lmi) {
    LmiRequest r;
    if (auto msg = parse_lmi_request(probe, seed_base, &r)) {
      fail({ErrorKind::kValidation, *msg});
      return;
    }
    base.sampling = r.sampling;
    base.stop.max_new_tokens = r.max_new_tokens;
    base.stop.stop = r.stop_sequences;
  } else {
    TgiRequest r;
    if (auto e = parse_tgi_request(req.header("content-type"), probe, false, &r)) {
      fail(*e);
      return;
    }
    if (auto msg = validate_tgi(r, limits, false)) {
      fail(validation_error(*msg));
      return;
    }
    if (r.parameters.best_of && *r.parameters.best_of > 1) {
      fail(validation_error("`best_of` is not supported for dialogs; send one request per answer"));
      return;
    }
    tp = r.parameters;
    base.sampling = tgi_sampling(tp, seed_base);
    base.stop.max_new_tokens = int(tp.max_new_tokens);
    base.stop.stop = tp.stop;
  }
  std::vector<GenerateRequest> gens;
  for (size_t d = 0; d < dialogs.size(); ++d) {
    GenerateRequest g = base;
    try {
      g.prompt = backend->chat_prompt(dialogs[d]);
    } catch (const std::exception& e) {
      fail({ErrorKind::kTemplate, std::string("Template error: ") + e.what()});
      return;
    }
    std::optional<std::string> msg;
    if (lmi) {
      if (int(g.prompt.size()) >= backend->info().max_position)
        msg = "the prompt has " + std::to_string(g.prompt.size()) +
              " tokens; the model's context is " + std::to_string(backend->info().max_position);
    } else {
      msg = validate_tgi_lengths(int(g.prompt.size()), tp.max_new_tokens, limits);
    }
    if (msg) {
      fail(validation_error("inputs[" + std::to_string(d) + "]: " + *msg));
      return;
    }
    gens.push_back(std::move(g));
  }
  app.metrics().count_request();
  auto permit = app.try_acquire();
  if (!permit) {
    fail({ErrorKind::kOverloaded, ""});
    return;
  }
  auto c = std::make_shared<Dialogs>();
  c->seqs.resize(gens.size());
  c->remaining = int(gens.size());
  c->permit.emplace(std::move(*permit));
  double validation_s = std::chrono::duration<double>(Clock::now() - req.received).count();
  int max_new = base.stop.max_new_tokens;
  Exchange* e = reply->exchange().get();
  for (size_t i = 0; i < gens.size(); ++i) {
    auto rs = backend->submit(std::move(gens[i]));
    app.track(rs);
    PumpHooks h;
    h.on_final = [&app, reply, e, c, i, validation_s, max_new, answer](const FinalEvent& fe) {
      c->seqs[i].fe = fe;
      record_final(app, *e, fe, validation_s, max_new);
      if (--c->remaining > 0) return;
      for (auto& s : c->seqs)
        if (auto err = final_error(s.fe)) {
          reply->error(answer(*err));
          c->permit.reset();
          return;
        }
      WireJson out = WireJson::array();
      for (auto& s : c->seqs) {
        WireJson gen = WireJson::object();
        gen["role"] = "assistant";
        gen["content"] = s.fe.generated_text;
        WireJson one = WireJson::object();
        one["generation"] = gen;
        out.push_back(one);
      }
      reply->respond(json_response(200, dump(out)));
      c->permit.reset();
    };
    Pump::start(reply->exchange(), rs, std::move(h));
  }
}

}  // namespace lmstream::server

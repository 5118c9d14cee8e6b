// TGI routes (api.md §1): POST /generate, /generate_stream, / (compat) and /tokenize. Thin:
// parse -> permit -> validation table -> tokenize -> submit -> encode (server/tgi_wire.h). Errors
// are typed (server/errors.h) and answered through a Reply, so /invocations' front doors frame
// them.
#include <algorithm>
#include <chrono>

#include "server/app.h"
#include "server/pump.h"
#include "server/reply.h"
#include "server/tgi_wire.h"
#include "server/wire_json.h"

namespace lmstream::server {
namespace {

enum class Mode { kGenerate, kStream, kCompat };

class TgiSse final : public StreamEncoder {
 public:
  TgiSse(TgiOptions o, TokenLookup l) : e_(std::move(o), std::move(l)) {}
  std::string on_token(const TokenEvent& ev) override { return e_.on_token(ev); }
  StreamEnd on_end(const FinalEvent& fe) override { return e_.on_end(fe); }
  std::string error_event(const Error& e) override { return tgi_error_event(e); }
  std::string keepalive() override { return sse_keepalive(); }

 private:
  TgiStreamEncoder e_;
};

TokenLookup lookup_of(const std::shared_ptr<Backend>& b) {
  return {[b](int32_t id) { return b->token_text(id); },
          [b](int32_t id) { return b->is_special(id); }};
}

std::vector<Header> stream_headers(const TgiRequest& r) {
  return {{"Content-Type", "text/event-stream"},
          {"Cache-Control", "no-cache"},
          {"X-Accel-Buffering", "no"},
          {"x-compute-type", "cpu"},
          {"x-compute-characters", std::to_string(r.inputs.size())}};
}

ErrorAnswer answer(const Error& e) { return {e, tgi_error_response(e), std::nullopt, ""}; }

// Sends a rejection the way the route would: SSE error event (200) when streaming.
void fail(App& app, Reply& reply, bool stream, const TgiRequest& r, const Error& e) {
  app.metrics().count_failure(failure_label(e.kind));
  ErrorAnswer a = answer(e);
  if (stream) {
    a.stream_headers = stream_headers(r);
    a.event = tgi_error_event(e);
  }
  reply.error(std::move(a));
}

// Collects best_of non-streaming results and answers once all are final.
struct Collect {
  struct One {
    std::vector<TokenEvent> tokens;
    FinalEvent fe;
    bool done = false;
  };
  std::vector<One> seqs;
  int remaining = 0;
  std::optional<Permit> permit;
};

double sum_logprob(const Collect::One& o) {
  double s = 0;
  for (auto& t : o.tokens) s += t.logprob;
  return s;
}

void tgi_handle(App& app, std::shared_ptr<Reply> reply, Mode mode) {
  const HttpRequest& req = reply->request();
  reply->access().route = req.path;
  if (auto e = unavailable_error(app)) {
    reply->error(answer(*e));
    return;
  }
  auto backend = app.backend();
  TgiRequest r;
  if (auto e = parse_tgi_request(req.header("content-type"), req.body, mode == Mode::kCompat, &r)) {
    reply->error(answer(*e));
    return;
  }
  bool stream = mode == Mode::kStream || (mode == Mode::kCompat && r.stream);
  app.metrics().count_request();
  auto permit = app.try_acquire();
  if (!permit) {
    fail(app, *reply, stream, r, {ErrorKind::kOverloaded, ""});
    return;
  }
  TgiLimits limits = app.tgi_limits();
  if (auto msg = validate_tgi(r, limits, stream)) {
    fail(app, *reply, stream, r, validation_error(*msg));
    return;
  }
  auto& p = r.parameters;
  std::vector<int32_t> prompt = backend->encode(r.inputs, true);
  if (p.truncate && prompt.size() > *p.truncate)
    prompt.erase(prompt.begin(), prompt.end() - std::ptrdiff_t(*p.truncate));
  if (auto msg = validate_tgi_lengths(int(prompt.size()), p.max_new_tokens, limits)) {
    fail(app, *reply, stream, r, validation_error(*msg));
    return;
  }
  bool full_text =
      p.return_full_text.value_or(mode == Mode::kCompat);  // pipeline_tag text-generation
  TgiOptions o;
  o.details = p.details;
  o.decoder_input_details = p.decoder_input_details;
  if (full_text) o.full_text_prefix = r.inputs;
  o.sampling = tgi_is_sampling(p);
  o.max_new_tokens = int(p.max_new_tokens);
  o.eos_id = backend->info().eos_id;
  o.stop = p.stop;
  o.input_len = int(prompt.size());
  o.capacity = backend->info().max_position;

  GenerateRequest g;
  g.prompt = prompt;
  g.stop.max_new_tokens = int(p.max_new_tokens);
  g.stop.stop = p.stop;
  g.stop.include_stop = true;
  g.prompt_logprobs = p.decoder_input_details && !stream;  // validation rejects it when streaming
  g.cache_salt = p.cache_salt;
  double validation_s = std::chrono::duration<double>(Clock::now() - req.received).count();
  int max_new = int(p.max_new_tokens);

  if (stream) {
    g.sampling = tgi_sampling(p, app.random_seed());
    auto rs = backend->submit(std::move(g));
    app.track(rs);
    auto enc = std::make_shared<TgiSse>(o, lookup_of(backend));
    auto held = std::make_shared<Permit>(std::move(*permit));
    Exchange* e = reply->exchange().get();
    reply->stream(stream_headers(r), rs, enc, app.cfg().keepalive_s,
                  [&app, e, held, validation_s, max_new](const FinalEvent& fe) {
                    record_final(app, *e, fe, validation_s, max_new);
                  });
    return;
  }

  // Non-streaming: best_of sequences (TGI picks the highest total logprob).
  int n = p.best_of && *p.best_of > 1 ? int(*p.best_of) : 1;
  auto c = std::make_shared<Collect>();
  c->seqs.resize(n);
  c->remaining = n;
  c->permit.emplace(std::move(*permit));
  bool array = mode == Mode::kCompat;
  std::vector<Header> headers = {{"x-compute-type", "cpu"},
                                 {"x-compute-characters", std::to_string(r.inputs.size())}};
  for (int i = 0; i < n; ++i) {
    GenerateRequest gi = g;
    gi.sampling = tgi_sampling(p, app.random_seed());
    auto rs = backend->submit(std::move(gi));
    app.track(rs);
    PumpHooks h;
    h.on_token = [c, i](const TokenEvent& t) { c->seqs[i].tokens.push_back(t); };
    Exchange* e = reply->exchange().get();
    h.on_final = [&app, reply, e, c, i, o, prompt, backend, array, headers, validation_s,
                  max_new](const FinalEvent& fe) {
      c->seqs[i].fe = fe;
      c->seqs[i].done = true;
      if (--c->remaining > 0) return;
      // Errors fail the request; otherwise the best sequence answers.
      for (auto& s : c->seqs)
        if (auto err = final_error(s.fe)) {
          record_final(app, *e, s.fe, validation_s, max_new);
          reply->error(answer(*err));
          c->permit.reset();
          return;
        }
      size_t best = 0;
      for (size_t k = 1; k < c->seqs.size(); ++k)
        if (sum_logprob(c->seqs[k]) > sum_logprob(c->seqs[best])) best = k;
      auto& b = c->seqs[best];
      record_final(app, *e, b.fe, validation_s, max_new);
      std::string body = tgi_generate_json(b.tokens, b.fe, prompt, o, lookup_of(backend), false);
      if (c->seqs.size() > 1 && (o.details || o.decoder_input_details)) {
        // best_of_sequences: the other sequences, in TGI's field order.
        auto j = nlohmann::ordered_json::parse(body);
        auto arr = nlohmann::ordered_json::array();
        for (size_t k = 0; k < c->seqs.size(); ++k) {
          if (k == best) continue;
          auto one = nlohmann::ordered_json::parse(tgi_generate_json(
              c->seqs[k].tokens, c->seqs[k].fe, prompt, o, lookup_of(backend), false));
          nlohmann::ordered_json s;
          s["generated_text"] = one["generated_text"];
          for (auto& [k2, v] : one["details"].items()) s[k2] = v;
          arr.push_back(s);
        }
        j["details"]["best_of_sequences"] = arr;
        body = dump(j);
      }
      if (array) body = "[" + body + "]";
      double total = std::chrono::duration<double>(Clock::now() - e->request().received).count();
      auto hs = headers;
      auto ms = [](double s) { return std::to_string(int64_t(s * 1000)); };
      hs.push_back({"Content-Type", "application/json"});
      hs.push_back({"x-compute-time", std::to_string(total)});
      hs.push_back({"x-total-time", ms(total)});
      hs.push_back({"x-validation-time", ms(validation_s)});
      hs.push_back({"x-queue-time", ms(b.fe.queued_s)});
      hs.push_back({"x-inference-time", ms(b.fe.total_s - b.fe.queued_s)});
      hs.push_back(
          {"x-time-per-token",
           ms(b.fe.generated_tokens > 0 ? (b.fe.total_s - b.fe.queued_s) / b.fe.generated_tokens
                                        : 0)});
      hs.push_back({"x-prompt-tokens", std::to_string(b.fe.input_tokens)});
      hs.push_back({"x-generated-tokens", std::to_string(b.fe.generated_tokens)});
      reply->respond({200, hs, body});
      c->permit.reset();
    };
    Pump::start(reply->exchange(), rs, std::move(h));
  }
}

// Char offsets of each token in the input, HF-style ([{"id","text","start","stop"}]).
void tokenize(App& app, std::shared_ptr<Exchange> ex) {
  ex->access().route = "/tokenize";
  if (unavailable(app, *ex)) return;
  auto backend = app.backend();
  TgiRequest r;
  if (auto e =
          parse_tgi_request(ex->request().header("content-type"), ex->request().body, false, &r)) {
    ex->respond(tgi_error_response(*e));
    return;
  }
  const std::string& in = r.inputs;
  std::vector<int32_t> ids = backend->encode(in, true);
  // byte offset -> char offset
  auto chars_before = [&](size_t byte) {
    size_t n = 0;
    for (size_t i = 0; i < byte && i < in.size(); ++i)
      if ((static_cast<unsigned char>(in[i]) & 0xC0) != 0x80) ++n;
    return n;
  };
  WireJson out = WireJson::array();
  size_t pos = 0;
  bool first_text = true;
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t id = ids[i];
    size_t start = pos;
    std::string t = backend->token_text(id);
    if (i == 0) {
      // The BOS the tokenizer added covers no input text.
    } else if (backend->is_special(id)) {
      if (in.compare(pos, t.size(), t) == 0) pos += t.size();
    } else {
      if (first_text && !t.empty() && t[0] == ' ' && (pos >= in.size() || in[pos] != ' '))
        t.erase(0, 1);
      first_text = false;
      pos = std::min(in.size(), pos + t.size());
    }
    WireJson tok = WireJson::object();
    tok["id"] = id;
    tok["text"] = in.substr(start, pos - start);
    tok["start"] = chars_before(start);
    tok["stop"] = chars_before(pos);
    out.push_back(tok);
  }
  ex->respond(json_response(200, dump(out)));
}

}  // namespace

void tgi_compat(App& app, std::shared_ptr<Reply> reply) {
  tgi_handle(app, std::move(reply), Mode::kCompat);
}

void add_tgi_routes(App& app) {
  auto route = [&app](Mode m) {
    return [&app, m](std::shared_ptr<Exchange> ex) {
      tgi_handle(app, std::make_shared<Reply>(std::move(ex)), m);
    };
  };
  app.routes().add("POST", "/generate", route(Mode::kGenerate));
  app.routes().add("POST", "/generate_stream", route(Mode::kStream));
  app.routes().add("POST", "/", route(Mode::kCompat));
  app.routes().add("POST", "/tokenize", [&app](auto ex) { tokenize(app, ex); });
}

}  // namespace lmstream::server

// LMI (DJL-Serving 0.25 rolling batch) /invocations: always a chunked 200 whose body is the json
// formatter's pieces or jsonlines (server/lmi_wire.h); request problems become DJL's 424 error
// chunk, as lmi-dist reports them.
#include <chrono>

#include "server/app.h"
#include "server/lmi_wire.h"
#include "server/pump.h"
#include "server/reply.h"

namespace lmstream::server {
namespace {

class LmiEncoder final : public StreamEncoder {
 public:
  LmiEncoder(OutputFormatter f, int buffer) : e_(f, buffer) {}
  std::string on_token(const TokenEvent& ev) override { return e_.on_token(ev); }
  StreamEnd on_end(const FinalEvent& fe) override { return e_.on_end(fe); }
  std::string error_event(const Error& e) override { return lmi_error_chunk(e); }

 private:
  LmiStreamEncoder e_;
};

}  // namespace

void lmi_invoke(App& app, std::shared_ptr<Reply> reply) {
  if (reply->access().route.empty()) reply->access().route = "/invocations(lmi)";
  if (auto e = unavailable_error(app)) {  // TGI's shape, as every route but the runtime API's
    reply->error({*e, tgi_error_response(*e), std::nullopt, ""});
    return;
  }
  auto backend = app.backend();
  const auto& cfg = app.cfg();
  LmiStreamEncoder probe(cfg.output_formatter, cfg.rolling_batch_buffer);
  std::vector<Header> headers = {{"Content-Type", probe.content_type()}};
  app.metrics().count_request();
  auto permit = app.try_acquire();
  if (!permit) {
    Error e{ErrorKind::kOverloaded, ""};
    app.metrics().count_failure(failure_label(e.kind));
    reply->error({e, lmi_error_response(e), std::nullopt, ""});
    return;
  }
  // lmi-dist reports request problems inside the 200 stream, as DJL's 424 chunk.
  auto error_stream = [&](const std::string& msg) {
    Error e{ErrorKind::kValidation, msg};
    app.metrics().count_failure(failure_label(e.kind));
    std::string chunk = lmi_error_chunk(e);
    reply->error({e, {kLmiStreamErrorCode, {}, chunk}, headers, chunk});
  };
  LmiRequest r;
  if (auto err = parse_lmi_request(reply->request().body, app.random_seed(), &r)) {
    error_stream(*err);
    return;
  }
  std::vector<int32_t> prompt = backend->encode(r.inputs, true);
  if (r.truncate && *r.truncate > 0 && prompt.size() > *r.truncate)
    prompt.erase(prompt.begin(), prompt.end() - std::ptrdiff_t(*r.truncate));
  if (int(prompt.size()) >= backend->info().max_position) {
    error_stream("the prompt has " + std::to_string(prompt.size()) +
                 " tokens; the model's context is " + std::to_string(backend->info().max_position));
    return;
  }
  GenerateRequest g;
  g.prompt = std::move(prompt);
  g.sampling = r.sampling;
  g.stop.max_new_tokens = r.max_new_tokens;
  g.stop.stop = r.stop_sequences;
  g.cache_salt = r.cache_salt;
  g.stop.include_stop = true;
  double validation_s =
      std::chrono::duration<double>(Clock::now() - reply->request().received).count();
  auto rs = backend->submit(std::move(g));
  app.track(rs);
  auto held = std::make_shared<Permit>(std::move(*permit));
  Exchange* e = reply->exchange().get();
  int max_new = r.max_new_tokens;
  reply->stream(headers, rs,
                std::make_shared<LmiEncoder>(cfg.output_formatter, cfg.rolling_batch_buffer), 0,
                [&app, e, held, validation_s, max_new](const FinalEvent& fe) {
                  record_final(app, *e, fe, validation_s, max_new);
                });
}

}  // namespace lmstream::server

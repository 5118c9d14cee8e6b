// LMI (DJL-Serving 0.25 rolling batch) /invocations: always a chunked 200 whose body is the json
// formatter's pieces or jsonlines (server/lmi_wire.h); request problems become DJL's 424 error
// chunk, as lmi-dist reports them.
#include <chrono>

#include "server/app.h"
#include "server/lmi_wire.h"
#include "server/pump.h"
#include "server/wire_json.h"

namespace lmstream::server {
namespace {

class LmiEncoder final : public StreamEncoder {
 public:
  LmiEncoder(OutputFormatter f, int buffer) : e_(f, buffer) {}
  std::string on_token(const TokenEvent& ev) override { return e_.on_token(ev); }
  std::string on_final(const FinalEvent& fe) override { return e_.on_final(fe); }

 private:
  LmiStreamEncoder e_;
};

}  // namespace

void lmi_invoke(App& app, std::shared_ptr<Exchange> ex) {
  if (ex->access().route.empty()) ex->access().route = "/invocations(lmi)";
  if (unavailable(app, *ex)) return;
  auto backend = app.backend();
  const auto& cfg = app.cfg();
  LmiStreamEncoder probe(cfg.output_formatter, cfg.rolling_batch_buffer);
  std::vector<Header> headers = {{"Content-Type", probe.content_type()}};
  app.metrics().count_request();
  auto permit = app.try_acquire();
  if (!permit) {
    app.metrics().count_failure("overloaded");
    nlohmann::ordered_json j;
    j["code"] = 429;
    j["type"] = "ServiceUnavailableException";
    j["message"] = "Model is overloaded";
    ex->respond(json_response(429, dump(j)));
    return;
  }
  auto error_stream = [&](const std::string& msg) {
    app.metrics().count_failure("validation");
    ex->start_stream(200, headers);
    ex->write(lmi_error_chunk(424, msg));
    ex->finish();
  };
  LmiRequest r;
  if (auto err = parse_lmi_request(ex->request().body, app.random_seed(), &r)) {
    error_stream(*err);
    return;
  }
  std::vector<int32_t> prompt = backend->encode(r.inputs, true);
  if (r.truncate && *r.truncate > 0 && prompt.size() > *r.truncate)
    prompt.erase(prompt.begin(), prompt.end() - std::ptrdiff_t(*r.truncate));
  if (int(prompt.size()) >= backend->info().max_position) {
    error_stream("the prompt has " + std::to_string(prompt.size()) + " tokens; the model's context is " +
                 std::to_string(backend->info().max_position));
    return;
  }
  GenerateRequest g;
  g.prompt = std::move(prompt);
  g.sampling = r.sampling;
  g.stop.max_new_tokens = r.max_new_tokens;
  g.stop.stop = r.stop_sequences;
  g.stop.include_stop = true;
  double validation_s = std::chrono::duration<double>(Clock::now() - ex->request().received).count();
  auto rs = backend->submit(std::move(g));
  app.track(rs);
  ex->start_stream(200, headers);
  auto held = std::make_shared<Permit>(std::move(*permit));
  Exchange* e = ex.get();
  int max_new = r.max_new_tokens;
  pump_encoded(ex, rs, std::make_shared<LmiEncoder>(cfg.output_formatter, cfg.rolling_batch_buffer), 0,
               [&app, e, held, validation_s, max_new](const FinalEvent& fe) {
                 record_final(app, *e, fe, validation_s, max_new);
               });
}

}  // namespace lmstream::server

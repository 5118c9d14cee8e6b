// The serving application (see app.h).
#include "server/app.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "server/sagemaker.h"
#include "server/wire_json.h"

namespace lmstream::server {

App::App(ServeConfig start_cfg) : rng_(std::random_device{}()) {
  snapshots_.push_back(std::make_unique<const ServeConfig>(std::move(start_cfg)));
  cfg_.store(snapshots_.back().get(), std::memory_order_release);
  metrics_ = std::make_unique<Metrics>(cfg().max_input_length, cfg().max_total_tokens);
}

void App::set_backend(std::shared_ptr<Backend> b, ServeConfig final_cfg) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (snapshots_.size() > 1) throw std::logic_error("the final configuration is published once");
    snapshots_.push_back(std::make_unique<const ServeConfig>(std::move(final_cfg)));
    cfg_.store(snapshots_.back().get(), std::memory_order_release);
    backend_ = std::move(b);
  }
  ready_ = true;
}

void App::clear_backend() {
  std::lock_guard<std::mutex> lk(mu_);
  backend_ = nullptr;
}

std::shared_ptr<Backend> App::backend() const {
  std::lock_guard<std::mutex> lk(mu_);
  return backend_;
}

TgiLimits App::tgi_limits() const {
  TgiLimits l;
  l.max_best_of = cfg().max_best_of;
  l.max_stop_sequences = cfg().max_stop_sequences;
  l.max_top_n_tokens = cfg().max_top_n_tokens;
  l.max_input_length = cfg().max_input_length;
  l.max_total_tokens = cfg().max_total_tokens;
  return l;
}

std::optional<Permit> App::try_acquire() {
  int n = in_flight_.fetch_add(1);
  if (n >= cfg().max_concurrent_requests) {
    in_flight_.fetch_sub(1);
    return std::nullopt;
  }
  return Permit(&in_flight_);
}

uint64_t App::random_seed() {
  std::lock_guard<std::mutex> lk(mu_);
  return rng_();
}

void App::track(const std::shared_ptr<RequestStream>& rs) {
  std::lock_guard<std::mutex> lk(mu_);
  std::erase_if(streams_, [](auto& w) { return w.expired(); });
  streams_.push_back(rs);
}

void App::cancel_all() {
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& w : streams_)
    if (auto s = w.lock()) s->cancel();
}

namespace {

// The access log's `error` of a refusal no route named: the message of the error body it was
// answered with (TGI's {"error": ...}, OpenAI's {"error": {"message": ...}}, AWS's {"message"} or
// {"Message"}, LMI's {"code", "message"}), or the body's text.
std::string refusal_reason(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (auto e = j.find("error"); e != j.end()) {
      if (e->is_string()) return e->get<std::string>();
      if (e->is_object() && e->contains("message") && (*e)["message"].is_string())
        return (*e)["message"].get<std::string>();
    }
    for (const char* k : {"message", "Message"})
      if (auto m = j.find(k); m != j.end() && m->is_string()) return m->get<std::string>();
  }
  std::string out;
  for (char c : body) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  return out;
}

}  // namespace

void App::on_complete(const HttpRequest& req, int status, const AccessInfo& a, double ms) {
  if (a.first_token_mono >= 0 && a.first_write_mono >= 0)
    metrics_->write_delay(a.first_write_mono - a.first_token_mono);
  nlohmann::ordered_json j;
  j["id"] = req.id;
  j["remote"] = req.remote;
  j["method"] = req.method;
  j["route"] = a.route.empty() ? req.path : a.route;
  j["path"] = req.path;
  j["status"] = status == 0 ? 499 : status;
  j["input_tokens"] = a.input_tokens;
  j["generated_tokens"] = a.generated_tokens;
  j["queue_ms"] = a.queue_ms;
  j["ttft_ms"] = a.ttft_ms;
  j["total_ms"] = ms;
  j["finish"] = a.finish;
  if (!a.error.empty())  // a rejected request's reason
    j["error"] = a.error[0] == '{' ? refusal_reason(a.error) : a.error;
  j["first_token_mono"] = a.first_token_mono;
  j["first_write_mono"] = a.first_write_mono;
  // Health probes and scrapes (every few seconds under SageMaker) go to debug level.
  bool probe = a.route == "/ping" || a.route == "/health" || a.route == "/metrics";
  spdlog::log(probe ? spdlog::level::debug : spdlog::level::info, "access {}", dump(j));
}

void record_final(App& app, Exchange& ex, const FinalEvent& fe, double validation_s,
                  int max_new_tokens) {
  RequestRecord r;
  r.success = fe.reason != FinishReason::kError && fe.reason != FinishReason::kCancelled;
  if (fe.reason == FinishReason::kError) r.failure = failure_label(ErrorKind::kGeneration);
  if (fe.reason == FinishReason::kCancelled)
    r.failure = ex.client_gone() ? "dropped" : "incomplete";
  r.duration_s = std::chrono::duration<double>(Clock::now() - ex.request().received).count();
  r.validation_s = validation_s;
  r.queue_s = fe.queued_s;
  r.inference_s = fe.total_s - fe.queued_s;
  r.ttft_s = fe.generated_tokens > 0 ? fe.first_token_s : -1;
  r.input_tokens = fe.input_tokens;
  r.generated_tokens = fe.generated_tokens;
  r.max_new_tokens = max_new_tokens;
  app.metrics().record(r);
  auto& a = ex.access();
  a.input_tokens = fe.input_tokens;
  a.generated_tokens = fe.generated_tokens;
  a.queue_ms = fe.queued_s * 1000.0;
  a.finish = finish_reason_name(fe.reason);
}

HttpResponse json_response(int status, std::string body) {
  return {status, {{"Content-Type", "application/json"}}, std::move(body)};
}

std::optional<Error> unavailable_error(const App& app) {
  if (app.ready() && !app.draining()) return std::nullopt;
  return Error{ErrorKind::kUnavailable,
               app.draining() ? "server is shutting down" : "model is loading"};
}

bool unavailable(App& app, Exchange& ex) {
  auto e = unavailable_error(app);
  if (e) ex.respond(tgi_error_response(*e));
  return e.has_value();
}

std::optional<Error> eula_error(const App& app, const HttpRequest& req) {
  if (!app.ready() || !app.cfg().require_eula.value_or(false)) return std::nullopt;
  if (sagemaker::eula_accepted(req.header("x-amzn-sagemaker-custom-attributes")))
    return std::nullopt;
  return Error{ErrorKind::kLicense, sagemaker::eula_message()};
}

void add_all_routes(App& app) {
  add_common_routes(app);
  add_tgi_routes(app);
  add_openai_routes(app);
  add_sagemaker_routes(app);
  app.routes().set_guard([&app](Exchange& ex) {
    const Auth* auth = app.auth();
    if (!auth) return true;
    auto r = auth->check(ex.request(), std::chrono::system_clock::now());
    if (!r) return true;
    ex.access().route = "(unauthorized)";
    ex.respond(std::move(*r));
    return false;
  });
  add_web_routes(app);
}

}  // namespace lmstream::server

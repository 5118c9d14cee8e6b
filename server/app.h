// The serving application: configuration, the backend (once loaded), metrics, the
// MAX_CONCURRENT_REQUESTS permits, the route table and the access log. Route handlers
// (routes_*.cc) are thin: parse, validate, submit, encode the stream.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "server/auth.h"
#include "server/backend.h"
#include "server/config.h"
#include "server/errors.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/validation.h"

namespace lmstream::server {

class App;
class Reply;

// One MAX_CONCURRENT_REQUESTS permit, held for the whole request (stream included).
class Permit {
 public:
  explicit Permit(std::atomic<int>* n) : n_(n) {}
  Permit(Permit&& o) noexcept : n_(o.n_) { o.n_ = nullptr; }
  Permit(const Permit&) = delete;
  ~Permit() {
    if (n_) n_->fetch_sub(1);
  }

 private:
  std::atomic<int>* n_;
};

class App {
 public:
  explicit App(ServeConfig start_cfg);
  // The configuration in force, as an immutable snapshot: the start-up one until the model is
  // loaded, then the final one (limits derived from the model), published once by set_backend.
  // Snapshots live as long as the App, so a reference a handler holds stays valid and unchanged
  // while another thread publishes; reading is one acquire load, from any thread.
  const ServeConfig& cfg() const { return *cfg_.load(std::memory_order_acquire); }
  // Installs the loaded, warmed-up backend with the final configuration, in that order, so a
  // handler that sees ready() also sees the final limits; /ping turns 200. Any thread.
  void set_backend(std::shared_ptr<Backend> b, ServeConfig final_cfg);
  // Takes the backend away again (shutdown); the configuration stays.
  void clear_backend();
  std::shared_ptr<Backend> backend() const;  // nullptr while loading
  bool ready() const { return ready_; }
  void set_draining() { draining_ = true; }
  // Authentication (server/auth.h); set before the server accepts connections. nullptr = none.
  void set_auth(std::shared_ptr<const Auth> a) { auth_ = std::move(a); }
  const Auth* auth() const { return auth_.get(); }
  bool draining() const { return draining_; }

  Metrics& metrics() { return *metrics_; }
  RouteTable& routes() { return routes_; }
  TgiLimits tgi_limits() const;
  std::optional<Permit> try_acquire();
  int in_flight() const { return in_flight_; }
  uint64_t random_seed();
  // Streams of admitted requests, so shutdown can cancel them after the grace period.
  void track(const std::shared_ptr<RequestStream>& rs);
  void cancel_all();
  // The access log line and the write-delay metric (HttpServer's completion callback).
  void on_complete(const HttpRequest& req, int status, const AccessInfo& a, double ms);

 private:
  // Every snapshot ever published (two at most), owned here; cfg_ points at the newest.
  std::vector<std::unique_ptr<const ServeConfig>> snapshots_;
  std::atomic<const ServeConfig*> cfg_{nullptr};
  std::unique_ptr<Metrics> metrics_;
  RouteTable routes_;
  mutable std::mutex mu_;
  std::shared_ptr<Backend> backend_;
  std::atomic<bool> ready_{false}, draining_{false};
  std::atomic<int> in_flight_{0};
  std::mt19937_64 rng_;
  std::vector<std::weak_ptr<RequestStream>> streams_;
  std::shared_ptr<const Auth> auth_;
};

// Route registration (routes_*.cc).
void add_common_routes(
    App& app);                  // /ping, /health, GET /, /info, /metrics, /v1/models, /invocations
void add_tgi_routes(App& app);  // /generate, /generate_stream, POST /, /tokenize
void add_openai_routes(App& app);  // /v1/chat/completions, /v1/completions
// SageMaker runtime API: POST /endpoints/{name}/invocations[-response-stream], AWS-shaped errors
// for /endpoints paths.
void add_sagemaker_routes(App& app);
// The playground page: GET /ui and /ui/<file> (web/), public; call after the guard is set.
void add_web_routes(App& app);
void add_all_routes(App& app);  // all of the above, behind the authentication guard
// True for a browser's page load (a GET whose Accept names text/html): GET / redirects it to /ui.
bool wants_page(const HttpRequest& req);

// The handlers behind /invocations, reusable by other front doors: they answer through a Reply
// (server/reply.h), which SageMaker's runtime routes replace to frame the answer.
void tgi_compat(App& app, std::shared_ptr<Reply> reply);
void lmi_invoke(App& app, std::shared_ptr<Reply> reply);
// OpenAI /v1/chat/completions (chat) or /v1/completions; also TGI's Messages API on /invocations.
void openai_handle(App& app, std::shared_ptr<Reply> reply, bool chat);
// SageMaker JumpStart's Llama 2 chat payload on /invocations (routes_dialog.cc):
// {"inputs": [[{"role", "content"}, ...], ...], "parameters": {...}}, a batch of dialogs answered
// as [{"generation": {"role": "assistant", "content": ...}}, ...].
void jumpstart_dialogs(App& app, std::shared_ptr<Reply> reply);
// True when the body is a JumpStart dialog batch: "inputs" is a list of lists (or of
// {"role", "content"} objects: one dialog).
bool is_dialog_payload(std::string_view body);
void invocations(App& app, std::shared_ptr<Reply> reply);  // by cfg().api

// Shared helpers for handlers.
// Metrics and access-log fields once a generation ended.
void record_final(App& app, Exchange& ex, const FinalEvent& fe, double validation_s,
                  int max_new_tokens);
HttpResponse json_response(int status, std::string body);
// kUnavailable while the model loads / the server drains.
std::optional<Error> unavailable_error(const App& app);
// unavailable_error() answered on TGI's wire (every route but the SageMaker runtime's uses it);
// true when it answered.
bool unavailable(App& app, Exchange& ex);
// The licence gate of /invocations (and so of /endpoints/*): kLicense when the request's
// CustomAttributes lack accept_eula=true while the model requires it.
std::optional<Error> eula_error(const App& app, const HttpRequest& req);

}  // namespace lmstream::server

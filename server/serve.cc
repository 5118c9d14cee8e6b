// `lmstream serve` lifecycle (see serve.h).
#include "server/serve.h"

#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/strings.h"
#include "dist/comm.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/http.h"
#include "store/progress.h"
#include "store/resolve.h"

namespace lmstream::server {

namespace asio = boost::asio;

namespace {

// One JSON object per line: {"time", "level", "message"}; an access line's fields are the object
// "access" instead of a message.
class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::ordered_json j;
    auto t = std::chrono::system_clock::to_time_t(msg.time);
    auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch()).count() %
        1000000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(us));
    j["time"] = buf;
    auto lv = spdlog::level::to_string_view(msg.level);
    j["level"] = std::string(lv.data(), lv.size());
    std::string text(msg.payload.data(), msg.payload.size());
    nlohmann::ordered_json fields;
    if (text.rfind("access {", 0) == 0)
      fields = nlohmann::ordered_json::parse(text.substr(7), nullptr, false);
    if (fields.is_object())
      j["access"] = fields;
    else
      j["message"] = text;
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLogFormatter>();
  }
};

}  // namespace

int serve(ServeConfig cfg, BackendOptions bopts, const std::vector<ConfigMessage>& notes) {
  auto auth = std::make_shared<const Auth>(cfg);  // throws on an unreadable credentials file
  auto logger = spdlog::stderr_color_mt("lmstream");
  spdlog::set_default_logger(logger);
  spdlog::flush_on(spdlog::level::info);
  spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL=debug shows the health-probe access lines too
  if (!cfg.log_level.empty()) spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  if (cfg.log_json) logger->set_formatter(std::make_unique<JsonLogFormatter>());
  for (const auto& m : notes) {
    if (m.level == ConfigMessage::kWarn)
      spdlog::warn("{}", m.text);
    else
      spdlog::info("{}", m.text);
  }
  // Tensor parallelism: rank 0 is the server; every other rank only executes its step plans.
  if (dist::Comm::world().size() > 1 && dist::Comm::world().rank() != 0) {
    store::ResolveOptions ro;
    if (!cfg.model_revision.empty()) ro.revision = cfg.model_revision;
    if (!cfg.gguf_file.empty()) ro.gguf_file = cfg.gguf_file;
    ro.download = store::DownloadOptions::from_env();
    bopts.model_path = store::resolve_model(bopts.model_path, ro);
    run_tp_worker(bopts);
    return 0;
  }

  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  // Limits are known once the model's context length is; until then these defaults only size
  // the metric buckets.
  ServeConfig early = cfg;
  if (early.max_input_length == 0) early.max_input_length = 1024;
  if (early.max_total_tokens == 0) early.max_total_tokens = 2048;
  App app(early);
  if (auth->any()) app.set_auth(auth);
  add_all_routes(app);
  HttpLimits lim{cfg.body_limit, cfg.header_limit, cfg.idle_timeout_s, cfg.read_timeout_s,
                 cfg.write_timeout_s};
  HttpServer server(ioc, app.routes(), lim,
                    [&app](const HttpRequest& r, int s, const AccessInfo& a, double ms) {
                      app.on_complete(r, s, a, ms);
                    });
  int port = server.listen(cfg.host, cfg.port);
  spdlog::info("listening on {}:{} (/invocations speaks {})", cfg.host, port,
               cfg.api == ApiMode::kLmi ? "lmi" : "tgi");
  if (auth->sigv4_enabled())
    spdlog::info("SigV4 required on /endpoints/* ({} key(s), service sagemaker, region {})",
                 auth->key_count(), cfg.region.empty() ? "any" : cfg.region);
  if (auth->api_key_enabled())
    spdlog::info("API key required on every route but /ping and /health");
  if (!auth->any() && !is_loopback_host(cfg.host))
    spdlog::warn(
        "no authentication configured while listening on {}: anyone who can reach this port can "
        "run the "
        "model (set --api-key and/or --aws-access-key-id/--aws-secret-access-key or "
        "--aws-credentials-file)",
        cfg.host);

  int exit_code = 0;
  std::atomic<bool> load_done{false};
  // LMSTREAM_DOWNLOAD_TIMEOUT: seconds the model data may take to download (the control plane
  // sets it from ModelDataDownloadTimeoutInSeconds); when it passes, the download is cancelled.
  std::atomic<bool> download_cancel{false}, download_timed_out{false}, download_done{false};
  int64_t download_timeout_s = 0;
  if (const char* v = std::getenv("LMSTREAM_DOWNLOAD_TIMEOUT"); v && *v) {
    long long n = 0;
    if (!base::parse_int64(v, n) || n <= 0)
      throw std::invalid_argument(std::string("LMSTREAM_DOWNLOAD_TIMEOUT='") + v +
                                  "': expected a whole number of seconds above 0");
    download_timeout_s = n;
  }
  std::shared_ptr<Backend> loaded;
  std::thread loader([&] {
    try {
      // Downloading counts as loading: /ping and /health answer 503 and model_loading_timeout
      // covers both.
      BackendOptions bo = bopts;
      store::ResolveOptions ro;
      if (!cfg.model_revision.empty()) ro.revision = cfg.model_revision;
      if (!cfg.gguf_file.empty()) ro.gguf_file = cfg.gguf_file;
      ro.download = store::DownloadOptions::from_env();
      store::Progress progress(store::Progress::Mode::kLines);
      ro.download.progress = &progress;
      ro.download.cancel = &download_cancel;
      try {
        bo.model_path = store::resolve_model(bopts.model_path, ro);
      } catch (const store::DownloadError& e) {
        if (!download_timed_out) throw;
        throw std::runtime_error("the model data did not download within " +
                                 std::to_string(download_timeout_s) +
                                 " s (LMSTREAM_DOWNLOAD_TIMEOUT; the control plane's "
                                 "ModelDataDownloadTimeoutInSeconds): " +
                                 e.what());
      }
      download_done = true;
      if (bo.model_path != bopts.model_path) {
        bo.model_id = bopts.model_path;
        spdlog::info("model {} is at {}", bopts.model_path, bo.model_path);
      }
      auto b = load_backend(bo);
      ServeConfig fin = cfg;
      finalize_limits(fin, b->info().max_position);
      finalize_sagemaker(fin, b->info().name);
      if (fin.max_batch_total_tokens == 0) fin.max_batch_total_tokens = int(b->info().kv_tokens);
      loaded = b;
      asio::post(ioc, [&app, b, fin] {
        app.set_backend(b, fin);
        spdlog::info("ready: max_input_length={} max_total_tokens={} max_concurrent_requests={}",
                     fin.max_input_length, fin.max_total_tokens, fin.max_concurrent_requests);
        spdlog::info(
            "SageMaker endpoint name: {} (POST /endpoints/{}/invocations[-response-stream]); "
            "licence gate "
            "(CustomAttributes accept_eula=true) {}",
            fin.endpoint_name, fin.endpoint_name, *fin.require_eula ? "on" : "off");
      });
    } catch (const std::exception& e) {
      spdlog::error("cannot serve the model: {}", e.what());
      asio::post(ioc, [&] {
        exit_code = 1;
        server.close_all();
        ioc.stop();
      });
    }
    load_done = true;
  });

  asio::steady_timer download_timer(ioc);
  if (download_timeout_s > 0) {
    download_timer.expires_after(std::chrono::seconds(download_timeout_s));
    download_timer.async_wait([&](boost::system::error_code ec) {
      if (ec || download_done || load_done) return;
      download_timed_out = true;
      download_cancel = true;
    });
  }
  asio::steady_timer load_timer(ioc);
  if (cfg.model_loading_timeout_s > 0) {
    load_timer.expires_after(
        std::chrono::milliseconds(int64_t(cfg.model_loading_timeout_s * 1000)));
    load_timer.async_wait([&](boost::system::error_code ec) {
      if (ec || load_done) return;
      spdlog::error(
          "the model did not download and load within model_loading_timeout ({} s; "
          "MODEL_LOADING_TIMEOUT / option.model_loading_timeout)",
          cfg.model_loading_timeout_s);
      std::_Exit(1);
    });
  }

  // Graceful shutdown.
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  asio::steady_timer drain_timer(ioc);
  Clock::time_point deadline;
  bool cancelled = false;
  std::function<void()> poll_drain = [&] {
    if (app.in_flight() == 0 || Clock::now() > deadline + std::chrono::seconds(5)) {
      spdlog::info("shutdown: {} request(s) still in flight; exiting", app.in_flight());
      server.close_all();
      work.reset();
      ioc.stop();
      return;
    }
    if (!cancelled && Clock::now() >= deadline) {
      cancelled = true;
      spdlog::warn("shutdown grace ({} s) over: cancelling {} request(s)", cfg.shutdown_grace_s,
                   app.in_flight());
      app.cancel_all();
    }
    drain_timer.expires_after(std::chrono::milliseconds(20));
    drain_timer.async_wait([&](boost::system::error_code ec) {
      if (!ec) poll_drain();
    });
  };
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int sig) {
    if (ec) return;
    if (app.draining()) {
      spdlog::warn("second signal: exiting now");
      app.cancel_all();
      server.close_all();
      ioc.stop();
      return;
    }
    spdlog::info("signal {}: stop accepting, draining {} request(s) for up to {} s", sig,
                 app.in_flight(), cfg.shutdown_grace_s);
    app.set_draining();
    server.stop_accepting();
    deadline = Clock::now() + std::chrono::milliseconds(int64_t(cfg.shutdown_grace_s * 1000));
    poll_drain();
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  http::run_io_threads(ioc, cfg.io_threads);
  if (!load_done) {
    spdlog::warn("exiting while the model is still loading");
    std::_Exit(exit_code);
  }
  loader.join();
  // Every exit path above calls close_all() and then ioc.stop(), so the closes it posted have not
  // run; until they do, an exchange holds a request on the backend, which would keep the engine
  // thread running past serve() and into freed memory.
  if (size_t n = server.close_and_drain())
    spdlog::warn("shutdown: {} connection(s) still referenced after closing", n);
  app.clear_backend();
  if (loaded && loaded.use_count() > 1)
    spdlog::warn("shutdown: the model is still referenced {} more time(s)", loaded.use_count() - 1);
  loaded.reset();  // stops the scheduler's engine thread
  spdlog::info("bye");
  return exit_code;
}

}  // namespace lmstream::server

// Routes every mode has: the SageMaker container contract (GET /ping, POST /invocations), TGI's
// GET / /health /info /metrics, and OpenAI's GET /v1/models. A browser's GET / goes to /ui.
#include <chrono>

#include "base/version.h"
#include "server/app.h"
#include "server/errors.h"
#include "server/reply.h"
#include "server/tp_info.h"
#include "server/wire_json.h"

namespace lmstream::server {
namespace {

void health(App& app, Exchange& ex) {
  ex.access().route = ex.request().path;
  if (!app.ready()) {
    ex.respond(tgi_error_response({ErrorKind::kHealthcheck, "model is loading"}));
    return;
  }
  if (app.cfg().api == ApiMode::kLmi && ex.request().path == "/ping") {
    nlohmann::ordered_json j;
    j[app.backend()->info().name]["status"] = "Healthy";
    ex.respond(json_response(200, dump(j)));
    return;
  }
  ex.respond({200, {}, ""});
}

void info(App& app, Exchange& ex) {
  ex.access().route = "/info";
  if (unavailable(app, ex)) return;
  auto b = app.backend();
  const auto& c = app.cfg();
  nlohmann::ordered_json j;
  j["model_id"] = b->info().id;
  j["model_sha"] = nullptr;
  j["model_dtype"] = b->info().dtype;
  j["model_device_type"] = "cpu";
  j["model_pipeline_tag"] = "text-generation";
  j["max_concurrent_requests"] = c.max_concurrent_requests;
  j["max_best_of"] = c.max_best_of;
  j["max_stop_sequences"] = c.max_stop_sequences;
  j["max_client_batch_size"] = c.max_client_batch_size;
  j["max_input_length"] = c.max_input_length;
  j["max_total_tokens"] = c.max_total_tokens;
  j["waiting_served_ratio"] = 1.2;
  j["max_batch_total_tokens"] = c.max_batch_total_tokens;
  j["max_waiting_tokens"] = 20;
  j["max_batch_size"] = c.max_rolling_batch_size;
  j["validation_workers"] = c.io_threads;
  j["version"] = base::kVersion;  // lmstream's, as `lmstream --version` says
  j["sha"] = nullptr;
  j["docker_label"] = nullptr;
  // lmstream's own: what /invocations speaks and the LMI settings in force.
  j["max_top_n_tokens"] = c.max_top_n_tokens;
  j["max_batch_prefill_tokens"] = c.max_batch_prefill_tokens;
  j["api"] = c.api == ApiMode::kLmi ? "lmi" : "tgi";
  j["max_rolling_batch_size"] = c.max_rolling_batch_size;
  j["output_formatter"] = c.output_formatter == OutputFormatter::kJsonLines ? "jsonlines" : "json";
  j["rolling_batch_buffer"] = c.rolling_batch_buffer;
  j["model_loading_timeout"] = c.model_loading_timeout_s;
  j["properties"] = c.properties_path.empty() ? nlohmann::ordered_json(nullptr)
                                              : nlohmann::ordered_json(c.properties_path);
  j["max_position_embeddings"] = b->info().max_position;
  // Tensor parallelism: the degree (TGI's num_shard) and what each rank holds.
  const TpInfo tp = tp_info();
  j["tensor_parallel_degree"] = tp.degree;
  j["shards"] = tp.shards;
  j["prefix_caching"] = c.prefix_caching;  // automatic prefix caching (--prefix-caching)
  // SageMaker runtime API: the name /endpoints/{name}/... answers to, and the licence gate.
  j["endpoint_name"] = c.endpoint_name;
  j["require_eula"] = c.require_eula.value_or(false);
  j["messages_api_enabled"] = c.messages_api_enabled;
  j["payload_limit"] = c.body_limit;  // PAYLOAD_LIMIT: the largest request body, in bytes
  j["quantize"] =
      c.quantize.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(c.quantize);
  ex.respond(json_response(200, dump(j)));
}

void metrics(App& app, Exchange& ex) {
  ex.access().route = "/metrics";
  SchedulerStats s;
  if (auto b = app.backend()) s = b->stats();
  ex.respond({200,
              {{"Content-Type", "text/plain; version=0.0.4"}},
              app.metrics().render(s, app.in_flight())});
}

void models(App& app, Exchange& ex) {
  ex.access().route = "/v1/models";
  if (unavailable(app, ex)) return;
  auto b = app.backend();
  nlohmann::ordered_json m;
  m["id"] = b->info().name;
  m["object"] = "model";
  m["created"] = 0;
  m["owned_by"] = "lmstream";
  nlohmann::ordered_json j;
  j["object"] = "list";
  j["data"] = nlohmann::ordered_json::array({m});
  ex.respond(json_response(200, dump(j)));
}

}  // namespace

void invocations(App& app, std::shared_ptr<Reply> reply) {
  bool lmi = app.cfg().api == ApiMode::kLmi;
  reply->access().route = lmi ? "/invocations(lmi)" : "/invocations(tgi)";
  if (auto e = eula_error(app, reply->request())) {
    app.metrics().count_failure(failure_label(e->kind));
    reply->error({*e, lmi ? lmi_error_response(*e) : tgi_error_response(*e), std::nullopt, ""});
    return;
  }
  // TGI's Messages API ({"messages": ...}, MESSAGES_API_ENABLED) and JumpStart's dialogs.
  const std::string& body = reply->request().body;
  if (body.find("\"messages\"") != std::string::npos) {
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("messages") && !j.contains("inputs")) {
      if (app.cfg().messages_api_enabled) {
        reply->access().route += "(messages)";
        openai_handle(app, std::move(reply), true);
        return;
      }
      Error e{ErrorKind::kUnprocessable,
              "`messages` on /invocations is TGI's Messages API, which is off on this server: "
              "start it with MESSAGES_API_ENABLED=true, or send the request to "
              "/v1/chat/completions, or send it as a JumpStart dialog: "
              "{inputs: [[{role, content}, ...]], parameters: {...}}"};
      app.metrics().count_failure(failure_label(e.kind));
      reply->error({e, lmi ? lmi_error_response(e) : tgi_error_response(e), std::nullopt, ""});
      return;
    }
  }
  if (body.find("\"inputs\"") != std::string::npos && is_dialog_payload(body)) {
    reply->access().route += "(dialog)";
    jumpstart_dialogs(app, std::move(reply));
    return;
  }
  if (lmi)
    lmi_invoke(app, std::move(reply));
  else
    tgi_compat(app, std::move(reply));
}

void add_common_routes(App& app) {
  auto& r = app.routes();
  for (const char* p : {"/ping", "/health"}) r.add("GET", p, [&app](auto ex) { health(app, *ex); });
  // A browser opening the server's address gets the playground page; API clients today's answer.
  r.add("GET", "/", [&app](auto ex) {
    if (!wants_page(ex->request())) return health(app, *ex);
    ex->access().route = "/";
    ex->respond(
        {302, {{"Location", "/ui"}, {"Content-Type", "text/plain; charset=utf-8"}}, "see /ui\n"});
  });
  r.add("GET", "/info", [&app](auto ex) { info(app, *ex); });
  r.add("GET", "/metrics", [&app](auto ex) { metrics(app, *ex); });
  r.add("GET", "/v1/models", [&app](auto ex) { models(app, *ex); });
  r.add("POST", "/invocations", [&app](auto ex) { invocations(app, std::make_shared<Reply>(ex)); });
}

}  // namespace lmstream::server

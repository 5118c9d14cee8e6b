// SageMaker runtime API (api.md §3.2): POST /endpoints/{EndpointName}/invocations and
// /invocations-response-stream. Each checks the operation, the endpoint name and readiness, then
// runs the /invocations handler of the configured API (TGI or LMI) through a sagemaker::Decorator,
// which adds SageMaker's headers, frames the stream as event-stream PayloadParts and turns errors
// into ModelError / ModelStreamError. Errors of the front door itself use the rest-json shapes
// botocore parses (x-amzn-ErrorType + {"message"}). Authentication runs before (server/auth.h).
#include "server/app.h"
#include "server/sagemaker.h"

namespace lmstream::server {
namespace {

using sagemaker::aws_error;

std::string quoted(std::string_view s) {  // echo at most 100 bytes of client input
  return "'" + std::string(s.substr(0, 100)) + (s.size() > 100 ? "...'" : "'");
}

void endpoint_invoke(App& app, const std::shared_ptr<Exchange>& ex) {
  const HttpRequest& req = ex->request();
  std::string rid = sagemaker::request_id();
  ex->access().route = "/endpoints";
  std::string_view rest = std::string_view(req.path).substr(std::string_view("/endpoints/").size());
  size_t slash = rest.find('/');
  std::string_view name = rest.substr(0, slash);
  std::string_view op = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  sagemaker::Operation operation;
  if (op == "invocations") {
    operation = sagemaker::Operation::kInvoke;
  } else if (op == "invocations-response-stream") {
    operation = sagemaker::Operation::kStream;
  } else if (op == "async-invocations") {
    ex->respond(aws_error(400, "ValidationError",
                          "InvokeEndpointAsync is not supported by this server; use InvokeEndpoint or "
                          "InvokeEndpointWithResponseStream",
                          rid));
    return;
  } else {
    ex->respond(aws_error(404, "UnknownOperationException",
                          "No operation at POST " + quoted(req.path) +
                              "; the runtime API has /endpoints/{EndpointName}/invocations and "
                              "/endpoints/{EndpointName}/invocations-response-stream",
                          rid));
    return;
  }
  if (!sagemaker::valid_endpoint_name(name)) {
    ex->respond(aws_error(400, "ValidationError",
                          "1 validation error detected: Value " + quoted(name) +
                              " at 'endpointName' failed to satisfy constraint: Member must satisfy regular "
                              "expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])* and have length less than or "
                              "equal to 63",
                          rid));
    return;
  }
  if (!app.ready() || app.draining()) {
    ex->respond(aws_error(503, "ServiceUnavailable",
                          app.draining() ? "The endpoint is shutting down." : "The endpoint's model is still loading.",
                          rid));
    return;
  }
  const ServeConfig& cfg = app.cfg();
  if (name != cfg.endpoint_name) {
    ex->respond(aws_error(400, "ValidationError",
                          "Endpoint " + std::string(name) + " not found. This server serves the endpoint " +
                              cfg.endpoint_name + ".",
                          rid));
    return;
  }
  auto d = std::make_shared<sagemaker::Decorator>(ex, operation, cfg.api, sagemaker::ResponseInfo{rid, "AllTraffic"});
  std::string route = "/endpoints/" + std::string(op) + (cfg.api == ApiMode::kLmi ? "(lmi)" : "(tgi)");
  try {
    invocations(app, d);
  } catch (const std::exception& e) {
    ex->access().route = route;
    d->abort("internal error");
    return;
  }
  ex->access().route = route;
  d->release();
}

}  // namespace

void add_sagemaker_routes(App& app) {
  app.routes().add_prefix("POST", "/endpoints/", [&app](auto ex) { endpoint_invoke(app, ex); });
  app.routes().set_error_shaper(
      [&app](int status, const std::string& path, const std::string& message) -> std::optional<HttpResponse> {
        if (path.rfind("/endpoints/", 0) != 0) return std::nullopt;
        std::string rid = sagemaker::request_id();
        if (status == 413)
          return aws_error(413, "ValidationError",
                           "Request body exceeds the maximum size of " + std::to_string(app.cfg().body_limit) +
                               " bytes for InvokeEndpoint and InvokeEndpointWithResponseStream.",
                           rid);
        if (status == 404 || status == 405)
          return aws_error(status, "UnknownOperationException", message + ": " + path, rid);
        return aws_error(status, status >= 500 ? "InternalFailure" : "ValidationError", message, rid);
      });
}

}  // namespace lmstream::server

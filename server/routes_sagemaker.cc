// SageMaker runtime API (api.md §3.2): POST /endpoints/{EndpointName}/invocations and
// /invocations-response-stream. Each checks the operation, the endpoint name and readiness, then
// runs the /invocations handler of the configured API (TGI or LMI) answering through a
// sagemaker::EndpointReply, which adds SageMaker's headers, frames streams as event-stream
// PayloadParts and turns typed errors into ModelError / ModelStreamError. Errors of the front door
// itself are typed too (server/errors.h) and use the rest-json shapes botocore parses
// (x-amzn-ErrorType + {"message"}). Authentication runs before (server/auth.h).
#include "server/app.h"
#include "server/sagemaker.h"

namespace lmstream::server {
namespace {

using sagemaker::error_response;

std::string echo_quoted(std::string_view s) {  // echo at most 100 bytes of client input
  return "'" + std::string(s.substr(0, 100)) + (s.size() > 100 ? "...'" : "'");
}

void endpoint_invoke(App& app, const std::shared_ptr<Exchange>& ex) {
  const HttpRequest& req = ex->request();
  std::string rid = sagemaker::request_id();
  ex->access().route = "/endpoints";
  std::string_view rest = std::string_view(req.path).substr(std::string_view("/endpoints/").size());
  size_t slash = rest.find('/');
  std::string_view name = rest.substr(0, slash);
  std::string_view op =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  sagemaker::Operation operation;
  if (op == "invocations") {
    operation = sagemaker::Operation::kInvoke;
  } else if (op == "invocations-response-stream") {
    operation = sagemaker::Operation::kStream;
  } else if (op == "async-invocations") {
    ex->respond(error_response(
        {ErrorKind::kUnsupportedFeature,
         "InvokeEndpointAsync is not supported by this server; use InvokeEndpoint or "
         "InvokeEndpointWithResponseStream"},
        rid));
    return;
  } else {
    ex->respond(
        error_response({ErrorKind::kNotFound,
                        "No operation at POST " + echo_quoted(req.path) +
                            "; the runtime API has /endpoints/{EndpointName}/invocations and "
                            "/endpoints/{EndpointName}/invocations-response-stream"},
                       rid));
    return;
  }
  if (!sagemaker::valid_endpoint_name(name)) {
    ex->respond(error_response(
        {ErrorKind::kBadRequest,
         "1 validation error detected: Value " + echo_quoted(name) +
             " at 'endpointName' failed to satisfy constraint: Member must satisfy regular "
             "expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])* and have length less than or "
             "equal to 63"},
        rid));
    return;
  }
  if (!app.ready() || app.draining()) {
    ex->respond(error_response(
        {ErrorKind::kUnavailable, app.draining() ? "The endpoint is shutting down."
                                                 : "The endpoint's model is still loading."},
        rid));
    return;
  }
  const ServeConfig& cfg = app.cfg();
  if (name != cfg.endpoint_name) {
    // SageMaker answers an unknown endpoint as a validation error (400), not 404.
    ex->respond(
        error_response({ErrorKind::kBadRequest, "Endpoint " + std::string(name) +
                                                    " not found. This server serves the endpoint " +
                                                    cfg.endpoint_name + "."},
                       rid));
    return;
  }
  auto reply = std::make_shared<sagemaker::EndpointReply>(
      ex, operation, cfg.api, sagemaker::ResponseInfo{rid, "AllTraffic"});
  std::string route =
      "/endpoints/" + std::string(op) + (cfg.api == ApiMode::kLmi ? "(lmi)" : "(tgi)");
  try {
    invocations(app, reply);
  } catch (const std::exception&) {
    reply->internal_failure();
  }
  ex->access().route = route;
}

}  // namespace

void add_sagemaker_routes(App& app) {
  app.routes().add_prefix("POST", "/endpoints/", [&app](auto ex) { endpoint_invoke(app, ex); });
  app.routes().set_error_shaper([&app](int status, const std::string& path,
                                       const std::string& message) -> std::optional<HttpResponse> {
    if (path.rfind("/endpoints/", 0) != 0) {
      // The other routes keep axum's plain text, stating the limit (PAYLOAD_LIMIT).
      if (status == 413)
        return HttpResponse{413,
                            {{"Content-Type", "text/plain; charset=utf-8"}},
                            message + ": the request body is limited to " +
                                std::to_string(app.cfg().body_limit) + " bytes (PAYLOAD_LIMIT)"};
      return std::nullopt;
    }
    // The HTTP layer reports its own rejections by status; these are the kinds they stand for.
    std::string rid = sagemaker::request_id();
    switch (status) {
      case 413:
        return error_response(
            {ErrorKind::kPayloadTooLarge,
             "Request body exceeds the maximum size of " + std::to_string(app.cfg().body_limit) +
                 " bytes for InvokeEndpoint and InvokeEndpointWithResponseStream."},
            rid);
      case 404:
        return error_response({ErrorKind::kNotFound, message + ": " + path}, rid);
      case 405:
        return error_response({ErrorKind::kMethodNotAllowed, message + ": " + path}, rid);
      case 400:
        return error_response({ErrorKind::kBadRequest, message}, rid);
      case 408:
        return error_response({ErrorKind::kRequestTimeout, message}, rid);
      case 431:
        return error_response({ErrorKind::kHeadersTooLarge, message}, rid);
      default:
        return sagemaker::aws_error(status, status >= 500 ? "InternalFailure" : "ValidationError",
                                    message, rid);
    }
  });
}

}  // namespace lmstream::server

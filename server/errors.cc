// Typed errors: the status table and one encoder per wire (see errors.h).
#include "server/errors.h"

#include "server/lmi_wire.h"
#include "server/openai_wire.h"
#include "server/tgi_wire.h"
#include "server/wire_json.h"

namespace lmstream::server {
namespace {

constexpr const char* kGenerationLead = "Request failed during generation: ";

// The status table. Rows are in ErrorKind order (checked by error_info).
// kind, name, status, TGI error_type, OpenAI type, DJL type, AWS status, AWS code, lead, fallback
constexpr ErrorInfo kTable[] = {
    {ErrorKind::kBadRequest, "bad_request", 400, "", "invalid_request_error", "", 400,
     "ValidationError", "", ""},
    {ErrorKind::kInvalidRequest, "invalid_request", 400, "invalid_request_error",
     "invalid_request_error", "", 400, "ValidationError", "", ""},
    {ErrorKind::kUnsupportedMediaType, "unsupported_media_type", 415, "", "invalid_request_error",
     "", 415, "ValidationError", "", ""},
    {ErrorKind::kUnprocessable, "unprocessable", 422, "", "invalid_request_error", "", 400,
     "ValidationError", "", ""},
    {ErrorKind::kValidation, "validation", 422, "validation", "validation", "", 400,
     "ValidationError", "", ""},
    {ErrorKind::kTemplate, "template_error", 422, "template_error", "template_error", "", 400,
     "ValidationError", "", ""},
    {ErrorKind::kUnsupportedFeature, "unsupported_feature", 422, "suffix not supported",
     "suffix not supported", "", 400, "ValidationError", "", ""},
    {ErrorKind::kLicense, "license", 400, "validation", "validation", "", 400, "ValidationError",
     "", ""},
    {ErrorKind::kUnauthorized, "unauthorized", 401, "authentication", "authentication", "", 403,
     "UnrecognizedClientException", "", ""},
    {ErrorKind::kInvalidSignature, "invalid_signature", 403, "authentication", "authentication", "",
     403, "InvalidSignatureException", "", ""},
    {ErrorKind::kIncompleteSignature, "incomplete_signature", 403, "authentication",
     "authentication", "", 403, "IncompleteSignatureException", "", ""},
    {ErrorKind::kUnrecognizedClient, "unrecognized_client", 403, "authentication", "authentication",
     "", 403, "UnrecognizedClientException", "", ""},
    {ErrorKind::kNotFound, "not_found", 404, "", "invalid_request_error", "", 404,
     "UnknownOperationException", "", "Not Found"},
    {ErrorKind::kMethodNotAllowed, "method_not_allowed", 405, "", "invalid_request_error", "", 405,
     "UnknownOperationException", "", "Method Not Allowed"},
    {ErrorKind::kRequestTimeout, "request_timeout", 408, "", "invalid_request_error", "", 408,
     "ValidationError", "", ""},
    {ErrorKind::kPayloadTooLarge, "payload_too_large", 413, "", "invalid_request_error", "", 413,
     "ValidationError", "", ""},
    {ErrorKind::kHeadersTooLarge, "headers_too_large", 431, "", "invalid_request_error", "", 431,
     "ValidationError", "", ""},
    {ErrorKind::kOverloaded, "overloaded", 429, "overloaded", "overloaded",
     "ServiceUnavailableException", 429, "ThrottlingException", "", "Model is overloaded"},
    {ErrorKind::kUnavailable, "unavailable", 503, "unavailable", "unavailable",
     "ServiceUnavailableException", 503, "ServiceUnavailable", "", "model is loading"},
    {ErrorKind::kHealthcheck, "healthcheck", 503, "healthcheck", "unavailable",
     "ServiceUnavailableException", 503, "ServiceUnavailable", "", "model is loading"},
    {ErrorKind::kGeneration, "generation", 424, "generation", "generation", "", 424, "ModelError",
     kGenerationLead, ""},
    {ErrorKind::kIncomplete, "incomplete_generation", 500, "incomplete_generation",
     "incomplete_generation", "", 500, "InternalFailure", "", "Incomplete generation"},
    {ErrorKind::kInternal, "internal", 500, "", "internal_error", "", 500, "InternalFailure", "",
     "internal error"},
};
static_assert(sizeof(kTable) / sizeof(kTable[0]) == size_t(kErrorKinds),
              "one status-table row per ErrorKind");

constexpr bool rows_in_order() {
  for (int i = 0; i < kErrorKinds; ++i)
    if (int(kTable[i].kind) != i) return false;
  return true;
}
static_assert(rows_in_order(), "status-table rows follow ErrorKind's order");

}  // namespace

const ErrorInfo& error_info(ErrorKind k) { return kTable[int(k)]; }

int http_status(ErrorKind k) { return error_info(k).status; }

std::string error_text(const Error& e) {
  const ErrorInfo& i = error_info(e.kind);
  return std::string(i.lead) + (e.message.empty() ? std::string(i.fallback) : e.message);
}

std::string failure_label(ErrorKind k) { return error_info(k).tgi_type; }

std::optional<Error> final_error(const FinalEvent& fe) {
  // Both GenerationErrorKinds (refused at submit, failed while running) are a failed generation
  // on every wire: the request was admitted and handed to the scheduler.
  if (fe.reason == FinishReason::kError) return Error{ErrorKind::kGeneration, fe.error};
  if (fe.reason == FinishReason::kCancelled) return Error{ErrorKind::kIncomplete, ""};
  return std::nullopt;
}

// ---------------------------------------------------------------- TGI

std::string tgi_error_body(const Error& e) {
  return tgi_error_json(error_text(e), error_info(e.kind).tgi_type);
}

std::string tgi_error_event(const Error& e) { return sse_event(tgi_error_body(e)); }

HttpResponse tgi_error_response(const Error& e) {
  const ErrorInfo& i = error_info(e.kind);
  if (*i.tgi_type == '\0')
    return {i.status, {{"Content-Type", "text/plain; charset=utf-8"}}, error_text(e)};
  HttpResponse r{i.status, {{"Content-Type", "application/json"}}, tgi_error_body(e)};
  if (i.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

// ---------------------------------------------------------------- LMI

std::string lmi_error_text(const Error& e) {
  if (e.kind == ErrorKind::kIncomplete && e.message.empty())
    return "request cancelled";  // DJL's words
  return e.message.empty() ? std::string(error_info(e.kind).fallback) : e.message;
}

std::string lmi_error_chunk(const Error& e) {
  return lmi_error_chunk(kLmiStreamErrorCode, lmi_error_text(e));
}

HttpResponse lmi_error_response(const Error& e) {
  const ErrorInfo& i = error_info(e.kind);
  nlohmann::ordered_json j;
  j["code"] = i.status;
  if (*i.djl_type != '\0') {
    j["type"] = i.djl_type;
    j["message"] = lmi_error_text(e);
  } else {
    j["message"] = "prediction failure";
    j["error"] = lmi_error_text(e);
  }
  return {i.status, {{"Content-Type", "application/json"}}, dump(j)};
}

// ---------------------------------------------------------------- OpenAI

HttpResponse openai_error_response(const Error& e) {
  const ErrorInfo& i = error_info(e.kind);
  return {i.status,
          {{"Content-Type", "application/json"}},
          openai_error_json(error_text(e), i.openai_type, i.status, e.param)};
}

std::string openai_error_event(const Error& e) {
  return "data: " + openai_error_json(error_text(e), "generation_error", 424) + "\n\n";
}

}  // namespace lmstream::server

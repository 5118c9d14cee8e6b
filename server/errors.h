// Typed errors for every route, encoded once per wire. An Error is a kind and a message; ONE
// status table maps each kind to its HTTP status, TGI error_type, OpenAI type, DJL (LMI) type and
// the SageMaker runtime's status and AWS error code; one encoder per wire turns an Error into
// bytes: TGI ({"error","error_type"} or axum's plain text), LMI (DJL's JSON and its 424 stream
// chunk), OpenAI ({"error":{message,type,param,code}}), SageMaker (rest-json AWS errors,
// ModelError, the event-stream ModelStreamError). The scheduler's typed FinalEvent errors enter
// through final_error(). Must not: do I/O, know routes, include the engine, or turn bytes back
// into errors (nothing here parses what a wire wrote).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "scheduler/request.h"
#include "server/http.h"

namespace lmstream::server {

enum class ErrorKind {
  kBadRequest,            // 400: the body is not JSON / malformed HTTP (axum plain text)
  kInvalidRequest,        // 400: OpenAI's own request checks (invalid_request_error)
  kUnsupportedMediaType,  // 415: Content-Type is not JSON (axum plain text)
  kUnprocessable,         // 422: JSON of the wrong shape (axum plain text) / over a limit (OpenAI)
  kValidation,            // 422: a validation rule failed (TGI "validation")
  kTemplate,              // 422: the chat template failed to render ("template_error")
  kUnsupportedFeature,    // 422: a feature this server does not have ("suffix not supported")
  kLicense,               // 400: the model's licence (EULA) was not accepted
  kUnauthorized,          // 401: missing or wrong API key
  kInvalidSignature,      // 403: SigV4 signature does not match
  kIncompleteSignature,   // 403: SigV4 Authorization missing or malformed
  kUnrecognizedClient,    // 403: unknown AWS access key
  kNotFound,              // 404: no such route / runtime operation
  kMethodNotAllowed,      // 405: known route, other method
  kRequestTimeout,        // 408: the request was not read in time
  kPayloadTooLarge,       // 413: the body is over the limit
  kHeadersTooLarge,       // 431: the header block is over the limit
  kOverloaded,            // 429: MAX_CONCURRENT_REQUESTS reached
  kUnavailable,           // 503: the model is loading / the server is shutting down
  kHealthcheck,           // 503: the health probe while the model loads
  kGeneration,            // 424: the request failed during generation (engine, sampler, scheduler)
  kIncomplete,            // 500: the generation ended early (cancelled)
  kInternal,              // 500: a handler failed
};
inline constexpr int kErrorKinds = int(ErrorKind::kInternal) + 1;

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  // What the client reads. For kGeneration: the cause alone (the wires add their lead-in); for
  // kIncomplete it may be empty (the wires' own words are used).
  std::string message;
  // The request parameter at fault, when one is (OpenAI's error.param); "" = none.
  std::string param = {};
};

// One row of the status table.
struct ErrorInfo {
  ErrorKind kind;
  const char* name;         // for logs and tests: "validation", "overloaded", ...
  int status;               // HTTP status on TGI, LMI's JSON answers and OpenAI
  const char* tgi_type;     // TGI error_type; "" = axum's plain-text rejection (no JSON)
  const char* openai_type;  // OpenAI error.type
  const char*
      djl_type;    // DJL frontend exception type for LMI's JSON answers; "" = a prediction failure
  int aws_status;  // the SageMaker runtime API's status for it
  const char* aws_code;  // x-amzn-ErrorType there
  const char* lead;      // put before the message on TGI/OpenAI/SageMaker ("" = none)
  const char* fallback;  // the text when the message is empty
};
const ErrorInfo& error_info(ErrorKind k);
int http_status(ErrorKind k);
// The message as TGI, OpenAI and SageMaker state it: lead + (message or fallback).
std::string error_text(const Error& e);
// The metrics failure label (TGI's error_type; axum's rejections have none).
std::string failure_label(ErrorKind k);

// A stream's end as a wire encoder reports it: its last bytes before the wire's error event (all
// of them when the stream ends well) and the typed error it ends with, so a framing (SageMaker's
// event stream) can frame both without reading the bytes.
struct StreamEnd {
  std::string bytes;
  std::optional<Error> error;
};

// The error a FinalEvent ends with: kError -> kGeneration, kCancelled -> kIncomplete; nullopt else.
std::optional<Error> final_error(const FinalEvent& fe);

// ---- TGI (api.md §1.7)
// {"error","error_type"} (application/json), or axum's text/plain body for kinds without a TGI
// error_type; a 401 also says `WWW-Authenticate: Bearer`.
HttpResponse tgi_error_response(const Error& e);
std::string tgi_error_body(const Error& e);   // the JSON object alone
std::string tgi_error_event(const Error& e);  // the SSE event: "data:" + body + "\n\n"

// ---- LMI (DJL-Serving 0.25)
// DJL's answers outside a stream: {"code","type","message"} for frontend errors (overloaded),
// {"code","message":"prediction failure","error"} for the rest.
HttpResponse lmi_error_response(const Error& e);
// The error inside a 200 stream: DJL's pretty-printed {"code": 424, "error": ...} chunk.
inline constexpr int kLmiStreamErrorCode = 424;
std::string lmi_error_chunk(const Error& e);
// The message as DJL states it (kIncomplete: "request cancelled"; no lead-in).
std::string lmi_error_text(const Error& e);

// ---- OpenAI (api.md §4)
HttpResponse openai_error_response(const Error& e);
// An error inside a stream (the status is already 200): one `data: {"error":...}` event, typed
// generation_error with code 424 whatever the kind.
std::string openai_error_event(const Error& e);

}  // namespace lmstream::server

// `lmstream invoke` without the command line: builds the request (route, payload, SageMaker
// headers, SigV4 or bearer auth), sends it (http/client.h), decodes the answer as it streams in and
// hands the text to a callback. reference/api.md §3.2 (routes/headers), §5 (signing), §1.5/§2.5
// (bodies).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/sigv4.h"
#include "client/endpoint.h"
#include "client/stream_decoders.h"

namespace lmstream::client {

// An HTTP error answer (non-2xx), or a request that cannot be built.
class InvokeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Which server the payload, route and decoder are shaped for. kAuto: TGI/LMI-compatible payload
// to /invocations, response format detected.
enum class Api { kAuto, kTgi, kLmi, kOpenai };
std::optional<Api> api_from_name(std::string_view name);

struct GenerationParams {
  std::optional<int> max_new_tokens, top_k;
  std::optional<double> temperature, top_p, repetition_penalty;
  std::optional<uint64_t> seed;
  std::optional<bool> do_sample, return_full_text;
  std::vector<std::string> stop;
};

struct InvokeOptions {
  std::string endpoint_url;  // http://host[:port][/base]
  std::string endpoint;      // SageMaker endpoint name; "" = the container's own routes
  bool stream = false;
  Api api = Api::kAuto;
  std::optional<std::string> payload;  // sent as is when set
  std::string inputs;                  // prompt text (already chat-formatted when wanted)
  // OpenAI chat messages (role, content); when non-empty with kOpenai, /v1/chat/completions.
  std::vector<std::pair<std::string, std::string>> messages;
  GenerationParams params;
  std::string content_type = "application/json";
  std::string accept;  // "" = not sent
  // X-Amzn-SageMaker-Custom-Attributes on every route; "" = not sent (never defaulted: the
  // licence is the user's to accept).
  std::string custom_attributes;
  std::optional<sigv4::Credentials> credentials;  // signs /endpoints requests when set
  std::string region = "us-east-1";
  std::string api_key;  // Authorization: Bearer (when not signing)
  std::string ca_file;  // PEM bundle to trust for https:// ("" = the system's)
  HttpTimeouts timeouts;
};

// The request body for `o` (o.payload when set).
std::string build_payload(const InvokeOptions& o);
// The request path, below the URL's base path. Throws InvokeError for a bad endpoint name.
std::string request_path(const InvokeOptions& o);
// The whole request, signed when credentials are given and an endpoint is named.
HttpRequest build_request(const InvokeOptions& o, const Url& url, sigv4::Clock::time_point now);
// A one-line message for a non-2xx answer: status, error code (x-amzn-ErrorType, AWS/TGI/DJL/OpenAI
// error JSON) and message, or the start of the body.
std::string http_error_message(int status, std::string_view reason,
                               std::optional<std::string> amzn_error_type, std::string_view body);
// The decoder for a response with this Content-Type (and X-Amzn-SageMaker-Content-Type for
// event streams): event streams are unwrapped; --api picks the inner format, else auto-detection.
std::unique_ptr<TextDecoder> make_response_decoder(const InvokeOptions& o,
                                                   std::string_view content_type,
                                                   std::string_view sagemaker_content_type);

struct InvokeStats {
  double ttfb_s = 0;   // request sent -> response header received
  double ttft_s = -1;  // request sent -> first generated text decoded (-1: none)
  double total_s = 0;
  size_t tokens = 0;
  bool tokens_exact = true;  // false: `tokens` counts text chunks (LMI json has no token events)
};

// Sends the request and calls on_text with each piece of generated text as it is decoded. Throws
// HttpError (transport), InvokeError (non-2xx answer), StreamError (error reported in the stream),
// FormatError (undecodable body); text decoded before a failure has already been passed on.
InvokeStats invoke(const InvokeOptions& o, const std::function<void(std::string_view)>& on_text);

}  // namespace lmstream::client

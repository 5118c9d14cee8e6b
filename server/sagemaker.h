// SageMaker runtime front door pieces (reference/api.md §3): endpoint-name rules, the AWS error
// shapes botocore parses, the licence (EULA) gate's CustomAttributes check, and the Reply and
// StreamEncoder that turn a container's answer (typed errors, TGI or LMI streams from
// /invocations' handlers) into what InvokeEndpoint / InvokeEndpointWithResponseStream return.
// Knows nothing of the engine, and never reads back the bytes a container encoder wrote.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/config.h"
#include "server/errors.h"
#include "server/http.h"
#include "server/pump.h"
#include "server/reply.h"

namespace lmstream::server::sagemaker {

inline constexpr size_t kMaxEndpointName = 63;

// ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$, at most 63 characters.
bool valid_endpoint_name(std::string_view name);
// A valid endpoint name made from a model name: runs of other characters become one '-', leading
// and trailing '-' dropped, cut to 63 characters; "lmstream" when nothing is left.
std::string endpoint_name_from(std::string_view model_name);
// True when `s` names a Llama 2 chat model ("llama-2"/"llama2" and "chat", any case).
bool is_llama2_chat(std::string_view s);
// True when the CustomAttributes value holds accept_eula=true (items separated by ';' or ',',
// whitespace around them ignored, the value compared case-insensitively).
bool eula_accepted(const std::string* custom_attributes);
// The message of the licence gate's rejection.
std::string eula_message();

// A fresh request id (random UUID v4 text).
std::string request_id();

// rest-json error: `status`, x-amzn-ErrorType `code`, x-amzn-RequestId, body {"message": ...}.
HttpResponse aws_error(int status, std::string_view code, std::string_view message,
                       const std::string& request_id);
// ModelError (424): the container answered `original_status` with `original_body`.
HttpResponse model_error(int original_status, std::string_view original_body,
                         const std::string& request_id);

// A typed error on the runtime API itself: rest-json with the status table's AWS status and code.
HttpResponse error_response(const Error& e, const std::string& request_id);
// The ModelStreamError (ErrorCode StreamBroken) that ends a response stream when the container's
// stream fails: its message quotes the error the way the container's wire (`container`) words it.
std::string stream_error(const Error& e, ApiMode container);

// Frames a container's stream encoder as InvokeEndpointWithResponseStream's event stream: each
// chunk of the container's bytes becomes one PayloadPart; the typed error the stream ends with
// becomes a ModelStreamError exception in place of the container's error event.
class EventStreamEncoder final : public StreamEncoder {
 public:
  EventStreamEncoder(std::shared_ptr<StreamEncoder> inner, ApiMode container)
      : inner_(std::move(inner)), container_(container) {}
  std::string on_token(const TokenEvent& ev) override;
  StreamEnd on_end(const FinalEvent& fe) override;
  std::string error_event(const Error& e) override;
  // The last PayloadPart and the exception, each its own chunk.
  std::vector<std::string> on_final_chunks(const FinalEvent& fe) override;
  std::string keepalive() override;

 private:
  std::shared_ptr<StreamEncoder> inner_;
  ApiMode container_;
};

// What every answer on the runtime API carries.
struct ResponseInfo {
  std::string request_id;
  std::string variant = "AllTraffic";
};

enum class Operation { kInvoke, kStream };

// The Reply (server/reply.h) the container handler answers through for one
// /endpoints/{name}/... request. The handler sees a request whose Accept comes from
// X-Amzn-SageMaker-Accept (streaming operation). Request-level errors become ModelError (424,
// quoting the container's status and body); successful answers get SageMaker's headers; kStream
// frames streams through EventStreamEncoder and a whole answer as one PayloadPart, kInvoke passes
// the container's bytes through. Only the first answer counts (a handler that threw may still
// have a generation in flight).
class EndpointReply final : public Reply {
 public:
  EndpointReply(std::shared_ptr<Exchange> inner, Operation op, ApiMode mode, ResponseInfo info);

  const HttpRequest& request() const override { return view_; }
  void respond(HttpResponse r) override;
  void error(ErrorAnswer a) override;
  void stream(std::vector<Header> headers, std::shared_ptr<RequestStream> rs,
              std::shared_ptr<StreamEncoder> enc, double keepalive_s,
              std::function<void(const FinalEvent&)> after) override;
  // The handler threw: InternalFailure unless it had already answered.
  void internal_failure();

 private:
  std::vector<Header> common_headers(const std::vector<Header>& container) const;

  Operation op_;
  ApiMode mode_;
  ResponseInfo info_;
  HttpRequest view_;
  bool answered_ = false;
};

}  // namespace lmstream::server::sagemaker

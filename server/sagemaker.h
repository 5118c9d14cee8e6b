// SageMaker runtime front door pieces (reference/api.md §3): endpoint-name rules, the AWS error
// shapes botocore parses, the licence (EULA) gate's CustomAttributes check, and the Exchange
// decorator that turns a container response (TGI or LMI bytes from /invocations' handlers) into
// what InvokeEndpoint / InvokeEndpointWithResponseStream return. Knows nothing of the engine.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/config.h"
#include "server/http.h"

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

// A container chunk split at the wire's error event: the bytes before it, and the error text
// when the chunk carries one (TGI SSE `data:{"error":...}` events, LMI's `{"code": N, "error":
// ...}` chunk). `status` is the status the error stands for (TGI error_type / LMI code).
struct ChunkSplit {
  std::string payload;
  std::optional<std::string> error;
  std::string error_body;  // the error event's JSON as the container sent it
  int status = 500;
};
ChunkSplit split_chunk(ApiMode mode, std::string_view chunk);

// What the decorator adds to every answer.
struct ResponseInfo {
  std::string request_id;
  std::string variant = "AllTraffic";
};

enum class Operation { kInvoke, kStream };

// Wraps the connection's Exchange for one /endpoints/{name}/... request. The container handler
// sees a request whose Accept comes from X-Amzn-SageMaker-Accept (streaming operation) and answers
// as it would on /invocations. Until release() is called (right after the handler returns) the
// decorator holds the answer back, so an error the handler reports synchronously (validation,
// overload) comes back as ModelError even when the handler had already begun a stream. After
// that, kStream frames every write() as one PayloadPart (own HTTP chunk) and turns the wire's
// error event into a ModelStreamError exception that ends the stream; kInvoke passes the bytes
// through with SageMaker's response headers.
class Decorator final : public Exchange {
 public:
  Decorator(std::shared_ptr<Exchange> inner, Operation op, ApiMode mode, ResponseInfo info);
  // The handler returned: send what it left pending.
  void release();
  // The handler threw: InternalFailure when nothing was sent yet, else the stream ends.
  void abort(const std::string& message);

  const HttpRequest& request() const override { return view_; }
  AccessInfo& access() override { return inner_->access(); }
  boost::asio::any_io_executor executor() override { return inner_->executor(); }
  void respond(HttpResponse r) override;
  void start_stream(int status, std::vector<Header> headers) override;
  void write(std::string chunk) override;
  void finish() override;
  bool client_gone() const override { return inner_->client_gone(); }
  void on_client_gone(std::function<void()> fn) override { inner_->on_client_gone(std::move(fn)); }
  Clock::time_point first_chunk_written() const override { return inner_->first_chunk_written(); }

 private:
  std::vector<Header> common_headers(const std::vector<Header>& container) const;
  void send_stream_headers();
  void emit(std::string chunk);  // after release: frame or pass through

  std::shared_ptr<Exchange> inner_;
  Operation op_;
  ApiMode mode_;
  ResponseInfo info_;
  HttpRequest view_;
  bool held_ = true;       // before release()
  bool started_ = false;   // start_stream() seen
  bool sent_head_ = false; // inner stream begun
  bool ended_ = false;     // respond()/finish() seen, or the stream broke
  bool broke_ = false;     // a ModelStreamError was sent
  int status_ = 200;
  std::vector<Header> container_headers_;
  std::vector<std::string> pending_;  // container chunks written while held
};

}  // namespace lmstream::server::sagemaker

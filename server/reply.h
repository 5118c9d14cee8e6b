// How a container handler (TGI, LMI: what /invocations runs) answers: through a Reply, never by
// writing errors or streams to the Exchange itself, so a front door can frame the answer from
// typed values. The base class sends the container's own wire; sagemaker::EndpointReply frames it
// for the SageMaker runtime API. Must not: parse, hold back or re-read the bytes it is given.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/errors.h"
#include "server/http.h"
#include "server/pump.h"

namespace lmstream::server {

// A container's answer to a request-level error (before generation), as its own wire sends it:
// a whole response, or (TGI when streaming, LMI always) a 200 stream holding one error event.
struct ErrorAnswer {
  Error error;
  // The status the error stands for and the wire's error body (SageMaker's ModelError reports
  // both); sent as is unless `stream_headers` is set.
  HttpResponse response;
  std::optional<std::vector<Header>>
      stream_headers;  // set: a 200 stream of these headers + `event`
  std::string event;
};

// Records a refusal's kind and message in the access log's `error` field.
void note_error(AccessInfo& access, const Error& e);

class Reply {
 public:
  explicit Reply(std::shared_ptr<Exchange> ex) : ex_(std::move(ex)) {}
  virtual ~Reply() = default;
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;

  const std::shared_ptr<Exchange>& exchange() const { return ex_; }
  virtual const HttpRequest& request() const { return ex_->request(); }
  AccessInfo& access() { return ex_->access(); }

  virtual void respond(HttpResponse r);  // a whole, successful answer
  virtual void error(ErrorAnswer a);
  // Streams rs through enc under a 200 head with `headers`; after(fe) runs once the last bytes
  // are queued.
  virtual void stream(std::vector<Header> headers, std::shared_ptr<RequestStream> rs,
                      std::shared_ptr<StreamEncoder> enc, double keepalive_s,
                      std::function<void(const FinalEvent&)> after);

 protected:
  std::shared_ptr<Exchange> ex_;
};

}  // namespace lmstream::server

// A container handler's answer on its own wire (see reply.h).
#include "server/reply.h"

namespace lmstream::server {

void Reply::respond(HttpResponse r) { ex_->respond(std::move(r)); }

void note_error(AccessInfo& access, const Error& e) {
  access.error = std::string(error_info(e.kind).name) + ": " + error_text(e);
}

void Reply::error(ErrorAnswer a) {
  note_error(ex_->access(), a.error);
  if (!a.stream_headers) {
    ex_->respond(std::move(a.response));
    return;
  }
  ex_->start_stream(200, std::move(*a.stream_headers));
  ex_->write(std::move(a.event));
  ex_->finish();
}

void Reply::stream(std::vector<Header> headers, std::shared_ptr<RequestStream> rs,
                   std::shared_ptr<StreamEncoder> enc, double keepalive_s,
                   std::function<void(const FinalEvent&)> after) {
  ex_->start_stream(200, std::move(headers));
  pump_encoded(ex_, std::move(rs), std::move(enc), keepalive_s, std::move(after));
}

}  // namespace lmstream::server

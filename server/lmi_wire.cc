// LMI 0.25 wire encoder (see lmi_wire.h).
#include "server/lmi_wire.h"

#include "server/wire_json.h"

namespace lmstream::server {

std::string lmi_error_chunk(int code, const std::string& error) {
  return "{\n  \"code\": " + std::to_string(code) + ",\n  \"error\": \"" + py_json_escape(error) + "\"\n}";
}

std::string LmiStreamEncoder::piece(const std::string& text, bool first) const {
  if (f_ == OutputFormatter::kJsonLines) return "{\"outputs\": [\"" + py_json_escape(text) + "\"]}\n";
  return (first ? std::string("{\"generated_text\": \"") : std::string()) + py_json_escape(text);
}

std::string LmiStreamEncoder::on_token(const TokenEvent& ev) {
  ++k_;
  pending_ += piece(ev.emit, k_ == 1);
  if ((k_ - 1) % buffer_ != 0) return "";
  return std::move(pending_);
}

std::string LmiStreamEncoder::on_final(const FinalEvent& fe) {
  std::string out = std::move(pending_);
  pending_.clear();
  if (fe.reason == FinishReason::kError || fe.reason == FinishReason::kCancelled) {
    return out + lmi_error_chunk(424, fe.reason == FinishReason::kError ? fe.error : "request cancelled");
  }
  if (f_ == OutputFormatter::kJsonLines) {
    if (!fe.tail.empty() || k_ == 0) out += piece(fe.tail, false);
    return out;
  }
  if (k_ == 0) out += "{\"generated_text\": \"";
  out += py_json_escape(fe.tail) + "\"}";
  return out;
}

}  // namespace lmstream::server

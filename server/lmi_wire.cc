// LMI 0.25 wire encoder (see lmi_wire.h).
#include "server/lmi_wire.h"

#include "server/wire_json.h"

namespace lmstream::server {

std::string lmi_error_chunk(int code, const std::string& error) {
  return "{\n  \"code\": " + std::to_string(code) + ",\n  \"error\": \"" + py_json_escape(error) +
         "\"\n}";
}

std::string LmiStreamEncoder::piece(const std::string& text, bool first) const {
  if (f_ == OutputFormatter::kJsonLines)
    return "{\"outputs\": [\"" + py_json_escape(text) + "\"]}\n";
  return (first ? std::string("{\"generated_text\": \"") : std::string()) + py_json_escape(text);
}

std::string LmiStreamEncoder::on_token(const TokenEvent& ev) {
  ++k_;
  pending_ += piece(ev.emit, k_ == 1);
  if ((k_ - 1) % buffer_ != 0) return "";
  return std::move(pending_);
}

std::string LmiStreamEncoder::on_final(const FinalEvent& fe) {
  StreamEnd end = on_end(fe);
  if (end.error) end.bytes += lmi_error_chunk(*end.error);
  return std::move(end.bytes);
}

StreamEnd LmiStreamEncoder::on_end(const FinalEvent& fe) {
  StreamEnd end;
  end.bytes = std::move(pending_);
  pending_.clear();
  if ((end.error = final_error(fe))) return end;
  if (f_ == OutputFormatter::kJsonLines) {
    if (!fe.tail.empty() || k_ == 0) end.bytes += piece(fe.tail, false);
    return end;
  }
  if (k_ == 0) end.bytes += "{\"generated_text\": \"";
  end.bytes += py_json_escape(fe.tail) + "\"}";
  return end;
}

}  // namespace lmstream::server

// DJL-Serving LMI 0.25 rolling-batch output over the engine's event stream (api.md §2.5): the
// `json` formatter's pieces ({"generated_text": " + escaped texts + "}) or `jsonlines` lines
// ({"outputs": ["..."]}\n), grouped into chunks like DJL's frontend buffer (the first piece alone,
// then every SERVING_ROLLING_BATCH_BUFFER pieces, the last with whatever is left). Errors become
// DJL's pretty-printed {"code": 424, ...} chunk. Pure: no I/O.
#pragma once

#include <string>

#include "scheduler/request.h"
#include "server/config.h"

namespace lmstream::server {

std::string lmi_error_chunk(int code, const std::string& error);  // Gson pretty-printed map

class LmiStreamEncoder {
 public:
  LmiStreamEncoder(OutputFormatter f, int buffer) : f_(f), buffer_(buffer < 1 ? 1 : buffer) {}
  // Bytes to send now as one chunk ("" while the piece is held in the buffer).
  std::string on_token(const TokenEvent& ev);
  std::string on_final(const FinalEvent& fe);
  // DJL frontend error JSON for requests that fail before any generation (status stays 200).
  std::string content_type() const {
    return f_ == OutputFormatter::kJsonLines ? "application/jsonlines" : "application/json";
  }

 private:
  std::string piece(const std::string& text, bool first) const;
  OutputFormatter f_;
  int buffer_;
  int k_ = 0;
  std::string pending_;
};

}  // namespace lmstream::server

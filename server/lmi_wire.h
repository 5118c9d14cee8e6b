// DJL-Serving LMI 0.25 rolling-batch output over the engine's event stream (api.md §2.5): the
// `json` formatter's pieces ({"generated_text": " + escaped texts + "}) or `jsonlines` lines
// ({"outputs": ["..."]}\n), grouped into chunks like DJL's frontend buffer (the first piece alone,
// then every SERVING_ROLLING_BATCH_BUFFER pieces, the last with whatever is left). Errors become
// DJL's pretty-printed {"code": 424, ...} chunk. Pure: no I/O.
#pragma once

#include <string>

#include "scheduler/request.h"
#include "server/config.h"
#include "server/errors.h"

namespace lmstream::server {

// DJL's {"code": N, "error": ...} chunk, Gson pretty-printed; server/errors.h chooses its content.
std::string lmi_error_chunk(int code, const std::string& error);

class LmiStreamEncoder {
 public:
  LmiStreamEncoder(OutputFormatter f, int buffer) : f_(f), buffer_(buffer < 1 ? 1 : buffer) {}
  // Bytes to send now as one chunk ("" while the piece is held in the buffer).
  std::string on_token(const TokenEvent& ev);
  // The end typed: the buffered pieces and closing text, and the error the stream ends with.
  StreamEnd on_end(const FinalEvent& fe);
  std::string on_final(const FinalEvent& fe);  // on_end()'s bytes + the 424 error chunk
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

// TGI's wire format over the engine's event stream (api.md §1.4–1.7): SSE events exactly as axum
// writes them (`data:{json}\n\n`, `:\n\n` keep-alives), the final event that carries the last
// token, the non-streaming JSON (optionally wrapped in a one-element array) and error bodies.
// Pure functions of the events: no I/O, no engine.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/request.h"
#include "server/errors.h"

namespace lmstream::server {

// Token id -> text/special, for top_tokens and prefill details.
struct TokenLookup {
  std::function<std::string(int32_t)> text;
  std::function<bool(int32_t)> special;
};

struct TgiOptions {
  bool details = false;
  bool decoder_input_details = false;
  std::string full_text_prefix;  // the prompt when return_full_text
  bool sampling = false;         // seed is null when not sampling
  // To know which token is the last one (TGI's final event carries it): the same finish rules the
  // scheduler applies, in TGI's order.
  int max_new_tokens = 20;
  int32_t eos_id = 2;
  bool ignore_eos = false;
  std::vector<std::string> stop;
  int input_len = 0;
  int capacity = 0;  // tokens a sequence may hold in all (0 = unknown)
};

// The {"error","error_type"} object; server/errors.h's encoders choose what goes in it.
std::string tgi_error_json(const std::string& error, const std::string& error_type);
std::string sse_event(const std::string& json);  // "data:" + json + "\n\n"
inline const char* sse_keepalive() { return ":\n\n"; }

class TgiStreamEncoder {
 public:
  TgiStreamEncoder(TgiOptions o, TokenLookup lookup)
      : o_(std::move(o)), lookup_(std::move(lookup)) {}
  // Bytes to send now; "" when the token is held because it will be the final event's token.
  std::string on_token(const TokenEvent& ev);
  // The end typed: the held token / final event, and the error the stream ends with (a failed or
  // cancelled generation, or one that ended before any token).
  StreamEnd on_end(const FinalEvent& fe);
  std::string on_final(const FinalEvent& fe);  // on_end()'s bytes + tgi_error_event()

 private:
  std::string token_event(const TokenEvent& ev) const;
  TgiOptions o_;
  TokenLookup lookup_;
  std::optional<TokenEvent> held_;
  std::optional<TokenEvent> last_;
  int count_ = 0;
  std::string emitted_;
};

// Non-streaming /generate body; `array` wraps it as `[...]` (compat / and /invocations).
std::string tgi_generate_json(const std::vector<TokenEvent>& tokens, const FinalEvent& fe,
                              const std::vector<int32_t>& prompt, const TgiOptions& o,
                              const TokenLookup& lookup, bool array);

}  // namespace lmstream::server

// OpenAI-style wire format (api.md §4) over the engine's event stream: chat.completion.chunk /
// text_completion SSE chunks (`data: {json}\n\n`, ending with `data: [DONE]\n\n`), and the
// non-streaming chat.completion / text_completion bodies. Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>

#include "scheduler/request.h"
#include "server/errors.h"

namespace lmstream::server {

struct OpenAiOptions {
  bool chat = true;
  std::string id;       // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0;  // unix seconds
  std::string model;
};

const char* openai_finish_reason(FinishReason r);  // "stop" / "length"
// The {"error":{message,type,param,code}} object; server/errors.h's encoders choose its content.
std::string openai_error_json(const std::string& message, const std::string& type, int code);

class OpenAiStreamEncoder {
 public:
  explicit OpenAiStreamEncoder(OpenAiOptions o) : o_(std::move(o)) {}
  std::string on_start();  // chat: the role chunk
  std::string on_token(const TokenEvent& ev);
  // The end typed: the last chunk, or the error the stream ends with.
  StreamEnd on_end(const FinalEvent& fe);
  std::string on_final(const FinalEvent& fe);  // on_end()'s bytes + openai_error_event() + [DONE]

 private:
  std::string chunk(const std::string& text, const char* finish, bool role) const;
  OpenAiOptions o_;
};

std::string openai_response_json(const OpenAiOptions& o, const FinalEvent& fe);

}  // namespace lmstream::server

// OpenAI-style wire format (api.md §4) over the engine's event stream: chat.completion.chunk /
// text_completion SSE chunks (`data: {json}\n\n`, ending with `data: [DONE]\n\n`), and the
// non-streaming chat.completion / text_completion bodies. Pure: no I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "scheduler/request.h"
#include "server/errors.h"
#include "server/wire_json.h"

namespace lmstream::server {

struct OpenAiOptions {
  bool chat = true;
  std::string id;       // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0;  // unix seconds
  std::string model;
  // logprobs / top_logprobs (chat), logprobs = N (completions): per-token log-probabilities.
  bool logprobs = false;
  int top_logprobs = 0;
  bool include_usage = false;  // stream_options.include_usage: a usage chunk before [DONE]
  std::string echo;            // completions echo: the prompt text, sent before the answer
  // The text of a token id (for top_logprobs alternatives); unset: "".
  std::function<std::string(int32_t)> token_text;
};

// One choice of a non-streaming answer: the sequence's tokens (for logprobs), its end, and (echo
// with logprobs on completions) the prompt's tokens, their logprob the model gave each (the first
// has none: NaN).
struct OpenAiChoice {
  int index = 0;
  std::vector<TokenEvent> tokens;
  FinalEvent fe;
  std::vector<TokenEvent> prompt_tokens;
};
struct OpenAiUsage {
  int prompt_tokens = 0, completion_tokens = 0;
  int cached_tokens = 0;  // prompt tokens whose KV came from the prefix cache
};
// The logprobs object of a choice: chat {"content": [{token, logprob, bytes, top_logprobs}],
// "refusal": null}; completions {tokens, token_logprobs, top_logprobs, text_offset} with text
// offsets from `offset0`. Special tokens (</s>) are not listed.
WireJson openai_logprobs_json(const OpenAiOptions& o, const std::vector<TokenEvent>& tokens,
                              size_t offset0);
// The whole non-streaming body for any number of choices.
std::string openai_choices_json(const OpenAiOptions& o, const std::vector<OpenAiChoice>& choices,
                                OpenAiUsage usage);

const char* openai_finish_reason(FinishReason r);  // "stop" / "length"
// The {"error":{message,type,param,code}} object; server/errors.h's encoders choose its content.
// `param` names the request parameter at fault ("" = null).
std::string openai_error_json(const std::string& message, const std::string& type, int code,
                              const std::string& param = "");

class OpenAiStreamEncoder {
 public:
  explicit OpenAiStreamEncoder(OpenAiOptions o) : o_(std::move(o)) {}
  std::string on_start();  // chat: the role chunk
  std::string on_token(const TokenEvent& ev);
  // The end typed: the last chunk, or the error the stream ends with.
  StreamEnd on_end(const FinalEvent& fe);
  std::string on_final(const FinalEvent& fe);  // on_end()'s bytes + openai_error_event() + [DONE]

 private:
  std::string chunk(const std::string& text, const char* finish, bool role,
                    const WireJson* logprobs = nullptr) const;
  OpenAiOptions o_;
  size_t offset_ = 0;  // completions: text offset of the next token (logprobs' text_offset)
};

}  // namespace lmstream::server

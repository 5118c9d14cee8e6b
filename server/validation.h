// TGI request parsing and validation (api.md §1.2–1.3), in one place: the body rejections axum
// makes before TGI sees a request (415 / 400 / 422 plain text), then ONE table of TGI's checks in
// TGI's order with its exact messages, then the token-count checks after tokenization. Also the
// LMI 0.25 parameter parsing (no range checks there, as in lmi-dist) and the OpenAI request
// checks (api.md §4), likewise with their exact messages here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/request.h"
#include "server/errors.h"

namespace lmstream::server {

struct TgiParams {
  std::optional<uint64_t> best_of;
  std::optional<float> temperature, repetition_penalty, frequency_penalty, top_p, typical_p;
  std::optional<int32_t> top_k;
  bool do_sample = false;
  uint32_t max_new_tokens = 20;  // TGI 1.0.3: non-nullable u32, default 20
  std::optional<bool> return_full_text;
  std::vector<std::string> stop;
  std::optional<uint64_t> truncate;
  bool watermark = false;
  bool details = false;
  bool decoder_input_details = false;
  std::optional<uint64_t> seed;
  std::optional<uint32_t> top_n_tokens;
  bool has_grammar = false;
  std::string cache_salt;  // prefix caching: requests share cached KV only with equal salts
};

struct TgiRequest {
  std::string inputs;
  TgiParams parameters;
  bool stream = false;  // compat routes only
};

struct TgiLimits {
  int max_best_of = 2;
  int max_stop_sequences = 4;
  int max_top_n_tokens = 5;
  int max_input_length = 1024;
  int max_total_tokens = 2048;
};

// axum's Json<T> extraction: Content-Type must be application/json (kUnsupportedMediaType), the
// body must be JSON (kBadRequest), and it must fit the schema (kUnprocessable); TGI's wire answers
// them as axum's plain text. compat: the body may carry "stream".
std::optional<Error> parse_tgi_request(const std::string* content_type, std::string_view body,
                                       bool compat, TgiRequest* out);

// TGI's validation table (checks 1–13 and the stream-only checks), first failure wins.
std::optional<std::string> validate_tgi(const TgiRequest& r, const TgiLimits& l, bool stream);
// Checks 14–15 once the prompt is tokenized (input_len after truncation).
std::optional<std::string> validate_tgi_lengths(int input_len, uint32_t max_new_tokens,
                                                const TgiLimits& l);

// kValidation with TGI's "Input validation error: " before a rule's message.
Error validation_error(const std::string& message);

// Sampling as TGI's NextTokenChooser does it: sampling when do_sample or any warper is set.
SamplingParams tgi_sampling(const TgiParams& p, uint64_t random_seed);
bool tgi_is_sampling(const TgiParams& p);

// LMI 0.25 (lmi-dist) request: {"inputs": "...", "parameters": {...}}; parameters outside
// lmi-dist's list are ignored. Errors are messages for DJL's 424 error chunk.
struct LmiRequest {
  std::string inputs;
  SamplingParams sampling;
  int max_new_tokens = 30;
  std::vector<std::string> stop_sequences;
  std::optional<uint64_t> truncate;
  bool seed_given = false;
  std::string cache_salt;  // parameters.cache_salt
};
std::optional<std::string> parse_lmi_request(std::string_view body, uint64_t random_seed,
                                             LmiRequest* out);

// OpenAI /v1/chat/completions (chat) and /v1/completions request, checked in order, first failure
// wins (kInvalidRequest unless said otherwise). The template and the token counts are the
// route's (they need the model).
// Every body key is either honoured, or refused (400, error.param naming it): the unbuilt ones
// (tools, response_format, ...) and unknown ones alike.
struct OpenAiRequest {
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int max_tokens = 100;
  int n = 1;                     // choices per prompt
  int best_of = 1;               // completions: sequences per prompt, the n best returned
  SamplingParams sampling;       // seed: see `seed`; logit_bias ids unchecked against the vocab
  std::optional<uint64_t> seed;  // none given: the route picks one (choice i uses seed + i)
  std::vector<std::string> stop;
  std::vector<std::pair<std::string, std::string>> messages;  // chat: (role, text)
  // completions: text prompts, or token-id prompts (then `prompts` is empty).
  std::vector<std::string> prompts;
  std::vector<std::vector<int32_t>> prompt_ids;
  bool logprobs = false;   // chat `logprobs`; completions: `logprobs` given (an integer)
  int top_logprobs = 0;    // chat `top_logprobs`; completions `logprobs`
  bool echo = false;       // completions
  std::string cache_salt;  // vLLM's top-level cache_salt
};
// The body keys parse_openai_request honours (chat or completions), for tests and docs.
const std::vector<std::string>& openai_known_keys(bool chat);
std::optional<Error> parse_openai_request(const std::string& body, bool chat,
                                          int max_stop_sequences, OpenAiRequest* out);

}  // namespace lmstream::server

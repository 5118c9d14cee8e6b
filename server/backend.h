// What the HTTP layer needs from inference: submit a tokenized request and get its event stream,
// tokenize text, format chat prompts, read scheduler statistics. The real implementation
// (server/model_backend.h) wraps Model + Tokenizer + Engine + Scheduler; tests use a fake. Routes
// and encoders only ever see this interface, never the engine.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chat/chat.h"
#include "scheduler/request.h"
#include "scheduler/scheduler.h"

namespace lmstream::server {

// Facts about the loaded model that /info, /v1/models and validation need.
struct ModelInfo {
  std::string id;        // what the user gave (path / HF_MODEL_ID)
  std::string name;      // Model::name
  std::string dtype;     // weight type, e.g. "q8_0"
  int max_position = 0;  // context length
  int vocab_size = 0;
  int32_t eos_id = 2;
  int max_new_tokens_default = 0;  // generation_config.json max_new_tokens (0 = not given)
  int64_t kv_tokens = 0;           // KV pool capacity in tokens
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const ModelInfo& info() const = 0;
  // Queues a request; never blocks on the engine.
  virtual std::shared_ptr<RequestStream> submit(GenerateRequest req) = 0;
  virtual SchedulerStats stats() const = 0;
  // HF-style prompt encoding: BOS when add_bos; literal "<s>" etc. become control tokens.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos) const = 0;
  // The text a token contributes on its own as TGI shows it (special tokens as their literal).
  virtual std::string token_text(int32_t id) const = 0;
  virtual bool is_special(int32_t id) const = 0;
  // Chat messages rendered through the model's chat template, tokenized (BOS included).
  // Throws std::invalid_argument with a readable message when the messages cannot be rendered.
  virtual std::vector<int32_t> chat_prompt(const std::vector<ChatMessage>& messages) const = 0;
};

}  // namespace lmstream::server

// The Llama 2 chat prompt format, as Meta's reference chat_completion builds it (token ids) and as
// the Hugging Face chat_template renders it (text with literal <s>/</s>). Only formatting: no
// model, no sampling, no HTTP.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace lmstream {

struct ChatMessage {
  std::string role;     // "system" (first message only), "user" or "assistant"
  std::string content;
};

// [BOS] + "[INST] {user} [/INST] {answer} " + [EOS] per completed exchange, then
// [BOS] + "[INST] {user} [/INST]" for the final user turn, each part encoded with encode_plain.
// A leading system message is merged into the first user message. Throws std::invalid_argument
// unless roles are (system)? user (assistant user)*.
std::vector<int32_t> llama2_chat_tokens(const Tokenizer& tok, std::span<const ChatMessage> messages);

// The same prompt as text: "<s>[INST] ... [/INST] ... </s><s>[INST] ... [/INST]". Same checks.
std::string llama2_chat_text(std::span<const ChatMessage> messages);

}  // namespace lmstream

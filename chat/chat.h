// Chat prompt formatting: the built-in Llama 2 format, as Meta's reference chat_completion builds
// it (token ids) and as the Hugging Face chat_template renders it (text with literal <s>/</s>),
// and any model's own chat_template rendered through chat/jinja. Only formatting: no
// model, no sampling, no HTTP.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace lmstream {

struct ChatMessage {
  std::string role;  // "system" (first message only), "user" or "assistant"
  std::string content;
};

// [BOS] + "[INST] {user} [/INST] {answer} " + [EOS] per completed exchange, then
// [BOS] + "[INST] {user} [/INST]" for the final user turn, each part encoded with encode_plain.
// A leading system message is merged into the first user message. Throws std::invalid_argument
// unless roles are (system)? user (assistant user)*.
std::vector<int32_t> llama2_chat_tokens(const Tokenizer& tok,
                                        std::span<const ChatMessage> messages);

// The same prompt as text: "<s>[INST] ... [/INST] ... </s><s>[INST] ... [/INST]". Same checks.
std::string llama2_chat_text(std::span<const ChatMessage> messages);

// Renders a Hugging Face chat_template (tokenizer_config.json "chat_template" or GGUF
// tokenizer.chat_template) the way transformers' apply_chat_template(tokenize=False) does:
// jinja2 with trim_blocks/lstrip_blocks, context {messages: [{role, content}], bos_token,
// eos_token, add_generation_prompt}. For the HF Llama 2 template the result equals
// llama2_chat_text(). Throws JinjaError (a std::invalid_argument, with the template position)
// on a bad template or when the template calls raise_exception (e.g. wrong role order).
//
// The result holds special tokens as literal text ("<s>[INST] ..."). Tokenize it like HF does
// for templated text: Tokenizer::encode(text, add_bos, /*parse_special=*/true) so "<s>" and "</s>"
// become BOS/EOS, with add_bos = false when the text already starts with bos (the template put
// it there; add it only for templates that do not, and only if the model's add_bos is set).
std::string render_chat_template(std::string_view tpl, std::span<const ChatMessage> messages,
                                 const std::string& bos, const std::string& eos,
                                 bool add_generation_prompt);

}  // namespace lmstream

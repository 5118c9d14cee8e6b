// ChatFormatter: the one rule that turns a conversation into a prompt, shared by `serve`
// (/v1/chat/completions, the LMI and TGI chat routes), `generate --chat` and `tokenize --chat`.
// Made once per model, like TGI's ChatTemplate::new(template, bos, eos), then apply()ed per
// request.
//
// The rule:
// - Template: a template file given by the user (--chat-template) wins; else the model's own
//   chat_template (tokenizer_config.json / GGUF tokenizer.chat_template); else the built-in
//   Llama 2 format (chat.h).
// - Each template is checked once, at construction, on a one-turn conversation. A user's file
//   that fails is an error (JinjaError, with its line and column); a model's template that fails
//   is put aside (fallback_reason() says why) and the built-in format is used.
// - Tokens: templated text holds its special tokens as literal text ("<s>", "</s>"), so it is
//   tokenized with parse_special, as HF does; BOS is prepended only when the text does not
//   already start with the BOS piece and the model's add_bos is set. The built-in format is
//   tokenized as Meta's chat_completion does (llama2_chat_tokens).
// Only formatting: it never logs, reads files other than the template file, or sees the engine.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "chat/chat.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace lmstream {

class ChatFormatter {
 public:
  enum class Source { kTemplateFile, kModelTemplate, kBuiltinLlama2 };

  // spec: the model's tokenizer description (chat_template, add_bos). template_file: a Jinja file
  // to use instead of the model's template ("" = none); its contents are read here. tok must
  // outlive the formatter. Throws std::runtime_error when the file cannot be read and JinjaError
  // (a std::invalid_argument) when it cannot be rendered.
  ChatFormatter(const TokenizerSpec& spec, const Tokenizer& tok,
                const std::string& template_file = "");

  Source source() const { return source_; }
  // The template in use ("" for the built-in format).
  const std::string& chat_template() const { return template_; }
  // Why the model's chat_template is not used although it has one ("" otherwise).
  const std::string& fallback_reason() const { return fallback_reason_; }

  // The prompt as text, special tokens as literal text. Throws std::invalid_argument (JinjaError
  // for templates) when the messages cannot be rendered (e.g. the template's raise_exception, or
  // the built-in format's role order).
  std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt) const;

  // The prompt as token ids, by the BOS rule above. add_bos = false never adds a BOS of its own
  // (`tokenize --no-bos`); one written by the template is kept. Same errors as render().
  std::vector<int32_t> apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                             bool add_bos = true) const;

 private:
  const Tokenizer& tok_;
  bool model_add_bos_;
  Source source_ = Source::kBuiltinLlama2;
  std::string template_;
  std::string fallback_reason_;
};

}  // namespace lmstream

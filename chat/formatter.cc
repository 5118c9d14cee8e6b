// ChatFormatter (see formatter.h): template choice, the one-turn check, rendering, the BOS rule.
// It reports a fallback through fallback_reason() and never logs or prints: callers tell the user.
#include "chat/formatter.h"

#include <exception>

#include "base/files.h"

namespace lmstream {

ChatFormatter::ChatFormatter(const TokenizerSpec& spec, const Tokenizer& tok,
                             const std::string& template_file)
    : tok_(tok), model_add_bos_(spec.add_bos) {
  const ChatMessage probe{"user", "Hello"};
  if (!template_file.empty()) {
    template_ = base::read_file(template_file);
    source_ = Source::kTemplateFile;
    render(std::span(&probe, 1), true);  // a user's template that cannot render is an error
    return;
  }
  if (spec.chat_template.empty()) return;  // the built-in Llama 2 format
  template_ = spec.chat_template;
  source_ = Source::kModelTemplate;
  try {
    render(std::span(&probe, 1), true);
  } catch (const std::exception& e) {
    fallback_reason_ = e.what();
    template_.clear();
    source_ = Source::kBuiltinLlama2;
  }
}

std::string ChatFormatter::render(std::span<const ChatMessage> messages,
                                  bool add_generation_prompt) const {
  if (source_ == Source::kBuiltinLlama2) return llama2_chat_text(messages);
  return render_chat_template(template_, messages, tok_.piece(tok_.bos()), tok_.piece(tok_.eos()),
                              add_generation_prompt);
}

std::vector<int32_t> ChatFormatter::apply(std::span<const ChatMessage> messages,
                                          bool add_generation_prompt, bool add_bos) const {
  if (source_ == Source::kBuiltinLlama2) return llama2_chat_tokens(tok_, messages);
  const std::string text = render(messages, add_generation_prompt);
  // apply_chat_template: the special tokens are in the text; BOS only if the template left it out.
  // (The Llama 2 template's text tokenizes to exactly llama2_chat_tokens: see Tokenizer::encode.)
  const bool bos = add_bos && model_add_bos_ && !text.starts_with(tok_.piece(tok_.bos()));
  return tok_.encode(text, bos, /*parse_special=*/true);
}

}  // namespace lmstream

// `lmstream tokenize --model PATH`: prints the token ids of all of stdin as a JSON array on one
// line, with the model's own tokenizer (for checking prompts and comparing with other tools).
// With --chat FILE.json it formats a chat (a JSON array of {role, content} messages) through
// the model's chat template first, as the OpenAI chat endpoint does.
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/files.h"
#include "chat/formatter.h"
#include "cli/command.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace {

struct Args {
  std::string model;
  bool no_bos = false;
  bool parse_special = false;
  std::string chat;           // messages JSON file
  std::string chat_template;  // template file overriding the model's
  bool generation_prompt = true;
  bool text = false;
};

std::string read_all_stdin() {
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) text.append(buf, n);
  if (std::ferror(stdin)) throw std::system_error(errno, std::generic_category(), "reading stdin");
  return text;
}

std::vector<lmstream::ChatMessage> read_messages(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(lmstream::base::read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(path + ": not valid JSON: " + e.what());
  }
  if (!j.is_array()) throw std::runtime_error(path + ": expected a JSON array of messages");
  std::vector<lmstream::ChatMessage> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& m = j[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      throw std::runtime_error(path + ": message " + std::to_string(i) +
                               " must be an object with string \"role\" and \"content\"");
    out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

std::string ids_json(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (int32_t id : ids) {
    if (out.size() > 1) out += ',';
    out += std::to_string(id);
  }
  return out + "]\n";
}

lmstream::cli::Register reg(
    "tokenize", "print the token ids of stdin's text (or of a chat) as a JSON array",
    [](CLI::App& sub) {
      auto a = std::make_shared<Args>();
      sub.add_option("--model,-m", a->model, "GGUF file or Hugging Face model directory")
          ->required();
      sub.add_flag("--no-bos", a->no_bos, "do not prepend the BOS token");
      sub.add_flag("--parse-special", a->parse_special,
                   "turn literal <s>, </s>, <unk> in the text into those tokens");
      sub.add_option(
             "--chat", a->chat,
             "instead of stdin, a JSON file with an array of {\"role\", \"content\"} messages, "
             "formatted with the model's chat template (literal <s>/</s> become tokens; no "
             "extra BOS when the template starts with it)")
          ->check(CLI::ExistingFile);
      sub.add_option("--chat-template", a->chat_template,
                     "with --chat: a Jinja chat template file to use instead of the model's")
          ->check(CLI::ExistingFile);
      sub.add_flag("--generation-prompt,!--no-generation-prompt", a->generation_prompt,
                   "with --chat: set the template's add_generation_prompt (default: on)");
      sub.add_flag("--text", a->text,
                   "print the text that would be tokenized instead of token ids");
      sub.footer(
          "Examples:\n"
          "  echo -n 'Hello world' | lmstream tokenize --model m.gguf  ->  [1,15043,3186]\n"
          "  lmstream tokenize --model m.gguf --chat chat.json --text   (the formatted prompt)");
      sub.callback([a] {
        if (a->chat.empty() && (!a->chat_template.empty() || !a->generation_prompt))
          throw CLI::ValidationError("--chat-template and --no-generation-prompt need --chat");
        auto model = lmstream::load_model(a->model);  // first, so a bad path fails at once
        auto tok = lmstream::make_tokenizer(model->tokenizer);
        std::string out;
        if (a->chat.empty()) {
          const std::string text = read_all_stdin();
          out = a->text ? text
                        : ids_json(tok->encode(text, !a->no_bos && model->tokenizer.add_bos,
                                               a->parse_special));
        } else {
          const std::vector<lmstream::ChatMessage> messages = read_messages(a->chat);
          // The prompt serve would build for these messages (chat/formatter.h).
          const lmstream::ChatFormatter chat(model->tokenizer, *tok, a->chat_template);
          if (!chat.fallback_reason().empty())
            std::fprintf(stderr,
                         "warning: the model's chat_template cannot be rendered (%s); using the "
                         "built-in Llama 2 format\n",
                         chat.fallback_reason().c_str());
          out = a->text ? chat.render(messages, a->generation_prompt)
                        : ids_json(chat.apply(messages, a->generation_prompt, !a->no_bos));
        }
        std::fwrite(out.data(), 1, out.size(), stdout);
      });
    });

}  // namespace

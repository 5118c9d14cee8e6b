// `lmstream tokenize --model PATH`: prints the token ids of all of stdin as a JSON array on one
// line, with the model's own tokenizer (for checking prompts and comparing with other tools).
#include <cstdio>
#include <memory>
#include <string>
#include <system_error>

#include "cli/command.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace {

struct Args {
  std::string model;
  bool no_bos = false;
  bool parse_special = false;
};

std::string read_all_stdin() {
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) text.append(buf, n);
  if (std::ferror(stdin)) throw std::system_error(errno, std::generic_category(), "reading stdin");
  return text;
}

lmstream::cli::Register reg(
    "tokenize", "print the token ids of stdin's text as a JSON array", [](CLI::App& sub) {
      auto a = std::make_shared<Args>();
      sub.add_option("--model", a->model, "GGUF file or Hugging Face model directory")->required();
      sub.add_flag("--no-bos", a->no_bos, "do not prepend the BOS token");
      sub.add_flag("--parse-special", a->parse_special,
                   "turn literal <s>, </s>, <unk> in the text into those tokens");
      sub.footer("Example: echo -n 'Hello world' | lmstream tokenize --model m.gguf  ->  [1,15043,3186]");
      sub.callback([a] {
        auto model = lmstream::load_model(a->model);  // first, so a bad path fails at once
        auto tok = lmstream::make_tokenizer(model->tokenizer);
        const std::string text = read_all_stdin();
        const bool bos = !a->no_bos && model->tokenizer.add_bos;
        std::string out = "[";
        for (int32_t id : tok->encode(text, bos, a->parse_special)) {
          if (out.size() > 1) out += ',';
          out += std::to_string(id);
        }
        out += "]\n";
        std::fwrite(out.data(), 1, out.size(), stdout);
      });
    });

}  // namespace

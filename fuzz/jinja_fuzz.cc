// libFuzzer target for chat/jinja: arbitrary bytes as a chat template, rendered with a
// fixed chat context and small limits. Any outcome but a JinjaError or a rendering (a crash, a
// hang, another exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chat/jinja.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::json context = {
      {"messages",
       {{{"role", "system"}, {"content", "Be brief."}},
        {{"role", "user"}, {"content", "Hello {{ x }} caf\xC3\xA9"}},
        {{"role", "assistant"}, {"content", " Hi there "}},
        {{"role", "user"}, {"content", ""}}}},
      {"bos_token", "<s>"},
      {"eos_token", "</s>"},
      {"add_generation_prompt", true},
      {"n", 3},
      {"f", 2.5},
      {"tools", nullptr}};
  lmstream::JinjaLimits limits;
  limits.max_output_bytes = 1 << 16;
  limits.max_work = 200000;
  try {
    lmstream::render_jinja(std::string_view(reinterpret_cast<const char*>(data), size), context,
                           limits);
  } catch (const lmstream::JinjaError&) {
  }
  return 0;
}

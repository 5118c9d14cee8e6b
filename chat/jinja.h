// Renders Hugging Face chat templates: a Jinja2 subset (lexer -> parser -> tree-walking evaluator)
// with jinja2's trim_blocks=True, lstrip_blocks=True and loopcontrols, as transformers'
// apply_chat_template configures it. Only text in, text out: no file or network access, no
// Python objects. Work, output size and nesting are bounded so hostile templates fail cleanly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace lmstream {

// Any template problem: syntax, a runtime type error, raise_exception(), or a limit. what() is
// "template line L, column C: message"; line/column are 1-based (column in bytes).
class JinjaError : public std::invalid_argument {
 public:
  JinjaError(const std::string& message, int line, int column);
  const std::string& message() const { return message_; }
  int line() const { return line_; }
  int column() const { return column_; }

 private:
  std::string message_;
  int line_, column_;
};

struct JinjaLimits {
  size_t max_output_bytes = 1 << 20;    // rendered text, and any single string or list built
  uint64_t max_work = 50'000'000;       // evaluation steps plus bytes copied
  int max_depth = 100;                  // expression/statement nesting and macro recursion
  size_t max_template_bytes = 1 << 20;  // template source size
};

// Renders tpl with the variables of context (a JSON object; JSON objects become dicts, arrays
// lists). Undefined variables render as "" and are falsy, like jinja2's default Undefined.
// Globals: raise_exception(msg), namespace(...), range(...), strftime_now(fmt). The tojson
// filter is transformers' (no HTML escaping, keys in dict order). Dicts keep the context's key
// order: pass an ordered_json for Python's insertion order (nlohmann::json sorts keys).
// Throws JinjaError.
std::string render_jinja(std::string_view tpl, const nlohmann::json& context,
                         const JinjaLimits& limits = {});
std::string render_jinja(std::string_view tpl, const nlohmann::ordered_json& context,
                         const JinjaLimits& limits = {});

}  // namespace lmstream

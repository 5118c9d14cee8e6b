// Builds the syntax tree from tokens with jinja2's grammar and operator precedence. Internal to
// chat/jinja*.
#pragma once

#include <string>
#include <vector>

#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace lmstream::jinja {

// src is the normalized source the tokens came from (for error positions). Throws JinjaError.
Body parse(const std::string& src, const std::vector<Token>& tokens, int max_depth);

}  // namespace lmstream::jinja

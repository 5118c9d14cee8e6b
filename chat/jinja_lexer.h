// Splits a template into tokens exactly where jinja2's lexer does, applying its whitespace rules
// (trim_blocks, lstrip_blocks, "-" and "+" markers, dropping one trailing newline) so the parser
// sees final text. Internal to chat/jinja*.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lmstream::jinja {

struct Token {
  enum class Kind {
    kText,
    kVarBegin,
    kVarEnd,
    kBlockBegin,
    kBlockEnd,
    kName,
    kString,
    kInt,
    kFloat,
    kOp,
    kEof
  };
  Kind kind;
  size_t offset;     // into the normalized source, for error positions
  std::string text;  // text data, name, operator, or decoded string literal
  int64_t i = 0;
  double f = 0;
};

// The template with "\r\n" and "\r" turned into "\n" and one trailing "\n" removed, as jinja2
// reads it. Token offsets refer to this string.
std::string normalize_source(std::string_view src);

// Tokens of a normalized source, ending with kEof. Throws JinjaError.
std::vector<Token> lex(const std::string& src);

// 1-based line and column of offset in src.
void line_col(const std::string& src, size_t offset, int& line, int& col);

}  // namespace lmstream::jinja

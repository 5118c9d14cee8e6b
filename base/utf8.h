// UTF-8, decoded one way for the whole project. Validity is SentencePiece's (src/util.cc
// DecodeUTF8): well-formed sequences of 1-4 bytes, no overlongs, no surrogates, nothing above
// U+10FFFF. Used by the tokenizer's normalizer (bad bytes become U+FFFD), the streaming
// detokenizer (hold back only what can still complete), the chat format and the Jinja engine
// (Python's str semantics over UTF-8 bytes).
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace lmstream::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed character at the start of s, or 0 when s does not start with one
// (empty, malformed, or truncated).
size_t valid_char_len(std::string_view s);

// True when s (non-empty, shorter than a whole character) could still become a well-formed
// character if more bytes were appended.
bool is_incomplete_prefix(std::string_view s);

// Decodes the well-formed character at s[pos] into cp and returns its length; 0 (cp untouched)
// when the bytes there are not one.
size_t decode(std::string_view s, size_t pos, char32_t& cp);

// The characters of s, each a view of 1-4 bytes; a byte that does not start a well-formed
// character is a character of its own (as Python's surrogateescape would keep it).
std::vector<std::string_view> characters(std::string_view s);

// Python's str.isspace() for one code point.
bool is_python_space(char32_t c);

}  // namespace lmstream::utf8

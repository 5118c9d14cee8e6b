// UTF-8 validity as SentencePiece judges it (src/util.cc DecodeUTF8): well-formed sequences of
// 1-4 bytes, no overlongs, no surrogates, nothing above U+10FFFF. Used by the normalizer (bad
// bytes become U+FFFD) and by the streaming detokenizer (hold back only what can still complete).
#pragma once

#include <cstddef>
#include <string_view>

namespace lmstream::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed character at the start of s, or 0 when s does not start with one
// (empty, malformed, or truncated).
size_t valid_char_len(std::string_view s);

// True when s (non-empty, shorter than a whole character) could still become a well-formed
// character if more bytes were appended.
bool is_incomplete_prefix(std::string_view s);

}  // namespace lmstream::utf8

// UTF-8 decoding and checks matching SentencePiece's DecodeUTF8 (see utf8.h).
#include "base/utf8.h"

#include <cstdint>

namespace lmstream::utf8 {
namespace {

bool is_trail(uint8_t b) { return (b & 0xC0) == 0x80; }

// Sequence length announced by a lead byte, 0 when it can never start a character.
size_t lead_len(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// Range allowed for the second byte after lead b (Unicode Table 3-7): excludes overlongs,
// surrogates and code points above U+10FFFF.
bool second_ok(uint8_t lead, uint8_t b) {
  switch (lead) {
    case 0xE0:
      return b >= 0xA0 && b <= 0xBF;
    case 0xED:
      return b >= 0x80 && b <= 0x9F;
    case 0xF0:
      return b >= 0x90 && b <= 0xBF;
    case 0xF4:
      return b >= 0x80 && b <= 0x8F;
    default:
      return is_trail(b);
  }
}

// True when the first min(s.size(), need) bytes are consistent with a well-formed character.
bool prefix_ok(std::string_view s, size_t need) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t n = s.size() < need ? s.size() : need;
  if (n >= 2 && !second_ok(p[0], p[1])) return false;
  for (size_t i = 2; i < n; ++i)
    if (!is_trail(p[i])) return false;
  return true;
}

}  // namespace

size_t valid_char_len(std::string_view s) {
  if (s.empty()) return 0;
  size_t need = lead_len(static_cast<uint8_t>(s[0]));
  if (need == 0 || s.size() < need || !prefix_ok(s, need)) return 0;
  return need;
}

bool is_incomplete_prefix(std::string_view s) {
  if (s.empty()) return false;
  size_t need = lead_len(static_cast<uint8_t>(s[0]));
  return need > s.size() && prefix_ok(s, need);
}

}  // namespace lmstream::utf8

namespace lmstream::utf8 {

size_t decode(std::string_view s, size_t pos, char32_t& cp) {
  if (pos >= s.size()) return 0;
  const size_t len = valid_char_len(s.substr(pos));
  if (len == 0) return 0;
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[pos + i]); };
  char32_t v = len == 1   ? byte(0)
               : len == 2 ? (byte(0) & 0x1F)
               : len == 3 ? (byte(0) & 0x0F)
                          : (byte(0) & 0x07);
  for (size_t i = 1; i < len; ++i) v = (v << 6) | (byte(i) & 0x3F);
  cp = v;
  return len;
}

std::vector<std::string_view> characters(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t len = valid_char_len(s.substr(i));
    if (len == 0) len = 1;
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

}  // namespace lmstream::utf8

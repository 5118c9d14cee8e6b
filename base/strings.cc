// ASCII string helpers (see strings.h).
#include "base/strings.h"

#include <charconv>
#include <stdexcept>

namespace lmstream::base {

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_upper(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  const size_t b = s.find_first_not_of(kAsciiWhitespace);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(kAsciiWhitespace);
  return s.substr(b, e - b + 1);
}

std::string collapse_whitespace(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t b = s.find_first_not_of(kAsciiWhitespace, i);
    if (b == std::string_view::npos) break;
    size_t e = s.find_first_of(kAsciiWhitespace, b);
    if (e == std::string_view::npos) e = s.size();
    if (!out.empty()) out.push_back(' ');
    out.append(s.substr(b, e - b));
    i = e;
  }
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, at - start));
    start = at + 1;
  }
}

int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_digit_value(s[i + 1]) >= 0 &&
        hex_digit_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_digit_value(s[i + 1]) * 16 + hex_digit_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool parse_int64(std::string_view s, long long& out) {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, out);
  return ec == std::errc() && p == end;
}

size_t parse_byte_size(const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw std::invalid_argument("bad size '" + s + "'");
  }
  const std::string unit = s.substr(used);
  double mul = 1;
  if (unit == "" || unit == "B")
    mul = 1;
  else if (unit == "K" || unit == "KiB" || unit == "KB")
    mul = 1024.0;
  else if (unit == "M" || unit == "MiB" || unit == "MB")
    mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "GiB" || unit == "GB")
    mul = 1024.0 * 1024 * 1024;
  else
    throw std::invalid_argument("bad size unit in '" + s + "' (use KiB, MiB or GiB)");
  if (!(v > 0) || v * mul > 1e15) throw std::invalid_argument("bad size '" + s + "'");
  return size_t(v * mul);
}

}  // namespace lmstream::base

// ASCII string helpers used across the project: case folding and comparison for protocol tokens
// (header names, setting keys), whitespace trimming, splitting, percent-decoding. These are ASCII
// only on purpose: HTTP, AWS and configuration keys are ASCII; text for people goes through utf8.h.
// Nothing here allocates unless it returns a std::string.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lmstream::base {

inline constexpr std::string_view kAsciiWhitespace = " \t\r\n\v\f";

constexpr char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }
constexpr char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c; }

std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);

// Case-insensitive (ASCII) equality and prefix tests.
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);

// Removes ASCII whitespace (" \t\r\n\v\f") at both ends.
std::string_view trim(std::string_view s);
// Trims and collapses each inner whitespace run to one space (Python's ' '.join(s.split())).
std::string collapse_whitespace(std::string_view s);

// Splits at every sep; n separators give n + 1 parts (empty parts kept).
std::vector<std::string_view> split(std::string_view s, char sep);

// 0-15 for a hex digit (either case), -1 otherwise.
int hex_digit_value(char c);
// Percent-decoding; a '%' not followed by two hex digits is kept literally (as Python's unquote).
std::string percent_decode(std::string_view s);

// Parses all of s as a decimal integer (optional leading '-'); false on anything else or overflow.
bool parse_int64(std::string_view s, long long& out);

// "512MiB", "2GiB", "1.5G", "64KB", "1000000" (bytes); K/M/G, KB/MB/GB and KiB/MiB/GiB are all
// powers of 1024. Throws std::invalid_argument naming the text when it is not a positive size.
size_t parse_byte_size(const std::string& s);

}  // namespace lmstream::base

// INI text as the AWS CLI's shared files use it (~/.aws/credentials, ~/.aws/config):
// "[section]" headers, "key = value" lines, '#' and ';' comment lines. Keys are folded to lower
// case; values are trimmed. Errors name the origin (usually the path) and the line.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lmstream::base {

struct IniSection {
  std::string name;
  int line = 0;  // line of the header, 1-based
  std::vector<std::pair<std::string, std::string>> entries;

  // The value of key (lower case), or nullptr.
  const std::string* find(std::string_view key) const;
};

// Throws std::runtime_error("ORIGIN:LINE: ...") on a malformed header or a line that is neither
// a comment nor "key = value", and on a setting before the first section.
std::vector<IniSection> parse_ini(std::string_view text, std::string_view origin);

}  // namespace lmstream::base

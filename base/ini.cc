// INI parsing for the AWS shared files (see ini.h).
#include "base/ini.h"

#include <stdexcept>

#include "base/strings.h"

namespace lmstream::base {

const std::string* IniSection::find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::vector<IniSection> parse_ini(std::string_view text, std::string_view origin) {
  std::vector<IniSection> sections;
  int line_no = 0;
  auto fail = [&](std::string_view what) {
    throw std::runtime_error(std::string(origin) + ":" + std::to_string(line_no) + ": " +
                             std::string(what));
  };
  for (std::string_view raw : split(text, '\n')) {
    ++line_no;
    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']' || line.size() < 3) fail("malformed section header");
      sections.push_back(
          IniSection{std::string(trim(line.substr(1, line.size() - 2))), line_no, {}});
      continue;
    }
    const size_t eq = line.find('=');
    if (sections.empty()) fail("setting outside of a [profile] section");
    if (eq == std::string_view::npos) fail("expected 'key = value'");
    sections.back().entries.emplace_back(to_lower(trim(line.substr(0, eq))),
                                         std::string(trim(line.substr(eq + 1))));
  }
  return sections;
}

}  // namespace lmstream::base

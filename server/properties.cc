// serving.properties parsing (see properties.h).
#include "server/properties.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "base/strings.h"

namespace lmstream::server {
using base::trim;

const std::string* Properties::find(std::string_view key) const {
  for (auto it = entries.rbegin(); it != entries.rend(); ++it)
    if (it->first == key) return &it->second;
  return nullptr;
}

Properties parse_properties(std::string_view text, std::vector<std::string>* bad) {
  Properties p;
  size_t pos = 0;
  int lineno = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = trim(text.substr(pos, nl - pos));
    ++lineno;
    pos = nl + 1;
    if (line.empty() || line[0] == '#' || line[0] == '!') continue;
    size_t sep = line.find_first_of("=:");
    if (sep == std::string_view::npos || sep == 0) {
      if (bad) bad->push_back("line " + std::to_string(lineno) + ": " + std::string(line));
      continue;
    }
    std::string_view key = trim(line.substr(0, sep));
    std::string_view value = trim(line.substr(sep + 1));
    // A trailing comment is part of the value in Java properties, but the seed writes
    // "option.model_id={{model_id}}  # s3://..." in docs only; keep Java semantics.
    p.entries.emplace_back(std::string(key), std::string(value));
  }
  return p;
}

Properties load_properties(const std::string& path, std::vector<std::string>* bad) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read serving.properties file '" + path + "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse_properties(ss.str(), bad);
}

}  // namespace lmstream::server

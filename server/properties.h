// Java-properties parsing for DJL-Serving's serving.properties ("key=value", "key = value",
// "key: value", '#'/'!' comments, blank lines). Pure text in, ordered key/value pairs out; what the
// keys mean is server/config's business.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lmstream::server {

struct Properties {
  std::vector<std::pair<std::string, std::string>> entries;  // file order; a later key wins
  const std::string* find(std::string_view key) const;
};

// Parses the text. Lines that are neither comments nor key/value pairs go to `bad` (1-based line
// number + text) and are otherwise ignored.
Properties parse_properties(std::string_view text, std::vector<std::string>* bad = nullptr);

// Reads and parses a file; throws std::runtime_error naming the file when it cannot be read.
Properties load_properties(const std::string& path, std::vector<std::string>* bad = nullptr);

}  // namespace lmstream::server

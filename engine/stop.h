// Stop strings matched on decoded output text. Text that might still become a stop string is
// held back until it cannot; on a match the output ends. TGI keeps the stop string in the output
// (include_stop = true); OpenAI and llama.cpp drop it (include_stop = false).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lmstream {

class StopMatcher {
 public:
  StopMatcher(std::vector<std::string> stops, bool include_stop);
  // Feeds newly decoded text. Returns the text that is now safe to emit; stopped() tells whether a
  // stop string matched (the returned text then ends at the match, per include_stop).
  std::string push(std::string_view text);
  // End of generation without a match: returns everything still held back.
  std::string flush();
  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }  // the stop string that matched

 private:
  std::vector<std::string> stops_;
  bool include_stop_;
  bool stopped_ = false;
  std::string matched_;
  std::string held_;
};

}  // namespace lmstream

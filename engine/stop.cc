// Stop-string matching on streamed output text (see stop.h). Holds back the shortest tail that
// could still grow into a stop string, plus any incomplete UTF-8 character at the end, and never
// splits a UTF-8 character between emitted and held text. Knows nothing of tokens.
#include "engine/stop.h"

#include <algorithm>
#include <utility>

namespace lmstream {
namespace {

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Length a UTF-8 sequence starting with lead byte c claims (1 for ASCII and invalid leads).
size_t sequence_length(char c) {
  unsigned char b = static_cast<unsigned char>(c);
  if (b >= 0xF0 && b <= 0xF7) return 4;
  if (b >= 0xE0) return b <= 0xEF ? 3 : 1;
  if (b >= 0xC0) return 2;
  return 1;
}

// Start of the UTF-8 character containing byte pos (at most 3 steps back, so invalid runs of
// continuation bytes do not hold back unbounded text).
size_t char_start(const std::string& s, size_t pos) {
  for (int steps = 0; steps < 3 && pos > 0 && pos < s.size() && is_continuation(s[pos]); ++steps)
    --pos;
  return pos;
}

// Start of a trailing incomplete UTF-8 character, or s.size() when the text ends complete.
size_t incomplete_tail(const std::string& s) {
  for (size_t back = 1; back <= 4 && back <= s.size(); ++back) {
    size_t pos = s.size() - back;
    if (is_continuation(s[pos])) continue;
    return sequence_length(s[pos]) > back ? pos : s.size();
  }
  return s.size();
}

}  // namespace

StopMatcher::StopMatcher(std::vector<std::string> stops, bool include_stop)
    : stops_(std::move(stops)), include_stop_(include_stop) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

std::string StopMatcher::push(std::string_view text) {
  if (stopped_) return {};
  held_.append(text);

  // A full match: the one that ends first (it would have completed first had the text arrived
  // byte by byte); of those ending together, the longest.
  size_t best_end = std::string::npos, best_start = 0;
  const std::string* best = nullptr;
  for (const std::string& s : stops_) {
    size_t start = held_.find(s);
    if (start == std::string::npos) continue;
    size_t end = start + s.size();
    if (best == nullptr || end < best_end || (end == best_end && start < best_start)) {
      best = &s;
      best_end = end;
      best_start = start;
    }
  }
  if (best != nullptr) {
    stopped_ = true;
    matched_ = *best;
    std::string out = held_.substr(0, include_stop_ ? best_end : best_start);
    held_.clear();
    return out;
  }

  // Hold back from the earliest position whose tail is a proper prefix of some stop string.
  size_t hold = held_.size();
  for (const std::string& s : stops_) {
    size_t first = held_.size() - std::min(held_.size(), s.size() - 1);
    for (size_t pos = first; pos < hold; ++pos) {
      if (s.compare(0, held_.size() - pos, held_, pos) == 0) {
        hold = pos;
        break;
      }
    }
  }
  hold = std::min(char_start(held_, hold), incomplete_tail(held_));
  std::string out = held_.substr(0, hold);
  held_.erase(0, hold);
  return out;
}

std::string StopMatcher::flush() {
  std::string out = std::move(held_);
  held_.clear();
  return out;
}

}  // namespace lmstream

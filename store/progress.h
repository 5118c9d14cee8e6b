// Download progress on stderr. On a terminal (isatty(2)): one bar redrawn in place with the
// current file and the total (bytes, rate, ETA). Otherwise: structured lines, `download start`,
// `download progress` at most every few seconds, `download done` and a final summary, each as
// key=value pairs, never a carriage return (a log collector reads whole lines).
// Thread-safe: the downloader's connections report from several threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace lmstream::store {

class Progress {
 public:
  enum class Mode { kAuto, kTerminal, kLines, kQuiet };
  explicit Progress(Mode mode = Mode::kAuto, std::FILE* out = stderr);

  // Announces the whole job (for the total bar); may be raised later.
  void plan(int files, uint64_t bytes);
  void file_start(const std::string& name, uint64_t size, const std::string& source);
  void file_bytes(uint64_t n);  // n more bytes of the current file(s) arrived
  void file_cached(const std::string& name, uint64_t size);
  void file_done(const std::string& name, uint64_t size, const std::string& check);
  void note(const std::string& line);  // a line of its own (clears the bar first)
  void summary();

  // "1.5 MiB", "12 B"; "1:02:03"/"2:03" for seconds.
  static std::string bytes_text(double b);
  static std::string eta_text(double seconds);

 private:
  void render_locked(bool force);
  void clear_bar_locked();

  Mode mode_;
  std::FILE* out_;
  std::mutex mu_;
  using Clock = std::chrono::steady_clock;
  Clock::time_point t0_ = Clock::now(), last_render_{}, file_t0_{};
  std::string file_;
  uint64_t file_size_ = 0, file_done_ = 0;
  uint64_t total_bytes_ = 0, total_done_ = 0, fetched_ = 0, cached_bytes_ = 0;
  int files_ = 0, files_done_ = 0, cache_hits_ = 0;
  bool bar_shown_ = false;
};

}  // namespace lmstream::store

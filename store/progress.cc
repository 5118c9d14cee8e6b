// Progress output for downloads (see progress.h).
#include "store/progress.h"

#include <unistd.h>

#include <cmath>

namespace lmstream::store {

Progress::Progress(Mode mode, std::FILE* out) : mode_(mode), out_(out) {
  if (mode_ == Mode::kAuto) mode_ = isatty(fileno(out_)) ? Mode::kTerminal : Mode::kLines;
}

std::string Progress::bytes_text(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

std::string Progress::eta_text(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

void Progress::plan(int files, uint64_t bytes) {
  std::lock_guard<std::mutex> l(mu_);
  files_ = files;
  total_bytes_ = bytes;
}

void Progress::file_start(const std::string& name, uint64_t size, const std::string& source) {
  std::lock_guard<std::mutex> l(mu_);
  file_ = name;
  file_size_ = size;
  file_done_ = 0;
  file_t0_ = Clock::now();
  if (mode_ == Mode::kLines)
    std::fprintf(out_, "[lmstream] download start file=%s size=%llu source=%s\n", name.c_str(),
                 (unsigned long long)size, source.c_str());
  render_locked(true);
}

void Progress::file_bytes(uint64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  file_done_ += n;
  total_done_ += n;
  fetched_ += n;
  render_locked(false);
}

void Progress::file_cached(const std::string& name, uint64_t size) {
  std::lock_guard<std::mutex> l(mu_);
  ++cache_hits_;
  ++files_done_;
  total_done_ += size;
  cached_bytes_ += size;
  if (mode_ == Mode::kLines)
    std::fprintf(out_, "[lmstream] download cached file=%s size=%llu\n", name.c_str(),
                 (unsigned long long)size);
}

void Progress::file_done(const std::string& name, uint64_t size, const std::string& check) {
  std::lock_guard<std::mutex> l(mu_);
  ++files_done_;
  double s = std::chrono::duration<double>(Clock::now() - file_t0_).count();
  if (mode_ == Mode::kTerminal) clear_bar_locked();
  if (mode_ != Mode::kQuiet)
    std::fprintf(out_, "[lmstream] download done file=%s size=%llu seconds=%.2f check=%s\n",
                 name.c_str(), (unsigned long long)size, s, check.c_str());
  render_locked(true);
}

void Progress::note(const std::string& line) {
  std::lock_guard<std::mutex> l(mu_);
  if (mode_ == Mode::kQuiet) return;
  clear_bar_locked();
  std::fprintf(out_, "[lmstream] %s\n", line.c_str());
}

void Progress::summary() {
  std::lock_guard<std::mutex> l(mu_);
  clear_bar_locked();
  if (mode_ == Mode::kQuiet) return;
  double s = std::chrono::duration<double>(Clock::now() - t0_).count();
  std::fprintf(out_,
               "[lmstream] download summary files=%d fetched_bytes=%llu cached_files=%d "
               "cached_bytes=%llu seconds=%.2f\n",
               files_done_, (unsigned long long)fetched_, cache_hits_,
               (unsigned long long)cached_bytes_, s);
  std::fflush(out_);
}

void Progress::clear_bar_locked() {
  if (mode_ == Mode::kTerminal && bar_shown_) {
    std::fputs("\r\033[K", out_);
    bar_shown_ = false;
  }
}

void Progress::render_locked(bool force) {
  auto now = Clock::now();
  auto since = now - last_render_;
  if (mode_ == Mode::kQuiet) return;
  if (mode_ == Mode::kLines) {
    if (force || since < std::chrono::seconds(5)) return;  // lines: every 5 s at most
  } else if (!force && since < std::chrono::milliseconds(100)) {
    return;
  }
  last_render_ = now;
  double el = std::chrono::duration<double>(now - file_t0_).count();
  double rate = el > 0 ? double(file_done_) / el : 0;
  double eta = rate > 0 && file_size_ >= file_done_ ? double(file_size_ - file_done_) / rate : NAN;
  double tel = std::chrono::duration<double>(now - t0_).count();
  double trate = tel > 0 ? double(fetched_) / tel : 0;
  double teta =
      trate > 0 && total_bytes_ >= total_done_ ? double(total_bytes_ - total_done_) / trate : NAN;
  if (mode_ == Mode::kLines) {
    std::fprintf(out_,
                 "[lmstream] download progress file=%s bytes=%llu of=%llu mib_s=%.1f eta_s=%.0f "
                 "total_bytes=%llu total_of=%llu files_done=%d files=%d\n",
                 file_.c_str(), (unsigned long long)file_done_, (unsigned long long)file_size_,
                 rate / 1048576.0, std::isfinite(eta) ? eta : -1.0, (unsigned long long)total_done_,
                 (unsigned long long)total_bytes_, files_done_, files_);
    std::fflush(out_);
    return;
  }
  int pct = file_size_ ? int(100.0 * double(file_done_) / double(file_size_)) : 0;
  if (pct > 100) pct = 100;
  char bar[21];
  for (int i = 0; i < 20; ++i) bar[i] = i < pct / 5 ? '#' : '-';
  bar[20] = 0;
  std::fprintf(out_, "\r\033[K%s [%s] %3d%% %s/%s %s/s ETA %s | total %d/%d files %s/%s ETA %s",
               file_.c_str(), bar, pct, bytes_text(double(file_done_)).c_str(),
               bytes_text(double(file_size_)).c_str(), bytes_text(rate).c_str(),
               eta_text(eta).c_str(), files_done_, files_, bytes_text(double(total_done_)).c_str(),
               bytes_text(double(total_bytes_)).c_str(), eta_text(teta).c_str());
  std::fflush(out_);
  bar_shown_ = true;
}

}  // namespace lmstream::store

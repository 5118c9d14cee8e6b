// The downloader (see download.h): parts fetched by a pool of connections into a sparse
// `.incomplete` file, hashed in order by the calling thread while the others still fetch, verified,
// then renamed into place.
#include "store/download.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "base/files.h"
#include "base/strings.h"
#include "store/progress.h"

namespace lmstream::store {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::vector<http::ByteRange> split_ranges(uint64_t size, uint64_t part_size) {
  if (part_size == 0) throw std::invalid_argument("part size must be > 0");
  std::vector<http::ByteRange> out;
  if (size == 0) return out;
  if (size <= part_size) return {{0, size - 1}};
  // The last bytes come in parts of part_size/8: the parts in flight when the download ends are
  // then small, so the in-order hash (and the writeback) finish soon after the last byte.
  const uint64_t tail = std::min(size / 2, 2 * part_size);
  const uint64_t small = std::max<uint64_t>(part_size / 8, 1);
  const uint64_t body_end = size - tail;
  for (uint64_t first = 0; first < body_end; first += part_size)
    out.push_back({first, std::min(body_end, first + part_size) - 1});
  for (uint64_t first = body_end; first < size; first += small)
    out.push_back({first, std::min(size, first + small) - 1});
  return out;
}

std::optional<ContentRange> parse_content_range(const std::string& v) {
  std::string_view s = base::trim(v);
  if (!base::istarts_with(s, "bytes ")) return std::nullopt;
  s.remove_prefix(6);
  auto dash = s.find('-'), slash = s.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash)
    return std::nullopt;
  long long a, b, t = 0;
  if (!base::parse_int64(s.substr(0, dash), a) ||
      !base::parse_int64(s.substr(dash + 1, slash - dash - 1), b) || a < 0 || b < a)
    return std::nullopt;
  std::string_view tot = s.substr(slash + 1);
  if (tot != "*" && (!base::parse_int64(tot, t) || t <= b)) return std::nullopt;
  return ContentRange{uint64_t(a), uint64_t(b), uint64_t(t)};
}

namespace {

std::string env_or(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

long long env_int(const char* name, long long lo, long long hi, long long def) {
  std::string v = env_or(name);
  if (v.empty()) return def;
  long long x;
  if (!base::parse_int64(base::trim(v), x) || x < lo || x > hi)
    throw std::invalid_argument(std::string(name) + "='" + v + "': expected an integer in [" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return x;
}

double env_seconds(const char* name, double def) {
  std::string v = env_or(name);
  if (v.empty()) return def;
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != 0 || !(x > 0) || x > 1e6)
    throw std::invalid_argument(std::string(name) + "='" + v + "': expected seconds > 0");
  return x;
}

// The host part of a URL, for messages (never the query, which may carry a signature).
std::string host_of(const std::string& url) {
  auto p = url.find("://");
  size_t b = p == std::string::npos ? 0 : p + 3;
  size_t e = url.find_first_of("/?#", b);
  return url.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

std::string url_no_query(const std::string& url) { return url.substr(0, url.find('?')); }

std::string hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  return s;
}

// The digests a RemoteFile asks for, computed over the bytes in order.
class Hashers {
 public:
  explicit Hashers(const RemoteFile& f) : f_(f) { reset(); }
  ~Hashers() {
    for (auto& c : ctx_)
      if (c.ctx) EVP_MD_CTX_free(c.ctx);
  }
  void reset() {
    for (auto& c : ctx_)
      if (c.ctx) EVP_MD_CTX_free(c.ctx);
    ctx_.clear();
    auto add = [&](const char* what, const EVP_MD* md, const std::optional<std::string>& want) {
      if (!want) return;
      Ctx c{what, EVP_MD_CTX_new(), base::to_lower(*want)};
      EVP_DigestInit_ex(c.ctx, md, nullptr);
      ctx_.push_back(c);
    };
    add("sha256", EVP_sha256(), f_.sha256);
    add("md5", EVP_md5(), f_.md5);
    add("git-sha1", EVP_sha1(), f_.git_sha1);
    if (f_.git_sha1) {
      std::string pre = "blob " + std::to_string(f_.size.value_or(0));
      pre.push_back('\0');
      EVP_DigestUpdate(ctx_.back().ctx, pre.data(), pre.size());
    }
  }
  bool any() const { return !ctx_.empty(); }
  void update(const char* p, size_t n) {
    for (auto& c : ctx_) EVP_DigestUpdate(c.ctx, p, n);
  }
  // "" when every digest matches, else the first mismatch as "sha256 expected X, got Y".
  std::string mismatch(std::string* checked) {
    std::string bad;
    for (auto& c : ctx_) {
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned n = 0;
      EVP_DigestFinal_ex(c.ctx, md, &n);
      std::string got = hex(md, n);
      if (checked) *checked += (checked->empty() ? "" : ",") + std::string(c.what);
      if (got != c.want && bad.empty())
        bad = std::string(c.what) + " expected " + c.want + ", got " + got;
    }
    return bad;
  }

 private:
  struct Ctx {
    const char* what;
    EVP_MD_CTX* ctx;
    std::string want;
  };
  const RemoteFile& f_;
  std::vector<Ctx> ctx_;
};

// flock on PATH.lock for the lifetime of the object.
class FileLock {
 public:
  FileLock(const std::string& path, const std::string& name, Progress* progress) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw DownloadError(DownloadError::Kind::kLocal,
                          "cannot create lock file " + path + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
    if (progress) progress->note("waiting for another process downloading " + name);
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR)
        throw DownloadError(DownloadError::Kind::kLocal,
                            "cannot lock " + path + ": " + std::strerror(errno));
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }

 private:
  int fd_ = -1;
};

// Thrown by a worker when a ranged request got a 200 with the whole body: the server does not
// do ranges, so the download restarts as one sequential GET.
struct RangesIgnored {};

struct Retryable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void pwrite_all(int fd, const char* p, size_t n, uint64_t off, const std::string& path) {
  while (n) {
    ssize_t w = ::pwrite(fd, p, n, off_t(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      throw DownloadError(
          errno == ENOSPC ? DownloadError::Kind::kDisk : DownloadError::Kind::kLocal,
          "cannot write " + path + ": " + std::strerror(errno));
    }
    p += w;
    n -= size_t(w);
    off += uint64_t(w);
  }
}

class Job {
 public:
  Job(const RemoteFile& f, std::string final_path, const DownloadOptions& o)
      : f_(f),
        final_(std::move(final_path)),
        tmp_(final_ + ".incomplete"),
        sidecar_(final_ + ".incomplete.parts"),
        o_(o) {}

  DownloadResult run() {
    auto t0 = Clock::now();
    DownloadResult r;
    FileLock lock(final_ + ".lock", f_.name, o_.progress);
    std::error_code ec;
    if (fs::exists(final_, ec)) {
      r.cached = true;
      r.size = fs::file_size(final_, ec);
      return r;
    }
    if (!f_.size) {
      sequential(r);
    } else {
      try {
        parallel(r);
      } catch (const RangesIgnored&) {
        if (o_.progress)
          o_.progress->note(f_.name + ": the server ignores Range; fetching it whole");
        sequential(r);
      }
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return r;
  }

 private:
  [[noreturn]] void fail_http(int status, const std::string& url, const std::string& body) {
    std::string b(base::trim(body.substr(0, 300)));
    throw DownloadError(DownloadError::Kind::kHttp,
                        f_.name + ": HTTP " + std::to_string(status) + " from " + host_of(url) +
                            " for GET " + url_no_query(url) + (b.empty() ? "" : ": " + b));
  }

  http::ClientOptions client_options() const {
    http::ClientOptions co;
    co.connect_timeout = o_.connect_timeout;
    co.stall_timeout = o_.stall_timeout;
    co.redirects.follow = true;  // a redirect to another host drops Authorization (client.h)
    co.cancel = &stop_;
    return co;
  }

  void check_disk(uint64_t need) {
    std::error_code ec;
    fs::path dir = fs::path(final_).parent_path();
    if (dir.empty()) dir = ".";
    auto sp = fs::space(dir, ec);
    if (!ec && sp.available < need)
      throw DownloadError(DownloadError::Kind::kDisk,
                          "not enough free disk space for " + f_.name + " in " + dir.string() +
                              ": " + Progress::bytes_text(double(need)) + " needed, " +
                              Progress::bytes_text(double(sp.available)) + " available");
  }

  int open_tmp(bool truncate) {
    int fd = ::open(tmp_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
    if (fd < 0)
      throw DownloadError(DownloadError::Kind::kLocal,
                          "cannot open " + tmp_ + ": " + std::strerror(errno));
    return fd;
  }

  void discard() {
    std::error_code ec;
    fs::remove(tmp_, ec);
    fs::remove(sidecar_, ec);
  }

  // Verified bytes in tmp_ → final_. Throws (and deletes the partial file) on a mismatch.
  void finish(int fd, Hashers& h, uint64_t size) {
    std::string checked;
    std::string bad = h.mismatch(&checked);
    if (!bad.empty()) {
      ::close(fd);
      discard();
      throw DownloadError(DownloadError::Kind::kChecksum,
                          "checksum mismatch for " + f_.name + ": " + bad +
                              " (the partial download was deleted; run again to fetch it anew)");
    }
    if ((o_.fsync && ::fsync(fd) != 0) || ::close(fd) != 0)
      throw DownloadError(DownloadError::Kind::kLocal,
                          "cannot flush " + tmp_ + ": " + std::strerror(errno));
    std::error_code ec;
    fs::rename(tmp_, final_, ec);
    if (ec)
      throw DownloadError(DownloadError::Kind::kLocal,
                          "cannot rename " + tmp_ + " to " + final_ + ": " + ec.message());
    fs::remove(sidecar_, ec);
    int dfd = ::open(fs::path(final_).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    if (o_.progress)
      o_.progress->file_done(f_.name, size, checked.empty() ? "size" : "size," + checked);
  }

  void backoff_sleep(int attempt) {
    auto d = o_.backoff * (1 << std::min(attempt, 4));
    if (d > std::chrono::milliseconds(8000)) d = std::chrono::milliseconds(8000);
    auto until = Clock::now() + d;
    while (Clock::now() < until && !stop_)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  // One GET of [pos, last] written at pos; returns the bytes written. Throws Retryable,
  // RangesIgnored, DownloadError or http::ClientError(kCancelled).
  uint64_t fetch_range(int fd, uint64_t pos, std::optional<uint64_t> last, bool whole_ok,
                       Hashers* inline_hash) {
    std::optional<http::ByteRange> range;
    if (pos > 0 || last) range = http::ByteRange{pos, last};
    http::ClientRequest req = f_.request(range);
    int status = 0;
    std::string errbody;
    uint64_t written = 0, at = pos;
    // Body pieces are gathered into 1 MiB writes (one pwrite per piece of ~16 KiB would cost
    // a syscall each).
    static constexpr size_t kWriteBuffer = 1 << 20;
    std::string wbuf;
    uint64_t wbuf_at = pos;
    wbuf.reserve(kWriteBuffer + (64 << 10));
    auto flush = [&] {
      if (wbuf.empty()) return;
      pwrite_all(fd, wbuf.data(), wbuf.size(), wbuf_at, tmp_);
      if (inline_hash) inline_hash->update(wbuf.data(), wbuf.size());
      written += wbuf.size();
      if (o_.progress) o_.progress->file_bytes(wbuf.size());
      wbuf.clear();
    };
    http::ClientCallbacks cb;
    cb.on_head = [&](const http::ResponseHead& h) {
      status = h.status;
      if (status == 206 && range) {
        auto cr = h.header("Content-Range");
        auto p = cr ? parse_content_range(*cr) : std::nullopt;
        if (!p || p->first != pos || (last && p->last != *last) ||
            (f_.size && p->total && p->total != *f_.size))
          throw DownloadError(
              DownloadError::Kind::kSize,
              f_.name + ": " + host_of(h.url) + " answered range " + std::to_string(pos) +
                  "- with Content-Range '" + cr.value_or("") + "'" +
                  (f_.size ? " (expected size " + std::to_string(*f_.size) + ")" : ""));
      } else if (status == 200 && range && !whole_ok) {
        throw RangesIgnored{};
      } else if (status == 200 && range) {
        at = 0;  // the whole file from the start
      }
    };
    cb.on_body = [&](std::string_view d) {
      if (status != 200 && status != 206) {
        if (errbody.size() < 1024) errbody.append(d.substr(0, 1024 - errbody.size()));
        return;
      }
      if (last && at + d.size() > *last + 1)
        throw DownloadError(DownloadError::Kind::kSize,
                            f_.name + ": the server sent more bytes than asked for");
      if (f_.size && at + d.size() > *f_.size)
        throw DownloadError(DownloadError::Kind::kSize,
                            f_.name + ": the server sent more than the expected " +
                                std::to_string(*f_.size) + " bytes");
      if (wbuf.empty()) wbuf_at = at;
      wbuf.append(d);
      at += d.size();
      if (wbuf.size() >= kWriteBuffer) flush();
    };
    try {
      http::perform(req, client_options(), cb);
      flush();
    } catch (const http::ClientError& e) {
      using K = http::ClientError::Kind;
      if (e.kind() == K::kCancelled) throw;
      flush();  // what arrived before the failure is kept (a retry resumes after it)
      last_written_ = written;
      if (e.kind() == K::kTimeout || e.kind() == K::kTransfer || e.kind() == K::kConnect)
        throw Retryable(e.what());
      throw DownloadError(DownloadError::Kind::kTransport, f_.name + ": " + e.what());
    }
    last_written_ = written;
    if (status == 429 || status >= 500)
      throw Retryable(f_.name + ": HTTP " + std::to_string(status) + " from " + host_of(req.url));
    if (status != 200 && status != 206) fail_http(status, req.url, errbody);
    return written;
  }

  // Sequential: one GET of the whole file (unknown size, or ranges unsupported), restarted from 0
  // on a retryable failure.
  void sequential(DownloadResult& r) {
    if (f_.size) check_disk(*f_.size);
    discard();
    Hashers h(f_);
    for (int attempt = 0;; ++attempt) {
      int fd = open_tmp(true);
      h.reset();
      try {
        uint64_t n = fetch_range(fd, 0, std::nullopt, true, &h);
        r.fetched += n;
        if (f_.size && n != *f_.size) {
          ::close(fd);
          discard();
          throw DownloadError(DownloadError::Kind::kSize,
                              "size mismatch for " + f_.name + ": expected " +
                                  std::to_string(*f_.size) + " bytes, got " + std::to_string(n));
        }
        r.size = n;
        finish(fd, h, n);
        return;
      } catch (const Retryable& e) {
        ::close(fd);
        r.fetched += last_written_;
        if (attempt >= o_.retries)
          throw DownloadError(
              DownloadError::Kind::kTransport,
              std::string(e.what()) + " (gave up after " + std::to_string(attempt + 1) + " tries)");
        if (o_.progress)
          o_.progress->note(std::string(e.what()) + "; retrying (" + std::to_string(attempt + 1) +
                            "/" + std::to_string(o_.retries) + ")");
        backoff_sleep(attempt);
      } catch (const http::ClientError&) {
        ::close(fd);
        throw DownloadError(DownloadError::Kind::kCancelled, f_.name + ": download cancelled");
      } catch (...) {
        ::close(fd);
        throw;
      }
    }
  }

  void write_sidecar(const std::vector<char>& done) {
    nlohmann::json j;
    j["size"] = *f_.size;
    j["part_size"] = o_.part_size;
    j["sha256"] = f_.sha256.value_or("");
    j["md5"] = f_.md5.value_or("");
    j["git_sha1"] = f_.git_sha1.value_or("");
    std::vector<size_t> d;
    for (size_t i = 0; i < done.size(); ++i)
      if (done[i]) d.push_back(i);
    j["done"] = d;
    // Replaced by rename but not fsync'd: after a power loss a stale or missing sidecar only
    // costs refetching parts, since every byte is verified at the end; an fsync per part would
    // make ext4 flush the data file's dirty pages with each journal commit.
    const std::string tmp = sidecar_ + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f << j.dump();
      if (!f.flush()) throw DownloadError(DownloadError::Kind::kLocal, "cannot write " + tmp);
    }
    std::error_code ec;
    fs::rename(tmp, sidecar_, ec);
    if (ec)
      throw DownloadError(DownloadError::Kind::kLocal,
                          "cannot rename " + tmp + " to " + sidecar_ + ": " + ec.message());
  }

  // Which parts a previous run finished (see download.h: Resume state).
  std::vector<char> previous_parts(size_t n_parts, const std::vector<http::ByteRange>& parts) {
    std::vector<char> done(n_parts, 0);
    std::error_code ec;
    if (!fs::exists(tmp_, ec)) return done;
    uint64_t have = fs::file_size(tmp_, ec);
    if (fs::exists(sidecar_, ec)) {
      try {
        auto j = nlohmann::json::parse(base::read_file(sidecar_));
        if (j.at("size").get<uint64_t>() == *f_.size &&
            j.at("part_size").get<uint64_t>() == o_.part_size &&
            j.at("sha256").get<std::string>() == f_.sha256.value_or("") &&
            j.at("md5").get<std::string>() == f_.md5.value_or("") &&
            j.at("git_sha1").get<std::string>() == f_.git_sha1.value_or("") && have == *f_.size) {
          for (size_t i : j.at("done").get<std::vector<size_t>>())
            if (i < n_parts) done[i] = 1;
        }
      } catch (const std::exception&) {
        // unreadable sidecar: start over
      }
      return done;
    }
    // huggingface_hub's sequential .incomplete: a finished prefix.
    if (have <= *f_.size)
      for (size_t i = 0; i < n_parts; ++i)
        if (parts[i].last && *parts[i].last < have) done[i] = 1;
    return done;
  }

  void parallel(DownloadResult& r) {
    const uint64_t size = *f_.size;
    auto parts = split_ranges(size, std::max<uint64_t>(o_.part_size, 1));
    const size_t n = parts.size();
    std::vector<char> done = previous_parts(n, parts);
    uint64_t have = 0;
    for (size_t i = 0; i < n; ++i)
      if (done[i]) have += *parts[i].last - parts[i].first + 1;
    r.resumed = have > 0;
    if (!r.resumed) discard();
    check_disk(size - have);
    if (o_.progress) {
      if (r.resumed)
        o_.progress->note(f_.name + ": resuming, " + Progress::bytes_text(double(have)) + " of " +
                          Progress::bytes_text(double(size)) + " already here");
      o_.progress->file_bytes(0);
    }
    int fd = open_tmp(false);
    write_sidecar(done);
    if (::ftruncate(fd, off_t(size)) != 0) {
      int e = errno;
      ::close(fd);
      throw DownloadError(
          e == ENOSPC || e == EFBIG ? DownloadError::Kind::kDisk : DownloadError::Kind::kLocal,
          "cannot size " + tmp_ + ": " + std::strerror(e));
    }

    std::mutex mu;
    std::condition_variable cv;
    std::vector<char> state = done;  // 1 = bytes on disk
    size_t next = 0;
    std::exception_ptr error;
    bool ranges_ignored = false;
    auto worker = [&] {
      for (;;) {
        size_t i;
        {
          std::lock_guard<std::mutex> l(mu);
          while (next < n && state[next]) ++next;
          if (next >= n || error || ranges_ignored) return;
          i = next++;
        }
        uint64_t pos = parts[i].first;
        try {
          for (int attempt = 0;; ++attempt) {
            try {
              last_written_ = 0;
              pos += fetch_range(fd, pos, parts[i].last, n == 1 && pos == 0, nullptr);
              last_written_ = 0;
              if (pos != *parts[i].last + 1)
                throw Retryable(f_.name + ": the connection closed early");
              break;
            } catch (const Retryable& e) {
              pos += last_written_;  // the bytes that arrived before the failure are kept
              last_written_ = 0;
              if (attempt >= o_.retries)
                throw DownloadError(DownloadError::Kind::kTransport,
                                    std::string(e.what()) + " (gave up after " +
                                        std::to_string(attempt + 1) + " tries)");
              if (o_.progress)
                o_.progress->note(std::string(e.what()) + "; retrying from byte " +
                                  std::to_string(pos) + " (" + std::to_string(attempt + 1) + "/" +
                                  std::to_string(o_.retries) + ")");
              backoff_sleep(attempt);
              if (stop_) throw http::ClientError(http::ClientError::Kind::kCancelled, "stopped");
            }
          }
          std::lock_guard<std::mutex> l(mu);
          state[i] = 1;
          write_sidecar(state);
          cv.notify_all();
        } catch (const RangesIgnored&) {
          std::lock_guard<std::mutex> l(mu);
          ranges_ignored = true;
          stop_ = true;
          cv.notify_all();
          return;
        } catch (...) {
          std::lock_guard<std::mutex> l(mu);
          if (!error) error = std::current_exception();
          stop_ = true;
          cv.notify_all();
          return;
        }
      }
    };
    const int nconn = int(std::min<size_t>(std::max(o_.connections, 1), n));
    std::vector<std::thread> pool;
    for (int k = 0; k < nconn; ++k) pool.emplace_back(worker);

    // Hash parts in order as they land (re-reading the page cache), overlapping the fetch.
    Hashers h(f_);
    std::vector<char> buf(h.any() ? (4u << 20) : 0);
    bool failed = false;
    for (size_t i = 0; i < n && !failed; ++i) {
      {
        std::unique_lock<std::mutex> l(mu);
        while (!state[i] && !error && !ranges_ignored) {
          cv.wait_for(l, std::chrono::milliseconds(100));
          if (o_.cancel && *o_.cancel) stop_ = true;
          if (stop_ && !state[i]) break;
        }
        if (!state[i]) {
          failed = true;
          break;
        }
      }
      // Start the writeback of this part now (here, not on a connection's thread, where a full
      // disk queue would hold up the network), so the final fsync has little left to wait for.
      if (o_.fsync)
        ::sync_file_range(fd, off_t(parts[i].first), off_t(*parts[i].last - parts[i].first + 1),
                          SYNC_FILE_RANGE_WRITE);
      if (!h.any()) continue;
      for (uint64_t off = parts[i].first; off <= *parts[i].last;) {
        size_t want = size_t(std::min<uint64_t>(buf.size(), *parts[i].last + 1 - off));
        ssize_t got = ::pread(fd, buf.data(), want, off_t(off));
        if (got <= 0) {
          std::lock_guard<std::mutex> l(mu);
          if (!error)
            error = std::make_exception_ptr(DownloadError(
                DownloadError::Kind::kLocal,
                "cannot read back " + tmp_ + ": " + std::strerror(got < 0 ? errno : EIO)));
          stop_ = true;
          failed = true;
          break;
        }
        h.update(buf.data(), size_t(got));
        off += uint64_t(got);
      }
    }
    for (auto& t : pool) t.join();
    if (ranges_ignored) {
      ::close(fd);
      stop_ = false;
      throw RangesIgnored{};
    }
    if (error || failed) {
      ::close(fd);
      if (error) {
        try {
          std::rethrow_exception(error);
        } catch (const http::ClientError&) {
          throw DownloadError(DownloadError::Kind::kCancelled, f_.name + ": download cancelled");
        } catch (const DownloadError& e) {
          if (e.kind() == DownloadError::Kind::kSize) discard();
          throw;
        }
      }
      throw DownloadError(DownloadError::Kind::kCancelled, f_.name + ": download cancelled");
    }
    r.size = size;
    r.fetched = size - have;
    finish(fd, h, size);
  }

  const RemoteFile& f_;
  const std::string final_, tmp_, sidecar_;
  const DownloadOptions& o_;
  std::atomic<bool> stop_{false};
  thread_local static uint64_t last_written_;
};

thread_local uint64_t Job::last_written_ = 0;

}  // namespace

DownloadOptions DownloadOptions::from_env() {
  DownloadOptions o;
  o.connections = int(env_int("LMSTREAM_DOWNLOAD_CONNECTIONS", 1, 256, o.connections));
  std::string ps = env_or("LMSTREAM_DOWNLOAD_PART_SIZE");
  if (!ps.empty()) {
    try {
      o.part_size = base::parse_byte_size(ps);
    } catch (const std::exception& e) {
      throw std::invalid_argument("LMSTREAM_DOWNLOAD_PART_SIZE: " + std::string(e.what()));
    }
    if (o.part_size < 4096)
      throw std::invalid_argument("LMSTREAM_DOWNLOAD_PART_SIZE: at least 4 KiB");
  }
  o.retries = int(env_int("LMSTREAM_DOWNLOAD_RETRIES", 0, 100, o.retries));
  o.fsync = env_int("LMSTREAM_DOWNLOAD_FSYNC", 0, 1, 1) == 1;
  o.stall_timeout = std::chrono::milliseconds(
      int64_t(1000 * env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", o.stall_timeout.count() / 1000.0)));
  o.connect_timeout = std::chrono::milliseconds(
      int64_t(1000 * env_seconds("HF_HUB_ETAG_TIMEOUT", o.connect_timeout.count() / 1000.0)));
  return o;
}

DownloadResult download(const RemoteFile& file, const std::string& final_path,
                        const DownloadOptions& options) {
  if (!file.request) throw std::invalid_argument("RemoteFile without a request factory");
  Job job(file, final_path, options);
  return job.run();
}

}  // namespace lmstream::store

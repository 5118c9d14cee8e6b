// The packed-weight cache file: key, header, atomic write, verified huge-page mapping (see
// packed_cache.h).
#include "engine/packed_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "kernels/matmul.h"
#include "kernels/threadpool.h"
#include "model/mmap.h"

namespace lmstream {
namespace {

constexpr char kMagic[8] = {'L', 'M', 'S', 'P', 'A', 'C', 'K', '1'};
constexpr uint32_t kVersion = 2;
constexpr size_t kPayloadOffset = size_t(2) << 20;  // 2 MiB: page-cache folios map as huge pages
constexpr size_t kChunk = size_t(32) << 20;         // checksum granularity
constexpr size_t kMaxChunks = (kPayloadOffset - 4096) / 8;

// The fixed part of the header; then n_chunks XXH3-64 checksums, the source path (source_len
// bytes) and an XXH3-64 of all of it.
struct Header {
  char magic[8];
  uint32_t version;
  uint32_t n_chunks;
  uint64_t payload_offset;
  uint64_t payload_bytes;
  uint64_t chunk_bytes;
  uint8_t key[32];
  uint32_t source_len;
  uint32_t pad;
};
static_assert(sizeof(Header) == 80);

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1)
      throw std::runtime_error("SHA-256 is not available");
  }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  void add(const void* p, size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  void add(const std::string& s) {
    add(s.data(), s.size());
    add("\0", 1);
  }
  void add_int(int64_t v) { add(std::to_string(v)); }
  void finish(uint8_t out[32]) {
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx_, out, &n);
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

// XXH3-64: at memory speed, where zlib's CRC-32 took most of a warm start.
uint64_t checksum(const uint8_t* p, size_t n) { return XXH3_64bits(p, n); }

// What the packing routine of type t makes of a synthetic tensor (one full and one partial group,
// 256 columns): any change to a packed layout changes it, and so the key.
void add_layout_fingerprint(Sha256& h, DType t) {
  Tensor s;
  s.name = "fingerprint";
  s.type = t;
  s.rows = kGroupRows + 3;
  s.cols = 256;
  std::vector<uint8_t> src(s.nbytes());
  for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t((i * 131 + 7) % 251);
  s.data = src.data();
  const Matrix m = Matrix::prepare(s);
  h.add_int(int64_t(t));
  h.add_int(int64_t(m.bytes));
  if (m.packed) h.add(m.data, m.bytes);
}

bool read_all(int fd, void* p, size_t n, off_t off) {
  auto* b = static_cast<uint8_t*>(p);
  while (n > 0) {
    const ssize_t r = pread(fd, b, n, off);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
    b += r;
    n -= size_t(r);
    off += r;
  }
  return true;
}

bool write_all(int fd, const void* p, size_t n, off_t off) {
  auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    const ssize_t r = pwrite(fd, b, n, off);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
    b += r;
    n -= size_t(r);
    off += r;
  }
  return true;
}

// The header bytes (fixed part, chunk checksums, source path, checksum of those) for a payload.
std::vector<uint8_t> encode_header(const uint8_t key[32], size_t payload,
                                   const std::vector<uint64_t>& crcs, const std::string& source) {
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kVersion;
  h.n_chunks = uint32_t(crcs.size());
  h.payload_offset = kPayloadOffset;
  h.payload_bytes = payload;
  h.chunk_bytes = kChunk;
  std::memcpy(h.key, key, 32);
  h.source_len = uint32_t(source.size());
  std::vector<uint8_t> out(sizeof h);
  std::memcpy(out.data(), &h, sizeof h);
  const auto* c = reinterpret_cast<const uint8_t*>(crcs.data());
  out.insert(out.end(), c, c + crcs.size() * 8);
  out.insert(out.end(), source.begin(), source.end());
  const uint64_t all = checksum(out.data(), out.size());
  const auto* a = reinterpret_cast<const uint8_t*>(&all);
  out.insert(out.end(), a, a + 8);
  return out;
}

// Reads and checks a header: "" and fills h/crcs/source, or what is wrong with it.
std::string decode_header(int fd, size_t file_size, Header& h, std::vector<uint64_t>& crcs,
                          std::string& source) {
  if (file_size < sizeof h) return "truncated (" + std::to_string(file_size) + " bytes)";
  if (!read_all(fd, &h, sizeof h, 0)) return std::string("unreadable: ") + std::strerror(errno);
  if (std::memcmp(h.magic, kMagic, 8) != 0) return "not a packed-weight cache file (bad magic)";
  if (h.version != kVersion)
    return "written by another cache version (" + std::to_string(h.version) + ")";
  if (h.payload_offset != kPayloadOffset || h.chunk_bytes != kChunk || h.n_chunks > kMaxChunks ||
      h.source_len > PATH_MAX || h.n_chunks != (h.payload_bytes + kChunk - 1) / kChunk)
    return "corrupt header";
  const size_t n = sizeof h + size_t(h.n_chunks) * 8 + h.source_len + 8;
  std::vector<uint8_t> b(n);
  if (n > kPayloadOffset || !read_all(fd, b.data(), n, 0)) return "corrupt header";
  uint64_t want;
  std::memcpy(&want, b.data() + n - 8, 8);
  if (checksum(b.data(), n - 8) != want) return "corrupt header (checksum mismatch)";
  crcs.resize(h.n_chunks);
  std::memcpy(crcs.data(), b.data() + sizeof h, crcs.size() * 8);
  source.assign(reinterpret_cast<const char*>(b.data()) + sizeof h + crcs.size() * 8, h.source_len);
  if (file_size != kPayloadOffset + h.payload_bytes)
    return "truncated (" + std::to_string(file_size) + " bytes, expected " +
           std::to_string(kPayloadOffset + h.payload_bytes) + ")";
  return "";
}

// Removes cache files whose source file is gone and temporary files whose writer has exited.
void prune(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) names.emplace_back(e->d_name);
  closedir(d);
  for (const std::string& name : names) {
    const std::string p = dir + "/" + name;
    const size_t t = name.find(".tmp.");
    if (t != std::string::npos) {
      const long pid = std::strtol(name.c_str() + t + 5, nullptr, 10);
      if (pid > 0 && kill(pid_t(pid), 0) != 0 && errno == ESRCH) unlink(p.c_str());
      continue;
    }
    if (name.size() < 7 || name.compare(name.size() - 7, 7, ".lmpack") != 0) continue;
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    Header h{};
    std::vector<uint64_t> crcs;
    std::string source;
    const bool ok =
        fstat(fd, &st) == 0 && decode_header(fd, size_t(st.st_size), h, crcs, source).empty();
    ::close(fd);
    struct stat ss {};
    if (!ok || stat(source.c_str(), &ss) != 0) unlink(p.c_str());
  }
}

}  // namespace

PackedMapping::~PackedMapping() {
  if (base_) munmap(base_, reserved_);
}

PackedCache::PackedCache(const std::string& dir, const Model& model,
                         const std::vector<const Tensor*>& order,
                         const std::vector<size_t>& offsets, size_t total)
    : dir_(dir), total_(total) {
  // Where each matrix comes from: (file index, offset in the file).
  Sha256 name, key;
  std::set<DType> types;
  for (size_t i = 0; i < order.size(); ++i) {
    const Tensor& t = *order[i];
    if (Matrix::packed_bytes(t) == 0) continue;
    int file = -1;
    size_t off = 0;
    for (size_t f = 0; f < model.maps.size(); ++f) {
      const MappedFile& m = *model.maps[f];
      if (t.data >= m.data() && t.data + t.nbytes() <= m.data() + m.size()) {
        file = int(f);
        off = size_t(t.data - m.data());
        break;
      }
    }
    if (file < 0) {
      why_ = "matrix " + t.name + " is not read from the model's files (converted in memory)";
      return;
    }
    for (Sha256* h : {&name, &key}) {
      h->add(t.name);
      for (int64_t v : {int64_t(t.type), t.rows, t.cols, int64_t(file), int64_t(off),
                        int64_t(offsets[i]), int64_t(Matrix::packed_bytes(t))})
        h->add_int(v);
    }
    types.insert(t.type);
  }
  if (types.empty()) {
    why_ = "no packed matrices";
    return;
  }
  name.add_int(int64_t(total));
  key.add_int(int64_t(total));
  for (const auto& f : model.maps) {
    std::error_code ec;
    const std::string real = std::filesystem::weakly_canonical(f->path(), ec).string();
    const std::string abs = ec ? f->path() : real;
    if (source_.empty()) source_ = abs;
    name.add(abs);
    struct stat st {};
    if (stat(abs.c_str(), &st) != 0) {
      why_ = "cannot stat " + abs + ": " + std::strerror(errno);
      return;
    }
    key.add(abs);
    for (int64_t v : {int64_t(st.st_size), int64_t(st.st_mtim.tv_sec), int64_t(st.st_mtim.tv_nsec),
                      int64_t(st.st_ino), int64_t(st.st_dev)})
      key.add_int(v);
    key.add(f->data(), std::min<size_t>(f->size(), size_t(1) << 20));
  }
  for (DType t : types) add_layout_fingerprint(key, t);
  uint8_t nh[32];
  name.finish(nh);
  key.finish(key_);
  path_ = dir_ + "/" + hex(nh, 16) + ".lmpack";
  ok_ = true;
}

std::shared_ptr<PackedMapping> PackedCache::open(ThreadPool& pool, std::string* why_not) const {
  auto fail = [&](const std::string& w) -> std::shared_ptr<PackedMapping> {
    if (why_not) *why_not = w;
    return nullptr;
  };
  if (!ok_) return fail(why_);
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno == ENOENT ? "no cache file yet" : std::strerror(errno));
  struct stat st {};
  Header h{};
  std::vector<uint64_t> crcs;
  std::string source;
  std::string bad = fstat(fd, &st) != 0 ? std::string(std::strerror(errno))
                                        : decode_header(fd, size_t(st.st_size), h, crcs, source);
  if (bad.empty() && std::memcmp(h.key, key_, 32) != 0)
    bad = "stale (the model file or the packing code changed since it was written)";
  if (bad.empty() && h.payload_bytes != total_)
    bad = "stale (holds " + std::to_string(h.payload_bytes) + " bytes, expected " +
          std::to_string(total_) + ")";
  if (!bad.empty()) {
    ::close(fd);
    return fail(bad);
  }
  // A 2 MiB-aligned reservation, the payload mapped over it.
  const size_t huge = size_t(2) << 20, reserved = total_ + huge;
  void* r = mmap(nullptr, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) {
    ::close(fd);
    return fail(std::string("cannot reserve address space: ") + std::strerror(errno));
  }
  const uintptr_t raw = reinterpret_cast<uintptr_t>(r);
  const uintptr_t al = (raw + huge - 1) & ~uintptr_t(huge - 1);
  if (al > raw) munmap(r, al - raw);
  const size_t tail = (raw + reserved) - (al + total_);
  if (tail > 0) munmap(reinterpret_cast<void*>(al + total_), tail);
  void* p = mmap(reinterpret_cast<void*>(al), total_, PROT_READ, MAP_SHARED | MAP_FIXED, fd,
                 off_t(kPayloadOffset));
  ::close(fd);
  if (p == MAP_FAILED) {
    munmap(reinterpret_cast<void*>(al), total_);
    return fail(std::string("cannot map: ") + std::strerror(errno));
  }
  auto m = std::make_shared<PackedMapping>(static_cast<uint8_t*>(p), total_, total_, path_);
  madvise(p, total_, MADV_HUGEPAGE);
  // Every chunk faulted in and checked, on all threads.
  std::vector<char> good(crcs.size(), 0);
  pool.parallel_for(int64_t(crcs.size()), 1, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) {
      const size_t off = size_t(i) * kChunk, n = std::min(kChunk, total_ - off);
#ifdef MADV_POPULATE_READ
      madvise(m->data() + off, n, MADV_POPULATE_READ);
#endif
      good[size_t(i)] = checksum(m->data() + off, n) == crcs[size_t(i)];
    }
  });
  for (size_t i = 0; i < good.size(); ++i)
    if (!good[i]) return fail("corrupt (chunk " + std::to_string(i) + " fails its checksum)");
  return m;
}

std::string PackedCache::write(const uint8_t* data, const std::atomic<bool>* cancel) const {
  if (!ok_) return why_;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return "cannot create " + dir_ + ": " + ec.message();
  prune(dir_);
  const std::string tmp = path_ + ".tmp." + std::to_string(getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot create " + tmp + ": " + std::strerror(errno);
  auto fail = [&](const std::string& w) {
    ::close(fd);
    unlink(tmp.c_str());
    return w;
  };
  std::vector<uint64_t> crcs;
  for (size_t off = 0; off < total_; off += kChunk) {
    if (cancel && cancel->load(std::memory_order_relaxed)) return fail("cancelled");
    const size_t n = std::min(kChunk, total_ - off);
    crcs.push_back(checksum(data + off, n));
    if (!write_all(fd, data + off, n, off_t(kPayloadOffset + off)))
      return fail("cannot write " + tmp + ": " + std::strerror(errno));
  }
  const std::vector<uint8_t> head = encode_header(key_, total_, crcs, source_);
  if (!write_all(fd, head.data(), head.size(), 0))
    return fail("cannot write " + tmp + ": " + std::strerror(errno));
  if (::close(fd) != 0) {
    unlink(tmp.c_str());
    return "cannot write " + tmp + ": " + std::strerror(errno);
  }
  if (rename(tmp.c_str(), path_.c_str()) != 0) {
    const std::string e = std::strerror(errno);
    unlink(tmp.c_str());
    return "cannot rename " + tmp + ": " + e;
  }
  return "";
}

}  // namespace lmstream

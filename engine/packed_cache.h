// The packed-weight cache: the engine's arena of repacked matrices (Q8_0/Q4_0 groups, ...) kept as
// a file, so a later start of the same model maps it instead of repacking and zeroing 1 GiB.
//
// One file per (model files, tensor table, shard) in the cache directory, named by a hash of those;
// its header holds a key (the source files' size, mtime, inode and a SHA-256 of their first MiB,
// the tensor table, and a fingerprint of every packing routine the model uses, computed by packing
// a synthetic tensor), the payload size and an XXH3-64 checksum per 32 MiB chunk. A file is used
// only when all of it matches and every chunk's checksum verifies (checked on the engine's threads
// while the pages are mapped in); otherwise the reason is reported and the caller repacks and
// rewrites it. Files are written to a temporary name and renamed, so a reader never sees a partial
// one. The payload starts at 2 MiB in the file and is mapped at a 2 MiB-aligned address with
// MADV_HUGEPAGE, so page-cache folios of 2 MiB (ext4 and tmpfs make them) are mapped as huge pages:
// decode reads it as fast as the anonymous huge-page arena.
// Must not: know a weight format's layout (it packs through Matrix::prepare) or log (it returns
// text; the caller logs).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace lmstream {

class ThreadPool;

// A read-only mapping of a verified cache file's payload.
class PackedMapping {
 public:
  PackedMapping(uint8_t* base, size_t size, size_t reserved, std::string path)
      : base_(base), size_(size), reserved_(reserved), path_(std::move(path)) {}
  ~PackedMapping();
  PackedMapping(const PackedMapping&) = delete;
  PackedMapping& operator=(const PackedMapping&) = delete;
  uint8_t* data() const { return base_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  uint8_t* base_;
  size_t size_;
  size_t reserved_;  // bytes of the aligned reservation to unmap
  std::string path_;
};

class PackedCache {
 public:
  // The matrices (in arena order, with their arena offsets) that the arena of total bytes holds.
  // ok() is false (and why() says so) when the cache cannot be used for them: a matrix not read
  // from one of the model's files (converted in memory) or a source file that cannot be stat'ed.
  PackedCache(const std::string& dir, const Model& model, const std::vector<const Tensor*>& order,
              const std::vector<size_t>& offsets, size_t total);

  bool ok() const { return ok_; }
  const std::string& why() const { return why_; }
  const std::string& path() const { return path_; }

  // The verified payload, or null with *why_not saying what was missing, stale or corrupt.
  std::shared_ptr<PackedMapping> open(ThreadPool& pool, std::string* why_not) const;
  // Writes the payload (total bytes at data) under path() atomically; stops early, leaving
  // nothing, when *cancel becomes true. Returns "" on success, else what failed. Also removes
  // cache files whose source file is gone and temporary files of processes that died.
  std::string write(const uint8_t* data, const std::atomic<bool>* cancel) const;

 private:
  bool ok_ = false;
  std::string why_;
  std::string dir_, path_, source_;
  size_t total_ = 0;
  uint8_t key_[32] = {};
};

}  // namespace lmstream

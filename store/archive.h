// Model archives (SageMaker/LMI's model.tar.gz, also .tgz and plain .tar) unpacked safely into a
// model directory with libarchive. A first pass over the headers refuses, before anything is
// written, entries that would land outside the directory (absolute paths, '..' components,
// symlinks or hard links whose target leaves it, links through other links), device nodes and
// FIFOs, archives that do not decompress, and archives whose files would not fit the free disk.
// The second pass extracts into a temporary directory beside the destination, which is renamed
// into place only when complete: a failure leaves nothing half-written under the final name.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace lmstream::store {

// Why an archive was refused or could not be unpacked; the message names the archive, the entry
// when there is one, and what to do.
class ArchiveError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Ends in .tar.gz, .tgz or .tar (ASCII case-insensitive).
bool is_archive_path(std::string_view path);

struct ArchiveSummary {
  uint64_t files = 0;        // regular files
  uint64_t directories = 0;  // explicit directory entries
  uint64_t links = 0;        // symbolic and hard links
  uint64_t bytes = 0;        // uncompressed size of the regular files
  // "serving.properties" when the archive holds one at its root, else "dir/serving.properties"
  // when everything sits in one top-level directory that holds one (tar czf m.tar.gz mydir), else
  // "".
  std::string serving_properties;
};

struct ExtractOptions {
  // Free bytes on the file system holding `dir`; the default asks statvfs. Tests inject a figure.
  std::function<uint64_t(const std::string& dir)> free_space;
  // Kept free beyond the archive's own bytes (and 4 KiB per entry for blocks and metadata).
  uint64_t headroom = 16 << 20;
};

// The first pass alone: reads every header (decompressing the whole stream, so a corrupt or
// truncated gzip is found here) and checks every entry. Throws ArchiveError.
ArchiveSummary scan_archive(const std::string& archive);

// Unpacks `archive` into the directory `dest`, which must not exist yet (its parent must). Throws
// ArchiveError, leaving no `dest` and no temporary directory behind. If another process creates
// `dest` while this one extracts, its copy is kept and this one discarded (both are the same
// archive's contents when the caller keys `dest` by the archive's identity).
ArchiveSummary extract_archive(const std::string& archive, const std::string& dest,
                               const ExtractOptions& options = {});

// DJL's rule for where a model directory really is: a directory whose only non-hidden entry is a
// sub-directory stands for that sub-directory (repeatedly). `dir` itself otherwise.
std::string model_root(const std::string& dir);

}  // namespace lmstream::store

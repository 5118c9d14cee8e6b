// The downloader: fetches one remote file to a final local path through http/client.h, and
// nothing else. Large files are fetched as parallel ranged GETs; an interrupted download resumes
// from `<final>.incomplete`; 5xx answers, dropped connections and stalls are retried with backoff;
// the size is always checked and the sha256 / md5 / git blob sha1 when known; the free disk is
// checked first; the file appears under its final name only after verification (atomic rename);
// a flock on `<final>.lock` makes two processes fetching the same file wait for each other rather
// than corrupt or duplicate it.
//
// What a source must give is a RemoteFile: a request factory that receives the byte range to
// fetch (so that a signer, e.g. SigV4 for S3, can sign each ranged request), and what is known of
// the file. Hub (store/hub.*) and S3 (aws/s3.*) build RemoteFiles; this file knows neither.
//
// Resume state: `<final>.incomplete` is the file at its full size (sparse while parts are
// missing) and `<final>.incomplete.parts` a small JSON sidecar naming the finished parts; a part is
// recorded only once all its bytes are written. An `.incomplete` without a sidecar (e.g. left by
// huggingface_hub, which appends sequentially) counts as a finished prefix of its length. Every
// byte is verified at the end either way, so a wrong guess costs a checksum error, never a
// corrupt file under the final name.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include "http/client.h"

namespace lmstream::store {

class Progress;

// A file on a server, described well enough to fetch and verify it. Keep this API stable: the
// Hub and S3 sources both build it.
struct RemoteFile {
  std::string name;  // shown in progress lines and messages (a repo path or an s3:// URL)
  // Builds the GET for `range` (nullopt: the whole file). Called once per attempt, on the thread
  // that sends it; may sign the request.
  std::function<http::ClientRequest(std::optional<http::ByteRange>)> request;
  std::optional<uint64_t> size;         // unknown: one sequential GET, checked against its length
  std::optional<std::string> sha256;    // lowercase hex
  std::optional<std::string> md5;       // lowercase hex (S3's ETag of a single-part upload)
  std::optional<std::string> git_sha1;  // lowercase hex of sha1("blob <size>\0" + bytes)
};

struct DownloadOptions {
  int connections = 8;                     // parallel ranged requests per file (1 = sequential)
  uint64_t part_size = 32ull << 20;        // bytes per ranged request
  int retries = 5;                         // further tries of a part after a retryable failure
  std::chrono::milliseconds backoff{500};  // first retry delay; doubles, at most 8 s
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds stall_timeout{30'000};  // no byte for this long: the try fails
  // Flush a file to disk before its rename (and start the writeback part by part), so a power
  // loss never leaves a renamed but unwritten file. 0 skips it, as huggingface_hub and curl do
  // (a crashed process loses nothing either way; only a crashed machine can).
  bool fsync = true;
  Progress* progress = nullptr;  // may be null
  const std::atomic<bool>* cancel = nullptr;
  // Reads LMSTREAM_DOWNLOAD_CONNECTIONS, LMSTREAM_DOWNLOAD_PART_SIZE, LMSTREAM_DOWNLOAD_RETRIES,
  // LMSTREAM_DOWNLOAD_FSYNC (1|0),
  // HF_HUB_DOWNLOAD_TIMEOUT (stall seconds) and HF_HUB_ETAG_TIMEOUT (connect seconds) over the
  // defaults; throws std::invalid_argument naming a bad value.
  static DownloadOptions from_env();
};

// A download that failed for good; the message names the file, the URL's host and what to do.
class DownloadError : public std::runtime_error {
 public:
  enum class Kind { kHttp, kTransport, kChecksum, kSize, kDisk, kLocal, kCancelled };
  DownloadError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

struct DownloadResult {
  uint64_t size = 0;
  uint64_t fetched = 0;  // bytes received in this call (0 when the file was already there)
  bool cached = false;   // the final file existed (maybe made by another process meanwhile)
  bool resumed = false;  // a previous .incomplete was continued
  double seconds = 0;
};

// Fetches `file` to `final_path` (its directory must exist). Returns at once if final_path exists.
// Throws DownloadError.
DownloadResult download(const RemoteFile& file, const std::string& final_path,
                        const DownloadOptions& options);

// Byte ranges covering [0, size) in order: one when size <= part_size; else parts of part_size,
// then the last min(size/2, 2*part_size) bytes in parts of part_size/8.
std::vector<http::ByteRange> split_ranges(uint64_t size, uint64_t part_size);

// Parses "bytes FIRST-LAST/TOTAL" (RFC 9110 §14.4); nullopt when malformed. total 0 = "*".
struct ContentRange {
  uint64_t first = 0, last = 0, total = 0;
};
std::optional<ContentRange> parse_content_range(const std::string& v);

}  // namespace lmstream::store

// The one model resolver: every place a model is named (`--model` of every subcommand,
// HF_MODEL_ID, LMI's option.model_id) turns what the user wrote into a local path here.
//   local file or directory   → itself
//   file:///abs/path          → /abs/path
//   org/name[:QUANT]          → the Hugging Face Hub (store/hub.h), into the HF cache
//   s3://bucket/key[/]        → resolve_s3()       (store/resolve_s3.cc; the S3 source)
//   *.tar.gz / *.tgz / *.tar  → resolve_archive()  (store/resolve_archive.cc; extraction)
// classify() decides, resolve_model() dispatches; the S3 and archive sources fill their own
// function and nothing else here changes.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "store/download.h"
#include "store/hub_cache.h"

namespace lmstream::store {

class Progress;

struct ResolveOptions {
  std::optional<std::string> revision;   // --revision, else HF_MODEL_REVISION, else "main"
  std::optional<std::string> gguf_file;  // --gguf-file
  std::vector<std::string> include;      // --include (download: exactly these files)
  std::optional<std::string> local_dir;  // --local-dir
  DownloadOptions download = {};         // connections, retries, timeouts, progress, cancel
  Env env = process_env();
};

enum class SourceKind { kLocal, kFileUrl, kHub, kS3, kArchive, kUnsupported };

struct ModelSource {
  SourceKind kind;
  std::string location;  // the path (kLocal, kFileUrl, kArchive), the URL, or the Hub id
};

// What kind of source `spec` names. An existing path is always local (an archive when its name
// ends in .tar.gz, .tgz or .tar); then the URL schemes; then a Hub id; anything else is
// kUnsupported (resolve_model explains).
ModelSource classify(const std::string& spec);

// A local path for `spec` (a file or directory that load_model takes), downloading or extracting
// as needed. Throws std::runtime_error (DownloadError, hub::HubError, ...) with a message that
// names the source and what to do.
std::string resolve_model(const std::string& spec, const ResolveOptions& options);

// The sources that plug in (each in its own file).
std::string resolve_s3(const std::string& url, const ResolveOptions& options);
std::string resolve_archive(const std::string& path, const ResolveOptions& options);

}  // namespace lmstream::store

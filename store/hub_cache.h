// The Hugging Face Hub cache layout, as huggingface_hub writes it, so that a cache made by
// `huggingface-cli download` is used as it is and ours is usable by Python:
//   <cache>/models--org--name/refs/<rev>            the commit of a branch or tag (no newline)
//   <cache>/models--org--name/blobs/<etag>          file contents, named by normalised etag
//   <cache>/models--org--name/snapshots/<commit>/<path> -> ../../blobs/<etag> (relative)
//   <cache>/models--org--name/.no_exist/<commit>/<path>  empty: known to be missing
// Paths and small reads/writes only; no network.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace lmstream::store {

// getenv in a form tests can replace.
using Env = std::function<std::optional<std::string>(const std::string&)>;
Env process_env();

namespace hub {

// "org/name" → "models--org--name".
std::string repo_folder_name(const std::string& repo_id);
// 40 lowercase hex digits.
bool is_commit_hash(std::string_view s);
// Drops a leading W/ and the quotes: W/"abc" → abc.
std::string normalize_etag(std::string_view etag);
// The symlink target of snapshots/<commit>/<path> for blob <etag>: "../../blobs/<etag>" plus one
// "../" per directory level in path.
std::string blob_link_target(const std::string& path, const std::string& etag);
// A repo-relative file path that is safe to join under a directory: no absolute path, no "..",
// no empty or "." components, no NUL or backslash.
bool safe_relative_path(std::string_view path);

// HF_HOME: $HF_HOME, else $XDG_CACHE_HOME/huggingface, else $HOME/.cache/huggingface.
std::string hf_home(const Env& env);
// HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub.
std::string hub_cache_dir(const Env& env);

class Cache {
 public:
  explicit Cache(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }
  std::string repo_dir(const std::string& repo) const;
  std::string blobs_dir(const std::string& repo) const;
  std::string blob_path(const std::string& repo, const std::string& etag) const;
  std::string snapshot_dir(const std::string& repo, const std::string& commit) const;
  std::string snapshot_path(const std::string& repo, const std::string& commit,
                            const std::string& file) const;
  std::string ref_path(const std::string& repo, const std::string& rev) const;

  // The commit a revision stands for: itself when it is a commit hash, else refs/<rev>.
  std::optional<std::string> commit_of(const std::string& repo, const std::string& rev) const;
  void write_ref(const std::string& repo, const std::string& rev, const std::string& commit) const;
  // snapshots/<commit>/<file> → blob, replacing what was there. Creates directories.
  void link(const std::string& repo, const std::string& commit, const std::string& file,
            const std::string& etag) const;
  // The cached file (an existing regular file, through its symlink), as TGI's
  // try_to_load_from_cache: refs/<rev> → commit → snapshots/<commit>/<file>.
  std::optional<std::string> cached_file(const std::string& repo, const std::string& rev,
                                         const std::string& file) const;
  void mark_missing(const std::string& repo, const std::string& commit,
                    const std::string& file) const;

 private:
  std::string root_;
};

}  // namespace hub
}  // namespace lmstream::store

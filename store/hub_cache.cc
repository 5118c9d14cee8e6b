// The Hub cache layout (see hub_cache.h).
#include "store/hub_cache.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "base/files.h"
#include "base/strings.h"

namespace lmstream::store {

namespace fs = std::filesystem;

Env process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

namespace hub {

std::string repo_folder_name(const std::string& repo_id) {
  std::string out = "models--";
  for (size_t i = 0; i < repo_id.size(); ++i) {
    if (repo_id[i] == '/')
      out += "--";
    else
      out += repo_id[i];
  }
  return out;
}

bool is_commit_hash(std::string_view s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string normalize_etag(std::string_view e) {
  e = base::trim(e);
  if (e.size() >= 2 && e.substr(0, 2) == "W/") e.remove_prefix(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return std::string(e);
}

std::string blob_link_target(const std::string& path, const std::string& etag) {
  std::string t = "../../";
  for (char c : path)
    if (c == '/') t += "../";
  return t + "blobs/" + etag;
}

bool safe_relative_path(std::string_view p) {
  if (p.empty() || p.front() == '/' || p.find('\0') != std::string_view::npos ||
      p.find('\\') != std::string_view::npos)
    return false;
  for (auto part : base::split(p, '/'))
    if (part.empty() || part == "." || part == "..") return false;
  return true;
}

std::string hf_home(const Env& env) {
  if (auto v = env("HF_HOME"); v && !v->empty()) return *v;
  if (auto v = env("XDG_CACHE_HOME"); v && !v->empty()) return *v + "/huggingface";
  auto home = env("HOME");
  return (home && !home->empty() ? *home : std::string("/root")) + "/.cache/huggingface";
}

std::string hub_cache_dir(const Env& env) {
  if (auto v = env("HF_HUB_CACHE"); v && !v->empty()) return *v;
  if (auto v = env("HUGGINGFACE_HUB_CACHE"); v && !v->empty()) return *v;
  return hf_home(env) + "/hub";
}

std::string Cache::repo_dir(const std::string& repo) const {
  return root_ + "/" + repo_folder_name(repo);
}
std::string Cache::blobs_dir(const std::string& repo) const { return repo_dir(repo) + "/blobs"; }
std::string Cache::blob_path(const std::string& repo, const std::string& etag) const {
  return blobs_dir(repo) + "/" + etag;
}
std::string Cache::snapshot_dir(const std::string& repo, const std::string& commit) const {
  return repo_dir(repo) + "/snapshots/" + commit;
}
std::string Cache::snapshot_path(const std::string& repo, const std::string& commit,
                                 const std::string& file) const {
  return snapshot_dir(repo, commit) + "/" + file;
}
std::string Cache::ref_path(const std::string& repo, const std::string& rev) const {
  return repo_dir(repo) + "/refs/" + rev;
}

std::optional<std::string> Cache::commit_of(const std::string& repo, const std::string& rev) const {
  if (is_commit_hash(rev)) return rev;
  std::ifstream f(ref_path(repo, rev));
  if (!f) return std::nullopt;
  std::string s;
  std::getline(f, s);
  s = std::string(base::trim(s));
  if (!is_commit_hash(s)) return std::nullopt;
  return s;
}

void Cache::write_ref(const std::string& repo, const std::string& rev,
                      const std::string& commit) const {
  if (is_commit_hash(rev)) return;
  std::string p = ref_path(repo, rev);
  fs::create_directories(fs::path(p).parent_path());
  std::error_code ec;
  if (commit_of(repo, rev) == commit) return;
  base::write_file_atomic(p, commit);
}

void Cache::link(const std::string& repo, const std::string& commit, const std::string& file,
                 const std::string& etag) const {
  fs::path p = snapshot_path(repo, commit, file);
  fs::create_directories(p.parent_path());
  std::string target = blob_link_target(file, etag);
  std::error_code ec;
  if (fs::is_symlink(p, ec) && fs::read_symlink(p, ec).string() == target) return;
  // Made under a private name and renamed over, so a reader never sees a missing link.
  fs::path tmp = p;
  tmp += ".tmp-link." + std::to_string(::getpid());
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp);
  fs::rename(tmp, p);
}

std::optional<std::string> Cache::cached_file(const std::string& repo, const std::string& rev,
                                              const std::string& file) const {
  auto c = commit_of(repo, rev);
  if (!c) return std::nullopt;
  std::string p = snapshot_path(repo, *c, file);
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return p;
  return std::nullopt;
}

void Cache::mark_missing(const std::string& repo, const std::string& commit,
                         const std::string& file) const {
  fs::path p = repo_dir(repo) + "/.no_exist/" + commit + "/" + file;
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  std::ofstream(p.string(), std::ios::app);
}

}  // namespace hub
}  // namespace lmstream::store

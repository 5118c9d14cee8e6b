// The archive source of the resolver (store/resolve.h): a local model.tar.gz / .tgz / .tar is
// unpacked once into the lmstream cache (store/archive.h does it safely) and its model directory
// returned; a serving.properties at its root may point further (option.model_id). Also the
// helpers the S3 source shares (store/sources.h).
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "aws/sigv4.h"
#include "base/strings.h"
#include "store/archive.h"
#include "store/progress.h"
#include "store/resolve.h"
#include "store/sources.h"

namespace lmstream::store {

namespace fs = std::filesystem;

std::string lmstream_cache_dir(const Env& env) {
  if (auto v = env("LMSTREAM_CACHE"); v && !v->empty()) return *v;
  if (auto v = env("XDG_CACHE_HOME"); v && !v->empty()) return *v + "/lmstream";
  if (auto v = env("HOME"); v && !v->empty()) return *v + "/.cache/lmstream";
  return (fs::temp_directory_path() / "lmstream-cache").string();
}

std::string short_hash(std::string_view text) { return sigv4::sha256_hex(text).substr(0, 40); }

std::string serving_properties_model_id(const std::string& path) {
  std::ifstream in(path);
  std::string line, model_id, s3url;
  while (std::getline(in, line)) {
    const std::string_view t = base::trim(line);
    if (t.empty() || t.front() == '#' || t.front() == '!') continue;
    const size_t sep = t.find_first_of("=:");
    if (sep == std::string_view::npos) continue;
    const std::string_view key = base::trim(t.substr(0, sep));
    const std::string value(base::trim(t.substr(sep + 1)));
    if (key == "option.model_id") model_id = value;
    if (key == "option.s3url") s3url = value;
  }
  return model_id.empty() ? s3url : model_id;
}

namespace {
thread_local int g_depth = 0;  // serving.properties pointing to archives pointing to ...
}

std::string unpack_model_archive(const std::string& archive, const std::string& dest,
                                 const ResolveOptions& options, const std::string& label) {
  Progress* progress = options.download.progress;
  std::error_code ec;
  if (fs::is_directory(dest, ec)) {
    if (progress) progress->note(label + ": already unpacked in " + dest);
  } else {
    fs::create_directories(fs::path(dest).parent_path(), ec);
    if (progress) progress->note("unpacking " + label + " into " + dest);
    try {
      extract_archive(archive, dest);
    } catch (const ArchiveError&) {
      // Another process unpacking the same archive may have finished first (and removed an
      // S3 download's .tar.gz under us): its copy is as good.
      if (!fs::is_directory(dest, ec)) throw;
    }
  }
  const std::string root = model_root(dest);
  const std::string props = root + "/serving.properties";
  if (!fs::is_regular_file(props, ec)) return root;
  const std::string id = serving_properties_model_id(props);
  if (id.empty()) return root;
  const ModelSource next = classify(id);
  if (next.kind == SourceKind::kHub || next.kind == SourceKind::kS3 ||
      ((next.kind == SourceKind::kArchive || next.kind == SourceKind::kFileUrl) &&
       fs::exists(next.location, ec))) {
    if (g_depth >= 4) {
      throw std::runtime_error(label + ": serving.properties option.model_id=" + id +
                               " leads through more than 4 archives; stopping");
    }
    if (progress) progress->note(label + ": serving.properties names option.model_id=" + id);
    ResolveOptions further = options;
    further.local_dir.reset();  // --local-dir is where this archive went, not where id goes
    ++g_depth;
    try {
      std::string path = resolve_model(id, further);
      --g_depth;
      return path;
    } catch (...) {
      --g_depth;
      throw;
    }
  }
  if (fs::exists(id, ec)) return id;
  if (fs::exists(fs::path(root) / id, ec)) return (fs::path(root) / id).string();
  // e.g. option.model_id=/opt/ml/model written for SageMaker: the unpacked directory is it.
  if (progress) {
    progress->note(label + ": serving.properties option.model_id=" + id +
                   " is not a path here; using the unpacked directory " + root);
  }
  return root;
}

std::string resolve_archive(const std::string& path, const ResolveOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw std::runtime_error("'" + path + "': no such archive");
  }
  const std::string abs = fs::absolute(path).lexically_normal().string();
  const std::string key = abs + "|" + std::to_string(st.st_size) + "|" +
                          std::to_string(st.st_mtim.tv_sec) + "." +
                          std::to_string(st.st_mtim.tv_nsec);
  std::string dest = lmstream_cache_dir(options.env) + "/archives/" + short_hash(key);
  if (options.local_dir) {  // `lmstream download ARCHIVE --local-dir DIR` (an empty DIR is fine)
    std::error_code ec;
    if (fs::is_directory(*options.local_dir, ec) && fs::is_empty(*options.local_dir, ec)) {
      fs::remove(*options.local_dir, ec);
    }
    dest = *options.local_dir;
  }
  return unpack_model_archive(path, dest, options, path);
}

}  // namespace lmstream::store

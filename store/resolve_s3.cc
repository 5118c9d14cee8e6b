// The s3:// source of the resolver (store/resolve.h), on the S3 client (aws/s3.h) and the
// downloader (store/download.h): s3://bucket/key is one object (a GGUF file, or an archive that
// is then unpacked), s3://bucket/prefix/ a directory of loose files (listed with ListObjectsV2;
// s3://bucket/prefix without the slash is read as that prefix when no such object exists, as
// LMI's `s5cmd sync` does). Each ranged GET is signed afresh by the RemoteFile's request factory;
// sizes are always checked, and single-part ETags (MD5) too. The cache layout is in
// store/sources.h: a second start costs one HEAD (or one listing) and no download. --include
// globs (fnmatch) pick files of a prefix; --local-dir puts the files there instead of the cache.
#include <fnmatch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <stdexcept>

#include "aws/s3.h"
#include "base/strings.h"
#include "store/archive.h"
#include "store/download.h"
#include "store/hub_cache.h"
#include "store/progress.h"
#include "store/resolve.h"
#include "store/sources.h"

namespace lmstream::store {

namespace fs = std::filesystem;

namespace {

RemoteFile remote_file(const std::shared_ptr<aws::S3Client>& client, const std::string& bucket,
                       const aws::S3Object& o, bool md5_usable) {
  RemoteFile f;
  f.name = "s3://" + bucket + "/" + o.key;
  f.size = o.size;
  if (md5_usable && o.etag_is_md5()) f.md5 = base::to_lower(o.etag);
  // If-Match: a resumed or ranged download fails (412) instead of splicing a replaced object.
  f.request = [client, bucket, key = o.key, etag = o.etag](std::optional<http::ByteRange> range) {
    return client->object_request(bucket, key, range, "GET", etag);
  };
  return f;
}

// The cache directory name for one version of an object: its ETag when that is a plain token (as
// S3's hex and hex-N are), else a hash of it; the size and date when there is none.
std::string etag_dir_name(const aws::S3Object& obj) {
  if (obj.etag.empty()) return short_hash("size " + std::to_string(obj.size) + obj.last_modified);
  const bool plain =
      obj.etag.size() <= 80 && std::all_of(obj.etag.begin(), obj.etag.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '-';
      });
  return plain ? obj.etag : short_hash(obj.etag);
}

std::string endpoint_id(const aws::S3Config& c) {
  return c.endpoint.empty() ? "aws:" + c.region : c.endpoint;
}

// One object to `dest` through the downloader, reported to the progress output.
void fetch_file(const std::shared_ptr<aws::S3Client>& client, const std::string& bucket,
                const aws::S3Object& obj, const std::string& dest, const DownloadOptions& dl,
                bool md5_usable = true) {
  Progress* progress = dl.progress;
  const std::string name = "s3://" + bucket + "/" + obj.key;
  std::error_code ec;
  if (fs::exists(dest, ec)) {
    if (progress) progress->file_cached(name, obj.size);
    return;
  }
  const aws::S3Config& c = client->config();
  if (progress) progress->file_start(name, obj.size, c.endpoint.empty() ? "AWS S3" : c.endpoint);
  const DownloadResult r = download(remote_file(client, bucket, obj, md5_usable), dest, dl);
  if (r.cached && progress) progress->file_cached(name, obj.size);
  fs::remove(dest + ".lock", ec);  // the downloader's lock file is not part of the model
}

// Free disk for every file of the prefix not yet under `dir`, before the first one starts (the
// downloader checks each file again).
void check_free_disk(const aws::S3Url& prefix, const std::vector<aws::S3Object>& objects,
                     const std::vector<std::string>& rel, const std::string& dir) {
  std::error_code ec;
  uint64_t missing = 0;
  for (size_t i = 0; i < objects.size(); ++i) {
    if (!fs::is_regular_file(fs::path(dir) / rel[i], ec)) missing += objects[i].size;
  }
  fs::create_directories(dir, ec);
  const fs::space_info sp = fs::space(dir, ec);
  if (!ec && sp.available < missing) {
    throw DownloadError(DownloadError::Kind::kDisk,
                        "not enough free disk space for " + prefix.str() + " in " + dir + ": " +
                            Progress::bytes_text(double(missing)) + " needed, " +
                            Progress::bytes_text(double(sp.available)) +
                            " available (set LMSTREAM_CACHE to a larger disk)");
  }
}

// The objects whose path below the prefix matches one of --include's globs (fnmatch, as the Hub
// source), or all of them without globs. Throws when globs match nothing.
std::vector<aws::S3Object> included(const aws::S3Url& prefix,
                                    const std::vector<aws::S3Object>& objects,
                                    const std::vector<std::string>& globs) {
  if (globs.empty()) return objects;
  std::vector<aws::S3Object> out;
  for (const aws::S3Object& obj : objects) {
    const std::string r = obj.key.substr(prefix.key.size());
    for (const std::string& g : globs) {
      if (::fnmatch(g.c_str(), r.c_str(), 0) == 0) {
        out.push_back(obj);
        break;
      }
    }
  }
  if (out.empty()) {
    std::string list;
    for (const std::string& g : globs) list += (list.empty() ? "" : " ") + g;
    throw std::runtime_error(prefix.str() + ": no object below the prefix matches --include " +
                             list);
  }
  return out;
}

std::string fetch_prefix(const std::shared_ptr<aws::S3Client>& client, const aws::S3Url& prefix,
                         const std::vector<aws::S3Object>& all, const ResolveOptions& o,
                         const std::string& cache) {
  Progress* progress = o.download.progress;
  const std::vector<aws::S3Object> objects = included(prefix, all, o.include);
  // Relative paths below the prefix, refused when they would leave the directory or clash.
  std::vector<std::string> rel;
  std::set<std::string> files, dirs;
  std::string listing;
  uint64_t total = 0;
  for (const aws::S3Object& obj : objects) {
    const std::string r = obj.key.substr(prefix.key.size());
    if (!hub::safe_relative_path(r)) {
      throw std::runtime_error(prefix.str() + ": refusing key '" + obj.key +
                               "': its path below the prefix is not a safe relative path (empty, "
                               "absolute, '.' or '..' parts)");
    }
    for (size_t i = r.find('/'); i != std::string::npos; i = r.find('/', i + 1)) {
      dirs.insert(r.substr(0, i));
    }
    files.insert(r);
    rel.push_back(r);
    listing += r + "|" + std::to_string(obj.size) + "|" + obj.etag + "\n";
    total += obj.size;
  }
  for (const std::string& f : files) {
    if (dirs.count(f)) {
      throw std::runtime_error(prefix.str() + ": '" + f +
                               "' is both a file and a directory under this prefix; remove one");
    }
  }
  std::error_code ec;
  if (progress) progress->plan(int(objects.size()), total);
  // A listing does not say how the objects are encrypted, and ETags of SSE-KMS / SSE-C objects are
  // no MD5s: one HEAD of a single-part object decides for the prefix (a bucket's default
  // encryption covers all its objects). Sizes are checked regardless.
  auto md5_usable_here = [&] {
    for (const aws::S3Object& obj : objects) {
      if (obj.etag_is_md5()) {
        return client->head_object(aws::S3Url{prefix.bucket, obj.key}).etag_is_md5();
      }
    }
    return false;  // nothing to check anyway
  };
  if (o.local_dir) {  // `lmstream download --local-dir DIR`: the files go straight there
    check_free_disk(prefix, objects, rel, *o.local_dir);
    const bool md5_usable = md5_usable_here();
    if (progress) {
      progress->note(prefix.str() + ": " + std::to_string(objects.size()) + " files, " +
                     Progress::bytes_text(double(total)) + ", into " + *o.local_dir);
    }
    for (size_t i = 0; i < objects.size(); ++i) {
      const fs::path dest = fs::path(*o.local_dir) / rel[i];
      fs::create_directories(dest.parent_path());
      fetch_file(client, prefix.bucket, objects[i], dest.string(), o.download, md5_usable);
    }
    return *o.local_dir;
  }
  const std::string base =
      cache + "/s3/prefixes/" +
      short_hash(endpoint_id(client->config()) + "|" + prefix.bucket + "|" + prefix.key);
  const std::string final_dir = base + "/" + short_hash(listing);
  if (fs::is_directory(final_dir, ec)) {
    if (progress) {
      progress->note(prefix.str() + ": " + std::to_string(objects.size()) +
                     " files already in the cache at " + final_dir);
      for (const aws::S3Object& obj : objects) {
        progress->file_cached("s3://" + prefix.bucket + "/" + obj.key, obj.size);
      }
    }
    return model_root(final_dir);
  }
  const std::string work = final_dir + ".incomplete";
  check_free_disk(prefix, objects, rel, work);
  const bool md5_usable = md5_usable_here();
  if (progress) {
    progress->note(prefix.str() + ": " + std::to_string(objects.size()) + " files, " +
                   Progress::bytes_text(double(total)) + ", into " + final_dir);
  }
  try {
    for (size_t i = 0; i < objects.size(); ++i) {
      const fs::path dest = fs::path(work) / rel[i];
      fs::create_directories(dest.parent_path());
      fetch_file(client, prefix.bucket, objects[i], dest.string(), o.download, md5_usable);
    }
  } catch (...) {
    // Another process finished it.
    if (fs::is_directory(final_dir, ec)) return model_root(final_dir);
    throw;
  }
  if (::rename(work.c_str(), final_dir.c_str()) != 0 && !fs::is_directory(final_dir, ec)) {
    throw std::runtime_error(prefix.str() + ": cannot move " + work + " to " + final_dir + ": " +
                             std::strerror(errno));
  }
  fs::remove_all(work, ec);  // left only when another process renamed its copy first
  return model_root(final_dir);
}

std::string fetch_object(const std::shared_ptr<aws::S3Client>& client, const aws::S3Url& url,
                         const aws::S3Object& obj, const ResolveOptions& o,
                         const std::string& cache) {
  Progress* progress = o.download.progress;
  const std::string name = fs::path(url.key).filename().string();
  const std::string dir =
      cache + "/s3/objects/" +
      short_hash(endpoint_id(client->config()) + "|" + url.bucket + "|" + url.key) + "/" +
      etag_dir_name(obj);
  std::error_code ec;
  if (progress) progress->plan(1, obj.size);
  if (o.local_dir && !is_archive_path(name)) {
    fs::create_directories(*o.local_dir, ec);
    const std::string file = *o.local_dir + "/" + name;
    fetch_file(client, url.bucket, obj, file, o.download);
    return file;
  }
  fs::create_directories(dir, ec);
  if (ec) {
    throw std::runtime_error("cannot create the cache directory " + dir + ": " + ec.message());
  }
  const std::string file = dir + "/" + name;
  if (is_archive_path(name)) {
    std::string model = dir + "/model";
    if (o.local_dir) {  // unpacked into --local-dir (an empty one is replaced)
      if (fs::is_directory(*o.local_dir, ec) && fs::is_empty(*o.local_dir, ec)) {
        fs::remove(*o.local_dir, ec);
      }
      model = *o.local_dir;
    }
    if (fs::is_directory(model, ec)) {
      if (progress) progress->file_cached(url.str(), obj.size);
    } else {
      fetch_file(client, url.bucket, obj, file, o.download);
    }
    std::string path = unpack_model_archive(file, model, o, url.str());
    fs::remove(file, ec);  // unpacked: the archive itself is not needed again
    return path;
  }
  fetch_file(client, url.bucket, obj, file, o.download);
  return file;
}

}  // namespace

std::string resolve_s3(const std::string& spec, const ResolveOptions& o) {
  aws::S3Url url;
  try {
    url = aws::parse_s3_url(spec);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());
  }
  const Env& env = o.env;
  const aws::S3Config config =
      aws::S3Config::from_environment([&env](const char* name) -> std::optional<std::string> {
        std::optional<std::string> v = env(name);
        if (v && v->empty()) return std::nullopt;
        return v;
      });
  http::ClientOptions copt;
  copt.connect_timeout = o.download.connect_timeout;
  copt.stall_timeout = o.download.stall_timeout;
  copt.cancel = o.download.cancel;
  auto client = std::make_shared<aws::S3Client>(config, copt);
  const std::string cache = lmstream_cache_dir(env);
  Progress* progress = o.download.progress;
  if (progress) {
    progress->note("model " + url.str() + " from " +
                   (config.endpoint.empty() ? "AWS S3 (" + config.region + ")" : config.endpoint) +
                   ", cache " + cache);
  }

  if (url.is_prefix()) {
    const std::vector<aws::S3Object> objects = client->list_objects(url);
    if (objects.empty()) {
      throw std::runtime_error(url.str() + ": no objects under this prefix; check it (aws s3 ls " +
                               url.str() + ")");
    }
    std::string path = fetch_prefix(client, url, objects, o, cache);
    if (progress) progress->summary();
    return path;
  }
  aws::S3Object obj;
  try {
    obj = client->head_object(url);
  } catch (const aws::S3Error& e) {
    if (e.code() != "NoSuchKey") throw;
    // No such object: as a prefix (s3://bucket/dir means s3://bucket/dir/ to LMI's s5cmd sync).
    const aws::S3Url prefix{url.bucket, url.key + "/"};
    std::vector<aws::S3Object> objects;
    try {
      objects = client->list_objects(prefix);
    } catch (const std::exception&) {
      throw e;
    }
    if (objects.empty()) throw;
    std::string path = fetch_prefix(client, prefix, objects, o, cache);
    if (progress) progress->summary();
    return path;
  }
  std::string path = fetch_object(client, url, obj, o, cache);
  if (progress) progress->summary();
  return path;
}

}  // namespace lmstream::store

// What the S3 and archive sources of the model resolver (store/resolve.h) share: the lmstream
// cache directory they keep downloads and unpacked archives in, the short hash that names cache
// entries, unpacking an archive into the cache, and following a serving.properties'
// option.model_id further (to the Hub, S3 or a path), as LMI does.
//
// Cache layout (under lmstream_cache_dir()):
//   s3/objects/<h(endpoint|bucket|key)>/<etag>/<key's file name>   one object (e.g. a GGUF)
//   s3/objects/<h(endpoint|bucket|key)>/<etag>/model/              an archive object, unpacked
//                                                                  (the .tar.gz is then deleted)
//   s3/prefixes/<h(endpoint|bucket|prefix)>/<h(listing)>/<paths>   a prefix of loose files; the
//       listing hash covers every key, size and ETag, so a changed prefix is a new directory.
//       Filled in <...>.incomplete/ (resumable) and renamed into place when every file is there.
//   archives/<h(absolute path|size|mtime)>/                        a local archive, unpacked
// h() = the first 20 bytes of SHA-256, in hex (DJL names its S3 download directories so).
#pragma once

#include <string>
#include <string_view>

#include "store/resolve.h"

namespace lmstream::store {

// LMSTREAM_CACHE, else $XDG_CACHE_HOME/lmstream, else $HOME/.cache/lmstream.
std::string lmstream_cache_dir(const Env& env);
// First 20 bytes of SHA-256 of text, lowercase hex (40 characters).
std::string short_hash(std::string_view text);
// option.model_id (else the deprecated option.s3url) of a serving.properties file; "" if none.
std::string serving_properties_model_id(const std::string& path);
// Unpacks `archive` into `dest` unless dest is already there, then returns the model directory
// in it (DJL's single-sub-directory rule), or where its serving.properties' option.model_id
// points when that names a Hub id, an s3:// URL or an existing path (resolved in turn).
std::string unpack_model_archive(const std::string& archive, const std::string& dest,
                                 const ResolveOptions& options, const std::string& label);

}  // namespace lmstream::store

// The s3:// source of the resolver (store/resolve.h). Filled by the S3 client (aws/s3.*): one
// object (an archive or a GGUF) or a prefix of loose files, fetched with store::download() through
// RemoteFiles whose request factory signs each ranged GET. Until then: a clear refusal.
#include <stdexcept>

#include "store/resolve.h"

namespace lmstream::store {

std::string resolve_s3(const std::string& url, const ResolveOptions&) {
  throw std::runtime_error("'" + url +
                           "': s3:// models are not supported yet; copy the files to a local "
                           "directory and pass that with --model");
}

}  // namespace lmstream::store

// The archive source of the resolver (store/resolve.h): a local model.tar.gz / .tgz / .tar.
// Filled by the safe extraction code (store/archive.*). Until then: a clear refusal.
#include <stdexcept>

#include "store/resolve.h"

namespace lmstream::store {

std::string resolve_archive(const std::string& path, const ResolveOptions&) {
  throw std::runtime_error("'" + path +
                           "': model archives (.tar.gz, .tar) are not supported yet; extract it "
                           "and pass the directory with --model");
}

}  // namespace lmstream::store

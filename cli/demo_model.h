// The embedded default model (see demo_model.cc).
#pragma once

#include <string>
#include <string_view>

namespace lmstream::cli {

// The embedded GGUF file's bytes.
std::string_view demo_model_bytes();
// A file holding the embedded model (written once under $XDG_CACHE_HOME/lmstream or
// ~/.cache/lmstream, named by its hash); throws std::runtime_error when it cannot be written.
std::string demo_model_path();
// The line saying that the embedded demo model at `path` is used.
std::string demo_model_note(const std::string& path);
// demo_model_path(), saying on stderr that the embedded demo model is used.
std::string use_demo_model();

}  // namespace lmstream::cli

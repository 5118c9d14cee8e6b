// Whole-file reads and atomic writes, with errors that name the path and the OS's reason.
#pragma once

#include <string>
#include <string_view>

namespace lmstream::base {

// The file's bytes; throws std::runtime_error("cannot read PATH: REASON").
std::string read_file(const std::string& path);

// Writes data to PATH.tmp.<pid>, flushes it to disk and renames it over path, so readers see the
// old file or the whole new one, never a part. Throws std::runtime_error naming the path.
void write_file_atomic(const std::string& path, std::string_view data);

}  // namespace lmstream::base

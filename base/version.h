// lmstream's version: the one string `lmstream --version`, `/info` and the clients' User-Agent
// report.
#pragma once

namespace lmstream::base {

inline constexpr const char* kVersion = "0.1.0";

}  // namespace lmstream::base

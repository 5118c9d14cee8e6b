// The precompiled header of the layers that parse JSON, log and speak HTTP (see LMSTREAM_PCH in
// the top-level CMakeLists.txt): the standard library and third-party headers most of their
// translation units include, parsed once per target instead of once per file. Only what those
// files include anyway belongs here; it never replaces a file's own includes.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange unincluded (1.74)
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

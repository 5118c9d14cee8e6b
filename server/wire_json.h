// JSON building blocks shared by the wire encoders: an ordered JSON type whose floats are f32 (so
// logprobs print the way serde_json prints an f32: -0.53, not -0.5299999713897705), a dump that
// never throws on bad UTF-8, and Python's json.dumps string escaping (ensure_ascii=False) used by
// the LMI formats.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace lmstream::server {

using WireJson = nlohmann::basic_json<nlohmann::ordered_map, std::vector, std::string, bool,
                                      std::int64_t, std::uint64_t, float>;

inline std::string dump(const WireJson& j) {
  return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}
inline std::string dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}

// json.dumps(s, ensure_ascii=False)[1:-1]: \" \\ \n \r \t \b \f, other C0 controls as \u00xx,
// everything else (non-ASCII UTF-8 included) raw.
std::string py_json_escape(std::string_view s);

}  // namespace lmstream::server

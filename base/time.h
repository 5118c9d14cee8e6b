// UTC timestamps in the formats the wire protocols use: ISO 8601 basic (SigV4's X-Amz-Date,
// "20150830T123600Z"), ISO 8601 extended with milliseconds (JSON timestamps,
// "2015-08-30T12:36:00.000Z"), and HTTP dates (RFC 7231 IMF-fixdate, "Sun, 30 Aug 2015
// 12:36:00 GMT"). Civil-calendar arithmetic is std::chrono's; nothing here reads the local zone.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace lmstream::base {

using SystemTime = std::chrono::system_clock::time_point;

std::string format_iso8601_basic(SystemTime t);   // 20150830T123600Z
std::string format_yyyymmdd(SystemTime t);        // 20150830
std::string format_iso8601_millis(SystemTime t);  // 2015-08-30T12:36:00.000Z
std::string format_http_date(SystemTime t);       // Sun, 30 Aug 2015 12:36:00 GMT

std::optional<SystemTime> parse_iso8601_basic(std::string_view s);
// IMF-fixdate, also with a one-digit day and the zones GMT, UTC, +0000, -0000, Z.
std::optional<SystemTime> parse_http_date(std::string_view s);

// The instant of a UTC civil time; nullopt when a field is out of range (Feb 30, 24:00, ...).
std::optional<SystemTime> civil_time(int year, int month, int day, int hour, int minute,
                                     int second);

}  // namespace lmstream::base

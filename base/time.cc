// UTC timestamp formats (see time.h).
#include "base/time.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <vector>

#include "base/strings.h"

namespace lmstream::base {
namespace {

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> kWeekdays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};

struct Civil {
  int year;
  unsigned month, day, weekday;
  int hour, minute, second, millis;
};

Civil civil_of(SystemTime t) {
  const auto ms = std::chrono::floor<std::chrono::milliseconds>(t);
  const auto secs = std::chrono::floor<std::chrono::seconds>(ms);
  const auto days = std::chrono::floor<std::chrono::days>(secs);
  const std::chrono::year_month_day ymd(days);
  const std::chrono::hh_mm_ss hms(secs - days);
  return Civil{static_cast<int>(ymd.year()),
               static_cast<unsigned>(ymd.month()),
               static_cast<unsigned>(ymd.day()),
               std::chrono::weekday(days).c_encoding(),
               static_cast<int>(hms.hours().count()),
               static_cast<int>(hms.minutes().count()),
               static_cast<int>(hms.seconds().count()),
               static_cast<int>((ms - secs).count())};
}

// Digits s[at..at+n) as a number, or -1.
int digits(std::string_view s, size_t at, size_t n) {
  if (at + n > s.size()) return -1;
  int v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

std::string format_iso8601_basic(SystemTime t) {
  const Civil c = civil_of(t);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", c.year, c.month, c.day, c.hour,
                c.minute, c.second);
  return buf;
}

std::string format_yyyymmdd(SystemTime t) {
  const Civil c = civil_of(t);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d%02u%02u", c.year, c.month, c.day);
  return buf;
}

std::string format_iso8601_millis(SystemTime t) {
  const Civil c = civil_of(t);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", c.year, c.month, c.day,
                c.hour, c.minute, c.second, c.millis);
  return buf;
}

std::string format_http_date(SystemTime t) {
  const Civil c = civil_of(t);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                std::string(kWeekdays[c.weekday]).c_str(), c.day,
                std::string(kMonths[c.month - 1]).c_str(), c.year, c.hour, c.minute, c.second);
  return buf;
}

std::optional<SystemTime> civil_time(int y, int mo, int d, int h, int mi, int s) {
  if (y < 0 || mo < 1 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59) {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year(y),
                                        std::chrono::month(static_cast<unsigned>(mo)),
                                        std::chrono::day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return std::nullopt;
  return SystemTime(std::chrono::sys_days(ymd)) + std::chrono::hours(h) + std::chrono::minutes(mi) +
         std::chrono::seconds(s);
}

std::optional<SystemTime> parse_iso8601_basic(std::string_view s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  return civil_time(digits(s, 0, 4), digits(s, 4, 2), digits(s, 6, 2), digits(s, 9, 2),
                    digits(s, 11, 2), digits(s, 13, 2));
}

std::optional<SystemTime> parse_http_date(std::string_view s) {
  s = trim(s);
  if (const size_t comma = s.find(','); comma != std::string_view::npos) {
    s = trim(s.substr(comma + 1));
  }
  // "24 Nov 2026 21:27:48 GMT" (day may be one digit).
  const std::vector<std::string_view> f = split(s, ' ');
  if (f.size() != 5) return std::nullopt;
  const std::string_view zone = f[4];
  if (zone != "GMT" && zone != "UTC" && zone != "+0000" && zone != "-0000" && zone != "Z") {
    return std::nullopt;
  }
  if (f[0].empty() || f[0].size() > 2 || f[2].size() != 4 || f[3].size() != 8 || f[3][2] != ':' ||
      f[3][5] != ':') {
    return std::nullopt;
  }
  const auto month = std::find(kMonths.begin(), kMonths.end(), f[1]);
  if (month == kMonths.end()) return std::nullopt;
  return civil_time(digits(f[2], 0, 4), static_cast<int>(month - kMonths.begin()) + 1,
                    digits(f[0], 0, f[0].size()), digits(f[3], 0, 2), digits(f[3], 3, 2),
                    digits(f[3], 6, 2));
}

}  // namespace lmstream::base

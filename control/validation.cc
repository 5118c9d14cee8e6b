// Request checks and the service's wording (see validation.h).
#include "control/validation.h"

#include <chrono>
#include <cmath>
#include <regex>

#include "base/strings.h"

namespace lmstream::control {
namespace {

bool alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

bool valid_model_name(std::string_view s) {
  if (s.empty() || !alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s)
    if (!alnum(c) && c != '-') return false;
  return true;
}

bool valid_entity_name(std::string_view s) {
  // Same alphabet and end rules; {0,62} repetitions of (-*alnum) bound the alphanumerics to 63.
  if (!valid_model_name(s)) return false;
  size_t alnums = 0;
  for (char c : s) alnums += alnum(c);
  return alnums <= 63;
}

bool valid_name_contains(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!alnum(c) && c != '-') return false;
  return true;
}

bool valid_role_arn(std::string_view s) {
  static const std::regex re(R"(arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+)");
  return std::regex_match(s.begin(), s.end(), re);
}

bool valid_env_key(std::string_view s) {
  if (s.empty() || !(alnum(s[0]) || s[0] == '_') || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s)
    if (!alnum(c) && c != '_') return false;
  return true;
}

std::string quote_value(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_string()) return "'" + v.get<std::string>() + "'";
  return "'" + v.dump() + "'";
}

void Violations::add(const json* value, const std::string& path, const std::string& constraint) {
  items_.push_back("Value " + (value ? quote_value(*value) : std::string("null")) + " at '" + path +
                   "' failed to satisfy constraint: " + constraint);
}

void Violations::require(const json& obj, const char* member, const std::string& path) {
  if (!obj.is_object() || !obj.contains(member) || obj[member].is_null())
    add(nullptr, path, "Member must not be null");
}

void Violations::name(const json& obj, const char* member, const std::string& path, size_t max,
                      bool (*ok)(std::string_view), const char* pattern) {
  if (!obj.is_object() || !obj.contains(member)) return;
  const json& v = obj[member];
  if (!v.is_string()) {
    add(&v, path, "Member must be a string");
    return;
  }
  const std::string& s = v.get_ref<const std::string&>();
  if (s.size() > max)
    add(&v, path, "Member must have length less than or equal to " + std::to_string(max));
  if (!ok(s))
    add(&v, path, std::string("Member must satisfy regular expression pattern: ") + pattern);
}

void Violations::max_length(const json& obj, const char* member, const std::string& path,
                            size_t max) {
  if (!obj.is_object() || !obj.contains(member)) return;
  const json& v = obj[member];
  if (!v.is_string()) {
    add(&v, path, "Member must be a string");
    return;
  }
  if (v.get_ref<const std::string&>().size() > max)
    add(&v, path, "Member must have length less than or equal to " + std::to_string(max));
}

void Violations::int_range(const json& obj, const char* member, const std::string& path,
                           long long lo, long long hi) {
  if (!obj.is_object() || !obj.contains(member)) return;
  const json& v = obj[member];
  if (!v.is_number_integer()) {
    add(&v, path, "Member must be an integer");
    return;
  }
  long long x = v.get<long long>();
  if (x < lo)
    add(&v, path, "Member must have value greater than or equal to " + std::to_string(lo));
  else if (x > hi)
    add(&v, path, "Member must have value less than or equal to " + std::to_string(hi));
}

void Violations::enum_value(const json& obj, const char* member, const std::string& path,
                            const std::vector<std::string_view>& values) {
  if (!obj.is_object() || !obj.contains(member)) return;
  const json& v = obj[member];
  if (v.is_string())
    for (auto e : values)
      if (e == v.get_ref<const std::string&>()) return;
  std::string set;
  for (auto e : values) set += (set.empty() ? "" : ", ") + std::string(e);
  add(&v, path, "Member must satisfy enum value set: [" + set + "]");
}

void Violations::throw_if_any() const {
  if (items_.empty()) return;
  std::string msg =
      std::to_string(items_.size()) +
      (items_.size() == 1 ? " validation error detected: " : " validation errors detected: ");
  for (size_t i = 0; i < items_.size(); ++i) msg += (i ? "; " : "") + items_[i];
  throw validation_error(msg);
}

std::string partition_of(std::string_view region) {
  if (region.rfind("cn-", 0) == 0) return "aws-cn";
  if (region.rfind("us-gov-", 0) == 0) return "aws-us-gov";
  return "aws";
}

std::string make_arn(const Account& a, std::string_view kind, std::string_view name) {
  return "arn:" + partition_of(a.region) + ":sagemaker:" + a.region + ":" + a.account + ":" +
         std::string(kind) + "/" + base::to_lower(std::string(name));
}

double now_epoch() {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  return double(ms) / 1000.0;
}

}  // namespace lmstream::control

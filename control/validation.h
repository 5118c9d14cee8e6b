// The SageMaker control plane's request checks and the wording the real service uses for them
// (reference/control-plane.md §2.1, §3): Coral-style "N validation error(s) detected" messages,
// the name patterns, ARNs with lower-cased names, and the typed error every operation throws.
// Pure: no I/O, no state.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace lmstream::control {

using json = nlohmann::json;

// An answer other than success: the AWS error code (`__type`) and its message. Always HTTP 400
// (none of SageMaker's modelled errors has another status; 5xx would make boto3 retry).
class ApiError : public std::runtime_error {
 public:
  ApiError(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

inline ApiError validation_error(const std::string& message) {
  return ApiError("ValidationException", message);
}

// ModelName: [a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?, whole string.
bool valid_model_name(std::string_view s);
// EndpointName, EndpointConfigName, VariantName: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}, whole string.
bool valid_entity_name(std::string_view s);
// NameContains: [a-zA-Z0-9-]+.
bool valid_name_contains(std::string_view s);
// ExecutionRoleArn: arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+
bool valid_role_arn(std::string_view s);
// Environment keys: [a-zA-Z_][a-zA-Z0-9_]*
bool valid_env_key(std::string_view s);

inline constexpr const char* kModelNamePattern = "^[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?";
inline constexpr const char* kEntityNamePattern = "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}";

// Collects constraint failures of one request and throws them as one ValidationException in the
// service's words: "1 validation error detected: Value 'x' at 'modelName' failed to satisfy
// constraint: Member must ...", several joined by "; ".
class Violations {
 public:
  // value: the offending JSON value (a string is quoted 'like this', null is `null`).
  void add(const json* value, const std::string& path, const std::string& constraint);
  void require(const json& obj, const char* member, const std::string& path);
  // Checks a string member when present: type, max length and pattern (pattern_ok/pattern).
  void name(const json& obj, const char* member, const std::string& path, size_t max,
            bool (*ok)(std::string_view), const char* pattern);
  void max_length(const json& obj, const char* member, const std::string& path, size_t max);
  void int_range(const json& obj, const char* member, const std::string& path, long long lo,
                 long long hi);
  void enum_value(const json& obj, const char* member, const std::string& path,
                  const std::vector<std::string_view>& values);
  bool empty() const { return items_.empty(); }
  void throw_if_any() const;

 private:
  std::vector<std::string> items_;
};

// The JSON value as the service quotes it in a validation message.
std::string quote_value(const json& v);

// Where ARNs live: partition from the region (aws, aws-cn, aws-us-gov), a 12-digit account.
struct Account {
  std::string region = "us-east-1";
  std::string account = "123456789012";
};
std::string partition_of(std::string_view region);
// arn:<partition>:sagemaker:<region>:<account>:<kind>/<lower-cased name>
std::string make_arn(const Account& a, std::string_view kind, std::string_view name);

// Milliseconds-precision epoch seconds of now (what botocore parses as a timestamp).
double now_epoch();

}  // namespace lmstream::control

// Where `lmstream invoke` gets its AWS settings, the way the AWS CLI and boto3 do: access keys
// from the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN), else from a
// profile (--profile, else AWS_PROFILE, else "default") of the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials) or the config file (AWS_CONFIG_FILE,
// ~/.aws/config, "[profile NAME]" sections); the region from --region, AWS_REGION,
// AWS_DEFAULT_REGION, then the profile's `region`. INI parsing is base/ini.h's. No network.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "aws/credentials.h"

namespace lmstream::client {

struct AwsSettings {
  std::optional<sigv4::Credentials> credentials;  // nullopt: none found (requests go unsigned)
  std::string region;                             // "" = none found
  std::string credentials_source;                 // "environment", "profile NAME (PATH)", ""
};

using GetEnv = std::function<std::optional<std::string>(const std::string&)>;
// The process environment.
GetEnv process_getenv();

// Throws std::runtime_error with a clear message when a profile named by --profile or
// AWS_PROFILE is in neither file, a file cannot be parsed, or a profile holds half a key pair.
AwsSettings resolve_aws_settings(const std::string& profile_flag, const std::string& region_flag,
                                 const GetEnv& env);

// https://runtime.sagemaker.{region}.amazonaws.com (.amazonaws.com.cn for cn-* regions).
std::string sagemaker_runtime_url(const std::string& region);

}  // namespace lmstream::client

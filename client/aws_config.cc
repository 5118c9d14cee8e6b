// AWS settings for `lmstream invoke` (see aws_config.h).
#include "client/aws_config.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "base/files.h"
#include "base/ini.h"

namespace lmstream::client {
namespace {

struct IniFile {
  std::string path;
  std::vector<base::IniSection> sections;
};

// The file's sections; an absent file has none.
IniFile load(const std::string& path) {
  IniFile f{path, {}};
  if (path.empty() || !std::filesystem::exists(path)) return f;
  f.sections = base::parse_ini(base::read_file(path), path);
  return f;
}

const base::IniSection* section(const IniFile& f, const std::string& name) {
  for (auto& s : f.sections)
    if (s.name == name) return &s;
  return nullptr;
}

std::optional<sigv4::Credentials> keys_of(const base::IniSection& s, const std::string& where) {
  sigv4::Credentials c;
  if (auto* v = s.find("aws_access_key_id")) c.access_key_id = *v;
  if (auto* v = s.find("aws_secret_access_key")) c.secret_access_key = *v;
  if (auto* v = s.find("aws_session_token")) c.session_token = *v;
  if (c.access_key_id.empty() && c.secret_access_key.empty()) return std::nullopt;
  if (c.access_key_id.empty() || c.secret_access_key.empty())
    throw std::runtime_error(where + ": profile [" + s.name +
                             "] needs both aws_access_key_id and aws_secret_access_key");
  return c;
}

}  // namespace

GetEnv process_getenv() {
  return [](const std::string& n) -> std::optional<std::string> {
    const char* v = std::getenv(n.c_str());
    if (!v || !*v) return std::nullopt;
    return std::string(v);
  };
}

AwsSettings resolve_aws_settings(const std::string& profile_flag, const std::string& region_flag,
                                 const GetEnv& env) {
  AwsSettings out;
  std::string home = env("HOME").value_or("");
  std::string cred_path =
      env("AWS_SHARED_CREDENTIALS_FILE").value_or(home.empty() ? "" : home + "/.aws/credentials");
  std::string config_path =
      env("AWS_CONFIG_FILE").value_or(home.empty() ? "" : home + "/.aws/config");
  std::optional<std::string> named =
      !profile_flag.empty() ? std::optional<std::string>(profile_flag) : env("AWS_PROFILE");
  std::string profile = named.value_or("default");
  IniFile creds = load(cred_path), config = load(config_path);
  const base::IniSection* cs = section(creds, profile);
  const base::IniSection* ps =
      section(config, profile == "default" ? "default" : "profile " + profile);
  if (!ps && profile == "default") ps = section(config, "profile default");
  if (named && !cs && !ps)
    throw std::runtime_error(
        "AWS profile '" + profile + "' (" + (!profile_flag.empty() ? "--profile" : "AWS_PROFILE") +
        ") is in neither " + (cred_path.empty() ? "~/.aws/credentials" : cred_path) + " nor " +
        (config_path.empty() ? "~/.aws/config" : config_path));
  // Keys: the environment first (as boto3 does, even with AWS_PROFILE set), unless --profile
  // names a profile explicitly.
  auto id = env("AWS_ACCESS_KEY_ID"), secret = env("AWS_SECRET_ACCESS_KEY");
  if (profile_flag.empty() && id && secret) {
    out.credentials = sigv4::Credentials{*id, *secret, env("AWS_SESSION_TOKEN").value_or("")};
    out.credentials_source = "environment";
  } else if (cs && (out.credentials = keys_of(*cs, cred_path))) {
    out.credentials_source = "profile " + profile + " (" + cred_path + ")";
  } else if (ps && (out.credentials = keys_of(*ps, config_path))) {
    out.credentials_source = "profile " + profile + " (" + config_path + ")";
  }
  if (!region_flag.empty())
    out.region = region_flag;
  else if (auto r = env("AWS_REGION"))
    out.region = *r;
  else if (auto r2 = env("AWS_DEFAULT_REGION"))
    out.region = *r2;
  else if (ps && ps->find("region"))
    out.region = *ps->find("region");
  return out;
}

std::string sagemaker_runtime_url(const std::string& region) {
  if (region.empty() ||
      region.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos)
    throw std::runtime_error("'" + region +
                             "' is not an AWS region name (lower-case letters, digits, '-')");
  bool cn = region.rfind("cn-", 0) == 0;
  return "https://runtime.sagemaker." + region + ".amazonaws.com" + (cn ? ".cn" : "");
}

}  // namespace lmstream::client

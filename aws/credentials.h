// AWS credentials: access keys, where they come from (the environment, the shared credentials
// and config files with their profiles, as the AWS SDKs read them), and the set a server accepts.
// Parsing of the INI text is base/ini.h's; this file knows only which keys a profile holds. No
// signing here (sigv4.h), no network.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lmstream::sigv4 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
};

// Several access keys accepted at once.
class CredentialStore {
 public:
  // Adds or replaces the key with this access key id.
  void add(Credentials credentials);
  const Credentials* find(std::string_view access_key_id) const;
  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }

 private:
  std::vector<Credentials> keys_;
};

// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, when both key variables are set.
std::optional<Credentials> credentials_from_env();
// Every profile of an AWS-style credentials file (INI: [profile] sections with aws_access_key_id,
// aws_secret_access_key, optional aws_session_token; '#'/';' comments). Throws std::runtime_error
// naming the file and line when a profile is incomplete or a line cannot be parsed.
std::vector<Credentials> parse_credentials_file(std::string_view text, std::string_view origin);
std::vector<Credentials> load_credentials_file(const std::string& path);

// ---- the client side: one profile of the shared files, as botocore resolves it ----

// Reads an environment variable; injectable so tests need not touch the process environment.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
// getenv(), with unset and empty both meaning nullopt.
EnvLookup process_environment();

// What the shared files say for one profile. Keys: the credentials file's [name] section first,
// then the config file's [profile name] ([default] or [profile default] for "default"); each key
// is taken from the first file that has it. region and endpoint_url come from the config file.
struct Profile {
  std::string name;
  bool found = false;  // a section for it exists in either file
  std::optional<Credentials> credentials;
  std::string credentials_origin;  // "/root/.aws/credentials [default]"
  std::string region;
  std::string endpoint_url;
};

// From the two files' texts (either may be empty). Throws std::runtime_error naming the file and
// line when a profile has an access key id without a secret (or the reverse), or the INI is bad.
Profile parse_profile(std::string_view name, std::string_view credentials_text,
                      const std::string& credentials_origin, std::string_view config_text,
                      const std::string& config_origin);

// The profile named by AWS_PROFILE, else AWS_DEFAULT_PROFILE, else "default", from
// AWS_SHARED_CREDENTIALS_FILE (default $HOME/.aws/credentials) and AWS_CONFIG_FILE (default
// $HOME/.aws/config); absent files count as empty. A profile named explicitly that neither file
// has throws std::runtime_error (botocore's ProfileNotFound); a missing "default" does not.
Profile load_profile(const EnvLookup& env);

// The keys a client signs with: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (+AWS_SESSION_TOKEN) when
// set (they beat the profile, even a named one), else the profile's; *source says which
// ("environment" or the profile's origin). nullopt when neither has keys.
std::optional<Credentials> resolve_credentials(const EnvLookup& env, const Profile& profile,
                                               std::string* source);

}  // namespace lmstream::sigv4

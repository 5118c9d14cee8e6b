// AWS credentials: access keys, where they come from (the environment, the shared credentials
// file), and the set a server accepts. Parsing of the INI text is base/ini.h's; this file knows
// only which keys a profile holds. No signing here (sigv4.h), no network.
#pragma once

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

}  // namespace lmstream::sigv4

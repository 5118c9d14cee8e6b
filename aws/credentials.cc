// AWS credentials from the environment and the shared credentials file (see credentials.h).
#include "aws/credentials.h"

#include <cstdlib>
#include <stdexcept>

#include "base/files.h"
#include "base/ini.h"

namespace lmstream::sigv4 {

void CredentialStore::add(Credentials credentials) {
  for (Credentials& c : keys_) {
    if (c.access_key_id == credentials.access_key_id) {
      c = std::move(credentials);
      return;
    }
  }
  keys_.push_back(std::move(credentials));
}

const Credentials* CredentialStore::find(std::string_view access_key_id) const {
  for (const Credentials& c : keys_) {
    if (c.access_key_id == access_key_id) return &c;
  }
  return nullptr;
}

std::optional<Credentials> credentials_from_env() {
  const char* id = std::getenv("AWS_ACCESS_KEY_ID");
  const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  if (!id || !secret || !*id || !*secret) return std::nullopt;
  const char* token = std::getenv("AWS_SESSION_TOKEN");
  return Credentials{id, secret, token ? token : ""};
}

std::vector<Credentials> parse_credentials_file(std::string_view text, std::string_view origin) {
  std::vector<Credentials> result;
  for (const base::IniSection& section : base::parse_ini(text, origin)) {
    Credentials c;
    if (const std::string* v = section.find("aws_access_key_id")) c.access_key_id = *v;
    if (const std::string* v = section.find("aws_secret_access_key")) c.secret_access_key = *v;
    if (const std::string* v = section.find("aws_session_token")) c.session_token = *v;
    const bool has_id = !c.access_key_id.empty();
    const bool has_secret = !c.secret_access_key.empty();
    if (has_id != has_secret) {
      throw std::runtime_error(std::string(origin) + ":" + std::to_string(section.line) +
                               ": profile [" + section.name +
                               "] needs both aws_access_key_id and " + "aws_secret_access_key");
    }
    if (has_id) result.push_back(std::move(c));
  }
  return result;
}

std::vector<Credentials> load_credentials_file(const std::string& path) {
  std::string text;
  try {
    text = base::read_file(path);
  } catch (const std::exception&) {
    throw std::runtime_error("cannot read credentials file " + path);
  }
  std::vector<Credentials> creds = parse_credentials_file(text, path);
  if (creds.empty()) throw std::runtime_error("credentials file " + path + " holds no keys");
  return creds;
}

}  // namespace lmstream::sigv4

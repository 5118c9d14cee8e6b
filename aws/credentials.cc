// AWS credentials from the environment and the shared credentials/config files (see
// credentials.h).
#include "aws/credentials.h"

#include <cstdlib>
#include <stdexcept>

#include "base/files.h"
#include "base/ini.h"
#include "base/strings.h"

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

namespace {

std::optional<Credentials> credentials_from(const EnvLookup& env) {
  const std::optional<std::string> id = env("AWS_ACCESS_KEY_ID");
  const std::optional<std::string> secret = env("AWS_SECRET_ACCESS_KEY");
  if (!id || !secret) return std::nullopt;
  return Credentials{*id, *secret, env("AWS_SESSION_TOKEN").value_or("")};
}

// The section of `sections` that holds profile `name` in a credentials file ([name]) or a config
// file ([profile name], or [default] for the default profile).
const base::IniSection* find_section(const std::vector<base::IniSection>& sections,
                                     std::string_view name, bool config_file) {
  for (const base::IniSection& s : sections) {
    if (!config_file) {
      if (s.name == name) return &s;
      continue;
    }
    std::string_view n = s.name;
    if (n.substr(0, 8) == "profile " || n.substr(0, 8) == "profile\t") {
      if (base::trim(n.substr(8)) == name) return &s;
    } else if (n == name && name == "default") {
      return &s;
    }
  }
  return nullptr;
}

std::string read_if_present(const std::string& path) {
  if (path.empty()) return "";
  try {
    return base::read_file(path);
  } catch (const std::exception&) {
    return "";  // an absent (or unreadable) shared file is an empty one, as in botocore
  }
}

}  // namespace

EnvLookup process_environment() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (!v || !*v) return std::nullopt;
    return std::string(v);
  };
}

std::optional<Credentials> credentials_from_env() {
  return credentials_from(process_environment());
}

Profile parse_profile(std::string_view name, std::string_view credentials_text,
                      const std::string& credentials_origin, std::string_view config_text,
                      const std::string& config_origin) {
  Profile p;
  p.name = std::string(name);
  const std::vector<base::IniSection> cred = base::parse_ini(credentials_text, credentials_origin);
  const std::vector<base::IniSection> conf = base::parse_ini(config_text, config_origin);
  const base::IniSection* in_cred = find_section(cred, name, false);
  const base::IniSection* in_conf = find_section(conf, name, true);
  p.found = in_cred || in_conf;
  Credentials c;
  std::string origin;
  auto take = [&](const char* key, std::string& out) {
    for (auto [section, file] :
         {std::pair{in_cred, &credentials_origin}, std::pair{in_conf, &config_origin}}) {
      if (!section) continue;
      if (const std::string* v = section->find(key); v && !v->empty()) {
        out = *v;
        if (origin.empty()) origin = *file + " [" + section->name + "]";
        return;
      }
    }
  };
  take("aws_access_key_id", c.access_key_id);
  take("aws_secret_access_key", c.secret_access_key);
  take("aws_session_token", c.session_token);
  if (c.access_key_id.empty() != c.secret_access_key.empty()) {
    const base::IniSection* s = in_cred ? in_cred : in_conf;
    const std::string& file = in_cred ? credentials_origin : config_origin;
    throw std::runtime_error(file + ":" + std::to_string(s->line) + ": profile [" + s->name +
                             "] needs both aws_access_key_id and aws_secret_access_key");
  }
  if (!c.access_key_id.empty()) {
    p.credentials = std::move(c);
    p.credentials_origin = origin;
  }
  if (in_conf) {
    if (const std::string* v = in_conf->find("region")) p.region = *v;
    if (const std::string* v = in_conf->find("endpoint_url")) p.endpoint_url = *v;
  }
  return p;
}

Profile load_profile(const EnvLookup& env) {
  const std::optional<std::string> named =
      env("AWS_PROFILE") ? env("AWS_PROFILE") : env("AWS_DEFAULT_PROFILE");
  const std::string name = named.value_or("default");
  const std::string home = env("HOME").value_or("");
  const std::string cred_path =
      env("AWS_SHARED_CREDENTIALS_FILE").value_or(home.empty() ? "" : home + "/.aws/credentials");
  const std::string conf_path =
      env("AWS_CONFIG_FILE").value_or(home.empty() ? "" : home + "/.aws/config");
  Profile p = parse_profile(name, read_if_present(cred_path), cred_path, read_if_present(conf_path),
                            conf_path);
  if (named && !p.found) {
    throw std::runtime_error("AWS profile '" + name + "' (from AWS_PROFILE) is in neither " +
                             cred_path + " ([" + name + "]) nor " + conf_path + " ([profile " +
                             name + "]); add it there or unset AWS_PROFILE");
  }
  return p;
}

std::optional<Credentials> resolve_credentials(const EnvLookup& env, const Profile& profile,
                                               std::string* source) {
  if (std::optional<Credentials> c = credentials_from(env)) {
    if (source) *source = "environment (AWS_ACCESS_KEY_ID)";
    return c;
  }
  if (profile.credentials) {
    if (source) *source = profile.credentials_origin;
    return profile.credentials;
  }
  return std::nullopt;
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

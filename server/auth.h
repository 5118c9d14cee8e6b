// Request authentication for `lmstream serve`: SigV4 (service "sagemaker") on the SageMaker
// runtime routes /endpoints/*, and an optional bearer API key on every other route except the
// health probes (/ping, /health). Answers rejections in the shape each client family parses:
// rest-json 403 for AWS clients, TGI-style JSON 401 for the rest.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "aws/sigv4.h"
#include "server/config.h"
#include "server/http.h"

namespace lmstream::server {

class Auth {
 public:
  // Loads the keys the config names (flags/env pair, credentials file). Throws
  // std::invalid_argument when the credentials file cannot be read or parsed.
  explicit Auth(const ServeConfig& cfg);
  Auth(sigv4::CredentialStore keys, std::string region, std::string api_key);

  bool sigv4_enabled() const { return !keys_.empty(); }
  bool api_key_enabled() const { return !api_key_.empty(); }
  bool any() const { return sigv4_enabled() || api_key_enabled(); }
  size_t key_count() const { return keys_.size(); }

  // nullopt when the request may proceed, else the response to send. `now` is wall-clock time
  // (for the SigV4 skew window).
  std::optional<HttpResponse> check(const HttpRequest& req, sigv4::Clock::time_point now) const;

 private:
  std::optional<HttpResponse> check_sigv4(const HttpRequest& req,
                                          sigv4::Clock::time_point now) const;
  std::optional<HttpResponse> check_bearer(const HttpRequest& req, bool aws_shape) const;

  sigv4::CredentialStore keys_;
  sigv4::VerifierConfig verifier_;
  std::string api_key_;
};

// True for paths served by the SageMaker runtime API (/endpoints/...).
bool is_sagemaker_path(std::string_view path);
// True for the health probes that never need credentials.
bool is_probe_path(std::string_view path);
// True when `host` is a loopback address (127.0.0.0/8, ::1) or "localhost".
bool is_loopback_host(std::string_view host);

}  // namespace lmstream::server

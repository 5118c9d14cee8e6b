// Request authentication (see auth.h).
#include "server/auth.h"

#include <openssl/crypto.h>

#include <boost/asio/ip/address.hpp>
#include <stdexcept>

#include "server/errors.h"
#include "server/sagemaker.h"

namespace lmstream::server {
namespace {

sigv4::CredentialStore load_keys(const ServeConfig& cfg) {
  sigv4::CredentialStore store;
  if (!cfg.aws_access_key_id.empty())
    store.add({cfg.aws_access_key_id, cfg.aws_secret_access_key, ""});
  if (!cfg.aws_credentials_file.empty()) {
    try {
      for (auto& c : sigv4::load_credentials_file(cfg.aws_credentials_file))
        store.add(std::move(c));
    } catch (const std::exception& e) {
      throw std::invalid_argument(std::string("--aws-credentials-file: ") + e.what());
    }
  }
  return store;
}

// Constant-time comparison of two secrets of any length: compares their SHA-256 digests.
bool same_secret(std::string_view a, std::string_view b) {
  std::string da = sigv4::sha256_hex(a), db = sigv4::sha256_hex(b);
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

}  // namespace

Auth::Auth(const ServeConfig& cfg) : Auth(load_keys(cfg), cfg.region, cfg.api_key) {}

Auth::Auth(sigv4::CredentialStore keys, std::string region, std::string api_key)
    : keys_(std::move(keys)), api_key_(std::move(api_key)) {
  verifier_.region = std::move(region);
}

std::optional<HttpResponse> Auth::check(const HttpRequest& req,
                                        sigv4::Clock::time_point now) const {
  if (is_probe_path(req.path)) return std::nullopt;
  if (is_sagemaker_path(req.path)) {
    if (sigv4_enabled()) return check_sigv4(req, now);
    // No AWS keys: the API key (if any) guards these routes too, answered the AWS way.
    if (api_key_enabled()) return check_bearer(req, true);
    return std::nullopt;
  }
  if (api_key_enabled()) return check_bearer(req, false);
  return std::nullopt;
}

std::optional<HttpResponse> Auth::check_sigv4(const HttpRequest& req,
                                              sigv4::Clock::time_point now) const {
  sigv4::Request r;
  r.method = req.method;
  size_t q = req.target.find('?');
  r.path = req.target.substr(0, q);
  if (q != std::string::npos) r.query = req.target.substr(q + 1);
  r.headers = req.headers;
  r.body = req.body;
  sigv4::VerifyResult v = sigv4::verify(r, keys_, verifier_, now);
  ErrorKind kind = ErrorKind::kInvalidSignature;
  switch (v.outcome) {
    case sigv4::Outcome::kOk:
      return std::nullopt;
    case sigv4::Outcome::kInvalidSignature:
      kind = ErrorKind::kInvalidSignature;
      break;
    case sigv4::Outcome::kUnrecognizedClient:
      kind = ErrorKind::kUnrecognizedClient;
      break;
    case sigv4::Outcome::kIncompleteSignature:
      kind = ErrorKind::kIncompleteSignature;
      break;
  }
  return sagemaker::error_response({kind, v.message}, sagemaker::request_id());
}

std::optional<HttpResponse> Auth::check_bearer(const HttpRequest& req, bool aws_shape) const {
  const std::string* h = req.header("authorization");
  std::string_view given;
  bool ok = false;
  if (h && h->size() > 7 &&
      (h->compare(0, 7, "Bearer ") == 0 || h->compare(0, 7, "bearer ") == 0)) {
    given = std::string_view(*h).substr(7);
    while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
    while (!given.empty() && given.back() == ' ') given.remove_suffix(1);
    ok = same_secret(given, api_key_);
  }
  if (ok) return std::nullopt;
  std::string msg =
      h ? "invalid API key" : "missing API key: send the header 'Authorization: Bearer <key>'";
  if (aws_shape) {
    return sagemaker::error_response(
        {ErrorKind::kUnauthorized,
         "This server has no AWS keys configured for /endpoints/*; " + msg},
        sagemaker::request_id());
  }
  return tgi_error_response({ErrorKind::kUnauthorized, msg});
}

bool is_sagemaker_path(std::string_view path) { return path.substr(0, 11) == "/endpoints/"; }

bool is_probe_path(std::string_view path) { return path == "/ping" || path == "/health"; }

bool is_loopback_host(std::string_view host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(std::string(host), ec);
  return !ec && a.is_loopback();
}

}  // namespace lmstream::server

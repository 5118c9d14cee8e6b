// SigV4 (AWS4-HMAC-SHA256) canonicalisation, verification and signing; see sigv4.h.
// The verifier and the signer build the canonical request with the same functions, so a request
// signed here verifies here, and both match botocore's SigV4Auth (auth.py) byte for byte.
#include "aws/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "base/strings.h"
#include "base/time.h"

namespace lmstream::sigv4 {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

using base::iequals;
using base::split;
using base::to_lower;
using base::trim;

// botocore.utils.remove_dot_segments: drops '.', empty segments, resolves '..'.
std::string remove_dot_segments(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> out;
  for (std::string_view seg : split(path, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
    } else {
      out.push_back(seg);
    }
  }
  std::string result = path.front() == '/' ? "/" : "";
  for (size_t i = 0; i < out.size(); ++i) {
    if (i) result.push_back('/');
    result.append(out[i]);
  }
  if (path.back() == '/' && !out.empty()) result.push_back('/');
  return result;
}

// Header names botocore never signs (auth.py SIGNED_HEADERS_BLACKLIST), plus authorization.
bool unsigned_by_botocore(std::string_view lname) {
  static constexpr std::array<std::string_view, 12> kNames = {"connection",
                                                              "expect",
                                                              "keep-alive",
                                                              "proxy-authenticate",
                                                              "proxy-authorization",
                                                              "te",
                                                              "trailer",
                                                              "transfer-encoding",
                                                              "upgrade",
                                                              "user-agent",
                                                              "x-amzn-trace-id",
                                                              "authorization"};
  return std::find(kNames.begin(), kNames.end(), lname) != kNames.end();
}

void remove_header(Request& request, std::string_view name) {
  std::erase_if(request.headers, [&](const auto& h) { return iequals(h.first, name); });
}

std::string scope_of(std::string_view date, std::string_view region, std::string_view service) {
  std::string s;
  s.append(date).append("/").append(region).append("/").append(service).append("/aws4_request");
  return s;
}

VerifyResult reject(Outcome outcome, std::string message, std::string access_key = {}) {
  return VerifyResult{outcome, std::move(message), std::move(access_key)};
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::vector<std::string_view> Request::header_values(std::string_view name) const {
  std::vector<std::string_view> values;
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) values.emplace_back(v);
  }
  return values;
}

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

// ---- building blocks ----

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed (libcrypto)");
  }
  return hex(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len)) {
    throw std::runtime_error("HMAC-SHA256 failed (libcrypto)");
  }
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string uri_encode(std::string_view s, bool keep_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                            c == '~' || (keep_slash && c == '/');
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 15]);
    }
  }
  return out;
}

std::string canonical_uri(std::string_view raw_path) {
  return uri_encode(remove_dot_segments(raw_path), /*keep_slash=*/true);
}

std::string canonical_query(std::string_view raw_query) {
  if (raw_query.empty()) return "";
  std::vector<std::pair<std::string, std::string>> pairs;
  for (std::string_view piece : split(raw_query, '&')) {
    const size_t eq = piece.find('=');
    const std::string_view k = piece.substr(0, eq);
    const std::string_view v = eq == std::string_view::npos ? "" : piece.substr(eq + 1);
    pairs.emplace_back(uri_encode(base::percent_decode(k), false),
                       uri_encode(base::percent_decode(v), false));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [k, v] : pairs) {
    if (!out.empty()) out.push_back('&');
    out.append(k).append("=").append(v);
  }
  return out;
}

std::optional<std::string> canonical_headers(const Request& request,
                                             const std::vector<std::string>& signed_headers,
                                             std::string* missing) {
  std::string block;
  for (const std::string& name : signed_headers) {
    const std::vector<std::string_view> values = request.header_values(name);
    if (values.empty()) {
      if (missing) *missing = name;
      return std::nullopt;
    }
    block.append(name).push_back(':');
    for (size_t i = 0; i < values.size(); ++i) {
      if (i) block.push_back(',');
      block.append(base::collapse_whitespace(values[i]));
    }
    block.push_back('\n');
  }
  return block;
}

std::string payload_hash(const Request& request) {
  if (auto declared = request.header("x-amz-content-sha256")) return std::string(trim(*declared));
  return sha256_hex(request.body);
}

std::string canonical_request(const Request& request, const std::string& canonical_headers_block,
                              std::string_view signed_headers, std::string_view payload_hash,
                              bool normalize_path) {
  std::string cr;
  cr.append(request.method).push_back('\n');
  if (normalize_path) {
    cr.append(canonical_uri(request.path)).push_back('\n');
  } else {
    cr.append(request.path.empty() ? "/" : request.path).push_back('\n');
  }
  cr.append(canonical_query(request.query)).push_back('\n');
  cr.append(canonical_headers_block).push_back('\n');
  cr.append(signed_headers).push_back('\n');
  cr.append(payload_hash);
  return cr;
}

std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request) {
  std::string sts(kAlgorithm);
  sts.append("\n").append(amz_date).append("\n").append(scope).append("\n");
  sts.append(sha256_hex(canonical_request));
  return sts;
}

std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service) {
  const std::string k_date = hmac_sha256("AWS4" + std::string(secret), date);
  const std::string k_region = hmac_sha256(k_date, region);
  const std::string k_service = hmac_sha256(k_region, service);
  return hmac_sha256(k_service, "aws4_request");
}

std::string format_amz_date(Clock::time_point t) { return base::format_iso8601_basic(t); }

std::optional<Clock::time_point> parse_amz_date(std::string_view s) {
  return base::parse_iso8601_basic(s);
}

std::optional<Clock::time_point> parse_http_date(std::string_view s) {
  return base::parse_http_date(s);
}

std::optional<Authorization> parse_authorization(std::string_view value, std::string* error) {
  auto fail = [&](std::string message) -> std::optional<Authorization> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  value = trim(value);
  const size_t space = value.find(' ');
  const std::string_view algorithm = value.substr(0, space);
  if (algorithm != kAlgorithm) {
    return fail("Unsupported AWS 'algorithm': '" + std::string(algorithm.substr(0, 64)) +
                "' (only AWS4-HMAC-SHA256 is accepted)");
  }
  if (space == std::string_view::npos) {
    return fail(
        "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
        "parameters.");
  }
  std::optional<std::string_view> credential, signed_headers, signature;
  for (std::string_view part : split(value.substr(space + 1), ',')) {
    part = trim(part);
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      return fail("Authorization header parameter without '=': '" +
                  std::string(part.substr(0, 64)) + "'");
    }
    const std::string_view key = part.substr(0, eq), val = part.substr(eq + 1);
    std::optional<std::string_view>* slot = key == "Credential"      ? &credential
                                            : key == "SignedHeaders" ? &signed_headers
                                            : key == "Signature"     ? &signature
                                                                     : nullptr;
    if (!slot) continue;  // unknown parameters are ignored
    if (*slot) return fail("Authorization header repeats '" + std::string(key) + "'");
    *slot = val;
  }
  std::string missing;
  if (!credential) missing += "Authorization header requires 'Credential' parameter. ";
  if (!signed_headers) missing += "Authorization header requires 'SignedHeaders' parameter. ";
  if (!signature) missing += "Authorization header requires 'Signature' parameter. ";
  if (!missing.empty()) return fail(missing.substr(0, missing.size() - 1));

  const std::vector<std::string_view> scope = split(*credential, '/');
  if (scope.size() != 5 || scope[0].empty()) {
    return fail("Credential should be <access key>/<date>/<region>/<service>/aws4_request, got '" +
                std::string(credential->substr(0, 200)) + "'");
  }
  Authorization auth;
  auth.access_key_id = scope[0];
  auth.date = scope[1];
  auth.region = scope[2];
  auth.service = scope[3];
  auth.terminator = scope[4];
  auth.signed_headers = *signed_headers;
  if (signed_headers->empty()) return fail("SignedHeaders is empty");
  for (std::string_view h : split(*signed_headers, ';')) {
    if (h.empty()) return fail("SignedHeaders has an empty header name");
    auth.signed_header_list.push_back(to_lower(h));
  }
  if (signature->size() != 64 || !std::all_of(signature->begin(), signature->end(), [](char c) {
        return base::hex_digit_value(c) >= 0;
      })) {
    return fail("Signature must be 64 hexadecimal characters");
  }
  auth.signature = to_lower(*signature);
  return auth;
}

// ---- verification ----

std::string_view VerifyResult::error_type() const {
  switch (outcome) {
    case Outcome::kOk:
      return "";
    case Outcome::kInvalidSignature:
      return "InvalidSignatureException";
    case Outcome::kUnrecognizedClient:
      return "UnrecognizedClientException";
    case Outcome::kIncompleteSignature:
      return "IncompleteSignatureException";
  }
  return "";
}

VerifyResult verify(const Request& request, const CredentialStore& store,
                    const VerifierConfig& config, Clock::time_point now) {
  const std::vector<std::string_view> authz = request.header_values("authorization");
  if (authz.empty()) {
    return reject(Outcome::kIncompleteSignature,
                  "Missing Authentication Token: this endpoint requires requests signed with "
                  "AWS Signature Version 4 for service '" +
                      config.service + "'.");
  }
  if (authz.size() > 1) {
    return reject(Outcome::kIncompleteSignature, "More than one Authorization header.");
  }
  std::string error;
  const std::optional<Authorization> auth = parse_authorization(authz[0], &error);
  if (!auth) return reject(Outcome::kIncompleteSignature, error);
  const auto& signed_list = auth->signed_header_list;
  auto is_signed = [&](std::string_view name) {
    return std::find(signed_list.begin(), signed_list.end(), name) != signed_list.end();
  };
  if (!is_signed("host")) {
    return reject(Outcome::kIncompleteSignature,
                  "'Host' must be a 'SignedHeader' in the AWS Authorization.");
  }

  // Timestamp: X-Amz-Date, else Date (botocore signs whichever it set).
  std::string amz_date;
  std::optional<Clock::time_point> when;
  if (auto x = request.header("x-amz-date")) {
    if (!is_signed("x-amz-date")) {
      return reject(Outcome::kIncompleteSignature,
                    "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.");
    }
    amz_date = std::string(trim(*x));
    when = parse_amz_date(amz_date);
    if (!when) {
      return reject(Outcome::kIncompleteSignature,
                    "X-Amz-Date must be in ISO-8601 'basic format' (YYYYMMDD'T'HHMMSS'Z'), got '" +
                        amz_date.substr(0, 64) + "'.");
    }
  } else if (auto d = request.header("date")) {
    if (!is_signed("date")) {
      return reject(Outcome::kIncompleteSignature,
                    "'Date' must be a 'SignedHeader' in the AWS Authorization.");
    }
    when = parse_http_date(*d);
    if (!when) {
      return reject(Outcome::kIncompleteSignature,
                    "Date header is not an HTTP date: '" + std::string(d->substr(0, 64)) + "'.");
    }
    amz_date = format_amz_date(*when);
  } else {
    return reject(Outcome::kIncompleteSignature,
                  "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                  "header.");
  }

  const Credentials* creds = store.find(auth->access_key_id);
  if (!creds) {
    return reject(Outcome::kUnrecognizedClient,
                  "The security token included in the request is invalid.", auth->access_key_id);
  }
  const std::string& key = auth->access_key_id;
  if (auth->terminator != "aws4_request") {
    return reject(Outcome::kInvalidSignature,
                  "Credential should be scoped with a valid terminator: 'aws4_request', not '" +
                      auth->terminator.substr(0, 64) + "'.",
                  key);
  }
  if (auth->service != config.service) {
    return reject(Outcome::kInvalidSignature,
                  "Credential should be scoped to correct service: '" + config.service + "'.", key);
  }
  if (!config.region.empty() && auth->region != config.region) {
    return reject(Outcome::kInvalidSignature,
                  "Credential should be scoped to a valid region, not '" +
                      auth->region.substr(0, 64) + "'. This endpoint serves '" + config.region +
                      "'.",
                  key);
  }
  if (auth->region.empty()) {
    return reject(Outcome::kInvalidSignature, "Credential should be scoped to a valid region.",
                  key);
  }
  if (auth->date != amz_date.substr(0, 8)) {
    return reject(Outcome::kInvalidSignature,
                  "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                  "from HTTP: '" +
                      auth->date.substr(0, 16) + "' != '" + amz_date.substr(0, 8) + "', from '" +
                      amz_date + "'.",
                  key);
  }
  if (*when < now - config.max_skew) {
    return reject(Outcome::kInvalidSignature,
                  "Signature expired: " + amz_date + " is now earlier than " +
                      format_amz_date(now - config.max_skew) + " (" + format_amz_date(now) + " - " +
                      std::to_string(config.max_skew.count() / 60) + " min.)",
                  key);
  }
  if (*when > now + config.max_skew) {
    return reject(Outcome::kInvalidSignature,
                  "Signature not yet current: " + amz_date + " is still later than " +
                      format_amz_date(now + config.max_skew) + " (" + format_amz_date(now) + " + " +
                      std::to_string(config.max_skew.count() / 60) + " min.)",
                  key);
  }
  if (!creds->session_token.empty()) {
    const auto token = request.header("x-amz-security-token");
    if (!token || !is_signed("x-amz-security-token") ||
        !constant_time_equal(*token, creds->session_token)) {
      return reject(Outcome::kUnrecognizedClient,
                    "The security token included in the request is invalid.", key);
    }
  }

  std::string missing;
  const std::optional<std::string> block = canonical_headers(request, signed_list, &missing);
  if (!block) {
    return reject(
        Outcome::kInvalidSignature,
        "SignedHeaders names '" + missing.substr(0, 64) + "', which the request does not carry.",
        key);
  }
  const std::string cr =
      canonical_request(request, *block, auth->signed_headers, payload_hash(request));
  const std::string sts =
      string_to_sign(amz_date, scope_of(auth->date, auth->region, auth->service), cr);
  const std::string expected = hex(hmac_sha256(
      signing_key(creds->secret_access_key, auth->date, auth->region, auth->service), sts));
  if (!constant_time_equal(expected, auth->signature)) {
    return reject(Outcome::kInvalidSignature,
                  "The request signature we calculated does not match the signature you "
                  "provided. Check your AWS Secret Access Key and signing method. Consult the "
                  "service documentation for details.",
                  key);
  }
  return VerifyResult{Outcome::kOk, "", key};
}

// ---- signing ----

void sign(Request& request, const Credentials& credentials, const SignOptions& options) {
  if (!request.header("host")) throw std::invalid_argument("SigV4 signing needs a Host header");
  remove_header(request, "authorization");
  remove_header(request, "x-amz-date");
  const std::string amz_date = format_amz_date(options.now);
  request.headers.emplace_back("X-Amz-Date", amz_date);
  if (!credentials.session_token.empty()) {
    remove_header(request, "x-amz-security-token");
    request.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  std::vector<std::string> names;
  for (const auto& h : request.headers) {
    std::string lname = to_lower(trim(h.first));
    if (!unsigned_by_botocore(lname)) names.push_back(std::move(lname));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string signed_headers;
  for (const std::string& n : names) {
    if (!signed_headers.empty()) signed_headers.push_back(';');
    signed_headers.append(n);
  }
  const std::string date = amz_date.substr(0, 8);
  const std::string scope = scope_of(date, options.region, options.service);
  const std::string cr = canonical_request(request, *canonical_headers(request, names),
                                           signed_headers, payload_hash(request), !options.s3);
  const std::string signature = hex(
      hmac_sha256(signing_key(credentials.secret_access_key, date, options.region, options.service),
                  string_to_sign(amz_date, scope, cr)));
  request.headers.emplace_back(
      "Authorization", std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" +
                           scope + ", SignedHeaders=" + signed_headers +
                           ", Signature=" + signature);
}

}  // namespace lmstream::sigv4

// AWS Signature Version 4 (AWS4-HMAC-SHA256) over a plain request struct: verification for the
// SageMaker routes (service "sagemaker", reference/api.md §5) and a signer that shares the same
// canonicalisation code (for `lmstream invoke`). HMAC-SHA256/SHA-256 from libcrypto; signatures are
// compared with CRYPTO_memcmp. Knows nothing about Beast: the HTTP layer fills a sigv4::Request.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/credentials.h"

namespace lmstream::sigv4 {

using Clock = std::chrono::system_clock;

// A request as received (or about to be sent). `path` and `query` are the raw request-target
// pieces, still percent-encoded, without the '?'. Header names in any case; repeated names allowed.
// `body` must outlive the calls that take the request.
struct Request {
  std::string method;
  std::string path;
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;

  // Values of every header called `name` (case-insensitive), in order.
  std::vector<std::string_view> header_values(std::string_view name) const;
  // The first such value, or nullopt.
  std::optional<std::string_view> header(std::string_view name) const;
};

// ---- building blocks (shared by signer and verifier; exposed for tests) ----
std::string sha256_hex(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);  // raw 32 bytes
std::string hex(std::string_view bytes);                               // lowercase
// RFC 3986 percent-encoding; unreserved characters (and '/' when keep_slash) kept.
std::string uri_encode(std::string_view s, bool keep_slash);
// Canonical URI as botocore computes it for non-S3 services: dot segments and empty segments
// removed, then the (already encoded) path encoded once more.
std::string canonical_uri(std::string_view raw_path);
// Canonical query: pairs decoded, re-encoded with uri_encode, sorted by key then value.
std::string canonical_query(std::string_view raw_query);
// Canonical headers block for the given lower-case names (each "name:value\n", values trimmed,
// inner whitespace collapsed, repeated headers joined with ','). nullopt if a name is absent.
std::optional<std::string> canonical_headers(const Request& request,
                                             const std::vector<std::string>& signed_headers,
                                             std::string* missing = nullptr);
// The payload hash: X-Amz-Content-SHA256 when present, else SHA-256 of the body.
std::string payload_hash(const Request& request);
// normalize_path false: the canonical URI is the path as sent (S3's rule: no dot-segment removal,
// no second encoding).
std::string canonical_request(const Request& request, const std::string& canonical_headers_block,
                              std::string_view signed_headers, std::string_view payload_hash,
                              bool normalize_path = true);
std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request);
std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service);
// "YYYYMMDDTHHMMSSZ" for a time point (UTC, seconds truncated).
std::string format_amz_date(Clock::time_point t);
// Parses "YYYYMMDDTHHMMSSZ"; nullopt when malformed.
std::optional<Clock::time_point> parse_amz_date(std::string_view s);
// Parses an HTTP Date header ("Tue, 24 Nov 2026 21:27:48 GMT", also "+0000"/"-0000").
std::optional<Clock::time_point> parse_http_date(std::string_view s);

// A parsed Authorization header.
struct Authorization {
  std::string access_key_id, date, region, service, terminator;
  std::string signed_headers;  // as sent: "host;x-amz-date"
  std::vector<std::string> signed_header_list;
  std::string signature;  // lowercase hex
};
// nullopt (with *error set to an AWS-style message) when the header is malformed.
std::optional<Authorization> parse_authorization(std::string_view value, std::string* error);

// ---- verification ----
enum class Outcome { kOk, kInvalidSignature, kUnrecognizedClient, kIncompleteSignature };

struct VerifyResult {
  Outcome outcome = Outcome::kOk;
  std::string message;        // for the error body
  std::string access_key_id;  // who signed, when known
  bool ok() const { return outcome == Outcome::kOk; }
  // "InvalidSignatureException", "UnrecognizedClientException", "IncompleteSignatureException",
  // or "" when ok: the x-amzn-ErrorType of the 403 answer.
  std::string_view error_type() const;
};

struct VerifierConfig {
  std::string service = "sagemaker";
  std::string region;  // empty: any region accepted
  std::chrono::seconds max_skew{15 * 60};
};

VerifyResult verify(const Request& request, const CredentialStore& store,
                    const VerifierConfig& config, Clock::time_point now);

// ---- signing ----
struct SignOptions {
  std::string region = "us-east-1";
  std::string service = "sagemaker";
  Clock::time_point now = Clock::now();
  // S3 (botocore's S3SigV4Auth): the canonical URI is the path exactly as sent. The caller sets
  // X-Amz-Content-SHA256 (the body's hash, or UNSIGNED-PAYLOAD) before signing.
  bool s3 = false;
};

// Signs like botocore's SigV4Auth: sets X-Amz-Date (and X-Amz-Security-Token with a session
// token), then signs every header present except the hop-by-hop/user-agent ones botocore leaves
// out, and sets Authorization. The request must already carry its Host header; throws
// std::invalid_argument otherwise.
void sign(Request& request, const Credentials& credentials, const SignOptions& options);

}  // namespace lmstream::sigv4

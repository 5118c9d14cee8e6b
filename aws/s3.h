// S3 client for fetching models: `s3://bucket/key` and `s3://bucket/prefix/` URLs, configuration
// as the AWS SDKs read it (environment, AWS_PROFILE and the shared files, region, endpoint
// overrides for S3-compatible stores), HeadObject, GetObject with a byte range and ListObjectsV2
// with continuation paging, every request signed with SigV4 for service "s3" (sigv4.h). S3's XML
// errors become one-line messages that name the object and what to do. The bytes travel through
// the one outbound HTTP client (http/client.h); a downloader that wants many ranged requests asks
// for signed requests (object_request) and performs them itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/credentials.h"
#include "aws/sigv4.h"
#include "http/client.h"

namespace lmstream::aws {

// s3://bucket/key (one object) or s3://bucket/prefix/ (every object below it; "" = the bucket).
struct S3Url {
  std::string bucket;
  std::string key;  // not decoded: S3 keys are taken literally, as the AWS CLI does
  bool is_prefix() const { return key.empty() || key.back() == '/'; }
  std::string str() const { return "s3://" + bucket + "/" + key; }
};

bool is_s3_url(std::string_view s);
// Throws std::invalid_argument naming the text when it is not s3://BUCKET[/KEY] with a bucket name
// S3 accepts (3-63 characters of a-z 0-9 . -, starting and ending with a letter or digit).
S3Url parse_s3_url(std::string_view s);

// Where requests go and who signs them.
struct S3Config {
  std::string region = "us-east-1";  // signing region
  bool region_set = false;           // false: AWS's global endpoint s3.amazonaws.com
  // "" = AWS (https://s3.REGION.amazonaws.com); otherwise scheme://host[:port][/base], no slash
  // at the end: an S3-compatible store, addressed path-style.
  std::string endpoint;
  std::string endpoint_source;  // "AWS_ENDPOINT_URL_S3", ..., for messages
  bool force_path_style = false;
  std::optional<sigv4::Credentials> credentials;  // nullopt: anonymous (unsigned) requests
  std::string credentials_source;
  std::string profile = "default";

  // As botocore: endpoint AWS_ENDPOINT_URL_S3 > AWS_ENDPOINT_URL > the profile's endpoint_url
  // (none of them when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true); region AWS_REGION >
  // AWS_DEFAULT_REGION > the profile's region > us-east-1; credentials per resolve_credentials,
  // then the container provider (container_credentials) when neither has keys.
  // Throws std::runtime_error for a named profile that does not exist, a bad shared file or an
  // endpoint that is not an http(s) URL.
  static S3Config from_environment(const sigv4::EnvLookup& env = sigv4::process_environment());
};

// The container credentials provider (ECS tasks, SageMaker containers): a GET of
// http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, else of
// $AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http to a loopback or the link-local container
// host only), with AWS_CONTAINER_AUTHORIZATION_TOKEN (or the contents of
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) as its Authorization header; the JSON answer holds
// AccessKeyId, SecretAccessKey, Token. nullopt when neither variable is set; std::runtime_error
// naming the URL when one is set and no keys come back.
std::optional<sigv4::Credentials> container_credentials(const sigv4::EnvLookup& env,
                                                        std::string* source = nullptr);

// One object, from HeadObject or a ListObjectsV2 entry.
struct S3Object {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // without quotes; "<md5 hex>" for single-part uploads, "<hex>-N" multipart
  std::string last_modified;
  // x-amz-server-side-encryption from HeadObject ("AES256", "aws:kms", "aws:kms:dsse"); a
  // listing does not say, so it is "" there.
  std::string server_side_encryption;
  bool customer_key = false;  // SSE-C (x-amz-server-side-encryption-customer-algorithm)
  // The ETag is the MD5 of the content: 32 hex digits (no "-N" of a multipart upload), and not an
  // object encrypted with KMS or a customer key, whose ETags are not MD5s. For a listed object
  // (encryption unknown) this is a guess: see S3Client::head_object.
  bool etag_is_md5() const;
};

struct S3ListPage {
  std::vector<S3Object> objects;
  bool truncated = false;
  std::string next_continuation_token;
};

// Parses a ListObjectsV2 reply (keys URL-decoded when it says <EncodingType>url</EncodingType>).
// Throws std::runtime_error when it is not a ListBucketResult.
S3ListPage parse_list_objects_v2(std::string_view xml);

// S3's <Error> document.
struct S3ErrorBody {
  std::string code, message, key, bucket_name, request_id, region;
};
// nullopt when the text is not an <Error> document (empty bodies, HTML from a proxy).
std::optional<S3ErrorBody> parse_error_xml(std::string_view xml);

// A non-2xx answer from S3, as one line: what was asked (the s3:// URL), S3's code and message,
// and what to do about it.
class S3Error : public std::runtime_error {
 public:
  S3Error(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }  // "NoSuchKey", ..., or "HTTP 403"
  // 500, 502, 503, 504, SlowDown, InternalError, RequestTimeout, ServiceUnavailable: worth
  // another try.
  bool retryable() const;

 private:
  int status_;
  std::string code_;
};

// What went wrong, for a response with this status, headers and body to a request about `url`
// (a key for objects, a prefix for listings). `config` says which endpoint and keys were used.
S3Error describe_s3_error(int status, const http::ResponseHead& head, std::string_view body,
                          const S3Url& url, bool listing, const S3Config& config);

class S3Client {
 public:
  // HeadObject and ListObjectsV2 try `attempts` times on a retryable S3Error or a transport
  // error, waiting `backoff`, then twice as long, ... (GETs of the bytes are the downloader's).
  explicit S3Client(S3Config config, http::ClientOptions options = {}, int attempts = 4,
                    std::chrono::milliseconds backoff = std::chrono::milliseconds(500));
  const S3Config& config() const { return config_; }
  const http::ClientOptions& options() const { return options_; }

  // The URL, path and Host an object request goes to: path-style for custom endpoints and
  // bucket names with dots, virtual-hosted (BUCKET.s3.REGION.amazonaws.com) against AWS.
  std::string object_url(const std::string& bucket, const std::string& key) const;

  // A signed GET (or HEAD) of one object, ready for http::perform. `range` travels in
  // ClientRequest::range, outside the signature (S3 does not require Range to be signed), so a
  // downloader may narrow it to resume. if_match (an ETag, quotes optional) makes S3 answer 412
  // if the object was replaced since. The signature is valid for 15 minutes from `now`.
  http::ClientRequest object_request(const std::string& bucket, const std::string& key,
                                     std::optional<http::ByteRange> range = std::nullopt,
                                     const std::string& method = "GET",
                                     const std::string& if_match = "",
                                     sigv4::Clock::time_point now = sigv4::Clock::now()) const;
  // A signed ListObjectsV2 page request (encoding-type=url, no delimiter).
  http::ClientRequest list_request(const std::string& bucket, const std::string& prefix,
                                   const std::string& continuation_token = "", int max_keys = 1000,
                                   sigv4::Clock::time_point now = sigv4::Clock::now()) const;

  // HeadObject. Throws S3Error (a HEAD error has no body, so the error is asked again as a
  // one-byte GET to learn S3's code) or http::ClientError.
  S3Object head_object(const S3Url& url) const;
  // GetObject, the body handed to on_body piece by piece. Throws S3Error on a non-2xx answer.
  http::ResponseHead get_object(const S3Url& url, std::optional<http::ByteRange> range,
                                const std::function<void(std::string_view)>& on_body) const;
  // One ListObjectsV2 page.
  S3ListPage list_page(const S3Url& prefix, const std::string& continuation_token = "",
                       int max_keys = 1000) const;
  // Every object under the prefix, following continuation tokens; keys ending in '/' (console
  // "folders") are left out.
  std::vector<S3Object> list_objects(const S3Url& prefix, int max_keys = 1000) const;

 private:
  http::ClientRequest signed_request(const std::string& method, const std::string& bucket,
                                     const std::string& key, const std::string& query,
                                     sigv4::Clock::time_point now,
                                     const http::ClientHeaders& extra = {}) const;

  template <class F>
  auto with_retries(F&& f) const -> decltype(f());
  S3Object head_once(const S3Url& url) const;
  S3ListPage list_page_once(const S3Url& prefix, const std::string& continuation_token,
                            int max_keys) const;

  S3Config config_;
  http::ClientOptions options_;
  int attempts_;
  std::chrono::milliseconds backoff_;
};

}  // namespace lmstream::aws

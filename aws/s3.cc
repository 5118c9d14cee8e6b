// S3 client: URLs, configuration, signed requests, XML replies and errors (see s3.h). The XML is
// read with Boost.PropertyTree's parser; signing is sigv4::sign with the S3 rules.
#include "aws/s3.h"

#include <algorithm>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "base/files.h"
#include "base/strings.h"

namespace lmstream::aws {
namespace {

namespace pt = boost::property_tree;

constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

bool truthy(const std::optional<std::string>& v) {
  if (!v) return false;
  const std::string s = base::to_lower(base::trim(*v));
  return s == "1" || s == "true" || s == "yes" || s == "on";
}

// scheme://authority[/base] split for an endpoint; throws std::runtime_error when malformed.
struct Origin {
  std::string scheme, authority, base_path;
};

Origin split_endpoint(const std::string& url, const std::string& source) {
  const size_t sep = url.find("://");
  const std::string scheme = sep == std::string::npos ? "" : base::to_lower(url.substr(0, sep));
  if (scheme != "http" && scheme != "https") {
    throw std::runtime_error(source + " = '" + url +
                             "' is not an http:// or https:// URL (e.g. http://127.0.0.1:9000)");
  }
  const std::string rest = url.substr(sep + 3);
  const size_t slash = rest.find('/');
  Origin o{scheme, rest.substr(0, slash), slash == std::string::npos ? "" : rest.substr(slash)};
  if (o.authority.empty() || o.authority.find_first_of("?#@ ") != std::string::npos) {
    throw std::runtime_error(source + " = '" + url + "' has no usable host");
  }
  while (!o.base_path.empty() && o.base_path.back() == '/') o.base_path.pop_back();
  if (o.base_path.find_first_of("?#") != std::string::npos) {
    throw std::runtime_error(source + " = '" + url + "' must not carry a query");
  }
  return o;
}

std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return s;
}

std::string unquote_etag(std::string_view e) {
  e = base::trim(e);
  if (e.substr(0, 2) == "W/") e.remove_prefix(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return std::string(e);
}

// encoding-type=url values: '+' is a space, then percent-decoding (botocore's unquote_plus).
std::string url_decode_plus(std::string_view s) {
  std::string t(s);
  for (char& c : t) {
    if (c == '+') c = ' ';
  }
  return base::percent_decode(t);
}

std::optional<pt::ptree> read_xml(std::string_view xml) {
  pt::ptree tree;
  std::istringstream in{std::string(xml)};
  try {
    pt::read_xml(in, tree, pt::xml_parser::no_comments);
  } catch (const pt::xml_parser_error&) {
    return std::nullopt;
  }
  return tree;
}

bool is_2xx(int status) { return status >= 200 && status < 300; }

}  // namespace

// ---- URLs ----

bool is_s3_url(std::string_view s) { return base::istarts_with(s, "s3://"); }

S3Url parse_s3_url(std::string_view s) {
  const std::string text(s);
  if (!is_s3_url(s)) {
    throw std::invalid_argument("'" + text + "' is not an s3:// URL (s3://bucket/key)");
  }
  std::string_view rest = s.substr(5);
  const size_t slash = rest.find('/');
  S3Url url{std::string(rest.substr(0, slash)),
            slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1))};
  const std::string& b = url.bucket;
  if (b.empty()) throw std::invalid_argument("'" + text + "' names no bucket (s3://bucket/key)");
  const bool chars_ok = std::all_of(b.begin(), b.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
  });
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (b.size() < 3 || b.size() > 63 || !chars_ok || !alnum(b.front()) || !alnum(b.back())) {
    throw std::invalid_argument("'" + text + "': '" + b +
                                "' is not an S3 bucket name (3-63 characters: lower-case "
                                "letters, digits, '.' and '-', starting and ending with a "
                                "letter or digit)");
  }
  if (url.key.find('\0') != std::string::npos) {
    throw std::invalid_argument("'" + text + "': the key holds a NUL byte");
  }
  return url;
}

// ---- configuration ----

S3Config S3Config::from_environment(const sigv4::EnvLookup& env) {
  S3Config c;
  const sigv4::Profile profile = sigv4::load_profile(env);
  c.profile = profile.name;
  if (auto r = env("AWS_REGION")) {
    c.region = *r;
    c.region_set = true;
  } else if (auto d = env("AWS_DEFAULT_REGION")) {
    c.region = *d;
    c.region_set = true;
  } else if (!profile.region.empty()) {
    c.region = profile.region;
    c.region_set = true;
  }
  if (!truthy(env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"))) {
    if (auto e = env("AWS_ENDPOINT_URL_S3")) {
      c.endpoint = *e;
      c.endpoint_source = "AWS_ENDPOINT_URL_S3";
    } else if (auto g = env("AWS_ENDPOINT_URL")) {
      c.endpoint = *g;
      c.endpoint_source = "AWS_ENDPOINT_URL";
    } else if (!profile.endpoint_url.empty()) {
      c.endpoint = profile.endpoint_url;
      c.endpoint_source = "endpoint_url of AWS profile '" + profile.name + "'";
    }
  }
  if (!c.endpoint.empty()) {
    split_endpoint(c.endpoint, c.endpoint_source);  // validates
    while (c.endpoint.back() == '/') c.endpoint.pop_back();
  }
  c.credentials = sigv4::resolve_credentials(env, profile, &c.credentials_source);
  if (!c.credentials) c.credentials = container_credentials(env, &c.credentials_source);
  return c;
}

std::optional<sigv4::Credentials> container_credentials(const sigv4::EnvLookup& env,
                                                        std::string* source) {
  std::string url, var;
  if (auto rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
    url = "http://169.254.170.2" + *rel;
    var = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
  } else if (auto full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
    url = *full;
    var = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
    const Origin o = split_endpoint(url, var);
    std::string host = o.authority;
    if (!host.empty() && host.front() == '[') {
      host = host.substr(1, host.find(']') - 1);
    } else {
      host = host.substr(0, host.find(':'));
    }
    const bool allowed = o.scheme == "https" || host == "localhost" || host.rfind("127.", 0) == 0 ||
                         host == "::1" || host == "169.254.170.2" || host == "169.254.170.23" ||
                         base::iequals(host, "fd00:ec2::23");
    if (!allowed) {
      throw std::runtime_error(var + " = '" + url +
                               "': plain http is allowed only to a loopback address or the "
                               "container credentials host (169.254.170.2)");
    }
  } else {
    return std::nullopt;
  }
  http::ClientRequest req;
  req.url = url;
  std::string token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN").value_or("");
  if (token.empty()) {
    if (auto file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
      try {
        token = std::string(base::trim(base::read_file(*file)));
      } catch (const std::exception& e) {
        throw std::runtime_error("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: " +
                                 std::string(e.what()));
      }
    }
  }
  if (!token.empty()) req.headers.emplace_back("Authorization", token);
  req.headers.emplace_back("Accept", "application/json");
  http::ClientOptions opt;
  opt.connect_timeout = std::chrono::milliseconds(2000);
  opt.stall_timeout = std::chrono::milliseconds(5000);
  const std::string shown = url.substr(0, url.find('?'));
  http::ClientResponse res;
  try {
    res = http::fetch(req, opt, 1 << 20);
  } catch (const http::ClientError& e) {
    throw std::runtime_error("cannot get container credentials (" + var + "): " + e.what());
  }
  if (res.head.status != 200) {
    throw std::runtime_error("cannot get container credentials from " + shown + " (" + var +
                             "): HTTP " + std::to_string(res.head.status));
  }
  const nlohmann::json j = nlohmann::json::parse(res.body, nullptr, false);
  auto field = [&](const char* k) -> std::string {
    return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
  };
  sigv4::Credentials c{field("AccessKeyId"), field("SecretAccessKey"), field("Token")};
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    throw std::runtime_error("container credentials from " + shown + " (" + var +
                             ") hold no AccessKeyId/SecretAccessKey");
  }
  if (source) *source = "container credentials (" + var + ")";
  return c;
}

// ---- replies ----

bool S3Object::etag_is_md5() const {
  if (customer_key || base::istarts_with(server_side_encryption, "aws:kms")) return false;
  return etag.size() == 32 && std::all_of(etag.begin(), etag.end(),
                                          [](char c) { return base::hex_digit_value(c) >= 0; });
}

S3ListPage parse_list_objects_v2(std::string_view xml) {
  const std::optional<pt::ptree> tree = read_xml(xml);
  const auto root = tree ? tree->get_child_optional("ListBucketResult") : boost::none;
  if (!root) {
    throw std::runtime_error("ListObjectsV2 reply is not a <ListBucketResult> document: '" +
                             one_line(std::string(xml.substr(0, 120))) + "'");
  }
  const bool url_encoded = root->get<std::string>("EncodingType", "") == "url";
  S3ListPage page;
  page.truncated = base::trim(root->get<std::string>("IsTruncated", "false")) == "true";
  page.next_continuation_token = root->get<std::string>("NextContinuationToken", "");
  for (const auto& [name, child] : *root) {
    if (name != "Contents") continue;
    S3Object o;
    const std::string key = child.get<std::string>("Key", "");
    o.key = url_encoded ? url_decode_plus(key) : key;
    long long size = 0;
    if (!base::parse_int64(base::trim(child.get<std::string>("Size", "0")), size) || size < 0) {
      throw std::runtime_error("ListObjectsV2 reply: bad <Size> for key '" + o.key + "'");
    }
    o.size = static_cast<uint64_t>(size);
    o.etag = unquote_etag(child.get<std::string>("ETag", ""));
    o.last_modified = child.get<std::string>("LastModified", "");
    page.objects.push_back(std::move(o));
  }
  if (page.truncated && page.next_continuation_token.empty()) {
    throw std::runtime_error(
        "ListObjectsV2 reply says IsTruncated but carries no NextContinuationToken");
  }
  return page;
}

std::optional<S3ErrorBody> parse_error_xml(std::string_view xml) {
  const std::optional<pt::ptree> tree = read_xml(xml);
  const auto root = tree ? tree->get_child_optional("Error") : boost::none;
  if (!root) return std::nullopt;
  S3ErrorBody e;
  e.code = root->get<std::string>("Code", "");
  e.message = one_line(root->get<std::string>("Message", ""));
  e.key = root->get<std::string>("Key", "");
  e.bucket_name = root->get<std::string>("BucketName", "");
  e.request_id = root->get<std::string>("RequestId", "");
  e.region = root->get<std::string>("Region", "");
  if (e.code.empty()) return std::nullopt;
  return e;
}

bool S3Error::retryable() const {
  return status_ == 500 || status_ == 502 || status_ == 503 || status_ == 504 ||
         code_ == "SlowDown" || code_ == "InternalError" || code_ == "RequestTimeout" ||
         code_ == "ServiceUnavailable";
}

S3Error describe_s3_error(int status, const http::ResponseHead& head, std::string_view body,
                          const S3Url& url, bool listing, const S3Config& config) {
  const std::optional<S3ErrorBody> err = parse_error_xml(body);
  const std::string what = url.str();
  const std::string where = config.endpoint.empty()
                                ? "AWS S3 (region " + config.region + ")"
                                : config.endpoint + " (" + config.endpoint_source + ")";
  const std::string key_id = config.credentials ? config.credentials->access_key_id : "";
  const std::string who = config.credentials
                              ? "access key " + key_id + " from " + config.credentials_source
                              : "no credentials (an anonymous request)";
  const std::string no_creds_hint =
      config.credentials ? ""
                         : "; no AWS credentials were found: set AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials";
  const std::string code = err ? err->code : "HTTP " + std::to_string(status);
  auto make = [&](const std::string& text) { return S3Error(status, code, one_line(text)); };
  const std::string region_hint = [&] {
    if (auto r = head.header("x-amz-bucket-region")) return *r;
    return err ? err->region : std::string();
  }();

  if (code == "NoSuchKey" || (!err && status == 404 && !listing)) {
    std::string text = what + ": no such object in bucket '" + url.bucket + "' at " + where +
                       (err ? " (NoSuchKey)" : " (HTTP 404: no such key, or no such bucket)") +
                       "; check the key (keys are case-sensitive)";
    if (!url.is_prefix()) text += ", or for a directory of files give the prefix: " + what + "/";
    return make(text);
  }
  if (code == "NoSuchBucket") {
    return make(what + ": bucket '" + url.bucket + "' does not exist at " + where +
                " (NoSuchBucket); check the bucket name, and the endpoint (AWS_ENDPOINT_URL_S3) "
                "or region (AWS_REGION) it lives in");
  }
  if (code == "SignatureDoesNotMatch") {
    return make(what + ": S3 at " + where +
                " rejected the signature (SignatureDoesNotMatch): the secret key does not belong "
                "to access key " +
                key_id + " from " + config.credentials_source +
                "; check AWS_SECRET_ACCESS_KEY (or aws_secret_access_key in the profile)");
  }
  if (code == "InvalidAccessKeyId") {
    return make(what + ": access key " + key_id + " from " + config.credentials_source +
                " is not known at " + where +
                " (InvalidAccessKeyId); check AWS_ACCESS_KEY_ID (or the profile), and that the "
                "endpoint is the right one");
  }
  if (code == "ExpiredToken" || code == "TokenRefreshRequired" || code == "InvalidToken") {
    return make(what + ": the session token of " + who + " is expired or invalid (" + code +
                "); refresh the temporary credentials (AWS_SESSION_TOKEN)");
  }
  if (code == "AccessDenied" || (!err && status == 403)) {
    return make(what + ": access denied at " + where + " for " + who +
                (err ? " (AccessDenied)" : " (HTTP 403)") + "; the key needs " +
                (listing ? "s3:ListBucket on bucket '" + url.bucket + "'"
                         : std::string("s3:GetObject on the object")) +
                no_creds_hint);
  }
  if (code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" ||
      code == "IllegalLocationConstraintException" || status == 301) {
    return make(what + ": bucket '" + url.bucket + "' is not in region " + config.region +
                (region_hint.empty() ? "" : " but in " + region_hint) + " (" + code +
                "); set AWS_REGION" + (region_hint.empty() ? "" : "=" + region_hint));
  }
  if (code == "RequestTimeTooSkewed") {
    return make(what + ": this machine's clock is more than 15 minutes off S3's " +
                "(RequestTimeTooSkewed); set the clock right (NTP) and try again");
  }
  if (code == "InvalidRange") {
    return make(what + ": the requested byte range is not satisfiable (InvalidRange): the object " +
                "is shorter than expected; it may have been replaced, start the download again");
  }
  if (code == "PreconditionFailed" || status == 412) {
    return make(what + ": the object changed during the download (its ETag no longer matches, " +
                code + "); start the download again");
  }
  if (status >= 500 || code == "SlowDown") {
    return make(what + ": S3 at " + where + " is unavailable (" + code +
                (err && !err->message.empty() ? ": " + err->message : "") + "); try again later");
  }
  return make(what + ": S3 at " + where + " answered HTTP " + std::to_string(status) +
              (err ? " " + err->code + (err->message.empty() ? "" : ": " + err->message) : ""));
}

// ---- client ----

S3Client::S3Client(S3Config config, http::ClientOptions options, int attempts,
                   std::chrono::milliseconds backoff)
    : config_(std::move(config)),
      options_(std::move(options)),
      attempts_(std::max(1, attempts)),
      backoff_(backoff) {}

template <class F>
auto S3Client::with_retries(F&& f) const -> decltype(f()) {
  std::chrono::milliseconds wait = backoff_;
  for (int attempt = 1;; ++attempt) {
    try {
      return f();
    } catch (const S3Error& e) {
      if (!e.retryable() || attempt >= attempts_) throw;
    } catch (const http::ClientError& e) {
      using K = http::ClientError::Kind;
      const bool transient =
          e.kind() == K::kConnect || e.kind() == K::kTimeout || e.kind() == K::kTransfer;
      if (!transient || attempt >= attempts_) throw;
    }
    // Sleep in slices so a cancel flag is seen.
    for (auto left = wait; left.count() > 0; left -= std::chrono::milliseconds(50)) {
      if (options_.cancel && options_.cancel->load()) {
        throw http::ClientError(http::ClientError::Kind::kCancelled, "cancelled");
      }
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(50)));
    }
    wait = std::min(wait * 2, std::chrono::milliseconds(8000));
  }
}

namespace {

struct Target {
  std::string origin;  // scheme://authority
  std::string host;    // authority, for the Host header
  std::string path;    // encoded, as sent and as signed
};

Target target_for(const S3Config& c, const std::string& bucket, const std::string& key,
                  bool bucket_level) {
  const std::string enc_key = sigv4::uri_encode(key, /*keep_slash=*/true);
  if (!c.endpoint.empty()) {
    const Origin o = split_endpoint(c.endpoint, c.endpoint_source);
    std::string path = o.base_path + "/" + bucket;
    if (!bucket_level) path += "/" + enc_key;
    return {o.scheme + "://" + o.authority, o.authority, path};
  }
  const std::string aws_host =
      c.region_set ? "s3." + c.region + ".amazonaws.com" : std::string("s3.amazonaws.com");
  if (!c.force_path_style && bucket.find('.') == std::string::npos) {
    const std::string host = bucket + "." + aws_host;
    return {"https://" + host, host, "/" + (bucket_level ? std::string() : enc_key)};
  }
  std::string path = "/" + bucket;
  if (!bucket_level) path += "/" + enc_key;
  return {"https://" + aws_host, aws_host, path};
}

}  // namespace

std::string S3Client::object_url(const std::string& bucket, const std::string& key) const {
  const Target t = target_for(config_, bucket, key, false);
  return t.origin + t.path;
}

http::ClientRequest S3Client::signed_request(const std::string& method, const std::string& bucket,
                                             const std::string& key, const std::string& query,
                                             sigv4::Clock::time_point now,
                                             const http::ClientHeaders& extra) const {
  const Target t = target_for(config_, bucket, key, /*bucket_level=*/key.empty());
  sigv4::Request r;
  r.method = method;
  r.path = t.path;
  r.query = query;
  r.headers.emplace_back("Host", t.host);
  for (const auto& h : extra) r.headers.push_back(h);
  r.headers.emplace_back("x-amz-content-sha256", kEmptySha256);
  if (config_.credentials) {
    sigv4::SignOptions so;
    so.region = config_.region;
    so.service = "s3";
    so.now = now;
    so.s3 = true;
    sigv4::sign(r, *config_.credentials, so);
  }
  http::ClientRequest req;
  req.method = method;
  req.url = t.origin + t.path + (query.empty() ? "" : "?" + query);
  req.headers = std::move(r.headers);
  return req;
}

http::ClientRequest S3Client::object_request(const std::string& bucket, const std::string& key,
                                             std::optional<http::ByteRange> range,
                                             const std::string& method, const std::string& if_match,
                                             sigv4::Clock::time_point now) const {
  if (key.empty()) throw std::invalid_argument("s3://" + bucket + "/: an object needs a key");
  // If-Match is signed with the rest: it is added before signing.
  http::ClientHeaders extra;
  if (!if_match.empty()) extra.emplace_back("If-Match", "\"" + unquote_etag(if_match) + "\"");
  http::ClientRequest req = signed_request(method, bucket, key, "", now, extra);
  req.range = range;
  return req;
}

http::ClientRequest S3Client::list_request(const std::string& bucket, const std::string& prefix,
                                           const std::string& continuation_token, int max_keys,
                                           sigv4::Clock::time_point now) const {
  std::string query = "list-type=2&prefix=" + sigv4::uri_encode(prefix, false);
  if (!continuation_token.empty()) {
    query += "&continuation-token=" + sigv4::uri_encode(continuation_token, false);
  }
  if (max_keys != 1000) query += "&max-keys=" + std::to_string(max_keys);
  query += "&encoding-type=url";
  return signed_request("GET", bucket, "", query, now);
}

S3Object S3Client::head_object(const S3Url& url) const {
  return with_retries([&] { return head_once(url); });
}

S3Object S3Client::head_once(const S3Url& url) const {
  const http::ClientResponse res =
      http::fetch(object_request(url.bucket, url.key, std::nullopt, "HEAD"), options_, 0);
  if (!is_2xx(res.head.status)) {
    // A HEAD error carries no body: ask again with a one-byte GET to learn S3's error code.
    const http::ClientResponse again = http::fetch(
        object_request(url.bucket, url.key, http::ByteRange{0, 0}, "GET"), options_, 64 << 10);
    if (!is_2xx(again.head.status) && again.head.status != 416) {
      throw describe_s3_error(again.head.status, again.head, again.body, url, false, config_);
    }
    throw describe_s3_error(res.head.status, res.head, "", url, false, config_);
  }
  S3Object o;
  o.key = url.key;
  long long size = 0;
  const std::string length = res.head.header("Content-Length").value_or("");
  if (!base::parse_int64(base::trim(length), size) || size < 0) {
    throw std::runtime_error(
        url.str() + ": HeadObject answered without a usable Content-Length ('" + length + "')");
  }
  o.size = static_cast<uint64_t>(size);
  o.etag = unquote_etag(res.head.header("ETag").value_or(""));
  o.last_modified = res.head.header("Last-Modified").value_or("");
  o.server_side_encryption = res.head.header("x-amz-server-side-encryption").value_or("");
  o.customer_key = res.head.header("x-amz-server-side-encryption-customer-algorithm").has_value();
  return o;
}

http::ResponseHead S3Client::get_object(
    const S3Url& url, std::optional<http::ByteRange> range,
    const std::function<void(std::string_view)>& on_body) const {
  int status = 0;
  std::string error_body;
  http::ClientCallbacks cb;
  cb.on_head = [&](const http::ResponseHead& h) { status = h.status; };
  cb.on_body = [&](std::string_view piece) {
    if (is_2xx(status)) {
      on_body(piece);
    } else if (error_body.size() < (64 << 10)) {
      error_body.append(piece.substr(0, (64 << 10) - error_body.size()));
    }
  };
  const http::ResponseHead head =
      http::perform(object_request(url.bucket, url.key, range), options_, cb);
  if (!is_2xx(head.status)) {
    throw describe_s3_error(head.status, head, error_body, url, false, config_);
  }
  return head;
}

S3ListPage S3Client::list_page(const S3Url& prefix, const std::string& continuation_token,
                               int max_keys) const {
  return with_retries([&] { return list_page_once(prefix, continuation_token, max_keys); });
}

S3ListPage S3Client::list_page_once(const S3Url& prefix, const std::string& continuation_token,
                                    int max_keys) const {
  const http::ClientResponse res =
      http::fetch(list_request(prefix.bucket, prefix.key, continuation_token, max_keys), options_);
  if (!is_2xx(res.head.status)) {
    throw describe_s3_error(res.head.status, res.head, res.body, prefix, true, config_);
  }
  try {
    return parse_list_objects_v2(res.body);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(prefix.str() + ": " + e.what());
  }
}

std::vector<S3Object> S3Client::list_objects(const S3Url& prefix, int max_keys) const {
  std::vector<S3Object> all;
  std::string token;
  for (int pages = 0;; ++pages) {
    if (pages > 100000) throw std::runtime_error(prefix.str() + ": listing does not end");
    S3ListPage page = list_page(prefix, token, max_keys);
    for (S3Object& o : page.objects) {
      if (!o.key.empty() && o.key.back() != '/') all.push_back(std::move(o));
    }
    if (!page.truncated) break;
    if (page.next_continuation_token == token) {
      throw std::runtime_error(prefix.str() + ": listing repeats its continuation token");
    }
    token = page.next_continuation_token;
  }
  return all;
}

}  // namespace lmstream::aws

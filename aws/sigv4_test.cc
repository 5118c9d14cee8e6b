// SigV4 tests: cases from AWS's published Signature Version 4 test suite (service "service",
// 20150830T123600Z), a boto3-shaped SageMaker request pinned from botocore 1.43.11, every
// rejection class, and the credentials file parser. BotocoreFixture.SigV4 is the bridge used by
// tests/test_sigv4_botocore.py (skipped unless LMSTREAM_SIGV4_FIXTURE_DIR is set).
#include "aws/sigv4.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

namespace lmstream::sigv4 {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

constexpr const char* kSuiteKey = "AKIDEXAMPLE";
constexpr const char* kSuiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr const char* kSuiteToken =
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPf"
    "IeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7W"
    "Z0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FD"
    "rypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

Clock::time_point suite_time() { return *parse_amz_date("20150830T123600Z"); }

struct SuiteCase {
  const char* name;
  const char* method;
  const char* path;
  const char* query;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Host and X-Amz-Date
  const char* signed_headers;
  const char* signature;
  bool session_token = false;
};

// From the AWS SigV4 test suite (aws-sig-v4-test-suite, as mirrored by the AWS SDKs' fixtures).
std::vector<SuiteCase> suite_cases() {
  return {
      {"get-vanilla",
       "GET",
       "/",
       "",
       {},
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"post-vanilla",
       "POST",
       "/",
       "",
       {},
       "host;x-amz-date",
       "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"get-vanilla-query-order-key-case",
       "GET",
       "/",
       "Param2=value2&Param1=value1",
       {},
       "host;x-amz-date",
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"post-header-value-case",
       "POST",
       "/",
       "",
       {{"My-Header1", "VALUE1"}},
       "host;my-header1;x-amz-date",
       "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
      {"get-header-value-trim",
       "GET",
       "/",
       "",
       {{"My-Header1", " value1"}, {"My-Header2", "\"a   b   c\""}},
       "host;my-header1;my-header2;x-amz-date",
       "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      {"get-header-key-duplicate",
       "GET",
       "/",
       "",
       {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
       "host;my-header1;x-amz-date",
       "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      {"get-unreserved",
       "GET",
       "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       "",
       {},
       "host;x-amz-date",
       "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
      {"post-sts-header-before",
       "POST",
       "/",
       "",
       {},
       "host;x-amz-date;x-amz-security-token",
       "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
       true},
  };
}

Request suite_request(const SuiteCase& c) {
  Request r;
  r.method = c.method;
  r.path = c.path;
  r.query = c.query;
  r.headers.emplace_back("Host", "example.amazonaws.com");
  for (const auto& h : c.headers) r.headers.push_back(h);
  return r;
}

Credentials suite_credentials(bool with_token) {
  return {kSuiteKey, kSuiteSecret, with_token ? kSuiteToken : ""};
}

TEST(SigV4, BuildingBlocksMatchTheSuite) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Request r;
  r.method = "POST";
  r.path = "/";
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  const std::vector<std::string> names = {"host", "x-amz-date"};
  const std::string cr =
      canonical_request(r, *canonical_headers(r, names), "host;x-amz-date", payload_hash(r));
  EXPECT_EQ(cr,
            "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(string_to_sign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", cr),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87");
}

TEST(SigV4, SignerReproducesTheAwsTestSuite) {
  for (const SuiteCase& c : suite_cases()) {
    Request r = suite_request(c);
    sign(r, suite_credentials(c.session_token), {"us-east-1", "service", suite_time()});
    const std::string expected =
        std::string("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/") +
        "us-east-1/service/aws4_request, SignedHeaders=" + c.signed_headers +
        ", Signature=" + c.signature;
    EXPECT_EQ(r.header("authorization"), expected) << c.name;
    EXPECT_EQ(r.header("x-amz-date"), "20150830T123600Z") << c.name;
  }
}

TEST(SigV4, VerifierAcceptsTheAwsTestSuiteAndRejectsAnyTamperedCopy) {
  for (const SuiteCase& c : suite_cases()) {
    CredentialStore store;
    store.add(suite_credentials(c.session_token));
    Request r = suite_request(c);
    r.headers.emplace_back("X-Amz-Date", "20150830T123600Z");
    if (c.session_token) r.headers.emplace_back("X-Amz-Security-Token", kSuiteToken);
    r.headers.emplace_back("Authorization",
                           std::string("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
                                       "service/aws4_request, SignedHeaders=") +
                               c.signed_headers + ", Signature=" + c.signature);
    const VerifierConfig config{"service", "us-east-1", minutes(15)};
    const VerifyResult ok = verify(r, store, config, suite_time() + minutes(3));
    EXPECT_TRUE(ok.ok()) << c.name << ": " << ok.message;
    EXPECT_EQ(ok.access_key_id, kSuiteKey);

    Request tampered = r;
    tampered.method = c.method == std::string("GET") ? "POST" : "GET";
    EXPECT_EQ(verify(tampered, store, config, suite_time()).outcome, Outcome::kInvalidSignature)
        << c.name;
  }
}

// A boto3 invoke_endpoint_with_response_stream request, signed by botocore 1.43.11 SigV4Auth
// (region us-west-2, 2026-11-24 21:27:48 UTC); User-Agent is sent but not signed.
const std::string kBody =
    "{\"inputs\": \"<s>[INST] Hi [/INST]\", \"parameters\": {\"max_new_tokens\": 8}}";

Request boto3_request() {
  Request r;
  r.method = "POST";
  r.path = "/endpoints/my-ep/invocations-response-stream";
  r.headers = {
      {"Host", "127.0.0.1:8080"},
      {"Accept-Encoding", "identity"},
      {"Content-Type", "application/json"},
      {"X-Amzn-SageMaker-Accept", "application/json"},
      {"X-Amzn-SageMaker-Custom-Attributes", "accept_eula=true"},
      {"User-Agent", "Boto3/1.43.11"},
      {"X-Amz-Date", "20261124T212748Z"},
      {"Authorization",
       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-west-2/sagemaker/aws4_request, "
       "SignedHeaders=content-type;host;x-amz-date;x-amzn-sagemaker-accept;"
       "x-amzn-sagemaker-custom-attributes, "
       "Signature=ef5c79ad7ed1f3bfe7fbeaf6c7f8dba8754601e74b84202adaa8c7446aee0bbf"},
      {"amz-sdk-invocation-id", "5a7c1c39-0000-4000-8000-000000000000"},
      {"Content-Length", std::to_string(kBody.size())},
  };
  r.body = kBody;
  return r;
}

Clock::time_point boto3_time() { return *parse_amz_date("20261124T212748Z"); }

CredentialStore boto3_store() {
  CredentialStore store;
  store.add({"AKIDOTHER", "other-secret", ""});
  store.add({kSuiteKey, kSuiteSecret, ""});
  return store;
}

VerifyResult verify_boto3(const Request& r, VerifierConfig config = {},
                          Clock::time_point now = boto3_time()) {
  return verify(r, boto3_store(), config, now);
}

void set_header(Request& r, std::string_view name, std::string value) {
  for (auto& [n, v] : r.headers) {
    if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      v = std::move(value);
      return;
    }
  }
  r.headers.emplace_back(std::string(name), std::move(value));
}

void drop_header(Request& r, std::string_view name) {
  std::erase_if(r.headers, [&](const auto& h) {
    return h.first.size() == name.size() &&
           std::equal(h.first.begin(), h.first.end(), name.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) ==
                    std::tolower(static_cast<unsigned char>(b));
           });
  });
}

TEST(SigV4, VerifiesABotocoreSignedSageMakerRequest) {
  EXPECT_TRUE(verify_boto3(boto3_request()).ok()) << verify_boto3(boto3_request()).message;
  // Unsigned headers may change (added after signing by botocore / proxies).
  Request r = boto3_request();
  set_header(r, "User-Agent", "something else");
  set_header(r, "amz-sdk-request", "attempt=2; max=5");
  EXPECT_TRUE(verify_boto3(r).ok());
  // Region pinned to the signed one, or any.
  EXPECT_TRUE(verify_boto3(boto3_request(), {"sagemaker", "us-west-2", minutes(15)}).ok());
  // Within the 15-minute window on either side.
  EXPECT_TRUE(verify_boto3(boto3_request(), {}, boto3_time() + minutes(14)).ok());
  EXPECT_TRUE(verify_boto3(boto3_request(), {}, boto3_time() - minutes(14)).ok());
}

TEST(SigV4, OurSignerMatchesBotocoreForTheSameRequest) {
  Request r = boto3_request();
  drop_header(r, "Authorization");
  drop_header(r, "X-Amz-Date");
  drop_header(r, "Accept-Encoding");  // botocore adds these after signing
  drop_header(r, "amz-sdk-invocation-id");
  drop_header(r, "Content-Length");
  sign(r, {kSuiteKey, kSuiteSecret, ""}, {"us-west-2", "sagemaker", boto3_time()});
  EXPECT_EQ(r.header("authorization"), boto3_request().header("authorization"));
}

TEST(SigV4, RejectsWithTheErrorCodeBotocoreMapsToClientError) {
  struct Case {
    const char* what;
    std::function<void(Request&)> mutate;
    Outcome outcome;
    const char* message_part;
  };
  const std::string auth(*boto3_request().header("authorization"));
  auto with_auth = [](std::string value) {
    return [value](Request& r) { set_header(r, "Authorization", value); };
  };
  auto replace_in_auth = [&](std::string from, std::string to) {
    std::string changed = auth;
    changed.replace(changed.find(from), from.size(), to);
    return changed;
  };
  const std::vector<Case> cases = {
      {"tampered body", [](Request& r) { r.body = "{\"inputs\": \"evil\"}"; },
       Outcome::kInvalidSignature, "signature we calculated does not match"},
      {"tampered signed header", [](Request& r) { set_header(r, "Content-Type", "text/plain"); },
       Outcome::kInvalidSignature, "does not match"},
      {"different host", [](Request& r) { set_header(r, "Host", "127.0.0.1:9090"); },
       Outcome::kInvalidSignature, "does not match"},
      {"different path",
       [](Request& r) { r.path = "/endpoints/other/invocations-response-stream"; },
       Outcome::kInvalidSignature, "does not match"},
      {"altered signature", with_auth(replace_in_auth("Signature=ef5c", "Signature=ef5d")),
       Outcome::kInvalidSignature, "does not match"},
      {"unknown access key", with_auth(replace_in_auth("AKIDEXAMPLE/", "AKIDUNKNOWN/")),
       Outcome::kUnrecognizedClient, "security token included in the request is invalid"},
      {"missing authorization", [](Request& r) { drop_header(r, "Authorization"); },
       Outcome::kIncompleteSignature, "Missing Authentication Token"},
      {"missing signature", with_auth(auth.substr(0, auth.find(", Signature="))),
       Outcome::kIncompleteSignature, "requires 'Signature'"},
      {"wrong algorithm", with_auth(replace_in_auth("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1")),
       Outcome::kIncompleteSignature, "Unsupported AWS 'algorithm'"},
      {"short credential", with_auth(replace_in_auth("/us-west-2/sagemaker", "")),
       Outcome::kIncompleteSignature, "Credential should be"},
      {"host not signed",
       with_auth(replace_in_auth("content-type;host;x-amz-date", "content-type;x-amz-date")),
       Outcome::kIncompleteSignature, "'Host' must be a 'SignedHeader'"},
      {"date not signed",
       with_auth(replace_in_auth("content-type;host;x-amz-date", "content-type;host")),
       Outcome::kIncompleteSignature, "'X-Amz-Date' must be a 'SignedHeader'"},
      {"no date at all", [](Request& r) { drop_header(r, "X-Amz-Date"); },
       Outcome::kIncompleteSignature, "either a 'X-Amz-Date' or a 'Date'"},
      {"malformed date", [](Request& r) { set_header(r, "X-Amz-Date", "2026-11-24T21:27:48Z"); },
       Outcome::kIncompleteSignature, "ISO-8601"},
      {"signed header absent", [](Request& r) { drop_header(r, "X-Amzn-SageMaker-Accept"); },
       Outcome::kInvalidSignature, "does not carry"},
      {"scope date differs", with_auth(replace_in_auth("/20261124/", "/20261123/")),
       Outcome::kInvalidSignature, "Date in Credential scope does not match"},
      {"wrong service", with_auth(replace_in_auth("/sagemaker/", "/s3/")),
       Outcome::kInvalidSignature, "correct service: 'sagemaker'"},
      {"wrong terminator", with_auth(replace_in_auth("aws4_request", "aws5_request")),
       Outcome::kInvalidSignature, "valid terminator"},
  };
  for (const Case& c : cases) {
    Request r = boto3_request();
    c.mutate(r);
    const VerifyResult v = verify_boto3(r);
    EXPECT_EQ(v.outcome, c.outcome) << c.what << ": " << v.message;
    EXPECT_NE(v.message.find(c.message_part), std::string::npos) << c.what << ": " << v.message;
  }
}

TEST(SigV4, TimeWindowAndRegionPinning) {
  const VerifyResult expired = verify_boto3(boto3_request(), {}, boto3_time() + minutes(16));
  EXPECT_EQ(expired.outcome, Outcome::kInvalidSignature);
  EXPECT_NE(expired.message.find("Signature expired: 20261124T212748Z"), std::string::npos)
      << expired.message;
  const VerifyResult future = verify_boto3(boto3_request(), {}, boto3_time() - minutes(16));
  EXPECT_NE(future.message.find("not yet current"), std::string::npos) << future.message;
  const VerifyResult region =
      verify_boto3(boto3_request(), {"sagemaker", "eu-west-1", minutes(15)});
  EXPECT_EQ(region.outcome, Outcome::kInvalidSignature);
  EXPECT_NE(region.message.find("valid region"), std::string::npos);
  EXPECT_EQ(region.error_type(), "InvalidSignatureException");
}

TEST(SigV4, SessionTokenMustMatchWhenTheKeyHasOne) {
  CredentialStore store;
  store.add({"AKIDTEMP", "temp-secret", "the-token"});
  Request r;
  r.method = "POST";
  r.path = "/endpoints/e/invocations";
  r.headers = {{"Host", "localhost:8080"}};
  r.body = "{}";
  sign(r, {"AKIDTEMP", "temp-secret", "the-token"}, {"us-east-1", "sagemaker", boto3_time()});
  EXPECT_EQ(r.header("x-amz-security-token"), "the-token");
  EXPECT_TRUE(verify(r, store, {}, boto3_time()).ok());

  Request wrong = r;
  sign(wrong, {"AKIDTEMP", "temp-secret", "other-token"}, {"us-east-1", "sagemaker", boto3_time()});
  const VerifyResult v = verify(wrong, store, {}, boto3_time());
  EXPECT_EQ(v.outcome, Outcome::kUnrecognizedClient);
  EXPECT_EQ(v.error_type(), "UnrecognizedClientException");
}

TEST(SigV4, DateHeaderInsteadOfXAmzDate) {
  // botocore signs Date (not X-Amz-Date) when the request already has a Date header.
  CredentialStore store;
  store.add({kSuiteKey, kSuiteSecret, ""});
  Request r;
  r.method = "POST";
  r.path = "/endpoints/e/invocations";
  r.headers = {{"Host", "localhost:8080"}, {"Date", "Tue, 24 Nov 2026 21:27:48 -0000"}};
  r.body = "{}";
  const std::string date = "20261124";
  const std::vector<std::string> names = {"date", "host"};
  const std::string cr =
      canonical_request(r, *canonical_headers(r, names), "date;host", payload_hash(r));
  const std::string sig = hex(hmac_sha256(
      signing_key(kSuiteSecret, date, "us-east-1", "sagemaker"),
      string_to_sign("20261124T212748Z", "20261124/us-east-1/sagemaker/aws4_request", cr)));
  r.headers.emplace_back("Authorization",
                         "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/sagemaker/"
                         "aws4_request, SignedHeaders=date;host, Signature=" +
                             sig);
  EXPECT_TRUE(verify(r, store, {}, boto3_time()).ok())
      << verify(r, store, {}, boto3_time()).message;
  EXPECT_EQ(verify(r, store, {}, boto3_time() + minutes(20)).outcome, Outcome::kInvalidSignature);
}

TEST(SigV4, CanonicalFormsFollowBotocore) {
  EXPECT_EQ(canonical_uri(""), "/");
  EXPECT_EQ(canonical_uri("/endpoints/my-ep/invocations"), "/endpoints/my-ep/invocations");
  EXPECT_EQ(canonical_uri("//a/./b/../c//"), "/a/c/");
  EXPECT_EQ(canonical_uri("/a%20b"), "/a%2520b");  // non-S3 services encode the path twice
  EXPECT_EQ(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
  EXPECT_EQ(canonical_query("k=a%20b&flag"), "flag=&k=a%20b");
  EXPECT_EQ(uri_encode("a b/~", false), "a%20b%2F~");
  EXPECT_EQ(format_amz_date(boto3_time()), "20261124T212748Z");
  EXPECT_EQ(parse_http_date("Tue, 24 Nov 2026 21:27:48 GMT"), boto3_time());
  EXPECT_EQ(parse_http_date("24 Nov 2026 21:27:48 +0000"), boto3_time());
  for (const char* bad : {"", "20261324T212748Z", "20261124T252748Z", "20261124 212748Z",
                          "2026112aT212748Z", "20260230T000000Z"}) {
    EXPECT_EQ(parse_amz_date(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(parse_http_date("Tue, 24 Foo 2026 21:27:48 GMT"), std::nullopt);
  EXPECT_EQ(parse_http_date("Tue, 24 Nov 2026 21:27:48 PST"), std::nullopt);
}

TEST(SigV4, HostileAuthorizationHeadersNeverCrash) {
  const CredentialStore store = boto3_store();
  for (const char* value :
       {"", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256 ,,,,",
        "AWS4-HMAC-SHA256 =", "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=////, SignedHeaders=;;, Signature=zz",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-west-2/sagemaker/aws4_request, "
        "Credential=x, SignedHeaders=host, Signature=00"}) {
    Request r = boto3_request();
    set_header(r, "Authorization", value);
    const VerifyResult v = verify(r, store, {}, boto3_time());
    EXPECT_EQ(v.outcome, Outcome::kIncompleteSignature) << value << " -> " << v.message;
  }
}

TEST(SigV4, CredentialsFileWithSeveralProfiles) {
  const auto creds = parse_credentials_file(
      "# comment\n[default]\naws_access_key_id = AKID1\naws_secret_access_key=secret/1\n\n"
      "[ci]\n; another\nAWS_ACCESS_KEY_ID=AKID2\naws_secret_access_key = s2 \n"
      "aws_session_token = tok\nregion = us-east-1\n[config-only]\nregion = eu-west-1\n",
      "test");
  ASSERT_EQ(creds.size(), 2u);
  EXPECT_EQ(creds[0].access_key_id, "AKID1");
  EXPECT_EQ(creds[0].secret_access_key, "secret/1");
  EXPECT_EQ(creds[1].access_key_id, "AKID2");
  EXPECT_EQ(creds[1].secret_access_key, "s2");
  EXPECT_EQ(creds[1].session_token, "tok");
  EXPECT_THROW(parse_credentials_file("[p]\naws_access_key_id=A\n", "f"), std::runtime_error);
  EXPECT_THROW(parse_credentials_file("aws_access_key_id=A\n", "f"), std::runtime_error);
  EXPECT_THROW(parse_credentials_file("[p\n", "f"), std::runtime_error);
  EXPECT_THROW(parse_credentials_file("[p]\njunk\n", "f"), std::runtime_error);
  EXPECT_THROW(load_credentials_file("/nonexistent/credentials"), std::runtime_error);

  CredentialStore store;
  for (const auto& c : creds) store.add(c);
  store.add({"AKID1", "replaced", ""});
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.find("AKID1")->secret_access_key, "replaced");
  EXPECT_EQ(store.find("nope"), nullptr);
}

TEST(SigV4, CredentialsFromEnvironment) {
  ::setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
  ::setenv("AWS_SESSION_TOKEN", "envtoken", 1);
  const auto c = credentials_from_env();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->access_key_id, "AKIDENV");
  EXPECT_EQ(c->session_token, "envtoken");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  EXPECT_EQ(credentials_from_env(), std::nullopt);
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SESSION_TOKEN");
}

// ---- bridge for tests/test_sigv4_botocore.py ----

std::string from_hex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  }
  return out;
}

Request request_from_json(const nlohmann::json& j, std::string& body_storage) {
  Request r;
  r.method = j.at("method");
  r.path = j.at("path");
  r.query = j.value("query", "");
  for (const auto& h : j.at("headers")) r.headers.emplace_back(h.at(0), h.at(1));
  body_storage = from_hex(j.value("body_hex", ""));
  r.body = body_storage;
  return r;
}

Clock::time_point from_epoch(double s) {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)));
}

// Reads cases.json (written by the Python test), verifies/signs each case, writes results.json.
TEST(BotocoreFixture, SigV4) {
  const char* dir = std::getenv("LMSTREAM_SIGV4_FIXTURE_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "only run by tests/test_sigv4_botocore.py";
  std::ifstream in(std::string(dir) + "/cases.json");
  ASSERT_TRUE(in) << "no cases.json in " << dir;
  const nlohmann::json cases = nlohmann::json::parse(in);

  CredentialStore store;
  for (const auto& c : cases.at("store")) {
    store.add({c.at("access_key_id"), c.at("secret_access_key"), c.value("session_token", "")});
  }
  nlohmann::json results = {{"verify", nlohmann::json::object()},
                            {"sign", nlohmann::json::object()}};
  for (const auto& c : cases.at("verify")) {
    std::string body;
    const Request r = request_from_json(c, body);
    const VerifierConfig config{"sagemaker", c.value("region", ""), minutes(15)};
    const VerifyResult v = verify(r, store, config, from_epoch(c.at("now").get<double>()));
    results["verify"][c.at("name").get<std::string>()] = {
        {"outcome", v.ok() ? "ok" : std::string(v.error_type())}, {"message", v.message}};
  }
  for (const auto& c : cases.at("sign")) {
    std::string body;
    Request r = request_from_json(c, body);
    const auto& k = c.at("credentials");
    sign(r, {k.at("access_key_id"), k.at("secret_access_key"), k.value("session_token", "")},
         {c.at("region"), "sagemaker", from_epoch(c.at("now").get<double>())});
    results["sign"][c.at("name").get<std::string>()] = {{"headers", r.headers}};
  }
  std::ofstream(std::string(dir) + "/results.json") << results.dump(2);
}

}  // namespace
}  // namespace lmstream::sigv4

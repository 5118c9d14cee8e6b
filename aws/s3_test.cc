// S3 client tests: s3:// URL parsing; configuration from the environment and the shared files
// (AWS_PROFILE, [profile x] sections, endpoint and region precedence); request building
// (path-style against a custom endpoint, virtual-hosted against AWS, the signature of
// reference/model-sources.md §5.2's vectors, signed headers with a session token, ranges outside
// the signature, If-Match inside it); S3's error XML to one-line messages; ListObjectsV2 parsing;
// and the client against a small S3-shaped loopback server (paging with continuation tokens,
// ranged GET, HeadObject's body-less errors asked again as a GET).
#include "aws/s3.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "base/strings.h"
#include "http/server.h"

namespace lmstream::aws {
namespace {

namespace fs = std::filesystem;

sigv4::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

std::string header_of(const http::ClientRequest& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (base::iequals(n, name)) return v;
  }
  return "";
}

sigv4::Clock::time_point vector_time() { return *sigv4::parse_amz_date("20231101T120000Z"); }

// ---- URLs ----

TEST(S3Url, ParsesObjectsPrefixesAndBuckets) {
  S3Url o = parse_s3_url("s3://models/llama/model.tar.gz");
  EXPECT_EQ(o.bucket, "models");
  EXPECT_EQ(o.key, "llama/model.tar.gz");
  EXPECT_FALSE(o.is_prefix());
  EXPECT_EQ(o.str(), "s3://models/llama/model.tar.gz");
  S3Url p = parse_s3_url("s3://models/llama/model/");
  EXPECT_TRUE(p.is_prefix());
  EXPECT_EQ(p.key, "llama/model/");
  S3Url b = parse_s3_url("s3://my.bucket-1");
  EXPECT_EQ(b.bucket, "my.bucket-1");
  EXPECT_EQ(b.key, "");
  EXPECT_TRUE(b.is_prefix());
  EXPECT_EQ(parse_s3_url("S3://abc/sub dir/a+b").key, "sub dir/a+b");  // keys are literal
  EXPECT_TRUE(is_s3_url("s3://x"));
  EXPECT_FALSE(is_s3_url("/tmp/s3://x"));
}

TEST(S3Url, RejectsWhatS3WouldRefuse) {
  for (const char* bad : {"s3://", "s3:///key", "s3://ab/key", "s3://Models/key", "s3://-abc/k",
                          "s3://abc_/k", "http://models/key", "models/key"}) {
    EXPECT_THROW(parse_s3_url(bad), std::invalid_argument) << bad;
  }
  try {
    parse_s3_url("s3://My_Bucket/x");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'My_Bucket' is not an S3 bucket name"), std::string::npos)
        << e.what();
  }
}

// ---- configuration ----

class SharedFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lms-s3-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / ".aws");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / ".aws" / name) << text;
  }
  std::string home() const { return dir_.string(); }
  fs::path dir_;
};

TEST_F(SharedFiles, DefaultProfileFromHomeFiles) {
  write("credentials", "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = s1\n");
  write("config", "[default]\nregion = eu-west-1\n");
  S3Config c = S3Config::from_environment(env_of({{"HOME", home()}}));
  ASSERT_TRUE(c.credentials);
  EXPECT_EQ(c.credentials->access_key_id, "AKIDFILE");
  EXPECT_EQ(c.credentials->secret_access_key, "s1");
  EXPECT_NE(c.credentials_source.find(".aws/credentials [default]"), std::string::npos);
  EXPECT_EQ(c.region, "eu-west-1");
  EXPECT_TRUE(c.region_set);
  EXPECT_EQ(c.endpoint, "");
}

TEST_F(SharedFiles, NamedProfileWithConfigSectionAndSessionToken) {
  write("credentials",
        "[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key = d\n"
        "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = s2\n"
        "aws_session_token = tok\n");
  write("config",
        "[default]\nregion = eu-west-1\n[profile dev]\nregion = ap-south-1\n"
        "endpoint_url = http://127.0.0.1:9000\n[profile cfgonly]\naws_access_key_id = AKIDCFG\n"
        "aws_secret_access_key = s3\n");
  S3Config dev = S3Config::from_environment(env_of({{"HOME", home()}, {"AWS_PROFILE", "dev"}}));
  EXPECT_EQ(dev.profile, "dev");
  ASSERT_TRUE(dev.credentials);
  EXPECT_EQ(dev.credentials->access_key_id, "AKIDDEV");
  EXPECT_EQ(dev.credentials->session_token, "tok");
  EXPECT_EQ(dev.region, "ap-south-1");
  EXPECT_EQ(dev.endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(dev.endpoint_source, "endpoint_url of AWS profile 'dev'");

  // Keys only in the config file's [profile x] section.
  S3Config cfg = S3Config::from_environment(env_of({{"HOME", home()}, {"AWS_PROFILE", "cfgonly"}}));
  ASSERT_TRUE(cfg.credentials);
  EXPECT_EQ(cfg.credentials->access_key_id, "AKIDCFG");
  EXPECT_NE(cfg.credentials_source.find("[profile cfgonly]"), std::string::npos);
  EXPECT_FALSE(cfg.region_set);
  EXPECT_EQ(cfg.region, "us-east-1");

  // Environment keys beat even a named profile; AWS_REGION beats AWS_DEFAULT_REGION beats it.
  S3Config env = S3Config::from_environment(env_of({{"HOME", home()},
                                                    {"AWS_PROFILE", "dev"},
                                                    {"AWS_ACCESS_KEY_ID", "AKIDENV"},
                                                    {"AWS_SECRET_ACCESS_KEY", "e"},
                                                    {"AWS_DEFAULT_REGION", "us-west-1"}}));
  EXPECT_EQ(env.credentials->access_key_id, "AKIDENV");
  EXPECT_EQ(env.credentials->session_token, "");
  EXPECT_EQ(env.credentials_source, "environment (AWS_ACCESS_KEY_ID)");
  EXPECT_EQ(env.region, "us-west-1");
  S3Config both = S3Config::from_environment(
      env_of({{"HOME", home()}, {"AWS_REGION", "us-west-2"}, {"AWS_DEFAULT_REGION", "us-west-1"}}));
  EXPECT_EQ(both.region, "us-west-2");
}

TEST_F(SharedFiles, ExplicitFilePathsAndMissingProfiles) {
  std::ofstream(dir_ / "creds") << "[p]\naws_access_key_id = AKIDP\naws_secret_access_key = x\n";
  S3Config c = S3Config::from_environment(env_of({{"HOME", "/nonexistent"},
                                                  {"AWS_SHARED_CREDENTIALS_FILE", (dir_ / "creds")},
                                                  {"AWS_CONFIG_FILE", (dir_ / "none")},
                                                  {"AWS_PROFILE", "p"}}));
  EXPECT_EQ(c.credentials->access_key_id, "AKIDP");
  // No files and no keys: an anonymous client, not an error.
  S3Config anon = S3Config::from_environment(env_of({{"HOME", "/nonexistent"}}));
  EXPECT_FALSE(anon.credentials);
  // A profile asked for by name that exists nowhere is an error naming both files.
  try {
    S3Config::from_environment(env_of({{"HOME", home()}, {"AWS_PROFILE", "nope"}}));
    FAIL();
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("AWS profile 'nope'"), std::string::npos) << m;
    EXPECT_NE(m.find(".aws/config"), std::string::npos) << m;
  }
  write("credentials", "[default]\naws_access_key_id = AKIDHALF\n");
  try {
    S3Config::from_environment(env_of({{"HOME", home()}}));
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("needs both aws_access_key_id and aws_secret_access_key"),
              std::string::npos)
        << e.what();
  }
}

TEST(S3Config, EndpointPrecedence) {
  S3Config s = S3Config::from_environment(env_of({{"HOME", "/nonexistent"},
                                                  {"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1/"},
                                                  {"AWS_ENDPOINT_URL", "http://127.0.0.1:2"}}));
  EXPECT_EQ(s.endpoint, "http://127.0.0.1:1");
  EXPECT_EQ(s.endpoint_source, "AWS_ENDPOINT_URL_S3");
  S3Config g = S3Config::from_environment(
      env_of({{"HOME", "/nonexistent"}, {"AWS_ENDPOINT_URL", "http://127.0.0.1:2"}}));
  EXPECT_EQ(g.endpoint, "http://127.0.0.1:2");
  S3Config ignored =
      S3Config::from_environment(env_of({{"HOME", "/nonexistent"},
                                         {"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1"},
                                         {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"}}));
  EXPECT_EQ(ignored.endpoint, "");
  EXPECT_THROW(S3Config::from_environment(env_of(
                   {{"HOME", "/nonexistent"}, {"AWS_ENDPOINT_URL_S3", "ftp://127.0.0.1:1"}})),
               std::runtime_error);
}

// ---- request building ----

S3Config loopback_config(int port) {
  S3Config c;
  c.endpoint = "http://127.0.0.1:" + std::to_string(port);
  c.endpoint_source = "AWS_ENDPOINT_URL_S3";
  c.credentials = sigv4::Credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  c.credentials_source = "environment (AWS_ACCESS_KEY_ID)";
  return c;
}

TEST(S3Request, PathStyleObjectRequestMatchesTheReferenceSignature) {
  S3Client client(loopback_config(5056));
  http::ClientRequest r = client.object_request("models", "llama/model/sub dir/tokenizer+x.model",
                                                std::nullopt, "GET", "", vector_time());
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.url, "http://127.0.0.1:5056/models/llama/model/sub%20dir/tokenizer%2Bx.model");
  EXPECT_EQ(header_of(r, "Host"), "127.0.0.1:5056");
  EXPECT_EQ(header_of(r, "x-amz-content-sha256"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(header_of(r, "X-Amz-Date"), "20231101T120000Z");
  EXPECT_EQ(header_of(r, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231101/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
            "Signature=3b3a98b6a76ea5ab571c7ffbeb708dfcc0e7437cc567b83894e695e88077903a");
  EXPECT_FALSE(r.range);
}

TEST(S3Request, ListQueryIsSignedAsTheReferenceVector) {
  // The §5.2 list vector has no encoding-type; sign it through the same S3 rules.
  sigv4::Request r;
  r.method = "GET";
  r.path = "/models";
  r.query = "continuation-token=a%2Fb%2Bc%3D&list-type=2&prefix=llama%2Fmodel%2F";
  r.headers = {
      {"Host", "127.0.0.1:5056"},
      {"x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}};
  sigv4::SignOptions so;
  so.region = "us-east-1";
  so.service = "s3";
  so.now = vector_time();
  so.s3 = true;
  sigv4::sign(r, *loopback_config(1).credentials, so);
  EXPECT_NE(std::string(*r.header("authorization"))
                .find("Signature=967480aa6530237bbf376720105150efa75cd97b64e789149d10ff66e82cb177"),
            std::string::npos);

  S3Client client(loopback_config(5056));
  http::ClientRequest list = client.list_request("models", "llama/model/", "a/b+c=", 2);
  EXPECT_EQ(list.url,
            "http://127.0.0.1:5056/models?list-type=2&prefix=llama%2Fmodel%2F&continuation-token="
            "a%2Fb%2Bc%3D&max-keys=2&encoding-type=url");
  EXPECT_EQ(header_of(list, "Host"), "127.0.0.1:5056");
}

TEST(S3Request, VirtualHostedAgainstAwsAndPathStyleForDottedBuckets) {
  S3Config c;
  c.region = "us-west-2";
  c.region_set = true;
  c.credentials = sigv4::Credentials{"AKID", "secret", "session-token"};
  S3Client client(c);
  http::ClientRequest r = client.object_request("models", "a/b.gguf");
  EXPECT_EQ(r.url, "https://models.s3.us-west-2.amazonaws.com/a/b.gguf");
  EXPECT_EQ(header_of(r, "Host"), "models.s3.us-west-2.amazonaws.com");
  EXPECT_EQ(header_of(r, "X-Amz-Security-Token"), "session-token");
  const std::string auth = header_of(r, "Authorization");
  EXPECT_NE(auth.find("/us-west-2/s3/aws4_request"), std::string::npos) << auth;
  EXPECT_NE(auth.find("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"),
            std::string::npos)
      << auth;
  EXPECT_EQ(client.object_url("my.models", "k"), "https://s3.us-west-2.amazonaws.com/my.models/k");
  EXPECT_EQ(client.list_request("models", "p/").url.substr(0, 41),
            "https://models.s3.us-west-2.amazonaws.com");
  c.force_path_style = true;
  EXPECT_EQ(S3Client(c).object_url("models", "k"), "https://s3.us-west-2.amazonaws.com/models/k");
  S3Config global;  // no region configured: AWS's global endpoint, signed for us-east-1
  EXPECT_EQ(S3Client(global).object_url("models", "k"), "https://models.s3.amazonaws.com/k");
  // No credentials: an unsigned (anonymous) request.
  http::ClientRequest anon = S3Client(global).object_request("models", "k");
  EXPECT_EQ(header_of(anon, "Authorization"), "");
  // An endpoint with a base path keeps it.
  S3Config based = loopback_config(9000);
  based.endpoint = "http://127.0.0.1:9000/s3";
  EXPECT_EQ(S3Client(based).object_url("models", "k"), "http://127.0.0.1:9000/s3/models/k");
}

TEST(S3Request, RangeTravelsOutsideTheSignatureAndIfMatchInside) {
  S3Client client(loopback_config(5056));
  http::ClientRequest r = client.object_request("models", "big.gguf", http::ByteRange{100, 199},
                                                "GET", "\"0123abc\"", vector_time());
  ASSERT_TRUE(r.range);
  EXPECT_EQ(r.range->first, 100u);
  EXPECT_EQ(*r.range->last, 199u);
  EXPECT_EQ(header_of(r, "Range"), "");
  EXPECT_EQ(header_of(r, "If-Match"), "\"0123abc\"");
  const std::string auth = header_of(r, "Authorization");
  EXPECT_NE(auth.find("SignedHeaders=host;if-match;x-amz-content-sha256;x-amz-date,"),
            std::string::npos)
      << auth;
  // The same object without If-Match signs differently: the header is covered.
  EXPECT_NE(
      header_of(client.object_request("models", "big.gguf", std::nullopt, "GET", "", vector_time()),
                "Authorization"),
      auth);
  http::ClientRequest head = client.object_request("models", "big.gguf", std::nullopt, "HEAD");
  EXPECT_EQ(head.method, "HEAD");
  EXPECT_THROW(client.object_request("models", ""), std::invalid_argument);
}

// ---- errors ----

std::string error_xml(const std::string& code, const std::string& message,
                      const std::string& extra = "") {
  return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Error><Code>" + code + "</Code><Message>" +
         message + "</Message>" + extra + "<RequestId>r1</RequestId><HostId>h</HostId></Error>";
}

std::string describe(int status, const std::string& body, const std::string& url,
                     bool listing = false, S3Config config = loopback_config(5056),
                     http::ResponseHead head = {}) {
  S3Error e = describe_s3_error(status, head, body, parse_s3_url(url), listing, config);
  const std::string m = e.what();
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;  // one line
  return e.code() + " | " + m;
}

TEST(S3Errors, EachCodeBecomesOneLineNamingTheObjectAndWhatToDo) {
  const std::string nsk =
      describe(404, error_xml("NoSuchKey", "The specified key does not exist.", "<Key>x</Key>"),
               "s3://models/llama/model");
  EXPECT_EQ(nsk.substr(0, 12), "NoSuchKey | ");
  EXPECT_NE(nsk.find("s3://models/llama/model: no such object in bucket 'models'"),
            std::string::npos)
      << nsk;
  EXPECT_NE(nsk.find("give the prefix: s3://models/llama/model/"), std::string::npos) << nsk;

  const std::string nsb = describe(
      404, error_xml("NoSuchBucket", "The specified bucket does not exist", "<BucketName>nob"),
      "s3://nob/x");
  // Malformed XML above (unclosed BucketName): no <Error> parsed, so a 404 without details.
  EXPECT_EQ(nsb.substr(0, 11), "HTTP 404 | ");
  const std::string nsb2 = describe(404,
                                    error_xml("NoSuchBucket", "The specified bucket does not exist",
                                              "<BucketName>nob</BucketName>"),
                                    "s3://nob/x");
  EXPECT_NE(nsb2.find("bucket 'nob' does not exist at http://127.0.0.1:5056 (AWS_ENDPOINT_URL_S3) "
                      "(NoSuchBucket)"),
            std::string::npos)
      << nsb2;

  const std::string sig =
      describe(403, error_xml("SignatureDoesNotMatch", "The request signature we calculated..."),
               "s3://models/k");
  EXPECT_NE(sig.find("the secret key does not belong to access key AKIDEXAMPLE from environment "
                     "(AWS_ACCESS_KEY_ID); check AWS_SECRET_ACCESS_KEY"),
            std::string::npos)
      << sig;
  const std::string akid =
      describe(403, error_xml("InvalidAccessKeyId", "The AWS Access Key Id ..."), "s3://models/k");
  EXPECT_NE(akid.find("access key AKIDEXAMPLE from environment (AWS_ACCESS_KEY_ID) is not known"),
            std::string::npos)
      << akid;
  const std::string denied =
      describe(403, error_xml("AccessDenied", "Access Denied"), "s3://models/p/", true);
  EXPECT_NE(denied.find("access denied"), std::string::npos) << denied;
  EXPECT_NE(denied.find("s3:ListBucket on bucket 'models'"), std::string::npos) << denied;

  S3Config anon;
  const std::string bare = describe(403, "", "s3://models/k", false, anon);
  EXPECT_EQ(bare.substr(0, 11), "HTTP 403 | ");
  EXPECT_NE(bare.find("no AWS credentials were found"), std::string::npos) << bare;

  http::ResponseHead head;
  head.headers = {{"x-amz-bucket-region", "eu-central-1"}};
  const std::string region =
      describe(301, error_xml("PermanentRedirect", "The bucket you are attempting..."),
               "s3://models/k", false, anon, head);
  EXPECT_NE(region.find("set AWS_REGION=eu-central-1"), std::string::npos) << region;

  S3Error slow = describe_s3_error(503, {}, error_xml("SlowDown", "Please reduce your rate"),
                                   parse_s3_url("s3://models/k"), false, anon);
  EXPECT_TRUE(slow.retryable());
  EXPECT_NE(std::string(slow.what()).find("try again later"), std::string::npos);
  S3Error nsk_e = describe_s3_error(404, {}, error_xml("NoSuchKey", "x"),
                                    parse_s3_url("s3://models/k"), false, anon);
  EXPECT_FALSE(nsk_e.retryable());
}

TEST(S3Errors, ParsesTheErrorDocumentOnly) {
  auto e = parse_error_xml(error_xml("NoSuchKey", "a &amp; b", "<Key>k&lt;1</Key>"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "NoSuchKey");
  EXPECT_EQ(e->message, "a & b");
  EXPECT_EQ(e->key, "k<1");
  EXPECT_EQ(e->request_id, "r1");
  EXPECT_FALSE(parse_error_xml(""));
  EXPECT_FALSE(parse_error_xml("<html><body>502 Bad Gateway</body></html>"));
  EXPECT_FALSE(parse_error_xml("<Error><Code>"));
}

// ---- ListObjectsV2 ----

std::string list_xml(const std::vector<std::pair<std::string, long>>& keys, bool truncated,
                     const std::string& token, bool encoded = true) {
  std::string x =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
      "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsTruncated>" +
      std::string(truncated ? "true" : "false") + "</IsTruncated>";
  for (const auto& [k, size] : keys) {
    x += "<Contents><Key>" + k +
         "</Key><LastModified>2026-12-01T19:22:17.000Z</LastModified><ETag>&quot;"
         "9e107d9d372bb6826bd81d3542a419d6&quot;</ETag><Size>" +
         std::to_string(size) + "</Size><StorageClass>STANDARD</StorageClass></Contents>";
  }
  x += "<Name>models</Name><Prefix>llama/model/</Prefix><MaxKeys>2</MaxKeys>";
  if (encoded) x += "<EncodingType>url</EncodingType>";
  x += "<KeyCount>" + std::to_string(keys.size()) + "</KeyCount>";
  if (!token.empty()) x += "<NextContinuationToken>" + token + "</NextContinuationToken>";
  return x + "</ListBucketResult>";
}

TEST(S3List, ParsesKeysSizesEtagsAndTheContinuationToken) {
  S3ListPage p = parse_list_objects_v2(
      list_xml({{"llama/model/sub%20dir/tokenizer%2Bx.model", 22}, {"llama/model/a+b", 5}}, true,
               "3d0995cd"));
  ASSERT_EQ(p.objects.size(), 2u);
  EXPECT_EQ(p.objects[0].key, "llama/model/sub dir/tokenizer+x.model");
  EXPECT_EQ(p.objects[0].size, 22u);
  EXPECT_EQ(p.objects[0].etag, "9e107d9d372bb6826bd81d3542a419d6");
  EXPECT_TRUE(p.objects[0].etag_is_md5());
  EXPECT_EQ(p.objects[0].last_modified, "2026-12-01T19:22:17.000Z");
  EXPECT_EQ(p.objects[1].key, "llama/model/a b");  // '+' is a space in encoding-type=url
  EXPECT_TRUE(p.truncated);
  EXPECT_EQ(p.next_continuation_token, "3d0995cd");
  S3ListPage raw = parse_list_objects_v2(list_xml({{"a%20b", 1}}, false, "", false));
  EXPECT_EQ(raw.objects[0].key, "a%20b");  // not encoded: taken literally
  EXPECT_FALSE(raw.truncated);
  S3Object multipart{"k", 1, "d41d8cd98f00b204e9800998ecf8427e-2", ""};
  EXPECT_FALSE(multipart.etag_is_md5());
  EXPECT_THROW(parse_list_objects_v2("<Error><Code>NoSuchBucket</Code></Error>"),
               std::runtime_error);
  EXPECT_THROW(parse_list_objects_v2(list_xml({}, true, "")), std::runtime_error);
  EXPECT_THROW(parse_list_objects_v2(list_xml({{"k", -1}}, false, "")), std::runtime_error);
}

// ---- against a loopback S3-shaped server ----

class FakeS3 : public ::testing::Test {
 protected:
  void SetUp() override {
    routes_.add_prefix("GET", "/models", [this](std::shared_ptr<http::Exchange> ex) {
      record(ex->request());
      const http::HttpRequest& rq = ex->request();
      if (rq.path == "/models") return list(ex);
      const std::string key = base::percent_decode(rq.path.substr(8));
      auto it = objects_.find(key);
      if (it == objects_.end()) {
        return ex->respond({404,
                            {{"Content-Type", "application/xml"}},
                            error_xml("NoSuchKey", "The specified key does not exist.",
                                      "<Key>" + key + "</Key>")});
      }
      const std::string* range = rq.header("Range");
      if (!range) return ex->respond({200, {{"ETag", "\"abc\""}}, it->second});
      const std::string spec = range->substr(6);
      const size_t dash = spec.find('-');
      const size_t first = std::stoul(spec.substr(0, dash));
      size_t last =
          dash + 1 < spec.size() ? std::stoul(spec.substr(dash + 1)) : it->second.size() - 1;
      last = std::min(last, it->second.size() - 1);
      ex->respond(
          {206,
           {{"Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                                  std::to_string(it->second.size())}},
           it->second.substr(first, last - first + 1)});
    });
    routes_.add_prefix("HEAD", "/models", [this](std::shared_ptr<http::Exchange> ex) {
      record(ex->request());
      const std::string key = base::percent_decode(ex->request().path.substr(8));
      auto it = objects_.find(key);
      if (it == objects_.end()) return ex->respond({404, {}, ""});
      ex->respond({200,
                   {{"ETag", "\"9e107d9d372bb6826bd81d3542a419d6\""},
                    {"Last-Modified", "Tue, 01 Dec 2026 19:22:17 GMT"},
                    {"Content-Length", std::to_string(it->second.size())}},
                   ""});
    });
    routes_.add_prefix("GET", "/nob", [this](std::shared_ptr<http::Exchange> ex) {
      record(ex->request());
      ex->respond({404,
                   {{"Content-Type", "application/xml"}},
                   error_xml("NoSuchBucket", "The specified bucket does not exist",
                             "<BucketName>nob</BucketName>")});
    });
    routes_.add_prefix("GET", "/flaky", [this](std::shared_ptr<http::Exchange> ex) {
      record(ex->request());
      if (flaky_failures_ > 0) {
        --flaky_failures_;
        return ex->respond({503,
                            {{"Content-Type", "application/xml"}},
                            error_xml("SlowDown", "Please reduce your request rate.")});
      }
      ex->respond({200, {}, list_xml({{"p/a", 1}}, false, "")});
    });
    routes_.add_prefix("HEAD", "/kms", [this](std::shared_ptr<http::Exchange> ex) {
      record(ex->request());
      ex->respond({200,
                   {{"ETag", "\"9e107d9d372bb6826bd81d3542a419d6\""},
                    {"x-amz-server-side-encryption", "aws:kms"},
                    {"Content-Length", "5"}},
                   ""});
    });
    routes_.add("GET", "/creds", [this](std::shared_ptr<http::Exchange> ex) {
      record(ex->request());
      const std::string* auth = ex->request().header("Authorization");
      if (!auth || *auth != "container-token") return ex->respond({403, {}, "no"});
      ex->respond({200,
                   {{"Content-Type", "application/json"}},
                   R"({"AccessKeyId":"ASIAROLE","SecretAccessKey":"rs","Token":"st",)"
                   R"("Expiration":"2026-12-02T06:00:00Z"})"});
    });
    objects_ = {{"llama/model/config.json", "{\"a\":1}"},
                {"llama/model/model.safetensors", "0123456789"}};
    server_ = std::make_unique<http::HttpServer>(ioc_, routes_, http::HttpLimits{}, nullptr);
    port_ = server_->listen("127.0.0.1", 0);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    server_->close_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ioc_.stop();
    thread_.join();
  }
  void record(const http::HttpRequest& r) {
    std::lock_guard lock(mu_);
    seen_.push_back(r.method + " " + r.target);
    const std::string* auth = r.header("Authorization");
    if (!auth || auth->find("/s3/aws4_request") == std::string::npos) unsigned_++;
  }
  // Three pages of two keys, plus a console "folder" key; the token is the page number.
  void list(const std::shared_ptr<http::Exchange>& ex) {
    std::string q = ex->request().query;
    int page = 0;
    if (size_t at = q.find("continuation-token="); at != std::string::npos) {
      page = std::stoi(q.substr(at + 19, 1));
    }
    static const std::vector<std::vector<std::pair<std::string, long>>> pages = {
        {{"llama/model/", 0}, {"llama/model/config.json", 7}},
        {{"llama/model/model.safetensors", 10}, {"llama/model/sub%20dir/", 0}},
        {{"llama/model/sub%20dir/tokenizer%2Bx.model", 3}}};
    const bool last = page == 2;
    ex->respond({200,
                 {{"Content-Type", "application/xml"}},
                 list_xml(pages[page], !last, last ? "" : std::to_string(page + 1))});
  }

  boost::asio::io_context ioc_;
  http::RouteTable routes_;
  std::unique_ptr<http::HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::map<std::string, std::string> objects_;
  std::mutex mu_;
  std::vector<std::string> seen_;
  int unsigned_ = 0;
  std::atomic<int> flaky_failures_{0};
};

TEST_F(FakeS3, ListFollowsContinuationTokensAndSkipsFolderKeys) {
  S3Client client(loopback_config(port_));
  std::vector<S3Object> all = client.list_objects(parse_s3_url("s3://models/llama/model/"), 2);
  std::vector<std::string> keys;
  for (const S3Object& o : all) keys.push_back(o.key);
  EXPECT_EQ(keys,
            (std::vector<std::string>{"llama/model/config.json", "llama/model/model.safetensors",
                                      "llama/model/sub dir/tokenizer+x.model"}));
  std::lock_guard lock(mu_);
  ASSERT_EQ(seen_.size(), 3u);
  EXPECT_EQ(seen_[0].find("continuation-token"), std::string::npos);
  EXPECT_NE(seen_[1].find("continuation-token=1"), std::string::npos) << seen_[1];
  EXPECT_NE(seen_[2].find("continuation-token=2"), std::string::npos) << seen_[2];
  EXPECT_NE(seen_[0].find("prefix=llama%2Fmodel%2F"), std::string::npos) << seen_[0];
  EXPECT_EQ(unsigned_, 0);
}

TEST_F(FakeS3, GetWithRangeHeadAndErrors) {
  S3Client client(loopback_config(port_));
  std::string got;
  http::ResponseHead h =
      client.get_object(parse_s3_url("s3://models/llama/model/model.safetensors"),
                        http::ByteRange{2, 5}, [&](std::string_view p) { got.append(p); });
  EXPECT_EQ(h.status, 206);
  EXPECT_EQ(got, "2345");

  S3Object o = client.head_object(parse_s3_url("s3://models/llama/model/model.safetensors"));
  EXPECT_EQ(o.size, 10u);
  EXPECT_EQ(o.etag, "9e107d9d372bb6826bd81d3542a419d6");
  EXPECT_TRUE(o.etag_is_md5());

  // HEAD's 404 has no body: the client asks again with a GET and reports S3's code.
  try {
    client.head_object(parse_s3_url("s3://models/llama/missing.gguf"));
    FAIL();
  } catch (const S3Error& e) {
    EXPECT_EQ(e.code(), "NoSuchKey");
    EXPECT_EQ(e.status(), 404);
    EXPECT_NE(std::string(e.what()).find("s3://models/llama/missing.gguf: no such object"),
              std::string::npos)
        << e.what();
  }
  std::string none;
  try {
    client.get_object(parse_s3_url("s3://nob/x"), std::nullopt,
                      [&](std::string_view p) { none.append(p); });
    FAIL();
  } catch (const S3Error& e) {
    EXPECT_EQ(e.code(), "NoSuchBucket");
  }
  EXPECT_EQ(none, "");  // an error body never reaches the caller
  try {
    client.list_objects(parse_s3_url("s3://nob/p/"));
    FAIL();
  } catch (const S3Error& e) {
    EXPECT_EQ(e.code(), "NoSuchBucket");
  }
}

TEST_F(FakeS3, RetryableErrorsAreRetriedWithBackoffOthersAreNot) {
  S3Client client(loopback_config(port_), {}, 3, std::chrono::milliseconds(10));
  flaky_failures_ = 2;  // two SlowDown answers, then the listing
  std::vector<S3Object> objs = client.list_objects(parse_s3_url("s3://flaky/p/"));
  ASSERT_EQ(objs.size(), 1u);
  EXPECT_EQ(objs[0].key, "p/a");
  flaky_failures_ = 3;  // more than the attempts: the last error is reported
  try {
    client.list_objects(parse_s3_url("s3://flaky/p/"));
    FAIL();
  } catch (const S3Error& e) {
    EXPECT_EQ(e.code(), "SlowDown");
    EXPECT_TRUE(e.retryable());
  }
  flaky_failures_ = 0;
  {
    std::lock_guard lock(mu_);
    seen_.clear();
  }
  EXPECT_THROW(client.head_object(parse_s3_url("s3://models/none")), S3Error);
  std::lock_guard lock(mu_);
  EXPECT_EQ(seen_.size(), 2u);  // HEAD + the GET that learns the code; NoSuchKey is not retried
}

TEST_F(FakeS3, ContainerCredentialsProvider) {
  const std::string url = "http://127.0.0.1:" + std::to_string(port_) + "/creds";
  S3Config c = S3Config::from_environment(
      env_of({{"HOME", "/nonexistent"},
              {"AWS_CONTAINER_CREDENTIALS_FULL_URI", url},
              {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token"}}));
  ASSERT_TRUE(c.credentials);
  EXPECT_EQ(c.credentials->access_key_id, "ASIAROLE");
  EXPECT_EQ(c.credentials->secret_access_key, "rs");
  EXPECT_EQ(c.credentials->session_token, "st");
  EXPECT_EQ(c.credentials_source, "container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI)");
  // Keys in the environment win; the provider is not even asked.
  S3Config e = S3Config::from_environment(env_of({{"HOME", "/nonexistent"},
                                                  {"AWS_ACCESS_KEY_ID", "AKIDENV"},
                                                  {"AWS_SECRET_ACCESS_KEY", "x"},
                                                  {"AWS_CONTAINER_CREDENTIALS_FULL_URI", url}}));
  EXPECT_EQ(e.credentials->access_key_id, "AKIDENV");
  // A token read from a file; a wrong token is an error naming the URL.
  const fs::path tok = fs::temp_directory_path() / ("lms-ctoken-" + std::to_string(::getpid()));
  std::ofstream(tok) << "container-token\n";
  EXPECT_EQ(container_credentials(env_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", url},
                                          {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tok}}))
                ->access_key_id,
            "ASIAROLE");
  fs::remove(tok);
  try {
    container_credentials(env_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", url},
                                  {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "bad"}}));
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 403"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/creds"), std::string::npos) << e.what();
  }
  // Plain http only to loopback or the container host.
  EXPECT_THROW(container_credentials(
                   env_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.169.254/x"}})),
               std::runtime_error);
  EXPECT_FALSE(container_credentials(env_of({})));
}

TEST_F(FakeS3, KmsEncryptedObjectsHaveNoMd5Etag) {
  S3Client client(loopback_config(port_));
  S3Object o = client.head_object(parse_s3_url("s3://kms/obj"));
  EXPECT_EQ(o.server_side_encryption, "aws:kms");
  EXPECT_EQ(o.etag, "9e107d9d372bb6826bd81d3542a419d6");
  EXPECT_FALSE(o.etag_is_md5());
  o.server_side_encryption = "AES256";  // SSE-S3 keeps MD5 ETags
  EXPECT_TRUE(o.etag_is_md5());
  o.customer_key = true;
  EXPECT_FALSE(o.etag_is_md5());
}

}  // namespace
}  // namespace lmstream::aws

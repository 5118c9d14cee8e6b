// Authentication rules: which paths need what, SigV4 on /endpoints/* (signed with aws/sigv4's own
// signer: accepted, wrong secret, unknown key, expired, tampered body), the bearer API key on the
// other routes, and loopback detection for the start-up warning.
#include "server/auth.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace lmstream::server {
namespace {

HttpRequest signed_request(const std::string& key, const std::string& secret,
                           sigv4::Clock::time_point when,
                           std::string body = "{\"inputs\":\"hi\"}") {
  sigv4::Request r;
  r.method = "POST";
  r.path = "/endpoints/my-ep/invocations";
  r.headers = {{"Host", "127.0.0.1:8080"}, {"Content-Type", "application/json"}};
  r.body = body;
  sigv4::SignOptions o;
  o.region = "us-east-1";
  o.now = when;
  sigv4::sign(r, {key, secret, ""}, o);
  HttpRequest h;
  h.method = "POST";
  h.target = h.path = r.path;
  h.headers = r.headers;
  h.body = body;
  return h;
}

std::string error_type(const std::optional<HttpResponse>& r) {
  if (!r) return "";
  for (auto& [k, v] : r->headers)
    if (k == "x-amzn-ErrorType") return v;
  return "(none)";
}

Auth make(std::string api_key = "") {
  sigv4::CredentialStore s;
  s.add({"AKID1", "secret1", ""});
  s.add({"AKID2", "secret2", ""});
  return Auth(s, "us-east-1", std::move(api_key));
}

TEST(Auth, SigV4OnEndpoints) {
  Auth a = make();
  auto now = sigv4::Clock::now();
  EXPECT_FALSE(a.check(signed_request("AKID1", "secret1", now), now));
  EXPECT_FALSE(a.check(signed_request("AKID2", "secret2", now), now));
  EXPECT_EQ(error_type(a.check(signed_request("AKID1", "wrong", now), now)),
            "InvalidSignatureException");
  EXPECT_EQ(error_type(a.check(signed_request("AKID9", "secret1", now), now)),
            "UnrecognizedClientException");
  auto old = signed_request("AKID1", "secret1", now - std::chrono::minutes(16));
  auto r = a.check(old, now);
  EXPECT_EQ(error_type(r), "InvalidSignatureException");
  EXPECT_EQ(r->status, 403);
  EXPECT_FALSE(nlohmann::json::parse(r->body)["message"].get<std::string>().empty());
  auto tampered = signed_request("AKID1", "secret1", now);
  tampered.body += " ";
  EXPECT_EQ(error_type(a.check(tampered, now)), "InvalidSignatureException");
  HttpRequest bare;
  bare.method = "POST";
  bare.target = bare.path = "/endpoints/my-ep/invocations";
  EXPECT_EQ(error_type(a.check(bare, now)), "IncompleteSignatureException");
  // Other routes are open without an API key; probes always.
  HttpRequest gen;
  gen.method = "POST";
  gen.target = gen.path = "/generate";
  EXPECT_FALSE(a.check(gen, now));
}

TEST(Auth, BearerKey) {
  Auth a = make("k-123");
  auto now = sigv4::Clock::now();
  HttpRequest r;
  r.method = "POST";
  r.target = r.path = "/generate";
  auto no = a.check(r, now);
  ASSERT_TRUE(no);
  EXPECT_EQ(no->status, 401);
  EXPECT_NE(nlohmann::json::parse(no->body)["error"].get<std::string>().find("Bearer"),
            std::string::npos);
  r.headers = {{"Authorization", "Bearer k-12"}};
  EXPECT_TRUE(a.check(r, now));
  r.headers = {{"Authorization", "Bearer k-1234"}};
  EXPECT_TRUE(a.check(r, now));
  r.headers = {{"Authorization", "Basic k-123"}};
  EXPECT_TRUE(a.check(r, now));
  r.headers = {{"authorization", "Bearer k-123"}};
  EXPECT_FALSE(a.check(r, now));
  for (const char* p : {"/ping", "/health"}) {
    HttpRequest probe;
    probe.method = "GET";
    probe.target = probe.path = p;
    EXPECT_FALSE(a.check(probe, now)) << p;
  }
  // /endpoints/* still wants SigV4 when keys are configured.
  HttpRequest ep = r;
  ep.target = ep.path = "/endpoints/my-ep/invocations";
  EXPECT_EQ(error_type(a.check(ep, now)), "IncompleteSignatureException");
  // Without AWS keys the API key guards /endpoints/* too, in the AWS error shape.
  Auth only_key({}, "", "k-123");
  EXPECT_FALSE(only_key.check(ep, now));
  ep.headers.clear();
  EXPECT_EQ(error_type(only_key.check(ep, now)), "UnrecognizedClientException");
  Auth none({}, "", "");
  EXPECT_FALSE(none.any());
  EXPECT_FALSE(none.check(ep, now));
}

TEST(Auth, Paths) {
  EXPECT_TRUE(is_sagemaker_path("/endpoints/x/invocations"));
  EXPECT_FALSE(is_sagemaker_path("/endpoints"));
  EXPECT_FALSE(is_sagemaker_path("/invocations"));
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.9.9.9"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("::"));
  EXPECT_FALSE(is_loopback_host("10.0.0.1"));
  EXPECT_FALSE(is_loopback_host("not an address"));
}

TEST(Auth, CredentialsFileErrorsAreClear) {
  ServeConfig c;
  c.aws_credentials_file = "/nonexistent/lmstream/credentials";
  try {
    Auth a(c);
    FAIL() << "accepted a missing credentials file";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--aws-credentials-file"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lmstream::server

// The status table and every error kind on every wire: TGI (JSON / axum plain text / SSE event),
// LMI (DJL's JSON answers and 424 chunk), OpenAI (response and stream event), SageMaker (rest-json
// and the event-stream ModelStreamError), byte-exact where today's clients depend on the bytes.
#include "server/errors.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "aws/eventstream.h"
#include "aws/sigv4.h"
#include "server/sagemaker.h"

namespace lmstream::server {
namespace {

namespace sigv4 = ::lmstream::sigv4;
using json = nlohmann::json;

std::vector<ErrorKind> all_kinds() {
  std::vector<ErrorKind> k;
  for (int i = 0; i < kErrorKinds; ++i) k.push_back(ErrorKind(i));
  return k;
}

std::string header(const HttpResponse& r, const std::string& name) {
  for (auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

struct Row {
  ErrorKind kind;
  int status;
  const char* tgi_type;
  int aws_status;
  const char* aws_code;
};

// The table, written out once more: a change to it must be a change to this test too.
const Row kExpected[] = {
    {ErrorKind::kBadRequest, 400, "", 400, "ValidationError"},
    {ErrorKind::kInvalidRequest, 400, "invalid_request_error", 400, "ValidationError"},
    {ErrorKind::kUnsupportedMediaType, 415, "", 415, "ValidationError"},
    {ErrorKind::kUnprocessable, 422, "", 400, "ValidationError"},
    {ErrorKind::kValidation, 422, "validation", 400, "ValidationError"},
    {ErrorKind::kTemplate, 422, "template_error", 400, "ValidationError"},
    {ErrorKind::kUnsupportedFeature, 422, "suffix not supported", 400, "ValidationError"},
    {ErrorKind::kLicense, 400, "validation", 400, "ValidationError"},
    {ErrorKind::kUnauthorized, 401, "authentication", 403, "UnrecognizedClientException"},
    {ErrorKind::kInvalidSignature, 403, "authentication", 403, "InvalidSignatureException"},
    {ErrorKind::kIncompleteSignature, 403, "authentication", 403, "IncompleteSignatureException"},
    {ErrorKind::kUnrecognizedClient, 403, "authentication", 403, "UnrecognizedClientException"},
    {ErrorKind::kNotFound, 404, "", 404, "UnknownOperationException"},
    {ErrorKind::kMethodNotAllowed, 405, "", 405, "UnknownOperationException"},
    {ErrorKind::kRequestTimeout, 408, "", 408, "ValidationError"},
    {ErrorKind::kPayloadTooLarge, 413, "", 413, "ValidationError"},
    {ErrorKind::kHeadersTooLarge, 431, "", 431, "ValidationError"},
    {ErrorKind::kOverloaded, 429, "overloaded", 429, "ThrottlingException"},
    {ErrorKind::kUnavailable, 503, "unavailable", 503, "ServiceUnavailable"},
    {ErrorKind::kHealthcheck, 503, "healthcheck", 503, "ServiceUnavailable"},
    {ErrorKind::kGeneration, 424, "generation", 424, "ModelError"},
    {ErrorKind::kIncomplete, 500, "incomplete_generation", 500, "InternalFailure"},
    {ErrorKind::kInternal, 500, "", 500, "InternalFailure"},
};

TEST(ErrorTable, EveryKindHasItsRow) {
  ASSERT_EQ(sizeof(kExpected) / sizeof(kExpected[0]), size_t(kErrorKinds));
  for (const Row& r : kExpected) {
    const ErrorInfo& i = error_info(r.kind);
    SCOPED_TRACE(i.name);
    EXPECT_EQ(i.kind, r.kind);
    EXPECT_EQ(i.status, r.status);
    EXPECT_EQ(http_status(r.kind), r.status);
    EXPECT_STREQ(i.tgi_type, r.tgi_type);
    EXPECT_EQ(i.aws_status, r.aws_status);
    EXPECT_STREQ(i.aws_code, r.aws_code);
    EXPECT_EQ(failure_label(r.kind), r.tgi_type);
  }
  // The SigV4 verifier's own names for its outcomes are the table's codes.
  for (auto [o, k] :
       {std::pair{sigv4::Outcome::kInvalidSignature, ErrorKind::kInvalidSignature},
        std::pair{sigv4::Outcome::kIncompleteSignature, ErrorKind::kIncompleteSignature},
        std::pair{sigv4::Outcome::kUnrecognizedClient, ErrorKind::kUnrecognizedClient}}) {
    sigv4::VerifyResult v;
    v.outcome = o;
    EXPECT_EQ(v.error_type(), error_info(k).aws_code);
  }
}

TEST(ErrorTable, FinalEvents) {
  FinalEvent fe;
  EXPECT_FALSE(final_error(fe));
  fe.reason = FinishReason::kEosToken;
  EXPECT_FALSE(final_error(fe));
  for (auto gk : {GenerationErrorKind::kRejected, GenerationErrorKind::kFailed}) {
    fe.reason = FinishReason::kError;
    fe.error_kind = gk;
    fe.error = "boom";
    auto e = final_error(fe);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, ErrorKind::kGeneration);
    EXPECT_EQ(e->message, "boom");
    EXPECT_EQ(error_text(*e), "Request failed during generation: boom");
  }
  fe.reason = FinishReason::kCancelled;
  auto e = final_error(fe);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, ErrorKind::kIncomplete);
  EXPECT_EQ(error_text(*e), "Incomplete generation");
}

TEST(ErrorWires, TgiEveryKind) {
  for (ErrorKind k : all_kinds()) {
    const ErrorInfo& i = error_info(k);
    SCOPED_TRACE(i.name);
    Error e{k, "msg"};
    HttpResponse r = tgi_error_response(e);
    EXPECT_EQ(r.status, i.status);
    if (*i.tgi_type == '\0') {  // axum's plain-text rejection
      EXPECT_EQ(header(r, "Content-Type"), "text/plain; charset=utf-8");
      EXPECT_EQ(r.body, error_text(e));
      continue;
    }
    EXPECT_EQ(header(r, "Content-Type"), "application/json");
    EXPECT_EQ(r.body, tgi_error_body(e));
    auto j = json::parse(r.body);
    EXPECT_EQ(j.size(), 2u);
    EXPECT_EQ(j["error"], error_text(e));
    EXPECT_EQ(j["error_type"], i.tgi_type);
    EXPECT_EQ(tgi_error_event(e), "data:" + r.body + "\n\n");
    EXPECT_EQ(header(r, "WWW-Authenticate"), k == ErrorKind::kUnauthorized ? "Bearer" : "");
  }
  EXPECT_EQ(tgi_error_event({ErrorKind::kGeneration, "boom"}),
            "data:{\"error\":\"Request failed during generation: "
            "boom\",\"error_type\":\"generation\"}\n\n");
  EXPECT_EQ(tgi_error_response({ErrorKind::kIncomplete, ""}).body,
            "{\"error\":\"Incomplete generation\",\"error_type\":\"incomplete_generation\"}");
  EXPECT_EQ(tgi_error_response({ErrorKind::kUnavailable, "model is loading"}).body,
            "{\"error\":\"model is loading\",\"error_type\":\"unavailable\"}");
  EXPECT_EQ(tgi_error_response({ErrorKind::kHealthcheck, "model is loading"}).body,
            "{\"error\":\"model is loading\",\"error_type\":\"healthcheck\"}");
  EXPECT_EQ(tgi_error_response({ErrorKind::kOverloaded, ""}).body,
            "{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}");
  HttpResponse auth = tgi_error_response({ErrorKind::kUnauthorized, "invalid API key"});
  EXPECT_EQ(auth.status, 401);
  EXPECT_EQ(auth.headers, (std::vector<Header>{{"Content-Type", "application/json"},
                                               {"WWW-Authenticate", "Bearer"}}));
  EXPECT_EQ(auth.body, "{\"error\":\"invalid API key\",\"error_type\":\"authentication\"}");
}

TEST(ErrorWires, LmiEveryKind) {
  for (ErrorKind k : all_kinds()) {
    const ErrorInfo& i = error_info(k);
    SCOPED_TRACE(i.name);
    Error e{k, "msg \"q\""};
    HttpResponse r = lmi_error_response(e);
    EXPECT_EQ(r.status, i.status);
    EXPECT_EQ(header(r, "Content-Type"), "application/json");
    auto j = json::parse(r.body);
    EXPECT_EQ(j["code"], i.status);
    if (*i.djl_type != '\0') {
      EXPECT_EQ(j["type"], i.djl_type);
      EXPECT_EQ(j["message"], "msg \"q\"");
    } else {
      EXPECT_EQ(j["message"], "prediction failure");
      EXPECT_EQ(j["error"], "msg \"q\"");
    }
    EXPECT_EQ(lmi_error_chunk(e), "{\n  \"code\": 424,\n  \"error\": \"msg \\\"q\\\"\"\n}");
  }
  EXPECT_EQ(lmi_error_response({ErrorKind::kOverloaded, ""}).body,
            "{\"code\":429,\"type\":\"ServiceUnavailableException\",\"message\":\"Model is "
            "overloaded\"}");
  EXPECT_EQ(lmi_error_response({ErrorKind::kLicense, "accept it"}).body,
            "{\"code\":400,\"message\":\"prediction failure\",\"error\":\"accept it\"}");
  EXPECT_EQ(lmi_error_chunk({ErrorKind::kGeneration, "boom"}),
            "{\n  \"code\": 424,\n  \"error\": \"boom\"\n}");
  EXPECT_EQ(lmi_error_chunk({ErrorKind::kIncomplete, ""}),
            "{\n  \"code\": 424,\n  \"error\": \"request cancelled\"\n}");
}

TEST(ErrorWires, OpenAiEveryKind) {
  for (ErrorKind k : all_kinds()) {
    const ErrorInfo& i = error_info(k);
    SCOPED_TRACE(i.name);
    Error e{k, "msg"};
    HttpResponse r = openai_error_response(e);
    EXPECT_EQ(r.status, i.status);
    EXPECT_EQ(header(r, "Content-Type"), "application/json");
    auto j = json::parse(r.body)["error"];
    EXPECT_EQ(j["message"], error_text(e));
    EXPECT_EQ(j["type"], i.openai_type);
    EXPECT_TRUE(j["param"].is_null());
    EXPECT_EQ(j["code"], i.status);
    std::string ev = openai_error_event(e);
    ASSERT_EQ(ev.rfind("data: ", 0), 0u);
    auto s = json::parse(ev.substr(6))["error"];
    EXPECT_EQ(s["type"], "generation_error");
    EXPECT_EQ(s["code"], 424);
  }
  EXPECT_EQ(openai_error_response({ErrorKind::kGeneration, "boom"}).body,
            "{\"error\":{\"message\":\"Request failed during generation: "
            "boom\",\"type\":\"generation\",\"param\":null,"
            "\"code\":424}}");
  EXPECT_EQ(openai_error_response({ErrorKind::kIncomplete, ""}).body,
            "{\"error\":{\"message\":\"Incomplete "
            "generation\",\"type\":\"incomplete_generation\",\"param\":null,"
            "\"code\":500}}");
  EXPECT_EQ(openai_error_event({ErrorKind::kIncomplete, ""}),
            "data: {\"error\":{\"message\":\"Incomplete "
            "generation\",\"type\":\"generation_error\",\"param\":null,"
            "\"code\":424}}\n\n");
}

TEST(ErrorWires, SageMakerEveryKind) {
  for (ErrorKind k : all_kinds()) {
    const ErrorInfo& i = error_info(k);
    SCOPED_TRACE(i.name);
    Error e{k, "msg"};
    HttpResponse r = sagemaker::error_response(e, "rid");
    EXPECT_EQ(r.status, i.aws_status);
    EXPECT_EQ(r.headers, (std::vector<Header>{{"Content-Type", "application/json"},
                                              {"x-amzn-ErrorType", i.aws_code},
                                              {"x-amzn-RequestId", "rid"}}));
    EXPECT_EQ(r.body, json({{"message", error_text(e)}}).dump());
    for (auto mode : {ApiMode::kTgi, ApiMode::kLmi}) {
      auto m = eventstream::decode_one(sagemaker::stream_error(e, mode));
      EXPECT_EQ(*m.string_header(":exception-type"), "ModelStreamError");
      auto j = json::parse(m.payload);
      EXPECT_EQ(j["ErrorCode"], "StreamBroken");
      EXPECT_EQ(j["Message"], "The model's response stream failed: " +
                                  (mode == ApiMode::kLmi ? lmi_error_text(e) : error_text(e)));
    }
  }
  EXPECT_EQ(sagemaker::error_response({ErrorKind::kInternal, ""}, "r").body,
            "{\"message\":\"internal error\"}");
}

}  // namespace
}  // namespace lmstream::server

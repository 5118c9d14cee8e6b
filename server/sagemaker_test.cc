// SageMaker front-door pieces: endpoint-name rules, the EULA check, AWS error shapes, the
// ModelStreamError wording, and the EndpointReply's framing (decoded back with the aws/
// event-stream decoder, streams pumped for real on an io_context) and error translation, against
// a recording fake Exchange.
#include "server/sagemaker.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <deque>
#include <nlohmann/json.hpp>

#include "aws/eventstream.h"
#include "server/lmi_wire.h"
#include "server/tgi_wire.h"

namespace lmstream::server::sagemaker {
namespace {

TEST(SageMakerNames, EndpointNameRules) {
  for (const char* ok : {"a", "my-ep", "A1--b2", "x9"}) EXPECT_TRUE(valid_endpoint_name(ok)) << ok;
  for (const char* bad : {"", "-a", "a-", "a_b", "a.b", "a/b", "a b", "é"})
    EXPECT_FALSE(valid_endpoint_name(bad)) << bad;
  EXPECT_TRUE(valid_endpoint_name(std::string(63, 'a')));
  EXPECT_FALSE(valid_endpoint_name(std::string(64, 'a')));
}

TEST(SageMakerNames, DerivedFromModelName) {
  EXPECT_EQ(endpoint_name_from("Llama-2-7b-chat-hf"), "Llama-2-7b-chat-hf");
  EXPECT_EQ(endpoint_name_from("  llama_2 (7B) chat.q8_0  "), "llama-2-7B-chat-q8-0");
  EXPECT_EQ(endpoint_name_from("___"), "lmstream");
  EXPECT_EQ(endpoint_name_from(""), "lmstream");
  std::string longer = std::string(62, 'a') + "_bcd";
  std::string d = endpoint_name_from(longer);
  EXPECT_EQ(d, std::string(62, 'a'));  // cut to 63 would end in '-': dropped
  EXPECT_TRUE(valid_endpoint_name(endpoint_name_from("\xff\xfe model \x01")));
}

TEST(SageMakerEula, ModelDetectionAndAttributes) {
  EXPECT_TRUE(is_llama2_chat("/opt/ml/model/Llama-2-13b-Chat-hf"));
  EXPECT_TRUE(is_llama2_chat("llama2-7b-chat.gguf"));
  EXPECT_FALSE(is_llama2_chat("llama-2-7b"));
  EXPECT_FALSE(is_llama2_chat("mistral-chat"));
  std::string a = "accept_eula=true";
  EXPECT_TRUE(eula_accepted(&a));
  for (std::string s :
       {"foo=1; accept_eula=TRUE", " accept_eula = true ,x=y", "x;accept_eula=true"})
    EXPECT_TRUE(eula_accepted(&s)) << s;
  for (std::string s :
       {"", "accept_eula=false", "accept_eula=truex", "xaccept_eula=true", "accept_eula"})
    EXPECT_FALSE(eula_accepted(&s)) << s;
  EXPECT_FALSE(eula_accepted(nullptr));
  EXPECT_NE(eula_message().find("CustomAttributes=\"accept_eula=true\""), std::string::npos);
}

std::string header(const HttpResponse& r, const std::string& name) {
  for (auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

TEST(SageMakerErrors, Shapes) {
  HttpResponse e = aws_error(400, "ValidationError", "bad \"x\"", "rid-1");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(header(e, "x-amzn-ErrorType"), "ValidationError");
  EXPECT_EQ(header(e, "x-amzn-RequestId"), "rid-1");
  EXPECT_EQ(nlohmann::json::parse(e.body)["message"], "bad \"x\"");
  HttpResponse m = model_error(422, "{\"error\":\"no\"}", "rid-2");
  EXPECT_EQ(m.status, 424);
  EXPECT_EQ(header(m, "x-amzn-ErrorType"), "ModelError");
  auto j = nlohmann::json::parse(m.body);
  EXPECT_EQ(j["OriginalStatusCode"], 422);
  EXPECT_EQ(j["OriginalMessage"], "{\"error\":\"no\"}");
  EXPECT_NE(j["Message"].get<std::string>().find("Received client error (422)"), std::string::npos);
  EXPECT_NE(
      nlohmann::json::parse(model_error(500, "", "r").body)["Message"].get<std::string>().find(
          "server error"),
      std::string::npos);
  std::string id = request_id();
  EXPECT_EQ(id.size(), 36u);
  EXPECT_NE(id, request_id());
}

TEST(SageMakerStreamError, QuotesTheContainersWording) {
  auto msg = [](const std::string& bytes) {
    auto m = eventstream::decode_one(bytes);
    EXPECT_EQ(*m.string_header(":message-type"), "exception");
    EXPECT_EQ(*m.string_header(":exception-type"), "ModelStreamError");
    auto j = nlohmann::json::parse(m.payload);
    EXPECT_EQ(j["ErrorCode"], "StreamBroken");
    return j["Message"].get<std::string>();
  };
  Error boom{ErrorKind::kGeneration, "boom"};
  EXPECT_EQ(msg(stream_error(boom, ApiMode::kTgi)),
            "The model's response stream failed: Request failed during generation: boom");
  EXPECT_EQ(msg(stream_error(boom, ApiMode::kLmi)), "The model's response stream failed: boom");
  Error cut{ErrorKind::kIncomplete, ""};
  EXPECT_EQ(msg(stream_error(cut, ApiMode::kTgi)),
            "The model's response stream failed: Incomplete generation");
  EXPECT_EQ(msg(stream_error(cut, ApiMode::kLmi)),
            "The model's response stream failed: request cancelled");
}

// Records what the reply does to the real exchange.
class Recorder final : public Exchange {
 public:
  HttpRequest req;
  AccessInfo acc;
  std::optional<HttpResponse> responded;
  std::optional<std::pair<int, std::vector<Header>>> started;
  std::vector<std::string> chunks;
  bool finished = false;
  const HttpRequest& request() const override { return req; }
  AccessInfo& access() override { return acc; }
  boost::asio::io_context io;
  boost::asio::any_io_executor executor() override { return io.get_executor(); }
  void respond(HttpResponse r) override {
    ASSERT_FALSE(responded || started);
    responded = std::move(r);
  }
  void start_stream(int status, std::vector<Header> h) override {
    ASSERT_FALSE(responded || started);
    started = {status, std::move(h)};
  }
  void write(std::string c) override {
    ASSERT_TRUE(started && !finished);
    if (!c.empty()) chunks.push_back(std::move(c));  // as the real exchange: "" writes nothing
  }
  void finish() override {
    ASSERT_TRUE(started && !finished);
    finished = true;
  }
  bool client_gone() const override { return false; }
  void on_client_gone(std::function<void()>) override {}
  Clock::time_point first_chunk_written() const override { return {}; }
  std::string head(const std::string& name) const {
    for (auto& [k, v] : started->second)
      if (k == name) return v;
    return "";
  }
};

eventstream::Message one(const std::string& chunk) { return eventstream::decode_one(chunk); }

// A container encoder that answers from a script: token i gives tokens[i]; the end gives `last`
// and `error`.
class Scripted final : public StreamEncoder {
 public:
  std::deque<std::string> tokens;
  std::string last;
  std::optional<Error> error;
  std::string on_token(const TokenEvent&) override {
    std::string t = tokens.front();
    tokens.pop_front();
    return t;
  }
  StreamEnd on_end(const FinalEvent&) override { return {last, error}; }
  std::string error_event(const Error& e) override { return tgi_error_event(e); }
};

// Streams `n` tokens and a final event through reply.stream() and runs the pump to the end.
void pump(Recorder& rec, EndpointReply& reply, std::vector<Header> headers,
          std::shared_ptr<Scripted> enc, size_t n, FinishReason reason = FinishReason::kLength) {
  auto rs = std::make_shared<RequestStream>(1);
  for (size_t i = 0; i < n; ++i) rs->push(TokenEvent{});
  FinalEvent fe;
  fe.reason = reason;
  rs->push(fe);
  bool after = false;
  reply.stream(std::move(headers), rs, enc, 0, [&](const FinalEvent&) { after = true; });
  rec.io.run();
  EXPECT_TRUE(after);
}

TEST(SageMakerEndpointReply, StreamFramesEachWriteAndBreaksOnError) {
  auto rec = std::make_shared<Recorder>();
  rec->req.headers = {{"Accept", "x/y"}, {"X-Amzn-SageMaker-Accept", "text/event-stream"}};
  EndpointReply d(rec, Operation::kStream, ApiMode::kTgi, {"rid", "AllTraffic"});
  EXPECT_EQ(*d.request().header("accept"), "text/event-stream");
  std::string tok = "data:{\"token\":{\"text\":\"a\"}}\n\n";
  auto enc = std::make_shared<Scripted>();
  enc->tokens = {tok, ""};
  enc->last = tok;
  enc->error = Error{ErrorKind::kGeneration, "boom"};
  pump(*rec, d, {{"Content-Type", "text/event-stream"}, {"x-compute-type", "cpu"}}, enc, 2,
       FinishReason::kError);
  ASSERT_TRUE(rec->started);
  EXPECT_EQ(rec->started->first, 200);
  EXPECT_EQ(rec->head("Content-Type"), "application/vnd.amazon.eventstream");
  EXPECT_EQ(rec->head("X-Amzn-SageMaker-Content-Type"), "text/event-stream");
  EXPECT_EQ(rec->head("x-Amzn-Invoked-Production-Variant"), "AllTraffic");
  EXPECT_EQ(rec->head("x-amzn-RequestId"), "rid");
  EXPECT_EQ(rec->head("x-compute-type"), "");
  ASSERT_EQ(rec->chunks.size(), 3u);
  EXPECT_EQ(one(rec->chunks[0]).payload, tok);
  EXPECT_EQ(*one(rec->chunks[0]).string_header(":event-type"), "PayloadPart");
  EXPECT_EQ(one(rec->chunks[1]).payload, tok);
  auto ex = one(rec->chunks[2]);
  EXPECT_EQ(*ex.string_header(":message-type"), "exception");
  EXPECT_EQ(*ex.string_header(":exception-type"), "ModelStreamError");
  auto j = nlohmann::json::parse(ex.payload);
  EXPECT_EQ(j["ErrorCode"], "StreamBroken");
  EXPECT_NE(j["Message"].get<std::string>().find("boom"), std::string::npos);
  EXPECT_TRUE(rec->finished);
}

TEST(SageMakerEndpointReply, StreamsOfTheRealEncodersFailAsBefore) {
  // TGI: the held token, then the exception in place of the SSE error event.
  {
    auto rec = std::make_shared<Recorder>();
    EndpointReply d(rec, Operation::kStream, ApiMode::kTgi, {"rid", "AllTraffic"});
    TgiOptions o;
    o.max_new_tokens = 1;
    TgiStreamEncoder tgi(o,
                         {[](int32_t) { return std::string("t"); }, [](int32_t) { return false; }});
    TokenEvent t;
    t.id = 5;
    t.text = t.emit = "x";
    EXPECT_EQ(tgi.on_token(t), "");  // held: the last allowed token
    FinalEvent fe;
    fe.reason = FinishReason::kError;
    fe.error = "engine died";
    StreamEnd end = tgi.on_end(fe);
    EventStreamEncoder es(std::make_shared<Scripted>(), ApiMode::kTgi);
    ASSERT_TRUE(end.error);
    EXPECT_EQ(end.bytes,
              "data:{\"token\":{\"id\":5,\"text\":\"x\",\"logprob\":0.0,\"special\":false},"
              "\"generated_text\":null,\"details\":null}\n\n");
    EXPECT_EQ(es.error_event(*end.error),
              stream_error({ErrorKind::kGeneration, "engine died"}, ApiMode::kTgi));
  }
  // LMI: the buffered pieces as one PayloadPart, then the exception.
  {
    LmiStreamEncoder lmi(OutputFormatter::kJson, 4);
    TokenEvent t;
    t.emit = " a";
    EXPECT_EQ(lmi.on_token(t), "{\"generated_text\": \" a");
    EXPECT_EQ(lmi.on_token(t), "");
    FinalEvent fe;
    fe.reason = FinishReason::kCancelled;
    StreamEnd end = lmi.on_end(fe);
    EXPECT_EQ(end.bytes, " a");
    ASSERT_TRUE(end.error);
    EXPECT_EQ(end.error->kind, ErrorKind::kIncomplete);
  }
}

TEST(SageMakerEndpointReply, SynchronousErrorBecomesModelError) {
  for (auto mode : {ApiMode::kTgi, ApiMode::kLmi}) {
    for (auto op : {Operation::kInvoke, Operation::kStream}) {
      auto rec = std::make_shared<Recorder>();
      EndpointReply d(rec, op, mode, {"rid", "AllTraffic"});
      // As the container handlers answer a validation error inside a 200 stream.
      Error e{ErrorKind::kValidation, "bad input"};
      ErrorAnswer a{e, tgi_error_response(e),
                    std::vector<Header>{{"Content-Type", "application/json"}}, tgi_error_event(e)};
      if (mode == ApiMode::kLmi) {
        a.event = lmi_error_chunk(e);
        a.response = {kLmiStreamErrorCode, {}, a.event};
      }
      d.error(a);
      d.respond({200, {}, "late"});  // only the first answer counts
      ASSERT_TRUE(rec->responded);
      EXPECT_EQ(rec->responded->status, 424);
      auto j = nlohmann::json::parse(rec->responded->body);
      EXPECT_EQ(j["OriginalStatusCode"], mode == ApiMode::kTgi ? 422 : 424);
      EXPECT_NE(j["OriginalMessage"].get<std::string>().find("bad input"), std::string::npos);
      EXPECT_EQ(j["OriginalMessage"], a.response.body);
    }
  }
}

TEST(SageMakerEndpointReply, CompleteStreamIsSent) {
  auto rec = std::make_shared<Recorder>();
  EndpointReply d(rec, Operation::kStream, ApiMode::kLmi, {"rid", "AllTraffic"});
  auto enc = std::make_shared<Scripted>();
  enc->last = "{\"generated_text\": \"x\"}";
  pump(*rec, d, {{"Content-Type", "application/json"}}, enc, 0);
  ASSERT_TRUE(rec->started);
  ASSERT_EQ(rec->chunks.size(), 1u);
  EXPECT_EQ(one(rec->chunks[0]).payload, "{\"generated_text\": \"x\"}");
  EXPECT_TRUE(rec->finished);
}

TEST(SageMakerEndpointReply, InvokePassesTheStreamThrough) {
  auto rec = std::make_shared<Recorder>();
  EndpointReply d(rec, Operation::kInvoke, ApiMode::kLmi, {"rid", "AllTraffic"});
  auto enc = std::make_shared<Scripted>();
  enc->tokens = {"{\"generated_text\": \" a"};
  enc->last = "\"}";
  pump(*rec, d, {{"Content-Type", "application/json"}}, enc, 1);
  ASSERT_TRUE(rec->started);
  EXPECT_EQ(rec->head("Content-Type"), "application/json");
  EXPECT_EQ(rec->head("x-amzn-RequestId"), "rid");
  ASSERT_EQ(rec->chunks.size(), 2u);
  EXPECT_EQ(rec->chunks[0] + rec->chunks[1], "{\"generated_text\": \" a\"}");
}

TEST(SageMakerEndpointReply, RespondTranslations) {
  {  // a whole answer on the streaming API: one PayloadPart
    auto rec = std::make_shared<Recorder>();
    EndpointReply d(rec, Operation::kStream, ApiMode::kTgi, {"rid", "AllTraffic"});
    d.respond({200, {{"Content-Type", "application/json"}}, "[{\"generated_text\":\"x\"}]"});
    ASSERT_TRUE(rec->started);
    EXPECT_EQ(rec->head("X-Amzn-SageMaker-Content-Type"), "application/json");
    ASSERT_EQ(rec->chunks.size(), 1u);
    EXPECT_EQ(one(rec->chunks[0]).payload, "[{\"generated_text\":\"x\"}]");
    EXPECT_TRUE(rec->finished);
  }
  {  // InvokeEndpoint: the body as is, SageMaker's headers, container extras dropped
    auto rec = std::make_shared<Recorder>();
    EndpointReply d(rec, Operation::kInvoke, ApiMode::kTgi, {"rid", "AllTraffic"});
    d.respond({200,
               {{"Content-Type", "application/json"},
                {"x-compute-time", "1"},
                {"X-Amzn-SageMaker-Custom-Attributes", "k=v"}},
               "[1]"});
    ASSERT_TRUE(rec->responded);
    EXPECT_EQ(rec->responded->body, "[1]");
    EXPECT_EQ(header(*rec->responded, "Content-Type"), "application/json");
    EXPECT_EQ(header(*rec->responded, "x-Amzn-Invoked-Production-Variant"), "AllTraffic");
    EXPECT_EQ(header(*rec->responded, "X-Amzn-SageMaker-Custom-Attributes"), "k=v");
    EXPECT_EQ(header(*rec->responded, "x-compute-time"), "");
  }
  for (auto op : {Operation::kInvoke, Operation::kStream}) {  // container error status: ModelError
    auto rec = std::make_shared<Recorder>();
    EndpointReply d(rec, op, ApiMode::kTgi, {"rid", "AllTraffic"});
    Error e{ErrorKind::kOverloaded, ""};
    d.error({e, tgi_error_response(e), std::nullopt, ""});
    ASSERT_TRUE(rec->responded);
    EXPECT_EQ(rec->responded->status, 424);
    EXPECT_EQ(nlohmann::json::parse(rec->responded->body)["OriginalStatusCode"], 429);
  }
}

TEST(SageMakerEndpointReply, AbortBeforeAnythingIsInternalFailure) {
  auto rec = std::make_shared<Recorder>();
  EndpointReply d(rec, Operation::kStream, ApiMode::kTgi, {"rid", "AllTraffic"});
  d.internal_failure();
  ASSERT_TRUE(rec->responded);
  EXPECT_EQ(rec->responded->status, 500);
  EXPECT_EQ(header(*rec->responded, "x-amzn-ErrorType"), "InternalFailure");
}

}  // namespace
}  // namespace lmstream::server::sagemaker

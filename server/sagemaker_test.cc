// SageMaker front-door pieces: endpoint-name rules, the EULA check, AWS error shapes, splitting a
// container chunk at its error event, and the Exchange decorator's framing (decoded back with the
// aws/ event-stream decoder) and error translation, against a recording fake Exchange.
#include "server/sagemaker.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "aws/eventstream.h"

namespace lmstream::server::sagemaker {
namespace {

TEST(SageMakerNames, EndpointNameRules) {
  for (const char* ok : {"a", "my-ep", "A1--b2", "x9"}) EXPECT_TRUE(valid_endpoint_name(ok)) << ok;
  for (const char* bad : {"", "-a", "a-", "a_b", "a.b", "a/b", "a b", "é"}) EXPECT_FALSE(valid_endpoint_name(bad)) << bad;
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
  for (std::string s : {"foo=1; accept_eula=TRUE", " accept_eula = true ,x=y", "x;accept_eula=true"})
    EXPECT_TRUE(eula_accepted(&s)) << s;
  for (std::string s : {"", "accept_eula=false", "accept_eula=truex", "xaccept_eula=true", "accept_eula"})
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
  EXPECT_NE(nlohmann::json::parse(model_error(500, "", "r").body)["Message"].get<std::string>().find("server error"),
            std::string::npos);
  std::string id = request_id();
  EXPECT_EQ(id.size(), 36u);
  EXPECT_NE(id, request_id());
}

TEST(SageMakerSplit, TgiAndLmi) {
  std::string tok = "data:{\"token\":{\"text\":\"hi\"},\"generated_text\":null}\n\n";
  std::string err = "data:{\"error\":\"boom\",\"error_type\":\"generation\"}\n\n";
  ChunkSplit s = split_chunk(ApiMode::kTgi, tok + tok);
  EXPECT_EQ(s.payload, tok + tok);
  EXPECT_FALSE(s.error);
  s = split_chunk(ApiMode::kTgi, tok + err);
  EXPECT_EQ(s.payload, tok);
  ASSERT_TRUE(s.error);
  EXPECT_EQ(*s.error, "boom");
  EXPECT_EQ(s.status, 500);
  s = split_chunk(ApiMode::kTgi, "data:{\"error\":\"bad\",\"error_type\":\"validation\"}\n\n");
  EXPECT_EQ(s.status, 422);
  EXPECT_EQ(s.payload, "");
  // Text that merely mentions "error" is not an error event; malformed JSON neither.
  EXPECT_FALSE(split_chunk(ApiMode::kTgi, "data:{\"token\":{\"text\":\"error\"}}\n\n").error);
  EXPECT_FALSE(split_chunk(ApiMode::kTgi, "data:{\"error\"\n\n").error);
  EXPECT_FALSE(split_chunk(ApiMode::kTgi, ":\n\n").error);

  s = split_chunk(ApiMode::kLmi, "{\"generated_text\": \" a b");
  EXPECT_FALSE(s.error);
  s = split_chunk(ApiMode::kLmi, " c{\n  \"code\": 424,\n  \"error\": \"engine died\"\n}");
  EXPECT_EQ(s.payload, " c");
  ASSERT_TRUE(s.error);
  EXPECT_EQ(*s.error, "engine died");
  EXPECT_EQ(s.status, 424);
  // Escaped text can never contain the raw newline of DJL's error chunk.
  EXPECT_FALSE(split_chunk(ApiMode::kLmi, "{\\n  \\\"code\\\": 1").error);
}

// Records what the decorator does to the real exchange.
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
  boost::asio::any_io_executor executor() override { return {}; }
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
    chunks.push_back(std::move(c));
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

TEST(SageMakerDecorator, StreamFramesEachWriteAndBreaksOnError) {
  auto rec = std::make_shared<Recorder>();
  rec->req.headers = {{"Accept", "x/y"}, {"X-Amzn-SageMaker-Accept", "text/event-stream"}};
  Decorator d(rec, Operation::kStream, ApiMode::kTgi, {"rid", "AllTraffic"});
  EXPECT_EQ(*d.request().header("accept"), "text/event-stream");
  d.start_stream(200, {{"Content-Type", "text/event-stream"}, {"x-compute-type", "cpu"}});
  EXPECT_FALSE(rec->started);  // held until the handler returns
  d.release();
  ASSERT_TRUE(rec->started);
  EXPECT_EQ(rec->started->first, 200);
  EXPECT_EQ(rec->head("Content-Type"), "application/vnd.amazon.eventstream");
  EXPECT_EQ(rec->head("X-Amzn-SageMaker-Content-Type"), "text/event-stream");
  EXPECT_EQ(rec->head("x-Amzn-Invoked-Production-Variant"), "AllTraffic");
  EXPECT_EQ(rec->head("x-amzn-RequestId"), "rid");
  EXPECT_EQ(rec->head("x-compute-type"), "");
  std::string tok = "data:{\"token\":{\"text\":\"a\"}}\n\n";
  d.write(tok);
  d.write("");
  d.write(tok + "data:{\"error\":\"boom\",\"error_type\":\"generation\"}\n\n");
  d.write(tok);  // ignored: the stream broke
  d.finish();
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

TEST(SageMakerDecorator, SynchronousErrorBecomesModelError) {
  for (auto mode : {ApiMode::kTgi, ApiMode::kLmi}) {
    auto rec = std::make_shared<Recorder>();
    Decorator d(rec, Operation::kStream, mode, {"rid", "AllTraffic"});
    d.start_stream(200, {{"Content-Type", "application/json"}});
    d.write(mode == ApiMode::kTgi ? "data:{\"error\":\"bad input\",\"error_type\":\"validation\"}\n\n"
                                  : "{\n  \"code\": 424,\n  \"error\": \"bad input\"\n}");
    d.finish();
    d.release();
    ASSERT_TRUE(rec->responded);
    EXPECT_EQ(rec->responded->status, 424);
    auto j = nlohmann::json::parse(rec->responded->body);
    EXPECT_EQ(j["OriginalStatusCode"], mode == ApiMode::kTgi ? 422 : 424);
    EXPECT_NE(j["OriginalMessage"].get<std::string>().find("bad input"), std::string::npos);
  }
}

TEST(SageMakerDecorator, SynchronousCompleteStreamIsSent) {
  auto rec = std::make_shared<Recorder>();
  Decorator d(rec, Operation::kStream, ApiMode::kLmi, {"rid", "AllTraffic"});
  d.start_stream(200, {{"Content-Type", "application/json"}});
  d.write("{\"generated_text\": \"x\"}");
  d.finish();
  d.release();
  ASSERT_TRUE(rec->started);
  ASSERT_EQ(rec->chunks.size(), 1u);
  EXPECT_EQ(one(rec->chunks[0]).payload, "{\"generated_text\": \"x\"}");
  EXPECT_TRUE(rec->finished);
}

TEST(SageMakerDecorator, RespondTranslations) {
  {  // a whole answer on the streaming API: one PayloadPart
    auto rec = std::make_shared<Recorder>();
    Decorator d(rec, Operation::kStream, ApiMode::kTgi, {"rid", "AllTraffic"});
    d.respond({200, {{"Content-Type", "application/json"}}, "[{\"generated_text\":\"x\"}]"});
    d.release();
    ASSERT_TRUE(rec->started);
    EXPECT_EQ(rec->head("X-Amzn-SageMaker-Content-Type"), "application/json");
    ASSERT_EQ(rec->chunks.size(), 1u);
    EXPECT_EQ(one(rec->chunks[0]).payload, "[{\"generated_text\":\"x\"}]");
    EXPECT_TRUE(rec->finished);
  }
  {  // InvokeEndpoint: the body as is, SageMaker's headers, container extras dropped
    auto rec = std::make_shared<Recorder>();
    Decorator d(rec, Operation::kInvoke, ApiMode::kTgi, {"rid", "AllTraffic"});
    d.respond({200, {{"Content-Type", "application/json"}, {"x-compute-time", "1"},
                     {"X-Amzn-SageMaker-Custom-Attributes", "k=v"}}, "[1]"});
    ASSERT_TRUE(rec->responded);
    EXPECT_EQ(rec->responded->body, "[1]");
    EXPECT_EQ(header(*rec->responded, "Content-Type"), "application/json");
    EXPECT_EQ(header(*rec->responded, "x-Amzn-Invoked-Production-Variant"), "AllTraffic");
    EXPECT_EQ(header(*rec->responded, "X-Amzn-SageMaker-Custom-Attributes"), "k=v");
    EXPECT_EQ(header(*rec->responded, "x-compute-time"), "");
  }
  for (auto op : {Operation::kInvoke, Operation::kStream}) {  // container error status: ModelError
    auto rec = std::make_shared<Recorder>();
    Decorator d(rec, op, ApiMode::kTgi, {"rid", "AllTraffic"});
    d.respond({429, {{"Content-Type", "application/json"}}, "{\"error\":\"Model is overloaded\"}"});
    ASSERT_TRUE(rec->responded);
    EXPECT_EQ(rec->responded->status, 424);
    EXPECT_EQ(nlohmann::json::parse(rec->responded->body)["OriginalStatusCode"], 429);
  }
}

TEST(SageMakerDecorator, AbortBeforeAnythingIsInternalFailure) {
  auto rec = std::make_shared<Recorder>();
  Decorator d(rec, Operation::kStream, ApiMode::kTgi, {"rid", "AllTraffic"});
  d.start_stream(200, {});
  d.abort("internal error");
  ASSERT_TRUE(rec->responded);
  EXPECT_EQ(rec->responded->status, 500);
  EXPECT_EQ(header(*rec->responded, "x-amzn-ErrorType"), "InternalFailure");
}

}  // namespace
}  // namespace lmstream::server::sagemaker

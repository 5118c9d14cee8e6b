// Wire encoders, byte-exact: TGI SSE events and final event, the non-streaming JSON, LMI 0.25
// json pieces / jsonlines with DJL's chunk buffering, OpenAI chunks and [DONE].
#include <gtest/gtest.h>

#include <cmath>

#include "server/lmi_wire.h"
#include "server/openai_wire.h"
#include "server/tgi_wire.h"
#include "server/wire_json.h"

namespace lmstream::server {
namespace {

TokenEvent tok(int32_t id, std::string text, float lp, bool special = false,
               std::string emit = "\x01") {
  TokenEvent t;
  t.id = id;
  t.text = text;
  t.emit = emit == "\x01" ? (special ? "" : text) : emit;
  t.logprob = lp;
  t.special = special;
  return t;
}

FinalEvent fin(FinishReason r, int n, std::string text, std::string tail = "") {
  FinalEvent f;
  f.reason = r;
  f.generated_tokens = n;
  f.generated_text = text;
  f.tail = tail;
  f.input_tokens = 3;
  f.seed = 42;
  return f;
}

TokenLookup lookup() {
  return {[](int32_t id) { return id == 2 ? std::string("</s>") : "t" + std::to_string(id); },
          [](int32_t id) { return id == 2; }};
}

TEST(TgiWire, StreamEventsExactBytesAndFinalCarriesLastToken) {
  TgiOptions o;
  o.max_new_tokens = 10;
  o.details = true;
  TgiStreamEncoder e(o, lookup());
  EXPECT_EQ(
      e.on_token(tok(1724, " Hello", -0.53f)),
      "data:{\"token\":{\"id\":1724,\"text\":\" "
      "Hello\",\"logprob\":-0.53,\"special\":false},\"generated_text\":null,\"details\":null}\n\n");
  EXPECT_EQ(e.on_token(tok(2, "</s>", -0.01f, true)), "");  // EOS: held for the final event
  EXPECT_EQ(
      e.on_final(fin(FinishReason::kEosToken, 2, " Hello")),
      "data:{\"token\":{\"id\":2,\"text\":\"</"
      "s>\",\"logprob\":-0.01,\"special\":true},\"generated_text\":\" Hello\","
      "\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":2,\"seed\":null}}\n\n");
}

TEST(TgiWire, LengthStopAndTopTokens) {
  TgiOptions o;
  o.max_new_tokens = 2;
  o.sampling = true;
  o.full_text_prefix = "Q:";
  TgiStreamEncoder e(o, lookup());
  TokenEvent a = tok(5, "a", -1.f);
  a.top = {{5, -1.f}, {6, -2.5f}};
  EXPECT_EQ(e.on_token(a),
            "data:{\"token\":{\"id\":5,\"text\":\"a\",\"logprob\":-1.0,\"special\":false},\"top_"
            "tokens\":[{\"id\":5,"
            "\"text\":\"t5\",\"logprob\":-1.0,\"special\":false},{\"id\":6,\"text\":\"t6\","
            "\"logprob\":-2.5,\"special\":"
            "false}],\"generated_text\":null,\"details\":null}\n\n");
  EXPECT_EQ(e.on_token(tok(7, "b", -0.5f)), "");  // the 2nd of max_new_tokens=2
  EXPECT_EQ(e.on_final(fin(FinishReason::kLength, 2, "ab")),
            "data:{\"token\":{\"id\":7,\"text\":\"b\",\"logprob\":-0.5,\"special\":false},"
            "\"generated_text\":\"Q:ab\",\"details\":null}\n\n");

  TgiOptions s;
  s.stop = {"lo w"};
  TgiStreamEncoder st(s, lookup());
  EXPECT_NE(st.on_token(tok(1, "hel", -1.f)), "");
  EXPECT_EQ(st.on_token(tok(3, "lo w", -1.f)), "");  // completes the stop string
  EXPECT_NE(st.on_final(fin(FinishReason::kStopSequence, 2, "hello w")).find("\"text\":\"lo w\""),
            std::string::npos);
}

TEST(TgiWire, UnforeseenEndAndErrors) {
  TgiOptions o;
  TgiStreamEncoder e(o, lookup());
  EXPECT_NE(e.on_token(tok(9, "x", -1.f)), "");
  // The engine ended (e.g. context full) after a token already sent: no text is repeated.
  EXPECT_EQ(e.on_final(fin(FinishReason::kLength, 1, "x")),
            "data:{\"token\":{\"id\":9,\"text\":\"\",\"logprob\":-1.0,\"special\":false},"
            "\"generated_text\":\"x\",\"details\":null}\n\n");
  TgiStreamEncoder f(o, lookup());
  FinalEvent err = fin(FinishReason::kError, 0, "");
  err.error = "boom";
  EXPECT_EQ(f.on_final(err),
            "data:{\"error\":\"Request failed during generation: "
            "boom\",\"error_type\":\"generation\"}\n\n");
  TgiStreamEncoder g(o, lookup());
  EXPECT_EQ(
      g.on_final(fin(FinishReason::kCancelled, 0, "")),
      "data:{\"error\":\"Incomplete generation\",\"error_type\":\"incomplete_generation\"}\n\n");
  EXPECT_EQ(std::string(sse_keepalive()), ":\n\n");
}

TEST(TgiWire, NonStreamingJson) {
  TgiOptions o;
  std::vector<TokenEvent> toks = {tok(5, " Hi", -0.25f), tok(2, "</s>", -0.5f, true)};
  FinalEvent f = fin(FinishReason::kEosToken, 2, " Hi");
  EXPECT_EQ(tgi_generate_json(toks, f, {1, 3}, o, lookup(), false), "{\"generated_text\":\" Hi\"}");
  EXPECT_EQ(tgi_generate_json(toks, f, {1, 3}, o, lookup(), true),
            "[{\"generated_text\":\" Hi\"}]");
  o.details = true;
  o.sampling = true;
  EXPECT_EQ(tgi_generate_json(toks, f, {1, 3}, o, lookup(), false),
            "{\"generated_text\":\" "
            "Hi\",\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":2,\"seed\":42,"
            "\"prefill\":[],\"tokens\":[{\"id\":5,\"text\":\" "
            "Hi\",\"logprob\":-0.25,\"special\":false},{\"id\":2,\"text\":"
            "\"</s>\",\"logprob\":-0.5,\"special\":true}]}}");
  o.decoder_input_details = true;
  f.prompt_logprobs = {std::nanf(""), -1.5f};
  EXPECT_NE(tgi_generate_json(toks, f, {1, 3}, o, lookup(), false)
                .find("\"prefill\":[{\"id\":1,\"text\":\"t1\",\"logprob\":null},{\"id\":3,\"text\":"
                      "\"t3\",\"logprob\":-1.5}]"),
            std::string::npos);
}

TEST(LmiWire, JsonPiecesAndBuffering) {
  LmiStreamEncoder e(OutputFormatter::kJson, 4);
  std::vector<std::string> chunks;
  std::vector<std::string> texts = {" Hello",  " there",    "!\n",         "\n",  "Dear",
                                    " Alice,", " \xc3\xa9", " \"quoted\"", " end"};
  for (auto& t : texts) chunks.push_back(e.on_token(tok(1, t, 0)));
  chunks.push_back(e.on_final(fin(FinishReason::kLength, 9, "")));
  EXPECT_EQ(chunks[0], "{\"generated_text\": \" Hello");  // piece 1 alone
  EXPECT_EQ(chunks[1], "");
  EXPECT_EQ(chunks[4], " there!\\n\\nDear");                    // pieces 2..5
  EXPECT_EQ(chunks[8], " Alice, \xc3\xa9 \\\"quoted\\\" end");  // pieces 6..9
  EXPECT_EQ(chunks[9], "\"}");
  std::string all;
  for (auto& c : chunks) all += c;
  EXPECT_EQ(all,
            "{\"generated_text\": \" Hello there!\\n\\nDear Alice, \xc3\xa9 \\\"quoted\\\" end\"}");
  EXPECT_EQ(e.content_type(), "application/json");
}

TEST(LmiWire, SpecialTokensEmptyTailAndErrors) {
  LmiStreamEncoder e(OutputFormatter::kJson, 4);
  EXPECT_EQ(e.on_token(tok(7, "x", 0)), "{\"generated_text\": \"x");
  EXPECT_EQ(e.on_token(tok(2, "</s>", 0, true)), "");
  EXPECT_EQ(e.on_final(fin(FinishReason::kEosToken, 2, "x", "\t")), "\\t\"}");
  LmiStreamEncoder none(OutputFormatter::kJson, 4);
  EXPECT_EQ(none.on_final(fin(FinishReason::kLength, 0, "")), "{\"generated_text\": \"\"}");
  LmiStreamEncoder err(OutputFormatter::kJson, 4);
  FinalEvent f = fin(FinishReason::kError, 0, "");
  f.error = "bad \"thing\"";
  EXPECT_EQ(err.on_final(f), "{\n  \"code\": 424,\n  \"error\": \"bad \\\"thing\\\"\"\n}");
}

TEST(LmiWire, JsonLines) {
  LmiStreamEncoder e(OutputFormatter::kJsonLines, 4);
  EXPECT_EQ(e.on_token(tok(1, "Hi", 0)), "{\"outputs\": [\"Hi\"]}\n");
  EXPECT_EQ(e.on_token(tok(1, "\x01", 0)), "");
  EXPECT_EQ(e.on_final(fin(FinishReason::kLength, 2, "")), "{\"outputs\": [\"\\u0001\"]}\n");
  EXPECT_EQ(e.content_type(), "application/jsonlines");
}

TEST(LmiWire, BufferOfOneFlushesEveryPiece) {
  LmiStreamEncoder e(OutputFormatter::kJson, 1);
  EXPECT_NE(e.on_token(tok(1, "a", 0)), "");
  EXPECT_EQ(e.on_token(tok(1, "b", 0)), "b");
}

TEST(WireJson, PythonEscaping) {
  EXPECT_EQ(py_json_escape("a\"b\\c\nd\re\tf\bg\fh\x01\x1f\x7f\xc3\xa9"),
            "a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001\\u001f\x7f\xc3\xa9");
}

TEST(OpenAiWire, ChatChunksAndDone) {
  OpenAiOptions o{true, "chatcmpl-1", 1700000000, "m"};
  OpenAiStreamEncoder e(o);
  EXPECT_EQ(e.on_start(),
            "data: "
            "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
            "\"model\":\"m\","
            "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
            "\"logprobs\":null,\"finish_reason\":null}]}\n\n");
  EXPECT_EQ(e.on_token(tok(1, " Hi", 0)),
            "data: "
            "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
            "\"model\":\"m\","
            "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" "
            "Hi\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
  EXPECT_EQ(e.on_token(tok(1, "", 0)), "");
  EXPECT_EQ(e.on_final(fin(FinishReason::kEosToken, 2, " Hi")),
            "data: "
            "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
            "\"model\":\"m\","
            "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}"
            "\n\ndata: [DONE]\n\n");
}

TEST(OpenAiWire, CompletionAndResponses) {
  OpenAiOptions o{false, "cmpl-2", 5, "m"};
  OpenAiStreamEncoder e(o);
  EXPECT_EQ(e.on_start(), "");
  EXPECT_EQ(e.on_final(fin(FinishReason::kLength, 1, "z", "z")),
            "data: "
            "{\"id\":\"cmpl-2\",\"object\":\"text_completion\",\"created\":5,\"model\":\"m\","
            "\"choices\":[{\"index\":0,"
            "\"text\":\"z\",\"logprobs\":null,\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n");
  OpenAiChoice ch;
  ch.fe = fin(FinishReason::kStopSequence, 4, "abc");
  EXPECT_EQ(openai_choices_json(o, {ch}, {ch.fe.input_tokens, ch.fe.generated_tokens, 0}),
            "{\"id\":\"cmpl-2\",\"object\":\"text_completion\",\"created\":5,\"model\":\"m\","
            "\"choices\":[{\"index\":0,"
            "\"text\":\"abc\",\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_"
            "tokens\":3,"
            "\"completion_tokens\":4,\"total_tokens\":7,\"prompt_tokens_details\":{"
            "\"cached_tokens\":0}}}");
  EXPECT_EQ(openai_error_json("m", "t", 400),
            "{\"error\":{\"message\":\"m\",\"type\":\"t\",\"param\":null,\"code\":400}}");
}

}  // namespace
}  // namespace lmstream::server

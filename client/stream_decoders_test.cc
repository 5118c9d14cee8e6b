// Response decoders: every format gives the same text however its bytes are chunked (every split
// point, byte by byte, and every three-way split of short bodies), and errors surface clearly.
#include "client/stream_decoders.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>

namespace lmstream::client {
namespace {

using Make = std::function<std::unique_ptr<TextDecoder>()>;

bool sanitized() {
  const char* s = std::getenv("LMSTREAM_SANITIZED");
  return s && std::string(s) == "1";
}

std::string decode(const Make& make, const std::vector<std::string_view>& chunks) {
  auto d = make();
  std::string out;
  for (auto c : chunks) d->feed(c, out);
  d->finish(out);
  return out;
}

// The same text for every way of cutting `bytes` into 2 (and, when short, 3) chunks, and 1 byte at
// a time.
void expect_all_splits(const Make& make, const std::string& bytes, const std::string& expected) {
  std::string_view b = bytes;
  ASSERT_EQ(decode(make, {b}), expected);
  for (size_t i = 0; i <= b.size(); ++i)
    ASSERT_EQ(decode(make, {b.substr(0, i), b.substr(i)}), expected) << "split at " << i;
  std::vector<std::string_view> bytewise;
  for (size_t i = 0; i < b.size(); ++i) bytewise.push_back(b.substr(i, 1));
  ASSERT_EQ(decode(make, bytewise), expected) << "byte by byte";
  size_t three_way_max = sanitized() ? 60 : 200;
  if (b.size() > three_way_max) return;
  for (size_t i = 0; i <= b.size(); ++i)
    for (size_t j = i; j <= b.size(); ++j)
      ASSERT_EQ(decode(make, {b.substr(0, i), b.substr(i, j - i), b.substr(j)}), expected)
          << i << "," << j;
}

template <class T>
Make make() {
  return [] { return std::make_unique<T>(); };
}

Make make_auto(std::string ct = "") {
  return [ct] { return std::make_unique<AutoDecoder>(ct); };
}

// An event stream carrying `body` as PayloadParts cut at the given offsets.
std::string event_stream(std::string_view body, std::vector<size_t> cuts) {
  std::string out;
  size_t at = 0;
  cuts.push_back(body.size());
  for (size_t c : cuts) {
    out += eventstream::encode_payload_part(body.substr(at, c - at));
    at = c;
  }
  return out;
}

Make make_es(Format inner) {
  return [inner] { return std::make_unique<EventStreamDecoder>(make_decoder(inner)); };
}

const std::string kSse =
    "data:{\"token\":{\"id\":15043,\"text\":\" "
    "Hello\",\"logprob\":-0.5,\"special\":false},\"generated_text\":null,\"details\":null}\n\n"
    ":\n\n"
    "data:{\"token\":{\"id\":1,\"text\":\"\",\"logprob\":-0.1,\"special\":false},\"generated_"
    "text\":null,\"details\":null}\n\n"
    "data:{\"token\":{\"id\":2,\"text\":\" w\xc3\xb6rld "
    "\\\"\xe2\x9c\x93\\\"\",\"logprob\":-0.1,\"special\":false},\"generated_text\":null,"
    "\"details\":null}\n\n"
    "data:{\"token\":{\"id\":2,\"text\":\"</"
    "s>\",\"logprob\":-0.01,\"special\":true},\"generated_text\":\" Hello "
    "w\xc3\xb6rld\",\"details\":null}\n\n";
const std::string kSseText = " Hello w\xc3\xb6rld \"\xe2\x9c\x93\"";

TEST(SseDecoder, SameTextAtEverySplit) {
  expect_all_splits(make<SseDecoder>(), kSse, kSseText);
  expect_all_splits(make_auto("text/event-stream"), kSse, kSseText);
  expect_all_splits(make_auto(), kSse, kSseText);
}

TEST(SseDecoder, CountsTokenEventsAndSkipsSpecialText) {
  SseDecoder d;
  std::string out;
  d.feed(kSse, out);
  d.finish(out);
  EXPECT_EQ(out, kSseText);
  EXPECT_EQ(d.tokens(), 4u);
}

TEST(SseDecoder, LastEventWithoutNewlineAndCrLf) {
  std::string s = "data: {\"token\":{\"text\":\"a\"}}\r\n\r\ndata:{\"token\":{\"text\":\"b\"}}";
  expect_all_splits(make<SseDecoder>(), s, "ab");
}

TEST(SseDecoder, OpenAiChunksAndDone) {
  std::string s =
      "data: "
      "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}"
      "]}\n\n"
      "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi \"}}]}\n\n"
      "data: "
      "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"there\"},\"finish_reason\":"
      "\"length\"}]}\n\n"
      "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n"
      "data: [DONE]\n\n";
  expect_all_splits(make<SseDecoder>(), s, "Hi there");
}

TEST(SseDecoder, ErrorEventThrowsAfterEarlierText) {
  std::string s =
      "data:{\"token\":{\"text\":\" Hi\"}}\n\ndata:{\"error\":\"Request failed during generation: "
      "boom\",\"error_type\":\"generation\"}\n\n";
  SseDecoder d;
  std::string out;
  try {
    d.feed(s, out);
    FAIL() << "no error";
  } catch (const StreamError& e) {
    EXPECT_EQ(std::string(e.what()),
              "server error: generation: Request failed during generation: boom");
  }
  EXPECT_EQ(out, " Hi");
}

TEST(SseDecoder, RejectsNonSseAndBadJson) {
  SseDecoder d;
  std::string out;
  EXPECT_THROW(d.feed("hello there\n", out), FormatError);
  SseDecoder d2;
  EXPECT_THROW(d2.feed("data:{\"token\":\n", out), FormatError);
}

// LMI 0.25 json pieces: escapes, \u escapes incl. a surrogate pair, raw UTF-8, braces and quotes.
const std::string kLmi =
    "{\"generated_text\": \"{\\\"generated_text\\\": \\\" gen"  // first token starts with
                                                                // {"generated_text": "
    " there!\\n\\n"
    "Dear Alice, \xc3\xa9 \\u00e9 \\ud83d\\ude00 \xf0\x9f\x98\x80 { } \\\\ \\/ \\t"
    " \\\"quoted\\\" end\"}";
const std::string kLmiText =
    "{\"generated_text\": \" gen there!\n\nDear Alice, \xc3\xa9 \xc3\xa9 \xf0\x9f\x98\x80 "
    "\xf0\x9f\x98\x80 { } \\ / \t \"quoted\" end";

TEST(LmiJsonDecoder, SameTextAtEverySplit) {
  expect_all_splits(make<LmiJsonDecoder>(), kLmi, kLmiText);
  expect_all_splits(make_auto("application/json"), kLmi, kLmiText);
}

TEST(LmiJsonDecoder, FirstTokenStartingWithPrefixCharacters) {
  // The notebook client's lstrip('{"generated_text": "') would eat these.
  for (std::string first : {"\\\"", "g", " ", "t", "{", ":", "e"}) {
    std::string body = "{\"generated_text\": \"" + first + "rest\"}";
    std::string want = (first == "\\\"" ? "\"" : first) + "rest";
    expect_all_splits(make<LmiJsonDecoder>(), body, want);
  }
}

TEST(LmiJsonDecoder, DetailsAfterTextAndTgiObject) {
  expect_all_splits(make<LmiJsonDecoder>(),
                    "{\"generated_text\": \"Hi\", \"details\": {\"finish_reason\": \"length\"}}",
                    "Hi");
  expect_all_splits(make_auto(), "{\"generated_text\":\" Hi\"}", " Hi");
}

TEST(LmiJsonDecoder, ErrorObjectMidStringAndAtStart) {
  std::string body =
      "{\"generated_text\": \" Hi{x}\\n{\n  \"code\": 424,\n  \"error\": \"boom\"\n}";
  LmiJsonDecoder d;
  std::string out;
  try {
    for (char c : body) d.feed(std::string_view(&c, 1), out);
    d.finish(out);
    FAIL() << "no error";
  } catch (const StreamError& e) {
    EXPECT_EQ(std::string(e.what()), "server error: error 424: boom");
  }
  EXPECT_EQ(out, " Hi{x}\n");
  LmiJsonDecoder d2;
  std::string out2;
  EXPECT_THROW(
      {
        d2.feed("{\n  \"code\": 424,\n  \"error\": \"bad input\"\n}", out2);
        d2.finish(out2);
      },
      StreamError);
}

TEST(LmiJsonDecoder, RejectsMalformedBodies) {
  for (std::string bad : {"{\"generated_text\": \"abc",           // truncated
                          "{\"generated_text\": \"a\" junk",      // junk after the string
                          "{\"generated_text\": \"a\"} x",        // junk after the object
                          "{\"generated_text\": \"a\\qb\"}",      // bad escape
                          "{\"generated_text\": \"a\\u12g4\"}",   // bad \u escape
                          "{\"generated_text\": \"a\xc3\x28\"}",  // invalid UTF-8
                          "{\"generated_text\": \"a\xc3\"}",      // UTF-8 cut by the closing quote
                          "{\"generated_text\": \"a\nb\"}",       // raw newline
                          "{\"generated_text\": \"a\", \"details\": }", "", "   "}) {
    LmiJsonDecoder d;
    std::string out;
    EXPECT_THROW(
        {
          d.feed(bad, out);
          d.finish(out);
        },
        FormatError)
        << bad;
  }
}

TEST(LmiJsonDecoder, LoneSurrogatesBecomeReplacementCharacters) {
  expect_all_splits(make<LmiJsonDecoder>(), "{\"generated_text\": \"a\\ud83db\\ude00c\\ud83d\"}",
                    "a\xef\xbf\xbd"
                    "b\xef\xbf\xbd"
                    "c\xef\xbf\xbd");
}

TEST(JsonValuesDecoder, JsonLinesLastLineWithoutNewline) {
  std::string s =
      "{\"token\": {\"id\": 15043, \"text\": \" Hi\", \"log_prob\": -0.1}}\n"
      "{\"token\": {\"id\": 2, \"text\": \"</s>\", \"special_token\": true}}\n"
      "{\"token\": {\"id\": 3, \"text\": \" th\xc3\xa9re\"}, \"generated_text\": \" Hi "
      "th\xc3\xa9re\"}";
  expect_all_splits(make<JsonValuesDecoder>(), s, " Hi th\xc3\xa9re");
  expect_all_splits(make_auto("application/jsonlines"), s, " Hi th\xc3\xa9re");
  expect_all_splits(make_auto(), s, " Hi th\xc3\xa9re");
}

TEST(JsonValuesDecoder, Lmi025OutputsLines) {
  std::string s =
      "{\"outputs\": [\" Hello\"]}\n{\"outputs\": [\"\"]}\n{\"outputs\": [\" w\\u00f6rld\"]}\n";
  expect_all_splits(make<JsonValuesDecoder>(), s, " Hello w\xc3\xb6rld");
}

TEST(JsonValuesDecoder, NonStreamedAnswers) {
  expect_all_splits(make_auto(), "[{\"generated_text\":\" Hi there\"}]", " Hi there");
  expect_all_splits(
      make_auto(),
      "{\"id\":\"c\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Yo\"}}]}",
      "Yo");
  JsonValuesDecoder d;
  std::string out;
  EXPECT_THROW(
      {
        d.feed("{\"error\":\"Input validation error: bad\",\"error_type\":\"validation\"}", out);
        d.finish(out);
      },
      StreamError);
}

TEST(JsonValuesDecoder, RejectsTruncatedAndDeepValues) {
  JsonValuesDecoder d;
  std::string out;
  d.feed("{\"token\": {\"text\": \"a\"", out);
  EXPECT_THROW(d.finish(out), FormatError);
  JsonValuesDecoder d2;
  EXPECT_THROW(d2.feed(std::string(1000, '['), out), FormatError);
  JsonValuesDecoder d3;
  EXPECT_THROW(d3.feed("}\n", out), FormatError);
  JsonValuesDecoder d4;
  EXPECT_THROW(d4.feed("42\n", out), FormatError);
}

TEST(DetectFormat, FromContentTypeAndFirstBytes) {
  EXPECT_EQ(detect_format("text/event-stream; charset=utf-8", ""), Format::kSse);
  EXPECT_EQ(detect_format("application/jsonlines", ""), Format::kJsonValues);
  EXPECT_EQ(detect_format("application/json", " \n"), Format::kAuto);
  EXPECT_EQ(detect_format("", "data"), Format::kAuto);
  EXPECT_EQ(detect_format("", "data:{"), Format::kSse);
  EXPECT_EQ(detect_format("", ":\n\n"), Format::kSse);
  EXPECT_EQ(detect_format("", "{\"generated_te"), Format::kAuto);
  EXPECT_EQ(detect_format("", "{\"generated_text\""), Format::kLmiJson);
  EXPECT_EQ(detect_format("", "{\"token\""), Format::kJsonValues);
  EXPECT_EQ(detect_format("", "["), Format::kJsonValues);
  EXPECT_THROW(detect_format("", "<html>"), FormatError);
  AutoDecoder d;
  std::string out;
  EXPECT_THROW(d.finish(out), FormatError);  // empty body
}

TEST(EventStreamDecoder, PayloadPartsSplitAnywhereIncludingInsideUtf8) {
  // Cuts inside "ö" (bytes 2 and 3 of " wö...") and inside a JSON escape.
  size_t o = kSse.find("\xc3\xb6");
  std::string es = event_stream(kSse, {5, o + 1, o + 2, kSse.size() - 3});
  expect_all_splits(make_es(Format::kSse), es, kSseText);
  expect_all_splits(make_es(Format::kAuto), es, kSseText);
  size_t e = kLmi.find("\xc3\xa9");
  std::string es2 = event_stream(kLmi, {1, 21, e + 1, kLmi.find("\\ud83d") + 3, kLmi.size() - 1});
  expect_all_splits(make_es(Format::kLmiJson), es2, kLmiText);
  expect_all_splits(make_es(Format::kAuto), es2, kLmiText);
}

TEST(EventStreamDecoder, EmptyPartsAndUnknownEventsAreSkipped) {
  eventstream::Message other;
  other.headers = {{":message-type", eventstream::HeaderValue::String("event")},
                   {":event-type", eventstream::HeaderValue::String("SomethingNew")}};
  other.payload = "ignored";
  std::string es = eventstream::encode_payload_part("") + eventstream::encode(other) +
                   eventstream::encode_payload_part("data:{\"token\":{\"text\":\"x\"}}\n\n");
  EventStreamDecoder d(make_decoder(Format::kAuto));
  std::string out;
  d.feed(es, out);
  d.finish(out);
  EXPECT_EQ(out, "x");
  EXPECT_EQ(d.payload_parts(), 2u);
}

TEST(EventStreamDecoder, CorruptCrcIsAnError) {
  std::string es = eventstream::encode_payload_part("data:{\"token\":{\"text\":\"hi\"}}\n\n");
  std::string bad = es;
  bad[bad.size() - 6] ^= 0x01;  // a payload byte: the message CRC no longer matches
  EventStreamDecoder d(make_decoder(Format::kSse));
  std::string out;
  try {
    d.feed(bad, out);
    d.finish(out);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("corrupt event stream"), std::string::npos) << e.what();
  }
  EXPECT_EQ(out, "");
  std::string prelude = es;
  prelude[2] ^= 0x10;  // the total length: the prelude CRC no longer matches
  EventStreamDecoder d2(make_decoder(Format::kSse));
  EXPECT_THROW(d2.feed(prelude, out), FormatError);
  EventStreamDecoder d3(make_decoder(Format::kSse));
  d3.feed(es.substr(0, es.size() - 1), out);
  EXPECT_THROW(d3.finish(out), FormatError);  // a partial message at the end
}

TEST(EventStreamDecoder, ModelStreamErrorAndInternalFailure) {
  std::string es =
      eventstream::encode_payload_part("data:{\"token\":{\"text\":\"so far\"}}\n\n") +
      eventstream::encode_model_stream_error("Your model stream broke", "StreamBroken");
  EventStreamDecoder d(make_decoder(Format::kSse));
  std::string out;
  try {
    d.feed(es, out);
    FAIL() << "no error";
  } catch (const StreamError& e) {
    EXPECT_EQ(std::string(e.what()),
              "ModelStreamError: Your model stream broke (ErrorCode StreamBroken)");
  }
  EXPECT_EQ(out, "so far");
  EventStreamDecoder d2(make_decoder(Format::kSse));
  try {
    d2.feed(eventstream::encode_exception("InternalStreamFailure", "internal", ""), out);
    FAIL() << "no error";
  } catch (const StreamError& e) {
    EXPECT_EQ(std::string(e.what()), "InternalStreamFailure: internal");
  }
}

TEST(QuoteBytes, EscapesAndTruncates) {
  EXPECT_EQ(quote_bytes("a\"b\n\x01"), "\"a\\\"b\\n\\x01\"");
  EXPECT_EQ(quote_bytes("abcdef", 3), "\"abc\"...");
}

}  // namespace
}  // namespace lmstream::client

// Tests of the event-stream encoder/decoder: the worked example of reference/api.md §3.3 byte for
// byte, round trips of every header type, every split point of a multi-message stream, corrupt
// CRCs at every byte, and length fields that lie.
#include "aws/eventstream.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

namespace lmstream::eventstream {
namespace {

std::string from_hex(std::string_view hex) {
  std::string out;
  std::string digits;
  for (char c : hex) {
    if (c != ' ' && c != '\n') digits.push_back(c);
  }
  for (size_t i = 0; i + 1 < digits.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16)));
  }
  return out;
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t crc(std::string_view s) {
  return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(s.data()), s.size()));
}

// A message with the given prelude fields, body bytes and correct CRCs (lengths may lie).
std::string raw_message(uint32_t total, uint32_t headers_len, std::string_view body) {
  std::string out;
  put_u32(out, total);
  put_u32(out, headers_len);
  put_u32(out, crc(out));
  out.append(body);
  put_u32(out, crc(out));
  return out;
}

Message all_header_types() {
  Message m;
  m.headers = {
      {"t", {HeaderType::kBoolTrue, 0, ""}},
      {"f", {HeaderType::kBoolFalse, 0, ""}},
      {"byte", {HeaderType::kByte, -5, ""}},
      {"short", {HeaderType::kShort, -300, ""}},
      {"int", {HeaderType::kInteger, 2147483647, ""}},
      {"long", {HeaderType::kLong, -9000000000000LL, ""}},
      {"bytes", {HeaderType::kByteArray, 0, std::string("\0\xff\x01", 3)}},
      {"str", HeaderValue::String("h\xc3\xa9llo")},
      {"ts", {HeaderType::kTimestamp, 1700000000123LL, ""}},
      {"uuid", {HeaderType::kUuid, 0, std::string(16, '\x7f')}},
  };
  m.payload = std::string("bin\0ary\n", 8);
  return m;
}

std::vector<Message> decode_all(std::string_view stream, size_t chunk) {
  Decoder d;
  std::vector<Message> out;
  for (size_t at = 0; at < stream.size(); at += chunk) {
    d.feed(stream.substr(at, chunk));
    while (auto m = d.next()) out.push_back(std::move(*m));
  }
  d.finish();
  return out;
}

TEST(EventStream, WorkedExampleFromReferenceIsExact) {
  const std::string expected = from_hex(
      "0000006c 00000059 2b57ac75"
      "0b 3a6576656e742d74797065 07 000b 5061796c6f616450617274"
      "0d 3a636f6e74656e742d74797065 07 0018 6170706c69636174696f6e2f6f637465742d73747265616d"
      "0d 3a6d6573736167652d74797065 07 0005 6576656e74"
      "68690a 1afd11e3");
  ASSERT_EQ(expected.size(), 108u);
  EXPECT_EQ(encode_payload_part("hi\n"), expected);

  const Message m = decode_one(expected);
  EXPECT_EQ(m.payload, "hi\n");
  ASSERT_EQ(m.headers.size(), 3u);
  EXPECT_EQ(m.headers[0].name, ":event-type");
  EXPECT_EQ(m.string_header(":event-type"), "PayloadPart");
  EXPECT_EQ(m.string_header(":content-type"), "application/octet-stream");
  EXPECT_EQ(m.string_header(":message-type"), "event");
  EXPECT_EQ(m.string_header(":missing"), std::nullopt);
}

TEST(EventStream, EmptyPayloadPartIsLegal) {
  const std::string bytes = encode_payload_part("");
  EXPECT_EQ(bytes.size(), 16u + 89u);
  EXPECT_EQ(decode_one(bytes).payload, "");
}

TEST(EventStream, RoundTripsEveryHeaderType) {
  const Message m = all_header_types();
  EXPECT_EQ(decode_one(encode(m)), m);
}

TEST(EventStream, RoundTripsLargeAndBinaryPayloads) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{255}, size_t{65536}, size_t{1} << 20}) {
    std::string payload(n, '\0');
    for (size_t i = 0; i < n; ++i) payload[i] = static_cast<char>((i * 131) & 0xff);
    const Message m = decode_one(encode_payload_part(payload));
    EXPECT_EQ(m.payload, payload) << n;
  }
}

TEST(EventStream, ExceptionMessageCarriesBotocoreHeadersAndJson) {
  const Message m = decode_one(encode_model_stream_error("broke \"here\"\n", "StreamBroken"));
  EXPECT_EQ(m.string_header(":message-type"), "exception");
  EXPECT_EQ(m.string_header(":exception-type"), "ModelStreamError");
  EXPECT_EQ(m.string_header(":content-type"), "application/json");
  const auto body = nlohmann::json::parse(m.payload);
  EXPECT_EQ(body["Message"], "broke \"here\"\n");
  EXPECT_EQ(body["ErrorCode"], "StreamBroken");

  const Message internal = decode_one(encode_exception("InternalStreamFailure", "x", ""));
  EXPECT_FALSE(nlohmann::json::parse(internal.payload).contains("ErrorCode"));
  // Invalid UTF-8 in an error message must not turn the error path into a crash.
  EXPECT_NO_THROW(decode_one(encode_model_stream_error("bad \xff byte", "StreamBroken")));
}

TEST(EventStream, EverySplitPointAndByteByByteFeedingDecodeTheSameMessages) {
  const std::vector<Message> expected = {
      decode_one(encode_payload_part("data:{\"a\":1}\n\n")), decode_one(encode_payload_part("")),
      all_header_types(), decode_one(encode_model_stream_error("m", "StreamBroken"))};
  std::string stream;
  for (const Message& m : expected) stream += encode(m);
  EXPECT_EQ(decode_all(stream, 1), expected);
  EXPECT_EQ(decode_all(stream, 7), expected);
  for (size_t split = 0; split <= stream.size(); ++split) {
    Decoder d;
    std::vector<Message> got;
    d.feed(std::string_view(stream).substr(0, split));
    while (auto m = d.next()) got.push_back(std::move(*m));
    d.feed(std::string_view(stream).substr(split));
    while (auto m = d.next()) got.push_back(std::move(*m));
    d.finish();
    ASSERT_EQ(got, expected) << "split at " << split;
  }
}

TEST(EventStream, CorruptByteAnywhereIsRejectedWithACrcError) {
  const std::string good = encode(all_header_types());
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    Decoder d;
    d.feed(bad);
    try {
      // A flipped length bit may make the decoder wait for more bytes; feed enough to decide.
      if (!d.next()) {
        d.feed(std::string(1024, '\0'));
        d.next();
      }
      ADD_FAILURE() << "corruption at byte " << i << " accepted";
    } catch (const DecodeError& e) {
      const std::string what = e.what();
      const char* expected = i < kPreludeLength ? "prelude CRC" : "message CRC";
      EXPECT_NE(what.find(expected), std::string::npos) << i << ": " << what;
    }
  }
}

TEST(EventStream, DecoderStaysFailedAfterAnError) {
  std::string bad = encode_payload_part("x");
  bad.back() = static_cast<char>(bad.back() ^ 0x80);
  Decoder d;
  d.feed(bad);
  EXPECT_THROW(d.next(), DecodeError);
  EXPECT_THROW(d.next(), DecodeError);
  EXPECT_THROW(d.feed(encode_payload_part("ok")), DecodeError);
  EXPECT_THROW(d.finish(), DecodeError);
}

TEST(EventStream, LyingLengthFieldsAreRejected) {
  // Total length smaller than prelude + headers + CRC.
  EXPECT_THROW(decode_one(raw_message(15, 0, "")), DecodeError);
  EXPECT_THROW(decode_one(raw_message(20, 8, "abcd")), DecodeError);
  // Headers length above botocore's 128 KiB limit (checked before any of it is buffered).
  EXPECT_THROW(decode_one(raw_message(16 + 200000, 200000, "")), DecodeError);
  // Payload length above 24 MiB.
  EXPECT_THROW(decode_one(raw_message(16 + 25 * 1024 * 1024, 0, "")), DecodeError);
  // Headers length that ends in the middle of a header.
  const std::string header = from_hex("01 61 07 0003 616263");  // "a" = "abc"
  EXPECT_THROW(decode_one(raw_message(16 + 5, 5, header.substr(0, 5))), DecodeError);
  // Header value length running past the headers block.
  EXPECT_THROW(decode_one(raw_message(16 + 7, 7, from_hex("01 61 07 0009 616263"))), DecodeError);
  // A total length that is too large leaves the decoder waiting; end of input is then an error.
  Decoder d;
  d.feed(raw_message(100, 0, "short"));
  EXPECT_EQ(d.next(), std::nullopt);
  EXPECT_THROW(d.finish(), DecodeError);
  // Unknown header type, duplicate names, strings that are not UTF-8.
  EXPECT_THROW(decode_one(raw_message(16 + 3, 3, from_hex("01 61 0a"))), DecodeError);
  EXPECT_THROW(decode_one(raw_message(16 + 6, 6, from_hex("01 61 00 01 61 01"))), DecodeError);
  EXPECT_THROW(decode_one(raw_message(16 + 6, 6, from_hex("01 61 07 0001 ff"))), DecodeError);
  // A valid message followed by garbage is not "one message".
  EXPECT_THROW(decode_one(encode_payload_part("x") + "junk"), DecodeError);
}

TEST(EventStream, EncoderRejectsWhatTheFormatCannotCarry) {
  Message m;
  m.headers = {{"", HeaderValue::String("v")}};
  EXPECT_THROW(encode(m), std::invalid_argument);
  m.headers = {{std::string(256, 'n'), HeaderValue::String("v")}};
  EXPECT_THROW(encode(m), std::invalid_argument);
  m.headers = {{"n", HeaderValue::String(std::string(65536, 'v'))}};
  EXPECT_THROW(encode(m), std::invalid_argument);
  m.headers = {{"n", {HeaderType::kUuid, 0, "short"}}};
  EXPECT_THROW(encode(m), std::invalid_argument);
  m.headers.clear();
  m.payload.assign(kMaxPayloadLength + 1, 'p');
  EXPECT_THROW(encode(m), std::invalid_argument);
}

}  // namespace
}  // namespace lmstream::eventstream

// AWS event-stream framing (application/vnd.amazon.eventstream), as used by SageMaker's
// InvokeEndpointWithResponseStream: an encoder for PayloadPart and exception messages, and an
// incremental decoder that takes arbitrary byte chunks and yields verified messages.
// Wire format: reference/api.md §3.3. CRC32 comes from zlib. This file knows nothing about HTTP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace lmstream::eventstream {

// Limits botocore enforces (eventstream.py); the decoder enforces the same ones.
inline constexpr size_t kPreludeLength = 12;  // total length, headers length, prelude CRC
inline constexpr size_t kMessageCrcLength = 4;
inline constexpr size_t kMinMessageLength = kPreludeLength + kMessageCrcLength;
inline constexpr size_t kMaxHeadersLength = 128 * 1024;
inline constexpr size_t kMaxPayloadLength = 24 * 1024 * 1024;

enum class HeaderType : uint8_t {
  kBoolTrue = 0,
  kBoolFalse = 1,
  kByte = 2,
  kShort = 3,
  kInteger = 4,
  kLong = 5,
  kByteArray = 6,
  kString = 7,
  kTimestamp = 8,  // milliseconds since the epoch
  kUuid = 9,       // 16 bytes
};

// One header value. Integers (and timestamps) live in `integer`; byte arrays, strings and UUIDs
// in `bytes`; booleans are the type alone.
struct HeaderValue {
  HeaderType type = HeaderType::kString;
  int64_t integer = 0;
  std::string bytes;

  static HeaderValue String(std::string s) { return {HeaderType::kString, 0, std::move(s)}; }
  bool operator==(const HeaderValue&) const = default;
};

struct Header {
  std::string name;
  HeaderValue value;
  bool operator==(const Header&) const = default;
};

struct Message {
  std::vector<Header> headers;  // in wire order
  std::string payload;

  // The header called `name`, or nullptr.
  const Header* find(std::string_view name) const;
  // The value of a string header, or nullopt when absent or not a string.
  std::optional<std::string_view> string_header(std::string_view name) const;
  bool operator==(const Message&) const = default;
};

// Encodes one message. Throws std::invalid_argument when a header name is empty or longer than
// 255 bytes, a byte-array/string value exceeds 65535 bytes, a UUID is not 16 bytes, or the
// headers/payload exceed the limits above.
std::string encode(const Message& message);

// A PayloadPart event carrying `payload`: headers `:event-type`=PayloadPart,
// `:content-type`=application/octet-stream, `:message-type`=event (all strings).
std::string encode_payload_part(std::string_view payload);

// A modelled exception: `:exception-type`=<exception_type>, `:content-type`=application/json,
// `:message-type`=exception; payload {"Message": message, "ErrorCode": error_code} (ErrorCode left
// out when empty). botocore raises EventStreamError with code `exception_type` for it.
std::string encode_exception(std::string_view exception_type, std::string_view message,
                             std::string_view error_code);

// The ModelStreamError SageMaker sends when a stream breaks after it started
// (error codes: "StreamBroken", "ModelInvocationTimeExceeded").
inline std::string encode_model_stream_error(std::string_view message,
                                             std::string_view error_code) {
  return encode_exception("ModelStreamError", message, error_code);
}

class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Incremental decoder: feed() any byte chunks, then call next() until it returns nullopt.
// Both CRCs are verified; lengths are checked before anything is buffered beyond the prelude, so a
// lying length field cannot make it allocate more than the limits allow. After a DecodeError the
// decoder stays failed: every later call throws the same error.
class Decoder {
 public:
  void feed(std::string_view bytes);
  // The next complete message, nullopt when more bytes are needed. Throws DecodeError.
  std::optional<Message> next();
  // Call at end of input: throws DecodeError if a partial message is left over.
  void finish() const;
  // Bytes received but not yet returned as messages.
  size_t buffered() const { return buffer_.size() - offset_; }

 private:
  [[noreturn]] void fail(std::string message);

  std::string buffer_;
  size_t offset_ = 0;  // start of the first unconsumed byte in buffer_
  std::optional<std::string> error_;
};

// Decodes exactly one whole message (used by tests and the fuzzer). Throws DecodeError, also when
// `bytes` holds anything after the message.
Message decode_one(std::string_view bytes);

}  // namespace lmstream::eventstream

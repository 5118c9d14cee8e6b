// AWS event-stream encoder and incremental decoder (see eventstream.h). All integers big-endian;
// CRC32 from zlib; the message CRC covers every byte before it, prelude CRC included.
#include "aws/eventstream.h"

#include <zlib.h>

#include <nlohmann/json.hpp>

namespace lmstream::eventstream {
namespace {

uint32_t crc32_of(std::string_view bytes, uint32_t seed = 0) {
  return static_cast<uint32_t>(
      crc32_z(seed, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

void put_be(std::string& out, uint64_t value, int width) {
  for (int i = width - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t get_be(std::string_view bytes, size_t at, int width) {
  uint64_t value = 0;
  for (int i = 0; i < width; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

// Width in bytes of a fixed-size integer header value, 0 for other types.
int integer_width(HeaderType type) {
  switch (type) {
    case HeaderType::kByte:
      return 1;
    case HeaderType::kShort:
      return 2;
    case HeaderType::kInteger:
      return 4;
    case HeaderType::kLong:
    case HeaderType::kTimestamp:
      return 8;
    default:
      return 0;
  }
}

void encode_header(std::string& out, const Header& header) {
  if (header.name.empty() || header.name.size() > 255) {
    throw std::invalid_argument("event-stream header name must be 1..255 bytes");
  }
  out.push_back(static_cast<char>(header.name.size()));
  out += header.name;
  const HeaderValue& v = header.value;
  out.push_back(static_cast<char>(v.type));
  switch (v.type) {
    case HeaderType::kBoolTrue:
    case HeaderType::kBoolFalse:
      return;
    case HeaderType::kByte:
    case HeaderType::kShort:
    case HeaderType::kInteger:
    case HeaderType::kLong:
    case HeaderType::kTimestamp:
      put_be(out, static_cast<uint64_t>(v.integer), integer_width(v.type));
      return;
    case HeaderType::kByteArray:
    case HeaderType::kString:
      if (v.bytes.size() > 0xffff) {
        throw std::invalid_argument("event-stream header value longer than 65535 bytes");
      }
      put_be(out, v.bytes.size(), 2);
      out += v.bytes;
      return;
    case HeaderType::kUuid:
      if (v.bytes.size() != 16) throw std::invalid_argument("event-stream UUID must be 16 bytes");
      out += v.bytes;
      return;
  }
  throw std::invalid_argument("unknown event-stream header type");
}

// Strict UTF-8 check (no overlongs, no surrogates, max U+10FFFF), as Python's decode('utf-8').
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    unsigned lo = 0x80, hi = 0xbf;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      const unsigned l = (k == 1) ? lo : 0x80, h = (k == 1) ? hi : 0xbf;
      if (cc < l || cc > h) return false;
    }
    i += n + 1;
  }
  return true;
}

// Parses the headers block of one message (already CRC-checked).
std::vector<Header> decode_headers(std::string_view block) {
  std::vector<Header> headers;
  size_t at = 0;
  auto need = [&](size_t n, const char* what) {
    if (block.size() - at < n) {
      throw DecodeError(std::string("event-stream header truncated (") + what + ")");
    }
  };
  while (at < block.size()) {
    const size_t name_len = static_cast<unsigned char>(block[at++]);
    need(name_len + 1, "name");
    Header header;
    header.name.assign(block.substr(at, name_len));
    at += name_len;
    const auto type = static_cast<unsigned char>(block[at++]);
    if (type > static_cast<unsigned char>(HeaderType::kUuid)) {
      throw DecodeError("event-stream header '" + header.name + "' has unknown value type " +
                        std::to_string(type));
    }
    header.value.type = static_cast<HeaderType>(type);
    switch (header.value.type) {
      case HeaderType::kBoolTrue:
      case HeaderType::kBoolFalse:
        break;
      case HeaderType::kByte:
      case HeaderType::kShort:
      case HeaderType::kInteger:
      case HeaderType::kLong:
      case HeaderType::kTimestamp: {
        const int width = integer_width(header.value.type);
        need(width, "integer value");
        const uint64_t raw = get_be(block, at, width);
        // Sign-extend from `width` bytes.
        const int shift = 64 - 8 * width;
        header.value.integer = static_cast<int64_t>(raw << shift) >> shift;
        at += width;
        break;
      }
      case HeaderType::kByteArray:
      case HeaderType::kString: {
        need(2, "value length");
        const size_t len = get_be(block, at, 2);
        at += 2;
        need(len, "value");
        header.value.bytes.assign(block.substr(at, len));
        at += len;
        if (header.value.type == HeaderType::kString && !valid_utf8(header.value.bytes)) {
          throw DecodeError("event-stream header '" + header.name + "' is not valid UTF-8");
        }
        break;
      }
      case HeaderType::kUuid:
        need(16, "uuid");
        header.value.bytes.assign(block.substr(at, 16));
        at += 16;
        break;
    }
    for (const Header& h : headers) {
      if (h.name == header.name) throw DecodeError("duplicate event-stream header: " + h.name);
    }
    headers.push_back(std::move(header));
  }
  return headers;
}

}  // namespace

const Header* Message::find(std::string_view name) const {
  for (const Header& h : headers) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

std::optional<std::string_view> Message::string_header(std::string_view name) const {
  const Header* h = find(name);
  if (!h || h->value.type != HeaderType::kString) return std::nullopt;
  return std::string_view(h->value.bytes);
}

std::string encode(const Message& message) {
  std::string headers;
  for (const Header& h : message.headers) encode_header(headers, h);
  if (headers.size() > kMaxHeadersLength) {
    throw std::invalid_argument("event-stream headers exceed 128 KiB");
  }
  if (message.payload.size() > kMaxPayloadLength) {
    throw std::invalid_argument("event-stream payload exceeds 24 MiB");
  }
  const size_t total = kMinMessageLength + headers.size() + message.payload.size();
  std::string out;
  out.reserve(total);
  put_be(out, total, 4);
  put_be(out, headers.size(), 4);
  put_be(out, crc32_of(out), 4);
  out += headers;
  out += message.payload;
  put_be(out, crc32_of(out), 4);
  return out;
}

std::string encode_payload_part(std::string_view payload) {
  Message m;
  m.headers = {{":event-type", HeaderValue::String("PayloadPart")},
               {":content-type", HeaderValue::String("application/octet-stream")},
               {":message-type", HeaderValue::String("event")}};
  m.payload.assign(payload);
  return encode(m);
}

std::string encode_exception(std::string_view exception_type, std::string_view message,
                             std::string_view error_code) {
  nlohmann::json body = nlohmann::json::object();
  body["Message"] = std::string(message);
  if (!error_code.empty()) body["ErrorCode"] = std::string(error_code);
  Message m;
  m.headers = {{":exception-type", HeaderValue::String(std::string(exception_type))},
               {":content-type", HeaderValue::String("application/json")},
               {":message-type", HeaderValue::String("exception")}};
  // Invalid UTF-8 in the message is replaced rather than thrown: this runs on error paths.
  m.payload = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return encode(m);
}

void Decoder::fail(std::string message) {
  error_ = message;
  throw DecodeError(std::move(message));
}

void Decoder::feed(std::string_view bytes) {
  if (error_) throw DecodeError(*error_);
  if (offset_ > 0 && offset_ >= buffer_.size() / 2) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Message> Decoder::next() {
  if (error_) throw DecodeError(*error_);
  const std::string_view data = std::string_view(buffer_).substr(offset_);
  if (data.size() < kPreludeLength) return std::nullopt;

  const uint64_t total = get_be(data, 0, 4);
  const uint64_t headers_len = get_be(data, 4, 4);
  const uint32_t prelude_crc = static_cast<uint32_t>(get_be(data, 8, 4));
  const uint32_t computed_prelude_crc = crc32_of(data.substr(0, 8));
  if (prelude_crc != computed_prelude_crc) {
    fail("event-stream prelude CRC mismatch (corrupt stream)");
  }
  if (headers_len > kMaxHeadersLength) {
    fail("event-stream headers length " + std::to_string(headers_len) + " exceeds 131072");
  }
  if (total < kMinMessageLength + headers_len) {
    fail("event-stream total length " + std::to_string(total) +
         " is smaller than its prelude, headers and CRC");
  }
  const uint64_t payload_len = total - kMinMessageLength - headers_len;
  if (payload_len > kMaxPayloadLength) {
    fail("event-stream payload length " + std::to_string(payload_len) + " exceeds 25165824");
  }
  if (data.size() < total) return std::nullopt;

  const std::string_view whole = data.substr(0, total);
  const uint32_t message_crc = static_cast<uint32_t>(get_be(whole, total - 4, 4));
  if (message_crc != crc32_of(whole.substr(0, total - 4))) {
    fail("event-stream message CRC mismatch (corrupt stream)");
  }
  Message message;
  try {
    message.headers = decode_headers(whole.substr(kPreludeLength, headers_len));
  } catch (const DecodeError& e) {
    fail(e.what());
  }
  message.payload.assign(whole.substr(kPreludeLength + headers_len, payload_len));
  offset_ += total;
  return message;
}

void Decoder::finish() const {
  if (error_) throw DecodeError(*error_);
  if (buffered() != 0) {
    throw DecodeError("event stream ended inside a message (" + std::to_string(buffered()) +
                      " bytes left over)");
  }
}

Message decode_one(std::string_view bytes) {
  Decoder decoder;
  decoder.feed(bytes);
  std::optional<Message> message = decoder.next();
  if (!message) throw DecodeError("event-stream message truncated");
  decoder.finish();
  return std::move(*message);
}

}  // namespace lmstream::eventstream

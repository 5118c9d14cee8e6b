// Incremental decoders for the response bodies `lmstream invoke` reads: bytes in (any chunking),
// generated text out. TGI server-sent events, JSON lines / whole JSON answers, the LMI 0.25
// `{"generated_text": "...` body (a streaming JSON-string unescaper), and SageMaker's event stream
// wrapping any of them (reference/api.md §1.5, §2.5, §3.3). Pure: no I/O, no clocks.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "aws/eventstream.h"

namespace lmstream::client {

// The server reported an error inside a successful (HTTP 2xx) response: a TGI error event, an LMI
// 424 error object, a SageMaker ModelStreamError / InternalStreamFailure.
class StreamError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The bytes are not in the format being decoded (also: a corrupt event stream).
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `s` (at most `max` bytes of it) as a quoted, printable string for error messages.
std::string quote_bytes(std::string_view s, size_t max = 120);

enum class Format { kAuto, kSse, kJsonValues, kLmiJson };
const char* format_name(Format f);

// Common interface. feed() appends the text completed by `bytes` to `out` and may then throw
// StreamError/FormatError (text decoded before the problem is still in `out`). After a throw the
// decoder must not be used again. finish() marks the end of the body.
class TextDecoder {
 public:
  virtual ~TextDecoder() = default;
  virtual void feed(std::string_view bytes, std::string& out) = 0;
  virtual void finish(std::string& out) = 0;
  // Token events seen (SSE / JSON lines), or text pieces emitted where the format has no token
  // boundaries (LMI json); tokens_exact() says which.
  size_t tokens() const { return tokens_; }
  virtual bool tokens_exact() const { return true; }

 protected:
  size_t tokens_ = 0;
};

// Splits bytes into lines ("\n" or "\r\n" endings removed); a last line without "\n" is returned by
// finish(). Lines longer than max_line throw FormatError.
class LineSplitter {
 public:
  explicit LineSplitter(size_t max_line = 8u << 20) : max_line_(max_line) {}
  // Calls on_line(std::string_view) for each completed line.
  template <class F>
  void feed(std::string_view bytes, F&& on_line);
  template <class F>
  void finish(F&& on_line);

 private:
  void check_length(size_t length) const;  // throws when length > max_line_
  std::string partial_;
  size_t max_line_;
};

// TGI / OpenAI server-sent events: `data:` lines (optional space), keep-alive comments, `[DONE]`.
class SseDecoder final : public TextDecoder {
 public:
  void feed(std::string_view bytes, std::string& out) override;
  void finish(std::string& out) override;

 private:
  void line(std::string_view l, std::string& out);
  LineSplitter lines_;
  bool done_ = false;
};

// Consecutive JSON values separated by newlines: JSON lines (`{"token": {...}}`, LMI 0.25
// `{"outputs": ["..."]}`), a whole non-streamed answer (TGI `[{"generated_text": ...}]`, an OpenAI
// completion), or a multi-line (pretty-printed) error object.
class JsonValuesDecoder final : public TextDecoder {
 public:
  void feed(std::string_view bytes, std::string& out) override;
  void finish(std::string& out) override;

 private:
  void scan(std::string_view bytes, std::string& out);
  void complete(std::string& out);
  std::string pending_;
  int depth_ = 0;
  bool in_string_ = false, escape_ = false;
};

// The LMI json formatter's body `{"generated_text": "` + escaped pieces + `"}` (also with a
// trailing `, "details": {...}`), decoded as it arrives: splits may fall anywhere, inside an
// escape, a \uXXXX (or surrogate pair) or a UTF-8 character. A body that starts as another JSON
// value, or DJL's pretty-printed `{\n  "code": 424, ...}` error appended mid-string, is handed to a
// JsonValuesDecoder (so errors surface as StreamError).
class LmiJsonDecoder final : public TextDecoder {
 public:
  LmiJsonDecoder();
  ~LmiJsonDecoder() override;
  void feed(std::string_view bytes, std::string& out) override;
  void finish(std::string& out) override;
  bool tokens_exact() const override { return false; }

 private:
  enum class State { kPrefix, kString, kSuffix, kFallback };
  void prefix(std::string& out);
  void string(std::string& out);
  void suffix();
  void to_fallback(std::string bytes, std::string& out);
  [[noreturn]] void fail(const std::string& why) const;

  State state_ = State::kPrefix;
  std::string pending_;  // bytes not yet consumed
  std::string seen_;     // first bytes of the body, for error messages
  unsigned high_surrogate_ = 0;
  std::unique_ptr<JsonValuesDecoder> fallback_;
};

// Picks the format from the content type (`text/event-stream`, `application/jsonlines`) or, when
// that says nothing, from the first bytes; then delegates. An empty body is a FormatError.
class AutoDecoder final : public TextDecoder {
 public:
  explicit AutoDecoder(std::string content_type = "") : content_type_(std::move(content_type)) {}
  void feed(std::string_view bytes, std::string& out) override;
  void finish(std::string& out) override;
  bool tokens_exact() const override { return inner_ ? inner_->tokens_exact() : true; }
  Format detected() const { return detected_; }

 private:
  void sync_tokens() { tokens_ = inner_ ? inner_->tokens() : 0; }
  std::string content_type_;
  std::string head_;
  Format detected_ = Format::kAuto;
  std::unique_ptr<TextDecoder> inner_;
};

// Guesses the format from a content type and the first bytes: kAuto while undecided (more bytes
// needed). Throws FormatError when the bytes fit no known format.
Format detect_format(std::string_view content_type, std::string_view head);

std::unique_ptr<TextDecoder> make_decoder(Format f, std::string content_type = "");

// application/vnd.amazon.eventstream: PayloadPart payloads go to `inner` (their concatenation is
// the container's body); ModelStreamError / InternalStreamFailure / error messages throw
// StreamError; a bad CRC or framing throws FormatError. Unknown event types are skipped.
class EventStreamDecoder final : public TextDecoder {
 public:
  explicit EventStreamDecoder(std::unique_ptr<TextDecoder> inner) : inner_(std::move(inner)) {}
  void feed(std::string_view bytes, std::string& out) override;
  void finish(std::string& out) override;
  bool tokens_exact() const override { return inner_->tokens_exact(); }
  size_t payload_parts() const { return parts_; }

 private:
  eventstream::Decoder decoder_;
  std::unique_ptr<TextDecoder> inner_;
  size_t parts_ = 0;
};

// ---- template definitions ----

template <class F>
void LineSplitter::feed(std::string_view bytes, F&& on_line) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(bytes);
      check_length(partial_.size());
      return;
    }
    std::string_view piece = bytes.substr(0, nl);
    bytes.remove_prefix(nl + 1);
    if (partial_.size() + piece.size() > max_line_) check_length(partial_.size() + piece.size());
    std::string_view line = piece;
    if (!partial_.empty()) {
      partial_.append(piece);
      line = partial_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    on_line(line);
    partial_.clear();
  }
}

template <class F>
void LineSplitter::finish(F&& on_line) {
  if (partial_.empty()) return;
  std::string_view line = partial_;
  if (line.back() == '\r') line.remove_suffix(1);
  on_line(line);
  partial_.clear();
}

}  // namespace lmstream::client

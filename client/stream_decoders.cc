// Incremental response-body decoders for `lmstream invoke` (see stream_decoders.h).
#include "client/stream_decoders.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "base/strings.h"

namespace lmstream::client {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxValueBytes = 8u << 20;  // one JSON value / event
constexpr int kMaxDepth = 256;
constexpr size_t kMaxPrefixBytes = 4096;      // whitespace + `{"generated_text": "`
constexpr size_t kMaxSuffixBytes = 1u << 20;  // `, "details": {...}}`

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Removes JSON whitespace (RFC 8259: space, tab, CR, LF; is_ws) at both ends. Not base::trim,
// which also removes \v and \f: those are not whitespace to a JSON parser.
std::string_view trim_json_ws(std::string_view s) {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

void append_utf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// Length of the longest prefix of `s` made of whole, valid UTF-8 sequences. *incomplete is set when
// what follows is the valid start of a sequence cut off by the end of `s`.
size_t utf8_valid_prefix(std::string_view s, bool* incomplete) {
  *incomplete = false;
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF)
      n = 2;
    else if (b == 0xE0)
      n = 3, lo = 0xA0;
    else if (b >= 0xE1 && b <= 0xEC)
      n = 3;
    else if (b == 0xED)
      n = 3, hi = 0x9F;  // no surrogates
    else if (b >= 0xEE && b <= 0xEF)
      n = 3;
    else if (b == 0xF0)
      n = 4, lo = 0x90;
    else if (b >= 0xF1 && b <= 0xF3)
      n = 4;
    else if (b == 0xF4)
      n = 4, hi = 0x8F;
    else
      return i;
    for (size_t k = 1; k < n; ++k) {
      if (i + k >= s.size()) {
        *incomplete = true;
        return i;
      }
      auto c = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return i;
    }
    i += n;
  }
  return i;
}

const json* member(const json& o, const char* key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : &*it;
}

const std::string* string_member(const json& o, const char* key) {
  const json* v = member(o, key);
  return v && v->is_string() ? &v->get_ref<const std::string&>() : nullptr;
}

bool true_member(const json& o, const char* key) {
  const json* v = member(o, key);
  return v && v->is_boolean() && v->get<bool>();
}

[[noreturn]] void throw_error_object(const json& o) {
  const json& e = o.at("error");
  std::string msg;
  if (e.is_string()) {
    msg = e.get<std::string>();
    if (auto* type = string_member(o, "error_type"))
      msg = *type + ": " + msg;
    else if (const json* code = member(o, "code"); code && code->is_number_integer())
      msg = "error " + std::to_string(code->get<int64_t>()) + ": " + msg;
  } else if (e.is_object() && string_member(e, "message")) {
    msg = *string_member(e, "message");
    if (auto* type = string_member(e, "type")) msg = *type + ": " + msg;
  } else {
    msg = std::string("(an error of JSON type ") + e.type_name() + ")";
  }
  throw StreamError("server error: " + msg);
}

// The text one decoded JSON value carries; counts token events in *tokens.
void handle_value(const json& v, std::string& out, size_t* tokens, int depth = 0) {
  if (v.is_array()) {
    if (depth > 4) throw FormatError("unexpected nested JSON arrays in the response");
    for (const json& e : v) handle_value(e, out, tokens, depth + 1);
    return;
  }
  if (!v.is_object())
    throw FormatError(std::string("unexpected JSON value in the response (") + v.type_name() + ")");
  if (const json* e = member(v, "error"); e && !e->is_null()) throw_error_object(v);
  if (const json* tok = member(v, "token"); tok && tok->is_object()) {
    ++*tokens;
    bool special = true_member(*tok, "special") || true_member(*tok, "special_token");
    if (auto* text = string_member(*tok, "text"); text && !special) out += *text;
    return;
  }
  if (const json* outputs = member(v, "outputs"); outputs && outputs->is_array()) {
    ++*tokens;
    for (const json& o : *outputs)
      if (o.is_string()) out += o.get_ref<const std::string&>();
    return;
  }
  if (const json* choices = member(v, "choices"); choices && choices->is_array()) {
    if (choices->empty() || !(*choices)[0].is_object()) return;  // e.g. a usage-only chunk
    const json& c = (*choices)[0];
    const std::string* text = nullptr;
    if (const json* d = member(c, "delta"); d && d->is_object())
      text = string_member(*d, "content");
    else if (const json* m = member(c, "message"); m && m->is_object())
      text = string_member(*m, "content");
    else
      text = string_member(c, "text");
    if (text && !text->empty()) {
      ++*tokens;
      out += *text;
    }
    return;
  }
  if (auto* text = string_member(v, "generated_text")) {
    out += *text;
    return;
  }
  if (const json* code = member(v, "code");
      code && code->is_number() && string_member(v, "message"))
    throw StreamError("server error " + code->dump() + ": " + *string_member(v, "message"));
}

void handle_json_text(std::string_view text, std::string& out, size_t* tokens) {
  json v = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) throw FormatError("invalid JSON in the response: " + quote_bytes(text));
  handle_value(v, out, tokens);
}

Format detect_format_in(std::string_view content_type, std::string_view head);

}  // namespace

std::string quote_bytes(std::string_view s, size_t max) {
  std::string r = "\"";
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      r += '\\';
      r += char(c);
    } else if (c == '\n') {
      r += "\\n";
    } else if (c < 0x20 || c >= 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      r += buf;
    } else {
      r += char(c);
    }
  }
  r += '"';
  if (s.size() > max) r += "...";
  return r;
}

const char* format_name(Format f) {
  switch (f) {
    case Format::kSse:
      return "sse";
    case Format::kJsonValues:
      return "json";
    case Format::kLmiJson:
      return "lmi-json";
    case Format::kAuto:
      break;
  }
  return "auto";
}

void LineSplitter::check_length(size_t length) const {
  if (length > max_line_)
    throw FormatError("a line of the response is longer than " + std::to_string(max_line_) +
                      " bytes");
}

// ---- SSE ----

void SseDecoder::feed(std::string_view bytes, std::string& out) {
  lines_.feed(bytes, [&](std::string_view l) { line(l, out); });
}

void SseDecoder::finish(std::string& out) {
  lines_.finish([&](std::string_view l) { line(l, out); });
}

void SseDecoder::line(std::string_view l, std::string& out) {
  if (done_ || l.empty() || l.front() == ':') return;  // event separator, keep-alive comment
  size_t colon = l.find(':');
  std::string_view field = l.substr(0, colon);
  if (field == "event" || field == "id" || field == "retry") return;
  if (field != "data" || colon == std::string_view::npos)
    throw FormatError("not a server-sent event line: " + quote_bytes(l));
  std::string_view data = l.substr(colon + 1);
  while (!data.empty() && data.front() == ' ') data.remove_prefix(1);
  if (data == "[DONE]") {
    done_ = true;
    return;
  }
  handle_json_text(data, out, &tokens_);
}

// ---- JSON values ----

void JsonValuesDecoder::feed(std::string_view bytes, std::string& out) { scan(bytes, out); }

void JsonValuesDecoder::scan(std::string_view bytes, std::string& out) {
  for (char c : bytes) {
    pending_ += c;
    if (in_string_) {
      if (escape_)
        escape_ = false;
      else if (c == '\\')
        escape_ = true;
      else if (c == '"')
        in_string_ = false;
    } else if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      if (++depth_ > kMaxDepth) throw FormatError("JSON in the response is nested too deeply");
    } else if (c == '}' || c == ']') {
      if (--depth_ < 0)
        throw FormatError("unbalanced JSON in the response: " + quote_bytes(pending_));
      if (depth_ == 0) complete(out);
    } else if (c == '\n' && depth_ == 0) {
      complete(out);
    }
    if (pending_.size() > kMaxValueBytes)
      throw FormatError("a JSON value in the response is longer than " +
                        std::to_string(kMaxValueBytes) + " bytes");
  }
}

void JsonValuesDecoder::complete(std::string& out) {
  std::string text = std::move(pending_);
  pending_.clear();
  std::string_view t = trim_json_ws(text);
  if (!t.empty()) handle_json_text(t, out, &tokens_);
}

void JsonValuesDecoder::finish(std::string& out) {
  if (!trim_json_ws(pending_).empty() && (depth_ > 0 || in_string_))
    throw FormatError("the response ended inside a JSON value: " +
                      quote_bytes(trim_json_ws(pending_)));
  complete(out);
}

// ---- LMI json ----

LmiJsonDecoder::LmiJsonDecoder() = default;
LmiJsonDecoder::~LmiJsonDecoder() = default;

void LmiJsonDecoder::fail(const std::string& why) const {
  throw FormatError("not an LMI generated_text body (" + why +
                    "); received: " + quote_bytes(seen_, 200));
}

void LmiJsonDecoder::feed(std::string_view bytes, std::string& out) {
  if (seen_.size() < 200) seen_.append(bytes.substr(0, 200 - seen_.size()));
  if (state_ == State::kFallback) {
    fallback_->feed(bytes, out);
    return;
  }
  pending_.append(bytes);
  if (state_ == State::kPrefix) prefix(out);
  if (state_ == State::kString) string(out);
  if (state_ == State::kSuffix) suffix();
}

void LmiJsonDecoder::to_fallback(std::string bytes, std::string& out) {
  state_ = State::kFallback;
  pending_.clear();
  fallback_ = std::make_unique<JsonValuesDecoder>();
  fallback_->feed(bytes, out);
}

void LmiJsonDecoder::prefix(std::string& out) {
  static constexpr std::string_view kKey = "generated_text";
  std::string_view p = pending_;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < p.size() && is_ws(p[i])) ++i;
    return i < p.size();
  };
  auto wait = [&] {
    if (pending_.size() > kMaxPrefixBytes)
      fail("no opening {\"generated_text\": \" in the first bytes");
  };
  if (!skip_ws()) return wait();
  if (p[i] != '{') return to_fallback(std::move(pending_), out);
  ++i;
  if (!skip_ws()) return wait();
  if (p[i] != '"') return to_fallback(std::move(pending_), out);
  size_t close = p.find('"', i + 1);
  if (close == std::string_view::npos) {
    if (kKey.starts_with(p.substr(i + 1))) return wait();
    return to_fallback(std::move(pending_), out);
  }
  if (p.substr(i + 1, close - i - 1) != kKey) return to_fallback(std::move(pending_), out);
  i = close + 1;
  if (!skip_ws()) return wait();
  if (p[i] != ':') fail("expected ':' after \"generated_text\"");
  ++i;
  if (!skip_ws()) return wait();
  if (p[i] != '"') return to_fallback(std::move(pending_), out);  // e.g. "generated_text": null
  if (i + 1 > kMaxPrefixBytes) fail("no opening {\"generated_text\": \" in the first bytes");
  pending_.erase(0, i + 1);
  state_ = State::kString;
}

void LmiJsonDecoder::string(std::string& out) {
  const std::string& p = pending_;
  std::string text;
  auto flush_surrogate = [&] {
    if (high_surrogate_) append_utf8(text, 0xFFFD);  // a lone high surrogate
    high_surrogate_ = 0;
  };
  size_t i = 0;
  while (i < p.size()) {
    char c = p[i];
    if (c == '"') {
      flush_surrogate();
      state_ = State::kSuffix;
      ++i;
      break;
    }
    if (c == '\\') {
      if (i + 1 >= p.size()) break;
      char k = p[i + 1];
      if (k == 'u') {
        if (i + 6 > p.size()) break;
        unsigned code = 0;
        for (size_t j = i + 2; j < i + 6; ++j) {
          int d = std::isxdigit(static_cast<unsigned char>(p[j]))
                      ? (std::isdigit(static_cast<unsigned char>(p[j]))
                             ? p[j] - '0'
                             : (std::tolower(p[j]) - 'a' + 10))
                      : -1;
          if (d < 0) fail("bad escape " + quote_bytes(std::string_view(p).substr(i, 6)));
          code = code * 16 + unsigned(d);
        }
        i += 6;
        if (code >= 0xD800 && code <= 0xDBFF) {
          flush_surrogate();
          high_surrogate_ = code;
        } else if (code >= 0xDC00 && code <= 0xDFFF) {
          if (high_surrogate_)
            append_utf8(text, 0x10000 + ((high_surrogate_ - 0xD800) << 10) + (code - 0xDC00));
          else
            append_utf8(text, 0xFFFD);
          high_surrogate_ = 0;
        } else {
          flush_surrogate();
          append_utf8(text, code);
        }
        continue;
      }
      char e;
      switch (k) {
        case '"':
          e = '"';
          break;
        case '\\':
          e = '\\';
          break;
        case '/':
          e = '/';
          break;
        case 'b':
          e = '\b';
          break;
        case 'f':
          e = '\f';
          break;
        case 'n':
          e = '\n';
          break;
        case 'r':
          e = '\r';
          break;
        case 't':
          e = '\t';
          break;
        default:
          fail("bad escape " + quote_bytes(std::string_view(p).substr(i, 2)));
      }
      flush_surrogate();
      text += e;
      i += 2;
      continue;
    }
    if (c == '{') {
      if (i + 1 >= p.size()) break;  // hold: `{\n` starts DJL's error object
      if (p[i + 1] == '\n') {
        flush_surrogate();
        if (!text.empty()) ++tokens_;
        out += text;
        return to_fallback(p.substr(i), out);
      }
    } else if (static_cast<unsigned char>(c) < 0x20) {
      fail("raw control character in the JSON string");
    }
    // A run of plain bytes (a '{' not followed by a newline included).
    size_t j = i + 1;
    while (j < p.size() && p[j] != '"' && p[j] != '\\' && p[j] != '{' &&
           static_cast<unsigned char>(p[j]) >= 0x20)
      ++j;
    std::string_view run = std::string_view(p).substr(i, j - i);
    bool incomplete;
    size_t valid = utf8_valid_prefix(run, &incomplete);
    if (valid > 0) flush_surrogate();
    text.append(run.substr(0, valid));
    i += valid;
    if (valid < run.size()) {
      if (incomplete && j == p.size()) break;  // the rest of the character is still to come
      fail("invalid UTF-8 in the generated text");
    }
  }
  pending_.erase(0, i);
  if (!text.empty()) ++tokens_;
  out += text;
}

void LmiJsonDecoder::suffix() {
  std::string_view s = trim_json_ws(pending_);
  if (s.empty()) return;
  if (s.front() == '}') {
    if (s.size() > 1) fail("unexpected bytes after the generated text");
    return;
  }
  if (s.front() != ',') fail("unexpected bytes after the generated text");
  if (pending_.size() > kMaxSuffixBytes) fail("the fields after the generated text are too long");
}

void LmiJsonDecoder::finish(std::string& out) {
  switch (state_) {
    case State::kFallback:
      return fallback_->finish(out);
    case State::kPrefix:
      if (trim_json_ws(pending_).empty()) fail("empty body");
      fail("the body ended before the opening {\"generated_text\": \"");
    case State::kString:
      fail("the body ended inside the generated text");
    case State::kSuffix:
      break;
  }
  std::string_view s = trim_json_ws(pending_);
  if (s.empty()) fail("missing closing }");
  if (s.front() == ',' && !json::accept("{\"generated_text\": \"\"" + std::string(s)))
    fail("invalid JSON after the generated text");
}

// ---- format detection ----

Format detect_format(std::string_view content_type, std::string_view full_head) {
  // Decide on the first kMaxPrefixBytes only, so that the answer does not depend on chunking.
  std::string_view head = full_head.substr(0, kMaxPrefixBytes);
  Format f = detect_format_in(content_type, head);
  if (f == Format::kAuto && full_head.size() >= kMaxPrefixBytes)
    throw FormatError("cannot tell the response format from its first bytes: " + quote_bytes(head));
  return f;
}

namespace {
Format detect_format_in(std::string_view content_type, std::string_view head) {
  std::string ct = base::to_lower(base::trim(content_type.substr(0, content_type.find(';'))));
  if (ct == "text/event-stream") return Format::kSse;
  if (ct == "application/jsonlines" || ct == "application/x-jsonlines" ||
      ct == "application/jsonl" || ct == "application/x-ndjson" || ct == "application/ndjson")
    return Format::kJsonValues;
  size_t i = 0;
  while (i < head.size() && is_ws(head[i])) ++i;
  if (i == head.size()) return Format::kAuto;
  std::string_view rest = head.substr(i);
  if (rest.front() == '[') return Format::kJsonValues;
  if (rest.front() == '{') {
    size_t j = 1;
    while (j < rest.size() && is_ws(rest[j])) ++j;
    if (j == rest.size()) return Format::kAuto;
    if (rest[j] != '"') return Format::kJsonValues;
    size_t close = rest.find('"', j + 1);
    if (close == std::string_view::npos)
      return rest.size() - j > 64 ? Format::kJsonValues : Format::kAuto;
    return rest.substr(j + 1, close - j - 1) == "generated_text" ? Format::kLmiJson
                                                                 : Format::kJsonValues;
  }
  for (std::string_view field : {"data:", ":", "event:", "id:", "retry:"}) {
    if (rest.starts_with(field)) return Format::kSse;
    if (field.starts_with(rest)) return Format::kAuto;
  }
  throw FormatError("cannot tell the response format from its first bytes: " + quote_bytes(rest));
}
}  // namespace

std::unique_ptr<TextDecoder> make_decoder(Format f, std::string content_type) {
  switch (f) {
    case Format::kSse:
      return std::make_unique<SseDecoder>();
    case Format::kJsonValues:
      return std::make_unique<JsonValuesDecoder>();
    case Format::kLmiJson:
      return std::make_unique<LmiJsonDecoder>();
    case Format::kAuto:
      break;
  }
  return std::make_unique<AutoDecoder>(std::move(content_type));
}

void AutoDecoder::feed(std::string_view bytes, std::string& out) {
  if (inner_) {
    inner_->feed(bytes, out);
    sync_tokens();
    return;
  }
  head_.append(bytes);
  detected_ = detect_format(content_type_, head_);
  if (detected_ == Format::kAuto) return;
  inner_ = make_decoder(detected_);
  std::string head = std::move(head_);
  head_.clear();
  inner_->feed(head, out);
  sync_tokens();
}

void AutoDecoder::finish(std::string& out) {
  if (!inner_) {
    if (trim_json_ws(head_).empty()) throw FormatError("the response body is empty");
    throw FormatError("cannot tell the response format from its bytes: " + quote_bytes(head_));
  }
  inner_->finish(out);
  sync_tokens();
}

// ---- event stream ----

void EventStreamDecoder::feed(std::string_view bytes, std::string& out) {
  std::optional<eventstream::Message> m;
  try {
    decoder_.feed(bytes);
    m = decoder_.next();
  } catch (const eventstream::DecodeError& e) {
    throw FormatError(std::string("corrupt event stream: ") + e.what());
  }
  while (m) {
    std::string_view type = m->string_header(":message-type").value_or("");
    if (type == "event") {
      if (m->string_header(":event-type").value_or("") == "PayloadPart") {
        ++parts_;
        inner_->feed(m->payload, out);
        tokens_ = inner_->tokens();
      }
    } else if (type == "exception") {
      std::string kind(m->string_header(":exception-type").value_or("exception"));
      json p = json::parse(m->payload, nullptr, false);
      std::string msg = m->payload, code;
      if (p.is_object()) {
        if (auto* s = string_member(p, "Message"))
          msg = *s;
        else if (auto* s2 = string_member(p, "message"))
          msg = *s2;
        if (auto* c = string_member(p, "ErrorCode")) code = *c;
      }
      throw StreamError(kind + ": " + msg + (code.empty() ? "" : " (ErrorCode " + code + ")"));
    } else if (type == "error") {
      throw StreamError(std::string(m->string_header(":error-code").value_or("error")) + ": " +
                        std::string(m->string_header(":error-message").value_or("")));
    } else {
      throw FormatError("event stream message with unknown :message-type " + quote_bytes(type));
    }
    try {
      m = decoder_.next();
    } catch (const eventstream::DecodeError& e) {
      throw FormatError(std::string("corrupt event stream: ") + e.what());
    }
  }
}

void EventStreamDecoder::finish(std::string& out) {
  try {
    decoder_.finish();
  } catch (const eventstream::DecodeError& e) {
    throw FormatError(std::string("corrupt event stream: ") + e.what());
  }
  inner_->finish(out);
  tokens_ = inner_->tokens();
}

}  // namespace lmstream::client

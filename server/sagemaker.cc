// SageMaker runtime front door pieces (see sagemaker.h).
#include "server/sagemaker.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <stdexcept>

#include "aws/eventstream.h"
#include "server/wire_json.h"

namespace lmstream::server::sagemaker {
namespace {

bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

int tgi_status(const std::string& error_type) {
  if (error_type == "validation") return 422;
  if (error_type == "overloaded") return 429;
  if (error_type == "unavailable" || error_type == "healthcheck") return 503;
  return 500;
}

// One SSE event ("data:" + JSON object with "error") -> its JSON and the error text.
std::optional<std::pair<std::string, nlohmann::json>> tgi_error_event(std::string_view event) {
  std::string_view line = event;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.substr(0, 5) != "data:") return std::nullopt;
  line.remove_prefix(5);
  line = trim(line);
  if (line.empty() || line.front() != '{') return std::nullopt;
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("error") || j.contains("token")) return std::nullopt;
  return std::make_pair(std::string(line), std::move(j));
}

// The container headers SageMaker relays to the caller.
void relayed_headers(const std::vector<Header>& headers, std::string* content_type, std::string* custom_attributes) {
  for (auto& [k, v] : headers) {
    std::string l = lower(k);
    if (l == "content-type") *content_type = v;
    if (l == "x-amzn-sagemaker-custom-attributes") *custom_attributes = v;
  }
}

}  // namespace

bool valid_endpoint_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxEndpointName) return false;
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return alnum(c) || c == '-'; });
}

std::string endpoint_name_from(std::string_view model_name) {
  std::string out;
  for (char c : model_name) {
    if (alnum(c)) out += c;
    else if (!out.empty() && out.back() != '-') out += '-';
  }
  if (out.size() > kMaxEndpointName) out.resize(kMaxEndpointName);
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "lmstream" : out;
}

bool is_llama2_chat(std::string_view s) {
  std::string l = lower(s);
  bool llama2 = l.find("llama-2") != std::string::npos || l.find("llama2") != std::string::npos;
  return llama2 && l.find("chat") != std::string::npos;
}

bool eula_accepted(const std::string* custom_attributes) {
  if (!custom_attributes) return false;
  std::string_view rest = *custom_attributes;
  while (true) {
    size_t cut = rest.find_first_of(";,");
    std::string_view item = trim(rest.substr(0, cut));
    size_t eq = item.find('=');
    if (eq != std::string_view::npos && trim(item.substr(0, eq)) == "accept_eula" &&
        lower(trim(item.substr(eq + 1))) == "true")
      return true;
    if (cut == std::string_view::npos) return false;
    rest.remove_prefix(cut + 1);
  }
}

std::string eula_message() {
  return "This model is a Llama 2 chat model: its use is governed by the Llama 2 Community License "
         "(https://ai.meta.com/llama/license/). To accept the end-user license agreement (EULA), send "
         "CustomAttributes=\"accept_eula=true\" (HTTP header X-Amzn-SageMaker-Custom-Attributes: "
         "accept_eula=true) with the request.";
}

std::string request_id() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  char s[37];
  std::snprintf(s, sizeof s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return s;
}

HttpResponse aws_error(int status, std::string_view code, std::string_view message, const std::string& rid) {
  nlohmann::ordered_json j;
  j["message"] = std::string(message);
  return {status,
          {{"Content-Type", "application/json"}, {"x-amzn-ErrorType", std::string(code)}, {"x-amzn-RequestId", rid}},
          dump(j)};
}

HttpResponse model_error(int original_status, std::string_view original_body, const std::string& rid) {
  bool client = original_status >= 400 && original_status < 500;
  std::string msg = std::string("Received ") + (client ? "client" : "server") + " error (" +
                    std::to_string(original_status) + ") from primary with message \"" + std::string(original_body) +
                    "\". See the lmstream server log for details.";
  nlohmann::ordered_json j;
  j["ErrorCode"] = client ? "CLIENT_ERROR_FROM_MODEL" : "SERVER_ERROR_FROM_MODEL";
  j["Message"] = msg;
  j["OriginalMessage"] = std::string(original_body);
  j["OriginalStatusCode"] = original_status;
  return {424, {{"Content-Type", "application/json"}, {"x-amzn-ErrorType", "ModelError"}, {"x-amzn-RequestId", rid}},
          dump(j)};
}

ChunkSplit split_chunk(ApiMode mode, std::string_view chunk) {
  ChunkSplit out;
  if (mode == ApiMode::kLmi) {
    // DJL's error chunk is pretty-printed: its raw newline never occurs in escaped text.
    size_t at = chunk.find("{\n  \"code\": ");
    if (at == std::string_view::npos) {
      out.payload = chunk;
      return out;
    }
    auto j = nlohmann::json::parse(chunk.substr(at), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      out.payload = chunk;
      return out;
    }
    out.payload = chunk.substr(0, at);
    out.error_body = chunk.substr(at);
    out.error = j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : out.error_body;
    out.status = j.contains("code") && j["code"].is_number_integer() ? j["code"].get<int>() : 500;
    if (out.status < 400 || out.status > 599) out.status = 500;
    return out;
  }
  // TGI: SSE events end with "\n\n"; JSON text never holds a raw newline.
  size_t pos = 0;
  while (pos < chunk.size()) {
    size_t end = chunk.find("\n\n", pos);
    size_t next = end == std::string_view::npos ? chunk.size() : end + 2;
    if (auto e = tgi_error_event(chunk.substr(pos, next - pos))) {
      out.payload = chunk.substr(0, pos);
      out.error_body = e->first;
      auto& j = e->second;
      out.error = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
      out.status = tgi_status(j.contains("error_type") && j["error_type"].is_string()
                                  ? j["error_type"].get<std::string>()
                                  : std::string());
      return out;
    }
    pos = next;
  }
  out.payload = chunk;
  return out;
}

// ---------------------------------------------------------------- Decorator

Decorator::Decorator(std::shared_ptr<Exchange> inner, Operation op, ApiMode mode, ResponseInfo info)
    : inner_(std::move(inner)), op_(op), mode_(mode), info_(std::move(info)), view_(inner_->request()) {
  if (op_ == Operation::kStream) {
    // InvokeEndpointWithResponseStream carries Accept as X-Amzn-SageMaker-Accept.
    std::optional<std::string> accept;
    if (const std::string* a = view_.header("x-amzn-sagemaker-accept")) accept = *a;
    std::erase_if(view_.headers, [](const Header& h) { return lower(h.first) == "accept"; });
    if (accept) view_.headers.emplace_back("Accept", *accept);
  }
}

std::vector<Header> Decorator::common_headers(const std::vector<Header>& container) const {
  std::string ct, attrs;
  relayed_headers(container, &ct, &attrs);
  std::vector<Header> h;
  if (op_ == Operation::kStream) {
    h.emplace_back("Content-Type", "application/vnd.amazon.eventstream");
    if (!ct.empty()) h.emplace_back("X-Amzn-SageMaker-Content-Type", ct);
  } else if (!ct.empty()) {
    h.emplace_back("Content-Type", ct);
  }
  h.emplace_back("x-Amzn-Invoked-Production-Variant", info_.variant);
  h.emplace_back("x-amzn-RequestId", info_.request_id);
  if (!attrs.empty()) h.emplace_back("X-Amzn-SageMaker-Custom-Attributes", attrs);
  return h;
}

void Decorator::respond(HttpResponse r) {
  if (ended_ || started_) return;
  ended_ = true;
  if (r.status < 200 || r.status > 299) {
    inner_->respond(model_error(r.status, r.body, info_.request_id));
    return;
  }
  if (op_ == Operation::kInvoke) {
    r.headers = common_headers(r.headers);
    inner_->respond(std::move(r));
    return;
  }
  // A whole (non-streamed) answer on the streaming API: one PayloadPart.
  inner_->start_stream(200, common_headers(r.headers));
  if (!r.body.empty()) inner_->write(eventstream::encode_payload_part(r.body));
  inner_->finish();
}

void Decorator::start_stream(int status, std::vector<Header> headers) {
  if (ended_ || started_) return;
  started_ = true;
  status_ = status;
  container_headers_ = std::move(headers);
  if (!held_) send_stream_headers();
}

void Decorator::send_stream_headers() {
  sent_head_ = true;
  if (status_ < 200 || status_ > 299) {
    // A container stream with an error status: SageMaker reports ModelError, not the bytes.
    inner_->respond(model_error(status_, "", info_.request_id));
    broke_ = true;
    return;
  }
  inner_->start_stream(200, common_headers(container_headers_));
}

void Decorator::write(std::string chunk) {
  if (!started_ || ended_ || broke_ || chunk.empty()) return;
  if (held_) {
    pending_.push_back(std::move(chunk));
    return;
  }
  emit(std::move(chunk));
}

void Decorator::emit(std::string chunk) {
  if (broke_) return;
  if (op_ == Operation::kInvoke) {
    inner_->write(std::move(chunk));
    return;
  }
  ChunkSplit s = split_chunk(mode_, chunk);
  if (!s.payload.empty()) inner_->write(eventstream::encode_payload_part(s.payload));
  if (s.error) {
    inner_->write(eventstream::encode_model_stream_error(
        "The model's response stream failed: " + *s.error, "StreamBroken"));
    broke_ = true;
    inner_->finish();
  }
}

void Decorator::finish() {
  if (!started_ || ended_) return;
  ended_ = true;
  if (held_) return;  // release() sends it
  if (!broke_) inner_->finish();
}

void Decorator::release() {
  if (!held_) return;
  held_ = false;
  if (!started_) return;  // answered with respond(), or the handler answers later
  if (ended_) {
    // The whole stream was produced synchronously: an error before any output is the
    // container refusing the request.
    std::string all;
    for (auto& c : pending_) all += c;
    ChunkSplit s = split_chunk(mode_, all);
    if (s.error && s.payload.empty()) {
      pending_.clear();
      broke_ = true;
      inner_->respond(model_error(s.status, s.error_body, info_.request_id));
      return;
    }
  }
  send_stream_headers();
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& c : pending) emit(std::move(c));
  if (ended_ && !broke_) inner_->finish();
}

void Decorator::abort(const std::string& message) {
  held_ = false;
  pending_.clear();
  if (!sent_head_ && !(ended_ && !started_)) {
    ended_ = broke_ = true;
    inner_->respond(aws_error(500, "InternalFailure", message, info_.request_id));
    return;
  }
  if (!broke_ && sent_head_) {
    if (op_ == Operation::kStream)
      inner_->write(eventstream::encode_exception("InternalStreamFailure", message, ""));
    broke_ = ended_ = true;
    inner_->finish();
  }
}

}  // namespace lmstream::server::sagemaker

// SageMaker runtime front door pieces (see sagemaker.h).
#include "server/sagemaker.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <stdexcept>
#include <utility>

#include "aws/eventstream.h"
#include "base/strings.h"
#include "server/wire_json.h"

namespace lmstream::server::sagemaker {
namespace {

bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// The container headers SageMaker relays to the caller.
void relayed_headers(const std::vector<Header>& headers, std::string* content_type,
                     std::string* custom_attributes) {
  for (auto& [k, v] : headers) {
    if (base::iequals(k, "content-type")) *content_type = v;
    if (base::iequals(k, "x-amzn-sagemaker-custom-attributes")) *custom_attributes = v;
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
    if (alnum(c))
      out += c;
    else if (!out.empty() && out.back() != '-')
      out += '-';
  }
  if (out.size() > kMaxEndpointName) out.resize(kMaxEndpointName);
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "lmstream" : out;
}

bool is_llama2_chat(std::string_view s) {
  std::string l = base::to_lower(s);
  bool llama2 = l.find("llama-2") != std::string::npos || l.find("llama2") != std::string::npos;
  return llama2 && l.find("chat") != std::string::npos;
}

bool eula_accepted(const std::string* custom_attributes) {
  if (!custom_attributes) return false;
  std::string_view rest = *custom_attributes;
  while (true) {
    size_t cut = rest.find_first_of(";,");
    std::string_view item = base::trim(rest.substr(0, cut));
    size_t eq = item.find('=');
    if (eq != std::string_view::npos && base::trim(item.substr(0, eq)) == "accept_eula" &&
        base::iequals(base::trim(item.substr(eq + 1)), "true"))
      return true;
    if (cut == std::string_view::npos) return false;
    rest.remove_prefix(cut + 1);
  }
}

std::string eula_message() {
  return "This model is a Llama 2 chat model: its use is governed by the Llama 2 Community License "
         "(https://ai.meta.com/llama/license/). To accept the end-user license agreement (EULA), "
         "send "
         "CustomAttributes=\"accept_eula=true\" (HTTP header X-Amzn-SageMaker-Custom-Attributes: "
         "accept_eula=true) with the request.";
}

std::string request_id() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  char s[37];
  std::snprintf(s, sizeof s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                b[13], b[14], b[15]);
  return s;
}

HttpResponse aws_error(int status, std::string_view code, std::string_view message,
                       const std::string& rid) {
  nlohmann::ordered_json j;
  j["message"] = std::string(message);
  return {status,
          {{"Content-Type", "application/json"},
           {"x-amzn-ErrorType", std::string(code)},
           {"x-amzn-RequestId", rid}},
          dump(j)};
}

HttpResponse model_error(int original_status, std::string_view original_body,
                         const std::string& rid) {
  bool client = original_status >= 400 && original_status < 500;
  std::string msg = std::string("Received ") + (client ? "client" : "server") + " error (" +
                    std::to_string(original_status) + ") from primary with message \"" +
                    std::string(original_body) + "\". See the lmstream server log for details.";
  nlohmann::ordered_json j;
  j["ErrorCode"] = client ? "CLIENT_ERROR_FROM_MODEL" : "SERVER_ERROR_FROM_MODEL";
  j["Message"] = msg;
  j["OriginalMessage"] = std::string(original_body);
  j["OriginalStatusCode"] = original_status;
  return {424,
          {{"Content-Type", "application/json"},
           {"x-amzn-ErrorType", "ModelError"},
           {"x-amzn-RequestId", rid}},
          dump(j)};
}

HttpResponse error_response(const Error& e, const std::string& rid) {
  const ErrorInfo& i = error_info(e.kind);
  return aws_error(i.aws_status, i.aws_code, error_text(e), rid);
}

std::string stream_error(const Error& e, ApiMode container) {
  std::string text = container == ApiMode::kLmi ? lmi_error_text(e) : error_text(e);
  return eventstream::encode_model_stream_error("The model's response stream failed: " + text,
                                                "StreamBroken");
}

// ---------------------------------------------------------------- EventStreamEncoder

std::string EventStreamEncoder::on_token(const TokenEvent& ev) {
  std::string bytes = inner_->on_token(ev);
  return bytes.empty() ? bytes : eventstream::encode_payload_part(bytes);
}

StreamEnd EventStreamEncoder::on_end(const FinalEvent& fe) {
  StreamEnd end = inner_->on_end(fe);
  if (!end.bytes.empty()) end.bytes = eventstream::encode_payload_part(end.bytes);
  return end;
}

std::string EventStreamEncoder::error_event(const Error& e) { return stream_error(e, container_); }

std::vector<std::string> EventStreamEncoder::on_final_chunks(const FinalEvent& fe) {
  StreamEnd end = on_end(fe);
  std::vector<std::string> out;
  if (!end.bytes.empty()) out.push_back(std::move(end.bytes));
  if (end.error) out.push_back(error_event(*end.error));
  return out;
}

std::string EventStreamEncoder::keepalive() {
  std::string bytes = inner_->keepalive();
  return bytes.empty() ? bytes : eventstream::encode_payload_part(bytes);
}

// ---------------------------------------------------------------- EndpointReply

EndpointReply::EndpointReply(std::shared_ptr<Exchange> inner, Operation op, ApiMode mode,
                             ResponseInfo info)
    : Reply(std::move(inner)), op_(op), mode_(mode), info_(std::move(info)), view_(ex_->request()) {
  if (op_ == Operation::kStream) {
    // InvokeEndpointWithResponseStream carries Accept as X-Amzn-SageMaker-Accept.
    std::optional<std::string> accept;
    if (const std::string* a = view_.header("x-amzn-sagemaker-accept")) accept = *a;
    std::erase_if(view_.headers, [](const Header& h) { return base::iequals(h.first, "accept"); });
    if (accept) view_.headers.emplace_back("Accept", *accept);
  }
}

std::vector<Header> EndpointReply::common_headers(const std::vector<Header>& container) const {
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

void EndpointReply::respond(HttpResponse r) {
  if (std::exchange(answered_, true)) return;
  if (op_ == Operation::kInvoke) {
    r.headers = common_headers(r.headers);
    ex_->respond(std::move(r));
    return;
  }
  // A whole (non-streamed) answer on the streaming API: one PayloadPart.
  ex_->start_stream(200, common_headers(r.headers));
  if (!r.body.empty()) ex_->write(eventstream::encode_payload_part(r.body));
  ex_->finish();
}

void EndpointReply::error(ErrorAnswer a) {
  // The container refused the request: ModelError quotes its status and body, streamed or not.
  if (std::exchange(answered_, true)) return;
  note_error(ex_->access(), a.error);
  ex_->respond(model_error(a.response.status, a.response.body, info_.request_id));
}

void EndpointReply::stream(std::vector<Header> headers, std::shared_ptr<RequestStream> rs,
                           std::shared_ptr<StreamEncoder> enc, double keepalive_s,
                           std::function<void(const FinalEvent&)> after) {
  if (std::exchange(answered_, true)) return;
  ex_->start_stream(200, common_headers(headers));
  if (op_ == Operation::kStream) enc = std::make_shared<EventStreamEncoder>(std::move(enc), mode_);
  pump_encoded(ex_, std::move(rs), std::move(enc), keepalive_s, std::move(after));
}

void EndpointReply::internal_failure() {
  if (std::exchange(answered_, true)) return;
  ex_->respond(error_response({ErrorKind::kInternal, ""}, info_.request_id));
}

}  // namespace lmstream::server::sagemaker

// `lmstream invoke` request building, sending and decoding (see invoke.h).
#include "client/invoke.h"

#include <nlohmann/json.hpp>

#include <cctype>

#include "base/strings.h"
#include "base/version.h"
#include "http/client.h"

namespace lmstream::client {
namespace {

using ojson = nlohmann::ordered_json;
using SteadyClock = std::chrono::steady_clock;

bool valid_endpoint_name(std::string_view n) {
  // ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$, at most 63 characters (api.md §3.2).
  if (n.empty() || n.size() > 63 || n.front() == '-' || n.back() == '-') return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  return true;
}

double since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

const std::string* str(const nlohmann::json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
}

}  // namespace

std::optional<Api> api_from_name(std::string_view name) {
  if (name == "auto") return Api::kAuto;
  if (name == "tgi") return Api::kTgi;
  if (name == "lmi") return Api::kLmi;
  if (name == "openai") return Api::kOpenai;
  return std::nullopt;
}

std::string build_payload(const InvokeOptions& o) {
  if (o.payload) return *o.payload;
  const GenerationParams& p = o.params;
  ojson j;
  if (o.api == Api::kOpenai) {
    j["model"] = "lmstream";
    if (!o.messages.empty()) {
      j["messages"] = ojson::array();
      for (const auto& [role, content] : o.messages)
        j["messages"].push_back({{"role", role}, {"content", content}});
    } else {
      j["prompt"] = o.inputs;
    }
    if (p.max_new_tokens) j["max_tokens"] = *p.max_new_tokens;
    if (p.temperature) j["temperature"] = *p.temperature;
    if (p.top_p) j["top_p"] = *p.top_p;
    if (p.top_k) j["top_k"] = *p.top_k;
    if (p.repetition_penalty) j["repetition_penalty"] = *p.repetition_penalty;
    if (p.seed) j["seed"] = *p.seed;
    if (!p.stop.empty()) j["stop"] = p.stop;
    if (o.stream) j["stream"] = true;
    return j.dump();
  }
  j["inputs"] = o.inputs;
  ojson params = ojson::object();
  if (p.do_sample) params["do_sample"] = *p.do_sample;
  if (p.top_p) params["top_p"] = *p.top_p;
  if (p.temperature) params["temperature"] = *p.temperature;
  if (p.top_k) params["top_k"] = *p.top_k;
  if (p.max_new_tokens) params["max_new_tokens"] = *p.max_new_tokens;
  if (p.repetition_penalty) params["repetition_penalty"] = *p.repetition_penalty;
  if (p.seed) params["seed"] = *p.seed;
  // TGI reads `stop`, lmi-dist 0.25 `stop_sequences` (api.md §6.10); each ignores the other.
  if (!p.stop.empty() && o.api != Api::kLmi) params["stop"] = p.stop;
  if (!p.stop.empty() && o.api != Api::kTgi) params["stop_sequences"] = p.stop;
  // The generated text only, as the notebooks ask (TGI's /invocations defaults to the full text).
  params["return_full_text"] = p.return_full_text.value_or(false);
  j["parameters"] = params;
  if (o.stream) j["stream"] = true;
  return j.dump();
}

std::string request_path(const InvokeOptions& o) {
  if (!o.endpoint.empty()) {
    if (!valid_endpoint_name(o.endpoint))
      throw InvokeError("invalid endpoint name '" + o.endpoint +
                        "': 1-63 letters, digits and inner hyphens (^[a-zA-Z0-9](-*[a-zA-Z0-9])*)");
    return "/endpoints/" + o.endpoint +
           (o.stream ? "/invocations-response-stream" : "/invocations");
  }
  switch (o.api) {
    case Api::kTgi:
      return o.stream ? "/generate_stream" : "/generate";
    case Api::kOpenai:
      return o.messages.empty() ? "/v1/completions" : "/v1/chat/completions";
    case Api::kLmi:
    case Api::kAuto:
      break;
  }
  return "/invocations";
}

HttpRequest build_request(const InvokeOptions& o, const Url& url, sigv4::Clock::time_point now) {
  HttpRequest r;
  r.method = "POST";
  r.target = url.base_path + request_path(o);
  r.body = build_payload(o);
  bool sagemaker = !o.endpoint.empty();
  sigv4::Request s;
  s.method = r.method;
  s.path = r.target;
  s.body = r.body;
  s.headers.emplace_back("Host", url.host_header());
  s.headers.emplace_back("Content-Type", o.content_type);
  if (!o.accept.empty())
    s.headers.emplace_back(sagemaker && o.stream ? "X-Amzn-SageMaker-Accept" : "Accept", o.accept);
  if (!o.custom_attributes.empty())
    s.headers.emplace_back("X-Amzn-SageMaker-Custom-Attributes", o.custom_attributes);
  if (sagemaker && o.credentials) {
    sigv4::SignOptions so;
    so.region = o.region;
    so.service = "sagemaker";
    so.now = now;
    sigv4::sign(s, *o.credentials, so);
  } else if (!o.api_key.empty()) {
    s.headers.emplace_back("Authorization", "Bearer " + o.api_key);
  }
  r.headers = std::move(s.headers);
  r.headers.emplace_back("User-Agent", std::string("lmstream-invoke/") +
                                           base::kVersion);  // unsigned, as botocore leaves it
  return r;
}

std::string http_error_message(int status, std::string_view reason,
                               std::optional<std::string> amzn_error_type, std::string_view body) {
  std::string head =
      "HTTP " + std::to_string(status) + (reason.empty() ? "" : " " + std::string(reason));
  std::string code, message;
  if (amzn_error_type) code = amzn_error_type->substr(0, amzn_error_type->find(':'));
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (code.empty()) {
      if (auto* c = str(j, "code"))
        code = *c;
      else if (auto* c2 = str(j, "Code"))
        code = *c2;
      else if (auto* t = str(j, "__type"))
        code = t->substr(t->find('#') == std::string::npos ? 0 : t->find('#') + 1);
      else if (auto* et = str(j, "error_type"))
        code = *et;  // TGI
      else if (auto* ty = str(j, "type"))
        code = *ty;  // DJL
    }
    if (auto* m = str(j, "message"))
      message = *m;
    else if (auto* m2 = str(j, "Message"))
      message = *m2;
    else if (auto* e = str(j, "error"))
      message = *e;                                                          // TGI, DJL 424
    else if (auto it = j.find("error"); it != j.end() && it->is_object()) {  // OpenAI
      if (auto* m3 = str(*it, "message")) message = *m3;
      if (auto* t = str(*it, "type"); t && code.empty()) code = *t;
    }
    if (auto* om = str(j, "OriginalMessage")) message += " (original message: " + *om + ")";
  }
  if (message.empty()) {
    std::string_view b = body;
    while (!b.empty() && std::isspace(static_cast<unsigned char>(b.back()))) b.remove_suffix(1);
    message = b.empty() ? "(empty body)" : quote_bytes(b, 300);
  }
  return head + ": " + (code.empty() ? "" : code + ": ") + message;
}

std::unique_ptr<TextDecoder> make_response_decoder(const InvokeOptions& o,
                                                   std::string_view content_type,
                                                   std::string_view sagemaker_content_type) {
  std::string ct = base::to_lower(content_type.substr(0, content_type.find(';')));
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  bool event_stream = ct == "application/vnd.amazon.eventstream";
  std::string inner_ct(event_stream ? sagemaker_content_type : content_type);
  Format f = Format::kAuto;
  bool custom_payload = o.payload.has_value();  // its "stream" flag is unknown: detect
  switch (o.api) {
    case Api::kTgi:
    case Api::kOpenai:
      if (!custom_payload) f = o.stream ? Format::kSse : Format::kJsonValues;
      break;
    case Api::kLmi: {
      std::string ict = base::to_lower(inner_ct.substr(0, inner_ct.find(';')));
      f = ict.find("jsonl") != std::string::npos || ict.find("ndjson") != std::string::npos
              ? Format::kJsonValues
              : Format::kLmiJson;
      break;
    }
    case Api::kAuto:
      break;
  }
  auto inner = make_decoder(f, inner_ct);
  if (event_stream) return std::make_unique<EventStreamDecoder>(std::move(inner));
  return inner;
}

InvokeStats invoke(const InvokeOptions& o, const std::function<void(std::string_view)>& on_text) {
  Url url = parse_url(o.endpoint_url);
  HttpRequest req = build_request(o, url, sigv4::Clock::now());
  http::ClientRequest cr;
  cr.method = req.method;
  cr.url = url.absolute(req.target);
  cr.headers = std::move(req.headers);
  cr.body = std::move(req.body);
  http::ClientOptions copt;
  copt.connect_timeout = o.timeouts.connect;
  copt.stall_timeout = o.timeouts.read;
  copt.redirects.follow = false;  // a 3xx is reported like any other non-2xx answer
  copt.ca_file = o.ca_file;

  InvokeStats st;
  std::optional<http::ResponseHead> head;  // set once the final response's head arrived
  bool failed_status = false;              // non-2xx: the body is the error message
  std::string error_body;
  std::unique_ptr<TextDecoder> decoder;
  std::string text;
  auto t0 = SteadyClock::now();
  auto deliver = [&] {
    if (text.empty()) return;
    if (st.ttft_s < 0) st.ttft_s = since(t0);
    on_text(text);
    text.clear();
  };
  auto status_error = [&] {
    return InvokeError(http_error_message(head->status, head->reason,
                                          head->header("x-amzn-ErrorType"), error_body));
  };
  http::ClientCallbacks cb;
  cb.on_head = [&](const http::ResponseHead& h) {
    st.ttfb_s = since(t0);
    head = h;
    failed_status = h.status < 200 || h.status > 299;
    if (!failed_status)
      decoder = make_response_decoder(o, h.header("Content-Type").value_or(""),
                                      h.header("X-Amzn-SageMaker-Content-Type").value_or(""));
  };
  cb.on_body = [&](std::string_view piece) {
    if (failed_status) {
      size_t limit = 64 * 1024;
      if (error_body.size() < limit) error_body.append(piece.substr(0, limit - error_body.size()));
      return;
    }
    decoder->feed(piece, text);
    deliver();
  };
  try {
    http::perform(cr, copt, cb);
    if (failed_status) throw status_error();
    decoder->finish(text);
  } catch (const HttpError&) {
    // Report the status even when the error body is cut short.
    if (failed_status) throw status_error();
    deliver();  // what arrived before the failure
    throw;
  } catch (const InvokeError&) {
    throw;
  } catch (...) {
    deliver();
    throw;
  }
  deliver();
  st.total_s = since(t0);
  st.tokens = decoder->tokens();
  st.tokens_exact = decoder->tokens_exact();
  if (st.tokens == 0) {  // a non-streamed answer: TGI's x-generated-tokens header, when sent
    std::string g = head->header("x-generated-tokens").value_or("");
    if (!g.empty() && g.size() < 10 && g.find_first_not_of("0123456789") == std::string::npos) {
      st.tokens = std::stoul(g);
      st.tokens_exact = true;
    }
  }
  return st;
}

}  // namespace lmstream::client

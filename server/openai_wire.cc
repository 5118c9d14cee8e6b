// OpenAI wire encoders (see openai_wire.h).
#include "server/openai_wire.h"

#include "server/wire_json.h"

namespace lmstream::server {
namespace {
std::string data(const std::string& json) { return "data: " + json + "\n\n"; }
}  // namespace

const char* openai_finish_reason(FinishReason r) {
  return r == FinishReason::kLength ? "length" : "stop";
}

std::string openai_error_json(const std::string& message, const std::string& type, int code) {
  WireJson e = WireJson::object();
  e["message"] = message;
  e["type"] = type;
  e["param"] = nullptr;
  e["code"] = code;
  WireJson j = WireJson::object();
  j["error"] = e;
  return dump(j);
}

std::string OpenAiStreamEncoder::chunk(const std::string& text, const char* finish,
                                       bool role) const {
  WireJson c = WireJson::object();
  c["index"] = 0;
  if (o_.chat) {
    WireJson d = WireJson::object();
    if (role) d["role"] = "assistant";
    if (role || !text.empty()) d["content"] = text;
    c["delta"] = d;
  } else {
    c["text"] = text;
  }
  c["logprobs"] = nullptr;
  c["finish_reason"] = finish ? WireJson(finish) : WireJson(nullptr);
  WireJson j = WireJson::object();
  j["id"] = o_.id;
  j["object"] = o_.chat ? "chat.completion.chunk" : "text_completion";
  j["created"] = o_.created;
  j["model"] = o_.model;
  j["choices"] = WireJson::array({c});
  return data(dump(j));
}

std::string OpenAiStreamEncoder::on_start() { return o_.chat ? chunk("", nullptr, true) : ""; }

std::string OpenAiStreamEncoder::on_token(const TokenEvent& ev) {
  if (ev.emit.empty()) return "";
  return chunk(ev.emit, nullptr, false);
}

StreamEnd OpenAiStreamEncoder::on_end(const FinalEvent& fe) {
  if (auto err = final_error(fe)) return {"", std::move(err)};
  return {chunk(fe.tail, openai_finish_reason(fe.reason), false), std::nullopt};
}

std::string OpenAiStreamEncoder::on_final(const FinalEvent& fe) {
  StreamEnd end = on_end(fe);
  if (end.error) end.bytes += openai_error_event(*end.error);
  return end.bytes + "data: [DONE]\n\n";
}

std::string openai_response_json(const OpenAiOptions& o, const FinalEvent& fe) {
  WireJson c = WireJson::object();
  c["index"] = 0;
  if (o.chat) {
    WireJson m = WireJson::object();
    m["role"] = "assistant";
    m["content"] = fe.generated_text;
    c["message"] = m;
  } else {
    c["text"] = fe.generated_text;
  }
  c["logprobs"] = nullptr;
  c["finish_reason"] = openai_finish_reason(fe.reason);
  WireJson u = WireJson::object();
  u["prompt_tokens"] = fe.input_tokens;
  u["completion_tokens"] = fe.generated_tokens;
  u["total_tokens"] = fe.input_tokens + fe.generated_tokens;
  WireJson details = WireJson::object();
  details["cached_tokens"] = fe.cached_tokens;  // as OpenAI: prompt tokens served from the cache
  u["prompt_tokens_details"] = details;
  WireJson j = WireJson::object();
  j["id"] = o.id;
  j["object"] = o.chat ? "chat.completion" : "text_completion";
  j["created"] = o.created;
  j["model"] = o.model;
  j["choices"] = WireJson::array({c});
  j["usage"] = u;
  return dump(j);
}

}  // namespace lmstream::server

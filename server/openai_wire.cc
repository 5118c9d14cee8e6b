// OpenAI wire encoders (see openai_wire.h).
#include "server/openai_wire.h"

#include <cmath>

#include "server/wire_json.h"

namespace lmstream::server {
namespace {
std::string data(const std::string& json) { return "data: " + json + "\n\n"; }
}  // namespace

const char* openai_finish_reason(FinishReason r) {
  return r == FinishReason::kLength ? "length" : "stop";
}

std::string openai_error_json(const std::string& message, const std::string& type, int code,
                              const std::string& param) {
  WireJson e = WireJson::object();
  e["message"] = message;
  e["type"] = type;
  e["param"] = param.empty() ? WireJson(nullptr) : WireJson(param);
  e["code"] = code;
  WireJson j = WireJson::object();
  j["error"] = e;
  return dump(j);
}

namespace {

WireJson bytes_of(const std::string& t) {
  WireJson b = WireJson::array();
  for (unsigned char ch : t) b.push_back(int(ch));
  return b;
}

WireJson lp_value(float lp) { return std::isnan(lp) ? WireJson(nullptr) : WireJson(lp); }

}  // namespace

WireJson openai_logprobs_json(const OpenAiOptions& o, const std::vector<TokenEvent>& tokens,
                              size_t offset0) {
  auto text_of = [&](int32_t id) { return o.token_text ? o.token_text(id) : std::string(); };
  if (o.chat) {
    WireJson content = WireJson::array();
    for (auto& t : tokens) {
      if (t.special) continue;
      WireJson e = WireJson::object();
      e["token"] = t.text;
      e["logprob"] = lp_value(t.logprob);
      e["bytes"] = bytes_of(t.text);
      WireJson top = WireJson::array();
      for (size_t k = 0; k < t.top.size() && int(k) < o.top_logprobs; ++k) {
        WireJson a = WireJson::object();
        std::string at = text_of(t.top[k].id);
        a["token"] = at;
        a["logprob"] = t.top[k].logprob;
        a["bytes"] = bytes_of(at);
        top.push_back(a);
      }
      e["top_logprobs"] = top;
      content.push_back(e);
    }
    WireJson j = WireJson::object();
    j["content"] = content;
    j["refusal"] = nullptr;
    return j;
  }
  WireJson toks = WireJson::array(), lps = WireJson::array(), tops = WireJson::array(),
           offs = WireJson::array();
  size_t off = offset0;
  for (auto& t : tokens) {
    if (t.special) continue;
    toks.push_back(t.text);
    lps.push_back(lp_value(t.logprob));
    if (std::isnan(t.logprob)) {
      tops.push_back(nullptr);
    } else {
      WireJson m = WireJson::object();
      for (size_t k = 0; k < t.top.size() && int(k) < o.top_logprobs; ++k)
        m[text_of(t.top[k].id)] = t.top[k].logprob;
      if (!m.contains(t.text)) m[t.text] = t.logprob;  // the chosen token is always listed
      tops.push_back(m);
    }
    offs.push_back(off);
    off += t.text.size();
  }
  WireJson j = WireJson::object();
  j["tokens"] = toks;
  j["token_logprobs"] = lps;
  j["top_logprobs"] = tops;
  j["text_offset"] = offs;
  return j;
}

std::string OpenAiStreamEncoder::chunk(const std::string& text, const char* finish, bool role,
                                       const WireJson* logprobs) const {
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
  c["logprobs"] = logprobs ? *logprobs : WireJson(nullptr);
  c["finish_reason"] = finish ? WireJson(finish) : WireJson(nullptr);
  WireJson j = WireJson::object();
  j["id"] = o_.id;
  j["object"] = o_.chat ? "chat.completion.chunk" : "text_completion";
  j["created"] = o_.created;
  j["model"] = o_.model;
  j["choices"] = WireJson::array({c});
  if (o_.include_usage) j["usage"] = nullptr;
  return data(dump(j));
}

std::string OpenAiStreamEncoder::on_start() {
  if (o_.chat) return chunk("", nullptr, true);
  if (o_.echo.empty()) return "";
  offset_ = o_.echo.size();
  return chunk(o_.echo, nullptr, false);
}

std::string OpenAiStreamEncoder::on_token(const TokenEvent& ev) {
  if (o_.logprobs && !ev.special) {  // one chunk per token, its logprobs with it
    WireJson lp = openai_logprobs_json(o_, {ev}, offset_);
    offset_ += ev.text.size();
    return chunk(ev.emit, nullptr, false, &lp);
  }
  if (ev.emit.empty()) return "";
  return chunk(ev.emit, nullptr, false);
}

// The usage object: token counts, and the prompt tokens the prefix cache served (as OpenAI's
// prompt_tokens_details.cached_tokens).
static WireJson usage_json(const OpenAiUsage& usage) {
  WireJson u = WireJson::object();
  u["prompt_tokens"] = usage.prompt_tokens;
  u["completion_tokens"] = usage.completion_tokens;
  u["total_tokens"] = usage.prompt_tokens + usage.completion_tokens;
  WireJson details = WireJson::object();
  details["cached_tokens"] = usage.cached_tokens;
  u["prompt_tokens_details"] = details;
  return u;
}

StreamEnd OpenAiStreamEncoder::on_end(const FinalEvent& fe) {
  if (auto err = final_error(fe)) return {"", std::move(err)};
  std::string bytes = chunk(fe.tail, openai_finish_reason(fe.reason), false);
  if (o_.include_usage) {
    WireJson u = usage_json({fe.input_tokens, fe.generated_tokens, fe.cached_tokens});
    WireJson j = WireJson::object();
    j["id"] = o_.id;
    j["object"] = o_.chat ? "chat.completion.chunk" : "text_completion";
    j["created"] = o_.created;
    j["model"] = o_.model;
    j["choices"] = WireJson::array();
    j["usage"] = u;
    bytes += data(dump(j));
  }
  return {std::move(bytes), std::nullopt};
}

std::string OpenAiStreamEncoder::on_final(const FinalEvent& fe) {
  StreamEnd end = on_end(fe);
  if (end.error) end.bytes += openai_error_event(*end.error);
  return end.bytes + "data: [DONE]\n\n";
}

std::string openai_choices_json(const OpenAiOptions& o, const std::vector<OpenAiChoice>& choices,
                                OpenAiUsage usage) {
  WireJson arr = WireJson::array();
  for (auto& ch : choices) {
    WireJson c = WireJson::object();
    c["index"] = ch.index;
    std::string text = (o.chat ? "" : o.echo) + ch.fe.generated_text;
    if (o.chat) {
      WireJson m = WireJson::object();
      m["role"] = "assistant";
      m["content"] = text;
      c["message"] = m;
    } else {
      c["text"] = text;
    }
    if (o.logprobs) {
      std::vector<TokenEvent> all = ch.prompt_tokens;
      all.insert(all.end(), ch.tokens.begin(), ch.tokens.end());
      c["logprobs"] = openai_logprobs_json(o, all, 0);
    } else {
      c["logprobs"] = nullptr;
    }
    c["finish_reason"] = openai_finish_reason(ch.fe.reason);
    arr.push_back(c);
  }
  WireJson u = usage_json(usage);
  WireJson j = WireJson::object();
  j["id"] = o.id;
  j["object"] = o.chat ? "chat.completion" : "text_completion";
  j["created"] = o.created;
  j["model"] = o.model;
  j["choices"] = arr;
  j["usage"] = u;
  return dump(j);
}

}  // namespace lmstream::server

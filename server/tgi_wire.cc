// TGI wire encoders (see tgi_wire.h).
#include "server/tgi_wire.h"

#include <cmath>

#include "server/wire_json.h"

namespace lmstream::server {
namespace {

WireJson token_json(int32_t id, const std::string& text, float logprob, bool special) {
  WireJson t = WireJson::object();
  t["id"] = id;
  t["text"] = text;
  t["logprob"] = logprob;
  t["special"] = special;
  return t;
}

WireJson top_json(const std::vector<TokenLogprob>& top, const TokenLookup& l) {
  WireJson a = WireJson::array();
  for (auto& tl : top) a.push_back(token_json(tl.id, l.text(tl.id), tl.logprob, l.special(tl.id)));
  return a;
}

bool ends_with(const std::string& s, const std::string& suf) {
  return !suf.empty() && s.size() >= suf.size() &&
         s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

WireJson seed_json(const TgiOptions& o, uint64_t seed) {
  return o.sampling ? WireJson(seed) : WireJson(nullptr);
}

}  // namespace

std::string tgi_error_json(const std::string& error, const std::string& error_type) {
  WireJson j = WireJson::object();
  j["error"] = error;
  j["error_type"] = error_type;
  return dump(j);
}

std::string sse_event(const std::string& json) { return "data:" + json + "\n\n"; }

std::string TgiStreamEncoder::token_event(const TokenEvent& ev) const {
  WireJson j = WireJson::object();
  j["token"] = token_json(ev.id, ev.text, ev.logprob, ev.special);
  if (!ev.top.empty()) j["top_tokens"] = top_json(ev.top, lookup_);
  j["generated_text"] = nullptr;
  j["details"] = nullptr;
  return sse_event(dump(j));
}

std::string TgiStreamEncoder::on_token(const TokenEvent& ev) {
  ++count_;
  emitted_ += ev.emit;
  bool last = count_ >= o_.max_new_tokens || (ev.id == o_.eos_id && !o_.ignore_eos) ||
              (o_.capacity > 0 && o_.input_len + count_ > o_.capacity);
  for (auto& s : o_.stop) last = last || ends_with(emitted_, s);
  std::string out;
  if (held_) {  // predicted last but more came: it was an ordinary token after all
    out += token_event(*held_);
    held_.reset();
  }
  last_ = ev;
  if (last)
    held_ = ev;
  else
    out += token_event(ev);
  return out;
}

std::string TgiStreamEncoder::on_final(const FinalEvent& fe) {
  StreamEnd end = on_end(fe);
  if (end.error) end.bytes += tgi_error_event(*end.error);
  return std::move(end.bytes);
}

StreamEnd TgiStreamEncoder::on_end(const FinalEvent& fe) {
  if (auto err = final_error(fe)) {
    StreamEnd end;
    if (held_) end.bytes = token_event(*held_);
    held_.reset();
    end.error = std::move(err);
    return end;
  }
  WireJson j = WireJson::object();
  if (held_) {
    j["token"] = token_json(held_->id, held_->text, held_->logprob, held_->special);
    if (!held_->top.empty()) j["top_tokens"] = top_json(held_->top, lookup_);
  } else if (last_) {
    // The engine ended without a finish rule we could foresee (e.g. the context filled up): the
    // last token was already sent, so the final event repeats its id with no text.
    j["token"] = token_json(last_->id, "", last_->logprob, last_->special);
  } else {
    return {"", Error{ErrorKind::kIncomplete, ""}};
  }
  held_.reset();
  j["generated_text"] = o_.full_text_prefix + fe.generated_text;
  if (o_.details) {
    WireJson d = WireJson::object();
    d["finish_reason"] = finish_reason_name(fe.reason);
    d["generated_tokens"] = fe.generated_tokens;
    d["seed"] = seed_json(o_, fe.seed);
    j["details"] = d;
  } else {
    j["details"] = nullptr;
  }
  return {sse_event(dump(j)), std::nullopt};
}

std::string tgi_generate_json(const std::vector<TokenEvent>& tokens, const FinalEvent& fe,
                              const std::vector<int32_t>& prompt, const TgiOptions& o,
                              const TokenLookup& lookup, bool array) {
  WireJson j = WireJson::object();
  j["generated_text"] = o.full_text_prefix + fe.generated_text;
  if (o.details || o.decoder_input_details) {
    WireJson d = WireJson::object();
    d["finish_reason"] = finish_reason_name(fe.reason);
    d["generated_tokens"] = fe.generated_tokens;
    d["seed"] = seed_json(o, fe.seed);
    WireJson prefill = WireJson::array();
    if (o.decoder_input_details) {
      // One entry per prompt token; the first has nothing before it and TGI gives it null.
      for (size_t i = 0; i < prompt.size(); ++i) {
        WireJson t = WireJson::object();
        t["id"] = prompt[i];
        t["text"] = lookup.text(prompt[i]);
        if (i > 0 && i < fe.prompt_logprobs.size() && std::isfinite(fe.prompt_logprobs[i]))
          t["logprob"] = fe.prompt_logprobs[i];
        else
          t["logprob"] = nullptr;
        prefill.push_back(t);
      }
    }
    d["prefill"] = prefill;
    WireJson toks = WireJson::array();
    WireJson tops = WireJson::array();
    bool any_top = false;
    for (auto& t : tokens) {
      toks.push_back(token_json(t.id, t.text, t.logprob, t.special));
      tops.push_back(top_json(t.top, lookup));
      any_top = any_top || !t.top.empty();
    }
    d["tokens"] = toks;
    if (any_top) d["top_tokens"] = tops;
    j["details"] = d;
  }
  if (array) {
    WireJson a = WireJson::array();
    a.push_back(j);
    return dump(a);
  }
  return dump(j);
}

}  // namespace lmstream::server

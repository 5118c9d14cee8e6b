// TGI / LMI request parsing and validation (see validation.h).
#include "server/validation.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/strings.h"

namespace lmstream::server {
namespace {

using json = nlohmann::json;

struct SchemaError {
  std::string msg;
};

std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return std::string("boolean `") + (v.get<bool>() ? "true" : "false") + "`";
    case json::value_t::string:
      return "string " + v.dump();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer `" + v.dump() + "`";
    case json::value_t::number_float:
      return "floating point `" + v.dump() + "`";
    case json::value_t::array:
      return "sequence";
    case json::value_t::object:
      return "map";
    default:
      return "value";
  }
}

[[noreturn]] void bad_type(const std::string& path, const json& v, const char* expected) {
  throw SchemaError{path + ": invalid type: " + describe(v) + ", expected " + expected};
}

uint64_t get_uint(const std::string& path, const json& v, uint64_t max, const char* tname) {
  if (v.is_number_unsigned()) {
    uint64_t x = v.get<uint64_t>();
    if (x > max)
      throw SchemaError{path + ": invalid value: integer `" + v.dump() + "`, expected " + tname};
    return x;
  }
  if (v.is_number_integer())  // negative
    throw SchemaError{path + ": invalid value: integer `" + v.dump() + "`, expected " + tname};
  bad_type(path, v, tname);
}

int32_t get_i32(const std::string& path, const json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) {
    if (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t(std::numeric_limits<int32_t>::max())
                               : (v.get<int64_t>() < std::numeric_limits<int32_t>::min() ||
                                  v.get<int64_t>() > std::numeric_limits<int32_t>::max()))
      throw SchemaError{path + ": invalid value: integer `" + v.dump() + "`, expected i32"};
    return int32_t(v.get<int64_t>());
  }
  bad_type(path, v, "i32");
}

float to_f32(double d) {  // like Rust's `as f32`: out-of-range values become infinities
  if (d > double(std::numeric_limits<float>::max())) return std::numeric_limits<float>::infinity();
  if (d < -double(std::numeric_limits<float>::max()))
    return -std::numeric_limits<float>::infinity();
  return float(d);
}

float get_f32(const std::string& path, const json& v) {
  if (!v.is_number()) bad_type(path, v, "f32");
  return to_f32(v.get<double>());
}

bool get_bool(const std::string& path, const json& v) {
  if (!v.is_boolean()) bad_type(path, v, "a boolean");
  return v.get<bool>();
}

std::vector<std::string> get_strings(const std::string& path, const json& v) {
  if (!v.is_array()) bad_type(path, v, "a sequence");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) bad_type(path + "[" + std::to_string(i) + "]", v[i], "a string");
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

template <class T, class F>
void opt(const json& p, const char* key, std::optional<T>& out, F get) {
  auto it = p.find(key);
  if (it == p.end() || it->is_null()) return;
  out = get(std::string("parameters.") + key, *it);
}

void parse_params(const json& p, TgiParams& t) {
  if (!p.is_object()) bad_type("parameters", p, "struct GenerateParameters");
  const uint64_t u32max = std::numeric_limits<uint32_t>::max();
  const uint64_t u64max = std::numeric_limits<uint64_t>::max();
  opt(p, "best_of", t.best_of,
      [&](const auto& n, const auto& v) { return get_uint(n, v, u64max, "usize"); });
  opt(p, "temperature", t.temperature, get_f32);
  opt(p, "repetition_penalty", t.repetition_penalty, get_f32);
  opt(p, "frequency_penalty", t.frequency_penalty, get_f32);
  opt(p, "top_k", t.top_k, get_i32);
  opt(p, "top_p", t.top_p, get_f32);
  opt(p, "typical_p", t.typical_p, get_f32);
  opt(p, "return_full_text", t.return_full_text, get_bool);
  opt(p, "truncate", t.truncate,
      [&](const auto& n, const auto& v) { return get_uint(n, v, u64max, "usize"); });
  opt(p, "seed", t.seed,
      [&](const auto& n, const auto& v) { return get_uint(n, v, u64max, "u64"); });
  opt(p, "top_n_tokens", t.top_n_tokens,
      [&](const auto& n, const auto& v) { return uint32_t(get_uint(n, v, u32max, "u32")); });
  if (auto it = p.find("do_sample"); it != p.end())
    t.do_sample = get_bool("parameters.do_sample", *it);
  if (auto it = p.find("max_new_tokens"); it != p.end())
    t.max_new_tokens = uint32_t(get_uint("parameters.max_new_tokens", *it, u32max, "u32"));
  if (auto it = p.find("stop"); it != p.end()) t.stop = get_strings("parameters.stop", *it);
  if (auto it = p.find("watermark"); it != p.end())
    t.watermark = get_bool("parameters.watermark", *it);
  if (auto it = p.find("details"); it != p.end()) t.details = get_bool("parameters.details", *it);
  if (auto it = p.find("decoder_input_details"); it != p.end())
    t.decoder_input_details = get_bool("parameters.decoder_input_details", *it);
  if (auto it = p.find("grammar"); it != p.end() && !it->is_null()) t.has_grammar = true;
  if (auto it = p.find("cache_salt"); it != p.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().empty())
      throw SchemaError{"parameters.cache_salt: must be a non-empty string if provided"};
    t.cache_salt = it->get<std::string>();
  }
}

bool is_json_content_type(const std::string* ct) {
  if (!ct) return false;
  std::string v = base::to_lower(ct->substr(0, ct->find(';')));
  while (!v.empty() && v.back() == ' ') v.pop_back();
  if (v == "application/json") return true;
  return v.rfind("application/", 0) == 0 && v.size() > 5 &&
         v.compare(v.size() - 5, 5, "+json") == 0;
}

// ---- The validation table: TGI's checks in TGI's order, each with its exact message.
struct Rule {
  std::function<bool(const TgiRequest&, const TgiLimits&, bool stream)> fails;
  std::function<std::string(const TgiRequest&, const TgiLimits&)> message;
};

const std::vector<Rule>& rules() {
  static const std::vector<Rule> r = {
      // Stream-only checks run in the streaming handler before anything else.
      {[](auto& q, auto&, bool s) {
         return s && q.parameters.best_of && *q.parameters.best_of != 1;
       },
       [](auto&, auto&) {
         return std::string("`best_of` != 1 is not supported when streaming tokens");
       }},
      {[](auto& q, auto&, bool s) { return s && q.parameters.decoder_input_details; },
       [](auto&, auto&) {
         return std::string(
             "`decoder_input_details` == true is not supported when streaming tokens");
       }},
      // generate_best_of's limit check (non-stream, best_of > 1).
      {[](auto& q, auto& l, bool) {
         return q.parameters.best_of && *q.parameters.best_of > 1 && l.max_best_of == 1;
       },
       [](auto&, auto&) { return std::string("`best_of` != 1 is not allowed for this endpoint"); }},
      {[](auto& q, auto& l, bool) {
         return q.parameters.best_of && *q.parameters.best_of > 1 &&
                *q.parameters.best_of > uint64_t(l.max_best_of);
       },
       [](auto& q, auto& l) {
         return "`best_of` must be > 0 and <= " + std::to_string(l.max_best_of) +
                ". Given: " + std::to_string(*q.parameters.best_of);
       }},
      // 1..13 (validation.rs)
      {[](auto& q, auto&, bool) {
         return q.parameters.best_of && *q.parameters.best_of > 1 && !tgi_is_sampling(q.parameters);
       },
       [](auto&, auto&) { return std::string("you must use sampling when `best_of` is > 1"); }},
      {[](auto& q, auto&, bool) {
         return q.parameters.temperature && !(*q.parameters.temperature > 0.f);
       },
       [](auto&, auto&) { return std::string("`temperature` must be strictly positive"); }},
      {[](auto& q, auto&, bool) {
         return q.parameters.repetition_penalty && !(*q.parameters.repetition_penalty > 0.f);
       },
       [](auto&, auto&) { return std::string("`repetition_penalty` must be strictly positive"); }},
      {[](auto& q, auto&, bool) {
         auto& f = q.parameters.frequency_penalty;
         return f && !(*f >= -2.f && *f <= 2.f);
       },
       [](auto&, auto&) { return std::string("`frequency_penalty` must be >= -2.0 and <= 2.0"); }},
      {[](auto& q, auto&, bool) {
         auto& p = q.parameters.top_p;
         return p && !(*p > 0.f && *p < 1.f);
       },
       [](auto&, auto&) { return std::string("`top_p` must be > 0.0 and < 1.0"); }},
      {[](auto& q, auto&, bool) {
         auto& p = q.parameters.typical_p;
         return p && !(*p > 0.f && *p < 1.f);
       },
       [](auto&, auto&) { return std::string("`typical_p` must be > 0.0 and < 1.0"); }},
      {[](auto& q, auto&, bool) { return q.parameters.top_k && *q.parameters.top_k <= 0; },
       [](auto&, auto&) { return std::string("`top_k` must be strictly positive"); }},
      {[](auto& q, auto&, bool) { return q.parameters.max_new_tokens == 0; },
       [](auto&, auto&) { return std::string("`max_new_tokens` must be strictly positive"); }},
      {[](auto& q, auto& l, bool) {
         return q.parameters.stop.size() > size_t(l.max_stop_sequences);
       },
       [](auto& q, auto& l) {
         return "`stop` supports up to " + std::to_string(l.max_stop_sequences) +
                " stop sequences. Given: " + std::to_string(q.parameters.stop.size());
       }},
      {[](auto& q, auto&, bool) {
         return q.parameters.seed && q.parameters.best_of && *q.parameters.best_of > 1;
       },
       [](auto&, auto&) { return std::string("`seed` must not be set when `best_of` > 1"); }},
      {[](auto& q, auto& l, bool) {
         return q.parameters.top_n_tokens &&
                *q.parameters.top_n_tokens > uint32_t(l.max_top_n_tokens);
       },
       [](auto& q, auto& l) {
         return "`top_n_tokens` must be >= 0 and <= " + std::to_string(l.max_top_n_tokens) +
                ". Given: " + std::to_string(*q.parameters.top_n_tokens);
       }},
      {[](auto& q, auto&, bool) { return q.inputs.empty(); },
       [](auto&, auto&) { return std::string("`inputs` cannot be empty"); }},
      {[](auto& q, auto& l, bool) {
         auto& t = q.parameters.truncate;
         return t && (*t == 0 || *t > uint64_t(l.max_input_length));
       },
       [](auto& q, auto& l) {
         return "`truncate` must be strictly positive and less than " +
                std::to_string(l.max_input_length) +
                ". Given: " + std::to_string(*q.parameters.truncate);
       }},
      // Not in TGI's CPU-less world: features this build does not have.
      {[](auto& q, auto&, bool) { return q.parameters.has_grammar; },
       [](auto&, auto&) { return std::string("grammar is not supported"); }},
      {[](auto& q, auto&, bool) { return q.parameters.watermark; },
       [](auto&, auto&) { return std::string("`watermark` is not supported by this server"); }},
  };
  return r;
}

}  // namespace

Error validation_error(const std::string& message) {
  return {ErrorKind::kValidation, "Input validation error: " + message};
}

std::optional<Error> parse_tgi_request(const std::string* content_type, std::string_view body,
                                       bool compat, TgiRequest* out) {
  if (!is_json_content_type(content_type))
    return Error{ErrorKind::kUnsupportedMediaType,
                 "Expected request with `Content-Type: application/json`"};
  json j;
  try {
    j = json::parse(body.begin(), body.end());
  } catch (const std::exception& e) {
    return Error{ErrorKind::kBadRequest,
                 std::string("Failed to parse the request body as JSON: ") + e.what()};
  }
  try {
    if (!j.is_object()) bad_type("", j, "struct GenerateRequest");
    auto in = j.find("inputs");
    if (in == j.end()) throw SchemaError{"missing field `inputs`"};
    if (!in->is_string()) bad_type("inputs", *in, "a string");
    out->inputs = in->get<std::string>();
    if (auto p = j.find("parameters"); p != j.end()) parse_params(*p, out->parameters);
    if (compat)
      if (auto s = j.find("stream"); s != j.end()) out->stream = get_bool("stream", *s);
  } catch (const SchemaError& e) {
    std::string m = e.msg;
    if (!m.empty() && m[0] == ':') m = m.substr(2);
    return Error{ErrorKind::kUnprocessable,
                 "Failed to deserialize the JSON body into the target type: " + m};
  }
  return std::nullopt;
}

std::optional<std::string> validate_tgi(const TgiRequest& r, const TgiLimits& l, bool stream) {
  for (auto& rule : rules())
    if (rule.fails(r, l, stream)) return rule.message(r, l);
  return std::nullopt;
}

std::optional<std::string> validate_tgi_lengths(int input_len, uint32_t max_new_tokens,
                                                const TgiLimits& l) {
  if (uint64_t(input_len) + max_new_tokens > uint64_t(l.max_total_tokens))
    return "`inputs` tokens + `max_new_tokens` must be <= " + std::to_string(l.max_total_tokens) +
           ". Given: " + std::to_string(input_len) + " `inputs` tokens and " +
           std::to_string(max_new_tokens) + " `max_new_tokens`";
  if (input_len > l.max_input_length)
    return "`inputs` must have less than " + std::to_string(l.max_input_length) +
           " tokens. Given: " + std::to_string(input_len);
  return std::nullopt;
}

bool tgi_is_sampling(const TgiParams& p) { return tgi_sampling(p, 0).do_sample; }

SamplingParams tgi_sampling(const TgiParams& p, uint64_t random_seed) {
  SamplingParams s;
  if (p.temperature) s.temperature = *p.temperature;
  if (p.top_k) s.top_k = *p.top_k;
  if (p.top_p) s.top_p = *p.top_p;
  if (p.typical_p) s.typical_p = *p.typical_p;
  if (p.repetition_penalty) s.repetition_penalty = *p.repetition_penalty;
  if (p.frequency_penalty) s.frequency_penalty = *p.frequency_penalty;
  s.seed = p.seed ? *p.seed : random_seed;
  s.top_n_tokens = p.top_n_tokens ? int(*p.top_n_tokens) : 0;
  s.do_sample = p.do_sample || s.warpers_active();  // TGI's NextTokenChooser
  return s;
}

std::optional<std::string> parse_lmi_request(std::string_view body, uint64_t random_seed,
                                             LmiRequest* out) {
  json j;
  try {
    j = json::parse(body.begin(), body.end());
  } catch (const std::exception& e) {
    return std::string("Input parsing failed: ") + e.what();
  }
  if (!j.is_object()) return std::string("Input parsing failed: the body must be a JSON object");
  auto in = j.find("inputs");
  if (in == j.end()) return std::string("Input parsing failed: missing \"inputs\"");
  if (in->is_array() && in->size() == 1 && (*in)[0].is_string()) {
    out->inputs = (*in)[0].get<std::string>();
  } else if (in->is_string()) {
    out->inputs = in->get<std::string>();
  } else {
    return std::string("Input parsing failed: \"inputs\" must be a string");
  }
  SamplingParams s;
  s.seed = random_seed;
  auto p = j.find("parameters");
  if (p != j.end() && !p->is_null()) {
    if (!p->is_object())
      return std::string("Input parsing failed: \"parameters\" must be an object");
    try {
      auto num = [&](const char* k, float& dst) {
        if (auto it = p->find(k); it != p->end() && !it->is_null()) dst = get_f32(k, *it);
      };
      num("temperature", s.temperature);
      num("repetition_penalty", s.repetition_penalty);
      num("top_p", s.top_p);
      num("typical_p", s.typical_p);
      if (auto it = p->find("top_k"); it != p->end() && !it->is_null())
        s.top_k = get_i32("top_k", *it);
      if (auto it = p->find("do_sample"); it != p->end() && !it->is_null())
        s.do_sample = get_bool("do_sample", *it);
      if (auto it = p->find("seed"); it != p->end() && !it->is_null()) {
        s.seed = get_uint("seed", *it, std::numeric_limits<uint64_t>::max(), "u64");
        out->seed_given = true;
      }
      if (auto it = p->find("max_new_tokens"); it != p->end() && !it->is_null())
        out->max_new_tokens = int(get_uint("max_new_tokens", *it, 1u << 30, "u32"));
      if (auto it = p->find("stop_sequences"); it != p->end() && !it->is_null())
        out->stop_sequences = get_strings("stop_sequences", *it);
      if (auto it = p->find("truncate"); it != p->end() && !it->is_null())
        out->truncate = get_uint("truncate", *it, std::numeric_limits<uint64_t>::max(), "usize");
      if (auto it = p->find("cache_salt"); it != p->end() && !it->is_null()) {
        if (!it->is_string() || it->get<std::string>().empty())
          return std::string("Input parsing failed: \"cache_salt\" must be a non-empty string");
        out->cache_salt = it->get<std::string>();
      }
    } catch (const SchemaError& e) {
      return "Input parsing failed: " + e.msg;
    }
  }
  // lmi-dist's NextTokenChooser: sampling when do_sample or any warper is set.
  s.do_sample = s.do_sample || s.warpers_active();
  // No range validation in 0.25.0; values the engine cannot use fail like an engine exception.
  if (!(s.temperature > 0.f)) return std::string("`temperature` must be strictly positive");
  if (!(s.top_p > 0.f && s.top_p <= 1.f)) return std::string("`top_p` must be in (0, 1]");
  if (!(s.typical_p > 0.f && s.typical_p <= 1.f))
    return std::string("`typical_p` must be in (0, 1]");
  if (s.top_k < 0) return std::string("`top_k` must be >= 0");
  if (!(s.repetition_penalty > 0.f))
    return std::string("`repetition_penalty` must be strictly positive");
  if (out->max_new_tokens <= 0) return std::string("`max_new_tokens` must be strictly positive");
  out->sampling = s;
  return std::nullopt;
}

// ---- OpenAI: the keys, the numeric parameters' table, then the rest in order.
namespace {

struct OpenAiBad {
  std::string message;
  ErrorKind kind = ErrorKind::kInvalidRequest;
  std::string param = {};
};

// A numeric parameter: absent/null gives `def`; otherwise its type and [lo, hi] are checked, and
// `positive` ones must then be > 0 too.
struct OpenAiNumber {
  const char* key;
  bool integer;
  float def, lo, hi;
  bool positive = false;
};
// In the order they are checked. max_completion_tokens (chat only) defaults to max_tokens;
// best_of (completions only) defaults to n.
constexpr OpenAiNumber kOpenAiNumbers[] = {
    {"n", true, 1, 1, 128},
    {"max_tokens", true, 100, 1, 1 << 24},
    {"max_completion_tokens", true, 0, 1, 1 << 24},
    {"temperature", false, 1.f, 0.f, 2.f},
    {"top_p", false, 1.f, 0.f, 1.f, true},
    {"frequency_penalty", false, 0.f, -2.f, 2.f},
    {"repetition_penalty", false, 1.f, 1e-6f, 1e6f},
    {"top_k", true, 0, 0, 1 << 24},
    {"presence_penalty", false, 0.f, -2.f, 2.f},
    {"best_of", true, 0, 1, 20},
};
enum {
  kN,
  kMaxTokens,
  kMaxCompletionTokens,
  kTemperature,
  kTopP,
  kFrequency,
  kRepetition,
  kTopK,
  kPresence,
  kBestOf
};

// Keys both routes honour, then each route's own.
const char* const kOpenAiCommonKeys[] = {
    "model",
    "stream",
    "stream_options",
    "max_tokens",
    "n",
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "stop",
    "seed",
    "user",
    "repetition_penalty",
    "top_k",
    "logprobs",
    "cache_salt",  // vLLM's: requests with different salts never share prefix-cache blocks
};
const char* const kOpenAiChatKeys[] = {"messages", "max_completion_tokens", "top_logprobs"};
const char* const kOpenAiCompletionKeys[] = {"prompt", "echo", "best_of", "suffix"};
// Known OpenAI/vLLM parameters this server does not build: refused with their own message.
const char* const kOpenAiUnbuilt[] = {
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "response_format",
    "audio",
    "modalities",
    "prediction",
    "reasoning_effort",
    "web_search_options",
    "service_tier",
    "store",
    "metadata",
    "guided_json",
    "guided_regex",
    "guided_choice",
    "guided_grammar",
    "tool_prompt",
    "min_tokens",
    "use_beam_search",
    "ignore_eos",
    "min_p",
    "length_penalty",
};

std::string range_message(const OpenAiNumber& n) {
  if (n.integer)
    return std::string("`") + n.key + "` must be >= " + std::to_string(int(n.lo)) +
           " and <= " + std::to_string(int(n.hi));
  return std::string("`") + n.key + "` must be >= " + std::to_string(n.lo) +
         " and <= " + std::to_string(n.hi);
}

double openai_number(const json& j, const OpenAiNumber& n, double def) {
  auto it = j.find(n.key);
  if (it == j.end() || it->is_null()) return def;
  if (n.integer) {
    if (!it->is_number_integer())
      throw OpenAiBad{std::string("`") + n.key + "` must be an integer", ErrorKind::kInvalidRequest,
                      n.key};
    int64_t v = it->get<int64_t>();
    if (v < int64_t(n.lo) || v > int64_t(n.hi))
      throw OpenAiBad{range_message(n), ErrorKind::kInvalidRequest, n.key};
    return double(v);
  }
  if (!it->is_number())
    throw OpenAiBad{std::string("`") + n.key + "` must be a number", ErrorKind::kInvalidRequest,
                    n.key};
  double d = it->get<double>();
  if (!(d >= n.lo && d <= n.hi))
    throw OpenAiBad{range_message(n), ErrorKind::kInvalidRequest, n.key};
  if (n.positive && float(d) <= 0.f)
    throw OpenAiBad{std::string("`") + n.key + "` must be > 0", ErrorKind::kInvalidRequest, n.key};
  return float(d);
}

std::string openai_text_content(const json& c) {
  if (c.is_string()) return c.get<std::string>();
  if (c.is_null()) return "";
  if (c.is_array()) {  // [{"type":"text","text":"..."}]
    std::string s;
    for (auto& part : c) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
          !part["text"].is_string())
        throw OpenAiBad{"only text content parts are supported", ErrorKind::kInvalidRequest,
                        "messages"};
      s += part["text"].get<std::string>();
    }
    return s;
  }
  throw OpenAiBad{"`content` must be a string or a list of text parts", ErrorKind::kInvalidRequest,
                  "messages"};
}

bool openai_bool(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean())
    throw OpenAiBad{std::string("`") + key + "` must be a boolean", ErrorKind::kInvalidRequest,
                    key};
  return it->get<bool>();
}

// A token-id list: integers >= 0 (the route checks them against the vocabulary).
std::optional<std::vector<int32_t>> token_ids(const json& v) {
  if (!v.is_array() || v.empty()) return std::nullopt;
  std::vector<int32_t> ids;
  for (auto& x : v) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 ||
        x.get<int64_t>() > std::numeric_limits<int32_t>::max())
      return std::nullopt;
    ids.push_back(int32_t(x.get<int64_t>()));
  }
  return ids;
}

void parse_prompt(const json& j, OpenAiRequest* out) {
  const char* bad =
      "`prompt` must be a string, a list of strings, a list of token ids or a list of lists of "
      "token ids";
  auto it = j.find("prompt");
  if (it == j.end() || it->is_null()) throw OpenAiBad{bad, ErrorKind::kInvalidRequest, "prompt"};
  if (it->is_string()) {
    out->prompts.push_back(it->get<std::string>());
    return;
  }
  if (!it->is_array() || it->empty()) throw OpenAiBad{bad, ErrorKind::kInvalidRequest, "prompt"};
  const json& first = (*it)[0];
  if (first.is_string()) {
    for (auto& x : *it) {
      if (!x.is_string()) throw OpenAiBad{bad, ErrorKind::kInvalidRequest, "prompt"};
      out->prompts.push_back(x.get<std::string>());
    }
  } else if (first.is_number()) {
    auto ids = token_ids(*it);
    if (!ids) throw OpenAiBad{bad, ErrorKind::kInvalidRequest, "prompt"};
    out->prompt_ids.push_back(std::move(*ids));
  } else {
    for (auto& x : *it) {
      auto ids = token_ids(x);
      if (!ids) throw OpenAiBad{bad, ErrorKind::kInvalidRequest, "prompt"};
      out->prompt_ids.push_back(std::move(*ids));
    }
  }
}

}  // namespace

const std::vector<std::string>& openai_known_keys(bool chat) {
  static const auto make = [](bool c) {
    std::vector<std::string> v(std::begin(kOpenAiCommonKeys), std::end(kOpenAiCommonKeys));
    if (c)
      v.insert(v.end(), std::begin(kOpenAiChatKeys), std::end(kOpenAiChatKeys));
    else
      v.insert(v.end(), std::begin(kOpenAiCompletionKeys), std::end(kOpenAiCompletionKeys));
    return v;
  };
  static const std::vector<std::string> chat_keys = make(true), completion_keys = make(false);
  return chat ? chat_keys : completion_keys;
}

std::optional<Error> parse_openai_request(const std::string& body, bool chat,
                                          int max_stop_sequences, OpenAiRequest* out) {
  json j;
  try {
    j = json::parse(body);
  } catch (const std::exception& e) {
    return Error{ErrorKind::kInvalidRequest,
                 std::string("the body is not valid JSON: ") + e.what()};
  }
  try {
    if (!j.is_object()) throw OpenAiBad{"the body must be a JSON object"};
    // Every key is honoured or refused by name.
    const auto& known = openai_known_keys(chat);
    for (auto& [key, value] : j.items()) {
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      bool unbuilt = std::find(std::begin(kOpenAiUnbuilt), std::end(kOpenAiUnbuilt), key) !=
                     std::end(kOpenAiUnbuilt);
      if (unbuilt && value.is_null()) continue;  // explicitly unset
      if (unbuilt)
        throw OpenAiBad{"`" + key + "` is not supported by this server", ErrorKind::kInvalidRequest,
                        key};
      throw OpenAiBad{"Unrecognized request argument supplied: " + key, ErrorKind::kInvalidRequest,
                      key};
    }
    out->stream = openai_bool(j, "stream");
    if (auto it = j.find("stream_options"); it != j.end() && !it->is_null()) {
      if (!out->stream)
        throw OpenAiBad{"`stream_options` is only allowed when `stream` is true",
                        ErrorKind::kInvalidRequest, "stream_options"};
      if (!it->is_object())
        throw OpenAiBad{"`stream_options` must be an object", ErrorKind::kInvalidRequest,
                        "stream_options"};
      for (auto& [k, v] : it->items())
        if (k != "include_usage")
          throw OpenAiBad{"Unrecognized request argument supplied: stream_options." + k,
                          ErrorKind::kInvalidRequest, "stream_options." + k};
      out->include_usage = openai_bool(*it, "include_usage");
    }
    double v[std::size(kOpenAiNumbers)];
    for (size_t i = 0; i < std::size(kOpenAiNumbers); ++i) {
      const OpenAiNumber& n = kOpenAiNumbers[i];
      if (i == kMaxCompletionTokens) {
        v[i] = chat ? openai_number(j, n, v[kMaxTokens]) : v[kMaxTokens];
        continue;
      }
      if (i == kBestOf) {
        v[i] = chat ? v[kN] : openai_number(j, n, v[kN]);
        continue;
      }
      v[i] = openai_number(j, n, n.def);
    }
    out->n = int(v[kN]);
    out->best_of = int(v[kBestOf]);
    if (out->best_of < out->n)
      throw OpenAiBad{"`best_of` must be greater than or equal to `n`", ErrorKind::kInvalidRequest,
                      "best_of"};
    if (out->stream && out->best_of > out->n)
      throw OpenAiBad{"`best_of` > `n` cannot be streamed; set stream to false",
                      ErrorKind::kInvalidRequest, "best_of"};
    out->max_tokens = int(v[kMaxCompletionTokens]);
    float temperature = float(v[kTemperature]);
    SamplingParams& s = out->sampling;
    s.do_sample = temperature > 0.f;
    s.temperature = temperature > 0.f ? temperature : 1.f;
    s.top_p = float(v[kTopP]);
    s.frequency_penalty = float(v[kFrequency]);
    s.repetition_penalty = float(v[kRepetition]);
    s.top_k = int(v[kTopK]);
    s.presence_penalty = float(v[kPresence]);
    if (auto it = j.find("logit_bias"); it != j.end() && !it->is_null()) {
      const char* bad = "`logit_bias` must map token ids (as strings) to numbers in [-100, 100]";
      if (!it->is_object()) throw OpenAiBad{bad, ErrorKind::kInvalidRequest, "logit_bias"};
      for (auto& [k, b] : it->items()) {
        char* end = nullptr;
        errno = 0;
        long long id = std::strtoll(k.c_str(), &end, 10);
        if (k.empty() || *end != '\0' || errno != 0 || id < 0 ||
            id > std::numeric_limits<int32_t>::max() || !b.is_number() ||
            !(b.get<double>() >= -100 && b.get<double>() <= 100))
          throw OpenAiBad{bad, ErrorKind::kInvalidRequest, "logit_bias"};
        s.logit_bias.emplace_back(int32_t(id), float(b.get<double>()));
      }
    }
    if (auto it = j.find("seed"); it != j.end() && !it->is_null()) {
      if (!it->is_number_integer())
        throw OpenAiBad{"`seed` must be an integer", ErrorKind::kInvalidRequest, "seed"};
      out->seed = it->is_number_unsigned() ? it->get<uint64_t>() : uint64_t(it->get<int64_t>());
    }
    if (auto it = j.find("cache_salt"); it != j.end() && !it->is_null()) {
      if (!it->is_string() || it->get<std::string>().empty())
        throw OpenAiBad{"Parameter 'cache_salt' must be a non-empty string if provided.",
                        ErrorKind::kInvalidRequest, "cache_salt"};
      out->cache_salt = it->get<std::string>();
    }
    if (auto it = j.find("stop"); it != j.end() && !it->is_null()) {
      const char* bad_stop = "`stop` must be a string or a list of strings";
      if (it->is_string()) {
        out->stop.push_back(it->get<std::string>());
      } else if (it->is_array()) {
        for (auto& x : *it) {
          if (!x.is_string()) throw OpenAiBad{bad_stop, ErrorKind::kInvalidRequest, "stop"};
          out->stop.push_back(x.get<std::string>());
        }
      } else {
        throw OpenAiBad{bad_stop, ErrorKind::kInvalidRequest, "stop"};
      }
      if (out->stop.size() > size_t(max_stop_sequences))
        throw OpenAiBad{"`stop` supports up to " + std::to_string(max_stop_sequences) +
                            " stop sequences. Given: " + std::to_string(out->stop.size()),
                        ErrorKind::kUnprocessable, "stop"};
    }
    if (chat) {
      out->logprobs = openai_bool(j, "logprobs");
      if (auto it = j.find("top_logprobs"); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 20)
          throw OpenAiBad{"`top_logprobs` must be an integer >= 0 and <= 20",
                          ErrorKind::kInvalidRequest, "top_logprobs"};
        if (!out->logprobs)
          throw OpenAiBad{"`top_logprobs` needs `logprobs` set to true", ErrorKind::kInvalidRequest,
                          "top_logprobs"};
        out->top_logprobs = int(it->get<int64_t>());
      }
      auto it = j.find("messages");
      if (it == j.end() || !it->is_array() || it->empty())
        throw OpenAiBad{"`messages` must be a non-empty list", ErrorKind::kInvalidRequest,
                        "messages"};
      for (auto& m : *it) {
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
          throw OpenAiBad{"each message needs a string `role`", ErrorKind::kInvalidRequest,
                          "messages"};
        out->messages.emplace_back(m["role"].get<std::string>(),
                                   openai_text_content(m.value("content", json())));
      }
    } else {
      if (j.contains("suffix") && !j["suffix"].is_null())
        throw OpenAiBad{"Suffix is not supported and can be achieved by preprocessing the prompt.",
                        ErrorKind::kUnsupportedFeature, "suffix"};
      if (auto it = j.find("logprobs"); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 5)
          throw OpenAiBad{"`logprobs` must be an integer >= 0 and <= 5 on /v1/completions",
                          ErrorKind::kInvalidRequest, "logprobs"};
        out->logprobs = true;
        out->top_logprobs = int(it->get<int64_t>());
      }
      out->echo = openai_bool(j, "echo");
      if (out->echo && out->logprobs && out->stream)
        throw OpenAiBad{
            "`echo` with `logprobs` cannot be streamed by this server (the prompt's "
            "logprobs come with the whole answer); set stream to false",
            ErrorKind::kInvalidRequest, "echo"};
      parse_prompt(j, out);
    }
    size_t prompts = chat ? 1 : out->prompts.size() + out->prompt_ids.size();
    if (out->stream && (out->n > 1 || prompts > 1))
      throw OpenAiBad{
          "more than one choice (`n` > 1 or a list of prompts) cannot be streamed by "
          "this server; set stream to false",
          ErrorKind::kInvalidRequest, out->n > 1 ? "n" : "prompt"};
    if (prompts * size_t(out->best_of) > 128)
      throw OpenAiBad{"at most 128 sequences per request (prompts x best_of); given " +
                          std::to_string(prompts * size_t(out->best_of)),
                      ErrorKind::kInvalidRequest, out->best_of > 1 ? "best_of" : "prompt"};
  } catch (const OpenAiBad& b) {
    return Error{b.kind, b.message, b.param};
  }
  return std::nullopt;
}

}  // namespace lmstream::server

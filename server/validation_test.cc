// The TGI validation table: each rule's exact message, TGI's order, axum's body rejections.
#include "server/validation.h"

#include <gtest/gtest.h>

namespace lmstream::server {
namespace {

TgiRequest parse_ok(const std::string& body, bool compat = false) {
  std::string ct = "application/json";
  TgiRequest r;
  auto rej = parse_tgi_request(&ct, body, compat, &r);
  EXPECT_FALSE(rej) << (rej ? rej->message : "");
  return r;
}

std::string first_error(const std::string& body, bool stream = false) {
  TgiLimits l;
  auto m = validate_tgi(parse_ok(body), l, stream);
  return m ? *m : "";
}

TEST(Validation, RulesInOrderWithExactMessages) {
  struct Case {
    const char* params;
    const char* message;
  } cases[] = {
      {R"({"best_of":2})", "you must use sampling when `best_of` is > 1"},
      {R"({"best_of":3,"do_sample":true})", "`best_of` must be > 0 and <= 2. Given: 3"},
      {R"({"temperature":0})", "`temperature` must be strictly positive"},
      {R"({"repetition_penalty":-1})", "`repetition_penalty` must be strictly positive"},
      {R"({"frequency_penalty":-2.5})", "`frequency_penalty` must be >= -2.0 and <= 2.0"},
      {R"({"top_p":1.0})", "`top_p` must be > 0.0 and < 1.0"},
      {R"({"typical_p":0})", "`typical_p` must be > 0.0 and < 1.0"},
      {R"({"top_k":0})", "`top_k` must be strictly positive"},
      {R"({"max_new_tokens":0})", "`max_new_tokens` must be strictly positive"},
      {R"({"stop":["a","b","c","d","e"]})", "`stop` supports up to 4 stop sequences. Given: 5"},
      {R"({"best_of":2,"do_sample":true,"seed":1})", "`seed` must not be set when `best_of` > 1"},
      {R"({"top_n_tokens":9})", "`top_n_tokens` must be >= 0 and <= 5. Given: 9"},
      {R"({"truncate":0})", "`truncate` must be strictly positive and less than 1024. Given: 0"},
      {R"({"temperature":0,"top_k":0})", "`temperature` must be strictly positive"},
      {R"({"top_p":2,"top_k":0,"max_new_tokens":0})", "`top_p` must be > 0.0 and < 1.0"},
      {R"({"grammar":{"type":"json","value":{}}})", "grammar is not supported"},
  };
  for (auto& c : cases)
    EXPECT_EQ(first_error(std::string(R"({"inputs":"x","parameters":)") + c.params + "}"),
              c.message)
        << c.params;
  EXPECT_EQ(first_error(R"({"inputs":""})"), "`inputs` cannot be empty");
  EXPECT_EQ(first_error(R"({"inputs":"x","parameters":{"top_k":5,"top_p":0.5,"temperature":0.7}})"),
            "");
}

TEST(Validation, StreamOnlyChecksComeFirst) {
  EXPECT_EQ(first_error(R"({"inputs":"x","parameters":{"best_of":2,"temperature":0}})", true),
            "`best_of` != 1 is not supported when streaming tokens");
  EXPECT_EQ(first_error(R"({"inputs":"x","parameters":{"decoder_input_details":true}})", true),
            "`decoder_input_details` == true is not supported when streaming tokens");
  EXPECT_EQ(first_error(R"({"inputs":"x","parameters":{"decoder_input_details":true}})", false),
            "");
}

TEST(Validation, LengthsTotalBeforeInput) {
  TgiLimits l;
  l.max_input_length = 10;
  l.max_total_tokens = 20;
  EXPECT_EQ(*validate_tgi_lengths(15, 10, l),
            "`inputs` tokens + `max_new_tokens` must be <= 20. Given: 15 `inputs` tokens and 10 "
            "`max_new_tokens`");
  EXPECT_EQ(*validate_tgi_lengths(11, 2, l), "`inputs` must have less than 10 tokens. Given: 11");
  EXPECT_FALSE(validate_tgi_lengths(10, 10, l));
}

TEST(Validation, RejectionJson) {
  HttpResponse r = tgi_error_response(validation_error("`top_k` must be strictly positive"));
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(
      r.body,
      R"({"error":"Input validation error: `top_k` must be strictly positive","error_type":"validation"})");
  EXPECT_EQ(tgi_error_response({ErrorKind::kOverloaded, "Model is overloaded"}).body,
            R"({"error":"Model is overloaded","error_type":"overloaded"})");
}

// parse_tgi_request's typed error as TGI's wire answers it.
std::optional<HttpResponse> parse_rejection(const std::string* ct, std::string_view body,
                                            bool compat, TgiRequest* r) {
  auto e = parse_tgi_request(ct, body, compat, r);
  if (!e) return std::nullopt;
  return tgi_error_response(*e);
}

TEST(Validation, AxumBodyRejections) {
  TgiRequest r;
  std::string json = "application/json", json_cs = "application/json; charset=utf-8",
              text = "text/plain";
  EXPECT_EQ(parse_rejection(nullptr, R"({"inputs":"x"})", false, &r)->status, 415);
  EXPECT_EQ(parse_rejection(&text, R"({"inputs":"x"})", false, &r)->status, 415);
  EXPECT_FALSE(parse_rejection(&json_cs, R"({"inputs":"x"})", false, &r));
  EXPECT_EQ(parse_rejection(&json, R"({"inputs":)", false, &r)->status, 400);
  EXPECT_EQ(parse_rejection(&json, "{\"inputs\":\"\xff\"}", false, &r)->status,
            400);  // invalid UTF-8
  EXPECT_EQ(parse_rejection(&json, R"({"inputs":NaN})", false, &r)->status, 400);
  for (const char* bad :
       {R"({"inputs":["x"]})", R"({})", R"([])", R"({"inputs":"x","parameters":null})",
        R"({"inputs":"x","parameters":{"max_new_tokens":-1}})",
        R"({"inputs":"x","parameters":{"max_new_tokens":4294967296}})",
        R"({"inputs":"x","parameters":{"max_new_tokens":1.5}})",
        R"({"inputs":"x","parameters":{"max_new_tokens":null}})",
        R"({"inputs":"x","parameters":{"top_k":3000000000}})",
        R"({"inputs":"x","parameters":{"seed":-1}})", R"({"inputs":"x","parameters":{"stop":[1]}})",
        R"({"inputs":"x","parameters":{"do_sample":1}})", R"({"inputs":"x","stream":"yes"})"}) {
    TgiRequest q;
    auto rej = parse_rejection(&json, bad, true, &q);
    ASSERT_TRUE(rej) << bad;
    EXPECT_EQ(rej->status, 422) << bad;
    EXPECT_EQ(rej->body.rfind("Failed to deserialize the JSON body into the target type: ", 0), 0u)
        << rej->body;
  }
  auto rej =
      parse_rejection(&json, R"({"inputs":"x","parameters":{"max_new_tokens":-1}})", false, &r);
  EXPECT_EQ(rej->body,
            "Failed to deserialize the JSON body into the target type: parameters.max_new_tokens: "
            "invalid value: "
            "integer `-1`, expected u32");
}

TEST(Validation, DefaultsAndNulls) {
  TgiRequest r = parse_ok(
      R"({"inputs":"x","parameters":{"temperature":null,"seed":null,"extra":1},"stream":true})",
      true);
  EXPECT_EQ(r.parameters.max_new_tokens, 20u);
  EXPECT_FALSE(r.parameters.temperature);
  EXPECT_FALSE(r.parameters.seed);
  EXPECT_TRUE(r.stream);
  EXPECT_FALSE(
      parse_ok(R"({"inputs":"x","stream":true})", false).stream);  // only compat routes read it
}

TEST(Validation, SamplingMapping) {
  TgiParams p;
  EXPECT_FALSE(tgi_is_sampling(p));
  p.top_k = 5;
  EXPECT_TRUE(tgi_is_sampling(p));  // a warper implies sampling (NextTokenChooser)
  p.seed = 42;
  p.temperature = 0.5f;
  SamplingParams s = tgi_sampling(p, 7);
  EXPECT_TRUE(s.do_sample);
  EXPECT_EQ(s.seed, 42u);
  EXPECT_EQ(s.top_k, 5);
  EXPECT_FLOAT_EQ(s.temperature, 0.5f);
  TgiParams q;
  EXPECT_EQ(tgi_sampling(q, 7).seed, 7u);
}

TEST(Validation, LmiRequest) {
  LmiRequest r;
  EXPECT_FALSE(parse_lmi_request(
      R"({"inputs":"hi","parameters":{"max_new_tokens":5,"stop_sequences":["x"],"stop":["ignored"],"top_p":0.6}})",
      9, &r));
  EXPECT_EQ(r.inputs, "hi");
  EXPECT_EQ(r.max_new_tokens, 5);
  EXPECT_EQ(r.stop_sequences, std::vector<std::string>{"x"});
  EXPECT_TRUE(r.sampling.do_sample);
  EXPECT_EQ(r.sampling.seed, 9u);
  LmiRequest d;
  EXPECT_FALSE(parse_lmi_request(R"({"inputs":"hi"})", 1, &d));
  EXPECT_EQ(d.max_new_tokens, 30);  // lmi-dist default
  EXPECT_FALSE(d.sampling.do_sample);
  LmiRequest e;
  EXPECT_TRUE(parse_lmi_request(R"({"inputs":"hi","parameters":{"temperature":0}})", 1, &e));
  EXPECT_TRUE(parse_lmi_request(R"({"parameters":{}})", 1, &e));
  EXPECT_TRUE(parse_lmi_request("not json", 1, &e));
}

TEST(OpenAiValidation, MessagesInOrder) {
  auto first = [](const std::string& body, bool chat = true) {
    OpenAiRequest r;
    auto e = parse_openai_request(body, chat, 4, &r);
    return e ? std::string(error_info(e->kind).name) + ": " + e->message : std::string("ok");
  };
  const std::string msgs = R"("messages":[{"role":"user","content":"hi"}])";
  EXPECT_EQ(first("{" + msgs + "}"), "ok");
  EXPECT_EQ(first("[1]"), "invalid_request: the body must be a JSON object");
  EXPECT_EQ(first("{").rfind("invalid_request: the body is not valid JSON: ", 0), 0u);
  EXPECT_EQ(first(R"({"stream":1})"), "invalid_request: `stream` must be a boolean");
  EXPECT_EQ(first(R"({"n":129})"), "invalid_request: `n` must be >= 1 and <= 128");
  EXPECT_EQ(first(R"({"tools":[]})"), "invalid_request: `tools` is not supported by this server");
  EXPECT_EQ(first(R"({"tools":null,)" + msgs + "}"), "ok");  // explicitly unset
  EXPECT_EQ(first(R"({"frobnicate":1})"),
            "invalid_request: Unrecognized request argument supplied: frobnicate");
  EXPECT_EQ(first(R"({"echo":true})"),
            "invalid_request: Unrecognized request argument supplied: echo");  // completions'
  EXPECT_EQ(first(R"({"stream_options":{"include_usage":true}})"),
            "invalid_request: `stream_options` is only allowed when `stream` is true");
  EXPECT_EQ(first(R"({"stream":true,"stream_options":{"x":1}})"),
            "invalid_request: Unrecognized request argument supplied: stream_options.x");
  EXPECT_EQ(first(R"({"presence_penalty":3})"),
            "invalid_request: `presence_penalty` must be >= -2.000000 and <= 2.000000");
  EXPECT_EQ(first(R"({"logit_bias":{"x":1}})"),
            "invalid_request: `logit_bias` must map token ids (as strings) to numbers in [-100, "
            "100]");
  EXPECT_EQ(first(R"({"logit_bias":{"5":101}})"),
            "invalid_request: `logit_bias` must map token ids (as strings) to numbers in [-100, "
            "100]");
  EXPECT_EQ(first(R"({"top_logprobs":2})"),
            "invalid_request: `top_logprobs` needs `logprobs` set to true");
  EXPECT_EQ(first(R"({"logprobs":true,"top_logprobs":21})"),
            "invalid_request: `top_logprobs` must be an integer >= 0 and <= 20");
  EXPECT_EQ(first(R"({"stream":true,"n":2,)" + msgs + "}"),
            "invalid_request: more than one choice (`n` > 1 or a list of prompts) cannot be "
            "streamed by this server; set stream to false");
  EXPECT_EQ(first(R"({"prompt":"x","n":3,"best_of":2})", false),
            "invalid_request: `best_of` must be greater than or equal to `n`");
  EXPECT_EQ(first(R"({"prompt":"x","stream":true,"best_of":2})", false),
            "invalid_request: `best_of` > `n` cannot be streamed; set stream to false");
  EXPECT_EQ(first(R"({"prompt":"x","logprobs":6})", false),
            "invalid_request: `logprobs` must be an integer >= 0 and <= 5 on /v1/completions");
  EXPECT_EQ(first(R"({"max_tokens":0})"),
            "invalid_request: `max_tokens` must be >= 1 and <= 16777216");
  EXPECT_EQ(first(R"({"max_completion_tokens":1.5})"),
            "invalid_request: `max_completion_tokens` must be an integer");
  EXPECT_EQ(first(R"({"temperature":3})"),
            "invalid_request: `temperature` must be >= 0.000000 and <= 2.000000");
  EXPECT_EQ(first(R"({"temperature":"x"})"), "invalid_request: `temperature` must be a number");
  // top_p's own rule comes before the next parameter's range.
  EXPECT_EQ(first(R"({"top_p":0,"frequency_penalty":5})"), "invalid_request: `top_p` must be > 0");
  EXPECT_EQ(first(R"({"frequency_penalty":5})"),
            "invalid_request: `frequency_penalty` must be >= -2.000000 and <= 2.000000");
  EXPECT_EQ(first(R"({"repetition_penalty":0})"),
            "invalid_request: `repetition_penalty` must be >= 0.000001 and <= 1000000.000000");
  EXPECT_EQ(first(R"({"top_k":-1})"), "invalid_request: `top_k` must be >= 0 and <= 16777216");
  EXPECT_EQ(first(R"({"seed":"1"})"), "invalid_request: `seed` must be an integer");
  EXPECT_EQ(first(R"({"stop":[1]})"),
            "invalid_request: `stop` must be a string or a list of strings");
  EXPECT_EQ(first(R"({"stop":["a","b","c","d","e"]})"),
            "unprocessable: `stop` supports up to 4 stop sequences. Given: 5");
  EXPECT_EQ(first(R"({"messages":[]})"), "invalid_request: `messages` must be a non-empty list");
  EXPECT_EQ(first(R"({"messages":[{"content":"x"}]})"),
            "invalid_request: each message needs a string `role`");
  EXPECT_EQ(first(R"({"messages":[{"role":"user","content":[{"type":"image"}]}]})"),
            "invalid_request: only text content parts are supported");
  EXPECT_EQ(first(R"({"messages":[{"role":"user","content":1}]})"),
            "invalid_request: `content` must be a string or a list of text parts");
  EXPECT_EQ(first(R"({"prompt":"x","suffix":"y"})", false),
            "unsupported_feature: Suffix is not supported and can be achieved by preprocessing the "
            "prompt.");
  EXPECT_EQ(first(R"({"prompt":[1,"b"]})", false),
            "invalid_request: `prompt` must be a string, a list of strings, a list of token ids or "
            "a list of lists of token ids");
  EXPECT_EQ(first(R"({"prompt":["a"]})", false), "ok");
  EXPECT_EQ(first(R"({"prompt":["a","b"]})", false), "ok");
  EXPECT_EQ(first(R"({"prompt":[1,2]})", false), "ok");
  EXPECT_EQ(first(R"({"prompt":[[1],[2,3]]})", false), "ok");
  {
    OpenAiRequest p;
    auto e = parse_openai_request(R"({"prompt":"x","response_format":{"type":"json_object"}})",
                                  false, 4, &p);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->param, "response_format");
    ASSERT_FALSE(parse_openai_request(
        R"({"prompt":[[1],[2,3]],"logit_bias":{"7":-100},"presence_penalty":0.5,"n":2,)"
        R"("temperature":1,"logprobs":2,"echo":true})",
        false, 4, &p));
    EXPECT_EQ(p.prompt_ids, (std::vector<std::vector<int32_t>>{{1}, {2, 3}}));
    EXPECT_EQ(p.sampling.logit_bias.size(), 1u);
    EXPECT_EQ(p.sampling.logit_bias[0].first, 7);
    EXPECT_EQ(p.sampling.presence_penalty, 0.5f);
    EXPECT_EQ(p.n, 2);
    EXPECT_EQ(p.best_of, 2);
    EXPECT_TRUE(p.logprobs && p.echo);
    EXPECT_EQ(p.top_logprobs, 2);
  }

  OpenAiRequest r;
  ASSERT_FALSE(parse_openai_request(R"({"prompt":"p","max_tokens":7,"temperature":0,)"
                                    R"("seed":5,"stop":"s"})",
                                    false, 4, &r));
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_FALSE(r.sampling.do_sample);
  EXPECT_EQ(*r.seed, 5u);
  EXPECT_EQ(r.stop, std::vector<std::string>{"s"});
  EXPECT_EQ(r.prompts, std::vector<std::string>{"p"});
  OpenAiRequest c;
  ASSERT_FALSE(parse_openai_request("{\"max_tokens\":7," + msgs + "}", true, 4, &c));
  EXPECT_EQ(c.max_tokens, 7);
  EXPECT_FALSE(c.seed);
  ASSERT_EQ(c.messages.size(), 1u);
  EXPECT_EQ(c.messages[0].second, "hi");
}

}  // namespace
}  // namespace lmstream::server

// `lmstream invoke`: a command-line client for lmstream, TGI, LMI and SageMaker endpoints. Sends
// one generation request and prints the generated text to stdout as it streams in
// (client/invoke.h).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

#include "chat/chat.h"
#include "cli/command.h"
#include "client/aws_config.h"
#include "client/invoke.h"

namespace lmstream::cli {
namespace {

struct InvokeArgs {
  std::string endpoint_url, endpoint, prompt, payload_file, system,
      api = "auto", region, api_key, accept, custom_attributes, content_type = "application/json",
      ca_bundle, profile;
  bool stream = false, chat = false, stats = false;
  int max_new_tokens = 0, top_k = 0;
  double temperature = 0, top_p = 0, repetition_penalty = 0, connect_timeout = 10,
         read_timeout = 300;
  uint64_t seed = 0;
  bool do_sample = false, return_full_text = false;
  std::vector<std::string> stop;
};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read --payload file '" + path + "'");
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

template <class T>
std::optional<T> given(CLI::App& app, const char* name, const T& v) {
  return app.count(name) ? std::optional<T>(v) : std::nullopt;
}

std::chrono::milliseconds ms(double seconds, const char* flag) {
  if (!(seconds > 0) || seconds > 86400)
    throw std::invalid_argument(std::string(flag) + " must be in (0, 86400] seconds");
  return std::chrono::milliseconds(int64_t(seconds * 1000));
}

client::InvokeOptions options(CLI::App& sub, const InvokeArgs& a) {
  client::InvokeOptions o;
  client::AwsSettings aws =
      client::resolve_aws_settings(a.profile, a.region, client::process_getenv());
  o.endpoint = a.endpoint;
  if (!a.endpoint_url.empty()) {
    o.endpoint_url = a.endpoint_url;
  } else if (!a.endpoint.empty() && !aws.region.empty()) {
    o.endpoint_url = client::sagemaker_runtime_url(aws.region);  // the real SageMaker runtime
  } else {
    throw std::invalid_argument(
        "give --endpoint-url URL, or --endpoint NAME with a region (--region, AWS_REGION, "
        "AWS_DEFAULT_REGION or the profile's region) to call "
        "https://runtime.sagemaker.REGION.amazonaws.com");
  }
  o.ca_file = !a.ca_bundle.empty() ? a.ca_bundle : env("AWS_CA_BUNDLE");
  o.stream = a.stream;
  o.api = *client::api_from_name(a.api);
  if (!a.payload_file.empty()) {
    if (sub.count("--prompt") || sub.count("--system") || a.chat)
      throw std::invalid_argument(
          "--payload is sent as is: it cannot be combined with --prompt/--system/--chat");
    o.payload = read_file(a.payload_file);
  } else if (!sub.count("--prompt")) {
    throw std::invalid_argument("give --prompt TEXT or --payload FILE");
  }
  bool chat = a.chat || sub.count("--system");  // a system prompt only exists in the chat format
  if (o.api == client::Api::kOpenai) {
    o.inputs = a.prompt;
    if (chat) {
      if (!a.system.empty()) o.messages.emplace_back("system", a.system);
      o.messages.emplace_back("user", a.prompt);
    }
  } else if (chat) {
    std::vector<ChatMessage> m;
    if (sub.count("--system")) m.push_back({"system", a.system});
    m.push_back({"user", a.prompt});
    o.inputs = llama2_chat_text(m);
  } else {
    o.inputs = a.prompt;
  }
  auto& p = o.params;
  p.max_new_tokens = given(sub, "--max-new-tokens", a.max_new_tokens);
  p.top_k = given(sub, "--top-k", a.top_k);
  p.temperature = given(sub, "--temperature", a.temperature);
  p.top_p = given(sub, "--top-p", a.top_p);
  p.repetition_penalty = given(sub, "--repetition-penalty", a.repetition_penalty);
  p.seed = given(sub, "--seed", a.seed);
  p.do_sample = given(sub, "--do-sample", a.do_sample);
  p.return_full_text = given(sub, "--return-full-text", a.return_full_text);
  p.stop = a.stop;
  o.content_type = a.content_type;
  o.accept = a.accept;
  o.custom_attributes = a.custom_attributes;
  o.credentials = aws.credentials;
  o.region = aws.region.empty() ? "us-east-1" : aws.region;
  o.api_key = !a.api_key.empty() ? a.api_key : env("LMSTREAM_API_KEY");
  o.timeouts.connect = ms(a.connect_timeout, "--connect-timeout");
  o.timeouts.read = ms(a.read_timeout, "--timeout");
  return o;
}

void run(CLI::App& sub, const InvokeArgs& a) {
  client::InvokeOptions o = options(sub, a);
  bool wrote = false;
  client::InvokeStats st;
  try {
    st = client::invoke(o, [&](std::string_view text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      wrote = true;
    });
  } catch (const std::exception& e) {
    if (wrote && isatty(fileno(stdout))) std::fputc('\n', stdout);
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    throw CLI::RuntimeError(1);
  }
  if (wrote && isatty(fileno(stdout))) std::fputc('\n', stdout);
  std::fflush(stdout);
  if (a.stats) {
    double gen_s = st.total_s;
    std::fprintf(stderr,
                 "stats: ttfb_ms=%.1f ttft_ms=%.1f %s=%zu tokens_per_s=%.1f total_ms=%.1f\n",
                 st.ttfb_s * 1e3, st.ttft_s < 0 ? -1.0 : st.ttft_s * 1e3,
                 st.tokens_exact ? "tokens" : "tokens(text chunks)", st.tokens,
                 gen_s > 0 ? double(st.tokens) / gen_s : 0.0, st.total_s * 1e3);
  }
}

const Register reg(
    "invoke",
    "Send one generation request to an lmstream/TGI/LMI server or a SageMaker endpoint and print "
    "the text as it streams",
    [](CLI::App& sub) {
      // Settings here are "given or not" (the server, env or files decide the rest), so each
      // description states its default instead of the variable's placeholder value.
      sub.option_defaults()->always_capture_default(false);
      auto a = std::make_shared<InvokeArgs>();
      sub.add_option("--endpoint-url", a->endpoint_url,
                     "server URL, http[s]://host[:port] (default with --endpoint: "
                     "https://runtime.sagemaker.REGION.amazonaws.com)");
      sub.add_option("--endpoint", a->endpoint,
                     "SageMaker endpoint name: POST /endpoints/NAME/invocations[-response-stream] "
                     "(default: none, the server's own routes)");
      sub.add_flag("--stream", a->stream,
                   "ask for a streamed answer (SageMaker: InvokeEndpointWithResponseStream)");
      sub.add_option("--prompt", a->prompt,
                     "the prompt (or the user message with --chat; default: none)");
      sub.add_option("--payload", a->payload_file,
                     "send this file's bytes as the request body (default: none)");
      sub.add_option("--system", a->system, "system prompt (implies --chat; default: none)");
      sub.add_flag("--chat", a->chat,
                   "format the prompt as a Llama 2 chat: <s>[INST] <<SYS>>...<</SYS>> ... [/INST]");
      sub.add_option("--max-new-tokens", a->max_new_tokens,
                     "tokens to generate (default: the server's)")
          ->check(CLI::Range(1, 1 << 20));
      sub.add_option("--temperature", a->temperature,
                     "sampling temperature (default: the server's)");
      sub.add_option("--top-p", a->top_p, "nucleus sampling (default: the server's)");
      sub.add_option("--top-k", a->top_k, "top-k sampling (default: the server's)");
      sub.add_option("--repetition-penalty", a->repetition_penalty,
                     "repetition penalty (default: the server's)");
      sub.add_option("--seed", a->seed, "sampling seed (default: the server's)");
      sub.add_option("--do-sample", a->do_sample,
                     "true/false: sample instead of greedy (default: the server's)");
      sub.add_option("--return-full-text", a->return_full_text,
                     "true/false: prepend the prompt (default false)");
      sub.add_option("--stop", a->stop, "stop sequence (repeatable; default: none)")
          ->take_all()
          ->expected(1);
      sub.add_option("--api", a->api,
                     "server kind: payload, route and answer format (default auto-detect)")
          ->check(CLI::IsMember({"auto", "tgi", "lmi", "openai"}));
      sub.add_flag("--stats", a->stats,
                   "print time to first byte/token, tokens and tokens/s to stderr");
      sub.add_option("--region", a->region,
                     "AWS region: signs with it and, without --endpoint-url, picks the SageMaker "
                     "runtime URL (env AWS_REGION, AWS_DEFAULT_REGION, the profile's region; "
                     "us-east-1 for signing)");
      sub.add_option("--profile", a->profile,
                     "AWS profile of ~/.aws/credentials and ~/.aws/config (env AWS_PROFILE; "
                     "default)");
      sub.add_option("--ca-bundle", a->ca_bundle,
                     "PEM CA bundle to trust for https:// (env AWS_CA_BUNDLE; the system's)");
      sub.add_option("--api-key", a->api_key,
                     "send Authorization: Bearer KEY (env LMSTREAM_API_KEY; default: none)");
      sub.add_option("--accept", a->accept,
                     "Accept (X-Amzn-SageMaker-Accept when streaming from an endpoint; default: "
                     "none)");
      sub.add_option("--custom-attributes", a->custom_attributes,
                     "X-Amzn-SageMaker-Custom-Attributes, sent on every route (none; a Llama 2 "
                     "chat endpoint needs accept_eula=true, which is yours to give)");
      sub.add_option("--content-type", a->content_type, "request Content-Type (application/json)");
      sub.add_option("--connect-timeout", a->connect_timeout,
                     "seconds to wait for the connection (10)");
      sub.add_option("--timeout", a->read_timeout,
                     "seconds to wait for any bytes of the answer (300)");
      sub.callback([&sub, a] { run(sub, *a); });
    });

}  // namespace
}  // namespace lmstream::cli

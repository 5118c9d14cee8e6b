// `lmstream invoke` request building: routes, payloads, SageMaker headers and SigV4 (checked with
// aws/sigv4's verifier), error messages, URL parsing, and the HTTP client against a local socket
// that answers with a chunked body.
#include "client/invoke.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <boost/asio.hpp>
#include <cstdio>
#include <thread>

namespace lmstream::client {
namespace {

InvokeOptions base() {
  InvokeOptions o;
  o.endpoint_url = "http://127.0.0.1:8080";
  o.inputs = "Hi";
  o.params.max_new_tokens = 5;
  return o;
}

TEST(Invoke, RoutesPerApiAndEndpoint) {
  InvokeOptions o = base();
  EXPECT_EQ(request_path(o), "/invocations");
  o.api = Api::kTgi;
  EXPECT_EQ(request_path(o), "/generate");
  o.stream = true;
  EXPECT_EQ(request_path(o), "/generate_stream");
  o.endpoint = "my-ep-1";
  EXPECT_EQ(request_path(o), "/endpoints/my-ep-1/invocations-response-stream");
  o.stream = false;
  EXPECT_EQ(request_path(o), "/endpoints/my-ep-1/invocations");
  for (std::string bad : {std::string("-x"), std::string("x-"), std::string("a b"),
                          std::string("a/b"), std::string(64, 'a'), std::string("\xc3\xa9")}) {
    o.endpoint = bad;
    EXPECT_THROW(request_path(o), InvokeError) << bad;
  }
  InvokeOptions c = base();
  c.api = Api::kOpenai;
  EXPECT_EQ(request_path(c), "/v1/completions");
  c.messages = {{"user", "Hi"}};
  EXPECT_EQ(request_path(c), "/v1/chat/completions");
}

TEST(Invoke, PayloadsPerApi) {
  InvokeOptions o = base();
  o.stream = true;
  o.params.stop = {"</s>"};
  o.params.temperature = 0.5;
  auto j = nlohmann::json::parse(build_payload(o));
  EXPECT_EQ(j["inputs"], "Hi");
  EXPECT_EQ(j["stream"], true);
  EXPECT_EQ(j["parameters"]["max_new_tokens"], 5);
  EXPECT_EQ(j["parameters"]["temperature"], 0.5);
  EXPECT_EQ(j["parameters"]["return_full_text"], false);
  EXPECT_EQ(j["parameters"]["stop"], nlohmann::json::array({"</s>"}));            // TGI
  EXPECT_EQ(j["parameters"]["stop_sequences"], nlohmann::json::array({"</s>"}));  // lmi-dist
  o.api = Api::kLmi;
  j = nlohmann::json::parse(build_payload(o));
  EXPECT_FALSE(j["parameters"].contains("stop"));
  o.api = Api::kTgi;
  j = nlohmann::json::parse(build_payload(o));
  EXPECT_FALSE(j["parameters"].contains("stop_sequences"));
  o.api = Api::kOpenai;
  o.messages = {{"system", "S"}, {"user", "Hi"}};
  j = nlohmann::json::parse(build_payload(o));
  EXPECT_EQ(j["messages"][0]["role"], "system");
  EXPECT_EQ(j["max_tokens"], 5);
  o.payload = "raw bytes";
  EXPECT_EQ(build_payload(o), "raw bytes");
}

TEST(Invoke, SageMakerHeadersAndSignatureVerify) {
  InvokeOptions o = base();
  o.endpoint = "my-ep";
  o.stream = true;
  o.accept = "application/json";
  o.credentials = sigv4::Credentials{"AKIDEXAMPLE", "secret", "token-1"};
  o.region = "eu-west-1";
  Url url = parse_url(o.endpoint_url);
  auto now = sigv4::Clock::now();
  HttpRequest r = build_request(o, url, now);
  sigv4::Request v;
  v.method = r.method;
  v.path = r.target;
  v.headers = r.headers;
  v.body = r.body;
  EXPECT_EQ(v.header("Host"), "127.0.0.1:8080");
  EXPECT_EQ(v.header("X-Amzn-SageMaker-Accept"), "application/json");
  EXPECT_FALSE(v.header("Accept"));
  EXPECT_FALSE(v.header("X-Amzn-SageMaker-Custom-Attributes"));  // never defaulted
  EXPECT_EQ(v.header("X-Amz-Security-Token"), "token-1");
  ASSERT_TRUE(v.header("Authorization"));
  EXPECT_NE(v.header("Authorization")->find("/eu-west-1/sagemaker/aws4_request"),
            std::string_view::npos);
  sigv4::CredentialStore store;
  store.add(*o.credentials);
  EXPECT_TRUE(sigv4::verify(v, store, {}, now).ok());
  // Tampering with the body breaks the signature.
  std::string other = r.body + " ";
  v.body = other;
  EXPECT_FALSE(sigv4::verify(v, store, {}, now).ok());
}

TEST(Invoke, BearerKeyOnlyWhenNotSigning) {
  InvokeOptions o = base();
  o.api_key = "k";
  HttpRequest r = build_request(o, parse_url(o.endpoint_url), sigv4::Clock::now());
  sigv4::Request v;
  v.headers = r.headers;
  EXPECT_EQ(v.header("Authorization"), "Bearer k");
  EXPECT_FALSE(v.header("X-Amzn-SageMaker-Custom-Attributes"));  // none given
  o.custom_attributes = "accept_eula=true";                      // sent on every route when given
  r = build_request(o, parse_url(o.endpoint_url), sigv4::Clock::now());
  v.headers = r.headers;
  EXPECT_EQ(v.header("X-Amzn-SageMaker-Custom-Attributes"), "accept_eula=true");
}

TEST(Invoke, HttpErrorMessages) {
  EXPECT_EQ(
      http_error_message(424, "Failed Dependency", "ModelError:http://internal",
                         R"x({"Message":"Received server error (500)","OriginalMessage":"boom"})x"),
      "HTTP 424 Failed Dependency: ModelError: Received server error (500) (original message: "
      "boom)");
  EXPECT_EQ(
      http_error_message(422, "", std::nullopt,
                         R"({"error":"Input validation error: x","error_type":"validation"})"),
      "HTTP 422: validation: Input validation error: x");
  EXPECT_EQ(http_error_message(400, "Bad Request", std::nullopt,
                               R"({"__type":"ns#ValidationException","message":"no"})"),
            "HTTP 400 Bad Request: ValidationException: no");
  EXPECT_EQ(http_error_message(404, "Not Found", std::nullopt, "not json\n"),
            "HTTP 404 Not Found: \"not json\"");
  EXPECT_EQ(http_error_message(500, "", std::nullopt, ""), "HTTP 500: (empty body)");
}

TEST(Url, ParsesAndRejects) {
  Url u = parse_url("http://example.com:8080/base/");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.base_path, "/base");
  EXPECT_EQ(u.host_header(), "example.com:8080");
  EXPECT_EQ(parse_url("HTTP://h").host_header(), "h");
  Url v6 = parse_url("http://[::1]:9000");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.host_header(), "[::1]:9000");
  Url s = parse_url("https://runtime.sagemaker.eu-west-3.amazonaws.com");
  EXPECT_TRUE(s.tls);
  EXPECT_EQ(s.port, 443);
  EXPECT_EQ(s.host_header(), "runtime.sagemaker.eu-west-3.amazonaws.com");
  EXPECT_EQ(s.absolute("/x"), "https://runtime.sagemaker.eu-west-3.amazonaws.com/x");
  EXPECT_EQ(parse_url("https://h:8443").host_header(), "h:8443");
  EXPECT_EQ(parse_url("http://h:443").host_header(), "h:443");
  for (std::string bad : {"ftp://h", "h:80", "http://", "http://h:0", "http://h:70000",
                          "http://h:x", "http://h:", "http://u@h", "http://h/p?q=1", "http://[::1"})
    EXPECT_THROW(parse_url(bad), HttpError) << bad;
}

std::string chunk(std::string_view data) {
  char size[16];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + std::string(data) + "\r\n";
}

// A one-shot server on a loopback port: reads the request, writes `response` in pieces.
class OneShotServer {
 public:
  explicit OneShotServer(std::vector<std::string> pieces, std::chrono::milliseconds linger = {})
      : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this, linger, pieces = std::move(pieces)] {
      boost::asio::ip::tcp::socket s(ioc_);
      acceptor_.accept(s);
      std::string req;
      char buf[4096];
      boost::system::error_code ec;
      while (req.find("\r\n\r\n") == std::string::npos) {
        size_t n = s.read_some(boost::asio::buffer(buf), ec);
        if (ec) return;
        req.append(buf, n);
      }
      request_ = req;
      for (const auto& p : pieces) {
        boost::asio::write(s, boost::asio::buffer(p), ec);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      std::this_thread::sleep_for(linger);
      s.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    });
  }
  ~OneShotServer() { thread_.join(); }
  uint16_t port() const { return port_; }
  const std::string& request() const { return request_; }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::string request_;
};

TEST(HttpClient, ChunkedBodyArrivesPieceByPiece) {
  std::vector<std::string> text;
  {
    std::string a = chunk("data:{\"token\":{\"text\":\" A\"}}\n\n"),
                b = chunk("data:{\"token\":{\"text\":\" B\"}}\n\n");
    // Each chunk split over two writes, the second one in the middle of its size line.
    OneShotServer srv(
        {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
         a.substr(0, 10), a.substr(10) + b.substr(0, 1), b.substr(1), "0\r\n\r\n"});
    InvokeOptions o = base();
    o.endpoint_url = "http://127.0.0.1:" + std::to_string(srv.port());
    o.api = Api::kTgi;
    o.stream = true;
    InvokeStats st = invoke(o, [&](std::string_view t) { text.emplace_back(t); });
    EXPECT_EQ(st.tokens, 2u);
    EXPECT_GE(st.ttft_s, st.ttfb_s);
    EXPECT_NE(srv.request().find("POST /generate_stream HTTP/1.1"), std::string::npos);
  }
  ASSERT_FALSE(text.empty());
  std::string all;
  for (auto& t : text) all += t;
  EXPECT_EQ(all, " A B");
}

TEST(HttpClient, EarlyCloseAndErrorStatus) {
  {
    OneShotServer srv(
        {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
         "5\r\ndata:\r\n"});
    InvokeOptions o = base();
    o.endpoint_url = "http://127.0.0.1:" + std::to_string(srv.port());
    EXPECT_THROW(invoke(o, [](std::string_view) {}), HttpError);
  }
  {
    std::string body = "{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}";
    OneShotServer srv({"HTTP/1.1 429 Too Many Requests\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body});
    InvokeOptions o = base();
    o.endpoint_url = "http://127.0.0.1:" + std::to_string(srv.port());
    try {
      invoke(o, [](std::string_view) {});
      FAIL() << "no error";
    } catch (const InvokeError& e) {
      EXPECT_EQ(std::string(e.what()),
                "HTTP 429 Too Many Requests: overloaded: Model is overloaded");
    }
  }
}

TEST(HttpClient, ReadTimeout) {
  // The header arrives, then nothing for 500 ms: a 50 ms read timeout must fire first.
  OneShotServer srv(
      {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"},
      std::chrono::milliseconds(500));
  InvokeOptions o = base();
  o.endpoint_url = "http://127.0.0.1:" + std::to_string(srv.port());
  o.timeouts.read = std::chrono::milliseconds(50);
  try {
    invoke(o, [](std::string_view) {});
    FAIL() << "no error";
  } catch (const HttpError& e) {
    EXPECT_NE(std::string(e.what()).find("timed out after 0.05 s"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lmstream::client

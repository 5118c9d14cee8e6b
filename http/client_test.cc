// The libcurl client against real loopback servers: the http/ server for plain HTTP, a small
// Asio TLS server with certificates made by the openssl CLI for HTTPS. Checks that streamed chunks
// reach the callback one by one (the server sends the next only once the client holds the last),
// redirects across ports with and without the Authorization header, ranges, exactly the headers
// asked for, the stall timeout (and a slow but moving body that must not trip it), connect
// errors, cancellation, a throwing callback, and TLS with the right and the wrong CA bundle.
#include "http/client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "http/server.h"

namespace lmstream::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Waits up to 5 s for pred().
template <class Pred>
bool wait_for(Pred pred) {
  for (int i = 0; i < 1000 && !pred(); ++i) std::this_thread::sleep_for(5ms);
  return pred();
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Server A.
    a_.add("GET", "/echo-auth", [](std::shared_ptr<Exchange> ex) {
      const std::string* auth = ex->request().header("Authorization");
      ex->respond({200, {{"X-Method", ex->request().method}}, auth ? *auth : "(none)"});
    });
    a_.add("POST", "/echo-auth", [](std::shared_ptr<Exchange> ex) {
      ex->respond({200, {{"X-Method", "POST"}}, "post reached"});
    });
    a_.add("GET", "/same", [](std::shared_ptr<Exchange> ex) {
      ex->respond({302, {{"Location", "/echo-auth"}}, "moved here"});
    });
    a_.add("GET", "/cross", [this](std::shared_ptr<Exchange> ex) {
      ex->respond({302,
                   {{"Location", "http://127.0.0.1:" + std::to_string(port_b_) + "/echo-auth"}},
                   "moved there"});
    });
    a_.add("POST", "/see-other", [this](std::shared_ptr<Exchange> ex) {
      ex->respond(
          {303, {{"Location", "http://127.0.0.1:" + std::to_string(port_b_) + "/echo-auth"}}, ""});
    });
    a_.add("POST", "/temporary", [](std::shared_ptr<Exchange> ex) {
      ex->respond({307, {{"Location", "/echo-auth"}}, ""});
    });
    a_.add("GET", "/loop", [](std::shared_ptr<Exchange> ex) {
      ex->respond({302, {{"Location", "/loop"}}, ""});
    });
    a_.add("GET", "/file", [](std::shared_ptr<Exchange> ex) {
      const std::string data = "0123456789";
      const std::string* range = ex->request().header("Range");
      if (!range) return ex->respond({200, {}, data});
      std::string spec = range->substr(range->find('=') + 1);
      size_t dash = spec.find('-');
      size_t first = std::stoul(spec.substr(0, dash));
      size_t last = dash + 1 < spec.size() ? std::stoul(spec.substr(dash + 1)) : data.size() - 1;
      ex->respond({206,
                   {{"Content-Range",
                     "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/10"},
                    {"X-Range", *range}},
                   data.substr(first, last - first + 1)});
    });
    a_.add("POST", "/headers", [](std::shared_ptr<Exchange> ex) {
      std::string all;
      for (const auto& [k, v] : ex->request().headers) all += k + ": " + v + "\n";
      ex->respond({200, {{"X-Body-Bytes", std::to_string(ex->request().body.size())}}, all});
    });
    // Writes one piece, then each next one only once the client has received the one before.
    a_.add("GET", "/lockstep", [this](std::shared_ptr<Exchange> ex) {
      ex->start_stream(200, {{"Content-Type", "text/plain"}});
      ex->write("piece0");
      helpers_.emplace_back([this, ex] {
        for (int i = 1; i < 4; ++i) {
          wait_for([&] { return received_ >= i; });
          asio::post(ex->executor(), [ex, i] { ex->write("piece" + std::to_string(i)); });
        }
        asio::post(ex->executor(), [ex] { ex->finish(); });
      });
    });
    // A chunk every 100 ms, six in all.
    a_.add("GET", "/slow", [this](std::shared_ptr<Exchange> ex) {
      ex->start_stream(200, {});
      helpers_.emplace_back([ex] {
        for (int i = 0; i < 6; ++i) {
          std::this_thread::sleep_for(100ms);
          asio::post(ex->executor(), [ex] { ex->write("x"); });
        }
        asio::post(ex->executor(), [ex] { ex->finish(); });
      });
    });
    a_.add("GET", "/stall", [this](std::shared_ptr<Exchange> ex) {
      ex->start_stream(200, {});
      ex->write("first");
      held_.push_back(ex);  // and then nothing
    });
    a_.add("GET", "/silent", [this](std::shared_ptr<Exchange> ex) { held_.push_back(ex); });
    // Server B: another port.
    b_.add("GET", "/echo-auth", [](std::shared_ptr<Exchange> ex) {
      const std::string* auth = ex->request().header("Authorization");
      ex->respond(
          {200, {{"X-Method", ex->request().method}, {"X-Server", "b"}}, auth ? *auth : "(none)"});
    });
    server_a_ = std::make_unique<HttpServer>(ioc_, a_, HttpLimits{}, nullptr);
    server_b_ = std::make_unique<HttpServer>(ioc_, b_, HttpLimits{}, nullptr);
    port_a_ = server_a_->listen("127.0.0.1", 0);
    port_b_ = server_b_->listen("127.0.0.1", 0);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    for (auto& t : helpers_) t.join();
    asio::post(ioc_, [this] { held_.clear(); });
    server_a_->close_all();
    server_b_->close_all();
    std::this_thread::sleep_for(20ms);
    ioc_.stop();
    thread_.join();
    held_.clear();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_a_) + path;
  }
  ClientRequest get(const std::string& path) const {
    ClientRequest r;
    r.url = url(path);
    return r;
  }

  asio::io_context ioc_;
  RouteTable a_, b_;
  std::unique_ptr<HttpServer> server_a_, server_b_;
  int port_a_ = 0, port_b_ = 0;
  std::thread thread_;
  std::vector<std::thread> helpers_;             // started on the io thread, joined in TearDown
  std::vector<std::shared_ptr<Exchange>> held_;  // io thread only
  std::atomic<int> received_{0};
};

TEST_F(ClientTest, StreamedChunksReachTheCallbackOneByOne) {
  std::vector<std::string> pieces;
  bool head_first = false;
  ClientCallbacks cb;
  cb.on_head = [&](const ResponseHead& h) {
    head_first = pieces.empty();
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.header("content-type"), "text/plain");
  };
  cb.on_body = [&](std::string_view p) {
    pieces.emplace_back(p);
    received_++;
  };
  ResponseHead h = perform(get("/lockstep"), {}, cb);
  EXPECT_TRUE(head_first);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.reason, "OK");
  // Had the client held bytes back, the server would have waited 5 s for each piece in vain and
  // the pieces would have come in fewer calls.
  EXPECT_EQ(pieces, (std::vector<std::string>{"piece0", "piece1", "piece2", "piece3"}));
}

TEST_F(ClientTest, RedirectsAcrossPortsDropAuthorizationUnlessKept) {
  ClientRequest r = get("/cross");
  r.headers = {{"Authorization", "Bearer t"}};
  ClientOptions o;
  // Not following: the 3xx and its body are the answer.
  ClientResponse plain = fetch(r, o);
  EXPECT_EQ(plain.head.status, 302);
  EXPECT_EQ(plain.body, "moved there");
  EXPECT_EQ(plain.head.redirects, 0);

  o.redirects.follow = true;
  ClientResponse dropped = fetch(r, o);
  EXPECT_EQ(dropped.head.status, 200);
  EXPECT_EQ(dropped.head.header("X-Server"), "b");
  EXPECT_EQ(dropped.body, "(none)");  // the redirect's own body never reaches the caller
  EXPECT_EQ(dropped.head.url, "http://127.0.0.1:" + std::to_string(port_b_) + "/echo-auth");
  EXPECT_EQ(dropped.head.redirects, 1);

  o.redirects.keep_authorization_across_hosts = true;
  EXPECT_EQ(fetch(r, o).body, "Bearer t");

  // Same origin: kept without asking.
  o.redirects.keep_authorization_across_hosts = false;
  r.url = url("/same");
  ClientResponse same = fetch(r, o);
  EXPECT_EQ(same.body, "Bearer t");
  EXPECT_EQ(same.head.url, url("/echo-auth"));
}

TEST_F(ClientTest, RedirectMethodsAndLimit) {
  ClientOptions o;
  o.redirects.follow = true;
  ClientRequest post;
  post.method = "POST";
  post.url = url("/see-other");
  post.body = "data";
  post.headers = {{"Content-Type", "text/plain"}};
  ClientResponse r = fetch(post, o);  // 303: GET, no body
  EXPECT_EQ(r.head.status, 200);
  EXPECT_EQ(r.head.header("X-Method"), "GET");
  post.url = url("/temporary");  // 307: the method and body stay
  r = fetch(post, o);
  EXPECT_EQ(r.body, "post reached");

  o.redirects.max_redirects = 3;
  try {
    fetch(get("/loop"), o);
    FAIL() << "no error";
  } catch (const ClientError& e) {
    EXPECT_EQ(e.kind(), ClientError::Kind::kRedirects);
    EXPECT_NE(std::string(e.what()).find("more than 3 redirects"), std::string::npos) << e.what();
  }
}

TEST_F(ClientTest, Ranges) {
  ClientRequest r = get("/file");
  r.range = ByteRange{2, 5};
  ClientResponse a = fetch(r, {});
  EXPECT_EQ(a.head.status, 206);
  EXPECT_EQ(a.body, "2345");
  EXPECT_EQ(a.head.header("X-Range"), "bytes=2-5");
  EXPECT_EQ(a.head.header("Content-Range"), "bytes 2-5/10");
  r.range = ByteRange{7, std::nullopt};
  ClientResponse b = fetch(r, {});
  EXPECT_EQ(b.body, "789");
  EXPECT_EQ(b.head.header("X-Range"), "bytes=7-");
}

TEST_F(ClientTest, SendsOnlyTheHeadersAskedFor) {
  ClientRequest r;
  r.method = "POST";
  r.url = url("/headers");
  r.body = std::string(2 << 20, 'b');  // over 1 MiB: curl would add Expect: 100-continue
  r.headers = {{"X-One", "1"}, {"X-Empty", ""}};
  ClientResponse got = fetch(r, {});
  EXPECT_EQ(got.head.header("X-Body-Bytes"), std::to_string(2 << 20));
  EXPECT_EQ(got.body, "Host: 127.0.0.1:" + std::to_string(port_a_) +
                          "\nX-One: 1\nX-Empty: \nContent-Length: " + std::to_string(2 << 20) +
                          "\n");
  r.body = "{}";
  r.headers = {{"Host", "example.test"},
               {"Content-Type", "application/json"},
               {"Accept", "text/event-stream"}};
  got = fetch(r, {});
  EXPECT_EQ(got.body,
            "Host: example.test\nContent-Type: application/json\nAccept: text/event-stream\n"
            "Content-Length: 2\n");
}

TEST_F(ClientTest, StallTimeoutNamesTheUrl) {
  ClientOptions o;
  o.stall_timeout = 200ms;
  std::string body;
  ClientCallbacks cb;
  cb.on_body = [&](std::string_view p) { body += p; };
  auto t0 = std::chrono::steady_clock::now();
  try {
    perform(get("/stall?sig=secret"), o, cb);
    FAIL() << "no error";
  } catch (const ClientError& e) {
    EXPECT_EQ(e.kind(), ClientError::Kind::kTimeout);
    EXPECT_EQ(std::string(e.what()),
              "reading the response from 127.0.0.1:" + std::to_string(port_a_) +
                  ": timed out after 0.2 s without a byte (GET " + url("/stall") + ")");
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(body, "first");
  try {
    perform(get("/silent"), o, cb);
    FAIL() << "no error";
  } catch (const ClientError& e) {
    EXPECT_EQ(e.kind(), ClientError::Kind::kTimeout);
    EXPECT_NE(std::string(e.what()).find("waiting for the response from 127.0.0.1:"),
              std::string::npos)
        << e.what();
  }
  // 600 ms in all, but never 300 ms without a byte: no timeout.
  o.stall_timeout = 300ms;
  EXPECT_EQ(fetch(get("/slow"), o).body, "xxxxxx");
}

TEST_F(ClientTest, ConnectErrorCancelAndThrowingCallback) {
  int port = 0;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
    port = acc.local_endpoint().port();
  }  // closed: nothing listens there now
  ClientRequest r;
  r.method = "POST";
  r.url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  try {
    fetch(r, {});
    FAIL() << "no error";
  } catch (const ClientError& e) {
    EXPECT_EQ(e.kind(), ClientError::Kind::kConnect);
    std::string m = e.what();
    EXPECT_EQ(m.rfind("cannot connect to 127.0.0.1:" + std::to_string(port) +
                          ": Connection refused (POST " + r.url,
                      0),
              0u)
        << m;
  }
  EXPECT_THROW(fetch(ClientRequest{"GET", "ftp://127.0.0.1/x", {}, "", {}}, {}), ClientError);
  EXPECT_THROW(fetch(ClientRequest{"GET", "not a url", {}, "", {}}, {}), ClientError);

  std::atomic<bool> cancel{false};
  ClientOptions o;
  o.cancel = &cancel;
  std::thread t([&] {
    std::this_thread::sleep_for(100ms);
    cancel = true;
  });
  try {
    fetch(get("/stall"), o);
    FAIL() << "no error";
  } catch (const ClientError& e) {
    EXPECT_EQ(e.kind(), ClientError::Kind::kCancelled);
  }
  t.join();

  ClientCallbacks cb;
  cb.on_body = [](std::string_view) { throw std::out_of_range("caller says stop"); };
  EXPECT_THROW(perform(get("/file"), {}, cb), std::out_of_range);
}

// ---------------------------------------------------------------- HTTPS

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("openssl version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl CLI";
    char tmpl[] = "/tmp/lms_tls_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    for (const char* name : {"good", "other"}) {
      std::string cmd =
          "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "
          "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
          dir_ + "/" + name + ".key -out " + dir_ + "/" + name + ".pem >/dev/null 2>&1";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
    ctx_.use_certificate_chain_file(dir_ + "/good.pem");
    ctx_.use_private_key_file(dir_ + "/good.key", asio::ssl::context::pem);
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      stop_ = true;
      asio::io_context io;  // wake the accept
      asio::ip::tcp::socket s(io);
      boost::system::error_code ec;
      s.connect({asio::ip::make_address("127.0.0.1"), uint16_t(port_)}, ec);
      thread_.join();
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  // One connection at a time: handshake, read the request head, answer "hello".
  void serve() {
    while (!stop_) {
      asio::ip::tcp::socket sock(io_);
      boost::system::error_code ec;
      acceptor_.accept(sock, ec);
      if (ec || stop_) return;
      asio::ssl::stream<asio::ip::tcp::socket> s(std::move(sock), ctx_);
      s.handshake(asio::ssl::stream_base::server, ec);
      if (ec) continue;  // the client did not trust us
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        size_t n = s.read_some(asio::buffer(buf), ec);
        if (ec) break;
        req.append(buf, n);
      }
      asio::write(s,
                  asio::buffer(std::string(
                      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")),
                  ec);
      s.shutdown(ec);
    }
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/t"; }

  std::string dir_;
  asio::io_context io_;
  asio::ssl::context ctx_{asio::ssl::context::tls_server};
  asio::ip::tcp::acceptor acceptor_{io_, {asio::ip::make_address("127.0.0.1"), 0}};
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(TlsTest, TrustsTheGivenCaBundleOnly) {
  ClientOptions o;
  o.ca_file = dir_ + "/good.pem";
  ClientResponse r = fetch(ClientRequest{"GET", url(), {}, "", {}}, o);
  EXPECT_EQ(r.head.status, 200);
  EXPECT_EQ(r.body, "hello");

  for (std::string ca : {dir_ + "/other.pem", std::string() /* the system bundle */}) {
    o.ca_file = ca;
    try {
      fetch(ClientRequest{"GET", url(), {}, "", {}}, o);
      FAIL() << "trusted with CA '" << ca << "'";
    } catch (const ClientError& e) {
      std::string m = e.what();
      EXPECT_EQ(e.kind(), ClientError::Kind::kTls) << m;
      EXPECT_EQ(m.rfind("TLS with 127.0.0.1:" + std::to_string(port_) + " failed, trusting ", 0),
                0u)
          << m;
      EXPECT_NE(m.find(ca.empty() ? "the system CA bundle" : "the CA bundle '" + ca + "'"),
                std::string::npos)
          << m;
      EXPECT_NE(m.find("certificate"), std::string::npos) << m;  // curl's reason
      EXPECT_NE(m.find("GET " + url()), std::string::npos) << m;
    }
  }
  o.ca_file = dir_ + "/missing.pem";
  try {
    fetch(ClientRequest{"GET", url(), {}, "", {}}, o);
    FAIL() << "no error";
  } catch (const ClientError& e) {
    EXPECT_EQ(e.kind(), ClientError::Kind::kTls) << e.what();
  }
}

}  // namespace
}  // namespace lmstream::http

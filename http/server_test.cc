// The server plumbing alone, over raw loopback sockets and a route table of plain handlers (no
// lmstream routes): the exact bytes of whole and chunked responses, keep-alive, pipelining,
// Connection: close, 100-continue, limits (413, 431, 400) and 404/405, the read (408) and idle
// timeouts, a disconnect reaching the route, the guard, the error shaper and a throwing handler.
#include "http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <stdexcept>
#include <thread>

#include "http/test_support.h"

namespace lmstream::http {
namespace {

using testing::read_to_close;
using testing::read_until;
using testing::send_all;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    routes_.add("GET", "/ok", [](std::shared_ptr<Exchange> ex) {
      ex->respond({200, {{"Content-Type", "text/plain"}}, "ok"});
    });
    routes_.add("GET", "/stream", [](std::shared_ptr<Exchange> ex) {
      ex->start_stream(200, {{"Content-Type", "text/plain"}});
      ex->write("abc");
      ex->write("");  // empty writes send nothing (an empty chunk would end the body)
      ex->write("de");
      ex->finish();
    });
    routes_.add("POST", "/echo", [](std::shared_ptr<Exchange> ex) {
      ex->respond({200, {{"X-Evil", "a\r\nInjected: 1"}}, ex->request().body});
    });
    routes_.add("GET", "/hold", [this](std::shared_ptr<Exchange> ex) {
      ex->on_client_gone([this] { gone_++; });
      held_.push_back(ex);
      holding_++;
    });
    routes_.add("GET", "/throw",
                [](std::shared_ptr<Exchange>) { throw std::runtime_error("boom"); });
    routes_.add("GET", "/secret", [](std::shared_ptr<Exchange> ex) {
      ex->respond({200, {}, "s"});
    });
    routes_.set_guard([](Exchange& ex) {
      if (ex.request().path != "/secret" || ex.request().header("x-key")) return true;
      ex.respond({401, {}, "no key"});
      return false;
    });
    routes_.set_error_shaper([](int status, const std::string& path,
                                const std::string& message) -> std::optional<HttpResponse> {
      if (path.rfind("/api/", 0) != 0) return std::nullopt;
      return HttpResponse{
          status, {{"Content-Type", "application/json"}}, "{\"message\":\"" + message + "\"}"};
    });
    server_ = std::make_unique<HttpServer>(
        ioc_, routes_, HttpLimits{100, 1000, 0.3, 0.3, 5},
        [this](const HttpRequest&, int status, const AccessInfo&, double) {
          last_status_ = status;
          completed_++;
        });
    port_ = server_->listen("127.0.0.1", 0);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    boost::asio::post(ioc_, [this] { held_.clear(); });
    server_->close_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ioc_.stop();
    thread_.join();
    held_.clear();
    server_.reset();
  }
  int connect_() { return testing::connect_loopback(port_); }

  boost::asio::io_context ioc_;
  RouteTable routes_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::vector<std::shared_ptr<Exchange>> held_;  // touched on the io thread only
  std::atomic<int> gone_{0}, completed_{0}, last_status_{0}, holding_{0};
};

const std::string kOk =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
const std::string kStream =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: "
    "chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";

TEST_F(ServerTest, ExactBytesOverOneKeepAliveConnection) {
  int fd = connect_();
  send_all(fd, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_until(fd, "ok"), kOk);
  send_all(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_until(fd, "0\r\n\r\n"), kStream);
  // Header values cannot smuggle CR/LF.
  send_all(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz");
  EXPECT_EQ(read_until(fd, "xyz"),
            "HTTP/1.1 200 OK\r\nX-Evil: a  Injected: 1\r\nContent-Length: 3\r\n\r\nxyz");
  ::close(fd);
  for (int i = 0; i < 100 && completed_ < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(completed_, 3);
  EXPECT_EQ(last_status_, 200);
}

TEST_F(ServerTest, PipelinedRequestsAnswerInOrder) {
  int fd = connect_();
  send_all(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_until(fd, "\r\n\r\nok"), kStream + kOk);
  ::close(fd);
}

TEST_F(ServerTest, ConnectionCloseAndHttp10) {
  int fd = connect_();
  send_all(fd, "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string got;
  EXPECT_TRUE(read_to_close(fd, &got));
  EXPECT_EQ(got,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: "
            "close\r\n\r\nok");
  ::close(fd);
  fd = connect_();
  send_all(fd, "GET /stream HTTP/1.0\r\n\r\n");
  got.clear();
  EXPECT_TRUE(read_to_close(fd, &got));
  EXPECT_EQ(got,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: "
            "chunked\r\nConnection: close\r\n\r\n"
            "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  ::close(fd);
}

TEST_F(ServerTest, HundredContinue) {
  int fd = connect_();
  send_all(fd,
           "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(read_until(fd, "\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  send_all(fd, "xyz");
  EXPECT_NE(read_until(fd, "xyz").find("\r\n\r\nxyz"), std::string::npos);
  ::close(fd);
}

TEST_F(ServerTest, LimitsAndRouting) {
  int fd = connect_();
  send_all(fd,
           "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n" + std::string(101, 'x'));
  std::string got;
  EXPECT_TRUE(read_to_close(fd, &got));  // answered, drained, closed
  EXPECT_EQ(got,
            "HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain; "
            "charset=utf-8\r\nContent-Length: 56\r\n"
            "Connection: close\r\n\r\nFailed to buffer the request body: length limit exceeded");
  ::close(fd);
  fd = connect_();
  send_all(fd, "GET /ok HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n");
  EXPECT_EQ(read_until(fd, "\r\n\r\n").rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0),
            0u);
  ::close(fd);
  fd = connect_();
  send_all(fd, "GET /nope HTTP/1.1\r\n\r\n");
  EXPECT_EQ(read_until(fd, "Not Found"),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
            "9\r\n\r\nNot Found");
  send_all(fd, "POST /ok HTTP/1.1\r\n\r\n");
  EXPECT_EQ(read_until(fd, "Allowed").rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u);
  send_all(fd, "BROKEN\r\n\r\n");
  EXPECT_EQ(read_until(fd, "\r\n\r\n").rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u);
  ::close(fd);
}

TEST_F(ServerTest, ErrorShaperGuardAndThrowingHandler) {
  int fd = connect_();
  send_all(fd, "GET /api/x HTTP/1.1\r\n\r\n");
  EXPECT_EQ(read_until(fd, "}"),
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 23\r\n\r\n"
            "{\"message\":\"Not Found\"}");
  send_all(fd, "GET /secret HTTP/1.1\r\n\r\n");
  EXPECT_EQ(read_until(fd, "no key"),
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\n\r\nno key");
  send_all(fd, "GET /secret HTTP/1.1\r\nX-Key: 1\r\n\r\n");
  EXPECT_EQ(read_until(fd, "\r\n\r\ns"), "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ns");
  send_all(fd, "GET /throw HTTP/1.1\r\n\r\n");
  EXPECT_EQ(read_until(fd, "}"),
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: "
            "application/json\r\nContent-Length: 50\r\n\r\n"
            "{\"error\":\"internal error\",\"error_type\":\"internal\"}");
  ::close(fd);
}

TEST_F(ServerTest, ReadTimeoutAnswers408) {
  int fd = connect_();
  send_all(fd, "GET /ok HTTP/1.1\r\nHost:");  // then nothing: the 0.3 s read deadline
  std::string got;
  EXPECT_TRUE(read_to_close(fd, &got));
  EXPECT_EQ(got,
            "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; "
            "charset=utf-8\r\nContent-Length: 22\r\n"
            "Connection: close\r\n\r\nRequest read timed out");
  ::close(fd);
}

TEST_F(ServerTest, ReadDeadlineStillRunsAfter100Continue) {
  // The write of "100 Continue" has its own (write-stall) deadline; it must not cancel the read
  // deadline of the body that never comes.
  int fd = connect_();
  send_all(fd, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  std::string got;
  EXPECT_TRUE(read_to_close(fd, &got));
  EXPECT_EQ(got.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 408 Request Timeout\r\n", 0), 0u)
      << got;
  ::close(fd);
}

TEST_F(ServerTest, IdleKeepAliveConnectionCloses) {
  int fd = connect_();
  send_all(fd, "GET /ok HTTP/1.1\r\n\r\n");
  EXPECT_EQ(read_until(fd, "ok"), kOk);
  auto t0 = std::chrono::steady_clock::now();
  std::string got;
  EXPECT_TRUE(read_to_close(fd, &got));  // silently, after the 0.3 s idle deadline
  EXPECT_EQ(got, "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  ::close(fd);
}

TEST_F(ServerTest, DisconnectReachesTheRoute) {
  int fd = connect_();
  send_all(fd, "GET /hold HTTP/1.1\r\n\r\n");
  for (int i = 0; i < 400 && holding_ == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(holding_, 1);
  ::close(fd);
  for (int i = 0; i < 400 && gone_ == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(gone_, 1);
}

TEST_F(ServerTest, StopAcceptingClosesIdleConnections) {
  int fd = connect_();
  send_all(fd, "GET /ok HTTP/1.1\r\n\r\n");
  EXPECT_EQ(read_until(fd, "ok"), kOk);
  server_->stop_accepting();
  EXPECT_TRUE(read_to_close(fd));
  ::close(fd);
}

TEST(RouteTable, PrefixRoutes) {
  RouteTable t;
  int hit = 0;
  t.add_prefix("POST", "/endpoints/", [&](auto) { hit = 1; });
  int st = 0;
  EXPECT_NE(t.find("POST", "/endpoints/x/invocations", &st), nullptr);
  EXPECT_EQ(t.find("GET", "/endpoints/x/invocations", &st), nullptr);
  EXPECT_EQ(st, 405);
  EXPECT_EQ(t.find("GET", "/other", &st), nullptr);
  EXPECT_EQ(st, 404);
}

}  // namespace
}  // namespace lmstream::http

// The HTTP core and routes over a fake Backend that honours the RequestStream contract (events
// pushed from its own "engine" thread, cancel() observed between steps): keep-alive, chunked SSE
// events written as they come, client disconnect -> cancel, limits (413, 431), 404/405, 429.
// The plumbing alone (route table, framing, timeouts) is tested in http/server_test.cc.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <thread>

#include "http/test_support.h"
#include "server/app.h"
#include "server/http.h"

namespace lmstream::server {
namespace {

using http::testing::read_until;
using http::testing::send_all;

class FakeBackend final : public Backend {
 public:
  FakeBackend() {
    info_.name = "fake";
    info_.max_position = 1000;
    info_.eos_id = 2;
  }
  ~FakeBackend() override {
    for (auto& t : threads_) t.join();
  }
  const ModelInfo& info() const override { return info_; }
  std::shared_ptr<RequestStream> submit(GenerateRequest req) override {
    auto rs = std::make_shared<RequestStream>(next_++);
    int n = req.stop.max_new_tokens;
    threads_.emplace_back([this, rs, n] {
      running_++;
      int i = 0;
      for (; i < n && !rs->cancelled(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
        TokenEvent t;
        t.id = 100 + i;
        t.text = t.emit = " w" + std::to_string(i);
        t.t = 0.001;
        rs->push(t);
      }
      FinalEvent f;
      f.reason = rs->cancelled() ? FinishReason::kCancelled : FinishReason::kLength;
      if (f.reason == FinishReason::kCancelled) cancelled_++;
      f.generated_tokens = i;
      for (int k = 0; k < i; ++k) f.generated_text += " w" + std::to_string(k);
      running_--;
      rs->push(f);
    });
    return rs;
  }
  SchedulerStats stats() const override {
    SchedulerStats s;
    s.running = running_;
    return s;
  }
  std::vector<int32_t> encode(std::string_view text, bool) const override {
    std::vector<int32_t> v{1};
    for (size_t i = 0; i < text.size(); ++i) v.push_back(3);
    return v;
  }
  std::string token_text(int32_t id) const override { return "t" + std::to_string(id); }
  bool is_special(int32_t id) const override { return id == 2; }
  std::vector<int32_t> chat_prompt(const std::vector<ChatMessage>&) const override {
    return {1, 3};
  }

  int step_ms = 5;
  std::atomic<int> running_{0}, cancelled_{0};

 private:
  ModelInfo info_;
  uint64_t next_ = 1;
  std::vector<std::thread> threads_;
};

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServeConfig c;
    c.max_concurrent_requests = 2;
    c.max_input_length = 100;
    c.max_total_tokens = 1000;
    c.body_limit = 1000;
    c.header_limit = 2000;
    app_ = std::make_unique<App>(c);
    add_all_routes(*app_);
    backend_ = std::make_shared<FakeBackend>();
    app_->set_backend(backend_, c);
    server_ = std::make_unique<HttpServer>(ioc_, app_->routes(), HttpLimits{1000, 2000, 5, 5, 5},
                                           nullptr);
    port_ = server_->listen("127.0.0.1", 0);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    // Let streams still running on the fake engine end before the loop stops.
    for (int i = 0; i < 400 && backend_->running_ > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    server_->close_all();
    ioc_.stop();
    thread_.join();
    server_.reset();
    app_.reset();
    backend_.reset();
  }
  int connect_() { return http::testing::connect_loopback(port_); }
  static std::string post(const std::string& path, const std::string& body) {
    return "POST " + path +
           " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }

  boost::asio::io_context ioc_;
  std::unique_ptr<App> app_;
  std::shared_ptr<FakeBackend> backend_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(HttpTest, KeepAliveAndStreamingChunks) {
  int fd = connect_();
  send_all(fd, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_until(fd, "\r\n\r\n").rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  send_all(fd, post("/generate_stream", R"({"inputs":"ab","parameters":{"max_new_tokens":3}})"));
  std::string s = read_until(fd, "0\r\n\r\n");
  EXPECT_NE(s.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_NE(s.find("Content-Type: text/event-stream\r\n"), std::string::npos);
  // One chunk per event, each exactly data:{json}\n\n.
  std::string ev0 =
      "data:{\"token\":{\"id\":100,\"text\":\" "
      "w0\",\"logprob\":0.0,\"special\":false},\"generated_text\":null,\"details\":null}\n\n";
  char hex[16];
  snprintf(hex, sizeof hex, "%zx\r\n", ev0.size());
  EXPECT_NE(s.find(std::string(hex) + ev0 + "\r\n"), std::string::npos) << s;
  EXPECT_NE(s.find("\"generated_text\":\" w0 w1 w2\""), std::string::npos);
  // The same connection still serves.
  send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_until(fd, "\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  ::close(fd);
}

TEST_F(HttpTest, DisconnectCancelsTheRequest) {
  backend_->step_ms = 20;
  int fd = connect_();
  send_all(fd, post("/generate_stream", R"({"inputs":"ab","parameters":{"max_new_tokens":500}})"));
  read_until(fd, "data:");
  ::close(fd);
  for (int i = 0; i < 200 && backend_->cancelled_ == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(backend_->cancelled_, 1);
  for (int i = 0; i < 200 && app_->in_flight() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(app_->in_flight(), 0);  // the permit came back
}

TEST_F(HttpTest, OverloadedPastLimit) {
  backend_->step_ms = 20;
  int a = connect_(), b = connect_();
  send_all(a, post("/generate_stream", R"({"inputs":"ab","parameters":{"max_new_tokens":20}})"));
  send_all(b, post("/generate_stream", R"({"inputs":"ab","parameters":{"max_new_tokens":20}})"));
  read_until(a, "data:");
  read_until(b, "data:");
  int c = connect_();
  send_all(c, post("/generate", R"({"inputs":"ab"})"));
  std::string r = read_until(c, "}");
  EXPECT_EQ(r.rfind("HTTP/1.1 429", 0), 0u) << r;
  EXPECT_NE(r.find(R"({"error":"Model is overloaded","error_type":"overloaded"})"),
            std::string::npos);
  EXPECT_NE(read_until(a, "0\r\n\r\n").find("generated_text\":\" w0"), std::string::npos);
  ::close(a);
  ::close(b);
  ::close(c);
}

TEST_F(HttpTest, LimitsAndRouting) {
  int fd = connect_();
  send_all(fd, post("/generate", std::string(2000, 'x')));
  EXPECT_EQ(read_until(fd, "\r\n\r\n").rfind("HTTP/1.1 413", 0), 0u);
  ::close(fd);
  fd = connect_();
  send_all(fd, "GET /ping HTTP/1.1\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
  EXPECT_EQ(read_until(fd, "\r\n\r\n").rfind("HTTP/1.1 431", 0), 0u);
  ::close(fd);
  fd = connect_();
  send_all(fd, "GET /nope HTTP/1.1\r\n\r\n");
  EXPECT_EQ(read_until(fd, "\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  send_all(fd, "GET /generate HTTP/1.1\r\n\r\n");
  EXPECT_EQ(read_until(fd, "\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  send_all(fd, "BROKEN\r\n\r\n");
  EXPECT_EQ(read_until(fd, "\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  ::close(fd);
}

}  // namespace
}  // namespace lmstream::server

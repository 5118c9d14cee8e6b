// HTTP/1.1 server core (see server.h). One Connection per socket, on its own strand. A single read
// loop runs for the connection's whole life: while a request is being read it feeds the parser;
// while its response is being written it keeps reading so that a disconnect is seen at once
// (bytes of a pipelined next request are kept for later). Must not include anything of lmstream's
// above base/; no wire format (TGI, SageMaker, ...) is known here.
#include "http/server.h"

#include <array>
#include <set>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdio>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "base/strings.h"

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace lmstream::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

const char* reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 424:
      return "Failed Dependency";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 530:
      return "Internal Dependency Failure";
    default:
      return "Unknown";
  }
}

// Header values must not smuggle CR/LF into the response.
std::string clean(std::string_view v) {
  std::string s(v);
  for (char& c : s)
    if (c == '\r' || c == '\n') c = ' ';
  return s;
}

double mono_seconds(Clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

const std::string* HttpRequest::header(std::string_view name) const {
  for (auto& h : headers)
    if (base::iequals(h.first, name)) return &h.second;
  return nullptr;
}

void RouteTable::add(std::string method, std::string path, Handler h) {
  exact_[{std::move(method), std::move(path)}] = std::move(h);
}

void RouteTable::add_prefix(std::string method, std::string prefix, Handler h) {
  prefix_.push_back({{std::move(method), std::move(prefix)}, std::move(h)});
}

const Handler* RouteTable::find(const std::string& method, const std::string& path,
                                int* status) const {
  auto it = exact_.find({method, path});
  if (it != exact_.end()) return &it->second;
  bool path_known = false;
  for (auto& [k, h] : exact_)
    if (k.second == path) path_known = true;
  for (auto& [k, h] : prefix_) {
    if (path.compare(0, k.second.size(), k.second) != 0) continue;
    if (k.first == method) return &h;
    path_known = true;
  }
  *status = path_known ? 405 : 404;
  return nullptr;
}

std::string RouteTable::allowed(const std::string& path) const {
  std::set<std::string> m;
  for (auto& [k, h] : exact_)
    if (k.second == path) m.insert(k.first);
  for (auto& [k, h] : prefix_)
    if (path.compare(0, k.second.size(), k.second) == 0) m.insert(k.first);
  std::string out;
  for (auto& x : m) out += (out.empty() ? "" : ", ") + x;
  return out;
}

class Connection;

class ExchangeImpl final : public Exchange {
 public:
  ExchangeImpl(std::shared_ptr<Connection> c, HttpRequest r)
      : conn_(std::move(c)), req_(std::move(r)) {}
  ~ExchangeImpl() override;
  const HttpRequest& request() const override { return req_; }
  AccessInfo& access() override { return access_; }
  asio::any_io_executor executor() override;
  void respond(HttpResponse r) override;
  void start_stream(int status, std::vector<Header> headers) override;
  void write(std::string chunk) override;
  void finish() override;
  bool client_gone() const override { return gone_; }
  void on_client_gone(std::function<void()> fn) override {
    if (gone_)
      fn();
    else
      gone_fns_.push_back(std::move(fn));
  }
  Clock::time_point first_chunk_written() const override { return first_chunk_; }

  // Connection side.
  void mark_gone() {
    if (gone_) return;
    gone_ = true;
    auto fns = std::move(gone_fns_);
    for (auto& f : fns) f();
  }
  // How far the route has answered: nothing yet; status line and headers of a chunked stream out;
  // respond() or finish() called (the whole response is queued).
  enum class Stage { kNew, kStreaming, kEnded };

  std::shared_ptr<Connection> conn_;
  HttpRequest req_;
  AccessInfo access_;
  Stage stage_ = Stage::kNew;
  int status_ = 0;     // sent status (0 = nothing sent)
  bool gone_ = false;  // the client went away; gone_fns_ have run
  bool wrote_chunk_ = false;
  Clock::time_point first_chunk_{};
  std::vector<std::function<void()>> gone_fns_;
};

// One steady_timer with a generation count: a wait that was cancelled or re-armed never calls back.
// Runs on the connection's strand (the timer is made on the socket's executor).
class Deadline {
 public:
  explicit Deadline(asio::any_io_executor ex) : timer_(std::move(ex)) {}
  // fn must keep its connection alive (it captures shared_from_this()).
  template <class Fn>
  void arm(double seconds, Fn fn) {
    uint64_t g = ++gen_;
    timer_.expires_after(std::chrono::microseconds(int64_t(seconds * 1e6)));
    timer_.async_wait([this, g, fn = std::move(fn)](beast::error_code ec) {
      if (ec || g != gen_) return;
      fn();
    });
  }
  void cancel() {
    ++gen_;
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  uint64_t gen_ = 0;
};

// One socket. Its life is one Phase at a time; only the functions named below move it:
//
//   kAwaitingRequest --first byte (parse)--> kReadingRequest --complete (dispatch)--> kResponding
//     idle deadline: close                     read deadline: 408 (reject)              |
//     ^                                        malformed, 413, 431: reject() ---------->|
//     |                                                                                  |
//     +------------ keep-alive (response_complete) <-------------------------------------+
//                                                             Connection: close -> kClosed
//                                                             rejected request -> kDraining
//   kResponding  a route owns the exchange; reading goes on only to see a disconnect (the
//                client is then gone) and to keep bytes of a pipelined next request.
//   kDraining    our answer is out and the send side shut; what the client still sends is read
//                and dropped (drain deadline, byte cap) so that it sees the answer, not a reset.
//   kClosed      terminal: every callback that finds it returns.
//
// Two deadlines: inbound_ (idle, read or drain, by phase) and write_stall_ (a write the client
// does not take within write_timeout_s: the client is gone). What follows a response is
// decided once per request (After); stopping_ (the server is shutting down) overrides keep-alive.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket sock, std::shared_ptr<HttpServer::Impl> srv);
  void start();
  void shutdown_soon();  // server stopping: close when idle
  void close_now();
  asio::any_io_executor executor() { return sock_.get_executor(); }

  // Called by ExchangeImpl (on the strand).
  void queue(std::string bytes, bool ends_response, ExchangeImpl* ex, bool is_chunk);
  bool keep_alive() const { return after_ == After::kNextRequest && !stopping_; }
  void exchange_destroyed(const HttpRequest& req, int status, const AccessInfo& a);

 private:
  enum class Phase { kAwaitingRequest, kReadingRequest, kResponding, kDraining, kClosed };
  // What the connection does once the current response is written.
  enum class After { kNextRequest, kClose, kLinger };

  void new_request();
  void do_read();
  void on_read(beast::error_code ec, size_t n);
  void parse();
  void dispatch();
  void reject(int status, std::string body, const std::string& path);
  std::string target_path() const;  // the path of the request being read, as far as it is parsed
  HttpResponse plain(int status, std::string body, const std::string& path) const;
  void flush();
  void on_write(beast::error_code ec);
  void response_complete();
  void gone();
  void on_inbound_deadline();
  void on_write_stall();
  bool reading_request() const {
    return phase_ == Phase::kAwaitingRequest || phase_ == Phase::kReadingRequest;
  }

  tcp::socket sock_;
  std::shared_ptr<HttpServer::Impl> srv_;
  Phase phase_ = Phase::kAwaitingRequest;
  After after_ = After::kNextRequest;
  bool stopping_ = false;

  // Inbound side.
  Deadline inbound_;
  bool reading_ = false;  // an async_read_some is outstanding
  beast::flat_buffer buf_;
  std::array<char, 16 * 1024> rbuf_;  // what one read delivers, appended to buf_
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool continue_sent_ = false;  // this request's "100 Continue" is queued
  size_t drained_ = 0;          // bytes dropped in kDraining

  // Outbound side: bytes queued while a write is in flight go out with the next one.
  Deadline write_stall_;
  bool writing_ = false;  // an async_write is outstanding (of inflight_)
  std::string pending_, inflight_;
  bool first_chunk_pending_ = false;  // pending_ holds the exchange's first body chunk
  bool response_end_queued_ = false;  // the whole current response is in pending_/inflight_

  std::shared_ptr<ExchangeImpl> cur_;
  std::string remote_;
};

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, const RouteTable& r, HttpLimits l, CompleteFn d)
      : ioc(io), routes(r), limits(l), done(std::move(d)), acceptor(asio::make_strand(io)) {}
  asio::io_context& ioc;
  const RouteTable& routes;
  HttpLimits limits;
  CompleteFn done;
  tcp::acceptor acceptor;
  std::atomic<bool> accepting{false};
  std::atomic<uint64_t> next_id{1};
  mutable std::mutex mu;
  std::vector<std::weak_ptr<Connection>> conns;

  void do_accept() {
    acceptor.async_accept(asio::make_strand(ioc),
                          [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
                            if (!self->accepting) return;
                            if (!ec) {
                              auto c = std::make_shared<Connection>(std::move(s), self);
                              {
                                std::lock_guard<std::mutex> lk(self->mu);
                                std::erase_if(self->conns, [](auto& w) { return w.expired(); });
                                self->conns.push_back(c);
                              }
                              asio::dispatch(c->executor(), [c] { c->start(); });
                            }
                            // Errors such as EMFILE must not stop the server from accepting.
                            self->do_accept();
                          });
  }
  std::vector<std::shared_ptr<Connection>> live() const {
    std::lock_guard<std::mutex> lk(mu);
    std::vector<std::shared_ptr<Connection>> v;
    for (auto& w : conns)
      if (auto c = w.lock()) v.push_back(c);
    return v;
  }
};

// ---------------------------------------------------------------- ExchangeImpl

ExchangeImpl::~ExchangeImpl() { conn_->exchange_destroyed(req_, status_, access_); }

asio::any_io_executor ExchangeImpl::executor() { return conn_->executor(); }

void ExchangeImpl::respond(HttpResponse r) {
  if (stage_ != Stage::kNew) return;
  stage_ = Stage::kEnded;
  status_ = r.status;
  // A refusal whose route did not name its reason (the auth guard, 404/405, a health probe's 503,
  // the reader's 400/413, ...) logs the start of the body it was answered with.
  if (r.status >= 400 && access_.error.empty())
    access_.error = r.body.empty() ? std::string(reason(r.status)) : r.body.substr(0, 512);
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) + "\r\n";
  for (auto& [k, v] : r.headers) out += clean(k) + ": " + clean(v) + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (!conn_->keep_alive()) out += "Connection: close\r\n";
  out += "\r\n";
  out += r.body;
  if (!gone_) conn_->queue(std::move(out), true, this, false);
}

void ExchangeImpl::start_stream(int status, std::vector<Header> headers) {
  if (stage_ != Stage::kNew) return;
  stage_ = Stage::kStreaming;
  status_ = status;
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
  for (auto& [k, v] : headers) out += clean(k) + ": " + clean(v) + "\r\n";
  out += "Transfer-Encoding: chunked\r\n";
  if (!conn_->keep_alive()) out += "Connection: close\r\n";
  out += "\r\n";
  if (!gone_) conn_->queue(std::move(out), false, this, false);
}

void ExchangeImpl::write(std::string chunk) {
  if (stage_ != Stage::kStreaming || gone_ || chunk.empty()) return;
  char hex[32];
  std::snprintf(hex, sizeof hex, "%zx\r\n", chunk.size());
  std::string out = hex;
  out += chunk;
  out += "\r\n";
  conn_->queue(std::move(out), false, this, true);
}

void ExchangeImpl::finish() {
  if (stage_ != Stage::kStreaming) return;
  stage_ = Stage::kEnded;
  if (!gone_) conn_->queue("0\r\n\r\n", true, this, false);
}

// ---------------------------------------------------------------- Connection

Connection::Connection(tcp::socket sock, std::shared_ptr<HttpServer::Impl> srv)
    : sock_(std::move(sock)),
      srv_(std::move(srv)),
      inbound_(sock_.get_executor()),
      write_stall_(sock_.get_executor()) {
  beast::error_code ec;
  auto ep = sock_.remote_endpoint(ec);
  if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  sock_.set_option(tcp::no_delay(true), ec);  // each event leaves at once
}

void Connection::start() {
  new_request();
  do_read();
}

// -> kAwaitingRequest (from the start, or after a keep-alive response).
void Connection::new_request() {
  phase_ = Phase::kAwaitingRequest;
  continue_sent_ = false;
  response_end_queued_ = false;
  parser_.emplace();
  parser_->eager(true);
  parser_->header_limit(uint32_t(std::min<size_t>(srv_->limits.header_limit, UINT32_MAX)));
  parser_->body_limit(srv_->limits.body_limit);
  inbound_.arm(srv_->limits.idle_timeout_s,
               [self = shared_from_this()] { self->on_inbound_deadline(); });
  if (buf_.size() > 0) parse();  // a pipelined request already arrived
}

void Connection::do_read() {
  if (reading_ || phase_ == Phase::kClosed) return;
  // While responding, keep reading only to notice a disconnect; bound what a pipelining client
  // can make us buffer.
  if (phase_ == Phase::kResponding &&
      buf_.size() > srv_->limits.header_limit + srv_->limits.body_limit)
    return;
  reading_ = true;
  // Read into a scratch array owned by the connection, never into buf_ itself: parse() consumes
  // buf_ while this read is pending, which moves its storage under a prepared buffer.
  sock_.async_read_some(
      asio::buffer(rbuf_),
      [self = shared_from_this()](beast::error_code ec, size_t n) { self->on_read(ec, n); });
}

void Connection::on_read(beast::error_code ec, size_t n) {
  reading_ = false;
  if (phase_ == Phase::kClosed) return;
  if (phase_ == Phase::kDraining) {
    drained_ += n;
    if (ec || drained_ > 2 * (srv_->limits.body_limit + srv_->limits.header_limit))
      close_now();
    else
      do_read();
    return;
  }
  if (ec) {
    if (phase_ == Phase::kResponding)
      gone();
    else
      close_now();
    return;
  }
  auto dst = buf_.prepare(n);
  buf_.commit(asio::buffer_copy(dst, asio::buffer(rbuf_.data(), n)));
  if (reading_request()) parse();
  do_read();
}

// kAwaitingRequest -> kReadingRequest on the first byte; -> kResponding through dispatch() or
// reject().
void Connection::parse() {
  if (!reading_request()) return;
  if (buf_.size() > 0 && phase_ == Phase::kAwaitingRequest) {
    phase_ = Phase::kReadingRequest;
    inbound_.arm(srv_->limits.read_timeout_s,
                 [self = shared_from_this()] { self->on_inbound_deadline(); });
  }
  beast::error_code ec;
  while (buf_.size() > 0 && !parser_->is_done()) {
    size_t used = parser_->put(buf_.data(), ec);
    buf_.consume(used);
    if (ec == bhttp::error::need_more) {
      ec = {};
      break;
    }
    if (ec || used == 0) break;
  }
  if (ec) {
    std::string path = target_path();
    if (ec == bhttp::error::body_limit)
      reject(413, "Failed to buffer the request body: length limit exceeded", path);
    else if (ec == bhttp::error::header_limit)
      reject(431, "Request header fields too large", path);
    else
      reject(400, "Malformed HTTP request: " + ec.message(), path);
    return;
  }
  if (parser_->is_header_done() && !parser_->is_done() && !continue_sent_) {
    auto& h = parser_->get();
    auto it = h.find(bhttp::field::expect);
    if (it != h.end() &&
        base::iequals(std::string_view(it->value().data(), it->value().size()), "100-continue")) {
      continue_sent_ = true;
      pending_ += "HTTP/1.1 100 Continue\r\n\r\n";
      if (!writing_) flush();
    }
  }
  if (parser_->is_done()) dispatch();
}

std::string Connection::target_path() const {
  if (!parser_) return "";
  auto t = parser_->get().target();
  return std::string(t.substr(0, t.find('?')));
}

HttpResponse Connection::plain(int status, std::string body, const std::string& path) const {
  if (auto& shaper = srv_->routes.error_shaper())
    if (auto r = shaper(status, path, body)) return std::move(*r);
  return {status, {{"Content-Type", "text/plain; charset=utf-8"}}, std::move(body)};
}

// -> kResponding with the server's own answer; the connection closes after it (lingering).
void Connection::reject(int status, std::string body, const std::string& path) {
  after_ = After::kLinger;
  phase_ = Phase::kResponding;
  inbound_.cancel();
  HttpRequest req;
  req.id = srv_->next_id++;
  req.remote = remote_;
  req.path = path;
  req.received = Clock::now();
  cur_ = std::make_shared<ExchangeImpl>(shared_from_this(), std::move(req));
  cur_->access_.route = "(malformed)";
  cur_->respond(plain(status, std::move(body), path));
}

// kReadingRequest -> kResponding: the request is complete; its route owns the exchange.
void Connection::dispatch() {
  phase_ = Phase::kResponding;
  inbound_.cancel();
  auto msg = parser_->release();
  parser_.reset();
  after_ = msg.keep_alive() ? After::kNextRequest : After::kClose;
  HttpRequest req;
  req.id = srv_->next_id++;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  size_t q = req.target.find('?');
  req.path = req.target.substr(0, q);
  if (q != std::string::npos) req.query = req.target.substr(q + 1);
  for (auto& f : msg)
    req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  req.body = std::move(msg.body());
  req.remote = remote_;
  req.received = Clock::now();
  cur_ = std::make_shared<ExchangeImpl>(shared_from_this(), std::move(req));
  auto ex = cur_;
  int status = 404;
  const Handler* h = srv_->routes.find(ex->req_.method, ex->req_.path, &status);
  if (!h) {
    ex->access_.route = "(none)";
    HttpResponse r =
        plain(status, status == 404 ? "Not Found" : "Method Not Allowed", ex->req_.path);
    if (status == 405) r.headers.emplace_back("Allow", srv_->routes.allowed(ex->req_.path));
    ex->respond(std::move(r));
    return;
  }
  try {
    if (auto& guard = srv_->routes.guard())
      if (!guard(*ex)) return;
    (*h)(ex);
  } catch (const std::exception& e) {
    if (ex->stage_ == ExchangeImpl::Stage::kNew)
      ex->respond({500,
                   {{"Content-Type", "application/json"}},
                   std::string("{\"error\":\"internal error\",\"error_type\":\"internal\"}")});
    else if (ex->stage_ == ExchangeImpl::Stage::kStreaming)
      ex->finish();
  }
}

void Connection::queue(std::string bytes, bool ends_response, ExchangeImpl* ex, bool is_chunk) {
  if (phase_ == Phase::kClosed || ex != cur_.get()) return;
  pending_ += bytes;
  if (is_chunk && !ex->wrote_chunk_) {
    ex->wrote_chunk_ = true;
    first_chunk_pending_ = true;
  }
  if (ends_response) response_end_queued_ = true;
  if (!writing_) flush();
}

void Connection::flush() {
  if (pending_.empty() || phase_ == Phase::kClosed) return;
  inflight_.swap(pending_);
  pending_.clear();
  writing_ = true;
  // Asio writes speculatively at initiation: the bytes are in the kernel when async_write returns
  // (unless the socket buffer is full), so this is when the first chunk left.
  if (first_chunk_pending_ && cur_ && cur_->first_chunk_ == Clock::time_point{}) {
    cur_->first_chunk_ = Clock::now();
    cur_->access_.first_write_mono = mono_seconds(cur_->first_chunk_);
  }
  first_chunk_pending_ = false;
  write_stall_.arm(srv_->limits.write_timeout_s,
                   [self = shared_from_this()] { self->on_write_stall(); });
  asio::async_write(
      sock_, asio::buffer(inflight_),
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
}

void Connection::on_write(beast::error_code ec) {
  writing_ = false;
  if (phase_ == Phase::kClosed) return;
  if (ec) {
    gone();
    return;
  }
  inflight_.clear();
  if (!pending_.empty()) {
    flush();
    return;
  }
  write_stall_.cancel();
  if (phase_ == Phase::kResponding && response_end_queued_) response_complete();
}

// kResponding -> kAwaitingRequest (keep-alive), kClosed, or kDraining (after a rejected request).
void Connection::response_complete() {
  cur_.reset();  // the exchange logs itself when its last owner lets go
  if (keep_alive()) {
    new_request();
    do_read();
    return;
  }
  beast::error_code ec;
  sock_.shutdown(tcp::socket::shutdown_send, ec);
  if (after_ != After::kLinger) {
    close_now();
    return;
  }
  phase_ = Phase::kDraining;
  buf_.consume(buf_.size());
  inbound_.arm(srv_->limits.read_timeout_s,
               [self = shared_from_this()] { self->on_inbound_deadline(); });
  do_read();
}

// The client went away while it had an exchange: close, then tell the route.
void Connection::gone() {
  auto ex = cur_;
  close_now();
  if (ex) ex->mark_gone();
}

// Any phase -> kClosed.
void Connection::close_now() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  inbound_.cancel();
  write_stall_.cancel();
  beast::error_code ec;
  sock_.close(ec);
  auto ex = std::move(cur_);
  if (ex && ex->stage_ != ExchangeImpl::Stage::kEnded) ex->mark_gone();
}

void Connection::shutdown_soon() {
  stopping_ = true;
  if (phase_ == Phase::kAwaitingRequest && !writing_) close_now();
}

void Connection::on_inbound_deadline() {
  switch (phase_) {
    case Phase::kAwaitingRequest:  // idle keep-alive connection
    case Phase::kDraining:         // the rejected client never finished sending
      close_now();
      return;
    case Phase::kReadingRequest:
      reject(408, "Request read timed out", target_path());
      return;
    case Phase::kResponding:
    case Phase::kClosed:
      return;  // not armed in these phases
  }
}

// The client stopped taking our bytes.
void Connection::on_write_stall() {
  if (phase_ == Phase::kClosed) return;
  if (phase_ == Phase::kResponding)
    gone();
  else
    close_now();
}

void Connection::exchange_destroyed(const HttpRequest& req, int status, const AccessInfo& a) {
  if (!srv_->done) return;
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - req.received).count();
  srv_->done(req, status, a, ms);
}

// ---------------------------------------------------------------- HttpServer

HttpServer::HttpServer(asio::io_context& ioc, const RouteTable& routes, HttpLimits limits,
                       CompleteFn done)
    : impl_(std::make_shared<Impl>(ioc, routes, limits, std::move(done))) {}

HttpServer::~HttpServer() {
  impl_->done =
      nullptr;  // exchanges destroyed later (with the io_context) must not log into a dead app
  impl_->accepting = false;
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

int HttpServer::listen(const std::string& host, int port) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) {  // a host name (localhost, the machine's name): its first address, IPv4 preferred
    tcp::resolver resolver(impl_->acceptor.get_executor());
    auto found = resolver.resolve(host, "", ec);
    if (ec || found.empty())
      throw std::runtime_error("cannot listen on '" + host +
                               "': not an IP address, nor a name that resolves (" + ec.message() +
                               ")");
    addr = found.begin()->endpoint().address();
    for (const auto& r : found)
      if (r.endpoint().address().is_v4()) {
        addr = r.endpoint().address();
        break;
      }
  }
  tcp::endpoint ep(addr, uint16_t(port));
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                             ec.message());
  impl_->accepting = true;
  impl_->do_accept();
  return a.local_endpoint().port();
}

void HttpServer::stop_accepting() {
  auto impl = impl_;
  asio::post(impl->acceptor.get_executor(), [impl] {
    impl->accepting = false;
    beast::error_code ec;
    impl->acceptor.close(ec);
  });
  for (auto& c : impl->live()) asio::post(c->executor(), [c] { c->shutdown_soon(); });
}

void HttpServer::close_all() {
  for (auto& c : impl_->live()) asio::post(c->executor(), [c] { c->close_now(); });
}

size_t HttpServer::close_and_drain() {
  // A close may wait on a completion another thread posts later (an engine cancelling a request),
  // so poll until every connection is gone, for up to 2 s.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  do {
    close_all();
    impl_->ioc.restart();
    impl_->ioc.poll();
    if (open_connections() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  } while (std::chrono::steady_clock::now() < deadline);
  return open_connections();
}

size_t HttpServer::open_connections() const { return impl_->live().size(); }

namespace {
#if defined(__linux__) && defined(SYS_sched_setattr)
// The kernel's struct sched_attr (uapi linux/sched/types.h, which clashes with glibc's sched.h).
struct SchedAttr {
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
  uint32_t sched_util_min, sched_util_max;
};
// Sets the calling thread's fair-class slice to `ns` (0 = the kernel's default), keeping its
// policy and nice. Returns "" or why it could not.
std::string set_slice_ns(uint64_t ns) {
  SchedAttr a{};
  if (syscall(SYS_sched_getattr, 0, &a, unsigned(sizeof a), 0u) != 0)
    return std::string("sched_getattr: ") + std::strerror(errno);
  if (a.sched_policy != 0 /*SCHED_OTHER*/ && a.sched_policy != 3 /*SCHED_BATCH*/)
    return "the thread is not in the fair scheduling class";
  a.size = sizeof a;
  a.sched_flags = 0;
  a.sched_runtime = ns;
  if (syscall(SYS_sched_setattr, 0, &a, 0u) != 0)
    return std::string("sched_setattr: ") + std::strerror(errno);
  return "";
}
#else
std::string set_slice_ns(uint64_t) { return "not supported on this platform"; }
#endif
}  // namespace

std::string check_io_slice_us(int us) {
  if (us == 0 || (us >= kMinIoSliceUs && us <= kMaxIoSliceUs)) return "";
  return std::to_string(us) + " us is out of range: use 0 (the kernel's default) or " +
         std::to_string(kMinIoSliceUs) + ".." + std::to_string(kMaxIoSliceUs) +
         " (the range the kernel accepts)";
}

std::string run_io_threads(asio::io_context& ioc, int threads, int slice_us) {
  if (std::string why = check_io_slice_us(slice_us); !why.empty()) throw std::invalid_argument(why);
  // Every io thread asks for the slice before it runs; the caller's thread goes back to the
  // kernel's default on return. The first failure is reported (the caller logs it); the loop
  // runs anyway.
  std::mutex mu;
  std::string failed;
  auto ask = [&] {
    if (slice_us == 0) return;
    if (std::string why = set_slice_ns(uint64_t(slice_us) * 1000); !why.empty()) {
      std::lock_guard<std::mutex> l(mu);
      if (failed.empty()) failed = why;
    }
  };
  std::vector<std::thread> io;
  for (int i = 1; i < std::max(1, threads); ++i)
    io.emplace_back([&] {
      ask();
      ioc.run();
    });
  ask();
  ioc.run();
  if (slice_us != 0) set_slice_ns(0);
  for (auto& t : io) t.join();
  return failed;
}

}  // namespace lmstream::http

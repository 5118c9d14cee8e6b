// The HTTP/1.1 server core on Boost.Beast/Asio: accepts connections, parses requests with limits
// (header size, body size -> 413, read time, idle keep-alive time), dispatches them through a
// route table, and writes complete or chunked-streaming responses. Every connection lives on its
// own strand; nothing here ever blocks, so slow or stalled clients never hold an engine thread.
// Part of http/, which sits right above base/: it must not include anything of lmstream's but
// base/, and knows nothing of TGI, LMI, SageMaker or the engine (routes and encoders sit on top,
// in server/; the serving settings reach it only as HttpLimits).
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lmstream::http {

using Header = std::pair<std::string, std::string>;
using Clock = std::chrono::steady_clock;

struct HttpRequest {
  uint64_t id = 0;  // unique per server
  std::string method;
  std::string target;  // as sent, with the query
  std::string path;    // without the query
  std::string query;
  std::vector<Header> headers;
  std::string body;
  std::string remote;
  Clock::time_point received;
  // Case-insensitive header lookup; nullptr when absent.
  const std::string* header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::vector<Header> headers;  // Content-Length and Connection are added by the server
  std::string body;
};

// Per-request facts for the access log line; routes fill in what they know.
struct AccessInfo {
  std::string route;
  int input_tokens = -1;
  int generated_tokens = -1;
  double queue_ms = -1;
  double ttft_ms = -1;           // engine's first token, since the request was submitted
  double first_token_mono = -1;  // steady clock (CLOCK_MONOTONIC) seconds of the engine token
  double first_write_mono = -1;  // steady clock seconds when its bytes were written
  std::string finish;
  // Why the request was refused or failed ("" = it was not), for the log. A route names it
  // (server/reply.h's note_error); otherwise respond() with a status >= 400 puts the start of the
  // response body here.
  std::string error;
};

// One request/response exchange. Every method must be called on executor() (the connection's
// strand); route handlers are invoked there. Exactly one of respond() or start_stream() is used.
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual const HttpRequest& request() const = 0;
  virtual AccessInfo& access() = 0;
  virtual boost::asio::any_io_executor executor() = 0;

  virtual void respond(HttpResponse r) = 0;
  // Status line and headers, then chunked transfer; each write() is one chunk, sent at once.
  virtual void start_stream(int status, std::vector<Header> headers) = 0;
  virtual void write(std::string chunk) = 0;
  virtual void finish() = 0;  // terminating chunk; the exchange is complete once it is written
  // Client gone (disconnect, reset, write failure or write stall). fn runs once, on executor().
  virtual bool client_gone() const = 0;
  virtual void on_client_gone(std::function<void()> fn) = 0;
  // When the first chunk's bytes were handed to the kernel (Clock::time_point{} until then).
  virtual Clock::time_point first_chunk_written() const = 0;
};

using Handler = std::function<void(std::shared_ptr<Exchange>)>;

// (method, path) -> handler. Unknown path: 404; known path, other method: 405.
class RouteTable {
 public:
  void add(std::string method, std::string path, Handler h);
  // nullptr with status set to 404/405 when nothing matches.
  const Handler* find(const std::string& method, const std::string& path, int* status) const;
  // The methods that have a route for `path`, comma-separated and sorted (a 405's Allow header).
  std::string allowed(const std::string& path) const;
  // Prefix routes ("/endpoints/" + anything): tried after exact paths.
  void add_prefix(std::string method, std::string prefix, Handler h);

  // Runs before every matched handler (authentication); returns false once it has answered.
  using Guard = std::function<bool(Exchange&)>;
  void set_guard(Guard g) { guard_ = std::move(g); }
  const Guard& guard() const { return guard_; }
  // Replaces the server's own plain-text answers (404, 405, 413, ...) for a path, e.g. with the
  // error shape an AWS client parses; nullopt keeps the plain text.
  using ErrorShaper = std::function<std::optional<HttpResponse>(int status, const std::string& path,
                                                                const std::string& message)>;
  void set_error_shaper(ErrorShaper s) { shaper_ = std::move(s); }
  const ErrorShaper& error_shaper() const { return shaper_; }

 private:
  Guard guard_;
  ErrorShaper shaper_;
  std::map<std::pair<std::string, std::string>, Handler> exact_;
  std::vector<std::pair<std::pair<std::string, std::string>, Handler>> prefix_;
};

struct HttpLimits {
  size_t body_limit = 6 * 1024 * 1024;
  size_t header_limit = 16 * 1024;
  double idle_timeout_s = 60;
  double read_timeout_s = 30;
  double write_timeout_s = 60;
};

class HttpServer {
 public:
  // on_complete(request, status, access, total_ms): called once per finished exchange (access log).
  using CompleteFn =
      std::function<void(const HttpRequest&, int status, const AccessInfo&, double ms)>;
  HttpServer(boost::asio::io_context& ioc, const RouteTable& routes, HttpLimits limits,
             CompleteFn done);
  ~HttpServer();
  // Binds and starts accepting. Throws std::runtime_error on a bind failure. Returns the port.
  int listen(const std::string& host, int port);
  // Stops accepting; idle keep-alive connections close, busy ones close after their response.
  void stop_accepting();
  // Closes every connection now.
  void close_all();
  // For after the io_context has stopped and every thread running it has returned: closes every
  // connection again and runs, on the calling thread, the closes, aborted reads/writes and timers
  // that were posted but never ran. Until they run, a connection and its exchange hold each other
  // (and whatever the exchange holds). Returns the connections still referenced afterwards.
  size_t close_and_drain();
  size_t open_connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Runs `ioc` on `threads` threads, the caller's among them, until it stops; returns after every
// one of them has. With `slice_us` > 0 each thread first asks the kernel for that fair-class time
// slice (sched_attr.sched_runtime; EEVDF, Linux >= 6.12). A thread whose slice is shorter than the
// running task's may preempt it the moment it wakes, so a socket that becomes readable while the
// engine's threads hold every core is served at once rather than after their slice (~3 ms).
// Older kernels accept and ignore it. Throws std::invalid_argument for a value check_io_slice_us
// refuses; returns "" or why the kernel refused the slice (the loop then ran without it).
std::string run_io_threads(boost::asio::io_context& ioc, int threads, int slice_us = 0);
inline constexpr int kMinIoSliceUs = 100, kMaxIoSliceUs = 100000;
// "" when `us` is 0 or within [kMinIoSliceUs, kMaxIoSliceUs]; otherwise the message to show.
std::string check_io_slice_us(int us);

}  // namespace lmstream::http

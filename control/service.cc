// The control plane's HTTP front (see service.h).
#include "control/service.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <csignal>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "aws/credentials.h"
#include "aws/eventstream.h"
#include "aws/sigv4.h"
#include "http/client.h"
#include "http/server.h"
#include "server/sagemaker.h"

namespace lmstream::control {
namespace asio = boost::asio;
using json = nlohmann::json;
using http::Exchange;
using http::HttpRequest;
using http::HttpResponse;
using namespace std::chrono_literals;

namespace {

constexpr const char* kJson11 = "application/x-amz-json-1.1";

HttpResponse json_error(const std::string& code, const std::string& message,
                        const std::string& rid) {
  json j = {{"__type", code}, {"message", message}};
  return {400,
          {{"Content-Type", kJson11}, {"x-amzn-ErrorType", code}, {"x-amzn-RequestId", rid}},
          j.dump(-1, ' ', false, json::error_handler_t::replace)};
}

std::string header_or(const HttpRequest& r, const char* name) {
  const std::string* h = r.header(name);
  return h ? *h : "";
}

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower((unsigned char)a[i]) != std::tolower((unsigned char)b[i])) return false;
  return true;
}

// Keeps event-stream messages whole: what arrives is returned as the complete messages it
// finishes, the tail of an unfinished one held back (never more than one message).
class MessageSplitter {
 public:
  std::string feed(std::string_view data) {
    if (raw_) return std::string(data);
    buf_.append(data);
    size_t pos = 0;
    while (buf_.size() - pos >= 4) {
      auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos);
      size_t total = (size_t(p[0]) << 24) | (size_t(p[1]) << 16) | (size_t(p[2]) << 8) | p[3];
      if (total < eventstream::kMinMessageLength ||
          total > eventstream::kMaxPayloadLength + eventstream::kMaxHeadersLength + 16) {
        raw_ = true;  // not an event stream after all: pass everything through
        std::string out = buf_;
        buf_.clear();
        return out;
      }
      if (buf_.size() - pos < total) break;
      pos += total;
    }
    std::string out = buf_.substr(0, pos);
    buf_.erase(0, pos);
    return out;
  }
  bool partial() const { return !buf_.empty(); }

 private:
  std::string buf_;
  bool raw_ = false;
};

// Idle keep-alive connections to workers, most recently used last. A connection goes back only
// after a response read to its end with keep-alive on both sides; one taken from here may still
// have been closed by the worker meanwhile (its idle timeout, a restart), which proxy_co detects
// before sending and, failing that, answers with a retry on a fresh connection.
class UpstreamPool {
 public:
  using Socket = asio::ip::tcp::socket;
  struct Idle {
    std::weak_ptr<Worker> worker;
    int port = 0;
    std::unique_ptr<Socket> sock;
    std::chrono::steady_clock::time_point since;
  };

  // An idle connection to W on PORT (its current one) that the worker has not closed, or null.
  std::unique_ptr<Socket> take(const std::shared_ptr<Worker>& w, int port) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<Idle> drop;  // closed outside the lock
    std::unique_ptr<Socket> out;
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = idle_.find(w.get());
      if (it == idle_.end()) return nullptr;
      auto& v = it->second;
      while (!v.empty() && !out) {
        Idle c = std::move(v.back());
        v.pop_back();
        if (c.worker.lock() == w && c.port == port && now - c.since < kMaxIdle &&
            still_open(*c.sock))
          out = std::move(c.sock);
        else
          drop.push_back(std::move(c));
      }
      if (v.empty()) idle_.erase(it);
    }
    return out;
  }

  void put(const std::shared_ptr<Worker>& w, int port, std::unique_ptr<Socket> sock) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<Idle> drop;  // closed outside the lock
    std::lock_guard<std::mutex> lk(mu_);
    if (now - last_sweep_ > std::chrono::seconds(1)) {
      // Connections of workers that are gone (an endpoint deleted, an instance replaced) or
      // idle too long: not kept open until some later request happens to look at them.
      last_sweep_ = now;
      for (auto it = idle_.begin(); it != idle_.end();) {
        auto& v = it->second;
        for (auto& c : v)
          if (c.worker.expired() || now - c.since >= kMaxIdle) drop.push_back(std::move(c));
        std::erase_if(v, [](const Idle& c) { return !c.sock; });
        it = v.empty() ? idle_.erase(it) : std::next(it);
      }
    }
    auto& v = idle_[w.get()];
    // A worker at this address that is not W (freed, and the address reused) left these.
    for (auto& c : v)
      if (c.worker.lock() != w) drop.push_back(std::move(c));
    std::erase_if(v, [](const Idle& c) { return !c.sock; });
    if (v.size() >= kMaxPerWorker) {  // the oldest goes
      drop.push_back(std::move(v.front()));
      v.erase(v.begin());
    }
    v.push_back({w, port, std::move(sock), now});
  }

 private:
  static constexpr size_t kMaxPerWorker = 32;
  // Below the workers' own idle timeout (60 s), so the worker is not the one closing, mostly.
  static constexpr auto kMaxIdle = std::chrono::seconds(30);

  // No data and no end of stream waiting: a worker never sends anything between responses, so
  // anything readable means it closed (or broke) the connection.
  static bool still_open(Socket& s) {
    char c;
    ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  std::mutex mu_;
  std::unordered_map<const Worker*, std::vector<Idle>> idle_;
  std::chrono::steady_clock::time_point last_sweep_{};
};

struct Proxy {
  explicit Proxy(ControlPlane& p) : plane(p) {}
  ControlPlane& plane;
  std::atomic<int> in_flight{0};
  UpstreamPool upstream;
};

// A thread of its own for work that blocks (the outbound client, waits); counted in in_flight so
// that shutdown waits for it before the objects it uses go away.
void spawn(Proxy& px, std::function<void()> fn) {
  px.in_flight++;
  std::thread([&px, fn = std::move(fn)] {
    try {
      fn();
    } catch (const std::exception& e) {
      spdlog::error("background task failed: {}", e.what());
    }
    px.in_flight--;
  }).detach();
}

void post_to(const std::shared_ptr<Exchange>& ex, std::function<void(Exchange&)> fn) {
  asio::post(ex->executor(), [ex, fn = std::move(fn)] { fn(*ex); });
}

bool hop_by_hop(std::string_view k) {
  return ieq(k, "content-length") || ieq(k, "transfer-encoding") || ieq(k, "connection") ||
         ieq(k, "keep-alive");
}

// Forwards one runtime request to a worker with Beast on the exchange's own strand: the
// connection to the worker, the request and every piece of the response run as one coroutine
// there, so each piece the worker sends is written to the client in the same handler that read
// it (no thread hop, no buffering beyond an unfinished event-stream message).
asio::awaitable<void> proxy_co(Proxy& px, std::shared_ptr<Exchange> ex, std::string name,
                               std::string op, std::string upstream_target, Route route) {
  namespace beast = boost::beast;
  namespace bhttp = boost::beast::http;
  using tcp = asio::ip::tcp;
  struct Guard {
    Proxy& px;
    Route& route;
    ~Guard() {
      route.worker->outstanding--;
      px.in_flight--;
    }
  } guard{px, route};
  const HttpRequest& req = ex->request();
  const bool streaming_op = op == "invocations-response-stream";
  auto exec = co_await asio::this_coro::executor;
  // The connection in use, reachable from the client-gone callback (which runs on this strand
  // too); emptied before the connection goes back to the pool, so a late callback cannot close
  // a connection another request is using.
  struct Current {
    std::unique_ptr<tcp::socket> sock;
  };
  auto cur = std::make_shared<Current>();
  ex->on_client_gone([cur] {
    boost::system::error_code ignore;
    if (cur->sock) cur->sock->close(ignore);
  });
  bool pooled = false;  // this attempt's connection came from the pool
  for (int attempt = 0;; ++attempt) {
    boost::system::error_code ec;
    bool started = false;
    int status = 0;
    const int port = route.worker->port();
    if (cur->sock) cur->sock->close(ec);
    ec = {};
    cur->sock = px.upstream.take(route.worker, port);
    pooled = cur->sock != nullptr;
    if (!pooled) {
      cur->sock = std::make_unique<tcp::socket>(exec);
      tcp::endpoint ep(asio::ip::address_v4::loopback(), uint16_t(port));
      co_await cur->sock->async_connect(ep, asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) cur->sock->set_option(tcp::no_delay(true), ec);
    }
    tcp::socket& sock = *cur->sock;
    if (!ec) {
      bhttp::request<bhttp::string_body> up{
          req.method == "GET" ? bhttp::verb::get : bhttp::verb::post, upstream_target, 11};
      for (auto& [k, v] : req.headers) {
        if (ieq(k, "host") || ieq(k, "authorization") || hop_by_hop(k) || ieq(k, "expect") ||
            ieq(k, "x-amz-date") || ieq(k, "x-amz-security-token") ||
            ieq(k, "x-amz-content-sha256"))
          continue;
        up.insert(k, v);
      }
      up.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port));
      up.keep_alive(true);
      up.body() = req.body;
      up.prepare_payload();
      co_await bhttp::async_write(sock, up, asio::redirect_error(asio::use_awaitable, ec));
    }
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (!ec)
      co_await bhttp::async_read_header(sock, buf, parser,
                                        asio::redirect_error(asio::use_awaitable, ec));
    if (ex->client_gone()) co_return;
    if (ec && pooled && buf.size() == 0) {
      // A kept-alive connection the worker closed as the request went out (nothing of an answer
      // came back, so the request was not taken): the same worker again, on a new connection.
      // Not an attempt: a fresh connection cannot fail this way.
      --attempt;
      continue;
    }
    if (ec) {
      // The worker went away before it answered: another instance takes the request.
      std::string code, message;
      auto next = attempt == 0
                      ? px.plane.route(name, header_or(req, "X-Amzn-SageMaker-Target-Variant"),
                                       route.worker, &code, &message)
                      : std::nullopt;
      if (next && next->worker != route.worker) {
        spdlog::warn("endpoint {}: worker {} failed before answering ({}); retrying on {}", name,
                     route.worker->spec().label, ec.message(), next->worker->spec().label);
        route.worker->outstanding--;
        route = *next;
        continue;
      }
      if (next) next->worker->outstanding--;
      ex->respond(server::sagemaker::model_error(500,
                                                 "{\"message\":\"the instance serving variant " +
                                                     route.variant + " failed: " + ec.message() +
                                                     "\"}",
                                                 header_or(req, "x-amzn-RequestId")));
      co_return;
    }
    auto& head = parser.get();
    status = head.result_int();
    std::vector<http::Header> headers;
    for (auto& f : head) {
      std::string_view k(f.name_string().data(), f.name_string().size());
      if (hop_by_hop(k) || ieq(k, "x-amzn-invoked-production-variant")) continue;
      headers.emplace_back(std::string(k), std::string(f.value()));
    }
    headers.emplace_back("x-Amzn-Invoked-Production-Variant", route.variant);
    const bool chunked = !parser.content_length().has_value();
    std::string whole;
    if (chunked) {
      ex->start_stream(status, headers);
      started = true;
    }
    MessageSplitter split;
    std::array<char, 16384> data;
    while (!parser.is_done()) {
      head.body().data = data.data();
      head.body().size = data.size();
      co_await bhttp::async_read_some(sock, buf, parser,
                                      asio::redirect_error(asio::use_awaitable, ec));
      if (ec == bhttp::error::need_buffer) ec = {};
      size_t n = data.size() - head.body().size;
      if (ex->client_gone()) co_return;
      if (n > 0) {
        std::string_view piece(data.data(), n);
        if (!chunked) {
          whole.append(piece);
        } else {
          std::string out = streaming_op && status == 200 ? split.feed(piece) : std::string(piece);
          if (!out.empty()) ex->write(std::move(out));
        }
      }
      if (ec) break;
    }
    if (!ec) {
      // Read to its end with keep-alive on both sides and nothing beyond it: reusable.
      if (parser.keep_alive() && buf.size() == 0)
        px.upstream.put(route.worker, port, std::move(cur->sock));
      if (started)
        ex->finish();
      else
        ex->respond({status, headers, std::move(whole)});
      co_return;
    }
    spdlog::warn("endpoint {}: worker {}: {}", name, route.worker->spec().label, ec.message());
    if (started) {
      if (streaming_op && status == 200)
        ex->write(eventstream::encode_model_stream_error(
            "Your model stream was interrupted: the instance serving it (variant " + route.variant +
                ") failed: " + ec.message(),
            "StreamBroken"));
      ex->finish();
    } else {
      ex->respond(server::sagemaker::model_error(
          500, "{\"message\":\"the instance serving variant " + route.variant + " failed\"}",
          header_or(req, "x-amzn-RequestId")));
    }
    co_return;
  }
}

// The playground page's own files (public, as on `serve`: they hold no data) and the routes the
// page calls, below /endpoints/{name}/. OP is the path after the name.
bool is_page_route(const std::string& method, const std::string& op) {
  if (method == "GET")
    return op == "ui" || op.rfind("ui/", 0) == 0 || op == "info" || op == "metrics" ||
           op == "v1/models";
  return method == "POST" && (op == "generate_stream" || op == "v1/chat/completions");
}

bool is_page_file(const HttpRequest& r) {
  if (r.method != "GET" || r.path.rfind("/endpoints/", 0) != 0) return false;
  size_t slash = r.path.find('/', 11);
  if (slash == std::string::npos) return false;
  std::string_view op = std::string_view(r.path).substr(slash + 1);
  return op == "ui" || op.substr(0, 3) == "ui/";
}

// UPSTREAM_TARGET is the worker's target: the client's own for the runtime routes, the part after
// /endpoints/{name} for the playground page and the routes it calls.
void proxy_request(Proxy& px, std::shared_ptr<Exchange> ex, std::string name, std::string op,
                   std::string upstream_target, Route route) {
  px.in_flight++;
  auto exec = ex->executor();
  asio::co_spawn(exec,
                 proxy_co(px, std::move(ex), std::move(name), std::move(op),
                          std::move(upstream_target), std::move(route)),
                 [](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& x) {
                     spdlog::error("proxy: {}", x.what());
                   }
                 });
}

std::string family_of(const std::string& line) {
  size_t end = line.find_first_of("{ ");
  return line.substr(0, end);
}

}  // namespace

std::string relabel_metrics(const std::string& text, const std::string& labels) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (line.empty() || line[0] == '#') {
      out += line + "\n";
      continue;
    }
    size_t b = line.find_first_of("{ ");
    if (b == std::string::npos) continue;
    if (line[b] == '{') {
      bool empty = b + 1 < line.size() && line[b + 1] == '}';
      out += line.substr(0, b + 1) + labels + (empty ? "" : ",") + line.substr(b + 1) + "\n";
    } else {
      out += line.substr(0, b) + "{" + labels + "}" + line.substr(b) + "\n";
    }
  }
  return out;
}

namespace {

// Groups the relabelled texts of several workers by metric family (HELP/TYPE once each).
std::string aggregate(const std::vector<std::string>& texts) {
  std::vector<std::string> order;
  std::map<std::string, std::pair<std::string, std::string>> fam;  // name -> (header, samples)
  for (auto& t : texts) {
    std::string current;
    size_t pos = 0;
    while (pos < t.size()) {
      size_t nl = t.find('\n', pos);
      std::string line = t.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? t.size() : nl + 1;
      if (line.empty()) continue;
      if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
        std::string name = family_of(line.substr(7));
        current = name;
        if (!fam.count(name)) order.push_back(name);
        auto& f = fam[name];
        if (f.first.find(line.substr(0, 7)) == std::string::npos) f.first += line + "\n";
        continue;
      }
      if (line[0] == '#') continue;
      std::string name =
          current.empty() || family_of(line).rfind(current, 0) != 0 ? family_of(line) : current;
      if (!fam.count(name)) order.push_back(name);
      fam[name].second += line + "\n";
    }
  }
  std::string out;
  for (auto& n : order) out += fam[n].first + fam[n].second;
  return out;
}

std::string label_value(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

}  // namespace

int run_service(ServiceConfig cfg) {
  auto logger = spdlog::stderr_color_mt("control-plane");
  spdlog::set_default_logger(logger);
  spdlog::flush_on(spdlog::level::info);

  sigv4::CredentialStore keys;
  if (!cfg.aws_access_key_id.empty())
    keys.add({cfg.aws_access_key_id, cfg.aws_secret_access_key, ""});
  if (!cfg.aws_credentials_file.empty())
    for (auto& c : sigv4::load_credentials_file(cfg.aws_credentials_file)) keys.add(std::move(c));
  sigv4::VerifierConfig verifier;
  verifier.region = cfg.region;
  if (!cfg.region.empty()) cfg.plane.account.region = cfg.region;

  ControlPlane plane(cfg.plane);
  Proxy px{plane};
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);

  auto account_of = [&](const HttpRequest& r) {
    Account a = cfg.plane.account;
    if (const std::string* h = r.header("authorization")) {
      std::string err;
      if (auto az = sigv4::parse_authorization(*h, &err); az && !az->region.empty())
        a.region = az->region;
    }
    return a;
  };

  http::RouteTable routes;
  routes.set_guard([&](Exchange& ex) {
    const HttpRequest& r = ex.request();
    if (keys.empty() || r.path == "/ping" || r.path == "/metrics" || is_page_file(r)) return true;
    sigv4::Request sr;
    sr.method = r.method;
    size_t qm = r.target.find('?');
    sr.path = r.target.substr(0, qm);
    if (qm != std::string::npos) sr.query = r.target.substr(qm + 1);
    sr.headers = r.headers;
    sr.body = r.body;
    sigv4::VerifyResult v = sigv4::verify(sr, keys, verifier, sigv4::Clock::now());
    if (v.ok()) return true;
    std::string rid = server::sagemaker::request_id();
    std::string code(v.error_type());
    if (r.path == "/") {
      HttpResponse resp = json_error(code, v.message, rid);
      resp.status = 403;
      ex.respond(resp);
    } else {
      ex.respond(server::sagemaker::aws_error(403, code, v.message, rid));
    }
    return false;
  });
  routes.add("GET", "/ping", [](std::shared_ptr<Exchange> ex) {
    ex->respond({200, {{"Content-Type", "application/json"}}, "{}"});
  });
  routes.add("POST", "/", [&](std::shared_ptr<Exchange> ex) {
    const HttpRequest& r = ex->request();
    std::string rid = server::sagemaker::request_id();
    std::string target = header_or(r, "x-amz-target");
    ex->access().route = "control:" + target;
    if (target.rfind("SageMaker.", 0) != 0) {
      ex->respond(json_error("UnknownOperationException",
                             target.empty()
                                 ? "Missing X-Amz-Target header: this port speaks the "
                                   "SageMaker JSON 1.1 API (X-Amz-Target: "
                                   "SageMaker.<Operation>)."
                                 : "Unknown X-Amz-Target '" + target.substr(0, 100) + "'.",
                             rid));
      return;
    }
    std::string op = target.substr(10);
    json body = r.body.empty() ? json::object() : json::parse(r.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      ex->respond(
          json_error("SerializationException", "The request body is not a JSON object.", rid));
      return;
    }
    Account acct = account_of(r);
    auto answer = [rid](json out) -> HttpResponse {
      return {200,
              {{"Content-Type", kJson11}, {"x-amzn-RequestId", rid}},
              out.dump(-1, ' ', false, json::error_handler_t::replace)};
    };
    if (op == "CreateEndpoint" && cfg.wait_for_in_service) {
      spawn(px, [&plane, ex, body, acct, rid, answer] {
        HttpResponse resp;
        try {
          json out = plane.call("CreateEndpoint", body, acct);
          plane.wait_settled(body.value("EndpointName", ""), 3 * 3600);
          resp = answer(out);
        } catch (const ApiError& e) {
          resp = json_error(e.code(), e.what(), rid);
        } catch (const std::exception& e) {
          resp = json_error("InternalFailure", e.what(), rid);
          resp.status = 500;
        }
        post_to(ex, [resp](Exchange& e) { e.respond(resp); });
      });
      return;
    }
    try {
      ex->respond(answer(plane.call(op, body, acct)));
    } catch (const ApiError& e) {
      ex->respond(json_error(e.code(), e.what(), rid));
    } catch (const std::exception& e) {
      spdlog::error("{}: {}", op, e.what());
      HttpResponse resp = json_error("InternalFailure", e.what(), rid);
      resp.status = 500;
      ex->respond(resp);
    }
  });
  // The runtime routes, and each endpoint's playground page (/endpoints/{name}/ui, the page
  // `serve` has at /ui) with the routes it calls, all passed on to one of the endpoint's workers.
  auto endpoint_request = [&](std::shared_ptr<Exchange> ex) {
    const HttpRequest& r = ex->request();
    std::string rid = server::sagemaker::request_id();
    ex->access().route = "/endpoints";
    std::string rest = r.path.substr(11);
    size_t slash = rest.find('/');
    std::string name = rest.substr(0, slash);
    std::string op = slash == std::string::npos ? "" : rest.substr(slash + 1);
    const bool runtime =
        r.method == "POST" && (op == "invocations" || op == "invocations-response-stream");
    if (!runtime && !is_page_route(r.method, op)) {
      ex->respond(server::sagemaker::aws_error(
          404, "UnknownOperationException",
          "No operation at " + r.method + " '" + r.path.substr(0, 100) +
              "'; the runtime API has POST /endpoints/{EndpointName}/invocations and "
              "/endpoints/{EndpointName}/invocations-response-stream (and the playground page "
              "GET /endpoints/{EndpointName}/ui)",
          rid));
      return;
    }
    if (!runtime)
      ex->access().route = op.rfind("ui", 0) == 0 ? "/endpoints/ui" : "/endpoints/" + op;
    if (!valid_entity_name(name)) {
      ex->respond(server::sagemaker::aws_error(
          400, "ValidationError",
          "1 validation error detected: Value '" + name.substr(0, 100) +
              "' at 'endpointName' failed to satisfy constraint: Member must satisfy regular "
              "expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
          rid));
      return;
    }
    std::string code, message;
    auto route = plane.route(name, header_or(r, "X-Amzn-SageMaker-Target-Variant"), nullptr, &code,
                             &message);
    if (!route) {
      ex->respond(server::sagemaker::aws_error(code == "ServiceUnavailable" ? 503 : 400, code,
                                               message, rid));
      return;
    }
    std::string upstream = runtime ? r.target : r.target.substr(11 + name.size());
    proxy_request(px, ex, name, op, std::move(upstream), *route);
  };
  routes.add_prefix("POST", "/endpoints/", endpoint_request);
  routes.add_prefix("GET", "/endpoints/", endpoint_request);
  routes.add("GET", "/metrics", [&](std::shared_ptr<Exchange> ex) {
    spawn(px, [&plane, ex] {
      std::vector<std::string> texts;
      std::string own =
          "# HELP lmstream_control_plane_endpoints Endpoints by status\n"
          "# TYPE lmstream_control_plane_endpoints gauge\n";
      for (auto& [st, n] : plane.endpoint_counts())
        own +=
            "lmstream_control_plane_endpoints{status=\"" + st + "\"} " + std::to_string(n) + "\n";
      std::string up =
          "# HELP lmstream_control_plane_worker_up 1 when the worker passes /ping\n"
          "# TYPE lmstream_control_plane_worker_up gauge\n";
      std::string restarts =
          "# HELP lmstream_control_plane_worker_restarts_total Restarts after a crash\n"
          "# TYPE lmstream_control_plane_worker_restarts_total counter\n";
      std::string outstanding =
          "# HELP lmstream_control_plane_worker_outstanding_requests Requests proxied to the "
          "worker now\n# TYPE lmstream_control_plane_worker_outstanding_requests gauge\n";
      std::string pids =
          "# HELP lmstream_control_plane_worker_pid Process id of the worker (0 while it is "
          "down)\n# TYPE lmstream_control_plane_worker_pid gauge\n";
      for (auto& w : plane.workers()) {
        std::string labels = "endpoint=\"" + label_value(w.endpoint) + "\",variant=\"" +
                             label_value(w.variant) + "\",instance=\"" +
                             std::to_string(w.instance) + "\"";
        up += "lmstream_control_plane_worker_up{" + labels + "} " +
              (w.worker->ready() ? "1" : "0") + "\n";
        restarts += "lmstream_control_plane_worker_restarts_total{" + labels + "} " +
                    std::to_string(w.worker->restarts()) + "\n";
        outstanding += "lmstream_control_plane_worker_outstanding_requests{" + labels + "} " +
                       std::to_string(w.worker->outstanding.load()) + "\n";
        pids += "lmstream_control_plane_worker_pid{" + labels + "} " +
                std::to_string(w.worker->pid()) + "\n";
        if (!w.worker->ready()) continue;
        http::ClientRequest cr;
        cr.url = "http://127.0.0.1:" + std::to_string(w.worker->port()) + "/metrics";
        http::ClientOptions o;
        o.connect_timeout = 1000ms;
        o.stall_timeout = 2000ms;
        try {
          auto resp = http::fetch(cr, o, 8 << 20);
          if (resp.head.status == 200) texts.push_back(relabel_metrics(resp.body, labels));
        } catch (const http::ClientError&) {
        }
      }
      texts.insert(texts.begin(), own + up + restarts + outstanding + pids);
      std::string body = aggregate(texts);
      post_to(ex, [body](Exchange& e) {
        e.respond({200, {{"Content-Type", "text/plain; version=0.0.4"}}, body});
      });
    });
  });
  routes.set_error_shaper([](int status, const std::string& path,
                             const std::string& message) -> std::optional<HttpResponse> {
    if (path == "/") {
      HttpResponse r =
          json_error(status == 413 ? "ValidationException" : "UnknownOperationException", message,
                     server::sagemaker::request_id());
      r.status = status;
      return r;
    }
    return std::nullopt;
  });

  http::HttpLimits lim;
  lim.idle_timeout_s = 120;
  lim.write_timeout_s = 600;
  http::HttpServer srv(
      ioc, routes, lim, [](const HttpRequest& r, int status, const http::AccessInfo& a, double ms) {
        spdlog::debug("{} {} {} {} {:.1f} ms", r.method, r.path, a.route, status, ms);
      });
  int port = srv.listen(cfg.host, cfg.port);
  spdlog::info(
      "control plane listening on {}:{} (state {}; SageMaker API at POST /, runtime at "
      "/endpoints/...)",
      cfg.host, port, cfg.plane.state_dir);
  if (!keys.empty())
    spdlog::info("SigV4 required on every call ({} key(s), service sagemaker)", keys.size());
  plane.recover();

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: stopping; in-flight streams get up to {} s", sig,
                 cfg.plane.drain_grace_s);
    srv.stop_accepting();
    std::thread([&] {
      auto deadline = std::chrono::steady_clock::now() +
                      std::chrono::milliseconds(int64_t(cfg.plane.drain_grace_s * 1000));
      while (px.in_flight > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
      plane.shutdown();
      asio::post(ioc, [&] {
        srv.close_all();
        work.reset();
        ioc.stop();
      });
    }).detach();
  });
  if (std::string why = http::run_io_threads(ioc, cfg.io_threads, cfg.io_slice_us); !why.empty())
    spdlog::warn("--io-slice-us {}: the kernel's default slice was used ({})", cfg.io_slice_us,
                 why);
  // The closes posted just before ioc.stop() have not run; run them so no connection (and no
  // proxied exchange it holds) outlives the plane.
  if (size_t n = srv.close_and_drain())
    spdlog::warn("shutdown: {} connection(s) still referenced after closing", n);
  plane.shutdown();
  // Background threads still running would outlive the io_context and the plane they use.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (px.in_flight > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  if (px.in_flight > 0) {
    spdlog::warn("{} request thread(s) still running at exit", px.in_flight.load());
    std::_Exit(0);
  }
  spdlog::info("bye");
  return 0;
}

}  // namespace lmstream::control

// Synchronous HTTP/1.1 client on Boost.Beast (see http_client.h). Each blocking step is an async
// Beast operation run to completion on a private io_context, so tcp_stream's timeouts apply.
#include "client/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <cstdint>
#include <limits>

namespace lmstream::client {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

std::string seconds(std::chrono::milliseconds ms) {
  double s = double(ms.count()) / 1000.0;
  std::string r = std::to_string(s);
  while (r.size() > 1 && r.back() == '0') r.pop_back();
  if (r.back() == '.') r.pop_back();
  return r + " s";
}

}  // namespace

std::string Url::host_header() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != 80) h += ":" + std::to_string(port);
  return h;
}

Url parse_url(std::string_view url) {
  if (iequals_prefix(url, "https://"))
    throw HttpError("https:// endpoints are not supported yet; use an http:// URL (got '" + std::string(url) + "')");
  if (!iequals_prefix(url, "http://"))
    throw HttpError("the endpoint URL must start with http:// (got '" + std::string(url) + "')");
  std::string_view rest = url.substr(7);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (path.find_first_of("?#") != std::string_view::npos)
    throw HttpError("the endpoint URL must not have a query or fragment: '" + std::string(url) + "'");
  if (authority.find('@') != std::string_view::npos)
    throw HttpError("user info in the endpoint URL is not supported: '" + std::string(url) + "'");
  Url u;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) throw HttpError("bad IPv6 host in '" + std::string(url) + "'");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw HttpError("bad host in '" + std::string(url) + "'");
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) throw HttpError("no host in the endpoint URL '" + std::string(url) + "'");
  if (authority.find(':') != std::string_view::npos && authority.front() != '[' && port.empty())
    throw HttpError("empty port in '" + std::string(url) + "'");
  if (!port.empty()) {
    unsigned long p = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || p > 65535) throw HttpError("bad port in '" + std::string(url) + "'");
      p = p * 10 + unsigned(c - '0');
    }
    if (p == 0 || p > 65535) throw HttpError("bad port in '" + std::string(url) + "'");
    u.port = uint16_t(p);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  u.base_path = std::string(path);
  return u;
}

struct HttpResponse::Impl {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  std::chrono::milliseconds read_timeout{};
  std::string where;  // "host:port", for messages
  char chunk[16384];

  // Runs one async operation to completion and returns its error code.
  template <class Start>
  beast::error_code run(Start&& start) {
    beast::error_code result;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  [[noreturn]] void fail(const std::string& what, beast::error_code ec) const {
    if (ec == beast::error::timeout) throw HttpError(what + " " + where + ": timed out after " + seconds(read_timeout));
    throw HttpError(what + " " + where + ": " + ec.message());
  }
};

HttpResponse::HttpResponse(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpResponse::HttpResponse(HttpResponse&&) noexcept = default;
HttpResponse& HttpResponse::operator=(HttpResponse&&) noexcept = default;
HttpResponse::~HttpResponse() {
  if (impl_) {
    beast::error_code ec;
    impl_->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    impl_->stream.close();
  }
}

int HttpResponse::status() const { return int(impl_->parser.get().result_int()); }

std::string HttpResponse::reason() const { return std::string(impl_->parser.get().reason()); }

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  const auto& h = impl_->parser.get();
  auto it = h.find(beast::string_view(name.data(), name.size()));
  if (it == h.end()) return std::nullopt;
  return std::string(it->value());
}

std::string HttpResponse::read_some() {
  Impl& m = *impl_;
  while (!m.parser.is_done()) {
    auto& body = m.parser.get().body();
    body.data = m.chunk;
    body.size = sizeof m.chunk;
    m.stream.expires_after(m.read_timeout);
    beast::error_code ec = m.run([&](auto handler) { http::async_read_some(m.stream, m.buffer, m.parser, handler); });
    if (ec == http::error::need_buffer) ec = {};
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == http::error::partial_message)
      throw HttpError("the connection to " + m.where + " closed before the response was complete");
    if (ec) m.fail("reading the response from", ec);
    size_t n = sizeof m.chunk - m.parser.get().body().size;
    if (n > 0) return std::string(m.chunk, n);
  }
  return {};
}

std::string HttpResponse::read_all(size_t limit) {
  std::string all;
  for (std::string part = read_some(); !part.empty(); part = read_some())
    if (all.size() < limit) all.append(part, 0, limit - all.size());
  return all;
}

HttpResponse send_request(const Url& url, const HttpRequest& request, const HttpTimeouts& timeouts) {
  auto m = std::make_unique<HttpResponse::Impl>();
  m->read_timeout = timeouts.read;
  m->where = url.host_header().find(':') != std::string::npos ? url.host_header()
                                                              : url.host_header() + ":" + std::to_string(url.port);
  tcp::resolver resolver(m->ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(url.host, std::to_string(url.port), ec);
  if (ec) throw HttpError("cannot resolve host '" + url.host + "': " + ec.message());

  m->stream.expires_after(timeouts.connect);
  ec = m->run([&](auto handler) { m->stream.async_connect(endpoints, handler); });
  if (ec == beast::error::timeout)
    throw HttpError("cannot connect to " + m->where + ": timed out after " + seconds(timeouts.connect));
  if (ec) throw HttpError("cannot connect to " + m->where + ": " + ec.message());

  http::verb verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) throw HttpError("unknown HTTP method '" + request.method + "'");
  http::request<http::string_body> req{verb, request.target.empty() ? "/" : request.target, 11};
  for (const auto& [k, v] : request.headers) req.insert(k, v);
  req.body() = request.body;
  req.prepare_payload();

  m->stream.expires_after(timeouts.read);
  ec = m->run([&](auto handler) { http::async_write(m->stream, req, handler); });
  if (ec) m->fail("sending the request to", ec);

  // Not boost::none: Boost 1.74 compares Content-Length against the optional itself, and any value
  // is greater than none.
  m->parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  m->parser.header_limit(64 * 1024);
  m->stream.expires_after(timeouts.read);
  ec = m->run([&](auto handler) { http::async_read_header(m->stream, m->buffer, m->parser, handler); });
  if (ec == http::error::end_of_stream || ec == net::error::eof)
    throw HttpError("the connection to " + m->where + " closed before a response arrived");
  if (ec) m->fail("reading the response header from", ec);
  return HttpResponse(std::move(m));
}

}  // namespace lmstream::client

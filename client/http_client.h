// A small synchronous HTTP/1.1 client on Boost.Beast for `lmstream invoke`: one request per
// connection, the response body handed over as it arrives (chunked bodies chunk by chunk), with
// connect and idle-read timeouts. http:// only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lmstream::client {

// Transport problems: bad URL, cannot connect, timeout, connection closed early, bad HTTP.
class HttpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Url {
  std::string host;       // without brackets for IPv6 literals
  uint16_t port = 80;
  std::string base_path;  // "" or "/prefix" (no trailing '/')
  // The Host header: host, plus ":port" unless it is 80.
  std::string host_header() const;
};

// Parses "http://host[:port][/path]". Throws HttpError for https:// (not supported yet), other
// schemes, user info, a query or fragment, or a bad port.
Url parse_url(std::string_view url);

struct HttpTimeouts {
  std::chrono::milliseconds connect{10'000};
  std::chrono::milliseconds read{300'000};  // longest wait for any bytes once connected
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "POST";
  std::string target;  // path (+ query), already percent-encoded
  HeaderList headers;  // sent in order; Content-Length is added
  std::string body;
};

// One response being read; owns its connection.
class HttpResponse {
 public:
  HttpResponse(HttpResponse&&) noexcept;
  HttpResponse& operator=(HttpResponse&&) noexcept;
  ~HttpResponse();

  int status() const;
  std::string reason() const;
  // The first header called `name` (case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
  // The next bytes of the (de-chunked) body, as soon as some arrive; "" once it is complete.
  // Throws HttpError on timeout or when the connection ends early.
  std::string read_some();
  // The rest of the body, at most `limit` bytes (more are dropped).
  std::string read_all(size_t limit);

 private:
  struct Impl;
  explicit HttpResponse(std::unique_ptr<Impl> impl);
  friend HttpResponse send_request(const Url&, const HttpRequest&, const HttpTimeouts&);
  std::unique_ptr<Impl> impl_;
};

// Connects, sends `request` and reads the response header. Throws HttpError.
HttpResponse send_request(const Url& url, const HttpRequest& request, const HttpTimeouts& timeouts);

}  // namespace lmstream::client

// The endpoint `lmstream invoke` talks to: its URL (http://host[:port][/base], the rules the CLI
// accepts), the request addressed relative to it, and the timeouts. The transport is http/client.h;
// transport failures are its ClientError, named HttpError here. No sending happens in this file.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/client.h"

namespace lmstream::client {

// Transport problems: bad URL, cannot connect, timeout, connection closed early, bad HTTP.
using HttpError = http::ClientError;

struct Url {
  bool tls = false;  // https://
  std::string host;  // without brackets for IPv6 literals
  uint16_t port = 80;
  std::string base_path;  // "" or "/prefix" (no trailing '/')
  // The Host header: host, plus ":port" unless it is the scheme's default (80, 443).
  std::string host_header() const;
  // The absolute URL of `target` (a path below the host, with base_path already in it).
  std::string absolute(std::string_view target) const;
};

// Parses "http[s]://host[:port][/path]". Throws HttpError for other schemes, user info, a query
// or fragment, or a bad port.
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

}  // namespace lmstream::client

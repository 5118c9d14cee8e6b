// Endpoint URL rules for `lmstream invoke` (see endpoint.h).
#include "client/endpoint.h"

#include <cctype>

#include "base/strings.h"

namespace lmstream::client {

std::string Url::host_header() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) h += ":" + std::to_string(port);
  return h;
}

std::string Url::absolute(std::string_view target) const {
  return std::string(tls ? "https://" : "http://") + host_header() +
         (target.empty() ? std::string("/") : std::string(target));
}

Url parse_url(std::string_view url) {
  using K = HttpError::Kind;
  const bool tls = base::istarts_with(url, "https://");
  if (!tls && !base::istarts_with(url, "http://"))
    throw HttpError(K::kUrl, "the endpoint URL must start with http:// or https:// (got '" +
                                 std::string(url) + "')");
  std::string_view rest = url.substr(tls ? 8 : 7);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (path.find_first_of("?#") != std::string_view::npos)
    throw HttpError(
        K::kUrl, "the endpoint URL must not have a query or fragment: '" + std::string(url) + "'");
  if (authority.find('@') != std::string_view::npos)
    throw HttpError(K::kUrl,
                    "user info in the endpoint URL is not supported: '" + std::string(url) + "'");
  Url u;
  u.tls = tls;
  u.port = tls ? 443 : 80;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos)
      throw HttpError(K::kUrl, "bad IPv6 host in '" + std::string(url) + "'");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw HttpError(K::kUrl, "bad host in '" + std::string(url) + "'");
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty())
    throw HttpError(K::kUrl, "no host in the endpoint URL '" + std::string(url) + "'");
  if (authority.find(':') != std::string_view::npos && authority.front() != '[' && port.empty())
    throw HttpError(K::kUrl, "empty port in '" + std::string(url) + "'");
  if (!port.empty()) {
    unsigned long p = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || p > 65535)
        throw HttpError(K::kUrl, "bad port in '" + std::string(url) + "'");
      p = p * 10 + unsigned(c - '0');
    }
    if (p == 0 || p > 65535) throw HttpError(K::kUrl, "bad port in '" + std::string(url) + "'");
    u.port = uint16_t(p);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  u.base_path = std::string(path);
  return u;
}

}  // namespace lmstream::client

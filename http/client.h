// The one outbound HTTP client of lmstream, on libcurl: `lmstream invoke`, and the model
// downloader and the control-plane proxy to come. One request per call, blocking the calling
// thread; calls on different threads are independent (one curl easy handle each), so many may run
// at once. The response body is handed to a callback piece by piece as it arrives (nothing is
// buffered), which serves token streams and large downloads to a file alike.
//
// What it does: http:// and https:// (TLS verified against the system CA bundle, or a given CA
// file), redirects under a policy, byte ranges, proxies from the environment (http_proxy,
// https_proxy, no_proxy: libcurl's defaults), a connect timeout and a stall timeout, errors that
// name the host, the URL and curl's own reason.
// What it must not do: know any wire format or lmstream type (it sits in http/, right above
// base/); add headers the caller did not ask for beyond Host, Content-Length and Range (curl's
// default Accept, Expect and form Content-Type are suppressed); decompress; retry.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lmstream::http {

using ClientHeaders = std::vector<std::pair<std::string, std::string>>;

// A request that did not produce a complete response: the message names what failed, the host,
// the method and URL (without its query, which may hold a signature) and curl's reason. An HTTP
// error status is not a ClientError: it is a response like any other.
class ClientError : public std::runtime_error {
 public:
  enum class Kind {
    kUrl,        // not an http(s) URL, or one curl cannot parse
    kResolve,    // the host name does not resolve
    kConnect,    // refused, unreachable, or the connect timeout passed
    kTls,        // handshake failed, certificate not trusted, bad CA file
    kTimeout,    // connected, then no byte in either direction for the stall timeout
    kTransfer,   // the connection closed early, a malformed response, any other transport error
    kRedirects,  // more redirects than the policy allows
    kCancelled,  // ClientOptions::cancel was set
  };
  ClientError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// Bytes first..last of the body, inclusive (RFC 9110 §14.1.2); no `last` means to the end.
struct ByteRange {
  uint64_t first = 0;
  std::optional<uint64_t> last;
};

struct ClientRequest {
  std::string method = "GET";
  std::string url;        // absolute: http://host[:port]/path?query, already percent-encoded
  ClientHeaders headers;  // sent in order, as given (a Host header here replaces curl's own)
  std::string body;       // sent with a Content-Length for any method but GET and HEAD
  std::optional<ByteRange> range;
};

struct RedirectPolicy {
  bool follow = false;  // off: a 3xx is the response
  int max_redirects = 10;
  // A redirect to another scheme, host or port drops the Authorization (and Cookie) headers
  // unless this is set: a presigned CDN URL must not receive the Hub token.
  bool keep_authorization_across_hosts = false;
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};  // name resolution, TCP and TLS handshake
  // Once connected, the longest time with no byte sent or received (0: none). A slow but
  // moving download never trips it; a server that stops mid-stream does.
  std::chrono::milliseconds stall_timeout{300'000};
  RedirectPolicy redirects;
  std::string ca_file;  // PEM bundle to trust instead of the system's ("" = system bundle)
  // Set from any thread to abandon the request; checked at least every 100 ms.
  const std::atomic<bool>* cancel = nullptr;
};

// The status line and headers of the final response (after redirects).
struct ResponseHead {
  int status = 0;
  std::string reason;     // "" for HTTP/2
  ClientHeaders headers;  // in arrival order, names as sent
  std::string url;        // the URL that answered (differs from the request's after a redirect)
  int redirects = 0;      // how many were followed
  // The first header called `name` (ASCII case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
};

struct ClientCallbacks {
  // Once, with the final response's head, before any of its body.
  std::function<void(const ResponseHead&)> on_head;
  // Each piece of the (de-chunked) body as it arrives; never coalesced across reads.
  std::function<void(std::string_view)> on_body;
};

// Sends `request` and delivers the response through `cb`; returns the head once the body is
// complete. Throws ClientError (transport), or rethrows what a callback threw (the transfer is
// abandoned then). Thread-safe: each call owns its connection.
ResponseHead perform(const ClientRequest& request, const ClientOptions& options,
                     const ClientCallbacks& cb);

struct ClientResponse {
  ResponseHead head;
  std::string body;
  bool truncated = false;  // the body was longer than the limit; the rest was read and dropped
};

// perform(), keeping at most `body_limit` bytes of the body.
ClientResponse fetch(const ClientRequest& request, const ClientOptions& options,
                     size_t body_limit = 64 << 20);

}  // namespace lmstream::http

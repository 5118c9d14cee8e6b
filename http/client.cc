// The outbound HTTP client on libcurl (see client.h). Each perform() owns one easy handle and one
// multi handle and drives them itself (curl_multi_poll), so that the stall timeout has millisecond
// resolution (CURLOPT_LOW_SPEED_TIME counts whole seconds) and a cancel flag is seen within
// 100 ms. Redirects are followed here rather than by curl (FOLLOWLOCATION off), so that the body of
// a redirect is never handed to the caller, on_head sees only the final response, and the header
// policy across hosts is ours. Nothing here knows a wire format; only base/ is included.
#include "http/client.h"

#include <curl/curl.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>

#include "base/strings.h"

namespace lmstream::http {
namespace {

using SteadyClock = std::chrono::steady_clock;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct EasyFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct MultiFree {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};
struct SlistFree {
  void operator()(curl_slist* s) const { curl_slist_free_all(s); }
};
struct UrlFree {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

std::string seconds_text(std::chrono::milliseconds ms) {
  std::string r = std::to_string(double(ms.count()) / 1000.0);
  while (r.size() > 1 && r.back() == '0') r.pop_back();
  if (r.back() == '.') r.pop_back();
  return r + " s";
}

// What messages and the redirect policy need of a URL.
struct Origin {
  std::string scheme, host, port;  // port always set (the scheme's default when absent)
  std::string shown;               // scheme://host[:port]/path, without query or fragment
  std::string where() const { return host + ":" + port; }
  bool same(const Origin& o) const {
    return scheme == o.scheme && base::iequals(host, o.host) && port == o.port;
  }
};

std::string part(CURLU* u, CURLUPart p, unsigned flags = 0) {
  char* v = nullptr;
  if (curl_url_get(u, p, &v, flags) != CURLUE_OK || !v) return "";
  std::string s(v);
  curl_free(v);
  return s;
}

Origin origin_of(const std::string& url) {
  std::unique_ptr<CURLU, UrlFree> u(curl_url());
  if (curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
    throw ClientError(ClientError::Kind::kUrl, "not an absolute http(s) URL: '" + url + "'");
  Origin o;
  o.scheme = base::to_lower(part(u.get(), CURLUPART_SCHEME));
  if (o.scheme != "http" && o.scheme != "https")
    throw ClientError(ClientError::Kind::kUrl,
                      "only http:// and https:// URLs are supported (got '" + url + "')");
  o.host = part(u.get(), CURLUPART_HOST);
  o.port = part(u.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  std::string explicit_port = part(u.get(), CURLUPART_PORT);
  o.shown = o.scheme + "://" + o.host + (explicit_port.empty() ? "" : ":" + explicit_port) +
            part(u.get(), CURLUPART_PATH);
  return o;
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool has_header(const ClientHeaders& h, std::string_view name) {
  for (const auto& [k, v] : h)
    if (base::iequals(k, name)) return true;
  return false;
}

void drop_header(ClientHeaders& h, std::string_view name) {
  std::erase_if(h, [&](const auto& kv) { return base::iequals(kv.first, name); });
}

// One attempt (one URL) of a request: what curl's callbacks see and record.
struct Attempt {
  const ClientCallbacks* cb = nullptr;
  bool follow = false;
  ResponseHead head;
  bool head_delivered = false;  // on_head has run for this response
  bool redirecting = false;     // this response is a redirect being followed: its body is dropped
  bool connected = false;       // the connection is up and the request about to be sent
  SteadyClock::time_point last_activity;
  curl_off_t last_down = 0, last_up = 0;
  std::exception_ptr callback_error;  // what a caller's callback threw

  void deliver_head() {
    head_delivered = true;
    if (cb->on_head) cb->on_head(head);
  }
};

size_t on_header_line(char* data, size_t size, size_t n, void* user) {
  auto* a = static_cast<Attempt*>(user);
  size_t len = size * n;
  std::string_view line(data, len);
  a->last_activity = SteadyClock::now();
  if (a->head_delivered || a->redirecting) return len;  // trailers, or a redirect's leftovers
  try {
    if (line.rfind("HTTP/", 0) == 0) {  // a status line starts a new head (after 1xx, say)
      a->head.headers.clear();
      a->head.status = 0;
      a->head.reason.clear();
      std::string_view rest =
          line.substr(line.find(' ') == std::string_view::npos ? line.size() : line.find(' ') + 1);
      long long code = 0;
      std::string_view digits = rest.substr(0, 3);
      if (base::parse_int64(digits, code)) a->head.status = int(code);
      a->head.reason =
          std::string(base::trim(rest.size() > 3 ? rest.substr(3) : std::string_view()));
      return len;
    }
    std::string_view t = base::trim(line);
    if (t.empty()) {  // end of a head
      if (a->head.status >= 100 && a->head.status < 200)
        return len;  // interim: the real one follows
      if (a->follow && is_redirect(a->head.status) && a->head.header("Location")) {
        a->redirecting = true;
        return len;
      }
      a->deliver_head();
      return len;
    }
    if ((line[0] == ' ' || line[0] == '\t') && !a->head.headers.empty()) {  // obsolete line folding
      a->head.headers.back().second += " " + std::string(t);
      return len;
    }
    size_t colon = t.find(':');
    if (colon == std::string_view::npos) return len;
    a->head.headers.emplace_back(std::string(base::trim(t.substr(0, colon))),
                                 std::string(base::trim(t.substr(colon + 1))));
  } catch (...) {
    a->callback_error = std::current_exception();
    return CURL_WRITEFUNC_ERROR;
  }
  return len;
}

size_t on_body_bytes(char* data, size_t size, size_t n, void* user) {
  auto* a = static_cast<Attempt*>(user);
  size_t len = size * n;
  a->last_activity = SteadyClock::now();
  if (a->redirecting) return len;
  try {
    if (!a->head_delivered) a->deliver_head();
    if (a->cb->on_body && len > 0) a->cb->on_body(std::string_view(data, len));
  } catch (...) {
    a->callback_error = std::current_exception();
    return CURL_WRITEFUNC_ERROR;
  }
  return len;
}

int on_progress(void* user, curl_off_t, curl_off_t down, curl_off_t, curl_off_t up) {
  auto* a = static_cast<Attempt*>(user);
  if (down != a->last_down || up != a->last_up) {
    a->last_down = down;
    a->last_up = up;
    a->last_activity = SteadyClock::now();
  }
  return 0;
}

int on_connected(void* user, char*, char*, int, int) {
  auto* a = static_cast<Attempt*>(user);
  a->connected = true;
  a->last_activity = SteadyClock::now();
  return CURL_PREREQFUNC_OK;
}

bool tls_failure(CURLcode c) {
  switch (c) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
      return true;
    default:
      return false;
  }
}

class Performer {
 public:
  Performer(const ClientRequest& r, const ClientOptions& o, const ClientCallbacks& cb)
      : req_(r), opt_(o), cb_(cb), easy_(curl_easy_init()), multi_(curl_multi_init()) {
    if (!easy_ || !multi_)
      throw ClientError(ClientError::Kind::kTransfer, "libcurl could not start a transfer");
  }

  ResponseHead run() {
    int redirects = 0;
    for (;;) {
      Origin origin = origin_of(req_.url);
      Attempt a;
      a.cb = &cb_;
      a.follow = opt_.redirects.follow;
      one(origin, a);
      if (!a.redirecting) {
        a.head.url = req_.url;
        a.head.redirects = redirects;
        return std::move(a.head);
      }
      char* next = nullptr;
      curl_easy_getinfo(easy_.get(), CURLINFO_REDIRECT_URL, &next);
      if (!next) {  // a Location curl could not resolve: the redirect is the answer
        a.redirecting = false;
        a.head.url = req_.url;
        a.head.redirects = redirects;
        if (cb_.on_head) cb_.on_head(a.head);
        return std::move(a.head);
      }
      if (++redirects > opt_.redirects.max_redirects)
        throw ClientError(ClientError::Kind::kRedirects,
                          "more than " + std::to_string(opt_.redirects.max_redirects) +
                              " redirects (" + req_.method + " " + origin.shown + ")");
      redirect_to(next, a.head.status, origin);
    }
  }

 private:
  // The request for the next hop: RFC 9110 §15.4 (303, and 301/302 after POST, become GET without a
  // body); credentials stay with their origin unless the policy says otherwise.
  void redirect_to(const std::string& url, int status, const Origin& from) {
    Origin to = origin_of(url);
    if (status == 303 ? req_.method != "HEAD"
                      : (status == 301 || status == 302) && req_.method == "POST") {
      req_.method = "GET";
      req_.body.clear();
      drop_header(req_.headers, "Content-Type");
      drop_header(req_.headers, "Content-Length");
    }
    if (!from.same(to)) {
      drop_header(req_.headers, "Host");  // it named the old host
      if (!opt_.redirects.keep_authorization_across_hosts) {
        drop_header(req_.headers, "Authorization");
        drop_header(req_.headers, "Cookie");
      }
    }
    req_.url = url;
  }

  void setup(Attempt& a, curl_slist** headers_out) {
    CURL* e = easy_.get();
    curl_easy_reset(e);  // keeps the connection cache: a redirect to the same host reuses it
    errbuf_[0] = 0;
    curl_easy_setopt(e, CURLOPT_URL, req_.url.c_str());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf_);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);  // a streamed request's bytes leave at once
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);  // the path as given: no dot-segment removal
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, long(opt_.connect_timeout.count()));
    if (!opt_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, opt_.ca_file.c_str());
    // An https_proxy's "200 Connection established" is not the response's head.
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header_line);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body_bytes);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, &a);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_connected);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, &a);

    if (req_.method == "GET") {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (req_.method == "HEAD") {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
      if (req_.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req_.method.c_str());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(req_.body.size()));
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, req_.body.data());
    }
    if (req_.range) {
      range_ = std::to_string(req_.range->first) + "-" +
               (req_.range->last ? std::to_string(*req_.range->last) : "");
      curl_easy_setopt(e, CURLOPT_RANGE, range_.c_str());
    }

    curl_slist* list = nullptr;
    auto add = [&](const std::string& line) { list = curl_slist_append(list, line.c_str()); };
    for (const auto& [k, v] : req_.headers)
      add(v.empty() ? k + ";" : k + ": " + v);  // "Name;" sends it empty
    // Only what the caller asked for: no default Accept, no Expect: 100-continue, no form type.
    for (const char* name : {"Accept", "Expect", "Content-Type"})
      if (!has_header(req_.headers, name)) add(std::string(name) + ":");
    *headers_out = list;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
  }

  void one(const Origin& origin, Attempt& a) {
    curl_slist* raw = nullptr;
    setup(a, &raw);
    std::unique_ptr<curl_slist, SlistFree> headers(raw);
    a.last_activity = SteadyClock::now();
    CURLM* m = multi_.get();
    curl_multi_add_handle(m, easy_.get());
    struct Remove {
      CURLM* m;
      CURL* e;
      ~Remove() { curl_multi_remove_handle(m, e); }
    } remove{m, easy_.get()};

    enum class Stop { kDone, kStalled, kCancelled } stop = Stop::kDone;
    for (;;) {
      int running = 0;
      CURLMcode mc = curl_multi_perform(m, &running);
      if (mc != CURLM_OK)
        throw ClientError(ClientError::Kind::kTransfer,
                          std::string("libcurl: ") + curl_multi_strerror(mc));
      if (a.callback_error) break;  // curl is told through the callback's return value
      if (running == 0) break;
      if (opt_.cancel && opt_.cancel->load()) {
        stop = Stop::kCancelled;
        break;
      }
      int wait_ms = 100;
      if (a.connected && opt_.stall_timeout.count() > 0) {
        auto idle = SteadyClock::now() - a.last_activity;
        if (idle >= opt_.stall_timeout) {
          stop = Stop::kStalled;
          break;
        }
        auto left = std::chrono::ceil<std::chrono::milliseconds>(opt_.stall_timeout - idle).count();
        if (left < wait_ms) wait_ms = int(left);
      }
      curl_multi_poll(m, nullptr, 0, wait_ms, nullptr);
    }
    if (a.callback_error) std::rethrow_exception(a.callback_error);
    std::string what = req_.method + " " + origin.shown;
    if (stop == Stop::kCancelled)
      throw ClientError(ClientError::Kind::kCancelled, "cancelled (" + what + ")");
    if (stop == Stop::kStalled)
      throw ClientError(ClientError::Kind::kTimeout,
                        std::string(a.head_delivered ? "reading the response from "
                                                     : "waiting for the response from ") +
                            origin.where() + ": timed out after " +
                            seconds_text(opt_.stall_timeout) + " without a byte (" + what + ")");
    CURLcode rc = CURLE_OK;
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(m, &left))
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy_.get()) rc = msg->data.result;
    if (rc != CURLE_OK) fail(rc, origin, a);
  }

  [[noreturn]] void fail(CURLcode rc, const Origin& origin, const Attempt& a) const {
    using K = ClientError::Kind;
    std::string curl = errbuf_[0] ? std::string(errbuf_) : std::string(curl_easy_strerror(rc));
    while (!curl.empty() && (curl.back() == '\n' || curl.back() == '\r')) curl.pop_back();
    std::string tail = " (" + req_.method + " " + origin.shown + "; curl: " + curl + ")";
    std::string where = origin.where();
    switch (rc) {
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_URL_MALFORMAT:
        throw ClientError(K::kUrl, "bad URL" + tail);
      case CURLE_COULDNT_RESOLVE_HOST:
        throw ClientError(K::kResolve, "cannot resolve host '" + origin.host + "'" + tail);
      case CURLE_COULDNT_RESOLVE_PROXY:
        throw ClientError(K::kResolve, "cannot resolve the proxy for " + where + tail);
      case CURLE_COULDNT_CONNECT: {
        long os = 0;
        curl_easy_getinfo(easy_.get(), CURLINFO_OS_ERRNO, &os);
        throw ClientError(K::kConnect, "cannot connect to " + where +
                                           (os ? ": " + std::string(std::strerror(int(os))) : "") +
                                           tail);
      }
      case CURLE_OPERATION_TIMEDOUT:
        if (!a.connected)
          throw ClientError(K::kConnect, "cannot connect to " + where + ": timed out after " +
                                             seconds_text(opt_.connect_timeout) + tail);
        throw ClientError(K::kTimeout, "request to " + where + " timed out" + tail);
      case CURLE_GOT_NOTHING:
        throw ClientError(K::kTransfer, "the connection to " + where +
                                            " closed before a response arrived" + tail);
      case CURLE_PARTIAL_FILE:
      case CURLE_RECV_ERROR:
        if (a.head_delivered)
          throw ClientError(K::kTransfer, "the connection to " + where +
                                              " closed before the response was complete" + tail);
        throw ClientError(K::kTransfer, "reading the response from " + where + " failed" + tail);
      case CURLE_SEND_ERROR:
        throw ClientError(K::kTransfer, "sending the request to " + where + " failed" + tail);
      case CURLE_ABORTED_BY_CALLBACK:
        throw ClientError(K::kCancelled, "cancelled" + tail);
      default:
        if (tls_failure(rc))
          throw ClientError(K::kTls,
                            "TLS with " + where + " failed, trusting " +
                                (opt_.ca_file.empty() ? std::string("the system CA bundle")
                                                      : "the CA bundle '" + opt_.ca_file + "'") +
                                tail);
        throw ClientError(K::kTransfer, "request to " + where + " failed" + tail);
    }
  }

  ClientRequest req_;  // a copy: redirects rewrite it
  const ClientOptions& opt_;
  const ClientCallbacks& cb_;
  std::unique_ptr<CURL, EasyFree> easy_;
  std::unique_ptr<CURLM, MultiFree> multi_;
  std::string range_;
  char errbuf_[CURL_ERROR_SIZE] = {};
};

}  // namespace

std::optional<std::string> ResponseHead::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (base::iequals(k, name)) return v;
  return std::nullopt;
}

ResponseHead perform(const ClientRequest& request, const ClientOptions& options,
                     const ClientCallbacks& cb) {
  global_init();
  Performer p(request, options, cb);
  return p.run();
}

ClientResponse fetch(const ClientRequest& request, const ClientOptions& options,
                     size_t body_limit) {
  ClientResponse r;
  ClientCallbacks cb;
  cb.on_body = [&](std::string_view piece) {
    size_t room = body_limit - r.body.size();
    if (piece.size() > room) r.truncated = true;
    r.body.append(piece.substr(0, room));
  };
  r.head = perform(request, options, cb);
  return r;
}

}  // namespace lmstream::http

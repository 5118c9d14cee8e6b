// The playground page (web/, embedded by CMake): GET /ui is the page, GET /ui/<file> its scripts,
// styles and icon, each with a strict Content-Security-Policy (scripts and connections to this
// origin only, no inline script, no eval) and nosniff. The page and its files are public, as
// /ping is: they hold no data, and the API key is typed into the page, which sends it to the API
// routes, still guarded. Knows nothing of the API itself; the page talks to the routes clients use.
#include <string_view>

#include "server/app.h"
#include "web/assets.h"

namespace lmstream::server {
namespace {

constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

bool is_page_path(std::string_view path) { return path == "/ui" || path.substr(0, 4) == "/ui/"; }

void serve_asset(Exchange& ex) {
  const std::string& path = ex.request().path;
  ex.access().route = "/ui";
  if (path == "/ui/") {
    // The page names its files relative to itself ("ui/app.js"), so that it also works under a
    // prefix (the control plane's /endpoints/{name}/ui); from "/ui/" those would miss. The
    // relative Location keeps the prefix too.
    ex.respond({302, {{"Location", "../ui"}, {"Content-Type", "text/plain; charset=utf-8"}}, ""});
    return;
  }
  std::string_view name = path == "/ui" ? "index.html" : std::string_view(path).substr(4);
  const web::Asset* a = web::find_asset(name);
  if (!a) {
    ex.respond(
        {404,
         {{"Content-Type", "text/plain; charset=utf-8"}, {"X-Content-Type-Options", "nosniff"}},
         "no such file of the /ui page\n"});
    return;
  }
  ex.respond({200,
              {{"Content-Type", std::string(a->content_type)},
               {"Content-Security-Policy", kCsp},
               {"X-Content-Type-Options", "nosniff"},
               {"X-Frame-Options", "DENY"},
               {"Referrer-Policy", "no-referrer"},
               {"Cache-Control", "no-cache"}},
              std::string(a->body)});
}

}  // namespace

bool wants_page(const HttpRequest& req) {
  const std::string* accept = req.header("accept");
  return req.method == "GET" && accept && accept->find("text/html") != std::string::npos;
}

void add_web_routes(App& app) {
  auto& r = app.routes();
  r.add("GET", "/ui", [](auto ex) { serve_asset(*ex); });
  r.add_prefix("GET", "/ui/", [](auto ex) { serve_asset(*ex); });
  // The page, and the redirect of a browser's GET / to it, pass the authentication guard.
  RouteTable::Guard inner = r.guard();
  r.set_guard([inner](Exchange& ex) {
    const HttpRequest& q = ex.request();
    if (q.method == "GET" && (is_page_path(q.path) || (q.path == "/" && wants_page(q))))
      return true;
    return !inner || inner(ex);
  });
}

}  // namespace lmstream::server

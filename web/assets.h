// The playground page's files (web/src/), embedded in the binary at build time by embed.cmake as
// byte arrays (web_assets.cc in the build tree). Data only: no HTTP, no lmstream types; the route
// that serves them is server/routes_web.cc.
#pragma once

#include <string_view>

namespace lmstream::web {

struct Asset {
  std::string_view name;          // file name under web/src, e.g. "app.js"
  std::string_view content_type;  // by extension, with charset for text
  std::string_view body;
};

// The embedded file called `name`; nullptr when there is none.
const Asset* find_asset(std::string_view name);

}  // namespace lmstream::web

// The names of http/ (the Beast server plumbing) that server/ code uses, brought into
// lmstream::server so routes, the pump and the SageMaker layer spell them as before. Only
// using-declarations live here: nothing of the plumbing, nothing of server/ itself.
#pragma once

#include "http/server.h"

namespace lmstream::server {

using http::AccessInfo;
using http::Clock;
using http::Exchange;
using http::Handler;
using http::Header;
using http::HttpLimits;
using http::HttpRequest;
using http::HttpResponse;
using http::HttpServer;
using http::RouteTable;

}  // namespace lmstream::server

// Runs `lmstream serve`: listens at once (/ping answers 503 while the model loads), loads the
// model and runs a warm-up step in the background, serves until SIGTERM/SIGINT, then stops
// accepting, lets in-flight requests finish within the grace period, cancels the rest, exits.
#pragma once

#include "server/config.h"
#include "server/model_backend.h"

namespace lmstream::server {

// Returns the process exit code (0 after a graceful shutdown). `notes` (what resolving the
// configuration said: settings accepted but not honoured, unknown keys, test knobs) are logged
// first, through the server's logger, so they carry its timestamps and --log-format.
int serve(ServeConfig cfg, BackendOptions backend, const std::vector<ConfigMessage>& notes = {});

}  // namespace lmstream::server

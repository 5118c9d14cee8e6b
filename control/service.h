// `lmstream control-plane`: one HTTP port that serves both boto3 clients at the same
// endpoint_url. POST / with X-Amz-Target: SageMaker.<Operation> (JSON 1.1) goes to the
// ControlPlane; POST /endpoints/{name}/invocations[-response-stream] is proxied to a worker of
// the endpoint, its bytes passed through as they arrive (event-stream messages forwarded whole,
// so a worker that dies mid-stream ends the stream with a ModelStreamError instead of a torn
// frame); GET /metrics carries every worker's metrics with endpoint/variant/instance labels;
// GET /ping answers 200. SigV4 (service sagemaker) guards both planes when keys are configured,
// verified by aws/sigv4 as `serve` does.
#pragma once

#include <string>

#include "control/plane.h"

namespace lmstream::control {

struct ServiceConfig {
  PlaneConfig plane;
  std::string host = "127.0.0.1";
  int port = 8080;
  bool wait_for_in_service = false;
  int io_threads = 4;
  // Fair-class time slice of the io threads (the proxy), µs; 0 = the kernel's default
  // (http::run_io_threads).
  int io_slice_us = 0;
  // SigV4 keys (as `lmstream serve` takes them).
  std::string aws_access_key_id, aws_secret_access_key, aws_credentials_file;
  std::string region;  // accepted SigV4 region ("" = any); also the ARN region fallback
};

// Runs until SIGTERM/SIGINT; returns the exit code.
int run_service(ServiceConfig cfg);

// Adds endpoint/variant/instance labels to every sample of a worker's Prometheus text.
std::string relabel_metrics(const std::string& text, const std::string& labels);

}  // namespace lmstream::control

"""Shared helpers of the integration tests in tests/test_*.py, one home per concern:

- paths: the lmstream binary (LMSTREAM_BINARY), source and build trees, the shared tokenizer
  (LMSTREAM_SHARED_DIR, else SOURCE/../shared)
- models: make-test-model, with read-only models cached in the build tree
- server: `lmstream serve` on a free loopback port (Server, free_port)
- http: raw-socket POST and TGI SSE framing
- aws: boto3 sagemaker-runtime client (imported on its own: needs boto3)
- hub_server: a Hugging Face Hub on loopback with fault knobs (imported on its own)

Importable as `lmstest` because the tests sit beside it (and CTest puts tests/ on PYTHONPATH).
Tests import from here, never from one another."""
import os as _os

from .http import raw_post, sse_events
from .models import cached_model, make_test_model, micro_model
from .paths import (SANITIZED, binary, binary_path, build_binary, build_dir, python_client_dir, reference_dir,
                    shared_dir, source_dir, tokenizer_path)
from .server import Server, free_port

__all__ = ["SANITIZED", "Server", "binary", "binary_path", "build_binary", "build_dir", "cached_model",
           "free_port", "make_test_model", "micro_model", "python_client_dir", "raw_post", "reference_dir",
           "shared_dir", "source_dir", "sse_events", "tokenizer_path"]

# `serve` binds to HOSTNAME when no --host is given, as TGI's launcher does; a container's
# exported HOSTNAME (its own name, as Docker sets it) must not move the servers the tests start.
_os.environ.pop("HOSTNAME", None)

"""Where things are: the lmstream binary, the source and build trees, the shared tokenizer.

Every lookup is an environment variable first (CTest sets LMSTREAM_BINARY, LMSTREAM_SOURCE_DIR
and LMSTREAM_BUILD_DIR) and one fallback, so a test run by hand from a checkout finds the same."""
import os

SANITIZED = os.environ.get("LMSTREAM_SANITIZED") == "1"

_TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source_dir():
    """LMSTREAM_SOURCE_DIR, else the checkout this package sits in (tests/..)."""
    return os.path.abspath(os.environ.get("LMSTREAM_SOURCE_DIR") or os.path.dirname(_TESTS_DIR))


def build_dir():
    """LMSTREAM_BUILD_DIR, else SOURCE/build."""
    return os.path.abspath(os.environ.get("LMSTREAM_BUILD_DIR") or os.path.join(source_dir(), "build"))


def binary_path():
    """Where the lmstream executable should be: LMSTREAM_BINARY, else BUILD/cli/lmstream (unchecked)."""
    return os.environ.get("LMSTREAM_BINARY") or os.path.join(build_dir(), "cli", "lmstream")


def binary():
    """The lmstream executable (binary_path()); AssertionError when it is not an executable file."""
    b = binary_path()
    if not os.path.isfile(b) or not os.access(b, os.X_OK):
        raise AssertionError("no executable lmstream binary at %r (set LMSTREAM_BINARY)" % b)
    return b


def build_binary(*rel):
    """A binary in the build tree, e.g. build_binary("aws", "aws_tests"); AssertionError if absent."""
    b = os.path.join(build_dir(), *rel)
    if not os.access(b, os.X_OK):
        raise AssertionError("%s is missing: build the %s target first" % (b, rel[-1]))
    return b


def shared_dir():
    """Shared reference material: LMSTREAM_SHARED_DIR, else SOURCE/../shared."""
    return os.path.normpath(os.environ.get("LMSTREAM_SHARED_DIR") or os.path.join(source_dir(), "..", "shared"))


def tokenizer_path(required=True):
    """The Llama 2 SentencePiece model in SHARED/testdata. AssertionError if required and missing."""
    p = os.path.join(shared_dir(), "testdata", "llama2-tokenizer.model")
    if required and not os.path.isfile(p):
        raise AssertionError("shared tokenizer missing: %s (set LMSTREAM_SHARED_DIR)" % p)
    return p


def reference_dir():
    """tests/reference, the float64 numpy oracle (its modules import one another by bare name, so
    the numpy tests put this directory itself on sys.path)."""
    return os.path.join(_TESTS_DIR, "reference")


def python_client_dir():
    """SOURCE/python, the lmstream_client package's project directory."""
    return os.path.join(source_dir(), "python")

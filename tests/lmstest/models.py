"""Test models made by `lmstream make-test-model`.

make_test_model() writes one where the caller says; cached_model() keeps read-only models in
BUILD/lmstest-models, keyed by the arguments and the binary (its size and mtime), so each is made
once per build rather than once per test process. Callers must not modify a cached model: copy it
(or use make_test_model) to edit one."""
import hashlib
import os
import shutil
import subprocess
import tempfile

from . import paths


def make_test_model(out, fmt, shape="micro", dtype="f32", tokenizer=False, seed=None, gqa=None, extra=()):
    """Runs make-test-model writing `out` (a .gguf file or an HF directory); returns out.
    tokenizer: True for the shared Llama 2 tokenizer, a path, or False for none."""
    args = [paths.binary(), "make-test-model", out, "--format", fmt, "--shape", shape, "--dtype", dtype]
    if seed is not None:
        args += ["--seed", str(seed)]
    if gqa is not None:
        args += ["--gqa" if gqa else "--no-gqa"]
    if tokenizer:
        args += ["--tokenizer", paths.tokenizer_path() if tokenizer is True else tokenizer]
    args += list(extra)
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                       timeout=300)
    if r.returncode != 0:
        raise AssertionError("make-test-model failed (%d): %s %s\n%s" % (r.returncode, " ".join(args[2:]),
                                                                        r.stdout, r.stderr))
    return out


_FALLBACK_CACHE = None


def _cache_dir():
    global _FALLBACK_CACHE
    d = os.path.join(paths.build_dir(), "lmstest-models")
    if os.path.isdir(paths.build_dir()):  # never creates a build tree
        try:
            os.makedirs(d, exist_ok=True)
            if os.access(d, os.W_OK):
                return d
        except OSError:
            pass
    if _FALLBACK_CACHE is None:  # no writable build tree: a cache for this process only
        _FALLBACK_CACHE = tempfile.mkdtemp(prefix="lmstest-models-")
    return _FALLBACK_CACHE


def cached_model(fmt, shape="micro", dtype="f32", tokenizer=False, seed=None, gqa=None, extra=()):
    """A model as make_test_model would write it, made at most once per binary; returns its path."""
    b = paths.binary()
    st = os.stat(b)
    key = [fmt, shape, dtype, seed, gqa, list(extra), b, st.st_size, st.st_mtime_ns]
    if tokenizer:
        tok = paths.tokenizer_path() if tokenizer is True else tokenizer
        ts = os.stat(tok)
        key += [os.path.abspath(tok), ts.st_size, ts.st_mtime_ns]
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    name = "-".join([shape, dtype, fmt] + ([] if seed is None else ["seed%s" % seed]) +
                    ([] if gqa is None else ["gqa" if gqa else "nogqa"]) + (["tok"] if tokenizer else []) + [digest])
    name += ".gguf" if fmt == "gguf" else ""
    d = _cache_dir()
    path = os.path.join(d, name)
    if os.path.exists(path):
        return path
    # Made under a private name and renamed into place, so parallel tests never see half a model.
    work = tempfile.mkdtemp(prefix=".tmp-", dir=d)
    try:
        tmp = make_test_model(os.path.join(work, name), fmt, shape, dtype, tokenizer, seed, gqa, extra)
        try:
            os.rename(tmp, path)
        except OSError:
            if not os.path.exists(path):  # another process won the race otherwise
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def micro_model():
    """The micro q8_0 GGUF model with the Llama 2 tokenizer that the serve tests use."""
    return cached_model("gguf", "micro", "q8_0", tokenizer=True)

"""A Hugging Face Hub for tests, on loopback, stdlib only (http.server, threaded).

It implements the routes huggingface_hub uses (../shared/reference/model-sources.md §1):
  GET  /api/models/{org}/{name}[/revision/{rev}][?blobs=True]   repo info: id, sha, siblings
  HEAD/GET /{org}/{name}/resolve/{rev}/{path}   regular files: 200, ETag = git blob sha1;
       LFS files (.safetensors, .gguf, .bin): 302 to http://localhost:<cdn port>/cdn/<sha256>
       on a second server (another host name, so a client must drop the token), with
       X-Linked-Etag = sha256, X-Linked-Size, X-Repo-Commit
  GET  /cdn/<sha256>   (the second server) the bytes, with Range
Errors carry X-Error-Code: RepoNotFound (401 without a token, else 404), GatedRepo (401 without a
token, 403 with a wrong one), RevisionNotFound, EntryNotFound (+ X-Repo-Commit).

Every request is recorded (server, method, path, Authorization, Range, Accept-Encoding) in
`requests`. Fault knobs, settable while it runs: `drop_once_after` (close the connection after N
body bytes of the next file transfer, once), `corrupt` (flip one byte of every transfer of these
sha256s), `stall_after` + `stall_seconds` (stop sending after N bytes), `rate` (bytes/s cap per
connection), `ignore_range`, `fail_next` (answer the next N transfers 503). `renames` maps an old
repo id to a new one: its routes answer 307 with a relative Location, as the Hub does.

Usage:
    hub = HubServer(); hub.start()
    hub.add_repo("org/tiny", {"config.json": b"...", "model.safetensors": "/path/to/file"},
                 tags={"v1": None}, gated_token=None)   # None: the commit being added
    env = hub.env()   # HF_ENDPOINT
    ...; hub.stop()
"""
import hashlib
import http.server
import json
import os
import re
import socket
import socketserver
import threading
import time
import urllib.parse

LFS_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth")


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(8 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


class _File:
    def __init__(self, name, content):
        self.name = name
        self.path = None
        self.data = None
        if isinstance(content, (bytes, bytearray)):
            self.data = bytes(content)
            self.size = len(self.data)
        else:
            self.path = content
            self.size = os.path.getsize(content)
        self.lfs = name.endswith(LFS_SUFFIXES)
        if self.lfs:
            self.sha256 = hashlib.sha256(self.data).hexdigest() if self.data is not None else _sha256_file(self.path)
            self.etag = self.sha256
        else:
            if self.data is None:
                with open(self.path, "rb") as f:
                    self.data = f.read()
            self.sha256 = hashlib.sha256(self.data).hexdigest()
            self.etag = git_blob_sha1(self.data)


class _Repo:
    def __init__(self, repo_id, gated_token):
        self.id = repo_id
        self.gated_token = gated_token
        self.commits = {}  # sha -> {name: _File}
        self.refs = {}     # branch/tag -> sha


class _Threaded(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HubServer:
    def __init__(self):
        self.repos = {}
        self.requests = []
        self.lock = threading.Lock()
        self.blobs = {}  # sha256 -> _File (for the CDN)
        self.drop_once_after = None
        self.corrupt = set()
        self.stall_after = None
        self.stall_seconds = 0
        self.rate = None
        self.ignore_range = False
        self.fail_next = 0  # answer the next N file transfers with 503
        self.renames = {}   # old repo id -> new one: 307 with a relative Location, as the Hub
        self.ghosts = set()  # (repo id, file): listed by the API, EntryNotFound on resolve
        self._servers = []
        self._commit_counter = 0

    # -- setup
    def add_repo(self, repo_id, files, branch="main", tags=None, gated_token=None):
        """Adds a commit of `files` (name -> bytes or a path) on `branch`; returns its sha.
        tags: names to point at this commit."""
        repo = self.repos.get(repo_id) or _Repo(repo_id, gated_token)
        if gated_token is not None:
            repo.gated_token = gated_token
        self._commit_counter += 1
        sha = hashlib.sha1(("%s-%d-%s" % (repo_id, self._commit_counter, sorted(files))).encode()).hexdigest()
        tree = {n: _File(n, c) for n, c in files.items()}
        repo.commits[sha] = tree
        repo.refs[branch] = sha
        for t in tags or ():
            repo.refs[t] = sha
        for f in tree.values():
            if f.lfs:
                self.blobs[f.sha256] = f
        self.repos[repo_id] = repo
        return sha

    def start(self):
        self.hub = _Threaded(("127.0.0.1", 0), self._handler("hub"))
        self.cdn = _Threaded(("127.0.0.1", 0), self._handler("cdn"))
        for s in (self.hub, self.cdn):
            t = threading.Thread(target=s.serve_forever, daemon=True)
            t.start()
            self._servers.append(s)
        self.endpoint = "http://127.0.0.1:%d" % self.hub.server_address[1]
        # Another host name for the same loopback address: a redirect there changes host.
        self.cdn_base = "http://localhost:%d" % self.cdn.server_address[1]
        return self

    def stop(self):
        for s in self._servers:
            s.shutdown()
            s.server_close()
        self._servers = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def env(self):
        return {"HF_ENDPOINT": self.endpoint}

    def count(self, server=None):
        with self.lock:
            return len([r for r in self.requests if server is None or r["server"] == server])

    def clear_log(self):
        with self.lock:
            self.requests.clear()

    # -- serving
    def _handler(self, which):
        hub = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _record(self):
                with hub.lock:
                    hub.requests.append({"server": which, "method": self.command, "path": self.path,
                                         "authorization": self.headers.get("Authorization"),
                                         "range": self.headers.get("Range"),
                                         "accept_encoding": self.headers.get("Accept-Encoding")})

            def do_HEAD(self):
                self._record()
                hub._route(self, which, head=True)

            def do_GET(self):
                self._record()
                hub._route(self, which, head=False)

        return H

    def _send(self, h, status, headers=(), body=b"", head=False):
        h.send_response(status)
        hd = dict(headers)
        hd.setdefault("Content-Length", str(len(body)))
        for k, v in hd.items():
            h.send_header(k, v)
        h.end_headers()
        if not head and body:
            h.wfile.write(body)

    def _error(self, h, status, code, message, extra=(), head=False):
        body = json.dumps({"error": message}).encode()
        hd = [("X-Error-Code", code), ("X-Error-Message", message), ("Content-Type", "application/json"),
              ("X-Request-Id", "Root=1-test")] + list(extra)
        self._send(h, status, hd, body, head)

    def _auth(self, h, repo, head):
        """None when the caller may read the repo, else the error has been sent."""
        auth = h.headers.get("Authorization") or ""
        if repo.gated_token is None:
            return None
        if auth == "Bearer " + repo.gated_token:
            return None
        if not auth:
            self._error(h, 401, "GatedRepo", "Access to model %s is restricted. You must be authenticated to access "
                        "it." % repo.id, head=head)
        else:
            self._error(h, 403, "GatedRepo", "Access to model %s is restricted and you are not in the authorized "
                        "list. Visit https://huggingface.co/%s to ask for access." % (repo.id, repo.id), head=head)
        return "denied"

    def _repo_or_error(self, h, repo_id, head):
        repo = self.repos.get(repo_id)
        if repo is None:
            if h.headers.get("Authorization"):
                self._error(h, 404, "RepoNotFound", "Repository not found", head=head)
            else:
                self._error(h, 401, "RepoNotFound", "Invalid username or password.", head=head)
            return None
        if self._auth(h, repo, head):
            return None
        return repo

    def _commit(self, repo, rev):
        if rev in repo.commits:
            return rev
        return repo.refs.get(rev)

    def _route(self, h, which, head):
        u = urllib.parse.urlsplit(h.path)
        path = urllib.parse.unquote(u.path)
        if which == "cdn":
            m = re.fullmatch(r"/cdn/([0-9a-f]{64})", path)
            f = self.blobs.get(m.group(1)) if m else None
            if not f:
                return self._send(h, 404, body=b"no such blob", head=head)
            return self._bytes(h, f, head)
        for old, new in self.renames.items():
            for pre in ("/api/models/", "/"):
                if path.startswith(pre + old + "/") or path == pre + old:
                    loc = pre + new + u.path[len(pre + old):] + ("?" + u.query if u.query else "")
                    return self._send(h, 307, [("Location", loc)], b"", head)
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/(.+))?", path)
        if m:
            repo = self._repo_or_error(h, m.group(1), head)
            if repo is None:
                return
            rev = m.group(2) or "main"
            sha = self._commit(repo, rev)
            if sha is None:
                return self._error(h, 404, "RevisionNotFound", "Invalid rev id: %s" % rev, head=head)
            blobs = "blobs=True" in (u.query or "")
            sib = []
            for n, f in sorted(repo.commits[sha].items()):
                s = {"rfilename": n}
                if blobs:
                    s["size"] = f.size
                    s["blobId"] = f.etag if not f.lfs else hashlib.sha1(f.sha256.encode()).hexdigest()
                    if f.lfs:
                        s["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": 134}
                sib.append(s)
            body = json.dumps({"id": repo.id, "modelId": repo.id, "sha": sha, "siblings": sib, "private": False,
                               "gated": "manual" if repo.gated_token else False,
                               "pipeline_tag": "text-generation"}).encode()
            return self._send(h, 200, [("Content-Type", "application/json")], body, head)
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            repo = self._repo_or_error(h, m.group(1), head)
            if repo is None:
                return
            rev = m.group(2)
            sha = self._commit(repo, rev)
            if sha is None:
                return self._error(h, 404, "RevisionNotFound", "Invalid rev id: %s" % rev, head=head)
            f = repo.commits[sha].get(m.group(3))
            if f is None or (repo.id, m.group(3)) in self.ghosts:
                return self._error(h, 404, "EntryNotFound", "Entry not found", [("X-Repo-Commit", sha)], head=head)
            if f.lfs:
                return self._send(h, 302, [("Location", "%s/cdn/%s" % (self.cdn_base, f.sha256)),
                                           ("X-Repo-Commit", sha), ("X-Linked-Etag", '"%s"' % f.sha256),
                                           ("X-Linked-Size", str(f.size)),
                                           ("ETag", '"%s"' % hashlib.sha1(f.sha256.encode()).hexdigest())],
                                  b"", head)
            return self._bytes(h, f, head, [("ETag", '"%s"' % f.etag), ("X-Repo-Commit", sha)])
        self._send(h, 404, body=b"not found", head=head)

    def _bytes(self, h, f, head, extra=()):
        if not head:
            with self.lock:
                fail = self.fail_next > 0
                if fail:
                    self.fail_next -= 1
            if fail:
                return self._send(h, 503, [("Retry-After", "0")], b"try again", head)
        first, last = 0, f.size - 1
        status = 200
        rng = h.headers.get("Range")
        if rng and not self.ignore_range:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not m or int(m.group(1)) >= f.size:
                return self._send(h, 416, [("Content-Range", "bytes */%d" % f.size)], b"", head)
            first = int(m.group(1))
            if m.group(2):
                last = min(int(m.group(2)), f.size - 1)
            status = 206
        n = last - first + 1
        hd = list(extra) + [("Content-Length", str(n)), ("Accept-Ranges", "bytes"),
                            ("Content-Type", "application/octet-stream")]
        if status == 206:
            hd.append(("Content-Range", "bytes %d-%d/%d" % (first, last, f.size)))
        h.send_response(status)
        for k, v in hd:
            h.send_header(k, v)
        h.end_headers()
        if head:
            return
        h.wfile.flush()
        with self.lock:
            drop = self.drop_once_after
            if drop is not None and drop < n:  # armed for the next transfer long enough to cut
                self.drop_once_after = None
            else:
                drop = None
        corrupt = f.sha256 in self.corrupt
        stall_after, rate = self.stall_after, self.rate
        plain = drop is None and not corrupt and stall_after is None and rate is None
        if plain and f.path is not None:  # fast path (benchmarks): sendfile
            with open(f.path, "rb") as src:
                off, left = first, n
                try:
                    while left > 0:
                        sent = os.sendfile(h.connection.fileno(), src.fileno(), off, min(left, 16 << 20))
                        if sent <= 0:
                            break
                        off += sent
                        left -= sent
                except (BrokenPipeError, ConnectionResetError):  # the client hung up
                    h.close_connection = True
            return
        src = open(f.path, "rb") if f.path is not None else None
        try:
            pos, sent, t0 = first, 0, time.monotonic()
            mid = f.size // 2
            chunk = 64 << 10
            while pos <= last:
                k = min(chunk, last + 1 - pos)
                if drop is not None:
                    k = min(k, max(drop - sent, 0))
                    if k == 0:
                        h.close_connection = True
                        h.connection.shutdown(socket.SHUT_RDWR)
                        return
                if stall_after is not None and sent >= stall_after:
                    time.sleep(self.stall_seconds)
                    h.close_connection = True
                    h.connection.shutdown(socket.SHUT_RDWR)
                    return
                if src is not None:
                    src.seek(pos)
                    b = bytearray(src.read(k))
                else:
                    b = bytearray(f.data[pos:pos + k])
                if corrupt and pos <= mid < pos + k:
                    b[mid - pos] ^= 0xFF
                h.wfile.write(b)
                pos += k
                sent += k
                if rate:
                    ahead = sent / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
        finally:
            if src is not None:
                src.close()


def main(argv=None):
    """`python3 -m lmstest.hub_server --repo org/name FILE...`: serve FILEs as one repo until
    killed; prints one JSON line {endpoint, cdn, repo, files: {name: cdn_url}} on stdout."""
    import argparse
    import sys
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--repo", default="org/bench")
    ap.add_argument("--rate", type=float, default=None, help="bytes/s cap per connection")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args(argv)
    hub = HubServer()
    hub.rate = a.rate
    hub.add_repo(a.repo, {os.path.basename(p): p for p in a.files})
    hub.start()
    urls = {}
    for f in hub.repos[a.repo].commits[hub.repos[a.repo].refs["main"]].values():
        urls[f.name] = ("%s/cdn/%s" % (hub.cdn_base, f.sha256)) if f.lfs else \
            "%s/%s/resolve/main/%s" % (hub.endpoint, a.repo, f.name)
    print(json.dumps({"endpoint": hub.endpoint, "cdn": hub.cdn_base, "repo": a.repo, "files": urls}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()

"""Small HTTP helpers over loopback that see the wire: a raw-socket POST that keeps the HTTP
chunk boundaries, and the exact TGI SSE framing check. Python stdlib only."""
import socket


def raw_post(server, path, body, headers=None):
    """POST over a raw socket; returns (status, headers dict lower-case, [chunk bytes, ...]) with
    the chunked transfer coding parsed by hand, so HTTP chunk boundaries are visible."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    try:
        h = {"Host": "127.0.0.1:%d" % server.port, "Content-Type": "application/json",
             "Content-Length": str(len(body)), "Connection": "close"}
        h.update(headers or {})
        req = "POST %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        s.sendall(req.encode() + body)
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    chunks = []
    if hdrs.get("transfer-encoding") == "chunked":
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line, 16)
            if n == 0:
                break
            chunks.append(rest[:n])
            assert rest[n:n + 2] == b"\r\n"
            rest = rest[n + 2:]
    else:
        chunks.append(rest)
    return status, hdrs, chunks


def sse_events(data):
    """Splits a TGI SSE body into its events' JSON texts, checking the exact framing."""
    out = []
    for ev in data.split(b"\n\n"):
        if not ev:
            continue
        if ev == b":":
            continue  # keep-alive comment
        assert ev.startswith(b"data:") and b"\n" not in ev and b"\r" not in ev, ev
        out.append(ev[5:].decode("utf-8"))
    assert data.endswith(b"\n\n"), data[-20:]
    return out

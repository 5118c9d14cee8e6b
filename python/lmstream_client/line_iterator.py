"""Turning the PayloadPart events of a SageMaker response stream back into lines and text.

SageMaker (and lmstream) relay the container's bytes as PayloadPart events whose boundaries fall
anywhere: in the middle of a line, of a JSON escape, or of a UTF-8 character. The iterators here
buffer across parts, unlike the aws-samples notebook helpers they replace:

- LineIterator: complete lines (TGI server-sent events, JSON lines), including a last line that has
  no trailing newline (the notebook version spins forever on it).
- LmiTextIterator: the text of a DJL-Serving LMI 0.25 body `{"generated_text": "..."}` as it
  arrives, with JSON escapes decoded exactly (the notebook version strips a character *set*, so a
  first token starting with one of `{"generated_text: ` loses characters, and it fails on a UTF-8
  character split across parts).
"""
import codecs
import re
import warnings

__all__ = ["payload_chunks", "LineIterator", "LmiTextIterator", "StreamFormatError"]


class StreamFormatError(ValueError):
    """The stream's bytes are not in the format the iterator decodes."""


def payload_chunks(stream):
    """Yields the bytes of each PayloadPart event of `stream` (a boto3 EventStream, or any
    iterable of {"PayloadPart": {"Bytes": b"..."}} dicts; plain bytes items are passed through).
    Other events are skipped with a warning."""
    for event in stream:
        if isinstance(event, (bytes, bytearray, memoryview)):
            yield bytes(event)
        elif isinstance(event, dict) and "PayloadPart" in event:
            yield event["PayloadPart"].get("Bytes", b"")
        else:
            kind = next(iter(event), "?") if isinstance(event, dict) else type(event).__name__
            warnings.warn(f"skipping stream event that is not a PayloadPart: {kind}")


class LineIterator:
    """Iterates over the lines of a PayloadPart stream, as bytes without the line ending
    (`\\n` or `\\r\\n`). A final line without a newline is returned too; empty lines (such as the
    blank line ending each server-sent event) are returned as b""."""

    def __init__(self, stream):
        self._chunks = payload_chunks(stream)
        self._buffer = bytearray()
        self._lines = []
        self._done = False

    def __iter__(self):
        return self

    def __next__(self):
        while not self._lines:
            if self._done:
                raise StopIteration
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._done = True
                if self._buffer:
                    self._lines.append(bytes(self._buffer))
                    self._buffer.clear()
                continue
            self._buffer += chunk
            if b"\n" not in chunk:
                continue  # no new line completed: avoid rescanning a long partial line
            *complete, rest = self._buffer.split(b"\n")
            self._lines.extend(line[:-1] if line.endswith(b"\r") else bytes(line)
                               for line in complete)
            self._buffer = bytearray(rest)
        return self._lines.pop(0)


_LMI_PREFIX = re.compile(rb'\s*\{\s*"generated_text"\s*:\s*"')
_ESCAPES = {b'"': '"', b"\\": "\\", b"/": "/", b"b": "\b", b"f": "\f", b"n": "\n", b"r": "\r",
            b"t": "\t"}


class LmiTextIterator:
    """Iterates over text pieces (str) of an LMI 0.25 rolling-batch body,
    `{"generated_text": "<JSON-escaped text>"}`, yielding each piece as soon as its bytes have
    arrived. Raises StreamFormatError if the body is not of that shape (for example an error
    object), quoting what was received."""

    def __init__(self, stream):
        self._chunks = payload_chunks(stream)
        self._pending = b""          # bytes not yet decoded
        self._state = "prefix"       # prefix -> string -> suffix
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._high_surrogate = None  # a \\uD8xx waiting for its low half
        self._seen = b""             # start of the body, for error messages

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._finish()
                raise
            if len(self._seen) < 200:
                self._seen += chunk[:200]
            text = self._feed(chunk)
            if text:
                return text

    def _fail(self, why):
        raise StreamFormatError(f"not an LMI generated_text body ({why}); received: "
                                f"{self._seen[:200]!r}")

    def _finish(self):
        if self._state == "prefix":
            self._fail("stream ended before the opening {\"generated_text\": \"")
        if self._state == "string":
            self._fail("stream ended inside the generated text")
        if self._pending.strip() not in (b"}", b""):
            self._fail("unexpected bytes after the generated text")
        if self._pending.strip() == b"":
            self._fail("missing closing }")

    def _feed(self, chunk):
        self._pending += chunk
        if self._state == "prefix":
            match = _LMI_PREFIX.match(self._pending)
            if not match:
                head = self._pending.lstrip()
                if (head and not head.startswith(b"{")) or re.search(rb':\s*\S', head) \
                        or len(self._pending) > 64:
                    self._fail("unexpected start")
                return ""
            self._pending = self._pending[match.end():]
            self._state = "string"
        if self._state == "suffix":
            if self._pending.strip() not in (b"", b"}"):
                self._fail("unexpected bytes after the generated text")
            return ""
        return self._decode_string()

    def _decode_string(self):
        out = []
        data, i = self._pending, 0
        while i < len(data):
            special = min((p for p in (data.find(b"\\", i), data.find(b'"', i)) if p >= 0),
                          default=len(data))
            if special > i:
                self._flush_surrogate(out)
                out.append(self._utf8_decode(data[i:special]))
                i = special
                continue
            if data[i:i + 1] == b'"':
                self._flush_surrogate(out)
                out.append(self._utf8_decode(b"", final=True))
                self._state = "suffix"
                self._pending = data[i + 1:]
                if self._pending.strip() not in (b"", b"}"):
                    self._fail("unexpected bytes after the generated text")
                return "".join(out)
            # A backslash escape: wait until it is complete.
            if i + 1 >= len(data):
                break
            kind = data[i + 1:i + 2]
            if kind == b"u":
                if i + 6 > len(data):
                    break
                try:
                    code = int(data[i + 2:i + 6].decode("ascii"), 16)
                except ValueError:
                    self._fail(f"bad escape {data[i:i + 6]!r}")
                i += 6
                if 0xD800 <= code <= 0xDBFF:
                    self._flush_surrogate(out)
                    self._high_surrogate = code
                elif 0xDC00 <= code <= 0xDFFF and self._high_surrogate is not None:
                    out.append(chr(0x10000 + ((self._high_surrogate - 0xD800) << 10)
                                   + (code - 0xDC00)))
                    self._high_surrogate = None
                else:
                    self._flush_surrogate(out)
                    out.append(chr(code) if not 0xDC00 <= code <= 0xDFFF else "\ufffd")
                continue
            if kind not in _ESCAPES:
                self._fail(f"bad escape {data[i:i + 2]!r}")
            self._flush_surrogate(out)
            out.append(_ESCAPES[kind])
            i += 2
        self._pending = data[i:]
        return "".join(out)

    def _utf8_decode(self, data, final=False):
        try:
            return self._utf8.decode(data, final)
        except UnicodeDecodeError as e:
            self._fail(f"invalid UTF-8: {e.reason}")

    def _flush_surrogate(self, out):
        if self._high_surrogate is not None:
            out.append("\ufffd")  # a lone high surrogate, as json.loads would reject
            self._high_surrogate = None

"""Generated text out of a response stream, whatever the container's format:
TGI server-sent events (`data:{"token": {...}}`), JSON lines (`{"token": {...}}` per line) or the
LMI 0.25 `{"generated_text": "..."}` body; also OpenAI-style chat chunks sent as events."""
import json

from .line_iterator import LineIterator, LmiTextIterator, StreamFormatError, payload_chunks

__all__ = ["StreamError", "detect_format", "iter_text"]

FORMATS = ("auto", "sse", "jsonl", "lmi")


class StreamError(RuntimeError):
    """The server reported an error inside the stream (a TGI `{"error": ...}` event)."""


def detect_format(head):
    """Guesses the format from the first bytes of a stream: "sse", "lmi" or "jsonl"."""
    text = head.lstrip()
    if text.startswith(b"data:") or text.startswith(b":") or text.startswith(b"event:"):
        return "sse"
    if text.startswith(b"{") and text[1:].lstrip().startswith(b'"generated_text"'):
        return "lmi"
    if text.startswith(b"{"):
        return "jsonl"
    raise StreamFormatError(f"cannot tell the stream format from {bytes(head[:80])!r}")


def _peek_format(chunks):
    """Reads chunks until the format is known; returns (format, list of chunks read)."""
    seen, head = [], b""
    for chunk in chunks:
        seen.append(chunk)
        head += chunk
        stripped = head.lstrip()
        # Enough bytes to tell `{"generated_text"` from `{"token"`, or clearly SSE.
        if len(stripped) >= 18 or stripped.startswith((b"data:", b":", b"event:")):
            return detect_format(head), seen
    return (detect_format(head) if head.strip() else "sse"), seen


def _text_of_event(obj):
    """The new text carried by one decoded JSON event ("" when none)."""
    if not isinstance(obj, dict):
        return ""
    if "error" in obj:
        raise StreamError(f"{obj.get('error_type', 'error')}: {obj['error']}")
    token = obj.get("token")
    if isinstance(token, dict):
        return "" if token.get("special") else token.get("text", "")
    choices = obj.get("choices")
    if isinstance(choices, list) and choices:
        delta = choices[0].get("delta") or {}
        return delta.get("content") or choices[0].get("text") or ""
    return ""


def _sse_text(lines):
    for line in lines:
        if not line.startswith(b"data:"):
            continue  # blank separators, ":" keep-alives, event:/id: fields
        data = line[5:].lstrip(b" ")
        if data == b"[DONE]":
            return
        text = _text_of_event(json.loads(data.decode("utf-8")))
        if text:
            yield text


def _jsonl_text(lines):
    for line in lines:
        if line.strip():
            text = _text_of_event(json.loads(line.decode("utf-8")))
            if text:
                yield text


def iter_text(stream, format="auto"):
    """Yields the generated text of `stream` (a boto3 EventStream, an iterable of PayloadPart
    events or of bytes) piece by piece. `format` is "auto", "sse", "jsonl" or "lmi". Special tokens
    (such as `</s>`) are left out; an error event raises StreamError."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
    chunks = payload_chunks(stream)
    seen = []
    if format == "auto":
        format, seen = _peek_format(chunks)

    def replay():
        yield from seen
        yield from chunks

    if format == "lmi":
        yield from LmiTextIterator(replay())
    elif format == "sse":
        yield from _sse_text(LineIterator(replay()))
    else:
        yield from _jsonl_text(LineIterator(replay()))

"""LineIterator and LmiTextIterator on streams re-chunked at every byte boundary."""
import json
import unittest
import warnings

from lmstream_client import LineIterator, LmiTextIterator, StreamFormatError


def parts(chunks):
    return [{"PayloadPart": {"Bytes": c}} for c in chunks]


def rechunkings(data):
    """The whole stream in one part, one byte per part, and split in two at every boundary (with
    an empty PayloadPart in between, which is legal)."""
    yield [data]
    yield [data[i:i + 1] for i in range(len(data))]
    for i in range(len(data) + 1):
        yield [data[:i], b"", data[i:]]


SSE = (b'data:{"token":{"id":15043,"text":" Hello","logprob":-0.1,"special":false},'
       b'"generated_text":null,"details":null}\n\n'
       b':\n\n'
       b'data:{"token":{"id":1,"text":" caf\xc3\xa9 \xf0\x9f\x98\x80","special":false}}\n\n'
       b'data:{"token":{"id":2,"text":"</s>","special":true},"generated_text":"Hello"}\n\n')


class LineIteratorTest(unittest.TestCase):
    def test_sse_lines_at_every_split(self):
        expected = SSE.split(b"\n")[:-1]
        for chunks in rechunkings(SSE):
            self.assertEqual(list(LineIterator(parts(chunks))), expected)

    def test_last_line_without_newline_is_returned(self):
        data = b'{"token": {"text": "a"}}\n{"token": {"text": "b"}}'
        for chunks in rechunkings(data):
            self.assertEqual(list(LineIterator(parts(chunks))),
                             [b'{"token": {"text": "a"}}', b'{"token": {"text": "b"}}'])

    def test_crlf_line_endings_are_removed(self):
        for chunks in rechunkings(b"data:1\r\n\r\ndata:2\r\n"):
            self.assertEqual(list(LineIterator(parts(chunks))), [b"data:1", b"", b"data:2"])

    def test_empty_stream_and_plain_bytes(self):
        self.assertEqual(list(LineIterator([])), [])
        self.assertEqual(list(LineIterator(parts([b""]))), [])
        self.assertEqual(list(LineIterator([b"a\nb", b"c\n"])), [b"a", b"bc"])

    def test_other_events_are_skipped_with_a_warning(self):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = list(LineIterator([{"SomethingElse": {}}] + parts([b"x\n"])))
        self.assertEqual(got, [b"x"])
        self.assertIn("SomethingElse", str(caught[0].message))


def lmi_body(text):
    return b'{"generated_text": "' + json.dumps(text, ensure_ascii=False)[1:-1].encode() + b'"}'


class LmiTextIteratorTest(unittest.TestCase):
    def check(self, text, body=None):
        body = lmi_body(text) if body is None else body
        for chunks in rechunkings(body):
            got = list(LmiTextIterator(parts(chunks)))
            self.assertEqual("".join(got), text, chunks)
            self.assertTrue(all(got), "no empty pieces")

    def test_first_token_starting_with_prefix_characters_is_kept(self):
        # The notebook's lstrip(b'{"generated_text": "') would eat " the" -> "he", "genera" -> "".
        for text in [" the end", "generated", 'x"} tail"}', "{\"a\": 1}", ' "quoted"']:
            self.check(text)

    def test_escapes_and_utf8_split_anywhere(self):
        self.check("line1\nline2\t\\ \"q\" / é 中文 😀 \u2028 end")

    def test_ascii_escaped_unicode_and_surrogate_pairs(self):
        body = b'{"generated_text": "caf\\u00e9 \\ud83d\\ude00 \\/ \\b\\f\\r"}'
        self.check("café 😀 / \b\f\r", body)

    def test_lenient_whitespace_around_the_key(self):
        self.check("ok", b'{ "generated_text" :"ok" }')

    def test_pieces_arrive_as_the_parts_do(self):
        got = list(LmiTextIterator(parts([b'{"generated_text": "Hel', b"lo", b' there!\\n\\n',
                                          b'"}'])))
        self.assertEqual(got, ["Hel", "lo", " there!\n\n"])

    def test_not_an_lmi_body_is_a_clear_error(self):
        bad_bodies = [
            b'{"error": "CUDA out of memory", "code": 424}',
            b"data:{}\n\n",
            b'{"generated_text": "unterminated',
            b'{"generated_text": "x"} trailing',
            b'{"generated_text": "x"',
            b'{"generated_text": "bad \\q escape"}',
            b'{"generated_text": "bad \xff utf8"}',
            b'{"generated_text": "\\u12"}',
            b"",
        ]
        for body in bad_bodies:
            for chunks in ([body], [body[i:i + 1] for i in range(len(body))]):
                with self.assertRaises(StreamFormatError, msg=body):
                    list(LmiTextIterator(parts(chunks)))


if __name__ == "__main__":
    unittest.main()

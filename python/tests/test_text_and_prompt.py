"""iter_text / print_response_stream over the three stream formats, the notebook entry points with
a stand-in boto3 client, and Llama 2 prompts as Meta's reference formats them."""
import io
import json
import unittest

from lmstream_client import (SYSTEM_CONTENT, StreamError, build_llama2_prompt, detect_format,
                             get_instructions, get_realtime_response_stream, iter_text,
                             print_response_stream)
from lmstream_client.line_iterator import StreamFormatError


def parts(data, size):
    return [{"PayloadPart": {"Bytes": data[i:i + size]}} for i in range(0, len(data), size)]


def tgi_sse(tokens):
    out = b""
    for i, (text, special) in enumerate(tokens):
        event = {"token": {"id": i, "text": text, "logprob": 0.0, "special": special},
                 "generated_text": None, "details": None}
        out += b"data:" + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"
    return out


TOKENS = [(" Hello", False), (" wörld", False), ("\n", False), ("</s>", True)]
TEXT = " Hello wörld\n"


class IterTextTest(unittest.TestCase):
    def test_all_formats_at_all_chunk_sizes(self):
        jsonl = b"".join(json.dumps({"token": {"text": t, "special": s}}).encode() + b"\n"
                         for t, s in TOKENS)
        lmi = b'{"generated_text": "' + json.dumps(TEXT)[1:-1].encode() + b'"}'
        openai = b"".join(b"data: " + json.dumps(
            {"choices": [{"index": 0, "delta": {"content": t}}]}).encode() + b"\n\n"
            for t, s in TOKENS if not s) + b"data: [DONE]\n\n"
        for name, data in [("sse", tgi_sse(TOKENS)), ("jsonl", jsonl), ("lmi", lmi),
                           ("openai", openai)]:
            for size in range(1, len(data) + 1):
                with self.subTest(name=name, size=size):
                    self.assertEqual("".join(iter_text(parts(data, size))), TEXT)
            fmt = "sse" if name == "openai" else name
            self.assertEqual("".join(iter_text(parts(data, 3), format=fmt)), TEXT)

    def test_detect_format(self):
        self.assertEqual(detect_format(b"data:{}"), "sse")
        self.assertEqual(detect_format(b":\n\n"), "sse")
        self.assertEqual(detect_format(b'{"generated_text": "'), "lmi")
        self.assertEqual(detect_format(b'{"token": {}}'), "jsonl")
        with self.assertRaises(StreamFormatError):
            detect_format(b"<html>")
        with self.assertRaises(ValueError):
            list(iter_text([], format="xml"))

    def test_error_event_raises_stream_error(self):
        data = tgi_sse(TOKENS[:1]) + b'data:{"error":"Request failed","error_type":"generation"}\n\n'
        it = iter_text(parts(data, 5))
        self.assertEqual(next(it), " Hello")
        with self.assertRaisesRegex(StreamError, "generation: Request failed"):
            next(it)

    def test_empty_stream_yields_nothing(self):
        self.assertEqual(list(iter_text([])), [])


class FakeRuntime:
    """Stands in for boto3.client("sagemaker-runtime")."""

    def __init__(self, body):
        self.body, self.calls = body, []

    def invoke_endpoint_with_response_stream(self, **kwargs):
        self.calls.append(kwargs)
        return {"Body": self.body, "ContentType": "text/event-stream"}


class NotebookEntryPointsTest(unittest.TestCase):
    def test_get_realtime_response_stream_sends_what_the_notebooks_send(self):
        runtime = FakeRuntime(parts(tgi_sse(TOKENS), 7))
        payload = {"inputs": "hi", "parameters": {"max_new_tokens": 5}, "stream": True}
        response = get_realtime_response_stream(runtime, "my-ep", payload)
        self.assertEqual(runtime.calls, [{"EndpointName": "my-ep", "Body": json.dumps(payload),
                                          "ContentType": "application/json",
                                          "CustomAttributes": "accept_eula=true"}])
        out = io.StringIO()
        self.assertEqual(print_response_stream(response, file=out), TEXT)
        self.assertEqual(out.getvalue(), TEXT)

    def test_print_response_stream_accepts_the_body_itself(self):
        out = io.StringIO()
        body = parts(b'{"generated_text": "a\\nb"}', 4)
        self.assertEqual(print_response_stream(body, file=out), "a\nb")


class PromptTest(unittest.TestCase):
    def test_system_and_user_as_in_the_notebooks(self):
        prompt = build_llama2_prompt([{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "What is 2+2? \n"}])
        self.assertEqual(prompt,
                         "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is 2+2? [/INST]")

    def test_strip_applies_to_the_merged_first_turn_as_in_meta_code(self):
        # Meta strips B_SYS + system + E_SYS + user as one string: the user's leading space stays
        # (the notebooks' version would drop it; Meta's reference and the HF template keep it).
        prompt = build_llama2_prompt([{"role": "system", "content": " S "},
                                      {"role": "user", "content": " u "}])
        self.assertEqual(prompt, "<s>[INST] <<SYS>>\n S \n<</SYS>>\n\n u [/INST]")

    def test_multi_turn_matches_meta_reference(self):
        prompt = build_llama2_prompt([
            {"role": "system", "content": "S"},
            {"role": "user", "content": "u1"},
            {"role": "assistant", "content": " a1 "},
            {"role": "user", "content": "u2 "},
        ])
        self.assertEqual(prompt, "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nu1 [/INST] a1 </s>"
                                 "<s>[INST] u2 [/INST]")
        self.assertEqual(build_llama2_prompt([{"role": "user", "content": "hi"}]),
                         "<s>[INST] hi [/INST]")

    def test_notebook_instructions_round_trip(self):
        msgs = get_instructions("Write an email.")
        self.assertEqual(msgs[0], {"role": "system", "content": SYSTEM_CONTENT + " "})
        self.assertTrue(SYSTEM_CONTENT.startswith("\n    You are a friendly"))
        self.assertIn("AnyCompany. \n", SYSTEM_CONTENT)
        prompt = build_llama2_prompt(msgs)
        self.assertEqual(prompt, "<s>[INST] <<SYS>>\n" + SYSTEM_CONTENT + " \n<</SYS>>\n\n"
                                 "Write an email. [/INST]")
        self.assertIsNot(get_instructions("x"), get_instructions("x"))

    def test_invalid_conversations_are_rejected(self):
        for msgs in ([], [{"role": "system", "content": "s"}],
                     [{"role": "assistant", "content": "a"}],
                     [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}],
                     [{"role": "user", "content": "u"}, {"role": "user", "content": "u"}],
                     [{"role": "user"}]):
            with self.assertRaises(ValueError, msg=msgs):
                build_llama2_prompt(msgs)


if __name__ == "__main__":
    unittest.main()

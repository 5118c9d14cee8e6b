"""Chat where SageMaker users send it: JumpStart's Llama 2 chat dialog payload
({"inputs": [[{"role", "content"}, ...]], "parameters": {...}}, a batch of dialogs, answered as
[{"generation": {"role": "assistant", "content": ...}}]) and TGI's Messages API ({"messages": ...}
on /invocations when MESSAGES_API_ENABLED=true, refused with a clear error otherwise), in TGI and
LMI modes, through real boto3 (invoke_endpoint and invoke_endpoint_with_response_stream) and plain
HTTP. Each answer is checked against the same conversation through /v1/chat/completions (greedy,
and sampled with the same seed). Needs python3 with boto3 (pyenv 3.11)."""
import json
import unittest

try:
    import botocore.exceptions
except ImportError as e:  # fail loudly: these tests must not pass without boto3
    raise SystemExit("boto3/botocore are required for this test (pyenv python3): %s" % e)

from lmstest import Server  # noqa: E402
from lmstest.aws import ENDPOINT, sagemaker_client as client  # noqa: E402

NEW = 8
DIALOG = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a colour."},
          {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "Another one?"}]
DIALOG2 = [{"role": "user", "content": "Count to three."}]


def chat_answer(server, messages, **extra):
    body = {"model": "m", "messages": messages, "max_tokens": NEW, "temperature": 0}
    body.update(extra)
    st, _, b = server.post_json("/v1/chat/completions", body)
    assert st == 200, (st, b)
    return json.loads(b)["choices"][0]["message"]["content"]


def error_text(body):
    """The message of an error body: TGI's {"error"}, DJL's {"error"} or axum's plain text."""
    try:
        j = json.loads(body)
    except ValueError:
        return body.decode()
    return j["error"] if isinstance(j.get("error"), str) else json.dumps(j)


def payload_parts(body):
    """The PayloadParts' bytes of an event stream, decoded by botocore's own parser."""
    out = b""
    for ev in body:  # botocore's EventStream: each event already parsed and CRC-checked
        if "PayloadPart" in ev:
            out += ev["PayloadPart"]["Bytes"]
        else:
            raise AssertionError("unexpected event %r" % ev)
    return out


class DialogsTgiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(["--endpoint-name", ENDPOINT, "--no-require-eula"]).start()
        cls.sm = client(cls.server)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def invoke(self, body):
        r = self.sm.invoke_endpoint(EndpointName=ENDPOINT, ContentType="application/json", Body=json.dumps(body))
        return json.loads(r["Body"].read())

    def test_dialog_equals_chat_completions_greedy(self):
        want = chat_answer(self.server, DIALOG)
        self.assertTrue(want)
        out = self.invoke({"inputs": [DIALOG], "parameters": {"max_new_tokens": NEW}})
        self.assertEqual(out, [{"generation": {"role": "assistant", "content": want}}])

    def test_batch_of_dialogs_in_order(self):
        want = [chat_answer(self.server, DIALOG2), chat_answer(self.server, DIALOG)]
        out = self.invoke({"inputs": [DIALOG2, DIALOG], "parameters": {"max_new_tokens": NEW}})
        self.assertEqual([o["generation"]["content"] for o in out], want)
        self.assertEqual([o["generation"]["role"] for o in out], ["assistant", "assistant"])

    def test_dialog_sampled_with_seed_equals_chat_completions(self):
        want = chat_answer(self.server, DIALOG, temperature=0.9, seed=1234)
        out = self.invoke({"inputs": [DIALOG], "parameters": {"max_new_tokens": NEW, "temperature": 0.9,
                                                               "seed": 1234}})
        self.assertEqual(out[0]["generation"]["content"], want)
        # A different seed is a different draw (8 tokens at temperature 0.9 on the micro model).
        other = [self.invoke({"inputs": [DIALOG], "parameters": {"max_new_tokens": NEW, "temperature": 0.9,
                                                                  "seed": s}})[0]["generation"]["content"]
                 for s in (1, 2, 3)]
        self.assertTrue(any(o != want for o in other), other)

    def test_dialog_stop_and_max_new_tokens_honoured(self):
        full = chat_answer(self.server, DIALOG)
        short = self.invoke({"inputs": [DIALOG], "parameters": {"max_new_tokens": 2}})[0]["generation"]["content"]
        self.assertEqual(short, chat_answer(self.server, DIALOG, max_tokens=2))
        self.assertTrue(full.startswith(short) and len(short) < len(full), (short, full))

    def test_dialog_on_the_streaming_operation(self):
        want = chat_answer(self.server, DIALOG)
        r = self.sm.invoke_endpoint_with_response_stream(
            EndpointName=ENDPOINT, ContentType="application/json",
            Body=json.dumps({"inputs": [DIALOG], "parameters": {"max_new_tokens": NEW}}))
        self.assertEqual(json.loads(payload_parts(r["Body"])), [{"generation": {"role": "assistant",
                                                                                "content": want}}])

    def test_dialog_on_plain_invocations(self):
        want = chat_answer(self.server, DIALOG)
        st, h, b = self.server.post_json("/invocations", {"inputs": [DIALOG], "parameters": {"max_new_tokens": NEW}})
        self.assertEqual(st, 200, b)
        self.assertEqual(h["Content-Type"], "application/json")
        self.assertEqual(json.loads(b)[0]["generation"]["content"], want)
        # One dialog without the outer list is taken as a batch of one.
        st, _, b = self.server.post_json("/invocations", {"inputs": DIALOG, "parameters": {"max_new_tokens": NEW}})
        self.assertEqual((st, json.loads(b)[0]["generation"]["content"]), (200, want))

    def test_bad_dialogs_are_clear_errors(self):
        cases = [
            ({"inputs": [[{"role": "wizard", "content": "x"}]]}, 'inputs[0][0].role must be `system`, `user` or `assistant`; given `wizard`'),
            ({"inputs": [[{"role": "user", "content": 3}]]}, "inputs[0][0].content must be a string"),
            ({"inputs": [DIALOG, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]]},
             "inputs[1]: the last message must be from the user"),
            ({"inputs": [[]]}, "inputs[0] must be a non-empty list"),
            ({"inputs": [DIALOG], "parameters": {"temperature": -1}}, "`temperature` must be strictly positive"),
            ({"inputs": [DIALOG], "parameters": {"max_new_tokens": "many"}}, "parameters.max_new_tokens: invalid type"),
        ]
        for body, want in cases:
            st, _, b = self.server.post_json("/invocations", body)
            self.assertEqual(st, 422, (body, b))
            self.assertIn(want, error_text(b), body)
            with self.assertRaises(botocore.exceptions.ClientError) as cm:
                self.invoke(body)
            err = cm.exception.response["Error"]
            self.assertEqual(err["Code"], "ModelError")
            self.assertIn(want, err["Message"])
        # The server still serves.
        self.assertEqual(self.invoke({"inputs": [DIALOG2], "parameters": {"max_new_tokens": 2}})[0]["generation"]["role"],
                         "assistant")

    def test_messages_refused_when_the_api_is_off(self):
        body = {"messages": DIALOG, "max_tokens": NEW}
        st, _, b = self.server.post_json("/invocations", body)
        self.assertEqual(st, 422)
        self.assertIn("MESSAGES_API_ENABLED=true", error_text(b))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.invoke(body)
        self.assertIn("MESSAGES_API_ENABLED=true", cm.exception.response["Error"]["Message"])
        st, _, b = self.server.request("GET", "/info")
        self.assertFalse(json.loads(b)["messages_api_enabled"])


class MessagesApiTest(unittest.TestCase):
    """MESSAGES_API_ENABLED=true, in TGI and LMI modes."""

    def check(self, api):
        with Server(["--api", api, "--endpoint-name", ENDPOINT, "--no-require-eula"],
                    env={"MESSAGES_API_ENABLED": "true"}) as server:
            st, _, b = server.request("GET", "/info")
            self.assertTrue(json.loads(b)["messages_api_enabled"])
            want = chat_answer(server, DIALOG)
            sm = client(server)
            body = {"model": "m", "messages": DIALOG, "max_tokens": NEW, "temperature": 0}
            r = sm.invoke_endpoint(EndpointName=ENDPOINT, ContentType="application/json", Body=json.dumps(body))
            out = json.loads(r["Body"].read())
            self.assertEqual(out["object"], "chat.completion")
            self.assertEqual(out["choices"][0]["message"], {"role": "assistant", "content": want})
            # Streaming: the SSE chunks as PayloadParts, ending with [DONE].
            r = sm.invoke_endpoint_with_response_stream(EndpointName=ENDPOINT, ContentType="application/json",
                                                        Body=json.dumps(dict(body, stream=True)))
            raw = payload_parts(r["Body"])
            events = [e for e in raw.decode().split("\n\n") if e]
            self.assertEqual(events[-1], "data: [DONE]")
            text = ""
            for e in events[:-1]:
                self.assertTrue(e.startswith("data: "), e)
                c = json.loads(e[6:])
                self.assertEqual(c["object"], "chat.completion.chunk")
                text += c["choices"][0]["delta"].get("content", "")
            self.assertEqual(text, want)
            # An OpenAI-shaped error for a bad chat request on /invocations.
            st, _, b = server.post_json("/invocations", {"messages": [], "max_tokens": 2})
            self.assertEqual(st, 400)
            self.assertIn("`messages` must be a non-empty list", json.loads(b)["error"]["message"])
            # The dialog payload still works next to it.
            st, _, b = server.post_json("/invocations", {"inputs": [DIALOG], "parameters": {"max_new_tokens": NEW}})
            self.assertEqual((st, json.loads(b)[0]["generation"]["content"]), (200, want))
            # And so does the API's own payload.
            st, _, b = server.post_json("/invocations", {"inputs": "Hello", "parameters": {"max_new_tokens": 2}})
            self.assertEqual(st, 200, b)

    def test_tgi(self):
        self.check("tgi")

    def test_lmi(self):
        self.check("lmi")

    def test_lmi_dialog_uses_lmi_parameters(self):
        with Server(["--api", "lmi", "--no-require-eula"]) as server:
            want = chat_answer(server, DIALOG, max_tokens=3)
            st, _, b = server.post_json("/invocations", {"inputs": [DIALOG], "parameters": {"max_new_tokens": 3}})
            self.assertEqual((st, json.loads(b)[0]["generation"]["content"]), (200, want))
            st, _, b = server.post_json("/invocations", {"inputs": [DIALOG], "parameters": {"top_p": 2}})
            self.assertEqual(st, 422, b)
            self.assertIn("`top_p` must be in (0, 1]", error_text(b))

    def test_chat_template_file(self):
        """serve --chat-template FILE: the dialogs and the chat route render with that file."""
        import os
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.jinja")
            with open(path, "w") as f:
                f.write("{% for m in messages %}{{ m['content'] }}{% endfor %}")
            with Server(["--chat-template", path, "--no-require-eula"]) as server:
                st, _, b = server.post_json("/generate", {"inputs": "Hello world", "parameters": {"max_new_tokens": NEW}})
                want = json.loads(b)["generated_text"]
                msgs = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": " world"},
                        {"role": "user", "content": ""}]
                self.assertEqual(chat_answer(server, msgs), want)
                st, _, b = server.post_json("/invocations", {"inputs": [msgs], "parameters": {"max_new_tokens": NEW}})
                self.assertEqual((st, json.loads(b)[0]["generation"]["content"]), (200, want))
                self.assertIn("chat: the template file", server.read_log())
        s = Server(["--chat-template", "/nonexistent/t.jinja"])
        with self.assertRaises(AssertionError) as cm:
            s.start()
        s.log.close()
        self.assertIn("/nonexistent/t.jinja", str(cm.exception))

    def test_bad_value_refused_at_start(self):
        s = Server([], env={"MESSAGES_API_ENABLED": "maybe"})
        with self.assertRaises(AssertionError) as cm:
            s.start()
        s.log.close()
        self.assertIn("MESSAGES_API_ENABLED: 'maybe' is not true or false", str(cm.exception))


if __name__ == "__main__":
    unittest.main()

"""Event-stream bytes from our C++ encoder (aws/eventstream.cc) decode with botocore's own
parser: EventStreamBuffer (both CRCs verified) and the sagemaker-runtime EventStream that boto3's
invoke_endpoint_with_response_stream returns, including ModelStreamError raised as EventStreamError.

The bytes come from the gtest BotocoreFixture.WriteEventStream in aws_tests, which writes them
into the directory named by LMSTREAM_EVENTSTREAM_FIXTURE_DIR (it is skipped when that is unset)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

try:
    import botocore.session
    from botocore.eventstream import ChecksumMismatch, EventStream, EventStreamBuffer
    from botocore.exceptions import EventStreamError
    from botocore.parsers import create_parser
except ImportError as e:  # pragma: no cover - reported as a failure below
    botocore = None
    IMPORT_ERROR = e

from lmstest import build_binary  # noqa: E402


class FakeRawStream:
    """What botocore's EventStream reads from: .stream() yields byte chunks."""

    def __init__(self, data, chunk):
        self.data, self.chunk = data, chunk

    def stream(self):
        for i in range(0, len(self.data), self.chunk):
            yield self.data[i:i + self.chunk]

    def close(self):
        pass


class EventStreamFromOurEncoder(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if botocore is None:
            raise AssertionError(f"botocore is required for this test: {IMPORT_ERROR}")
        binary = build_binary("aws", "aws_tests")
        cls.tmp = tempfile.TemporaryDirectory()
        env = dict(os.environ, LMSTREAM_EVENTSTREAM_FIXTURE_DIR=cls.tmp.name)
        run = subprocess.run([binary, "--gtest_filter=BotocoreFixture.WriteEventStream"],
                             env=env, capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            raise AssertionError(f"fixture writer failed:\n{run.stdout}\n{run.stderr}")

        def read(name):
            with open(os.path.join(cls.tmp.name, name), "rb") as f:
                return f.read()

        cls.stream = read("stream.bin")
        cls.internal_failure = read("internal_failure.bin")
        cls.manifest = json.loads(read("manifest.json"))
        model = botocore.session.get_session().get_service_model("sagemaker-runtime")
        op = model.operation_model("InvokeEndpointWithResponseStream")
        cls.body_shape = op.output_shape.members["Body"]
        cls.parser = create_parser(model.metadata["protocol"])._event_stream_parser

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_event_stream_buffer_decodes_every_message_at_any_chunking(self):
        for chunk in (1, 5, 108, 4096, len(self.stream)):
            buf = EventStreamBuffer()
            messages = []
            for i in range(0, len(self.stream), chunk):
                buf.add_data(self.stream[i:i + chunk])
                messages.extend(buf)
            self.assertEqual(len(messages), len(self.manifest), chunk)
            for msg, want in zip(messages, self.manifest):
                if want["kind"] == "PayloadPart":
                    self.assertEqual(msg.headers, {":event-type": "PayloadPart",
                                                   ":content-type": "application/octet-stream",
                                                   ":message-type": "event"})
                    self.assertEqual(msg.payload, bytes.fromhex(want["payload_hex"]))
                    self.assertEqual(msg.to_response_dict()["status_code"], 200)
                else:
                    self.assertEqual(msg.headers, {":exception-type": "ModelStreamError",
                                                   ":content-type": "application/json",
                                                   ":message-type": "exception"})
                    self.assertEqual(json.loads(msg.payload),
                                     {"Message": want["message"], "ErrorCode": want["error_code"]})
                    self.assertEqual(msg.to_response_dict()["status_code"], 400)

    def test_boto3_response_body_yields_payload_parts_then_raises_model_stream_error(self):
        events = []
        stream = EventStream(FakeRawStream(self.stream, 333), self.body_shape, self.parser,
                             "InvokeEndpointWithResponseStream")
        with self.assertRaises(EventStreamError) as ctx:
            for event in stream:
                events.append(event)
        parts = [m for m in self.manifest if m["kind"] == "PayloadPart"]
        self.assertEqual(events, [{"PayloadPart": {"Bytes": bytes.fromhex(p["payload_hex"])}}
                                  for p in parts])
        err = ctx.exception.response["Error"]
        self.assertEqual(err["Code"], "ModelStreamError")
        self.assertEqual(err["Message"], self.manifest[-1]["message"])

    def test_internal_stream_failure_is_raised_with_its_code(self):
        stream = EventStream(FakeRawStream(self.internal_failure, 10), self.body_shape,
                             self.parser, "InvokeEndpointWithResponseStream")
        it = iter(stream)
        self.assertEqual(next(it), {"PayloadPart": {"Bytes": b"partial"}})
        with self.assertRaises(EventStreamError) as ctx:
            next(it)
        self.assertEqual(ctx.exception.response["Error"]["Code"], "InternalStreamFailure")
        self.assertEqual(ctx.exception.response["Error"]["Message"], "oops")

    def test_botocore_really_checks_our_message_crc(self):
        # Guards the test itself: a flipped payload byte must make botocore reject the message.
        corrupt = bytearray(self.stream)
        corrupt[200] ^= 0x01
        buf = EventStreamBuffer()
        buf.add_data(bytes(corrupt))
        with self.assertRaises(ChecksumMismatch):
            list(buf)


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False, verbosity=2).result.wasSuccessful() else 1)

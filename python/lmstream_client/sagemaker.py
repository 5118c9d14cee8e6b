"""The two notebook entry points: call InvokeEndpointWithResponseStream, print the answer as it
streams. boto3 is needed only by the caller who creates the sagemaker-runtime client."""
import json
import sys

from .text import iter_text

__all__ = ["get_realtime_response_stream", "print_response_stream"]


def get_realtime_response_stream(sagemaker_runtime, endpoint_name, payload,
                                 custom_attributes="accept_eula=true"):
    """Calls invoke_endpoint_with_response_stream exactly as the aws-samples notebooks do and
    returns boto3's response dict (its "Body" is the event stream). `payload` is a dict (sent as
    JSON) or already-encoded bytes/str."""
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    kwargs = {"EndpointName": endpoint_name, "Body": body, "ContentType": "application/json"}
    if custom_attributes:
        kwargs["CustomAttributes"] = custom_attributes
    return sagemaker_runtime.invoke_endpoint_with_response_stream(**kwargs)


def print_response_stream(response_stream, format="auto", file=None):
    """Prints the generated text as it arrives and returns all of it. `response_stream` is the
    response dict of get_realtime_response_stream (or its "Body"); `format` as in iter_text."""
    out = file if file is not None else sys.stdout
    body = response_stream["Body"] if isinstance(response_stream, dict) else response_stream
    pieces = []
    for text in iter_text(body, format=format):
        pieces.append(text)
        print(text, end="", file=out, flush=True)
    return "".join(pieces)

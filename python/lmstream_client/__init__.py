"""lmstream_client: client helpers for lmstream and Amazon SageMaker response streaming.

Standard library only; pass in a boto3 `sagemaker-runtime` client where one is needed.
"""
from .line_iterator import LineIterator, LmiTextIterator, StreamFormatError, payload_chunks
from .prompt import SYSTEM_CONTENT, build_llama2_prompt, get_instructions
from .sagemaker import get_realtime_response_stream, print_response_stream
from .text import StreamError, detect_format, iter_text

__version__ = "0.1.0"
__all__ = [
    "LineIterator", "LmiTextIterator", "StreamFormatError", "StreamError", "payload_chunks",
    "iter_text", "detect_format", "build_llama2_prompt", "get_instructions", "SYSTEM_CONTENT",
    "get_realtime_response_stream", "print_response_stream",
]

# Weight number formats decoded to float64 with numpy, written from the ggml block definitions
# (engine.md §2.1) and independent of lmstream's C++ code. Used by the reference readers only.
import numpy as np

# ggml type id -> (name, elements per block, bytes per block)
GGML_TYPES = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    8: ("Q8_0", 32, 34),
    30: ("BF16", 1, 2),
}
QUANTIZED_TYPES = frozenset({2, 8})  # block-quantized ids among GGML_TYPES


class FormatError(ValueError):
    """A model file that this reference cannot or will not read."""


def f16_to_f64(raw):
    """Little-endian IEEE half bytes -> float64."""
    return np.frombuffer(bytes(raw), dtype="<f2").astype(np.float64)


def bf16_to_f64(raw):
    """Little-endian bfloat16 bytes -> float64: the 16 bits are the high half of a float32."""
    u16 = np.frombuffer(bytes(raw), dtype="<u2")
    return (u16.astype(np.uint32) << 16).view("<f4").astype(np.float64)


def dequant_q8_0(raw, n):
    """Q8_0: per 32 elements, f16 scale d then 32 int8 q; x = q*d."""
    if n % 32:
        raise FormatError(f"Q8_0 needs a multiple of 32 elements, got {n}")
    blocks = np.frombuffer(bytes(raw), dtype=np.uint8).reshape(n // 32, 34)
    d = blocks[:, 0:2].copy().view("<f2").astype(np.float64)  # [nb, 1]
    q = blocks[:, 2:34].copy().view(np.int8).astype(np.float64)  # [nb, 32]
    return (q * d).reshape(n)


def dequant_q4_0(raw, n):
    """Q4_0: per 32 elements, f16 scale d then 16 bytes; element j = (low nibble of byte j) - 8,
    element j+16 = (high nibble of byte j) - 8; x = q*d."""
    if n % 32:
        raise FormatError(f"Q4_0 needs a multiple of 32 elements, got {n}")
    blocks = np.frombuffer(bytes(raw), dtype=np.uint8).reshape(n // 32, 18)
    d = blocks[:, 0:2].copy().view("<f2").astype(np.float64)
    qs = blocks[:, 2:18].astype(np.int64)
    lo = (qs & 0x0F) - 8
    hi = (qs >> 4) - 8
    q = np.concatenate([lo, hi], axis=1).astype(np.float64)
    return (q * d).reshape(n)


def tensor_nbytes(type_id, n):
    if type_id not in GGML_TYPES:
        raise FormatError(f"unsupported ggml type {type_id}")
    _, blk, bb = GGML_TYPES[type_id]
    if n % blk:
        raise FormatError(f"{GGML_TYPES[type_id][0]} tensor of {n} elements is not whole blocks")
    return n // blk * bb


def decode(type_id, raw, n):
    """Bytes of n elements of ggml type type_id -> float64 vector of length n."""
    if len(raw) != tensor_nbytes(type_id, n):
        raise FormatError(f"tensor data has {len(raw)} bytes, expected {tensor_nbytes(type_id, n)}")
    if type_id == 0:
        return np.frombuffer(bytes(raw), dtype="<f4").astype(np.float64)
    if type_id == 1:
        return f16_to_f64(raw)
    if type_id == 30:
        return bf16_to_f64(raw)
    if type_id == 8:
        return dequant_q8_0(raw, n)
    if type_id == 2:
        return dequant_q4_0(raw, n)
    raise FormatError(f"unsupported ggml type {type_id}")

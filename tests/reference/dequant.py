# Weight number formats decoded to float64 with numpy, written from the ggml block definitions
# (engine.md §2.1) and independent of lmstream's C++ code. Used by the reference readers only.
import numpy as np

# ggml type id -> (name, elements per block, bytes per block)
GGML_TYPES = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    30: ("BF16", 1, 2),
}
QUANTIZED_TYPES = frozenset({2, 3, 6, 7, 8, 10, 11, 12, 13, 14})  # block-quantized ids


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


# The formats below follow ../shared/reference/kquants.md section 2 (ggml-common.h's block
# structs). Each decoder reshapes the bytes to [blocks, bytes per block], cuts the fields by
# offset and computes element e of every block from the stated bit positions.

def _blocks(raw, n, per, size, name):
    if n % per:
        raise FormatError(f"{name} needs a multiple of {per} elements, got {n}")
    return np.frombuffer(bytes(raw), dtype=np.uint8).reshape(n // per, size).astype(np.int64)


def _f16(col2):
    """[nb, 2] bytes -> [nb, 1] float64 of the little-endian half."""
    return (col2[:, 0] | (col2[:, 1] << 8)).astype("<u2").view("<f2").astype(np.float64)[:, None]


def _legacy_codes(qs, qh=None):
    """Legacy 32-blocks: element e < 16 is the low nibble of qs[e], e >= 16 the high nibble of
    qs[e - 16]; the 5th bit of element e is bit e of qh read as a little-endian u32."""
    q = np.concatenate([qs & 15, qs >> 4], axis=1)
    if qh is not None:
        h = qh[:, 0] | (qh[:, 1] << 8) | (qh[:, 2] << 16) | (qh[:, 3] << 24)
        q = q | (((h[:, None] >> np.arange(32)[None, :]) & 1) << 4)
    return q


def dequant_q4_1(raw, n):
    """Q4_1 {f16 d; f16 m; u8 qs[16]}: x = d*q + m."""
    b = _blocks(raw, n, 32, 20, "Q4_1")
    return (_f16(b[:, 0:2]) * _legacy_codes(b[:, 4:20]) + _f16(b[:, 2:4])).reshape(n)


def dequant_q5_0(raw, n):
    """Q5_0 {f16 d; u8 qh[4]; u8 qs[16]}: x = d*(q - 16)."""
    b = _blocks(raw, n, 32, 22, "Q5_0")
    return (_f16(b[:, 0:2]) * (_legacy_codes(b[:, 6:22], b[:, 2:6]) - 16)).reshape(n)


def dequant_q5_1(raw, n):
    """Q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}: x = d*q + m."""
    b = _blocks(raw, n, 32, 24, "Q5_1")
    q = _legacy_codes(b[:, 8:24], b[:, 4:8])
    return (_f16(b[:, 0:2]) * q + _f16(b[:, 2:4])).reshape(n)


_E = np.arange(256)
_H, _S, _L = _E // 128, (_E % 128) // 32, _E % 32  # the "128-half, 4 planes of 2 bits" indices


def _planes2(qs):
    """[nb, 64] -> [nb, 256]: element e is bits 2s..2s+1 of byte 32h + l."""
    return (qs[:, 32 * _H + _L] >> (2 * _S)) & 3


def _nibbles64(qs):
    """[nb, 128] -> [nb, 256]: element e = 64c + r is a nibble of byte 32c + r % 32, the high one
    when r >= 32."""
    c, r = _E // 64, _E % 64
    byte = qs[:, 32 * c + r % 32]
    return np.where(r < 32, byte & 15, byte >> 4)


def _scale_min_k4(sc):
    """Q4_K/Q5_K 12-byte scales -> ([nb, 8] scales, [nb, 8] mins), 6 bits each."""
    s = np.zeros((sc.shape[0], 8), dtype=np.int64)
    m = np.zeros_like(s)
    for j in range(8):
        if j < 4:
            s[:, j] = sc[:, j] & 63
            m[:, j] = sc[:, j + 4] & 63
        else:
            s[:, j] = (sc[:, j + 4] & 15) | ((sc[:, j - 4] >> 6) << 4)
            m[:, j] = (sc[:, j + 4] >> 4) | ((sc[:, j] >> 6) << 4)
    return s, m


def dequant_q2_k(raw, n):
    """Q2_K {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}: x = d*(sc & 15)*q - dmin*(sc >> 4)."""
    b = _blocks(raw, n, 256, 84, "Q2_K")
    sc = b[:, 0:16][:, _E // 16]
    q = _planes2(b[:, 16:80])
    return (_f16(b[:, 80:82]) * (sc & 15) * q - _f16(b[:, 82:84]) * (sc >> 4)).reshape(n)


def dequant_q3_k(raw, n):
    """Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}: x = d*(u - 32)*(low + 4*high - 4)."""
    b = _blocks(raw, n, 256, 110, "Q3_K")
    hm, qs, sc = b[:, 0:32], b[:, 32:96], b[:, 96:108]
    u = np.zeros((b.shape[0], 16), dtype=np.int64)
    for j in range(16):
        lo = sc[:, j] & 15 if j < 8 else sc[:, j - 8] >> 4
        hi = (sc[:, 8 + j % 4] >> (2 * (j // 4))) & 3
        u[:, j] = lo | (hi << 4)
    high = (hm[:, _E % 32] >> (_E // 32)) & 1
    q = _planes2(qs) + 4 * high - 4
    return (_f16(b[:, 108:110]) * (u[:, _E // 16] - 32) * q).reshape(n)


def dequant_q4_k(raw, n):
    """Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: x = d*s_j*q - dmin*m_j, j = e/32."""
    b = _blocks(raw, n, 256, 144, "Q4_K")
    s, m = _scale_min_k4(b[:, 4:16])
    q = _nibbles64(b[:, 16:144])
    return (_f16(b[:, 0:2]) * s[:, _E // 32] * q - _f16(b[:, 2:4]) * m[:, _E // 32]).reshape(n)


def dequant_q5_k(raw, n):
    """Q5_K {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: as Q4_K, q += 16 * (bit e/32
    of qh[e % 32])."""
    b = _blocks(raw, n, 256, 176, "Q5_K")
    s, m = _scale_min_k4(b[:, 4:16])
    qh = b[:, 16:48]
    q = _nibbles64(b[:, 48:176]) + 16 * ((qh[:, _E % 32] >> (_E // 32)) & 1)
    return (_f16(b[:, 0:2]) * s[:, _E // 32] * q - _f16(b[:, 2:4]) * m[:, _E // 32]).reshape(n)


def dequant_q6_k(raw, n):
    """Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: x = d*scales[e/16]*(q - 32), q = low
    nibble (byte 64h + 32(s & 1) + l of ql, high nibble when s >= 2) | 2 bits of qh[32h + l] << 4."""
    b = _blocks(raw, n, 256, 210, "Q6_K")
    ql, qh = b[:, 0:128], b[:, 128:192]
    sc = b[:, 192:208].astype(np.uint8).view(np.int8).astype(np.int64)
    byte = ql[:, 64 * _H + 32 * (_S & 1) + _L]
    low = np.where(_S < 2, byte & 15, byte >> 4)
    high = (qh[:, 32 * _H + _L] >> (2 * _S)) & 3
    q = low | (high << 4)
    return (_f16(b[:, 208:210]) * sc[:, _E // 16] * (q - 32)).reshape(n)


DECODERS = {3: dequant_q4_1, 6: dequant_q5_0, 7: dequant_q5_1, 10: dequant_q2_k, 11: dequant_q3_k,
            12: dequant_q4_k, 13: dequant_q5_k, 14: dequant_q6_k}


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
    if type_id in DECODERS:
        return DECODERS[type_id](raw, n)
    raise FormatError(f"unsupported ggml type {type_id}")

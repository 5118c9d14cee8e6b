# Minimal GGUF v2/v3 reader for the float64 reference (engine.md §4.8): header, metadata, tensor
# infos, alignment and tensor data, decoded with dequant.py. Independent of lmstream's C++ loader.
import struct

import numpy as np

from dequant import FormatError, decode, tensor_nbytes

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class _Cursor:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.buf):
            raise FormatError(f"GGUF truncated at byte {self.pos} (wanted {n} more)")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        return bytes(self.take(self.unpack("<Q"))).decode("utf-8")

    def value(self, vtype, depth=0):
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY and depth == 0:
            etype, count = self.unpack("<I"), self.unpack("<Q")
            if etype in _SCALARS:
                fmt = _SCALARS[etype]
                return np.frombuffer(bytes(self.take(struct.calcsize(fmt) * count)), dtype=fmt).tolist()
            return [self.value(etype, depth + 1) for _ in range(count)]
        raise FormatError(f"bad GGUF value type {vtype}")


class GGUFFile:
    """metadata: dict key -> value; tensors: dict name -> (numpy shape in PyTorch order, type, bytes)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            buf = memoryview(f.read())
        c = _Cursor(buf)
        if bytes(c.take(4)) != b"GGUF":
            raise FormatError(f"{path}: not a GGUF file (bad magic)")
        self.version = c.unpack("<I")
        if self.version not in (2, 3):
            raise FormatError(f"{path}: GGUF version {self.version} not supported (2 or 3)")
        n_tensors, n_kv = c.unpack("<Q"), c.unpack("<Q")
        self.metadata = {}
        for _ in range(n_kv):
            key = c.string()
            self.metadata[key] = c.value(c.unpack("<I"))
        infos = []
        for _ in range(n_tensors):
            name = c.string()
            n_dims = c.unpack("<I")
            if not 1 <= n_dims <= 4:
                raise FormatError(f"{path}: tensor {name} has {n_dims} dims")
            ne = [c.unpack("<Q") for _ in range(n_dims)]
            ttype, offset = c.unpack("<I"), c.unpack("<Q")
            infos.append((name, ne, ttype, offset))
        align = int(self.metadata.get("general.alignment", 32))
        if align <= 0 or align & (align - 1):
            raise FormatError(f"{path}: alignment {align} is not a power of two")
        data_start = (c.pos + align - 1) // align * align
        self.tensors = {}
        for name, ne, ttype, offset in infos:
            n = int(np.prod(ne))
            nbytes = tensor_nbytes(ttype, n)
            if offset % align:
                raise FormatError(f"{path}: tensor {name} offset {offset} not aligned to {align}")
            begin = data_start + offset
            if begin + nbytes > len(buf):
                raise FormatError(f"{path}: tensor {name} runs past the end of the file")
            shape = tuple(reversed(ne))  # ne[0] is the innermost (row length)
            self.tensors[name] = (shape, ttype, buf[begin:begin + nbytes])

    def tensor(self, name):
        """The named tensor as float64, shaped in PyTorch order ([rows, cols] for matrices)."""
        if name not in self.tensors:
            raise FormatError(f"GGUF has no tensor {name}")
        shape, ttype, raw = self.tensors[name]
        return decode(ttype, raw, int(np.prod(shape))).reshape(shape)

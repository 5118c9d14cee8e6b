# Minimal Hugging Face checkpoint reader for the float64 reference (engine.md §4.6–4.7):
# config.json plus model.safetensors, or shards listed in model.safetensors.index.json.
# Dtypes F32/F16/BF16. Independent of lmstream's C++ loader.
import json
import os
import struct

import numpy as np

from dequant import FormatError, bf16_to_f64, f16_to_f64

_DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2}


class SafetensorsFile:
    """tensors: dict name -> (shape, dtype, raw bytes)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            buf = memoryview(f.read())
        if len(buf) < 8:
            raise FormatError(f"{path}: too short for safetensors")
        n = struct.unpack("<Q", buf[:8])[0]
        if n > len(buf) - 8:
            raise FormatError(f"{path}: header length {n} exceeds the file")
        header = json.loads(bytes(buf[8:8 + n]).decode("utf-8"))
        data = buf[8 + n:]
        self.tensors = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype, shape = info["dtype"], tuple(int(s) for s in info["shape"])
            if dtype not in _DTYPE_BYTES:
                raise FormatError(f"{path}: tensor {name} has unsupported dtype {dtype}")
            begin, end = info["data_offsets"]
            if not 0 <= begin <= end <= len(data) or end - begin != int(np.prod(shape)) * _DTYPE_BYTES[dtype]:
                raise FormatError(f"{path}: tensor {name} has bad data_offsets {begin},{end}")
            self.tensors[name] = (shape, dtype, data[begin:end])


def decode(shape, dtype, raw):
    if dtype == "F32":
        v = np.frombuffer(bytes(raw), dtype="<f4").astype(np.float64)
    elif dtype == "F16":
        v = f16_to_f64(raw)
    else:
        v = bf16_to_f64(raw)
    return v.reshape(shape)


class HFCheckpoint:
    """config: the parsed config.json; tensor(name) -> float64 array in PyTorch shape."""

    def __init__(self, directory):
        with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
            self.config = json.load(f)
        index = os.path.join(directory, "model.safetensors.index.json")
        self._where = {}
        if os.path.exists(index):
            with open(index, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
            files = {}
            for name, fname in weight_map.items():
                if os.path.basename(fname) != fname:
                    raise FormatError(f"{index}: shard name {fname!r} is not a plain file name")
                if fname not in files:
                    files[fname] = SafetensorsFile(os.path.join(directory, fname))
                if name not in files[fname].tensors:
                    raise FormatError(f"{index}: {name} is not in {fname}")
                self._where[name] = files[fname]
        else:
            single = SafetensorsFile(os.path.join(directory, "model.safetensors"))
            self._where = {name: single for name in single.tensors}

    def has(self, name):
        return name in self._where

    def tensor(self, name):
        if name not in self._where:
            raise FormatError(f"checkpoint has no tensor {name}")
        return decode(*self._where[name].tensors[name])

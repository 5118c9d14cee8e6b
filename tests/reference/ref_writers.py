# Tiny numpy writers of GGUF files and HF safetensors directories, used only by the reference
# self-check (test_ref_selfcheck.py) to exercise the readers without lmstream. Writes just the
# keys/tensors the reference reads (no tokenizer), plus random Llama weights in Meta layout.
import json
import os
import struct

import numpy as np

F32, F16, Q4_0, Q8_0, BF16 = 0, 1, 2, 8, 30


def random_meta_weights(rng, dim=16, n_layers=2, n_heads=4, n_kv_heads=2, ffn=48, vocab=40):
    """dict of float32 arrays in Meta's (interleaved-RoPE) row order, PyTorch [out, in] shapes."""
    hd = dim // n_heads
    r = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
    w = {"tok": r(vocab, dim), "out_norm": (1 + r(dim)), "output": r(vocab, dim), "layers": []}
    for _ in range(n_layers):
        w["layers"].append({"attn_norm": 1 + r(dim), "wq": r(n_heads * hd, dim), "wk": r(n_kv_heads * hd, dim),
                            "wv": r(n_kv_heads * hd, dim), "wo": r(dim, n_heads * hd), "ffn_norm": 1 + r(dim),
                            "w_gate": r(ffn, dim), "w_up": r(ffn, dim), "w_down": r(dim, ffn)})
    w.update(dim=dim, n_heads=n_heads, n_kv_heads=n_kv_heads, ffn=ffn, vocab=vocab, n_layers=n_layers)
    return w


def meta_to_hf_rows(w, n_heads):
    """HF converter permutation: within a head, Meta row 2i+j becomes HF row j*(hd/2)+i."""
    rows, cols = w.shape
    hd = rows // n_heads
    return w.reshape(n_heads, hd // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


# ---- quantizers (ggml reference semantics, engine.md §2.1) ----

def quant_q8_0(x):
    b = x.astype(np.float32).reshape(-1, 32)
    d = np.abs(b).max(axis=1) / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0).astype(np.float32)
    q = np.round(b * inv[:, None]).astype(np.int8)
    out = np.zeros((b.shape[0], 34), np.uint8)
    out[:, 0:2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def quant_q4_0(x):
    b = x.astype(np.float32).reshape(-1, 32)
    idx = np.abs(b).argmax(axis=1)
    mx = b[np.arange(b.shape[0]), idx]
    d = mx / -8.0
    inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = np.minimum(15, np.trunc(b * inv[:, None] + 8.5)).astype(np.uint8)
    out = np.zeros((b.shape[0], 18), np.uint8)
    out[:, 0:2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def encode(x, ttype):
    if ttype == F32:
        return x.astype("<f4").tobytes()
    if ttype == F16:
        return x.astype("<f2").tobytes()
    if ttype == BF16:  # round to nearest even on the float32 bits
        u = x.astype("<f4").view(np.uint32).astype(np.uint64)
        return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()
    if ttype == Q8_0:
        return quant_q8_0(x)
    if ttype == Q4_0:
        return quant_q4_0(x)
    raise ValueError(ttype)


# ---- GGUF ----

def _s(text):
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, w, ttype=F32, rms_eps=1e-5, theta=10000.0, alignment=32, tied=False):
    kv = [("general.architecture", 8, _s("llama")), ("general.alignment", 4, struct.pack("<I", alignment)),
          ("llama.block_count", 4, struct.pack("<I", w["n_layers"])),
          ("llama.embedding_length", 4, struct.pack("<I", w["dim"])),
          ("llama.feed_forward_length", 4, struct.pack("<I", w["ffn"])),
          ("llama.attention.head_count", 4, struct.pack("<I", w["n_heads"])),
          ("llama.attention.head_count_kv", 4, struct.pack("<I", w["n_kv_heads"])),
          ("llama.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", rms_eps)),
          ("llama.rope.freq_base", 6, struct.pack("<f", theta)),
          ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 2) + struct.pack("<2f", 0.5, -1.0))]
    tensors = [("token_embd.weight", w["tok"], ttype)]
    for i, L in enumerate(w["layers"]):
        names = {"attn_norm": "attn_norm", "wq": "attn_q", "wk": "attn_k", "wv": "attn_v", "wo": "attn_output",
                 "ffn_norm": "ffn_norm", "w_gate": "ffn_gate", "w_up": "ffn_up", "w_down": "ffn_down"}
        for k, n in names.items():
            tensors.append((f"blk.{i}.{n}.weight", L[k], F32 if L[k].ndim == 1 else ttype))
    tensors.append(("output_norm.weight", w["out_norm"], F32))
    if not tied:
        tensors.append(("output.weight", w["output"], ttype))
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, vt, val in kv:
        head += _s(key) + struct.pack("<I", vt) + val
    blobs, offset = [], 0
    for name, x, tt in tensors:
        data = encode(x, tt)
        dims = list(reversed(x.shape))
        head += _s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        head += struct.pack("<IQ", tt, offset)
        pad = (-len(data)) % alignment
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    head += b"\0" * ((-len(head)) % alignment)
    with open(path, "wb") as f:
        f.write(head + b"".join(blobs))


# ---- HF safetensors ----

def _safetensors(path, arrays, dtype):
    header, blobs, off = {}, [], 0
    for name, x in arrays.items():
        data = encode(x, {"F32": F32, "F16": F16, "BF16": BF16}[dtype])
        header[name] = {"dtype": dtype, "shape": list(x.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_hf(directory, w, dtype="F32", rms_eps=1e-5, theta=10000.0, shards=1, tied=False):
    os.makedirs(directory, exist_ok=True)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": w["dim"],
           "intermediate_size": w["ffn"], "num_attention_heads": w["n_heads"],
           "num_key_value_heads": w["n_kv_heads"], "num_hidden_layers": w["n_layers"],
           "rms_norm_eps": rms_eps, "rope_theta": theta, "vocab_size": w["vocab"],
           "tie_word_embeddings": tied}
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(cfg, f)
    arrays = {"model.embed_tokens.weight": w["tok"]}
    for i, L in enumerate(w["layers"]):
        p = f"model.layers.{i}."
        arrays.update({p + "input_layernorm.weight": L["attn_norm"],
                       p + "self_attn.q_proj.weight": meta_to_hf_rows(L["wq"], w["n_heads"]),
                       p + "self_attn.k_proj.weight": meta_to_hf_rows(L["wk"], w["n_kv_heads"]),
                       p + "self_attn.v_proj.weight": L["wv"], p + "self_attn.o_proj.weight": L["wo"],
                       p + "post_attention_layernorm.weight": L["ffn_norm"],
                       p + "mlp.gate_proj.weight": L["w_gate"], p + "mlp.up_proj.weight": L["w_up"],
                       p + "mlp.down_proj.weight": L["w_down"]})
    arrays["model.norm.weight"] = w["out_norm"]
    if not tied:
        arrays["lm_head.weight"] = w["output"]
    if shards == 1:
        _safetensors(os.path.join(directory, "model.safetensors"), arrays, dtype)
        return
    names = list(arrays)
    weight_map = {}
    for s in range(shards):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: arrays[n] for n in names[s::shards]}
        _safetensors(os.path.join(directory, fname), part, dtype)
        weight_map.update({n: fname for n in part})
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)

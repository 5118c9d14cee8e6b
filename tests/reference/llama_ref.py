# Independent float64 Llama-2 forward pass used to check lmstream's numerics (engine.md §4.1–4.3).
# Reads GGUF files and Hugging Face directories itself (gguf_reader.py, hf_reader.py); shares no
# code with the C++ engine. Returns logits for every prompt position.
#
#   python3 llama_ref.py MODEL --tokens 1,2,3 --out logits.npy
import argparse
import dataclasses
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dequant import QUANTIZED_TYPES, FormatError  # noqa: E402
from gguf_reader import GGUFFile  # noqa: E402
from hf_reader import HFCheckpoint  # noqa: E402

INTERLEAVED, HALF_SPLIT = "interleaved", "half_split"


@dataclasses.dataclass
class Layer:
    attn_norm: np.ndarray  # [dim]
    wq: np.ndarray         # [n_heads*head_dim, dim]   (PyTorch [out, in])
    wk: np.ndarray         # [n_kv_heads*head_dim, dim]
    wv: np.ndarray         # [n_kv_heads*head_dim, dim]
    wo: np.ndarray         # [dim, n_heads*head_dim]
    ffn_norm: np.ndarray   # [dim]
    w_gate: np.ndarray     # [ffn, dim]
    w_up: np.ndarray       # [ffn, dim]
    w_down: np.ndarray     # [dim, ffn]


@dataclasses.dataclass
class LlamaModel:
    n_heads: int
    n_kv_heads: int
    head_dim: int
    rms_eps: float
    rope_theta: float
    rope_layout: str
    tok_embd: np.ndarray  # [vocab, dim]
    layers: list
    out_norm: np.ndarray  # [dim]
    output: np.ndarray    # [vocab, dim]
    # Matrices stored block-quantized in the file ("0.wq", ..., "output"), for act_quant below.
    quantized: frozenset = frozenset()


def load_gguf(path):
    g = GGUFFile(path)
    md = g.metadata
    arch = md.get("general.architecture")
    if arch != "llama":
        raise FormatError(f"{path}: architecture {arch!r} is not llama")
    n_layers = int(md["llama.block_count"])
    n_heads = int(md["llama.attention.head_count"])
    n_kv = int(md.get("llama.attention.head_count_kv", n_heads))
    dim = int(md["llama.embedding_length"])
    head_dim = int(md.get("llama.attention.key_length", dim // n_heads))
    rope_dims = int(md.get("llama.rope.dimension_count", head_dim))
    if rope_dims != head_dim:
        raise FormatError(f"{path}: partial rotary ({rope_dims} of {head_dim}) not supported")
    if md.get("llama.rope.scaling.type", "none") not in ("none",):
        raise FormatError(f"{path}: rope scaling not supported by the reference")
    layers = []
    for i in range(n_layers):
        t = lambda n: g.tensor(f"blk.{i}.{n}.weight")  # noqa: E731
        layers.append(Layer(t("attn_norm"), t("attn_q"), t("attn_k"), t("attn_v"), t("attn_output"),
                            t("ffn_norm"), t("ffn_gate"), t("ffn_up"), t("ffn_down")))
    tok = g.tensor("token_embd.weight")
    out_name = "output.weight" if "output.weight" in g.tensors else "token_embd.weight"  # tied
    output = tok if out_name == "token_embd.weight" else g.tensor(out_name)
    names = {"attn_q": "wq", "attn_k": "wk", "attn_v": "wv", "attn_output": "wo", "ffn_gate": "w_gate",
             "ffn_up": "w_up", "ffn_down": "w_down"}
    quantized = {f"{i}.{short}" for i in range(n_layers) for gg, short in names.items()
                 if g.tensors[f"blk.{i}.{gg}.weight"][1] in QUANTIZED_TYPES}
    if g.tensors[out_name][1] in QUANTIZED_TYPES:
        quantized.add("output")
    return LlamaModel(n_heads, n_kv, head_dim, float(md["llama.attention.layer_norm_rms_epsilon"]),
                      float(md.get("llama.rope.freq_base", 10000.0)), INTERLEAVED, tok, layers,
                      g.tensor("output_norm.weight"), output, frozenset(quantized))


def load_hf(directory):
    ck = HFCheckpoint(directory)
    c = ck.config
    dim, n_heads = int(c["hidden_size"]), int(c["num_attention_heads"])
    n_kv = int(c.get("num_key_value_heads") or n_heads)
    head_dim = int(c.get("head_dim") or dim // n_heads)
    rope_params = c.get("rope_parameters") or {}
    theta = float(c.get("rope_theta", rope_params.get("rope_theta", 10000.0)))
    if c.get("rope_scaling"):
        raise FormatError(f"{directory}: rope_scaling not supported by the reference")
    layers = []
    for i in range(int(c["num_hidden_layers"])):
        t = lambda n: ck.tensor(f"model.layers.{i}.{n}.weight")  # noqa: E731
        layers.append(Layer(t("input_layernorm"), t("self_attn.q_proj"), t("self_attn.k_proj"),
                            t("self_attn.v_proj"), t("self_attn.o_proj"), t("post_attention_layernorm"),
                            t("mlp.gate_proj"), t("mlp.up_proj"), t("mlp.down_proj")))
    tok = ck.tensor("model.embed_tokens.weight")
    output = ck.tensor("lm_head.weight") if ck.has("lm_head.weight") else tok
    return LlamaModel(n_heads, n_kv, head_dim, float(c.get("rms_norm_eps", 1e-6)), theta, HALF_SPLIT,
                      tok, layers, ck.tensor("model.norm.weight"), output)


def load(path):
    """A GGUF file or a Hugging Face directory -> LlamaModel (float64 weights)."""
    return load_hf(path) if os.path.isdir(path) else load_gguf(path)


def rms_norm(x, w, eps):
    """x * 1/sqrt(mean(x^2) + eps) * w, over the last axis."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, positions, theta, layout):
    """Rotates x [T, n_heads, head_dim] by position. Interleaved pairs (2i, 2i+1) (Meta/GGUF) or
    half-split pairs (i, i+hd/2) (HF); in both, pair i turns by pos * theta^(-2i/hd)."""
    hd = x.shape[-1]
    inv_freq = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)  # [hd/2]
    ang = positions[:, None].astype(np.float64) * inv_freq[None, :]     # [T, hd/2]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    if layout == INTERLEAVED:
        a, b = x[..., 0::2], x[..., 1::2]
    else:
        a, b = x[..., :hd // 2], x[..., hd // 2:]
    ra, rb = a * cos - b * sin, a * sin + b * cos
    out = np.empty_like(x)
    if layout == INTERLEAVED:
        out[..., 0::2], out[..., 1::2] = ra, rb
    else:
        out[..., :hd // 2], out[..., hd // 2:] = ra, rb
    return out


def silu(x):
    return x / (1.0 + np.exp(-x))


def attention(q, k, v, n_heads, n_kv_heads):
    """Causal attention. q [T, n_heads, hd]; k, v [T, n_kv_heads, hd]. Query head h reads kv head
    h // (n_heads / n_kv_heads). Returns [T, n_heads*hd]."""
    T, _, hd = q.shape
    group = n_heads // n_kv_heads
    out = np.empty_like(q)
    mask = np.triu(np.ones((T, T), dtype=bool), k=1)  # True above the diagonal = future
    for h in range(n_heads):
        kh, vh = k[:, h // group, :], v[:, h // group, :]
        s = q[:, h, :] @ kh.T / np.sqrt(hd)
        s[mask] = -np.inf
        s = np.exp(s - s.max(axis=1, keepdims=True))
        out[:, h, :] = (s / s.sum(axis=1, keepdims=True)) @ vh
    return out.reshape(T, n_heads * hd)


def q8_0_roundtrip(x, margins=None, substeps=1):
    """Rows of x quantized per 32-block to steps of d/substeps (d = amax/127; round half away from
    zero) and back: what an engine that quantizes activations for integer dot products feeds its
    quantized-weight matmuls. substeps=1 is llama.cpp's int8 Q8_0 path; 256 models int8 plus an
    int8 residual of 1/256 step. margins: list that gets, per row, the smallest distance (in
    quanta) of any element from a rounding boundary; below ~1e-4 an engine computing in float32
    may legitimately round the other way."""
    b = x.reshape(*x.shape[:-1], -1, 32)
    d = np.abs(b).max(axis=-1, keepdims=True) / (127.0 * substeps)
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
    v = b * inv
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)
    if margins is not None:
        frac = np.abs(v) - np.floor(np.abs(v))
        margins.append(np.abs(frac - 0.5).reshape(x.shape[0], -1).min(axis=1))
    return (q * d).reshape(x.shape)


def act_quant_margins(m, tokens, act_quant=1):
    """Per position, the smallest rounding-boundary distance (quanta) met by forward(act_quant)."""
    margins = []
    forward(m, tokens, act_quant=act_quant, _margins=margins)
    return np.min(np.stack(margins), axis=0) if margins else np.full(len(tokens), np.inf)


def forward(m, tokens, act_quant=False, _margins=None):
    """Logits [len(tokens), vocab] (float64) at every position 0..T-1 of the prompt. act_quant
    (False, or True/N = substeps of q8_0_roundtrip): round the input of every matmul whose weights
    are block-quantized (m.quantized), modelling engines with integer dot products; False = exact
    float64 products."""
    tokens = np.asarray(tokens, dtype=np.int64)
    vocab = m.tok_embd.shape[0]
    if tokens.ndim != 1 or len(tokens) == 0 or tokens.min() < 0 or tokens.max() >= vocab:
        raise ValueError(f"tokens must be a non-empty list of ids in [0, {vocab})")
    if m.n_heads % m.n_kv_heads:
        raise FormatError(f"{m.n_heads} heads not divisible by {m.n_kv_heads} kv heads")

    def mm(x, w, key):  # y = W x for every row x
        if act_quant and key in m.quantized:
            x = q8_0_roundtrip(x, _margins, int(act_quant))
        return x @ w.T

    T, hd = len(tokens), m.head_dim
    pos = np.arange(T)
    h = m.tok_embd[tokens]  # [T, dim]
    for i, L in enumerate(m.layers):
        # attention block
        a = rms_norm(h, L.attn_norm, m.rms_eps)
        q = mm(a, L.wq, f"{i}.wq").reshape(T, m.n_heads, hd)
        k = mm(a, L.wk, f"{i}.wk").reshape(T, m.n_kv_heads, hd)
        v = mm(a, L.wv, f"{i}.wv").reshape(T, m.n_kv_heads, hd)
        q = rope(q, pos, m.rope_theta, m.rope_layout)
        k = rope(k, pos, m.rope_theta, m.rope_layout)
        h = h + mm(attention(q, k, v, m.n_heads, m.n_kv_heads), L.wo, f"{i}.wo")
        # SwiGLU feed-forward block
        f = rms_norm(h, L.ffn_norm, m.rms_eps)
        h = h + mm(silu(mm(f, L.w_gate, f"{i}.w_gate")) * mm(f, L.w_up, f"{i}.w_up"), L.w_down, f"{i}.w_down")
    return mm(rms_norm(h, m.out_norm, m.rms_eps), m.output, "output")


def greedy(m, prompt, n_new, act_quant=False):
    """Greedy continuation (argmax at each step, full recompute): the n_new generated ids."""
    ids = list(prompt)
    for _ in range(n_new):
        ids.append(int(np.argmax(forward(m, ids, act_quant=act_quant)[-1])))
    return ids[len(prompt):]


def main(argv=None):
    ap = argparse.ArgumentParser(description="float64 reference Llama forward pass")
    ap.add_argument("model", help="GGUF file or Hugging Face directory")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--out", help="where to write logits [n_tokens, vocab] (.npy, float64)")
    ap.add_argument("--act-quant", type=int, default=0, metavar="SUBSTEPS",
                    help="round inputs of quantized-weight matmuls to steps of amax/127/SUBSTEPS per "
                         "32-block, as integer-dot-product engines do (1 = llama.cpp's int8)")
    ap.add_argument("--greedy", type=int, default=0, metavar="N",
                    help="also print the N greedy continuation ids as a JSON array")
    args = ap.parse_args(argv)
    if not args.out and not args.greedy:
        ap.error("nothing to do: give --out and/or --greedy")
    try:
        tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
        m = load(args.model)
        if args.out:
            np.save(args.out, forward(m, tokens, act_quant=args.act_quant))
        if args.greedy:
            print(json.dumps(greedy(m, tokens, args.greedy, act_quant=args.act_quant)))
    except (FormatError, ValueError, KeyError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

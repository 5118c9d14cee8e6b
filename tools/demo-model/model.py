# The Llama architecture in PyTorch exactly as lmstream runs it (and as Hugging Face's
# LlamaForCausalLM does): RMSNorm (x * rsqrt(mean(x^2) + eps) * w), rotary embeddings in the
# Hugging Face half-split layout (pair i is (i, i + head_dim/2), angle pos * theta^(-2i/head_dim)),
# grouped-query attention (query head h reads kv head h // (n_heads / n_kv_heads)), SwiGLU
# (down(silu(gate(x)) * up(x))), untied output head. Parameter names are Hugging Face's, so the
# state dict is a Hugging Face checkpoint as is.
import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclasses.dataclass
class Config:
    vocab_size: int = 3000
    dim: int = 256
    n_layers: int = 4
    n_heads: int = 8
    n_kv_heads: int = 2
    ffn_dim: int = 704
    max_pos: int = 512
    rms_eps: float = 1e-5
    rope_theta: float = 10000.0

    @property
    def head_dim(self):
        return self.dim // self.n_heads


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(c, T, device=None, dtype=torch.float32):
    hd = c.head_dim
    inv = c.rope_theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)  # [T, hd/2]


def apply_rope(x, cos, sin):
    """x [B, H, T, hd], half-split pairs."""
    h = x.shape[-1] // 2
    a, b = x[..., :h], x[..., h:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        hd = c.head_dim
        self.q_proj = nn.Linear(c.dim, c.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(c.dim, c.n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(c.dim, c.n_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(c.n_heads * hd, c.dim, bias=False)

    def forward(self, x, cos, sin, cache=None):
        """cos/sin cover this call's positions; cache (a list, [k, v] after the call) holds the
        earlier positions' rotated keys and values (KV-cached decoding)."""
        B, T, _ = x.shape
        c, hd = self.c, self.c.head_dim
        q = self.q_proj(x).view(B, T, c.n_heads, hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, c.n_kv_heads, hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, c.n_kv_heads, hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
            cache[:] = [k, v]
        S = k.shape[2]
        g = c.n_heads // c.n_kv_heads
        k = k.repeat_interleave(g, dim=1)
        v = v.repeat_interleave(g, dim=1)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        mask = torch.ones(T, S, dtype=torch.bool).triu(1 + S - T)  # query t (position S-T+t) sees keys <= it
        y = att.masked_fill(mask, float("-inf")).softmax(-1) @ v
        return self.o_proj(y.transpose(1, 2).reshape(B, T, c.n_heads * hd))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c.dim, c.ffn_dim, bias=False)
        self.up_proj = nn.Linear(c.dim, c.ffn_dim, bias=False)
        self.down_proj = nn.Linear(c.ffn_dim, c.dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c.dim, c.rms_eps)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c.dim, c.rms_eps)
        self.mlp = MLP(c)

    def forward(self, x, cos, sin, cache=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.dim)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.norm = RMSNorm(c.dim, c.rms_eps)


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Inner(c)
        self.lm_head = nn.Linear(c.dim, c.vocab_size, bias=False)
        self.apply(self._init)
        for n, p in self.named_parameters():  # GPT-2 style scaled residual projections
            if n.endswith("o_proj.weight") or n.endswith("down_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def hidden(self, ids):
        """Final-norm hidden states [B, T, dim]."""
        T = ids.shape[1]
        cos, sin = rope_tables(self.c, T, dtype=self.model.embed_tokens.weight.dtype)
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        return self.model.norm(x)

    def forward(self, ids):
        return self.lm_head(self.hidden(ids))

    @torch.no_grad()
    def greedy(self, ids, max_new, eos=2):
        """Greedy continuation of one prompt (list of ids) with a KV cache (the prompt in one pass,
        then one token per step); stops after eos (included). Returns the new ids."""
        dt = self.model.embed_tokens.weight.dtype
        cos, sin = rope_tables(self.c, len(ids) + max_new, dtype=dt)
        caches = [[] for _ in self.model.layers]
        x, pos, out = torch.tensor([list(ids)]), 0, []
        for _ in range(max_new):
            T = x.shape[1]
            h = self.model.embed_tokens(x)
            for layer, cache in zip(self.model.layers, caches):
                h = layer(h, cos[pos:pos + T], sin[pos:pos + T], cache)
            nxt = int(self.lm_head(self.model.norm(h[:, -1]))[0].argmax())
            out.append(nxt)
            pos += T
            if nxt == eos:
                break
            x = torch.tensor([[nxt]])
        return out

    @torch.no_grad()
    def greedy_recompute(self, ids, max_new, eos=2):
        """greedy() without a cache (full recompute each step): the reference greedy() is checked against."""
        out = list(ids)
        for _ in range(max_new):
            nxt = int(self.forward(torch.tensor([out]))[0, -1].argmax())
            out.append(nxt)
            if nxt == eos:
                break
        return out[len(ids):]

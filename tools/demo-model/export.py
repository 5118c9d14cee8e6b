# Writes a trained demo checkpoint (train.py's OUT/checkpoint.pt + tokenizer.model) in the formats
# lmstream loads: a Hugging Face directory (config.json, model.safetensors F32, tokenizer.model,
# tokenizer_config.json with the Llama 2 chat_template, generation_config.json) and GGUF v3 files
# (F32, Q8_0) with the tokenizer embedded. Metadata, tensor names and the Q/K row permutation to
# the interleaved RoPE layout follow model/testgen.cc (the project's own test-model writer);
# Q8_0 blocks come from tests/reference/ref_writers.py (ggml's reference quantizer).
#
#   /usr/bin/python3 tools/demo-model/export.py out/demo-train models/demo
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np
import sentencepiece as spm
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))
from ref_writers import quant_q8_0  # noqa: E402

# model/testgen.cc kChatTemplate: Meta's Llama-2-chat template as HF's tokenizer_config.json has it.
CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif "
    "%}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
    "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if "
    "loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if "
    "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] "
    "== 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")

NAME = "lmstream-demo"


def hf_to_meta_rows(w, n_heads):
    """Inverse of the HF converter's permutation: HF row j*(hd/2)+i of a head becomes row 2i+j."""
    rows, cols = w.shape
    hd = rows // n_heads
    return w.reshape(n_heads, 2, hd // 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def load_checkpoint(path):
    ck = torch.load(path, map_location="cpu")
    sd = {k: v.detach().to(torch.float32).numpy() for k, v in ck["state_dict"].items()}
    return ck["config"], sd


def write_safetensors(path, arrays):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, x in arrays.items():
        data = np.ascontiguousarray(x, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(x.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_hf(out, c, sd, tok_model):
    os.makedirs(out, exist_ok=True)
    names = ["model.embed_tokens.weight"]
    for i in range(c["n_layers"]):
        p = f"model.layers.{i}."
        names += [p + n + ".weight" for n in ("input_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                                              "self_attn.v_proj", "self_attn.o_proj", "post_attention_layernorm",
                                              "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")]
    names += ["model.norm.weight", "lm_head.weight"]
    write_safetensors(os.path.join(out, "model.safetensors"), {n: sd[n] for n in names})
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": c["dim"],
           "intermediate_size": c["ffn_dim"], "num_attention_heads": c["n_heads"],
           "num_key_value_heads": c["n_kv_heads"], "num_hidden_layers": c["n_layers"], "hidden_act": "silu",
           "max_position_embeddings": c["max_pos"], "rms_norm_eps": c["rms_eps"], "rope_theta": c["rope_theta"],
           "rope_scaling": None, "vocab_size": c["vocab_size"], "tie_word_embeddings": False, "bos_token_id": 1,
           "eos_token_id": 2, "attention_bias": False, "mlp_bias": False, "torch_dtype": "float32"}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    shutil.copyfile(tok_model, os.path.join(out, "tokenizer.model"))
    tc = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
          "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None, "model_max_length": c["max_pos"],
          "legacy": False, "chat_template": CHAT_TEMPLATE}
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2, "do_sample": False, "max_new_tokens": 160}, f, indent=2)
        f.write("\n")


# ---- GGUF v3 ----
U32, I32, F32V, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9
T_F32, T_Q8_0 = 0, 8
ALIGN = 32


def _s(text):
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def _kv(key, vt, val):
    if vt == U32:
        body = struct.pack("<I", val)
    elif vt == F32V:
        body = struct.pack("<f", val)
    elif vt == BOOL:
        body = struct.pack("<B", 1 if val else 0)
    elif vt == STR:
        body = _s(val)
    else:  # (element type, values)
        et, vals = val
        body = struct.pack("<IQ", et, len(vals))
        if et == STR:
            body += b"".join(_s(v) for v in vals)
        elif et == F32V:
            body += np.asarray(vals, "<f4").tobytes()
        elif et == I32:
            body += np.asarray(vals, "<i4").tobytes()
    return _s(key) + struct.pack("<I", vt) + body


def sp_vocab(tok_model):
    sp = spm.SentencePieceProcessor(model_file=tok_model)
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        # llama.cpp token types: 1 normal, 2 unknown, 3 control, 5 unused, 6 byte
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                     else 5 if sp.is_unused(i) else 1)
    return tokens, scores, types, sp


def write_gguf(path, c, sd, tok_model, ttype):
    tokens, scores, types, sp = sp_vocab(tok_model)
    kv = [_kv("general.architecture", STR, "llama"), _kv("general.name", STR, NAME),
          _kv("general.file_type", U32, 0 if ttype == T_F32 else 7)]
    if ttype == T_Q8_0:
        kv.append(_kv("general.quantization_version", U32, 2))
    kv += [_kv("general.alignment", U32, ALIGN), _kv("llama.context_length", U32, c["max_pos"]),
           _kv("llama.embedding_length", U32, c["dim"]), _kv("llama.block_count", U32, c["n_layers"]),
           _kv("llama.feed_forward_length", U32, c["ffn_dim"]),
           _kv("llama.rope.dimension_count", U32, c["dim"] // c["n_heads"]),
           _kv("llama.attention.head_count", U32, c["n_heads"]),
           _kv("llama.attention.head_count_kv", U32, c["n_kv_heads"]),
           _kv("llama.attention.layer_norm_rms_epsilon", F32V, c["rms_eps"]),
           _kv("llama.rope.freq_base", F32V, c["rope_theta"]), _kv("llama.vocab_size", U32, c["vocab_size"]),
           _kv("tokenizer.ggml.model", STR, "llama"), _kv("tokenizer.ggml.tokens", ARR, (STR, tokens)),
           _kv("tokenizer.ggml.scores", ARR, (F32V, scores)), _kv("tokenizer.ggml.token_type", ARR, (I32, types)),
           _kv("tokenizer.ggml.bos_token_id", U32, sp.bos_id()), _kv("tokenizer.ggml.eos_token_id", U32, sp.eos_id()),
           _kv("tokenizer.ggml.unknown_token_id", U32, sp.unk_id()), _kv("tokenizer.ggml.add_bos_token", BOOL, True),
           _kv("tokenizer.ggml.add_eos_token", BOOL, False), _kv("tokenizer.ggml.add_space_prefix", BOOL, True),
           _kv("tokenizer.chat_template", STR, CHAT_TEMPLATE)]
    tensors = [("token_embd.weight", sd["model.embed_tokens.weight"])]
    for i in range(c["n_layers"]):
        p = f"model.layers.{i}."
        tensors += [(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"]),
                    (f"blk.{i}.attn_q.weight", hf_to_meta_rows(sd[p + "self_attn.q_proj.weight"], c["n_heads"])),
                    (f"blk.{i}.attn_k.weight", hf_to_meta_rows(sd[p + "self_attn.k_proj.weight"], c["n_kv_heads"])),
                    (f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"]),
                    (f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"]),
                    (f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"]),
                    (f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"]),
                    (f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"]),
                    (f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])]
    tensors += [("output_norm.weight", sd["model.norm.weight"]), ("output.weight", sd["lm_head.weight"])]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)) + b"".join(kv)
    blobs, offset = [], 0
    for name, x in tensors:
        tt = ttype if x.ndim == 2 and x.shape[1] % 32 == 0 else T_F32
        data = quant_q8_0(x) if tt == T_Q8_0 else np.ascontiguousarray(x, "<f4").tobytes()
        dims = list(reversed(x.shape))
        head += _s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        head += struct.pack("<IQ", tt, offset)
        pad = (-len(data)) % ALIGN
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    head += b"\0" * ((-len(head)) % ALIGN)
    with open(path, "wb") as f:
        f.write(head + b"".join(blobs))


def main():
    ap = argparse.ArgumentParser(description="export a train.py checkpoint for lmstream")
    ap.add_argument("train_dir", help="train.py --out directory")
    ap.add_argument("out", help="output directory (hf/, demo-f32.gguf, demo-q8_0.gguf)")
    a = ap.parse_args()
    c, sd = load_checkpoint(os.path.join(a.train_dir, "checkpoint.pt"))
    tok = os.path.join(a.train_dir, "tokenizer.model")
    os.makedirs(a.out, exist_ok=True)
    write_hf(os.path.join(a.out, "hf"), c, sd, tok)
    write_gguf(os.path.join(a.out, "demo-f32.gguf"), c, sd, tok, T_F32)
    write_gguf(os.path.join(a.out, "demo-q8_0.gguf"), c, sd, tok, T_Q8_0)
    print(f"wrote {a.out}/hf, {a.out}/demo-f32.gguf, {a.out}/demo-q8_0.gguf")


if __name__ == "__main__":
    main()

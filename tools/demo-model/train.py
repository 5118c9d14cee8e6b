# Builds the demo model from nothing, deterministically: generates the conversations (data.py; each
# slot word a random pseudo-word with probability --pseudo), trains the SentencePiece BPE tokenizer
# on the templates without slot values (data.template_texts: byte fallback, Llama 2's special ids,
# so every name, product and code falls into short pieces), trains the Llama (model.py) on the
# answers, and writes OUT/checkpoint.pt, OUT/tokenizer.model and OUT/train_log.json (loss per
# logged step). export.py turns that into the shipped files.
#
#   nice -n -15 /usr/bin/python3 tools/demo-model/train.py --out out/demo-train   # the shipped model
#   /usr/bin/python3 tools/demo-model/train.py --out /tmp/t --preset tiny --max-seconds 60
import argparse
import dataclasses
import io
import json
import math
import os
import random
import shutil
import sys
import time

import sentencepiece as spm
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from model import Config, Llama  # noqa: E402

PRESETS = {
    # name: (model config, conversations, steps, batch, lr, vocab)
    "demo": (dict(dim=192, n_layers=4, n_heads=6, n_kv_heads=2, ffn_dim=512, max_pos=512), 40000, 1600, 24, 3e-3, 1024),
    "tiny": (dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=192, max_pos=512), 3000, 60, 16, 3e-3, 1000),
}


def train_tokenizer(texts, vocab, path_prefix):
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=path_prefix, model_type="bpe", vocab_size=vocab,
        byte_fallback=True, split_digits=True, character_coverage=1.0, normalization_rule_name="identity",
        add_dummy_prefix=True, remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, unk_piece="<unk>", bos_piece="<s>", eos_piece="</s>",
        max_sentence_length=8192, num_threads=1, minloglevel=2, seed_sentencepiece_size=200000,
        input_sentence_size=0, shuffle_input_sentence=False)
    return spm.SentencePieceProcessor(model_file=path_prefix + ".model")


def encode_conversation(sp, system, user, answer):
    """ids and loss mask, tokenized exactly as engine/chat.cc tokenizes a prompt (<s> + "[INST] ...
    [/INST]") followed by the answer (" answer" -> dummy-prefixed pieces) and </s>."""
    u = (f"<<SYS>>\n{system}\n<</SYS>>\n\n{user}" if system else user).strip()
    prompt = [1] + sp.encode(f"[INST] {u} [/INST]")
    ans = sp.encode(answer.strip()) + [2]
    return prompt + ans, [0] * len(prompt) + [1] * len(ans)


def batches(examples, batch, rng):
    """Endless shuffled batches of similar length (less padding)."""
    while True:
        order = list(range(len(examples)))
        rng.shuffle(order)
        for i in range(0, len(order) - batch * 16 + 1, batch * 16):
            chunk = sorted(order[i:i + batch * 16], key=lambda j: len(examples[j][0]))
            groups = [chunk[k:k + batch] for k in range(0, len(chunk), batch)]
            rng.shuffle(groups)
            for g in groups:
                yield [examples[j] for j in g]


def collate(group):
    T = max(len(ids) for ids, _ in group)
    x = torch.zeros(len(group), T, dtype=torch.long)
    y = torch.full((len(group), T), -100, dtype=torch.long)
    for b, (ids, mask) in enumerate(group):
        x[b, :len(ids)] = torch.tensor(ids)
        tgt = [ids[t + 1] if mask[t + 1] else -100 for t in range(len(ids) - 1)]
        y[b, :len(tgt)] = torch.tensor(tgt)
    return x, y


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    ap.add_argument("--steps", type=int, help="override the preset's step count")
    ap.add_argument("--max-seconds", type=float, default=0, help="stop training after this many seconds (tests)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--init", help="continue from this train.py --out directory (its tokenizer and weights)")
    ap.add_argument("--lr", type=float, help="override the preset's peak learning rate")
    ap.add_argument("--pseudo", type=float, default=0.6, help="probability that a slot word is a random pseudo-word")
    ap.add_argument("--pseudo-kind", type=float, default=0.0, help="same for the product's kind word (stage 2)")
    ap.add_argument("--conversations", type=int, help="override the preset's number of conversations")
    ap.add_argument("--save-every", type=int, default=0, help="also write OUT/checkpoint.pt every this many steps")
    a = ap.parse_args()
    cfg_kw, n_conv, steps, batch, lr, vocab = PRESETS[a.preset]
    steps = a.steps or steps
    n_conv = a.conversations or n_conv
    lr = a.lr or lr
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()

    convs = data.training_conversations(n_conv, seed=a.seed, pseudo=a.pseudo, pseudo_kind=a.pseudo_kind)
    if a.init:
        shutil.copyfile(os.path.join(a.init, "tokenizer.model"), os.path.join(a.out, "tokenizer.model"))
        sp = spm.SentencePieceProcessor(model_file=os.path.join(a.out, "tokenizer.model"))
    else:
        sp = train_tokenizer(data.template_texts(min(15000, n_conv), seed=a.seed), vocab, os.path.join(a.out, "tokenizer"))
    examples = [encode_conversation(sp, *c) for c in convs]
    examples = [e for e in examples if len(e[0]) <= cfg_kw["max_pos"]]
    t_tok = time.time() - t0
    print(f"{len(examples)} conversations, mean {sum(len(e[0]) for e in examples) / len(examples):.0f} tokens, "
          f"tokenizer {sp.get_piece_size()} pieces ({t_tok:.0f}s)", flush=True)

    c = Config(vocab_size=sp.get_piece_size(), **cfg_kw)
    model = Llama(c)
    if a.init:
        model.load_state_dict(torch.load(os.path.join(a.init, "checkpoint.pt"))["state_dict"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model {dataclasses.asdict(c)}: {n_params / 1e6:.2f}M parameters", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)
    warm = max(1, steps // 25)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))))
    log, it, t_train, tokens = [], batches(examples, batch, rng), time.time(), 0
    model.train()
    for step in range(steps):
        x, y = collate(next(it))
        sel = y.view(-1) != -100  # the output head only where there is a loss (the answers)
        h = model.hidden(x).reshape(-1, c.dim)[sel]
        loss = F.cross_entropy(model.lm_head(h), y.view(-1)[sel])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        tokens += x.numel()
        if step % 20 == 0 or step == steps - 1:
            el = time.time() - t_train
            log.append({"step": step, "loss": round(loss.item(), 4), "seconds": round(el, 1)})
            print(f"step {step} loss {loss.item():.4f} lr {sched.get_last_lr()[0]:.2e} {el:.0f}s "
                  f"{tokens / max(el, 1e-9):.0f} tok/s", flush=True)
        if a.save_every and step % a.save_every == a.save_every - 1:
            torch.save({"config": dataclasses.asdict(c), "state_dict": model.state_dict()},
                       os.path.join(a.out, "checkpoint.pt"))
        if a.max_seconds and time.time() - t_train > a.max_seconds:
            if log[-1]["step"] != step:
                log.append({"step": step, "loss": round(loss.item(), 4), "seconds": round(time.time() - t_train, 1)})
            print(f"stopping at step {step}: --max-seconds (loss {loss.item():.4f})", flush=True)
            break
    model.eval()
    torch.save({"config": dataclasses.asdict(c), "state_dict": model.state_dict()}, os.path.join(a.out, "checkpoint.pt"))
    with open(os.path.join(a.out, "train_log.json"), "w") as f:
        json.dump({"preset": a.preset, "init": a.init, "pseudo": a.pseudo, "pseudo_kind": a.pseudo_kind, "seed": a.seed, "steps": step + 1, "batch": batch, "lr": lr,
                   "conversations": len(examples), "parameters": n_params, "config": dataclasses.asdict(c),
                   "tokenizer_seconds": round(t_tok, 1), "train_seconds": round(time.time() - t_train, 1),
                   "total_seconds": round(time.time() - t0, 1), "threads": a.threads, "log": log}, f, indent=1)
    print(f"done in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()

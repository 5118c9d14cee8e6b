# Draws the training loss of one or more train.py runs (their train_log.json, in order, as stages
# of one training) into a PNG for the model card.
#
#   /usr/bin/python3 tools/demo-model/plot_loss.py models/demo/loss.png out/demo-train out/demo-train2
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    out, runs = sys.argv[1], sys.argv[2:]
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    offset, t = 0, 0.0
    for i, r in enumerate(runs):
        log = json.load(open(os.path.join(r, "train_log.json")))
        xs = [offset + e["step"] for e in log["log"]]
        ax.plot(xs, [e["loss"] for e in log["log"]], label=f"stage {i + 1} ({log['train_seconds'] / 60:.0f} min)")
        offset = xs[-1] + 1
        t += log["total_seconds"]
    ax.set_yscale("log")
    ax.set_xlabel("step (batch of 24 conversations)")
    ax.set_ylabel("answer-token cross-entropy")
    ax.set_title(f"lmstream-demo training, 2 CPU threads, {t / 60:.0f} min in all")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main()

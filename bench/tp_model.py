#!/usr/bin/env python3
"""A written performance model of tensor-parallel decode across hosts (issue 17), calibrated by
what bench/tp.sh measured on one host. Stdlib only.

Decode at batch B is memory-bound: each step streams every weight byte once. With N ranks on N
hosts each rank streams W/N bytes at its host's bandwidth BW, and the step adds the collectives:
2 all-reduces per layer of B x H fp32 (ring: 2(N-1) latency hops and 2(N-1)/N of the bytes per
rank), one gather of the B x V/N logits to rank 0 and one plan broadcast:

  T(N) = W / (N * BW) + 2 L (2 (N-1) a + 2 (N-1)/N * 4 B H / b) + ((N-1) a + 4 B V (N-1)/N / b) + a

a = per-message latency, b = link bandwidth. tokens/s per sequence = 1 / T(N).

Usage: tp_model.py BW_GBPS [AR_US_SHM]   (BW: the effective weight-streaming bandwidth one host
reaches, from a TP=1 decode measurement: weight bytes x tok/s; AR_US_SHM: the measured
shared-memory all-reduce latency of one decode message, used as a for the 'one host' row)."""
import sys

MODELS = {  # Q8_0 weights: 34 bytes per 32 parameters
    "Llama-2-13B": dict(P=13.0e9, L=40, H=5120, V=32000),
    "Llama-2-70B": dict(P=69.0e9, L=80, H=8192, V=32000),
}
NETS = [  # (name, latency a in s, bandwidth b in bytes/s)
    ("ideal link (shm latency, 10 GB/s)", None, 10e9),
    ("10 GbE (TCP)", 30e-6, 1.25e9),
    ("25 GbE (TCP)", 15e-6, 3.1e9),
    ("100 Gb/s EFA / InfiniBand", 3e-6, 12e9),
]


def step_time(m, n, bw, a, b, batch=1):
    w = m["P"] * 34 / 32
    t = w / (n * bw)
    if n > 1:
        msg = 4 * batch * m["H"]
        t += 2 * m["L"] * (2 * (n - 1) * a + 2 * (n - 1) / n * msg / b)
        t += (n - 1) * a + 4 * batch * m["V"] * (n - 1) / n / b + a
    return t


def main():
    bw = float(sys.argv[1]) * 1e9 if len(sys.argv) > 1 else 20e9
    ar_shm = float(sys.argv[2]) * 1e-6 if len(sys.argv) > 2 else 5e-6
    print("Model: batch 1, per-host weight bandwidth %.1f GB/s; tokens/s (and the share of the step"
          " spent in collectives)\n" % (bw / 1e9))
    for name, m in MODELS.items():
        print("**%s** (Q8_0, %.1f GB of weights, %d layers, hidden %d)\n" % (name, m["P"] * 34 / 32 / 1e9, m["L"], m["H"]))
        print("| network | TP=1 | TP=2 | TP=4 | TP=8 |")
        print("|---|---|---|---|---|")
        for net, a, b in NETS:
            a = ar_shm / 2 if a is None else a  # the measured 2-rank shm all-reduce is ~2 hops
            cells = []
            for n in (1, 2, 4, 8):
                t = step_time(m, n, bw, a, b)
                comm = t - step_time(m, n, bw, 0, float("inf"))
                cells.append("%.2f (%.0f %%)" % (1 / t, 100 * comm / t))
            print("| %s | %s |" % (net, " | ".join(cells)))
        print()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Trains a small causal transformer LM with NSA and with dense attention.

The two models share everything but the attention layer: a 4-layer
pre-norm transformer (hidden 512, 8 query heads, 2 KV heads, head dim 64,
learned absolute positions, GELU MLP 4x), trained on the same batches from
the same initialisation of the shared parts, with the same optimizer
(AdamW, warmup then cosine decay, gradient clipping) under bf16 autocast:

- ``nsa``: :class:`nsa.NSAAttention` with the paper's block sizes, linear
  compression with intra-block position encoding, one K/V per branch, on
  the GPU backend (the compiler's forward and backward kernels);
- ``dense``: the same q/k/v/o projections around PyTorch's causal
  ``scaled_dot_product_attention`` (GQA by repeating K/V heads).

The data are generated here, deterministically from ``--seed``: a sparse
random Markov source over 512 tokens (each token has 4 likely successors),
into which spans of 64 tokens copied from at least 512 tokens earlier are
pasted. Inside a copied span the next token is predictable only by finding
the span's source far back (an induction / associative-recall task), so the
loss on those tokens (``copy_loss``) measures long-range attention; the
Markov tokens have an entropy floor of about ``log(4)`` nats.

It writes ``<out>/<date>-<card>-train-nsa.json`` (config, per-step training
losses, held-out losses every ``--eval-every`` steps, tokens per second) and
``...-train-nsa.png`` (both loss curves).

    # the compiler machine: NSA kernels for this shape into .gpu/nsa-kernels
    python3 examples/train_nsa.py --build-kernels .gpu/nsa-kernels
    # the GPU machine
    NSA_KERNEL_PATH=.gpu/nsa-kernels NSA_RUNTIME_LIBRARY=.gpu/runtime/libnsa_runtime.so \\
        python3 examples/train_nsa.py --out bench/results
"""

import argparse
import datetime
import json
import math
import os
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import nsa  # noqa: E402
from nsa import build_kernels as bk  # noqa: E402

VOCAB = 512
HIDDEN, LAYERS, HQ, HKV, HEAD_DIM = 512, 4, 8, 2, 64
SPAN, MIN_DISTANCE = 64, 512  # copied spans and how far back their source lies
FANOUT = 4  # likely successors per token in the Markov source


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def make_sequences(count, length, seed):
    """``count`` token sequences of ``length`` and a mask of the copied tokens.

    Markov background: token t+1 is one of FANOUT successors of token t
    (probabilities 0.4, 0.3, 0.2, 0.1), the successor table fixed by the seed.
    Then, every ~4 spans, a span of SPAN tokens is overwritten with a copy of
    an earlier span at least MIN_DISTANCE back. ``copied`` marks the copied
    tokens after the first two of each span (those an induction head can
    predict once it has found the source).
    """
    rng = np.random.default_rng(seed)
    successors = np.random.default_rng(12345).integers(0, VOCAB, size=(VOCAB, FANOUT))
    cumulative = np.cumsum([0.4, 0.3, 0.2, 0.1])
    tokens = np.empty((count, length), dtype=np.int64)
    tokens[:, 0] = rng.integers(0, VOCAB, size=count)
    choice = np.searchsorted(cumulative, rng.random((count, length)))
    for t in range(1, length):
        tokens[:, t] = successors[tokens[:, t - 1], choice[:, t]]
    copied = np.zeros((count, length), dtype=bool)
    for s in range(count):
        start = MIN_DISTANCE + SPAN
        while start + SPAN <= length:
            source = rng.integers(0, start - MIN_DISTANCE - SPAN + 1)
            tokens[s, start:start + SPAN] = tokens[s, source:source + SPAN]
            copied[s, start + 2:start + SPAN] = True
            start += SPAN * int(rng.integers(3, 6))
    return torch.from_numpy(tokens), torch.from_numpy(copied)


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------

class DenseAttention(nn.Module):
    """Causal GQA attention on scaled_dot_product_attention."""

    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(HIDDEN, HQ * HEAD_DIM, bias=False)
        self.k_proj = nn.Linear(HIDDEN, HKV * HEAD_DIM, bias=False)
        self.v_proj = nn.Linear(HIDDEN, HKV * HEAD_DIM, bias=False)
        self.o_proj = nn.Linear(HQ * HEAD_DIM, HIDDEN, bias=False)

    def forward(self, x):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, HQ, HEAD_DIM).transpose(1, 2)
        k = self.k_proj(x).view(B, T, HKV, HEAD_DIM).transpose(1, 2)
        v = self.v_proj(x).view(B, T, HKV, HEAD_DIM).transpose(1, 2)
        k, v = (t.repeat_interleave(HQ // HKV, dim=1) for t in (k, v))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(o.transpose(1, 2).reshape(B, T, HQ * HEAD_DIM))


class Block(nn.Module):
    def __init__(self, attention):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(HIDDEN), nn.LayerNorm(HIDDEN)
        self.attention = attention
        self.mlp = nn.Sequential(nn.Linear(HIDDEN, 4 * HIDDEN), nn.GELU(),
                                 nn.Linear(4 * HIDDEN, HIDDEN))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class LM(nn.Module):
    def __init__(self, attentions, T):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.position = nn.Parameter(torch.randn(T, HIDDEN) * 0.02)
        self.blocks = nn.ModuleList(Block(a) for a in attentions)
        self.norm = nn.LayerNorm(HIDDEN)
        self.head = nn.Linear(HIDDEN, VOCAB, bias=False)

    def forward(self, tokens):
        x = self.embed(tokens) + self.position[:tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def make_model(kind, T, seed):
    """The LM with ``kind`` attention. The shared parts are drawn from one
    seed and the attention layers from another, so both models start from
    the same embedding, MLPs, norms and head."""
    torch.manual_seed(seed + 1)
    if kind == "nsa":
        attentions = [nsa.NSAAttention(HIDDEN, HQ, HKV, HEAD_DIM, HEAD_DIM, nsa.NSAConfig(),
                                       backend="gpu") for _ in range(LAYERS)]
    else:
        attentions = [DenseAttention() for _ in range(LAYERS)]
    torch.manual_seed(seed)
    return LM(attentions, T)


def kernel_config(B, T):
    """The NSA kernel configuration NSAAttention asks for at this batch shape
    (bf16 under autocast, the paper's blocks, linear + PE, per-branch K/V)."""
    return bk.make_config(B=B, T=T, HQ=HQ, HKV=HKV, Dk=HEAD_DIM, Dv=HEAD_DIM, dtype="bf16",
                          compress="linear", pe=True, kv="per-branch")


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def losses(model, tokens, copied):
    """Mean next-token loss over all positions and over the copied ones."""
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = model(tokens[:, :-1])
    per_token = F.cross_entropy(logits.float().reshape(-1, VOCAB), tokens[:, 1:].reshape(-1),
                                reduction="none").view(tokens.shape[0], -1)
    mask = copied[:, 1:]
    return per_token.mean(), per_token[mask].mean()


def train(kind, data, args):
    tokens, copied, eval_tokens, eval_copied = data
    model = make_model(kind, args.T, args.seed).cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95),
                                  weight_decay=0.1)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    record = dict(train_loss=[], train_copy_loss=[], eval_step=[], eval_loss=[],
                  eval_copy_loss=[], parameters=sum(p.numel() for p in model.parameters()))
    timed_tokens, timed_seconds = 0, 0.0
    for step in range(args.steps):
        batch = slice(step * args.batch, (step + 1) * args.batch)
        x, c = tokens[batch].cuda(non_blocking=True), copied[batch].cuda(non_blocking=True)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        torch.cuda.synchronize()
        began = time.perf_counter()
        loss, copy_loss = losses(model, x, c)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        torch.cuda.synchronize()
        if step >= args.untimed_steps:  # the first steps load kernels and warm caches
            timed_seconds += time.perf_counter() - began
            timed_tokens += x.numel() - x.shape[0]
        record["train_loss"].append(float(loss.detach()))
        record["train_copy_loss"].append(float(copy_loss.detach()))
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            with torch.no_grad():
                e_loss, e_copy = losses(model, eval_tokens, eval_copied)
            record["eval_step"].append(step + 1)
            record["eval_loss"].append(float(e_loss))
            record["eval_copy_loss"].append(float(e_copy))
            print(f"{kind:5s} step {step + 1:4d}  train {record['train_loss'][-1]:.3f}  eval "
                  f"{float(e_loss):.3f}  eval copied {float(e_copy):.3f}", flush=True)
        if not math.isfinite(record["train_loss"][-1]):
            raise RuntimeError(f"{kind}: the loss is {record['train_loss'][-1]} at step {step}")
    record["tokens_per_s"] = timed_tokens / timed_seconds
    record["ms_per_step"] = 1e3 * timed_seconds / (args.steps - args.untimed_steps)
    record["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return record


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = {"nsa": "tab:red", "dense": "tab:blue"}
    for kind, run in result["runs"].items():
        label = f"{kind} ({run['tokens_per_s'] / 1e3:.0f}k tok/s)"
        steps = np.arange(1, len(run["train_loss"]) + 1)
        axes[0].plot(steps, run["train_loss"], color=colors[kind], alpha=0.35, lw=0.8)
        axes[0].plot(run["eval_step"], run["eval_loss"], color=colors[kind], marker="o",
                     ms=3, label=f"{label}, held-out")
        axes[1].plot(run["eval_step"], run["eval_copy_loss"], color=colors[kind], marker="o",
                     ms=3, label=kind)
    axes[0].set(title="next-token loss (train: faint; held-out: dots)", xlabel="step",
                ylabel="cross-entropy (nats)", ylim=(1.0, 3.0))
    axes[1].set(title="held-out loss on copied spans (long-range recall)", xlabel="step",
                ylabel="cross-entropy (nats)")
    for ax in axes:
        ax.axhline(math.log(FANOUT), color="gray", ls=":", lw=0.8)
        ax.legend()
        ax.grid(alpha=0.3)
    c = result["config"]
    fig.suptitle(f"{c['layers']}-layer LM, hidden {c['hidden']}, {c['HQ']}/{c['HKV']} heads "
                 f"x {c['head_dim']}, T = {c['T']}, batch {c['batch']}; {result['device']}, "
                 f"{result['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--T", type=int, default=2048, help="sequence length (tokens per row)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--untimed-steps", type=int, default=10)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=["nsa", "dense"],
                        choices=["nsa", "dense"])
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"),
                        help="directory of the JSON and PNG")
    parser.add_argument("--build-kernels", metavar="DIR",
                        help="build the NSA kernels (forward + backward) this run needs into "
                             "DIR and exit (the compiler machine)")
    args = parser.parse_args()
    # Rows have T + 1 tokens (inputs and shifted targets); kernels see T.
    if args.build_kernels:
        bk.build_missing([kernel_config(args.batch, args.T)], args.build_kernels, cubin=True)
        return
    if not torch.cuda.is_available():
        sys.exit("train_nsa.py trains on a GPU (the NSA model runs the GPU backend)")
    torch.backends.cuda.matmul.allow_tf32 = True
    tokens, copied = make_sequences(args.steps * args.batch, args.T + 1, args.seed)
    eval_tokens, eval_copied = make_sequences(args.batch, args.T + 1, args.seed + 1000)
    data = (tokens.pin_memory(), copied.pin_memory(), eval_tokens.cuda(), eval_copied.cuda())
    device = torch.cuda.get_device_name()
    date = datetime.date.today().isoformat()
    print(f"{device}, torch {torch.__version__}; {args.steps} steps of {args.batch} x {args.T} "
          f"tokens; {float(copied[:, 1:].float().mean()):.0%} of targets are copied",
          flush=True)
    result = dict(device=device, date=date, torch=torch.__version__,
                  command=" ".join([os.path.basename(sys.executable)] + sys.argv),
                  config=dict(vocab=VOCAB, hidden=HIDDEN, layers=LAYERS, HQ=HQ, HKV=HKV,
                              head_dim=HEAD_DIM, T=args.T, batch=args.batch, steps=args.steps,
                              warmup=args.warmup, lr=args.lr, seed=args.seed, span=SPAN,
                              min_distance=MIN_DISTANCE, fanout=FANOUT,
                              nsa=dict(kernel_config(args.batch, args.T), backend="gpu"),
                              dense="torch scaled_dot_product_attention(is_causal=True)",
                              precision="bf16 autocast, float32 parameters, AdamW"),
                  runs={})
    for kind in args.models:
        torch.cuda.reset_peak_memory_stats()
        result["runs"][kind] = train(kind, data, args)
        run = result["runs"][kind]
        print(f"{kind}: {run['tokens_per_s']:.0f} tokens/s, {run['ms_per_step']:.1f} ms/step, "
              f"final eval loss {run['eval_loss'][-1]:.3f} (copied "
              f"{run['eval_copy_loss'][-1]:.3f})", flush=True)
    card = device.replace("NVIDIA ", "").replace(" ", "-")
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"{date}-{card}-train-nsa")
    with open(stem + ".json", "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    plot(result, stem + ".png")
    print(f"wrote {stem}.json and {stem}.png")


if __name__ == "__main__":
    main()

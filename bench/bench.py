#!/usr/bin/env python3
"""NSA benchmark suite: latency and peak memory against T, side by side.

Runs every implementation it knows in one process on one card, so ratios
within a result file are like for like (SPEC.md, "Benchmark results
format"). Today the implementations are PyTorch's dense
scaled_dot_product_attention with the cuDNN and the flash backends; the NSA
kernels join as `nsa` once the GPU backend exists (python/nsa/_gpu.py).

Timing: CUDA events around each call, `--warmup` untimed calls, then the
median of `--repeats` timed ones. Peak memory: torch.cuda.max_memory_allocated
over one call, minus what was allocated before it.

    python3 bench/bench.py --config paper-d128 --T 8192 16384 32768 65536
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

# SPEC.md, "Benchmark configurations".
CONFIGS = {
    "paper-d128": dict(B=1, HQ=64, HKV=4, Dk=128, Dv=128),
    "paper-d192": dict(B=1, HQ=64, HKV=4, Dk=192, Dv=128),
    "small-group": dict(B=1, HQ=32, HKV=8, Dk=128, Dv=128),
}

SDPA_BACKENDS = {"sdpa_cudnn": SDPBackend.CUDNN_ATTENTION,
                 "sdpa_flash": SDPBackend.FLASH_ATTENTION}


def dense_causal_flops(T, HQ, Dk, Dv, B):
    """Forward FLOPs of causal attention (half the T x T pairs)."""
    return 2.0 * B * HQ * (T * T / 2) * (Dk + Dv)


def make_inputs(cfg, T, requires_grad):
    def rand(*shape):
        return torch.randn(*shape, device="cuda", dtype=torch.bfloat16,
                           requires_grad=requires_grad)
    # SDPA takes [B, H, T, D]; enable_gqa repeats the HKV heads.
    q = rand(cfg["B"], cfg["HQ"], T, cfg["Dk"])
    k = rand(cfg["B"], cfg["HKV"], T, cfg["Dk"])
    v = rand(cfg["B"], cfg["HKV"], T, cfg["Dv"])
    return q, k, v


def sdpa_call(backend):
    def call(q, k, v):
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                  enable_gqa=True)
    return call


def time_ms(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def peak_mb(fn):
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def measure(impl, call, cfg, T, phase, args):
    """One record, or one with `error` when the implementation refuses."""
    q, k, v = make_inputs(cfg, T, requires_grad=phase != "fwd")
    if phase == "fwd":
        def fn():
            with torch.no_grad():
                call(q, k, v)
    else:
        do = torch.randn(cfg["B"], cfg["HQ"], T, cfg["Dv"], device="cuda",
                         dtype=torch.bfloat16)
        if phase == "bwd":
            out = call(q, k, v)

            def fn():
                torch.autograd.grad(out, (q, k, v), do, retain_graph=True)
        else:
            def fn():
                torch.autograd.grad(call(q, k, v), (q, k, v), do)
    record = dict(impl=impl, config=args.config, phase=phase, B=cfg["B"], T=T)
    try:
        record["ms"] = time_ms(fn, args.warmup, args.repeats)
        record["peak_mem_mb"] = round(peak_mb(fn), 1)
    except RuntimeError as error:  # e.g. no kernel for this card or shape
        record["error"] = str(error).splitlines()[0]
        return record
    flops = dense_causal_flops(T, cfg["HQ"], cfg["Dk"], cfg["Dv"], cfg["B"])
    factor = {"fwd": 1.0, "bwd": 2.5, "fwd_bwd": 3.5}[phase]
    record["tflops"] = round(flops * factor / (record["ms"] * 1e-3) / 1e12, 1)
    record["notes"] = "dense causal, enable_gqa; tflops counts 2.5x fwd for bwd"
    return record


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="paper-d128", choices=CONFIGS)
    parser.add_argument("--T", type=int, nargs="+",
                        default=[8192, 16384, 32768, 65536])
    parser.add_argument("--phases", nargs="+", default=["fwd", "bwd", "fwd_bwd"],
                        choices=["fwd", "bwd", "fwd_bwd"])
    parser.add_argument("--impls", nargs="+", default=list(SDPA_BACKENDS),
                        choices=list(SDPA_BACKENDS))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=None,
                        help="JSON path (default bench/results/<date>-<card>-<what>.json)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench.py needs a CUDA GPU")

    cfg = CONFIGS[args.config]
    device = torch.cuda.get_device_name()
    records = []
    for T in args.T:
        for phase in args.phases:
            for impl in args.impls:
                record = measure(impl, sdpa_call(SDPA_BACKENDS[impl]), cfg, T,
                                 phase, args)
                records.append(record)
                print(json.dumps(record), flush=True)
                torch.cuda.empty_cache()

    date = datetime.date.today().isoformat()
    result = dict(device=device, date=date, commit=git_commit(),
                  command=" ".join([os.path.basename(sys.executable)] + sys.argv),
                  torch=torch.__version__, records=records)
    card = device.replace("NVIDIA ", "").replace(" ", "-")
    out = args.out or os.path.join(os.path.dirname(__file__), "results",
                                   f"{date}-{card}-{args.config}-dense.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", out)


if __name__ == "__main__":
    main()

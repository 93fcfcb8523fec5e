#!/usr/bin/env python3
"""NSA benchmark suite: latency and peak memory against T, side by side.

Runs every implementation it knows in one process on one card, so ratios
within a result file are like for like (SPEC.md, "Benchmark results
format"): PyTorch's dense scaled_dot_product_attention with the cuDNN and the
flash backends, and, with `--nsa-kernels DIR`, the compiled NSA forward
(`nsa`: the builds of scripts/gpu/build_kernels.py --set bench, launched
through nsa._runtime.Plan; bench/nsa_bench.py) with a per-kernel breakdown.

Timing (one timer for every implementation, `time_pieces`): `--warmup`
untimed calls, then the median of `--repeats` timed ones, each between two
CUDA events. Before each timed call the GPU is kept busy for `--lead-ms`
(torch.cuda._sleep) so that the host enqueues the whole call before the
first event fires: the time is the GPU's, not Python's launch gaps. The NSA
breakdown puts events around each launch, in runs of its own. Peak memory:
torch.cuda.max_memory_allocated over one call, minus what was allocated
before it.

    python3 bench/bench.py --config paper-d128 --T 8192 16384 32768 65536
    python3 bench/bench.py --config paper-d128 --nsa-kernels .gpu/kernels    # + NSA, fwd only
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import nsa_bench
from nsa_bench import CONFIGS  # SPEC.md, "Benchmark configurations"

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


#: GPU time kept busy before each timed call (--lead-ms); see time_pieces.
LEAD_MS = 5.0
#: The phases NSA runs from its plans (fwd_bwd is the package's: bench/suite.py).
NSA_PHASES = ("fwd", "bwd")
_cycles_per_ms = None


def gpu_lead(ms):
    """Keeps the stream busy for about ``ms`` (a spin kernel), so that what is
    enqueued next starts only once the host has enqueued all of it."""
    global _cycles_per_ms
    if ms <= 0 or not hasattr(torch.cuda, "_sleep"):
        return
    if _cycles_per_ms is None:  # calibrate once: the spin counts clock cycles
        torch.cuda._sleep(1000)
        start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
        start.record()
        torch.cuda._sleep(10_000_000)
        end.record()
        torch.cuda.synchronize()
        _cycles_per_ms = 10_000_000 / max(start.elapsed_time(end), 1e-3)
    torch.cuda._sleep(int(ms * _cycles_per_ms))


def time_pieces(pieces, warmup, repeats, split=False):
    """Times running ``pieces`` ([(label, fn)]) in order: the timer of every
    implementation.

    ``warmup`` untimed calls, then ``repeats`` timed ones, each after a
    LEAD_MS GPU lead and between two CUDA events; with ``split``, events also
    around each piece. Returns ``ms`` (median over the timed calls), ``pieces``
    ({label: median ms}, pieces of one label summed within a call; with
    split), ``host_ms`` (median time the host took to enqueue a call) and
    ``lead_short`` (calls whose enqueue took longer than the lead, so that
    the GPU may have waited for the host in them).
    """
    def call():
        for _, fn in pieces:
            fn()
    for _ in range(warmup):
        call()
    torch.cuda.synchronize()
    totals, host, parts, lead_short = [], [], {label: [] for label, _ in pieces}, 0
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        marks = []
        gpu_lead(LEAD_MS)
        began = time.perf_counter()
        start.record()
        if split:
            for label, fn in pieces:
                before, after = (torch.cuda.Event(enable_timing=True) for _ in range(2))
                before.record()
                fn()
                after.record()
                marks.append((label, before, after))
        else:
            call()
        end.record()
        host.append((time.perf_counter() - began) * 1e3)
        torch.cuda.synchronize()
        totals.append(start.elapsed_time(end))
        lead_short += LEAD_MS > 0 and host[-1] > LEAD_MS
        if split:
            sums = dict.fromkeys(parts, 0.0)
            for label, before, after in marks:
                sums[label] += before.elapsed_time(after)
            for label, ms in sums.items():
                parts[label].append(ms)
    return dict(ms=statistics.median(totals), host_ms=statistics.median(host),
                lead_short=int(lead_short),
                pieces={label: statistics.median(v) for label, v in parts.items()}
                if split else None)


def time_ms(fn, warmup, repeats):
    """Median ms of ``fn()`` (time_pieces with one piece)."""
    return time_pieces([("call", fn)], warmup, repeats)["ms"]


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


def add_record(records, record):
    """Keeps and prints `record`, then returns the cached memory, so that one
    measurement's peak does not count towards the next."""
    records.append(record)
    print(json.dumps(record), flush=True)
    try:
        torch.cuda.empty_cache()
    except RuntimeError:  # a faulted context: the records still get written
        pass


def git_commit(kernels_dir=None):
    """The commit prepare stamped beside the kernels (.gpu/commit), which is
    what they and the scripts were built from (the device machine's copy may
    carry a stale .git); else ``git describe --always --dirty``."""
    stamp = nsa_bench.kernels_commit(kernels_dir) if kernels_dir else None
    if stamp:
        return f"{stamp} (the kernels' build stamp)"
    try:
        return subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)),
                               "describe", "--always", "--dirty"],
                              capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def driver_version():
    """The NVIDIA driver's version (nvidia-smi, else /proc), or None."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             check=True, timeout=30).stdout.split()
        if out:
            return out[0]
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/driver/nvidia/version") as f:
            words = f.readline().split()
        return next((w for w in words if w[:1].isdigit() and "." in w), None)
    except OSError:
        return None


def _fmt(ms):
    return "-" if ms is None else (f"{ms:.2f}" if ms < 10 else f"{ms:.1f}")


def markdown_tables(records, Ts, phase="fwd"):
    """The phase's table (NSA against the dense baselines) and the NSA
    breakdown, one table per T, as markdown lines."""
    def find(impl, T):
        return next((r for r in records if r["impl"] == impl and r["T"] == T
                     and r["phase"] == phase), None)
    lines = [f"| T | NSA {phase} ms | cuDNN {phase} ms | flash {phase} ms | NSA speedup vs "
             "cuDNN | vs flash | NSA TFLOP/s |", "|---|---|---|---|---|---|---|"]
    for T in Ts:
        nsa, cudnn, flash = (find(impl, T) for impl in ("nsa", "sdpa_cudnn", "sdpa_flash"))
        ms = {k: (r or {}).get("ms") for k, r in (("nsa", nsa), ("cudnn", cudnn),
                                                   ("flash", flash))}

        def ratio(base):
            return "-" if not (ms[base] and ms["nsa"]) else f"{ms[base] / ms['nsa']:.2f}x"
        err = f" ({nsa['error']})" if nsa and "error" in nsa else ""
        lines.append(f"| {T} | {_fmt(ms['nsa'])}{err} | {_fmt(ms['cudnn'])} | "
                     f"{_fmt(ms['flash'])} | {ratio('cudnn')} | {ratio('flash')} | "
                     f"{(nsa or {}).get('tflops') or '-'} |")
    for T in Ts:
        nsa = find("nsa", T)
        if not nsa or "kernels" not in nsa:
            continue
        lines += ["", f"NSA {phase} at T = {T} ({nsa['build']}), per launch:", "",
                  "| kernel | ms | share | GFLOP | TFLOP/s | GB/s (least bytes) |",
                  "|---|---|---|---|---|---|"]
        for k in nsa["kernels"]:
            gflop = "-" if k["flops"] is None else f"{k['flops'] / 1e9:.1f}"
            lines.append(f"| {k['label']} | {k['ms']:.3f} | "
                         f"{100 * k['ms'] / nsa['kernels_sum_ms']:.1f}% | {gflop} | "
                         f"{k.get('tflops', '-')} | {k['gbps']} |")
        gflop = "-" if nsa["flops"] is None else f"{nsa['flops'] / 1e9:.1f}"
        lines.append(f"| sum of launches | {nsa['kernels_sum_ms']:.3f} | | {gflop} | | |")
        lines.append(f"| whole {phase} | {nsa['ms']:.3f} | | {gflop} | "
                     f"{nsa['tflops'] or '-'} | |")
    return lines


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.phases is None:
        args.phases = ["fwd"] if args.nsa_kernels else ["fwd", "bwd", "fwd_bwd"]
    return args


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="paper-d128", choices=CONFIGS)
    parser.add_argument("--T", type=int, nargs="+",
                        default=[8192, 16384, 32768, 65536])
    parser.add_argument("--phases", nargs="+", default=None,
                        choices=["fwd", "bwd", "fwd_bwd"],
                        help="default: fwd with --nsa-kernels, else all three; NSA runs "
                             "its plans for fwd and bwd (fwd_bwd: bench/suite.py)")
    parser.add_argument("--impls", nargs="*", default=list(SDPA_BACKENDS),
                        choices=list(SDPA_BACKENDS),
                        help="dense baselines (none: '--impls' alone, e.g. NSA only)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--nsa-kernels", metavar="DIR", default=None,
                        help="also time the compiled NSA forward: the builds under DIR "
                             "(scripts/gpu/build_kernels.py --set bench) of --config at each T")
    parser.add_argument("--runtime-lib", default=None,
                        help="libnsa_runtime.so (default: $NSA_RUNTIME_LIBRARY, "
                             ".gpu/runtime, build/lib)")
    parser.add_argument("--seed", type=int, default=0, help="NSA inputs (as forward_check.py)")
    parser.add_argument("--lead-ms", type=float, default=LEAD_MS,
                        help="GPU time kept busy before each timed call (0: none)")
    parser.add_argument("--out", default=None,
                        help="JSON path (default bench/results/<date>-<card>-<config>-"
                             "<dense|forward|nsa>.json)")
    return parser


def main():
    global LEAD_MS
    args = parse_args()
    LEAD_MS = args.lead_ms
    if not torch.cuda.is_available():
        sys.exit("bench.py needs a CUDA GPU (bench/nsa_bench.py shows the NSA builds "
                 "without one)")

    cfg = CONFIGS[args.config]
    device = torch.cuda.get_device_name()
    builds, runtime = {}, None
    if args.nsa_kernels:
        builds = nsa_bench.find_builds(args.nsa_kernels, args.config, args.T)
        args.runtime_lib = nsa_bench.find_runtime_lib(args.runtime_lib)
        runtime = nsa_bench._gpu_modules()[2].Runtime(args.runtime_lib)
        print(f"NSA builds: {', '.join(os.path.basename(builds[T]) for T in sorted(builds))}"
              f"; runtime {args.runtime_lib}", flush=True)
    print(f"{device}, torch {torch.__version__}, {args.config}, T = {args.T}, "
          f"phases {args.phases}, warmup {args.warmup}, repeats {args.repeats}", flush=True)

    records = []

    def add(record):
        add_record(records, record)

    # The baselines first: a faulting NSA kernel spoils the CUDA context for
    # whatever runs after it, and the dense numbers must survive that.
    for T in args.T:
        for phase in args.phases:
            for impl in args.impls:
                add(measure(impl, sdpa_call(SDPA_BACKENDS[impl]), cfg, T, phase, args))
    # NSA's plans: the forward, and the backward (nsa.attention_grad, which
    # recomputes the forward); fwd_bwd is the package's (bench/suite.py).
    for phase in [p for p in args.phases if p in NSA_PHASES] if args.nsa_kernels else []:
        for T in args.T:
            if T not in builds:
                add(dict(impl="nsa", config=args.config, phase=phase, B=cfg["B"], T=T,
                         error=f"no {args.config} build for T={T} under {args.nsa_kernels}"))
                continue
            add(nsa_bench.measure_nsa(builds[T], runtime, args.config, args, time_pieces,
                                      peak_mb, phase=phase))

    date = datetime.date.today().isoformat()
    result = dict(device=device, date=date, commit=git_commit(args.nsa_kernels),
                  command=" ".join([os.path.basename(sys.executable)] + sys.argv),
                  torch=torch.__version__, cuda=torch.version.cuda, driver=driver_version(),
                  warmup=args.warmup, repeats=args.repeats, lead_ms=LEAD_MS)
    if args.nsa_kernels:
        result["nsa"] = dict(kernels=args.nsa_kernels, runtime=args.runtime_lib,
                             kernels_commit=nsa_bench.kernels_commit(args.nsa_kernels),
                             builds={str(T): os.path.basename(d) for T, d in builds.items()})
    result["records"] = records
    card = device.replace("NVIDIA ", "").replace(" ", "-")
    what = "dense" if not args.nsa_kernels else \
        "forward" if args.phases == ["fwd"] else "nsa"
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"{date}-{card}-{args.config}-{what}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    for phase in [p for p in args.phases if p in NSA_PHASES]:
        print("\n" + "\n".join(markdown_tables(records, args.T, phase)) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()

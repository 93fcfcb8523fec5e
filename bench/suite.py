#!/usr/bin/env python3
"""The benchmark suite: NSA against dense attention, forward and backward, against T.

One command on a GPU machine times, in one process on one card, the
forward (``fwd``), the backward alone (``bwd``: autograd.grad of a kept
graph) and both (``fwd_bwd``) of

- ``nsa``: ``nsa.nsa_attention(..., backend='gpu')`` at paper-d128 (B=1,
  HQ=64, HKV=4, Dk=Dv=128, bf16, the paper's blocks, linear compression with
  PE, one K/V per branch), the compiler's forward and backward plans under
  autograd; gradients to every input (q, the three K/V pairs, the gates,
  W and PE);
- ``sdpa_cudnn``, ``sdpa_flash``: PyTorch's causal
  ``scaled_dot_product_attention`` (enable_gqa) on its cuDNN and flash
  backends, gradients to q, k, v (bench/bench.py's calls);

at T = 8192 .. 131072, and writes ``<date>-<card>-paper-d128-suite.json``
(SPEC.md's results format: device, date, commit, command, records of impl,
config, phase, B, T, ms, peak_mem_mb) and ``...-suite.png`` (latency of each
phase and peak memory against T, log-log).

Timing is bench/bench.py's (time_pieces): each timed call between two CUDA
events after a GPU lead, the median over the repeats. The first call of a
measurement is its warm-up (it loads the kernels: the driver compiles the
PTX); the repeats are then as many as fit in ``--budget-s`` (at least
``--min-repeats``, at most ``--repeats``), so that T = 131072 does not take
minutes; each record says how many, and ``first_ms``. Peak memory: over the
warm-up call, torch.cuda.max_memory_allocated minus what was allocated
before it. A measurement that fails (out of memory, no kernels for a T) is
recorded with its error and the suite goes on; a T at which a call of an
implementation and phase would take over ``--max-call-s`` (extrapolated
quadratically from its last T) is recorded as skipped, with the estimate.

    python3 bench/suite.py --build-kernels .gpu/nsa-kernels   # compiler machine: NSA kernels per T
    NSA_KERNEL_PATH=.gpu/nsa-kernels NSA_RUNTIME_LIBRARY=.gpu/runtime/libnsa_runtime.so \\
        python3 bench/suite.py                               # GPU machine
"""

import argparse
import datetime
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, HERE)

from nsa import build_kernels as bk  # noqa: E402  (standard library only)

CONFIG = "paper-d128"
#: SPEC.md's paper-d128 as the NSA kernels build it.
PAPER_D128 = dict(B=1, HQ=64, HKV=4, Dk=128, Dv=128, dtype="bf16", compress="linear",
                  pe=True, kv="per-branch")
DEFAULT_T = [8192, 16384, 32768, 65536, 131072]
PHASES = ("fwd", "bwd", "fwd_bwd")
IMPLS = ("nsa", "sdpa_cudnn", "sdpa_flash")


def kernel_config(T):
    return bk.make_config(T=T, **PAPER_D128)


def repeats_for(first_ms, budget_s, max_repeats, min_repeats):
    """How many timed calls fit in ``budget_s``, each taking about ``first_ms``."""
    if first_ms <= 0:
        return max_repeats
    fit = int(budget_s * 1e3 // first_ms)
    return max(min_repeats, min(max_repeats, fit))


def predicted_ms(last, T):
    """A call's time at T extrapolated from the last record (quadratic in T:
    dense attention's rate; NSA's backward grows more slowly), or None."""
    if last is None or "ms" not in last:
        return None
    return last["ms"] * (T / last["T"]) ** 2


def _fmt(value, digits=1):
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.{digits}f}"


def markdown_table(records, Ts):
    """One row per T: ms of each implementation and phase, then peak MiB of fwd_bwd."""
    def find(impl, T, phase):
        return next((r for r in records if r["impl"] == impl and r["T"] == T
                     and r["phase"] == phase), None)
    head = ["T"] + [f"{impl} {phase} ms" for phase in PHASES for impl in IMPLS] + \
        [f"{impl} fwd_bwd MiB" for impl in IMPLS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for T in Ts:
        cells = [str(T)]
        for phase in PHASES:
            for impl in IMPLS:
                r = find(impl, T, phase)
                cells.append("-" if r is None else ("error" if "error" in r else _fmt(r["ms"])))
        for impl in IMPLS:
            r = find(impl, T, "fwd_bwd")
            cells.append("-" if r is None or "error" in r else f"{r['peak_mem_mb']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def series(records, impl, phase, key="ms"):
    """(T, value) pairs of one implementation and phase, errors left out."""
    return sorted((r["T"], r[key]) for r in records
                  if r["impl"] == impl and r["phase"] == phase and key in r)


# --------------------------------------------------------------------------
# On the GPU
# --------------------------------------------------------------------------

def nsa_inputs(T, seed):
    """paper-d128 inputs of nsa_attention (seeded random, bf16, requiring grad)."""
    import torch
    gen = torch.Generator(device="cuda").manual_seed(seed)
    c = PAPER_D128
    B, HQ, HKV, D, l = c["B"], c["HQ"], c["HKV"], c["Dk"], 32

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, device="cuda", generator=gen) * scale).to(torch.bfloat16)
    args = dict(q=randn(B, T, HQ, D), k=randn(B, T, HKV, D), v=randn(B, T, HKV, D),
                g=torch.rand(B, T, HQ, 3, device="cuda", generator=gen).to(torch.bfloat16),
                k_slc=randn(B, T, HKV, D), v_slc=randn(B, T, HKV, D),
                k_win=randn(B, T, HKV, D), v_win=randn(B, T, HKV, D),
                w_k=randn(HKV, l * D, D, scale=(l * D) ** -0.5),
                w_v=randn(HKV, l * D, D, scale=(l * D) ** -0.5),
                pe_k=randn(HKV, l, D, scale=0.5), pe_v=randn(HKV, l, D, scale=0.5))
    return args


def measure(impl, T, phase, args, bench):
    """One record (SPEC.md's fields), or one with ``error``."""
    import torch
    import nsa

    record = dict(impl=impl, config=CONFIG, phase=phase, B=PAPER_D128["B"], T=T)
    try:
        if impl == "nsa":
            inputs = nsa_inputs(T, args.seed)
            tensors = list(inputs.values())

            def call():
                return nsa.nsa_attention(**inputs, backend="gpu")
            do = torch.randn(PAPER_D128["B"], T, PAPER_D128["HQ"], PAPER_D128["Dv"],
                             device="cuda", dtype=torch.bfloat16)
        else:
            cfg = dict(PAPER_D128)
            tensors = list(bench.make_inputs(cfg, T, requires_grad=phase != "fwd"))
            sdpa = bench.sdpa_call(bench.SDPA_BACKENDS[impl])

            def call():
                return sdpa(*tensors)
            do = torch.randn(cfg["B"], cfg["HQ"], T, cfg["Dv"], device="cuda",
                             dtype=torch.bfloat16)
        if phase == "fwd":
            for t in tensors:
                t.requires_grad_(False)

            def fn():
                with torch.no_grad():
                    call()
        else:
            for t in tensors:
                t.requires_grad_(True)
            if phase == "bwd":
                out = call()

                def fn():
                    torch.autograd.grad(out, tensors, do, retain_graph=True)
            else:
                def fn():
                    torch.autograd.grad(call(), tensors, do)
        began = time.perf_counter()
        peak = bench.peak_mb(fn)  # the warm-up: loads kernels, fills the allocator's cache
        first_ms = (time.perf_counter() - began) * 1e3
        repeats = repeats_for(first_ms, args.budget_s, args.repeats, args.min_repeats)
        timing = bench.time_pieces([("call", fn)], 0, repeats)
        record.update(ms=timing["ms"], repeats=repeats, first_ms=round(first_ms, 1),
                      host_ms=round(timing["host_ms"], 3), peak_mem_mb=round(peak, 1))
        if timing["lead_short"]:
            record["notes"] = (f"{timing['lead_short']} of {repeats} calls took the host longer "
                               f"to enqueue than the GPU lead")
    except (RuntimeError, ValueError) as error:  # OOM, no kernels for this T, ...
        record["error"] = str(error).splitlines()[0][:500]
    return record


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = result["records"]
    styles = {"nsa": ("tab:red", "o"), "sdpa_cudnn": ("tab:blue", "s"),
              "sdpa_flash": ("tab:green", "^")}
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.5))
    panels = [(phase, "ms", f"{phase} latency (ms)") for phase in PHASES] + \
        [("fwd_bwd", "peak_mem_mb", "fwd_bwd peak memory (MiB)")]
    for ax, (phase, key, title) in zip(axes, panels):
        for impl, (color, marker) in styles.items():
            points = series(records, impl, phase, key)
            if points:
                ax.plot(*zip(*points), color=color, marker=marker, label=impl)
        ax.set(xscale="log", yscale="log", xlabel="T", title=title)
        ax.set_xticks(result["T"])
        ax.set_xticklabels([f"{T // 1024}K" for T in result["T"]])
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.suptitle(f"NSA (compiled kernels) vs SDPA, {CONFIG} (B=1, HQ=64, HKV=4, D=128, bf16), "
                 f"{result['device']}, {result['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--T", type=int, nargs="+", default=DEFAULT_T)
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--phases", nargs="+", default=list(PHASES), choices=PHASES)
    parser.add_argument("--repeats", type=int, default=10, help="at most this many timed calls")
    parser.add_argument("--min-repeats", type=int, default=2,
                        help="at least this many timed calls")
    parser.add_argument("--budget-s", type=float, default=1.0,
                        help="timed calls per measurement: as many as fit in this")
    parser.add_argument("--max-call-s", type=float, default=10.0,
                        help="skip a T where a call would take longer than this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(HERE, "results"),
                        help="directory of the JSON and PNG")
    parser.add_argument("--build-kernels", metavar="DIR",
                        help="build the NSA kernels (forward + backward) of every --T into DIR "
                             "and exit (the compiler machine)")
    args = parser.parse_args()
    if args.build_kernels:
        bk.build_missing([kernel_config(T) for T in args.T], args.build_kernels, cubin=True)
        return

    import torch
    import bench  # bench/bench.py: the timer, SDPA calls, commit and driver lookups

    if not torch.cuda.is_available():
        sys.exit("suite.py needs a CUDA GPU")
    device = torch.cuda.get_device_name()
    print(f"{device}, torch {torch.__version__}, {CONFIG}, T = {args.T}", flush=True)
    records = []
    # Dense first: a faulting NSA kernel would spoil the CUDA context for
    # whatever runs after it, and the baselines must survive that.
    last = {}  # (impl, phase) -> its record at the previous T
    for impl in sorted(args.impls, key=lambda i: i == "nsa"):
        for T in sorted(args.T):
            for phase in args.phases:
                guess = predicted_ms(last.get((impl, phase)), T)
                if guess is not None and guess > args.max_call_s * 1e3:
                    record = dict(impl=impl, config=CONFIG, phase=phase, B=PAPER_D128["B"], T=T,
                                  error=f"skipped: a call would take about {guess / 1e3:.0f} s "
                                        f"(over --max-call-s {args.max_call_s})")
                else:
                    record = measure(impl, T, phase, args, bench)
                last[(impl, phase)] = record
                bench.add_record(records, record)
    date = datetime.date.today().isoformat()
    kernels = os.environ.get(bk.KERNEL_PATH_ENV, "")
    result = dict(device=device, date=date,
                  commit=bench.git_commit(kernels.split(os.pathsep)[0] or None),
                  command=" ".join([os.path.basename(sys.executable)] + sys.argv),
                  torch=torch.__version__, cuda=torch.version.cuda,
                  driver=bench.driver_version(), T=args.T, repeats=args.repeats,
                  min_repeats=args.min_repeats, budget_s=args.budget_s,
                  max_call_s=args.max_call_s, lead_ms=bench.LEAD_MS, nsa_kernels=kernels,
                  records=records)
    card = device.replace("NVIDIA ", "").replace(" ", "-")
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"{date}-{card}-{CONFIG}-suite")
    with open(stem + ".json", "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    plot(result, stem + ".png")
    print("\n" + "\n".join(markdown_table(records, args.T)) + "\n")
    print(f"wrote {stem}.json and {stem}.png")


if __name__ == "__main__":
    main()

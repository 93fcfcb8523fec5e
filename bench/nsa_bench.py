#!/usr/bin/env python3
"""The compiled NSA forward as an implementation of bench/bench.py.

bench.py times it (``--nsa-kernels DIR``) in the same run, with the same
timer, as the dense baselines; this module finds the builds, knows the work
each kernel does and runs the plan. Builds come from
``scripts/gpu/build_kernels.py --set bench``: one directory per T with
config.json, plan.json, manifest.json and kernels.ptx.

Work model (docs/performance.md, counted exactly from SPEC.md's visibility
rules rather than asymptotically), per launch label:

  compress (k), compress (v)  linear: 2 * B*Nc*HKV * (l*D) * D      (mean: B*Nc*HKV*l*D)
  compressed_attention        2 * B*HQ * P_cmp * (Dk + Dv)
  select_blocks               2 * B*HQ * P_cmp * Dk   (recomputes the compressed scores)
  window_attention            2 * B*HQ * P_win * (Dk + Dv)
  selected_attention          2 * B*HQ * P_slc * (Dk + Dv)
  combine                     5 * B*T*HQ*Dv          (3 multiplies, 2 adds)

(the compiler runs the combination in the selected launch, labelled
"selected_attention + combine", which counts both),

with P_* the (query, key) pairs each branch attends to: P_cmp counts compressed
token i for query t iff i*d + l - 1 <= t; P_slc the tokens u <= t of the n
selected blocks (all of them while t has at most n candidate blocks); P_win
min(t + 1, w). Bytes are the least a launch can move: every tensor it takes,
read or written once.

Without a GPU (stdlib only; torch is not needed), this prints the model of
every build and puts each plan through the runtime's argument checks:

    python3 bench/nsa_bench.py .gpu/kernels [--config paper-d128] [--T 8192 ...]
"""

import argparse
import importlib.util
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GPU_SCRIPTS = os.path.join(ROOT, "scripts", "gpu")

# SPEC.md, "Benchmark configurations" (bench.py's --config).
CONFIGS = {
    "paper-d128": dict(B=1, HQ=64, HKV=4, Dk=128, Dv=128),
    "paper-d192": dict(B=1, HQ=64, HKV=4, Dk=192, Dv=128),
    "small-group": dict(B=1, HQ=32, HKV=8, Dk=128, Dv=128),
}
# A build is a benchmark configuration's when these match too (SPEC.md defaults).
BENCH_DEFAULTS = dict(dtype="bf16", l=32, d=16, l_sel=64, n=16, init=1, local=2, w=512)

#: The work model's pieces (flop_model's keys).
PIECES = ("compress (k)", "compress (v)", "compressed_attention", "select_blocks",
          "window_attention", "selected_attention", "combine")
#: The breakdown's rows, in launch order: nsa-tile computes the combination in
#: the program of the branch that runs last, the selected one.
LABELS = ("compress (k)", "compress (v)", "compressed_attention", "select_blocks",
          "window_attention", "selected_attention + combine")
#: Forward branch launches; one that writes the plan's first output (o) also
#: computes the combination.
_BRANCHES = ("compressed_attention", "selected_attention", "window_attention")
_BYTES = {"bf16": 2, "f16": 2, "f32": 4, "i32": 4, "i64": 8}


# --------------------------------------------------------------------------
# Builds (stdlib only)
# --------------------------------------------------------------------------

def find_builds(kernels_dir, config, Ts):
    """{T: build directory} of the builds of benchmark configuration ``config``.

    A directory qualifies when its config.json has the configuration's B, HQ,
    HKV, Dk, Dv and SPEC's default blocks and dtype; of two for one T, the one
    named ``<config>-t<T>`` wins.
    """
    want = dict(CONFIGS[config], **BENCH_DEFAULTS)
    builds = {}
    for name in sorted(os.listdir(kernels_dir)) if os.path.isdir(kernels_dir) else []:
        directory = os.path.join(kernels_dir, name)
        if not all(os.path.isfile(os.path.join(directory, f))
                   for f in ("config.json", "plan.json")):
            continue
        with open(os.path.join(directory, "config.json")) as f:
            cfg = json.load(f)
        if cfg.get("T") not in Ts or any(cfg.get(k) != v for k, v in want.items()):
            continue
        if cfg["T"] not in builds or name == f"{config}-t{cfg['T']}":
            builds[cfg["T"]] = directory
    return builds


def plan_file(cfg, phase):
    """The plan a phase runs: plan.json (fwd), or the backward's that
    config.json names (bwd: nsa.attention_grad, which recomputes the forward);
    None when the build has no backward."""
    if phase == "fwd":
        return "plan.json"
    return (cfg.get("backward") or {}).get("plan")


def load_build(directory, phase="fwd"):
    """(config.json, the phase's plan) of a build directory."""
    with open(os.path.join(directory, "config.json")) as f:
        cfg = json.load(f)
    name = plan_file(cfg, phase)
    if name is None:
        raise ValueError(f"{directory} has no backward plan (build it without --forward-only)")
    with open(os.path.join(directory, name)) as f:
        plan = json.load(f)
    return cfg, plan


def launch_labels(plan, cfg):
    """Each launch's breakdown label: the plan's, with the two compress
    launches told apart by whether they read the keys argument (as
    forward_check.find_roles does) and `` + combine`` after the branch that
    writes the output; a label seen twice gets ``#k``."""
    arg = {meaning: f"arg{i}" for i, meaning in enumerate(cfg["args"])}
    keys = arg.get("k_cmp", arg.get("k"))
    labels = []
    for launch in plan["launches"]:
        label = launch["label"]
        if label == "compress":
            label = "compress (k)" if keys in launch["args"] else "compress (v)"
        elif label in _BRANCHES and plan["outputs"][:1] == launch["args"][-1:]:
            label += " + combine"
        if label in labels:
            label = f"{label}#{sum(x.split('#')[0] == label for x in labels)}"
        labels.append(label)
    return labels


def launch_bytes(plan):
    """The least bytes each launch moves: each of its tensors once."""
    sizes = {v["name"]: math.prod(v["shape"]) * _BYTES[v["dtype"]]
             for v in plan["inputs"] + plan["buffers"]}
    return [sum(sizes[a] for a in set(launch["args"])) for launch in plan["launches"]]


# --------------------------------------------------------------------------
# The FLOP model
# --------------------------------------------------------------------------

def attended_pairs(cfg):
    """(P_cmp, P_slc, P_win): summed over query positions t < T, per (batch, head)."""
    T, l, d, l_sel, n, w = (cfg[k] for k in ("T", "l", "d", "l_sel", "n", "w"))
    p_cmp = p_slc = p_win = 0
    for t in range(T):
        if t >= l - 1:
            p_cmp += (t - l + 1) // d + 1  # compressed tokens i with i*d + l - 1 <= t
        if t // l_sel + 1 <= n:  # every candidate block is selected
            p_slc += t + 1
        else:  # n blocks: the one holding t (partial) and n - 1 whole ones
            p_slc += (n - 1) * l_sel + t % l_sel + 1
        p_win += min(t + 1, w)
    return p_cmp, p_slc, p_win


def flop_model(cfg):
    """{label: FLOPs} of one forward (see the module docstring)."""
    B, T, HQ, HKV, Dk, Dv, l, d = (cfg[k] for k in ("B", "T", "HQ", "HKV", "Dk", "Dv", "l",
                                                     "d"))
    Nc = 0 if T < l else (T - l) // d + 1
    p_cmp, p_slc, p_win = attended_pairs(cfg)
    if cfg.get("compress", "linear") == "linear":
        compress = {side: 2.0 * B * Nc * HKV * (l * D) * D for side, D in (("k", Dk), ("v", Dv))}
    else:
        compress = {side: 1.0 * B * Nc * HKV * l * D for side, D in (("k", Dk), ("v", Dv))}
    return {
        "compress (k)": compress["k"],
        "compress (v)": compress["v"],
        "compressed_attention": 2.0 * B * HQ * p_cmp * (Dk + Dv),
        "select_blocks": 2.0 * B * HQ * p_cmp * Dk,
        "window_attention": 2.0 * B * HQ * p_win * (Dk + Dv),
        "selected_attention": 2.0 * B * HQ * p_slc * (Dk + Dv),
        "combine": 5.0 * B * T * HQ * Dv,
    }


def describe(directory, phase="fwd"):
    """A build's launches with their label, kernel, FLOPs (forward labels
    only: the backward's recomputed forward) and least bytes."""
    cfg, plan = load_build(directory, phase)
    flops = flop_model(cfg)

    def work(label):
        pieces = label.split(" + ")
        return sum(flops[p] for p in pieces) if all(p in flops for p in pieces) else None
    return cfg, plan, [dict(label=label, kernel=launch["kernel"], flops=work(label),
                            bytes=nbytes)
                       for label, launch, nbytes in zip(launch_labels(plan, cfg),
                                                        plan["launches"], launch_bytes(plan))]


# --------------------------------------------------------------------------
# On the GPU (torch, nsa._runtime, forward_check's inputs)
# --------------------------------------------------------------------------

def _gpu_modules():
    """forward_check (inputs, runtime lookup, commit stamp) and the runtime binding."""
    if GPU_SCRIPTS not in sys.path:
        sys.path.insert(0, GPU_SCRIPTS)
    import forward_check  # noqa: E402  (puts python/ on sys.path)
    import forward_reference
    from nsa import _runtime
    return forward_check, forward_reference, _runtime


def find_runtime_lib(explicit=None):
    """As forward_check: --runtime-lib, $NSA_RUNTIME_LIBRARY, .gpu/runtime, build/lib."""
    return _gpu_modules()[0].find_runtime_lib(explicit)


def kernels_commit(kernels_dir):
    """The commit prepare stamped beside the builds (.gpu/commit), if any."""
    stamp = os.path.join(os.path.dirname(os.path.abspath(kernels_dir.rstrip("/"))), "commit")
    if os.path.isfile(stamp):
        with open(stamp) as f:
            return f.read().strip()
    return None


def measure_nsa(directory, runtime, config_name, args, time_pieces, peak_mb, device="cuda",
                phase="fwd"):
    """The ``nsa`` record of one build's forward (``phase`` fwd) or backward
    plan (bwd; its inputs are the forward's and a random d_o).

    ``time_pieces`` is bench.py's timer, run twice: the whole forward (events
    at its ends only) and the breakdown (events around each launch).
    ``peak_mb`` measures the first run, which allocates the plan's buffers.
    ``args``: seed, warmup, repeats. (``device`` is for tests.)
    """
    fc, fr, rt = _gpu_modules()
    cfg, _ = load_build(directory, "fwd")
    record = dict(impl="nsa", config=config_name, phase=phase, B=cfg["B"], T=cfg["T"],
                  build=os.path.basename(directory.rstrip("/")))
    if plan_file(cfg, phase) is None:
        record["error"] = "the build has no backward plan (built with --forward-only)"
        return record
    cfg, plan_json, launches = describe(directory, phase)
    plan = None
    try:
        plan = rt.Plan(runtime, os.path.join(directory, plan_file(cfg, phase)), device=device)
        inputs = fc.make_inputs(cfg, device, args.seed)
        if phase == "bwd":
            inputs = backward_inputs(runtime, directory, cfg, inputs, plan, device, args.seed)
        values = {}

        def first_run():  # allocation, poison, every launch
            values.update(plan.run(inputs, config=cfg))
        record["peak_mem_mb"] = round(peak_mb(first_run), 1)
        # A forward that leaves poison behind is timed, but says so.
        unwritten = [name for name in (b["name"] for b in plan.buffers)
                     if not fr.check_written(name, values[name], rt.INT_POISON)["ok"]]
        record["written"] = not unwritten
        # Each launch bound once (the plan's views of inputs and buffers); the
        # whole forward and the breakdown call the same closures.
        pieces = []
        for launch, info in zip(plan.launches, launches):
            tensors = plan._launch_tensors(launch, values)

            def piece(kernel=launch["kernel"], tensors=tensors):
                plan.manifest.launch(kernel, tensors, config=cfg)
            pieces.append((info["label"], piece))
        whole = time_pieces(pieces, args.warmup, args.repeats)
        split = time_pieces(pieces, args.warmup, args.repeats, split=True)
    except (RuntimeError, ValueError, KeyError) as error:  # runtime refusals, CUDA errors, OOM
        record["error"] = str(error).splitlines()[0]
        return record
    finally:
        if plan is not None:
            plan.manifest.close()

    # The model counts forward work only: a backward's total would be its
    # recomputed forward, so it gets none.
    total_flops = sum(info["flops"] or 0.0 for info in launches) if phase == "fwd" else None
    record["ms"] = whole["ms"]
    record["tflops"] = (None if total_flops is None
                        else round(total_flops / (whole["ms"] * 1e-3) / 1e12, 1))
    record["flops"] = total_flops
    kernels = []
    for info in launches:
        ms = split["pieces"][info["label"]]
        entry = dict(label=info["label"], kernel=info["kernel"], ms=ms, flops=info["flops"],
                     bytes=info["bytes"], gbps=round(info["bytes"] / (ms * 1e-3) / 1e9, 1))
        if info["flops"] is not None:
            entry["tflops"] = round(info["flops"] / (ms * 1e-3) / 1e12, 1)
        kernels.append(entry)
    record["kernels"] = kernels
    record["kernels_sum_ms"] = sum(k["ms"] for k in kernels)
    record["host_ms"] = whole["host_ms"]  # Python's time to enqueue the 7 launches
    what = ("forward" if phase == "fwd" else
            "backward (attention_grad: grads from the forward's saved intermediates)"
            if takes_saved(cfg) else "backward (attention_grad: recomputed forward + grads)")
    record["notes"] = (f"compiled NSA {what} (nsa._runtime.Plan); ms: whole plan, events at "
                       "its ends; kernels[].ms: events around each launch, separate runs; "
                       "flops: bench/nsa_bench.py's model (useful causal pairs; select_blocks "
                       "counts its QK recompute); gbps: least bytes (each tensor once)")
    if not record["written"]:
        record["notes"] += f"; POISON LEFT in {', '.join(unwritten)}"
    if whole["lead_short"] or split["lead_short"]:
        record["notes"] += (f"; host enqueue outran the GPU lead in "
                            f"{whole['lead_short'] + split['lead_short']} timed runs")
    return record


# --------------------------------------------------------------------------
# Without a GPU: the model and the runtime's checks
# --------------------------------------------------------------------------

def takes_saved(cfg):
    """Whether the build's backward plan takes the forward's saved intermediates
    (builds made before the forward returned them recompute the forward)."""
    return "idx" in cfg["backward"]["args"]


def backward_inputs(runtime, directory, cfg, inputs, plan, device, seed):
    """The backward ``plan``'s inputs in order: the layer's ``inputs``, the
    forward's saved intermediates where it takes them (one run of the forward
    plan on the same inputs, so that idx is a real selection), and a seeded d_o."""
    rt = _gpu_modules()[2]
    by_meaning = dict(zip(cfg["args"], inputs))
    if takes_saved(cfg):
        forward = rt.Plan(runtime, os.path.join(directory, plan_file(cfg, "fwd")), device=device)
        try:
            values = forward.run(inputs, config=cfg)
            by_meaning.update((meaning, values[name])
                              for meaning, name in zip(cfg["outputs"], forward.outputs))
        finally:
            forward.manifest.close()
    by_meaning["d_o"] = torch_randn_like_output(cfg, device, seed)
    # Buffers come in the kernels' layouts (grouped heads); the plan names its own.
    return [by_meaning[meaning].reshape(spec["shape"])
            for meaning, spec in zip(cfg["backward"]["args"], plan.inputs)]


def torch_randn_like_output(cfg, device, seed):
    """A seeded random d_o: [B, T, HQ, Dv] in the build's dtype."""
    import torch
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    return torch.randn(cfg["B"], cfg["T"], cfg["HQ"], cfg["Dv"], generator=gen,
                       device=device).to(_gpu_modules()[0].DTYPES[cfg["dtype"]])


def _load_runtime_binding():
    """python/nsa/_runtime.py by path, as build_kernels.py loads it (no torch)."""
    spec = importlib.util.spec_from_file_location(
        "nsa_runtime_binding", os.path.join(ROOT, "python", "nsa", "_runtime.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kernels", nargs="?", default=os.path.join(ROOT, ".gpu", "kernels"))
    parser.add_argument("--config", default="paper-d128", choices=CONFIGS)
    parser.add_argument("--T", type=int, nargs="+", default=[8192, 16384, 32768, 65536])
    parser.add_argument("--runtime-lib", default=None,
                        help="validate plans with this runtime (default: .gpu/runtime, then "
                             "build/lib; '' skips)")
    args = parser.parse_args()

    builds = find_builds(args.kernels, args.config, args.T)
    missing = [T for T in args.T if T not in builds]
    lib = args.runtime_lib
    if lib is None:
        lib = next((p for p in (os.path.join(ROOT, ".gpu", "runtime", "libnsa_runtime.so"),
                                os.path.join(ROOT, "build", "lib", "libnsa_runtime.so"))
                    if os.path.isfile(p)), "")
    binding = _load_runtime_binding() if lib else None
    runtime = binding.Runtime(lib) if binding else None
    failed = False
    for T in sorted(builds):
        cfg, plan_json, launches = describe(builds[T])
        shapes = [None] * len(launches)
        if runtime:
            plan = binding.Plan(runtime, os.path.join(builds[T], "plan.json"), device="cpu")
            try:
                shapes = plan.validate(config=cfg)
            except binding.NSARuntimeError as error:
                print(f"  FAILED the runtime's checks: {error}")
                failed = True
            finally:
                plan.manifest.close()
        total = sum(x["flops"] or 0 for x in launches)
        print(f"\n{os.path.basename(builds[T])} (T={T}): {total / 1e12:.2f} TFLOP, "
              f"checked by {'the runtime ' + lib if runtime else 'nothing (no runtime)'}")
        print("| launch | kernel | grid | block | smem | GFLOP | least MB | share of FLOPs |")
        print("|---|---|---|---|---|---|---|---|")
        for x, shape in zip(launches, shapes):
            grid = "x".join(map(str, shape["grid"])) if shape else "-"
            block = "x".join(map(str, shape["block"])) if shape else "-"
            smem = shape["shared_bytes"] if shape else "-"
            gflop = "-" if x["flops"] is None else f"{x['flops'] / 1e9:.1f}"
            share = "-" if x["flops"] is None else f"{100 * x['flops'] / total:.1f}%"
            print(f"| {x['label']} | {x['kernel']} | {grid} | {block} | {smem} | {gflop} | "
                  f"{x['bytes'] / 2**20:.1f} | {share} |")
    if missing:
        print(f"\nno {args.config} build for T = {missing} under {args.kernels} "
              f"(scripts/gpu/build_kernels.py --set bench)")
    sys.exit(1 if failed or missing else 0)


if __name__ == "__main__":
    main()

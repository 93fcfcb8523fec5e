#!/usr/bin/env python3
"""Runs compiled NSA forward kernels on a GPU and checks them against SPEC.md.

For each build directory (scripts/gpu/build_kernels.py: config.json,
plan.json, manifest.json, kernels.ptx) it makes seeded random inputs, runs
the plan through libnsa_runtime.so (every buffer poisoned first), and checks
against a float32 PyTorch reference computed on the GPU from the same inputs:

  written:<buffer>   no poison left in any buffer (NaN floats, -7777 ints)
  compress.kc/.vc    compressed keys/values               rel_l2 <= SPEC bound
  select.idx         SPEC section 3's acceptance rule (near-ties tolerated)
  cmp.o / cmp.lse    compressed branch, from the kernel's kc/vc
  slc.o / slc.lse    selected branch, given the kernel's idx (once accepted)
  win.o / win.lse    sliding window
  combine            the gated sum of the kernel's own branch outputs
  output             end to end: float32 chain (reference kc/vc, kernel idx)

Above --full-max-T tokens, branches are checked on a sample of query rows
(edges plus --sample-rows random rows), with a row-wise reference that only
builds what those rows read (forward_reference.py). Each configuration runs
in its own process, so a kernel fault cannot take the others down. Exits
non-zero on any failure.

    python3 scripts/gpu/forward_check.py [DIR ...] [--json out.json]
    python3 scripts/gpu/forward_check.py --self-test     # CPU: checks the checker
"""

import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, HERE)
import build_kernels  # noqa: E402  (configurations and argument layouts)
import forward_reference as fr  # noqa: E402
from nsa import reference as ref  # noqa: E402
from nsa._runtime import INT_POISON, NSARuntimeError, Plan, Runtime, _torch_dtype  # noqa: E402
from nsa.build_kernels import SAVED_NAMES, saved_types  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16}
# The compiler's kernel labels and what their results mean.
# A branch launch's third result, when it has one, is the final output: nsa-tile
# fuses the combination into the program of the branch that runs last.
ROLES = {"compressed_attention": ("o_cmp", "lse_cmp", "out"), "select_blocks": ("idx",),
         "selected_attention": ("o_slc", "lse_slc", "out"),
         "window_attention": ("o_win", "lse_win", "out"), "combine": ("out",)}


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------

def make_inputs(cfg, device, seed):
    """Seeded inputs in argument order: q, k, v ~ randn; gates = sigmoid(randn);
    W ~ randn / sqrt(l*D) (compressed tokens stay O(1)); PE ~ 0.1 randn."""
    gen = torch.Generator(device=device).manual_seed(seed)
    dt = DTYPES[cfg["dtype"]]
    shapes = build_kernels.arg_shapes(cfg)
    inputs = []
    for name in cfg["args"]:
        x = torch.randn(shapes[name], generator=gen, device=device)
        if name == "gates":
            x = torch.sigmoid(x)
        elif name.startswith("w_"):
            x = x / math.sqrt(shapes[name][1])  # [HKV, l*D, D]
        elif name.startswith("pe_"):
            x = 0.1 * x
        inputs.append(x.to(dt))
    return inputs


def by_meaning(cfg, inputs):
    """Inputs by name; shared K/V serves as every branch's."""
    named = dict(zip(cfg["args"], inputs))
    for branch in ("cmp", "slc", "win"):
        for side in ("k", "v"):
            named.setdefault(f"{side}_{branch}", named.get(side))
    return named


# --------------------------------------------------------------------------
# Plan results -> roles
# --------------------------------------------------------------------------

def find_roles(plan, cfg):
    """{role: buffer name} from the plan's launches.

    Results are named ``<label><k>.<r>``; of the two compress launches, the
    one reading the keys argument produces kc.
    """
    arg = {meaning: f"arg{i}" for i, meaning in enumerate(cfg["args"])}
    keys = arg.get("k_cmp", arg.get("k"))
    names = {b["name"] for b in plan["buffers"]}
    counts, roles = {}, {}
    for launch in plan["launches"]:
        label = launch["label"]
        k = counts[label] = counts.get(label, -1) + 1
        if label == "compress":
            meanings = ("kc",) if keys in launch["args"] else ("vc",)
        else:
            meanings = ROLES.get(label, ())
        for r, role in enumerate(meanings):
            if f"{label}{k}.{r}" in names:
                roles[role] = f"{label}{k}.{r}"
    return roles


def canonical(cfg, roles, values):
    """Role tensors in SPEC shapes (branch o/lse come GQA-grouped), dtype-checked.

    Returns (tensors, problems): a missing or mistyped role is a problem.
    """
    want = {role: (shape, _torch_dtype(dtype)) for role, (shape, dtype)
            in saved_types(cfg).items()}
    want["out"] = ([cfg[k] for k in ("B", "T", "HQ", "Dv")], DTYPES[cfg["dtype"]])
    tensors, problems = {}, []
    for role, (shape, dtype) in want.items():
        if role not in roles:
            problems.append(f"no buffer for {role}")
            continue
        t = values[roles[role]]
        if t.dtype != dtype or t.numel() != math.prod(shape):
            problems.append(f"{roles[role]} ({role}) is {t.dtype} {list(t.shape)}, "
                            f"expected {dtype} {shape}")
            continue
        tensors[role] = t.reshape(shape)
    return tensors, problems


# --------------------------------------------------------------------------
# The checks of one configuration
# --------------------------------------------------------------------------

def check_outputs(cfg, inputs, got, rows, budget=fr.DEFAULT_BUDGET):
    """Every comparison of SPEC.md for the kernel results ``got`` (by role).

    ``rows``: the query positions to check (all of them, or a sample).
    """
    c = fr.nsa_config(cfg)
    tol = fr.TOLERANCE[cfg["dtype"]]
    scale = c.softmax_scale(cfg["Dk"])
    x = by_meaning(cfg, inputs)
    f32 = {name: x[name].float() for name in ("k_slc", "v_slc", "k_win", "v_win")}
    Q = x["q"][:, rows].float()
    mode = cfg["compress"]
    out = []

    kc_ref = fr.compress(x["k_cmp"], c, mode, x.get("w_k"), x.get("pe_k"))
    vc_ref = fr.compress(x["v_cmp"], c, mode, x.get("w_v"), x.get("pe_v"))
    out.append(fr.compare_output("compress.kc", got["kc"], kc_ref, tol))
    out.append(fr.compare_output("compress.vc", got["vc"], vc_ref, tol))

    # Each kernel is checked on its own inputs as the kernel received them
    # (upcast), so one kernel's rounding is not charged to the next; broken
    # (non-finite) compressed tokens are replaced by the reference's so that
    # the later checks still judge their own kernels.
    kc, vc = (t.float() if torch.isfinite(t).all() else r
              for t, r in ((got["kc"], kc_ref), (got["vc"], vc_ref)))
    o_cmp, lse_cmp = fr.compressed_rows(Q, rows, kc, vc, c, scale, budget)

    P = fr.block_scores_rows(Q, rows, kc, lse_cmp, c, scale, budget)
    idx = got["idx"][:, rows]
    sel = fr.selection_violations(idx, P, rows, c)
    note = (f"{sel['bad']}/{sel['total']} (row, head) rejected {sel['by_reason']}; "
            f"worst tie shortfall {sel['worst_shortfall']:.2e} of max P")
    if sel["bad"]:
        note += f"; e.g. {sel['example']}; selected branch checked with the reference idx"
        idx = fr.top_n_rows(P, rows, c)  # so slc.o still says something
    out.append(fr.record("select.idx", sel["bad"] == 0, "bad_rows", sel["bad"], 0, note=note))

    out.append(fr.compare_output("cmp.o", got["o_cmp"][:, rows], o_cmp, tol))
    out.append(fr.compare_lse("cmp.lse", got["lse_cmp"][:, rows], lse_cmp, tol))
    o_slc, lse_slc = fr.selected_rows(Q, rows, f32["k_slc"], f32["v_slc"], idx, c, scale, budget)
    out.append(fr.compare_output("slc.o", got["o_slc"][:, rows], o_slc, tol))
    out.append(fr.compare_lse("slc.lse", got["lse_slc"][:, rows], lse_slc, tol))
    o_win, lse_win = fr.window_rows(Q, rows, f32["k_win"], f32["v_win"], c, scale, budget)
    out.append(fr.compare_output("win.o", got["o_win"][:, rows], o_win, tol))
    out.append(fr.compare_lse("win.lse", got["lse_win"][:, rows], lse_win, tol))

    g = x["gates"][:, rows]
    own = fr.combine(g, got["o_cmp"][:, rows], got["o_slc"][:, rows], got["o_win"][:, rows])
    out.append(fr.compare_output("combine", got["out"][:, rows], own, tol))
    # End to end in float32: the reference's own compressed tokens; the
    # selected branch keeps the (accepted) kernel idx so a near-tie cannot
    # cascade into a different block set.
    o_cmp_chain, _ = fr.compressed_rows(Q, rows, kc_ref, vc_ref, c, scale, budget)
    chain = fr.combine(g, o_cmp_chain, o_slc, o_win)
    out.append(fr.compare_output("output", got["out"][:, rows], chain, tol))
    return out


def check_values(cfg, plan, values, inputs, rows, budget=fr.DEFAULT_BUDGET):
    """Poison checks of every buffer, then the role checks."""
    records = [fr.check_written(f"written:{b['name']}", values[b["name"]], INT_POISON)
               for b in plan["buffers"]]
    roles = find_roles(plan, cfg)
    got, problems = canonical(cfg, roles, values)
    # The layer returns o, then the intermediates its backward takes.
    expected = [roles.get(r) for r in ["out", *SAVED_NAMES]]
    if plan["outputs"] != expected:
        problems.append(f"plan outputs {plan['outputs']}, expected {expected}")
    if problems:
        records.append(fr.record("roles", False, "problems", len(problems), 0,
                                 note="; ".join(problems)))
        return records
    return records + check_outputs(cfg, inputs, got, rows, budget)


def rows_for(cfg, args, device):
    """All query rows up to --full-max-T, else a sample."""
    T = cfg["T"]
    if T <= args.full_max_T:
        return torch.arange(T, device=device), False
    return fr.sample_rows(T, args.sample_rows, fr.nsa_config(cfg), args.seed, device), True


def print_records(name, records):
    """One line per check: name, metric and value, bound, max |error|, PASS/FAIL."""
    for r in records:
        value = r["value"]
        shown = f"{value:.3e}" if isinstance(value, float) else str(value)
        max_abs = ("" if r["max_abs"] is None or r["metric"] == "max_abs"
                   else f" max_abs {r['max_abs']:.3e}")
        # Notes explain failures; selection's (tie margins) is always worth a look.
        show_note = r["note"] and (not r["ok"] or r["check"] == "select.idx")
        print(f"  {'PASS' if r['ok'] else 'FAIL'}  {name:40s} {r['check']:32s} "
              f"{r['metric']} {shown} (bound {r['bound']}){max_abs}"
              f"{'  ' + r['note'] if show_note else ''}", flush=True)


# --------------------------------------------------------------------------
# One configuration on the GPU
# --------------------------------------------------------------------------

def run_config(directory, runtime, args):
    """Runs and checks one build directory; returns its result record."""
    with open(os.path.join(directory, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(directory, "plan.json")) as f:
        plan_json = json.load(f)
    result = dict(name=cfg["name"], config=cfg, B=cfg["B"], T=cfg["T"])
    plan = Plan(runtime, os.path.join(directory, "plan.json"), device="cuda")
    inputs = make_inputs(cfg, "cuda", args.seed)

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    values = plan.run(inputs, config=cfg)
    torch.cuda.synchronize()  # a kernel fault surfaces here
    peak = torch.cuda.max_memory_allocated() - base
    input_bytes = sum(t.numel() * t.element_size() for t in inputs)
    result.update(peak_extra_mb=peak / 2**20, inputs_mb=input_bytes / 2**20,
                  buffers_mb=plan.buffer_bytes() / 2**20,
                  peak_extra_bytes_per_token=peak / (cfg["B"] * cfg["T"]))

    rows, sampled = rows_for(cfg, args, "cuda")
    result.update(rows_checked=int(rows.numel()), sampled=sampled)
    records = check_values(cfg, plan_json, values, inputs, rows, args.budget)

    # Informational: the launches alone (no poisoning), median of a few runs.
    if args.repeats:
        times = []
        for _ in range(args.repeats + 1):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            plan.launch(values, config=cfg)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        result["ms"] = statistics.median(times[1:])  # the first warms the module load
    result["checks"] = records
    result["ok"] = all(r["ok"] for r in records)
    return result


def run_isolated(directory, args):
    """run_config in a child process (a kernel fault poisons the CUDA context)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        part = f.name
    cmd = [sys.executable, os.path.abspath(__file__), directory, "--in-process",
           "--part", part, "--seed", str(args.seed), "--full-max-T", str(args.full_max_T),
           "--sample-rows", str(args.sample_rows), "--budget", str(args.budget),
           "--repeats", str(args.repeats)]
    if args.runtime_lib:
        cmd += ["--runtime-lib", args.runtime_lib]
    proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
    try:
        with open(part) as f:
            return json.load(f)
    except (OSError, ValueError):
        tail = proc.stderr.strip().splitlines()[-15:]
        print("\n".join("  | " + line for line in tail))
        return dict(name=os.path.basename(directory.rstrip("/")), ok=False,
                    checks=[fr.record("run", False, "exit_code", proc.returncode, 0,
                                      note=" / ".join(tail[-3:]))])
    finally:
        if os.path.exists(part):
            os.remove(part)


# --------------------------------------------------------------------------
# Self-test: the checker against a simulated kernel, on any device
# --------------------------------------------------------------------------

def synthetic_plan(cfg):
    """(plan, manifest) dicts in the compiler's formats for one configuration.

    Branch o/lse buffers are GQA-grouped, and the selected launch, last,
    also writes the combination, as the compiler's plans do; every kernel has one
    auto scalar (its T) so that the AUTO path is exercised.
    """
    B, T, HQ, HKV, Dk, Dv, n = (cfg[k] for k in ("B", "T", "HQ", "HKV", "Dk", "Dv", "n"))
    G, dt = HQ // HKV, cfg["dtype"]
    Nc = 0 if T < cfg["l"] else (T - cfg["l"]) // cfg["d"] + 1
    shapes = build_kernels.arg_shapes(cfg)
    inputs = [dict(name=f"arg{i}", dtype=dt, shape=shapes[m]) for i, m in enumerate(cfg["args"])]
    arg = {m: f"arg{i}" for i, m in enumerate(cfg["args"])}
    a = lambda m: arg.get(m, arg.get(m[0]))  # noqa: E731  (k_slc -> k when shared)
    grouped_o, grouped_lse = [B, T, HKV, G, Dv], [B, T, HKV, G]
    buffers, launches, kernels = [], [], []

    def launch(label, k, ins, results, views=None):
        name = f"nsa_layer_k{len(launches)}"
        outs = [f"{label}{k}.{r}" for r in range(len(results))]
        buffers.extend(dict(name=o, dtype=d, shape=s) for o, (d, s) in zip(outs, results))
        args = ins + outs
        specs = {s["name"]: s for s in inputs + buffers}
        params = [dict(name=f"p{i}", kind="tensor", dtype=specs[v]["dtype"],
                       shape=(views or {}).get(v, specs[v]["shape"])) for i, v in enumerate(args)]
        params.append(dict(name="T", kind="i32", value=str(T)))
        grid = "0" if label == "compress" and Nc == 0 else "1"
        kernels.append(dict(name=name, op=label, module="kernels.ptx",
                            config={f: None for f in ("l", "d", "l_sel", "n", "init", "local",
                                                      "w", "scale", "G", "Dk", "Dv", "dtype")},
                            params=params, grid=[grid, "1", "1"], block=[128, 1, 1],
                            shared_bytes=0))
        launches.append(dict(kernel=name, label=label, args=args))

    extra_k = [arg[m] for m in ("w_k", "pe_k") if m in arg]
    extra_v = [arg[m] for m in ("w_v", "pe_v") if m in arg]
    launch("compress", 0, [a("k_cmp")] + extra_k, [(dt, [B, Nc, HKV, Dk])])
    launch("compress", 1, [a("v_cmp")] + extra_v, [(dt, [B, Nc, HKV, Dv])])
    q_grouped = {arg["q"]: [B, T, HKV, G, Dk]}
    launch("compressed_attention", 0, [arg["q"], "compress0.0", "compress1.0"],
           [(dt, grouped_o), ("f32", grouped_lse)], q_grouped)
    launch("select_blocks", 0, [arg["q"], "compress0.0", "compressed_attention0.1"],
           [("i32", [B, T, HKV, n])])
    launch("window_attention", 0, [arg["q"], a("k_win"), a("v_win")],
           [(dt, grouped_o), ("f32", grouped_lse)])
    # The selected program runs last and computes the combination too (its
    # third result), reading the gates and the other branches grouped.
    grouped = {**q_grouped, arg["gates"]: [B, T, HKV, G, 3]}
    launch("selected_attention", 0, [arg["q"], a("k_slc"), a("v_slc"), "select_blocks0.0",
                                     arg["gates"], "compressed_attention0.0",
                                     "window_attention0.0"],
           [(dt, grouped_o), ("f32", grouped_lse), (dt, grouped_o)], grouped)
    plan = dict(format="nsa-host-plan", version=1, function="nsa_layer", manifest="manifest.json",
                inputs=inputs, buffers=buffers, launches=launches,
                outputs=["selected_attention0.2", "compress0.0", "compress1.0",
                         "compressed_attention0.0", "compressed_attention0.1", "select_blocks0.0",
                         "selected_attention0.0", "selected_attention0.1", "window_attention0.0",
                         "window_attention0.1"])
    manifest = dict(format="nsa-kernel-manifest", version=1, target="sm_90a", kernels=kernels)
    return plan, manifest


def simulate(cfg, plan, inputs, device):
    """A stand-in for the kernels: nsa.reference, rounded like a kernel chain.

    Fills poisoned buffers as a plan run would: compressed tokens in the
    activation dtype feed the compressed branch and the selection, and the
    combination reads the rounded branch outputs.
    """
    c, dt = fr.nsa_config(cfg), DTYPES[cfg["dtype"]]
    x = {k: (None if t is None else t.float()) for k, t in by_meaning(cfg, inputs).items()}
    mode = cfg["compress"]
    kc = ref.compress(x["k_cmp"], c, x.get("w_k"), x.get("pe_k"), mode).to(dt)
    vc = ref.compress(x["v_cmp"], c, x.get("w_v"), x.get("pe_v"), mode).to(dt)
    o_cmp, lse_cmp = ref.compressed_attention(x["q"], kc.float(), vc.float(), c)
    idx = ref.select_blocks(x["q"], kc.float(), lse_cmp, c)
    # nsa.reference returns no lse for these two; the row-wise reference
    # does (validated against nsa.reference's o in the self-test).
    rows = torch.arange(cfg["T"], device=device)
    scale = c.softmax_scale(cfg["Dk"])
    _, lse_slc = fr.selected_rows(x["q"], rows, x["k_slc"], x["v_slc"], idx, c, scale)
    _, lse_win = fr.window_rows(x["q"], rows, x["k_win"], x["v_win"], c, scale)
    o_slc = ref.selected_attention(x["q"], x["k_slc"], x["v_slc"], idx, c).to(dt)
    o_win = ref.window_attention(x["q"], x["k_win"], x["v_win"], c).to(dt)
    o_cmp = o_cmp.to(dt)
    out = ref.combine(x["gates"], o_cmp.float(), o_slc.float(), o_win.float()).to(dt)
    results = dict(kc=kc, vc=vc, o_cmp=o_cmp, lse_cmp=lse_cmp, idx=idx, o_slc=o_slc,
                   lse_slc=lse_slc, o_win=o_win, lse_win=lse_win, out=out)
    values = {}
    for b in plan["buffers"]:
        t = torch.empty(b["shape"], dtype={"f32": torch.float32, "i32": torch.int32,
                                           **DTYPES}[b["dtype"]], device=device)
        t.fill_(float("nan") if t.is_floating_point() else INT_POISON)
        values[b["name"]] = t
    for role, name in find_roles(plan, cfg).items():
        values[name].copy_(results[role].reshape(values[name].shape))
    return values


def self_test_configs():
    """Small configurations that run in seconds on a CPU."""
    cfg = build_kernels._cfg
    configs = [
        # More blocks than n: a real top-n; per-branch K/V, linear + PE.
        cfg("self-select", B=2, T=300, HQ=8, HKV=2, Dk=32, Dv=16, l=16, d=8, l_sel=16, n=6,
            init=1, local=2, w=40),
        # T < l: no compressed token.
        cfg("self-short", T=31, HQ=4, HKV=2, Dk=64, Dv=64, compress="mean", pe=False,
            kv="shared"),
        # G = 16, fp16, linear without PE, shared K/V, explicit scale.
        cfg("self-g16-f16", T=1000, HQ=16, HKV=1, Dk=64, Dv=32, dtype="f16", n=8, pe=False,
            kv="shared", scale=0.2),
    ]
    for c in configs:
        c.update(G=c["HQ"] // c["HKV"], args=build_kernels.arg_names(c))
    return configs


def _mutations(cfg, plan, inputs, device):
    """(what, mutate(values), checks that must FAIL) for the first self-test config."""
    roles = find_roles(plan, cfg)
    c = fr.nsa_config(cfg)

    def grab(values, role):
        got, _ = canonical(cfg, roles, values)
        return got[role]

    def bad_block(values, forced):
        """Swap one chosen block for the worst unchosen candidate, or drop a forced one."""
        idx = grab(values, "idx")
        rows = torch.arange(cfg["T"], device=device)
        x = by_meaning(cfg, inputs)
        kc = grab(values, "kc").float()
        scale = c.softmax_scale(cfg["Dk"])
        _, lse = fr.compressed_rows(x["q"].float(), rows, kc, grab(values, "vc").float(), c,
                                    scale)
        P = fr.block_scores_rows(x["q"].float(), rows, kc, lse, c, scale)
        t = cfg["T"] - 1
        current = t // c.l_sel
        chosen = idx[0, t, 0].tolist()
        unchosen = [j for j in range(current + 1) if j not in chosen]
        worst = min(unchosen, key=lambda j: float(P[0, 0, t, j]))
        victim = current if forced else next(j for j in chosen if c.init <= j < current - 1)
        idx[0, t, 0] = torch.tensor(sorted(worst if j == victim else j for j in chosen))

    def scale_role(role, factor):
        return lambda v: grab(v, role).mul_(factor)

    def poke(role, value):
        return lambda v: grab(v, role).view(-1).__setitem__(7, value)

    def shift_lse(v):
        lse = grab(v, "lse_win")
        lse.add_(0.1)

    return [
        ("final output element left unwritten", poke("out", float("nan")),
         {f"written:{roles['out']}", "output", "combine"}),
        ("idx entry left as poison", poke("idx", INT_POISON),
         {"written:select_blocks0.0", "select.idx"}),
        ("kc off by 3%", scale_role("kc", 1.03), {"compress.kc"}),
        ("vc off by 3%", scale_role("vc", 1.03), {"compress.vc"}),
        ("window o off by 3%", scale_role("o_win", 1.03), {"win.o"}),
        ("window lse +0.1", shift_lse, {"win.lse"}),
        ("selected o off by 3%", scale_role("o_slc", 1.03), {"slc.o"}),
        ("compressed o off by 3%", scale_role("o_cmp", 1.03), {"cmp.o"}),
        ("a chosen block swapped for the worst candidate", lambda v: bad_block(v, False),
         {"select.idx"}),
        ("the forced current block dropped", lambda v: bad_block(v, True), {"select.idx"}),
        ("final output off by 3%", scale_role("out", 1.03), {"output", "combine"}),
    ]


def _selection_unit_tests():
    """The acceptance rule on hand-made scores: near-ties pass, the rest fail."""
    c = fr.NSAConfig(l=16, d=16, l_sel=16, n=4, init=1, local=1, w=16)
    pos = torch.tensor([9 * 16 + 3])  # current block 9; forced {0, 9}; two free slots
    P = torch.zeros(1, 1, 1, 10)
    P[0, 0, 0, 1:5] = torch.tensor([0.5, 0.3, 0.3 - 1e-4, 0.1])  # 1e-4 < 1e-3 * 0.5
    cases = [([0, 1, 2, 9], True, "exact top-n"), ([0, 1, 3, 9], True, "near-tie swap"),
             ([0, 1, 4, 9], False, "clearly worse block"), ([0, 1, 2, 3], False, "forced missing"),
             ([1, 0, 2, 9], False, "not ascending"), ([0, 1, 9, -1], False, "too few"),
             ([0, 1, 1, 9], False, "duplicate"), ([0, 1, 2, 10], False, "future block"),
             ([0, 1, 2, INT_POISON], False, "poison")]
    failures = []
    for idx, accept, what in cases:
        v = fr.selection_violations(torch.tensor(idx, dtype=torch.int32).view(1, 1, 1, 4), P,
                                    pos, c)
        if (v["bad"] == 0) != accept:
            failures.append(f"{what}: {idx} {'rejected' if accept else 'accepted'} ({v})")
    # Fewer candidates than n: every candidate, then -1.
    pos = torch.tensor([20])  # blocks 0, 1
    for idx, accept in (([0, 1, -1, -1], True), ([1, -1, -1, -1], False)):
        v = fr.selection_violations(torch.tensor(idx, dtype=torch.int32).view(1, 1, 1, 4),
                                    torch.zeros(1, 1, 1, 2), pos, c)
        if (v["bad"] == 0) != accept:
            failures.append(f"few candidates: {idx} {'rejected' if accept else 'accepted'}")
    return failures


def _row_reference_matches(cfg, inputs, device):
    """The row-wise reference equals nsa.reference on all rows and on a sample."""
    c = fr.nsa_config(cfg)
    x = {k: (None if t is None else t.float()) for k, t in by_meaning(cfg, inputs).items()}
    scale = c.softmax_scale(cfg["Dk"])
    kc = ref.compress(x["k_cmp"], c, x.get("w_k"), x.get("pe_k"), cfg["compress"])
    vc = ref.compress(x["v_cmp"], c, x.get("w_v"), x.get("pe_v"), cfg["compress"])
    o_cmp, lse_cmp = ref.compressed_attention(x["q"], kc, vc, c)
    idx = ref.select_blocks(x["q"], kc, lse_cmp, c)
    full = dict(o_cmp=o_cmp, lse_cmp=lse_cmp, idx=idx,
                o_slc=ref.selected_attention(x["q"], x["k_slc"], x["v_slc"], idx, c),
                o_win=ref.window_attention(x["q"], x["k_win"], x["v_win"], c))
    problems = []
    T = cfg["T"]
    for rows in (torch.arange(T, device=device), fr.sample_rows(T, 16, c, 1, device)):
        Q = x["q"][:, rows]
        # A tiny budget forces many chunks, so chunk edges are exercised.
        o, lse = fr.compressed_rows(Q, rows, kc, vc, c, scale, budget=4096)
        P = fr.block_scores_rows(Q, rows, kc, lse, c, scale, budget=4096)
        mine = dict(o_cmp=o, lse_cmp=lse, idx=fr.top_n_rows(P, rows, c),
                    o_slc=fr.selected_rows(Q, rows, x["k_slc"], x["v_slc"], idx[:, rows], c,
                                           scale, budget=4096)[0],
                    o_win=fr.window_rows(Q, rows, x["k_win"], x["v_win"], c, scale,
                                         budget=4096)[0])
        for key, value in mine.items():
            expected = full[key][:, rows]
            if key == "idx":
                same = torch.equal(value, expected)
            else:
                fin = torch.isfinite(expected)
                same = torch.equal(fin, torch.isfinite(value)) and torch.allclose(
                    value[fin], expected[fin], rtol=1e-4, atol=1e-5)
            if not same:
                problems.append(f"{cfg['name']} {key} ({rows.numel()} rows) differs from "
                                f"nsa.reference")
    return problems


def _runtime_tests(cfg, plan, manifest, lib):
    """Plan/Manifest against the real runtime with placeholder tensors."""
    problems = []
    with tempfile.TemporaryDirectory() as d:
        for name, obj in (("plan.json", plan), ("manifest.json", manifest)):
            with open(os.path.join(d, name), "w") as f:
                json.dump(obj, f)
        open(os.path.join(d, "kernels.ptx"), "w").close()
        runtime = Runtime(lib)
        p = Plan(runtime, os.path.join(d, "plan.json"), device="cpu")
        launches = p.validate(config=cfg)  # views (q grouped, o flat) and AUTO scalars
        if len(launches) != len(plan["launches"]):
            problems.append("Plan.validate skipped launches")
        first = plan["launches"][0]
        tensors = [torch.zeros(s["shape"], dtype=DTYPES[s["dtype"]])
                   for s in (p.values[a] for a in first["args"])]
        # T - 1 tokens: the runtime must refuse it, naming the dimension.
        tensors[0] = torch.zeros([cfg["B"], cfg["T"] - 1] + list(tensors[0].shape[2:]),
                                 dtype=tensors[0].dtype)
        try:
            p.manifest.plan_launch(first["kernel"], tensors)
            problems.append("a wrongly shaped tensor was not refused")
        except NSARuntimeError as error:
            if error.status_name != "NSA_ERROR_SHAPE_MISMATCH":
                problems.append(f"unexpected refusal {error}")
            else:
                print(f"  refused as expected: {str(error)[:150]}...")
        p.manifest.close()
    return problems


def _empty_kernels_ptx(manifest):
    """PTX with one do-nothing entry per manifest kernel (same signatures)."""
    ptx = [".version 8.0", ".target sm_90a", ".address_size 64", ""]
    types = {"tensor": "u64", "i32": "u32", "i64": "u64", "f32": "f32"}
    for k in manifest["kernels"]:
        params = ",\n  ".join(f".param .{types[p['kind']]} {k['name']}_{p['name']}"
                              for p in k["params"])
        ptx.append(f".visible .entry {k['name']}(\n  {params}\n)\n{{\n  ret;\n}}\n")
    return "\n".join(ptx)


def _gpu_plan_test(cfg, plan, manifest, lib, args):
    """run_config on a synthetic build whose kernels write nothing (CUDA only).

    Exercises the real launch path (module load, views, AUTO scalars, the
    stream) and proves that a run leaving its buffers unwritten fails every
    check instead of comparing stale memory.
    """
    with tempfile.TemporaryDirectory() as d:
        files = {"config.json": json.dumps(cfg), "plan.json": json.dumps(plan),
                 "manifest.json": json.dumps(manifest), "kernels.ptx": _empty_kernels_ptx(manifest)}
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        result = run_config(d, Runtime(lib), args)
    # Only a check of an empty tensor (no compressed token when T < l) may pass.
    empty = {f"written:{b['name']}" for b in plan["buffers"] if math.prod(b["shape"]) == 0}
    if cfg["T"] < cfg["l"]:
        empty |= {"compress.kc", "compress.vc"}
    passed = [r["check"] for r in result["checks"] if r["ok"] and r["check"] not in empty]
    print(f"  {cfg['name']}: {len(plan['launches'])} empty kernels launched through Plan.run, "
          f"peak extra {result['peak_extra_mb']:.1f} MiB, {result.get('ms', 0):.3f} ms: "
          f"{'PASS (every check fails)' if not passed else 'FAIL: passed ' + str(passed)}")
    return [f"{cfg['name']}: unwritten buffers passed {passed}"] if passed else []


def self_test(args):
    device = args.device
    print(f"self-test on {device}, torch {torch.__version__}")
    failures = _selection_unit_tests()
    print(f"  selection rule unit cases: {'PASS' if not failures else 'FAIL'}")
    for i, cfg in enumerate(self_test_configs()):
        plan, manifest = synthetic_plan(cfg)
        inputs = make_inputs(cfg, device, args.seed)
        problems = _row_reference_matches(cfg, inputs, device)
        print(f"  {cfg['name']}: row-wise reference == nsa.reference: "
              f"{'PASS' if not problems else 'FAIL'}")
        failures += problems
        lib = args.runtime_lib or os.path.join(ROOT, "build", "lib", "libnsa_runtime.so")
        if os.path.isfile(lib):
            problems = _runtime_tests(cfg, plan, manifest, lib)
            print(f"  {cfg['name']}: Plan/Manifest through {lib}: "
                  f"{'PASS' if not problems else 'FAIL'}")
            failures += problems
            if device == "cuda":
                failures += _gpu_plan_test(cfg, plan, manifest, lib, args)
        for sampled in (False, True):
            rows = (fr.sample_rows(cfg["T"], 24, fr.nsa_config(cfg), 3, device) if sampled
                    else torch.arange(cfg["T"], device=device))
            values = simulate(cfg, plan, inputs, device)
            records = check_values(cfg, plan, values, inputs, rows, budget=1 << 16)
            bad = [r["check"] for r in records if not r["ok"]]
            mode = f"{rows.numel()} sampled rows" if sampled else "all rows"
            print(f"  {cfg['name']}: faithful simulated kernels, {mode}: "
                  f"{'PASS (all checks pass)' if not bad else 'FAIL ' + str(bad)}")
            if bad:
                print_records(cfg["name"], [r for r in records if not r["ok"]])
                failures.append(f"{cfg['name']} ({mode}): false alarms {bad}")
            if i or sampled:
                continue
            for what, mutate, expected in _mutations(cfg, plan, inputs, device):
                values = simulate(cfg, plan, inputs, device)
                mutate(values)
                records = check_values(cfg, plan, values, inputs, rows, budget=1 << 16)
                failed = {r["check"] for r in records if not r["ok"]}
                ok = expected <= failed
                print(f"  {'PASS' if ok else 'FAIL'}  perturbed: {what:48s} -> "
                      f"FAIL of {sorted(failed)}")
                if not ok:
                    failures.append(f"{what}: expected {sorted(expected)} to fail, "
                                    f"got {sorted(failed)}")
    print("self-test " + ("PASSED" if not failures else "FAILED:\n  " + "\n  ".join(failures)))
    return not failures


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def write_results(device, what, fields, path=None):
    """Writes ``{device, date, **fields}`` as JSON to ``path``, by default
    bench/results/<date>-<card>-<what>.json (the card as results files spell
    it, e.g. H100-80GB-HBM3); returns the path."""
    date = datetime.date.today().isoformat()
    card = device.replace("NVIDIA ", "").replace(" ", "-")
    path = path or os.path.join(ROOT, "bench", "results", f"{date}-{card}-{what}.json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(dict(device=device, date=date, **fields), f, indent=1)
        f.write("\n")
    return path


def commit():
    """The commit the kernels were built from (.gpu/commit from prepare, else git)."""
    stamp = os.path.join(ROOT, ".gpu", "commit")
    if os.path.isfile(stamp):
        with open(stamp) as f:
            return f.read().strip()
    try:
        return subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def find_runtime_lib(explicit):
    for path in (explicit, os.environ.get("NSA_RUNTIME_LIBRARY"),
                 os.path.join(ROOT, ".gpu", "runtime", "libnsa_runtime.so"),
                 os.path.join(ROOT, "build", "lib", "libnsa_runtime.so")):
        if path and os.path.isfile(path):
            return path
    sys.exit("no libnsa_runtime.so: pass --runtime-lib or build runtime/ "
             "(scripts/gpu/forward.sh run does)")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", help="build directories (default: every "
                        ".gpu/kernels/*/ with a plan.json)")
    parser.add_argument("--json", help="results file (default bench/results/"
                        "<date>-<card>-forward-check.json)")
    parser.add_argument("--runtime-lib")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full-max-T", type=int, default=8192,
                        help="check every query row up to this T, else a sample")
    parser.add_argument("--sample-rows", type=int, default=256,
                        help="random query rows checked above --full-max-T (plus edges)")
    parser.add_argument("--budget", type=int, default=fr.DEFAULT_BUDGET,
                        help="score-matrix elements per reference chunk")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs of the launches (informational; 0 skips)")
    parser.add_argument("--self-test", action="store_true",
                        help="check the checker on simulated kernels (no GPU needed)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="self-test device")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--part", help=argparse.SUPPRESS)
    args = parser.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False  # the reference is float32, not TF32
    torch.backends.cudnn.allow_tf32 = False
    if args.self_test:
        sys.exit(0 if self_test(args) else 1)

    if args.in_process:  # the child of run_isolated: one directory
        args.runtime_lib = find_runtime_lib(args.runtime_lib)
        try:
            result = run_config(args.dirs[0], Runtime(args.runtime_lib), args)
        except (NSARuntimeError, RuntimeError, ValueError, KeyError) as error:
            result = dict(name=os.path.basename(args.dirs[0].rstrip("/")), ok=False,
                          checks=[fr.record("run", False, "error", 1, 0, note=str(error))])
        print_records(result["name"], result["checks"])
        with open(args.part, "w") as f:
            json.dump(result, f)
        return

    if not torch.cuda.is_available():
        sys.exit("no CUDA device: forward_check.py runs kernels on a GPU (--self-test runs "
                 "without one)")
    args.runtime_lib = find_runtime_lib(args.runtime_lib)
    dirs = args.dirs or sorted(
        os.path.join(ROOT, ".gpu", "kernels", d) for d in os.listdir(
            os.path.join(ROOT, ".gpu", "kernels"))
        if os.path.isfile(os.path.join(ROOT, ".gpu", "kernels", d, "plan.json")))
    if not dirs:
        sys.exit("no build directories with a plan.json (scripts/gpu/build_kernels.py)")
    device = torch.cuda.get_device_name()
    print(f"{device}, torch {torch.__version__}, runtime {args.runtime_lib}")
    results = []
    for directory in dirs:
        print(f"{os.path.basename(directory.rstrip('/'))}:", flush=True)
        started = time.time()
        results.append(run_isolated(directory, args))
        print(f"  ({time.time() - started:.1f} s)", flush=True)

    print("\npeak extra memory of a plan run (max_memory_allocated minus the inputs):")
    for r in results:
        if "peak_extra_mb" in r:
            print(f"  {r['name']:44s} B={r['B']} T={r['T']:6d} {r['peak_extra_mb']:9.1f} MiB "
                  f"({r['peak_extra_bytes_per_token'] / 1024:.1f} KiB/token; buffers "
                  f"{r['buffers_mb']:.1f} MiB){'  %.3f ms' % r['ms'] if 'ms' in r else ''}")
    path = write_results(device, "forward-check",
                         dict(commit=commit(), torch=torch.__version__,
                              command=" ".join(sys.argv),
                              passed=all(r["ok"] for r in results), configs=results),
                         args.json)
    failed = [r["name"] for r in results if not r["ok"]]
    print(f"{len(results) - len(failed)}/{len(results)} configurations passed; wrote {path}")
    if failed:
        sys.exit(f"FAILED: {', '.join(failed)}")


if __name__ == "__main__":
    main()

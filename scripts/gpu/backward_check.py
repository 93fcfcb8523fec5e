#!/usr/bin/env python3
"""Runs compiled NSA backward kernels on a GPU and checks every gradient against SPEC.md.

For each build directory (scripts/gpu/build_grad_kernels.py: config.json,
plan.json, manifest.json, kernels.ptx) it makes seeded random inputs (the
layer inputs exactly as forward_check.py makes them for the same seed, then
``d_o ~ randn``), runs the plan through libnsa_runtime.so (every buffer
poisoned first) and compares each gradient with float32 PyTorch autograd of
the reference forward (nsa.reference's compression, the row-wise branches of
forward_reference.py, the gated sum) on the GPU, for the loss
``L = sum(o * d_o)``:

  written:<buffer>  no poison left in any plan buffer (NaN floats, -7777 ints)
  select.idx        the block selection the backward used (see below)
  grad.<d_x>        ||got - ref|| / ||ref|| <= 2e-2 (bf16; SPEC.md) or 1e-2
                    (fp16: SPEC gives no gradient bound for fp16; this is the
                    bf16 bound halved, as SPEC halves the output bound);
                    any NaN or inf fails
  grad.d_pe_k       (linear mode) exactly zero in exact arithmetic: adding
                    PE_k shifts every compressed key of a head by the same
                    vector, which no softmax row can see, so
                    d_pe_k = W_k . sum_i d_kc[i] = 0 (each row's dS sums to
                    zero). Judged by the absolute error against the norm of
                    the terms it sums, ||got - ref|| / ||(W_k . d_kc[i])_i||,
                    with the same bound.

Selection is a constant of the backward (SPEC.md 3, 7). The backward plan
recomputes it (a select_blocks launch); its idx buffer is read back and:
equal to the reference's own idx -> gradients compared directly; different
but every row within SPEC section 3's near-tie rule (scores recomputed from
the kernel's own compressed keys, as the selection kernel sees them) ->
reference gradients use the kernel's idx; otherwise select.idx FAILs (the
gradients are still compared, with the reference idx). A plan without an
idx buffer is compared with the reference idx, and the note counts the
near-tied (row, head) pairs that could make a correct kernel differ.

Each configuration runs in its own process, so a kernel fault cannot take
the others down. The reference is built in chunks of query rows (each
chunk's loss back-propagated on its own, gradients accumulating in the
leaves), so its memory is bounded by --budget at any T. Exits non-zero on
any failure.

    python3 scripts/gpu/backward_check.py [DIR ...] [--json out.json]
    python3 scripts/gpu/backward_check.py --self-test     # CPU or GPU: checks the checker
"""

import argparse
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
import build_grad_kernels as bgk  # noqa: E402  (configurations, argument layouts)
import build_kernels  # noqa: E402
import forward_check as fc  # noqa: E402  (inputs, roles, printing, runtime lookup)
import forward_reference as fr  # noqa: E402
from nsa import reference as ref  # noqa: E402
from nsa._runtime import INT_POISON, NSARuntimeError, Plan, Runtime  # noqa: E402

DTYPES = fc.DTYPES
#: Gradient bounds on ||got - ref|| / ||ref|| (module docstring says why fp16's).
GRAD_TOLERANCE = {"bf16": 2e-2, "f16": 1e-2}
#: Seed offset of d_o, so the layer inputs equal forward_check.py's for a seed.
D_O_SEED_OFFSET = 1_000_003


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------

def layer_args(cfg):
    """The layer inputs' meanings (config.json's args without d_o)."""
    return [a for a in cfg["args"] if a != "d_o"]


def make_inputs(cfg, device, seed):
    """Seeded inputs in argument order: forward_check.make_inputs, then d_o ~ randn."""
    inputs = fc.make_inputs(dict(cfg, args=layer_args(cfg)), device, seed)
    gen = torch.Generator(device=device).manual_seed(seed + D_O_SEED_OFFSET)
    shape = bgk.grad_shapes(cfg)["d_o"]
    d_o = torch.randn(shape, generator=gen, device=device).to(DTYPES[cfg["dtype"]])
    return inputs + [d_o]


def by_meaning(cfg, tensors):
    """{meaning: tensor} for the layer inputs; shared K/V serves as every branch's."""
    named = dict(zip(layer_args(cfg), tensors))
    for branch in ("cmp", "slc", "win"):
        for side in ("k", "v"):
            named.setdefault(f"{side}_{branch}", named.get(side))
    return named


# --------------------------------------------------------------------------
# The float32 reference gradients
# --------------------------------------------------------------------------

def _leaves(cfg, inputs):
    """float32 leaf copies of the layer inputs (requires_grad) and d_o in float32."""
    leaves = [t.detach().float().requires_grad_(True) for t in inputs[:-1]]
    return leaves, inputs[-1].detach().float()


def row_chunks(cfg, budget):
    """Query-row slices whose reference graphs stay within ``budget`` score elements."""
    T = cfg["T"]
    per_row = cfg["B"] * cfg["HQ"] * max(T, 1)
    step = max(1, budget // per_row)
    return [slice(s, min(T, s + step)) for s in range(0, T, step)] or [slice(0, 0)]


def reference_grads(cfg, inputs, idx, budget=fr.DEFAULT_BUDGET):
    """float32 autograd of ``L = sum(o * d_o)`` with ``idx`` constant.

    Returns ``(grads, d_kc)``: ``grads`` by output meaning (``d_q``, ...) in
    the primals' shapes, float32; ``d_kc`` the gradient of the compressed
    keys (float32, ``[B, Nc, HKV, Dk]``), which scales the d_pe_k check.
    """
    c = fr.nsa_config(cfg)
    scale = c.softmax_scale(cfg["Dk"])
    mode = cfg["compress"]
    leaves, d_o = _leaves(cfg, inputs)
    x = by_meaning(cfg, leaves)
    device = d_o.device
    d_kc = None
    for s in row_chunks(cfg, budget):
        rows = torch.arange(s.start, s.stop, device=device)
        kc = ref.compress(x["k_cmp"], c, x.get("w_k"), x.get("pe_k"), mode)
        vc = ref.compress(x["v_cmp"], c, x.get("w_v"), x.get("pe_v"), mode)
        kc.retain_grad()
        Q = x["q"][:, s]
        o_cmp, _ = fr.compressed_rows(Q, rows, kc, vc, c, scale, budget)
        o_slc, _ = fr.selected_rows(Q, rows, x["k_slc"], x["v_slc"], idx[:, s], c, scale,
                                    budget)
        o_win, _ = fr.window_rows(Q, rows, x["k_win"], x["v_win"], c, scale, budget)
        out = fr.combine(x["gates"][:, s], o_cmp, o_slc, o_win)
        loss = (out * d_o[:, s]).sum()
        loss.backward()
        if kc.grad is not None:
            d_kc = kc.grad.detach() if d_kc is None else d_kc + kc.grad.detach()
    grads = {}
    for name, leaf in zip(layer_args(cfg), leaves):
        grads["d_" + name] = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
    if d_kc is None:
        d_kc = torch.zeros(cfg["B"], c.num_compressed(cfg["T"]), cfg["HKV"], cfg["Dk"],
                           device=device)
    return grads, d_kc


def full_graph_grads(cfg, inputs, idx):
    """The same gradients through nsa.reference's whole-T functions, one graph.

    An independent route (nsa.reference's masks and selected-branch code, no
    row chunks): the self-test checks reference_grads against it, and uses
    it for the simulated kernels.
    """
    c = fr.nsa_config(cfg)
    mode = cfg["compress"]
    leaves, d_o = _leaves(cfg, inputs)
    x = by_meaning(cfg, leaves)
    kc = ref.compress(x["k_cmp"], c, x.get("w_k"), x.get("pe_k"), mode)
    vc = ref.compress(x["v_cmp"], c, x.get("w_v"), x.get("pe_v"), mode)
    o_cmp, _ = ref.compressed_attention(x["q"], kc, vc, c)
    o_slc = ref.selected_attention(x["q"], x["k_slc"], x["v_slc"], idx, c)
    o_win = ref.window_attention(x["q"], x["k_win"], x["v_win"], c)
    (ref.combine(x["gates"], o_cmp, o_slc, o_win) * d_o).sum().backward()
    return {"d_" + n: (l.grad if l.grad is not None else torch.zeros_like(l))
            for n, l in zip(layer_args(cfg), leaves)}


# --------------------------------------------------------------------------
# Selection: which idx the reference uses
# --------------------------------------------------------------------------

def block_scores(cfg, q, kc, budget):
    """``P [B, HKV, T, blocks]`` of every row from compressed keys ``kc`` (float32)."""
    c = fr.nsa_config(cfg)
    scale = c.softmax_scale(cfg["Dk"])
    rows = torch.arange(cfg["T"], device=q.device)
    Q = q.float()
    _, lse = fr.compressed_rows(Q, rows, kc, kc, c, scale, budget)  # lse needs no values
    return fr.block_scores_rows(Q, rows, kc, lse, c, scale, budget), rows


def near_ties(P, rows, cfg, tie=fr.SELECTION_TIE):
    """(row, head) pairs whose last free chosen block and first free unchosen one
    are within ``tie * max P``: where a correct kernel may choose differently."""
    c = fr.nsa_config(cfg)
    nb = P.shape[-1]
    if nb <= c.n:
        return 0
    candidate, forced = fr._forced_and_candidates(rows, nb, c)
    key = torch.where(forced, torch.full_like(P, math.inf),
                      torch.where(candidate, P, torch.full_like(P, -math.inf)))
    ranked = torch.sort(key, dim=-1, descending=True).values
    nth, after = ranked[..., c.n - 1], ranked[..., c.n]
    top = torch.where(candidate, P, torch.zeros_like(P)).amax(-1)
    tied = torch.isfinite(nth) & torch.isfinite(after) & (nth - after <= tie * top)
    return int(tied.sum())


def choose_idx(cfg, roles, got, inputs, budget):
    """(idx for the reference, select.idx record): the module docstring's rule."""
    c = fr.nsa_config(cfg)
    x = by_meaning(cfg, inputs[:-1])
    kc_ref = fr.compress(x["k_cmp"], c, cfg["compress"], x.get("w_k"), x.get("pe_k"))
    P_ref, rows = block_scores(cfg, x["q"], kc_ref, budget)
    ref_idx = fr.top_n_rows(P_ref, rows, c)
    ties = near_ties(P_ref, rows, cfg)
    total = cfg["B"] * cfg["T"] * cfg["HKV"]
    tie_note = f"{ties}/{total} (row, head) near-tied in the reference's scores"
    if "idx" not in roles:
        return ref_idx, fr.record(
            "select.idx", True, "source", "reference", "-",
            note=f"no select_blocks buffer in the plan: reference idx used; {tie_note}"
                 f"{' (a gradient failure there may be a tie, not a bug)' if ties else ''}")
    kernel_idx = got["idx"]
    if torch.equal(kernel_idx, ref_idx):
        return ref_idx, fr.record("select.idx", True, "rows_differing", 0, 0,
                                  note=f"kernel idx == reference idx; {tie_note}")
    differing = int((kernel_idx != ref_idx).any(-1).sum())
    # The kernel chose from its own compressed keys: judge it on those.
    kc_kernel = got.get("kc")
    own = kc_kernel is not None and bool(torch.isfinite(kc_kernel).all())
    P = block_scores(cfg, x["q"], kc_kernel.float(), budget)[0] if own else P_ref
    sel = fr.selection_violations(kernel_idx, P, rows, c)
    basis = "the kernel's kc" if own else "the reference kc"
    if sel["bad"] == 0:
        return kernel_idx, fr.record(
            "select.idx", True, "rows_differing", differing, "near-ties",
            note=f"{differing}/{total} (row, head) differ from the reference idx, all within "
                 f"SPEC 3's near-tie rule (scores from {basis}; worst shortfall "
                 f"{sel['worst_shortfall']:.2e} of max P): reference gradients use the "
                 f"kernel's idx")
    return ref_idx, fr.record(
        "select.idx", False, "bad_rows", sel["bad"], 0,
        note=f"{sel['bad']}/{sel['total']} (row, head) rejected {sel['by_reason']} (scores from "
             f"{basis}); e.g. {sel['example']}; gradients compared with the reference idx")


# --------------------------------------------------------------------------
# The checks of one configuration
# --------------------------------------------------------------------------

def gradient_tensors(cfg, plan, values):
    """({meaning: tensor in its primal's shape}, problems) from the plan's outputs."""
    shapes = bgk.grad_shapes(cfg)
    dt = DTYPES[cfg["dtype"]]
    outputs, meanings = plan["outputs"], cfg["outputs"]
    problems, tensors = [], {}
    if len(outputs) != len(meanings):
        problems.append(f"plan has {len(outputs)} outputs, config.json {len(meanings)} "
                        f"({', '.join(meanings)})")
    if len(set(outputs)) != len(outputs):
        problems.append(f"plan outputs alias one buffer: {outputs}")
    inputs = {spec["name"] for spec in plan["inputs"]}
    for meaning, name in zip(meanings, outputs):
        shape = shapes[meaning[2:]]
        if name in inputs or name not in values:
            problems.append(f"{meaning} is {name!r}, not a plan buffer")
            continue
        t = values[name]
        if t.dtype != dt or t.numel() != math.prod(shape):
            problems.append(f"{name} ({meaning}) is {t.dtype} {list(t.shape)}, expected {dt} "
                            f"{shape}")
            continue
        tensors[meaning] = t.reshape(shape)
    return tensors, problems


def recomputed_forward(cfg, plan, values):
    """The recomputed forward's kc and idx, where the plan has them.

    Returns ``(roles, tensors, problems)``: ``roles`` maps kc/idx to buffer
    names (forward_check.find_roles: the compress launch that reads the keys
    argument, the select_blocks launch), ``tensors`` holds them in SPEC
    shapes; a buffer of the wrong dtype or size is a problem.
    """
    B, T, HKV, Dk = (cfg[k] for k in ("B", "T", "HKV", "Dk"))
    Nc = fr.nsa_config(cfg).num_compressed(T)
    want = dict(kc=([B, Nc, HKV, Dk], DTYPES[cfg["dtype"]]),
                idx=([B, T, HKV, cfg["n"]], torch.int32))
    roles = {r: n for r, n in fc.find_roles(plan, dict(cfg, args=layer_args(cfg))).items()
             if r in want}
    tensors, problems = {}, []
    for role, name in roles.items():
        shape, dtype = want[role]
        t = values[name]
        if t.dtype != dtype or t.numel() != math.prod(shape):
            problems.append(f"{name} ({role}) is {t.dtype} {list(t.shape)}, expected {dtype} "
                            f"{shape}")
            continue
        tensors[role] = t.reshape(shape)
    return roles, tensors, problems


def compare_zero_sum(check, out, expected, terms, bound):
    """A gradient that is zero in exact arithmetic: ||out - ref|| / ||terms|| <= bound.

    ``terms``: what the gradient sums (its norm is the scale of the rounding
    a correct kernel leaves behind); an exact zero always passes.
    """
    out, expected = out.float(), expected.float()
    nonfinite = int((~torch.isfinite(out)).sum())
    if nonfinite:
        return fr.record(check, False, "abs_l2/terms_l2", math.inf, bound,
                         note=f"{nonfinite} NaN/inf elements (unwritten poison or computed)")
    err = out - expected
    scale, err_norm = float(terms.norm()), float(err.norm())
    rel = err_norm / scale if scale > 0 else (0.0 if err_norm == 0 else math.inf)
    max_abs = float(err.abs().max()) if err.numel() else 0.0
    own = float(expected.norm()) / scale if scale > 0 else 0.0
    return fr.record(check, rel <= bound, "abs_l2/terms_l2", rel, bound, max_abs,
                     note=f"zero in exact arithmetic; terms l2 {scale:.3e}, the float32 "
                          f"reference's own residue {own:.1e} of it")


def check_gradients(cfg, inputs, grads, roles, got, budget=fr.DEFAULT_BUDGET):
    """select.idx, then one record per gradient (``grads`` by meaning)."""
    tol = GRAD_TOLERANCE[cfg["dtype"]]
    idx, record = choose_idx(cfg, roles, got, inputs, budget)
    records = [record]
    expected, d_kc = reference_grads(cfg, inputs, idx, budget)
    for meaning in cfg["outputs"]:
        check = f"grad.{meaning}"
        if meaning == "d_pe_k" and cfg["compress"] == "linear":
            W = inputs[layer_args(cfg).index("w_k")].float()
            terms = torch.einsum("bnhd,hkd->bnhk", d_kc, W)  # W_h . d_kc[b, i, h]
            records.append(compare_zero_sum(check, grads[meaning], expected[meaning], terms, tol))
        else:
            records.append(fr.compare_output(check, grads[meaning], expected[meaning], tol))
    return records


def check_values(cfg, plan, values, inputs, budget=fr.DEFAULT_BUDGET):
    """Poison checks of every buffer, then the selection and gradient checks."""
    records = [fr.check_written(f"written:{b['name']}", values[b["name"]], INT_POISON)
               for b in plan["buffers"]]
    grads, problems = gradient_tensors(cfg, plan, values)
    roles, got, role_problems = recomputed_forward(cfg, plan, values)
    problems += role_problems
    if problems:
        records.append(fr.record("outputs", False, "problems", len(problems), 0,
                                 note="; ".join(problems)))
        return records
    return records + check_gradients(cfg, inputs, grads, roles, got, budget)


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
    result.update(peak_extra_mb=peak / 2**20, buffers_mb=plan.buffer_bytes() / 2**20,
                  launches=len(plan_json["launches"]))
    records = check_values(cfg, plan_json, values, inputs, args.budget)

    # Informational: the launches alone (no poisoning), median of a few runs.
    if args.repeats:
        times = []
        for _ in range(args.repeats + 1):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            plan.launch({**plan.bind(inputs), **plan.allocate()}, config=cfg)
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
           "--part", part, "--seed", str(args.seed), "--budget", str(args.budget),
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
# Self-test: the checker against simulated kernels, on any device
# --------------------------------------------------------------------------

def synthetic_plan(cfg, with_select=True):
    """(plan, manifest) in the compiler's formats: the recomputed forward's
    compress and select_blocks launches (so kc and idx are found as in a
    compiled plan), then one launch per gradient writing a plan output."""
    B, T, HQ, HKV, Dk, Dv, n = (cfg[k] for k in ("B", "T", "HQ", "HKV", "Dk", "Dv", "n"))
    G, dt = HQ // HKV, cfg["dtype"]
    Nc = 0 if T < cfg["l"] else (T - cfg["l"]) // cfg["d"] + 1
    shapes = bgk.grad_shapes(cfg)
    inputs = [dict(name=f"arg{i}", dtype=dt, shape=shapes[m]) for i, m in enumerate(cfg["args"])]
    arg = {m: f"arg{i}" for i, m in enumerate(cfg["args"])}
    a = lambda m: arg.get(m, arg.get(m[0]))  # noqa: E731  (k_cmp -> k when shared)
    buffers, launches, kernels, counts = [], [], [], {}

    def launch(label, ins, results, views=None):
        k = counts[label] = counts.get(label, -1) + 1
        name = f"nsa_layer_grad_k{len(launches)}"
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
        return outs

    extra_k = [arg[m] for m in ("w_k", "pe_k") if m in arg]
    extra_v = [arg[m] for m in ("w_v", "pe_v") if m in arg]
    kc, = launch("compress", [a("k_cmp")] + extra_k, [(dt, [B, Nc, HKV, Dk])])
    vc, = launch("compress", [a("v_cmp")] + extra_v, [(dt, [B, Nc, HKV, Dv])])
    o, lse = launch("compressed_attention", [arg["q"], kc, vc],
                    [(dt, [B, T, HKV, G, Dv]), ("f32", [B, T, HKV, G])],
                    {arg["q"]: [B, T, HKV, G, Dk]})
    reads = [arg["d_o"]]
    if with_select:
        reads += launch("select_blocks", [arg["q"], kc, lse], [("i32", [B, T, HKV, n])])
    outputs = [launch("simulated_grad", reads, [(dt, shapes[m[2:]])])[0] for m in cfg["outputs"]]
    plan = dict(format="nsa-host-plan", version=1, function="nsa_layer_grad",
                manifest="manifest.json", inputs=inputs, buffers=buffers, launches=launches,
                outputs=outputs)
    manifest = dict(format="nsa-kernel-manifest", version=1, target="sm_90a", kernels=kernels)
    return plan, manifest


def simulate(cfg, plan, inputs, device, grads_idx=None):
    """A stand-in for the kernels: kc and idx as a kernel chain makes them (kc
    rounded to the activation dtype, selection from it), and gradients from
    full_graph_grads with that idx (or ``grads_idx``), rounded like outputs.

    Returns the plan values (inputs and every buffer, unlisted ones poisoned)."""
    c, dt = fr.nsa_config(cfg), DTYPES[cfg["dtype"]]
    x = {k: (None if t is None else t.float()) for k, t in by_meaning(cfg, inputs[:-1]).items()}
    mode = cfg["compress"]
    kc = ref.compress(x["k_cmp"], c, x.get("w_k"), x.get("pe_k"), mode).to(dt)
    vc = ref.compress(x["v_cmp"], c, x.get("w_v"), x.get("pe_v"), mode).to(dt)
    o_cmp, lse = ref.compressed_attention(x["q"], kc.float(), vc.float(), c)
    idx = ref.select_blocks(x["q"], kc.float(), lse, c)
    grads = full_graph_grads(cfg, inputs, idx if grads_idx is None else grads_idx)
    values = {spec["name"]: t for spec, t in zip(plan["inputs"], inputs)}
    for b in plan["buffers"]:
        t = torch.empty(b["shape"], dtype={"f32": torch.float32, "i32": torch.int32,
                                           **DTYPES}[b["dtype"]], device=device)
        t.fill_(float("nan") if t.is_floating_point() else INT_POISON)
        values[b["name"]] = t
    known = {"compress0.0": kc, "compress1.0": vc, "compressed_attention0.0": o_cmp.to(dt),
             "compressed_attention0.1": lse, "select_blocks0.0": idx}
    for name, t in known.items():
        if name in values:
            values[name].copy_(t.reshape(values[name].shape))
    for meaning, name in zip(cfg["outputs"], plan["outputs"]):
        values[name].copy_(grads[meaning].reshape(values[name].shape))
    return values


def self_test_configs():
    """Small configurations that run in seconds on a CPU."""
    cfg = build_kernels._cfg
    configs = [
        # More blocks than n: a real top-n; per-branch K/V, linear + PE (every output).
        cfg("self-select", B=2, T=300, HQ=8, HKV=2, Dk=32, Dv=16, l=16, d=8, l_sel=16, n=6,
            init=1, local=2, w=40),
        # T < l: no compressed token; the compression gradients are exact zeros.
        cfg("self-short", T=31, HQ=4, HKV=2, Dk=64, Dv=32),
        # G = 16, fp16, mean, shared K/V, explicit scale.
        cfg("self-g16-f16", T=700, HQ=16, HKV=1, Dk=64, Dv=32, dtype="f16", n=8,
            compress="mean", pe=False, kv="shared", scale=0.2),
        # bf16 linear without PE, shared K/V.
        cfg("self-lin-shared", B=2, T=200, HQ=4, HKV=2, Dk=32, Dv=32, l=16, d=8, l_sel=16,
            n=4, pe=False, kv="shared", w=50),
    ]
    for c in configs:
        c.update(G=c["HQ"] // c["HKV"], args=bgk.grad_arg_names(c),
                 outputs=bgk.grad_output_names(c))
    return configs


def _reference_matches(cfg, inputs, device):
    """Row-chunked reference == nsa.reference's one graph; d_pe_k ~ 0."""
    idx = _reference_idx(cfg, inputs)
    full = full_graph_grads(cfg, inputs, idx)
    problems = []
    # A tiny budget forces many row chunks (and chunks inside the branches).
    for budget in (fr.DEFAULT_BUDGET, 1 << 12):
        mine, d_kc = reference_grads(cfg, inputs, idx, budget)
        for meaning, expected in full.items():
            err = float((mine[meaning] - expected).norm())
            norm = float(expected.norm())
            if meaning == "d_pe_k" and cfg["compress"] == "linear":
                W = inputs[layer_args(cfg).index("w_k")].float()
                norm = float(torch.einsum("bnhd,hkd->bnhk", d_kc, W).norm())
                if float(expected.norm()) > 1e-5 * max(norm, 1e-30):
                    problems.append(f"{cfg['name']}: d_pe_k is {float(expected.norm()):.2e}, "
                                    f"not ~0 against terms {norm:.2e}")
            if err > 1e-5 * norm or (norm == 0 and err > 0):
                problems.append(f"{cfg['name']} {meaning} (budget {budget}): chunked reference "
                                f"differs from nsa.reference by {err:.2e} (norm {norm:.2e})")
    return problems


def _mutations(cfg, plan, inputs, device):
    """(what, make values, checks that must FAIL) for the first self-test config."""
    outputs = dict(zip(cfg["outputs"], plan["outputs"]))
    c = fr.nsa_config(cfg)

    def base():
        return simulate(cfg, plan, inputs, device)

    def scaled(meaning, factor):
        def make():
            v = base()
            v[outputs[meaning]].mul_(factor)
            return v
        return make

    def poked(meaning, value, index=7):
        def make():
            v = base()
            v[outputs[meaning]].view(-1)[index] = value
            return v
        return make

    def pe_k_noise():
        v = base()
        d_kc = reference_grads(cfg, inputs, v["select_blocks0.0"])[1]
        W = inputs[layer_args(cfg).index("w_k")].float()
        terms = torch.einsum("bnhd,hkd->bnhk", d_kc, W)
        t = v[outputs["d_pe_k"]]
        gen = torch.Generator(device=device).manual_seed(5)
        noise = torch.randn(t.shape, generator=gen, device=device)
        t.add_((0.05 * float(terms.norm()) / float(noise.norm()) * noise).to(t.dtype))
        return v

    def swapped_block():
        """idx with one chosen block swapped for the worst candidate (kernel and
        gradients consistent with it): the selection itself is wrong."""
        v = base()
        idx = v["select_blocks0.0"].clone()
        _swap_worst(cfg, inputs, idx)
        v = simulate(cfg, plan, inputs, device, grads_idx=idx)
        v["select_blocks0.0"].copy_(idx)
        return v

    def grads_other_blocks():
        """Correct idx reported, gradients from another block set."""
        v = base()
        idx = v["select_blocks0.0"].clone()
        _swap_worst(cfg, inputs, idx, rows=range(cfg["T"] // 2, cfg["T"]))
        return simulate(cfg, plan, inputs, device, grads_idx=idx)

    def gates_swapped():
        v = base()
        g = v[outputs["d_gates"]]
        g.copy_(g[..., [1, 0, 2]].clone())
        return v

    def unwritten(meaning):
        def make():
            v = base()
            v[outputs[meaning]].fill_(float("nan"))
            return v
        return make

    def pe_k_zero():
        v = base()
        v[outputs["d_pe_k"]].zero_()
        return v

    # d_pe_k is ~0 in linear mode: scaling it proves nothing (noise below does).
    cases = [(f"{m} off by 3%", scaled(m, 1.03), {f"grad.{m}"}) for m in cfg["outputs"]
             if m != "d_pe_k"]
    cases += [
        ("d_q element left unwritten", poked("d_q", float("nan")),
         {f"written:{outputs['d_q']}", "grad.d_q"}),
        ("d_w_v left entirely unwritten", unwritten("d_w_v"),
         {f"written:{outputs['d_w_v']}", "grad.d_w_v"}),
        ("d_pe_k with noise 5% of its terms", pe_k_noise, {"grad.d_pe_k"}),
        ("idx entry left as poison", lambda: _poison_idx(base()),
         {"written:select_blocks0.0", "select.idx"}),
        ("a chosen block swapped for the worst candidate", swapped_block, {"select.idx"}),
        ("gradients from another block set", grads_other_blocks,
         {"grad.d_k_slc", "grad.d_v_slc"}),
        ("d_gates of cmp and slc swapped", gates_swapped, {"grad.d_gates"}),
    ]
    # Must PASS: d_pe_k exactly zero (its exact value).
    passing = [("d_pe_k written as exact zeros", pe_k_zero)]
    return cases, passing, c


def _reference_idx(cfg, inputs):
    """nsa.reference's idx from float32 compressed keys."""
    c = fr.nsa_config(cfg)
    x = {k: (None if t is None else t.float()) for k, t in by_meaning(cfg, inputs[:-1]).items()}
    kc = ref.compress(x["k_cmp"], c, x.get("w_k"), x.get("pe_k"), cfg["compress"])
    vc = ref.compress(x["v_cmp"], c, x.get("w_v"), x.get("pe_v"), cfg["compress"])
    return ref.select_blocks(x["q"], kc, ref.compressed_attention(x["q"], kc, vc, c)[1], c)


def _poison_idx(values):
    values["select_blocks0.0"].view(-1)[3] = INT_POISON
    return values


def _swap_worst(cfg, inputs, idx, rows=None):
    """In place: for rows (default the last), head 0, batch 0, swap the first
    free chosen block for the unchosen candidate with the smallest score."""
    c = fr.nsa_config(cfg)
    x = by_meaning(cfg, inputs[:-1])
    kc = fr.compress(x["k_cmp"], c, cfg["compress"], x.get("w_k"), x.get("pe_k"))
    P, _ = block_scores(cfg, x["q"], kc, fr.DEFAULT_BUDGET)
    for t in (rows if rows is not None else [cfg["T"] - 1]):
        current = t // c.l_sel
        chosen = [j for j in idx[0, t, 0].tolist() if j >= 0]
        unchosen = [j for j in range(current + 1) if j not in chosen]
        free = [j for j in chosen if c.init <= j <= current - c.local]
        if not unchosen or not free:
            continue
        worst = min(unchosen, key=lambda j: float(P[0, 0, t, j]))
        new = sorted(worst if j == free[0] else j for j in chosen)
        idx[0, t, 0, :len(new)] = torch.tensor(new, dtype=idx.dtype)


def _runtime_tests(cfg, plan, manifest, lib):
    """The synthetic plan through the real runtime's checks (placeholder tensors)."""
    problems = []
    with tempfile.TemporaryDirectory() as d:
        for name, obj in (("plan.json", plan), ("manifest.json", manifest)):
            with open(os.path.join(d, name), "w") as f:
                json.dump(obj, f)
        open(os.path.join(d, "kernels.ptx"), "w").close()
        p = Plan(Runtime(lib), os.path.join(d, "plan.json"), device="cpu")
        if len(p.validate(config=cfg)) != len(plan["launches"]):
            problems.append("Plan.validate skipped launches")
        p.manifest.close()
    return problems


def _gpu_plan_test(cfg, plan, manifest, lib, args):
    """run_config on a synthetic build whose kernels write nothing (CUDA only):
    the real launch path, and a run that leaves its buffers unwritten must
    fail every check instead of comparing stale memory."""
    with tempfile.TemporaryDirectory() as d:
        files = {"config.json": json.dumps(cfg), "plan.json": json.dumps(plan),
                 "manifest.json": json.dumps(manifest),
                 "kernels.ptx": fc._empty_kernels_ptx(manifest)}
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        result = run_config(d, Runtime(lib), args)
    empty = {f"written:{b['name']}" for b in plan["buffers"] if math.prod(b["shape"]) == 0}
    passed = [r["check"] for r in result["checks"] if r["ok"] and r["check"] not in empty]
    print(f"  {cfg['name']}: {len(plan['launches'])} empty kernels launched through Plan.run: "
          f"{'PASS (every check fails)' if not passed else 'FAIL: passed ' + str(passed)}")
    return [f"{cfg['name']}: unwritten buffers passed {passed}"] if passed else []


def self_test(args):
    device = args.device
    print(f"self-test on {device}, torch {torch.__version__}")
    failures = []
    lib = args.runtime_lib or os.path.join(ROOT, "build", "lib", "libnsa_runtime.so")
    for i, cfg in enumerate(self_test_configs()):
        inputs = make_inputs(cfg, device, args.seed)
        problems = _reference_matches(cfg, inputs, device)
        print(f"  {cfg['name']}: row-chunked reference gradients == nsa.reference autograd"
              f"{', d_pe_k ~ 0' if cfg['compress'] == 'linear' and cfg['pe'] else ''}: "
              f"{'PASS' if not problems else 'FAIL ' + '; '.join(problems)}")
        failures += problems
        for with_select in (True, False):
            plan, manifest = synthetic_plan(cfg, with_select)
            if os.path.isfile(lib):
                problems = _runtime_tests(cfg, plan, manifest, lib)
                print(f"  {cfg['name']}: synthetic plan through {os.path.basename(lib)}: "
                      f"{'PASS' if not problems else 'FAIL ' + str(problems)}")
                failures += problems
                if device == "cuda" and with_select:
                    failures += _gpu_plan_test(cfg, plan, manifest, lib, args)
            # Without an idx buffer the checker can only use its own idx: the
            # simulated kernel then selects as the float32 reference does
            # (near-ties decided the other way are the fallback's known risk).
            values = simulate(cfg, plan, inputs, device,
                              grads_idx=None if with_select else _reference_idx(cfg, inputs))
            records = check_values(cfg, plan, values, inputs, budget=1 << 16)
            bad = [r["check"] for r in records if not r["ok"]]
            what = "with" if with_select else "without"
            sel = next((r for r in records if r["check"] == "select.idx"), None)
            print(f"  {cfg['name']}: faithful simulated kernels, {what} an idx buffer: "
                  f"{'PASS (all checks pass)' if not bad else 'FAIL ' + str(bad)}"
                  f"{'  [' + sel['note'] + ']' if sel else ''}")
            if bad:
                fc.print_records(cfg["name"], [r for r in records if not r["ok"]])
                failures.append(f"{cfg['name']} ({what} idx): false alarms {bad}")
            if i or not with_select:
                continue
            cases, passing, _ = _mutations(cfg, plan, inputs, device)
            for what, make, expected in cases:
                records = check_values(cfg, plan, make(), inputs, budget=1 << 16)
                failed = {r["check"] for r in records if not r["ok"]}
                ok = expected <= failed
                print(f"  {'PASS' if ok else 'FAIL'}  perturbed: {what:46s} -> "
                      f"FAIL of {sorted(failed)}")
                if not ok:
                    failures.append(f"{what}: expected {sorted(expected)} to fail, "
                                    f"got {sorted(failed)}")
            for what, make in passing:
                records = check_values(cfg, plan, make(), inputs, budget=1 << 16)
                failed = sorted(r["check"] for r in records if not r["ok"])
                print(f"  {'PASS' if not failed else 'FAIL'}  exact: {what:50s} -> "
                      f"{'all checks pass' if not failed else 'FAIL of ' + str(failed)}")
                if failed:
                    failures.append(f"{what}: false alarms {failed}")
    print("self-test " + ("PASSED" if not failures else "FAILED:\n  " + "\n  ".join(failures)))
    return not failures


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", help="build directories (default: every "
                        ".gpu/kernels-grad/*/ with a plan.json)")
    parser.add_argument("--json", help="results file (default bench/results/"
                        "<date>-<card>-backward-check.json)")
    parser.add_argument("--runtime-lib")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=fr.DEFAULT_BUDGET,
                        help="score-matrix elements per reference chunk")
    parser.add_argument("--repeats", type=int, default=3,
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
        args.runtime_lib = fc.find_runtime_lib(args.runtime_lib)
        try:
            result = run_config(args.dirs[0], Runtime(args.runtime_lib), args)
        except (NSARuntimeError, RuntimeError, ValueError, KeyError) as error:
            result = dict(name=os.path.basename(args.dirs[0].rstrip("/")), ok=False,
                          checks=[fr.record("run", False, "error", 1, 0, note=str(error))])
        fc.print_records(result["name"], result["checks"])
        with open(args.part, "w") as f:
            json.dump(result, f)
        return

    if not torch.cuda.is_available():
        sys.exit("no CUDA device: backward_check.py runs kernels on a GPU (--self-test runs "
                 "without one)")
    args.runtime_lib = fc.find_runtime_lib(args.runtime_lib)
    top = os.path.join(ROOT, ".gpu", "kernels-grad")
    dirs = args.dirs or (sorted(os.path.join(top, d) for d in os.listdir(top)
                                if os.path.isfile(os.path.join(top, d, "config.json")))
                         if os.path.isdir(top) else [])
    if not dirs:
        sys.exit("no build directories (scripts/gpu/build_grad_kernels.py, or "
                 "scripts/gpu/backward.sh prepare)")
    device = torch.cuda.get_device_name()
    print(f"{device}, torch {torch.__version__}, runtime {args.runtime_lib}")
    results = []
    for directory in dirs:
        if not os.path.isfile(os.path.join(directory, "plan.json")):
            # The configuration exists but did not compile: a failure, not a skip.
            name = os.path.basename(directory.rstrip("/"))
            result = dict(name=name, ok=False, checks=[fr.record(
                "build", False, "plan.json", "missing", "present",
                note="not compiled (build_grad_kernels.py failed for it)")])
            print(f"{name}:")
            fc.print_records(name, result["checks"])
            results.append(result)
            continue
        print(f"{os.path.basename(directory.rstrip('/'))}:", flush=True)
        started = time.time()
        results.append(run_isolated(directory, args))
        print(f"  ({time.time() - started:.1f} s)", flush=True)

    print("\nplan runs (peak extra memory: max_memory_allocated minus the inputs):")
    for r in results:
        if "peak_extra_mb" in r:
            print(f"  {r['name']:44s} B={r['B']} T={r['T']:5d} {r['launches']:3d} launches "
                  f"{r['peak_extra_mb']:8.1f} MiB (buffers {r['buffers_mb']:.1f} MiB)"
                  f"{'  %.3f ms' % r['ms'] if 'ms' in r else ''}")
    path = fc.write_results(device, "backward-check",
                            dict(commit=fc.commit(), torch=torch.__version__,
                                 command=" ".join(sys.argv),
                                 passed=all(r["ok"] for r in results),
                                 tolerance=GRAD_TOLERANCE, configs=results),
                            args.json)
    failed = [r["name"] for r in results if not r["ok"]]
    print(f"{len(results) - len(failed)}/{len(results)} configurations passed; wrote {path}")
    if failed:
        sys.exit(f"FAILED: {', '.join(failed)}")


if __name__ == "__main__":
    main()

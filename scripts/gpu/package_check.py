#!/usr/bin/env python3
"""GPU check of the nsa package: forward and autograd backward on the GPU backend.

For each case, ``nsa.nsa_attention(..., backend='gpu')`` and its gradients
through autograd (the compiled backward plan) are compared with the
reference backend (``backend='reference'``: float32 PyTorch autograd of
SPEC.md) on the same inputs: seeded random (never zero) tensors rounded to
the kernels' dtype, the reference given their float32 values. Every plan
buffer is poisoned (NaN) before the launches (``nsa._gpu.POISON_BUFFERS``),
so an element no kernel writes fails the check. Then the whole layer,
``nsa.NSAAttention(backend='gpu')``, against a copy of itself on the
reference backend: output and every parameter's gradient, both under the
same bf16 autocast (so the projections round alike and the attention is
what differs).

Block selection (SPEC.md section 3): near-equal block scores make the
chosen set depend on summation order, so the reference attends with the
kernels' own ``idx`` (read from the forward plan's buffer), and that ``idx``
is checked separately with SPEC's acceptance rule (scripts/gpu/
forward_reference.py's ``selection_violations``: forced blocks in, every
other chosen block within 1e-3 of the n-th best score), the block scores
recomputed in float32 from the kernels' own compressed keys and values (as
scripts/gpu/forward_check.py does: the kernels rank with bf16/fp16
compressed tokens, whose rounding alone moves scores by about 1e-3).

Tolerances (SPEC.md): ``||got - ref|| / ||ref||`` <= 1e-2 for bf16 and 5e-3
for fp16 outputs, 2e-2 for bf16 gradients (1e-2 fp16); NaN or inf never
passes. ``d_pe_k`` is zero in exact arithmetic (PE adds the same vector to
every compressed key of a head, which softmax ignores), so it is held to the
norm of the terms it sums (``W_k . d_kc[i]``), as scripts/gpu/backward_check.py
does; so is the layer's ``k_compress.pe``.

    python3 scripts/gpu/package_check.py --build .gpu/nsa-kernels   # compiler machine: the kernels
    python3 scripts/gpu/package_check.py --self-test                # any machine: the checker
    python3 scripts/gpu/package_check.py --kernels .gpu/nsa-kernels # GPU machine: self-test, check
"""

import argparse
import copy
import os
import sys
import time
import types

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))

import torch  # noqa: E402

import nsa  # noqa: E402
from nsa import build_kernels as bk  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import forward_check as fc  # noqa: E402  (the forward plan's buffer roles)
import forward_reference as fr  # noqa: E402  (SPEC's selection rule)

#: (label, kernel configuration). Ragged T; small selection blocks where T
#: is short so that the top-n is a real choice; G = 4 and 16; bf16 and fp16;
#: linear with and without PE; shared and per-branch K/V; and paper-d128
#: (D = 128, G = 16) just above T = 2048.
CASES = [
    ("t333-g4-d64-bf16-linpe-branch",
     bk.make_config(B=2, T=333, HQ=8, HKV=2, Dk=64, Dv=64, dtype="bf16", compress="linear",
                    pe=True, kv="per-branch", l=16, d=8, l_sel=32, n=4, init=1, local=2, w=64)),
    ("t1000-g4-d64-f16-lin-shared",
     bk.make_config(B=1, T=1000, HQ=16, HKV=4, Dk=64, Dv=64, dtype="f16", compress="linear",
                    pe=False, kv="shared", n=8, w=128)),
    ("paper-d128-t2113",
     bk.make_config(B=1, T=2113, HQ=64, HKV=4, Dk=128, Dv=128, dtype="bf16",
                    compress="linear", pe=True, kv="per-branch")),
]
#: The layer check runs on the first case's kernels: hidden 256, the same heads.
MODULE_CASE = CASES[0]
MODULE_HIDDEN = 256

OUT_TOLERANCE = {"bf16": 1e-2, "f16": 5e-3}
GRAD_TOLERANCE = {"bf16": 2e-2, "f16": 1e-2}
_DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16}


def nsa_config(cfg):
    return nsa.NSAConfig(**{k: cfg[k] for k in ("l", "d", "l_sel", "n", "init", "local", "w")},
                         scale=cfg["scale"])


def make_inputs(cfg, seed, device="cuda"):
    """nsa_attention's keyword arguments, float32, seeded."""
    gen = torch.Generator(device=device).manual_seed(seed)
    B, T, HQ, HKV, Dk, Dv, l = (cfg[k] for k in ("B", "T", "HQ", "HKV", "Dk", "Dv", "l"))

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, device=device, generator=gen) * scale

    args = dict(q=randn(B, T, HQ, Dk), k=randn(B, T, HKV, Dk), v=randn(B, T, HKV, Dv),
                g=torch.rand(B, T, HQ, 3, device=device, generator=gen))
    if cfg["kv"] == "per-branch":
        args.update(k_slc=randn(B, T, HKV, Dk), v_slc=randn(B, T, HKV, Dv),
                    k_win=randn(B, T, HKV, Dk), v_win=randn(B, T, HKV, Dv))
    if cfg["compress"] == "linear":
        args.update(w_k=randn(HKV, l * Dk, Dk, scale=(l * Dk) ** -0.5),
                    w_v=randn(HKV, l * Dv, Dv, scale=(l * Dv) ** -0.5))
        if cfg["pe"]:
            args.update(pe_k=randn(HKV, l, Dk, scale=0.5), pe_v=randn(HKV, l, Dv, scale=0.5))
    return args


def record(case, check, got, ref, bound, scale=None, note=""):
    """One comparison: ``||got - ref|| / scale`` (scale: ``||ref||``) <= bound."""
    got, ref = got.detach().double(), ref.detach().double()
    finite = bool(torch.isfinite(got).all())
    scale = float(ref.norm()) if scale is None else float(scale)
    rel = float((got - ref).norm()) / scale if finite and scale > 0 else float("inf")
    ok = finite and rel <= bound
    return dict(case=case, check=check, ok=ok, rel_l2=rel, bound=bound, finite=finite,
                note=note)


def timed(what, fn):
    """``fn()``, saying how long it took on the GPU (the first call of a kernel
    directory includes the driver's compilation of its PTX)."""
    torch.cuda.synchronize()
    began = time.perf_counter()
    result = fn()
    torch.cuda.synchronize()
    print(f"    {what}: {time.perf_counter() - began:.2f} s", flush=True)
    return result


class KernelSelection:
    """Inside ``with``: every forward plan run keeps its ``idx``, ``kc`` and
    ``vc`` buffers, and nsa.reference.select_blocks hands the idx out in order
    instead of selecting (checking each against SPEC's rule on the kernels'
    kc and vc); nsa.reference.compress keeps the reference's compressed keys
    so that their gradient ``d_kc`` can bound d_pe_k."""

    def __init__(self, cfg, label):
        self.cfg, self.label = cfg, label
        self.kept, self.records, self.compressed = [], [], []

    def __enter__(self):
        self.saved = (nsa._gpu._Launcher.__call__, nsa.reference.select_blocks,
                      nsa.reference.compress)
        launch, _, compress = self.saved
        selection = self

        def launch_and_keep(launcher, values, stream):
            launch(launcher, values, stream)
            if launcher.plan.function == "nsa_layer":  # the forward plan
                roles = fc.find_roles(
                    dict(buffers=launcher.plan.buffers, launches=launcher.plan.launches),
                    dict(selection.cfg, args=bk.arg_names(selection.cfg)))
                selection.kept.append({role: values[roles[role]].clone()
                                       for role in ("idx", "kc", "vc")})

        def kernel_idx(q, kc, lse, config):
            c = selection.cfg
            B, T, HKV, Nc = c["B"], c["T"], c["HKV"], config.num_compressed(c["T"])
            kept = selection.kept.pop(0)
            idx = kept["idx"].view(B, T, HKV, config.n)
            kc_kernel = kept["kc"].view(B, Nc, HKV, c["Dk"]).float()
            vc_kernel = kept["vc"].view(B, Nc, HKV, c["Dv"]).float()
            pos = torch.arange(T, device=q.device)
            scale = config.softmax_scale(c["Dk"])
            _, lse_kernel = fr.compressed_rows(q, pos, kc_kernel, vc_kernel, config, scale)
            P = fr.block_scores_rows(q, pos, kc_kernel, lse_kernel, config, scale)
            v = fr.selection_violations(idx, P, pos, config)
            selection.records.append(dict(
                case=selection.label, check="idx", ok=v["bad"] == 0, rel_l2=v["worst_shortfall"],
                bound=fr.SELECTION_TIE, finite=True,
                note=f"{v['bad']}/{v['total']} (row, head) pairs off SPEC's rule "
                     f"{v['by_reason']} {v['example']}".strip()))
            return idx

        def compress_and_keep(*args, **kwargs):
            out = compress(*args, **kwargs)
            if out.requires_grad:
                out.retain_grad()
            selection.compressed.append(out)
            return out
        nsa._gpu._Launcher.__call__ = launch_and_keep
        nsa.reference.select_blocks = kernel_idx
        nsa.reference.compress = compress_and_keep
        return self

    def __exit__(self, *exc):
        (nsa._gpu._Launcher.__call__, nsa.reference.select_blocks,
         nsa.reference.compress) = self.saved

    def pe_k_terms(self, w_k):
        """``||W_k . d_kc[i]||`` over the compressed keys (the first compression of
        the reference's forward is the keys')."""
        d_kc = self.compressed[0].grad  # [B, Nc, HKV, Dk]
        return torch.einsum("bnhd,hkd->bnhk", d_kc, w_k.detach().float()).norm()


def check_attention(label, cfg, seed):
    """nsa_attention on the GPU backend against the reference: o and every gradient."""
    dtype = _DTYPES[cfg["dtype"]]
    x = {k: t.to(dtype) for k, t in make_inputs(cfg, seed).items()}
    common = dict(compress=cfg["compress"], config=nsa_config(cfg))
    d_o = torch.randn(cfg["B"], cfg["T"], cfg["HQ"], cfg["Dv"], device="cuda",
                      generator=torch.Generator(device="cuda").manual_seed(seed + 1)).to(dtype)
    names = list(x)

    print(f"  {label}:", flush=True)
    gpu_in = {k: t.clone().requires_grad_(True) for k, t in x.items()}
    # The reference sees the same values in float32, and the kernels' idx.
    ref_in = {k: t.float().requires_grad_(True) for k, t in x.items()}
    with KernelSelection(cfg, label) as selection:
        o = timed("GPU forward", lambda: nsa.nsa_attention(**gpu_in, **common, backend="gpu"))
        grads = timed("GPU backward", lambda: torch.autograd.grad(
            o, [gpu_in[n] for n in names], d_o))
        o_ref = timed("reference forward + backward", lambda: _forward_backward(
            lambda: nsa.nsa_attention(**ref_in, **common, backend="reference"), d_o.float()))

    records = selection.records + [record(label, "o", o, o_ref, OUT_TOLERANCE[cfg["dtype"]])]
    for name, grad in zip(names, grads):
        bound = GRAD_TOLERANCE[cfg["dtype"]]
        if name == "pe_k":
            records.append(record(label, f"d_{name}", grad, ref_in[name].grad, bound,
                                  scale=selection.pe_k_terms(ref_in["w_k"]),
                                  note="zero in exact arithmetic: ||got - ref|| / "
                                       "||W_k . d_kc[i]||"))
        else:
            records.append(record(label, f"d_{name}", grad, ref_in[name].grad, bound))
    return records


def _forward_backward(forward, d_o):
    out = forward()
    out.backward(d_o)
    return out


def check_module(label, cfg, seed):
    """NSAAttention(backend='gpu') against a copy on the reference backend:
    output and every parameter's gradient, both under bf16 autocast."""
    torch.manual_seed(seed)
    layer = nsa.NSAAttention(MODULE_HIDDEN, cfg["HQ"], cfg["HKV"], cfg["Dk"], cfg["Dv"],
                             nsa_config(cfg), backend="gpu").cuda()
    with torch.no_grad():  # non-trivial compressors (the init is the mean, PE zero)
        for compressor in (layer.k_compress, layer.v_compress):
            compressor.weight.add_(torch.randn_like(compressor.weight) * 0.02)
            compressor.pe.copy_(torch.randn_like(compressor.pe) * 0.5)
    reference = copy.deepcopy(layer)
    reference.backend = "reference"
    x = torch.randn(cfg["B"], cfg["T"], MODULE_HIDDEN, device="cuda")
    d_y = torch.randn(cfg["B"], cfg["T"], MODULE_HIDDEN, device="cuda")
    outputs = []
    print(f"  {label}:", flush=True)
    with KernelSelection(cfg, label) as selection:
        for m in (layer, reference):
            def step():
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    y = m(x)
                y.float().backward(d_y)
                return y
            outputs.append(timed(f"{m.backend} layer forward + backward", step))
    records = selection.records + [record(label, "layer.y", outputs[0], outputs[1],
                                          OUT_TOLERANCE["bf16"])]
    params = dict(reference.named_parameters())
    for name, p in layer.named_parameters():
        if name == "k_compress.pe":
            records.append(record(label, f"layer.d_{name}", p.grad, params[name].grad,
                                  GRAD_TOLERANCE["bf16"],
                                  scale=selection.pe_k_terms(reference.k_compress.weight),
                                  note="zero in exact arithmetic: ||got - ref|| / "
                                       "||W_k . d_kc[i]||"))
        else:
            records.append(record(label, f"layer.d_{name}", p.grad, params[name].grad,
                                  GRAD_TOLERANCE["bf16"]))
    return records


def self_test(kernels):
    """The selection check on the CPU, no kernels run: the first case's real
    forward plan (its buffer roles) filled with the reference's compressed
    tokens (rounded as the kernels store them) and idx must pass, and the
    same with one block swapped must fail. Returns the problems."""
    label, cfg = CASES[0]
    directory = os.path.join(kernels, cfg["name"])
    runtime = nsa._runtime.Runtime(nsa._gpu.find_runtime()[0])
    plan = nsa._runtime.Plan(runtime, os.path.join(directory, "plan.json"), device="cpu")
    config = nsa_config(cfg)
    x = {k: t.to(_DTYPES[cfg["dtype"]]).float().cpu()
         for k, t in make_inputs(cfg, 0, device="cpu").items()}
    kv = dict(k_cmp=x["k"], v_cmp=x["v"], k_slc=x["k_slc"], v_slc=x["v_slc"], k_win=x["k_win"],
              v_win=x["v_win"])
    kc = nsa.reference.compress(x["k"], config, x["w_k"], x["pe_k"], "linear")
    vc = nsa.reference.compress(x["v"], config, x["w_v"], x["pe_v"], "linear")
    lse = nsa.reference.compressed_attention(x["q"], kc, vc, config)[1]
    idx = nsa.reference.select_blocks(x["q"], kc, lse, config)
    swapped = idx.clone()
    free = (swapped[0, -1, 0] >= config.init).nonzero()[0, 0]  # a block neither forced first...
    swapped[0, -1, 0, free] = next(j for j in range(config.init, idx.shape[1] // config.l_sel)
                                   if j not in idx[0, -1, 0].tolist())  # ...nor chosen
    roles = fc.find_roles(dict(buffers=plan.buffers, launches=plan.launches),
                          dict(cfg, args=bk.arg_names(cfg)))
    values = {b["name"]: torch.zeros(b["shape"], dtype=nsa._runtime._torch_dtype(b["dtype"]))
              for b in plan.buffers}
    for role, t in (("kc", kc), ("vc", vc)):
        values[roles[role]].view(-1).copy_(t.reshape(-1))
    problems = []
    saved = nsa._gpu._Launcher.__call__
    nsa._gpu._Launcher.__call__ = lambda launcher, values, stream: None
    try:
        for what, chosen, ok in (("the reference's idx", idx, True),
                                 ("a swapped block", swapped, False)):
            values[roles["idx"]].view(-1).copy_(chosen.reshape(-1))
            with KernelSelection(cfg, label) as selection:
                nsa._gpu._Launcher.__call__(types.SimpleNamespace(plan=plan), values, None)
                nsa.reference.forward(x["q"], g=x["g"], cfg=config, w_k=x["w_k"], w_v=x["w_v"],
                                      pe_k=x["pe_k"], pe_v=x["pe_v"], **kv)
            (result,) = selection.records
            print(f"  self-test, {what}: idx {'PASS' if result['ok'] else 'FAIL'} "
                  f"({result['note']})")
            if result["ok"] != ok:
                problems.append(f"{what}: the selection check says ok={result['ok']}")
    finally:
        nsa._gpu._Launcher.__call__ = saved
        plan.manifest.close()
    return problems


def build(out):
    bk.build_missing([cfg for _, cfg in CASES], out, cubin=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", metavar="OUT",
                        help="build the cases' kernels (forward + backward) into OUT and exit")
    parser.add_argument("--kernels", default=os.path.join(ROOT, ".gpu", "nsa-kernels"),
                        help="kernel directories (prepended to $NSA_KERNEL_PATH)")
    parser.add_argument("--json", help="results file (default bench/results/"
                                       "<date>-<card>-package-check.json)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--self-test", action="store_true",
                        help="check the selection check on the CPU (no GPU) and exit")
    args = parser.parse_args()
    if args.build:
        build(args.build)
        return
    if args.self_test:
        problems = self_test(args.kernels)
        print("self-test " + ("PASSED" if not problems else "FAILED: " + "; ".join(problems)))
        sys.exit(1 if problems else 0)
    if not torch.cuda.is_available():
        sys.exit("package_check.py runs the GPU backend: it needs a CUDA device")
    os.environ[bk.KERNEL_PATH_ENV] = os.pathsep.join(
        [args.kernels] + [p for p in os.environ.get(bk.KERNEL_PATH_ENV, "").split(os.pathsep)
                          if p])
    torch.backends.cuda.matmul.allow_tf32 = False  # the reference is float32, not TF32
    torch.backends.cudnn.allow_tf32 = False
    nsa._gpu.POISON_BUFFERS = True
    device = torch.cuda.get_device_name()
    print(f"{device}, torch {torch.__version__}, kernels {args.kernels}", flush=True)
    # A selection check that cannot tell a wrong idx from a right one proves nothing.
    problems = self_test(args.kernels)
    if problems:
        sys.exit("the selection check's self-test FAILED: " + "; ".join(problems))
    records = []
    for label, cfg in CASES:
        records += check_attention(label, cfg, args.seed)
    records += check_module("layer-" + MODULE_CASE[0], MODULE_CASE[1], args.seed)
    for r in records:
        print(f"  {'PASS' if r['ok'] else 'FAIL'}  {r['case']:36s} {r['check']:28s} "
              f"rel {r['rel_l2']:.2e} <= {r['bound']:.0e}{'  ' + r['note'] if r['note'] else ''}")
    failed = [f"{r['case']}:{r['check']}" for r in records if not r["ok"]]
    path = fc.write_results(device, "package-check",
                            dict(torch=torch.__version__, command=" ".join(sys.argv),
                                 passed=not failed,
                                 cases={label: {k: cfg[k] for k in bk.MATCH_FIELDS}
                                        for label, cfg in CASES},
                                 records=records),
                            args.json)
    print(f"{len(records) - len(failed)}/{len(records)} checks passed; wrote {path}")
    if failed:
        sys.exit(f"FAILED: {', '.join(failed)}")


if __name__ == "__main__":
    main()

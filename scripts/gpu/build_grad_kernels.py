#!/usr/bin/env python3
"""Builds the NSA backward (``nsa.attention_grad``) kernels for the GPU check.

Runs on the compiler machine (python3 standard library only); the
configuration model, argument layouts and plan validation are
build_kernels.py's. For each configuration it writes, under
``.gpu/kernels-grad/<name>/``:

- ``layer_grad.mlir``: one function ``@nsa_layer_grad`` taking the layer's
  inputs (build_kernels.arg_names order) and then ``d_o``, and returning one
  ``nsa.attention_grad`` gradient per differentiable input, in input order
  (q, keys..., values..., gates, weights..., pe...);
- ``config.json``: the configuration, ``args`` (the meaning of each input in
  order, ``d_o`` last) and ``outputs`` (the meaning of each result in order:
  ``d_q``, ``d_k_cmp``, ...), which backward_check.py reads;
- ``kernels.ptx``, ``manifest.json``, ``plan.json``: the compiler's output,
  from ``nsa-opt --nsa-to-gpu | nsa-translate --nsa-to-ptx ...``. The plan's
  outputs are the function's results in order.

When the runtime library is built, every launch of the plan is put through
the runtime's argument checks (as build_kernels.py does). A backward takes
minutes to compile (nsa-to-gpu on this machine: under a CPU minute at
Dk = Dv = 64, 6 to 7 when Dk or Dv is 128, 20+ at Dk = 192, nearly all of
it in the gpu.module's canonicalizer); --jobs compiles several at once.

    scripts/gpu/build_grad_kernels.py --list
    scripts/gpu/build_grad_kernels.py                      # the correctness matrix
    scripts/gpu/build_grad_kernels.py --only paper-d128-t2113
    scripts/gpu/build_grad_kernels.py --mlir-only          # layer_grad.mlir + nsa-decompose
"""

import argparse
import concurrent.futures
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import build_kernels as bk  # noqa: E402  (configurations, layouts, plan validation)
import nsa.build_kernels as pbk  # noqa: E402  (build_kernels.py put python/ on sys.path)
from nsa.build_kernels import grad_output_names, grad_shapes  # noqa: E402,F401

ROOT = bk.ROOT
_cfg = bk._cfg

# The backward correctness matrix. T is ragged, from below l to just below
# 65536 (backward_check.py builds a float32 autograd reference of the whole
# layer in chunks of query rows: every gradient needs every row, so no row is
# sampled); most configurations have more selection blocks than n
# (T > n * l_sel, or smaller blocks), so that selection is a real top-n.
# G in {1, 4, 16}; Dk in {64, 128, 192} with Dv in {64, 128}; bf16 and fp16;
# linear + PE, linear, mean; shared and per-branch K/V; non-default block
# sizes and scale; paper-d128 just above T = 2048 and 16384 and just below
# 65536.
TEST_SET = [
    # T < l: no compressed token, so d_k_cmp, d_v_cmp, d_w and d_pe are exact
    # zeros that a kernel with an empty grid could leave unwritten.
    _cfg("t31-g4-d64-bf16-linpe-branch", B=2, T=31, HQ=8, HKV=2, Dk=64, Dv=64),
    # G = 1, fp16, linear + PE, per-branch; T = 100: 5 compressed tokens, 2 blocks.
    _cfg("t100-g1-d64-f16-linpe-branch", B=2, T=100, HQ=4, HKV=4, Dk=64, Dv=64, dtype="f16"),
    # Mean, shared K/V, small blocks so that T = 100 has a real top-n (13 blocks, n = 4).
    _cfg("t100-g4-d64-bf16-mean-shared-blocks", B=2, T=100, HQ=8, HKV=2, Dk=64, Dv=64,
         compress="mean", pe=False, kv="shared", l=16, d=8, l_sel=16, n=4, init=1, local=2,
         w=40),
    _cfg("t1000-g4-dk128-dv64-bf16-linpe-branch", T=1000, HQ=16, HKV=4, Dk=128, Dv=64),
    _cfg("t1000-g16-dk192-dv128-f16-lin-shared", T=1000, HQ=32, HKV=2, Dk=192, Dv=128,
         dtype="f16", pe=False, kv="shared"),
    # Every block size off its default, and an explicit scale (32 blocks, n = 8).
    _cfg("t1000-g4-d64-bf16-mean-branch-blocks", B=2, T=1000, HQ=8, HKV=2, Dk=64, Dv=64,
         compress="mean", pe=False, l=16, d=8, l_sel=32, n=8, init=2, local=2, w=100,
         scale=0.1),
    _cfg("t2049-g1-d128-bf16-mean-branch", T=2049, HQ=4, HKV=4, Dk=128, Dv=128,
         compress="mean", pe=False),
    # l = l_sel = d: block scores are p_cmp itself; no forced initial block.
    _cfg("t2049-g4-dk64-dv128-f16-lin-shared-blocks", T=2049, HQ=16, HKV=4, Dk=64, Dv=128,
         dtype="f16", pe=False, kv="shared", l=32, d=32, l_sel=32, n=24, init=0, local=1,
         w=1000),
    _cfg("paper-d128-t2113", T=2113, **bk.PAPER_D128),
    _cfg("paper-d128-t16411", T=16411, **bk.PAPER_D128),
    _cfg("paper-d128-t65531", T=65531, **bk.PAPER_D128),
]

SETS = {"test": TEST_SET}


def all_configs():
    configs = {}
    for members in SETS.values():
        for cfg in members:
            if cfg["name"] in configs and configs[cfg["name"]] != cfg:
                raise AssertionError(f"two different configurations named {cfg['name']}")
            configs[cfg["name"]] = cfg
    return configs


# --------------------------------------------------------------------------
# Building (the backward writer, its compilation and the plan's output check
# are the package's: python/nsa/build_kernels.py)
# --------------------------------------------------------------------------

# This script's build directory holds the backward alone, under the forward's
# file names, with config.json's args and outputs those of the grad function.
_FILES = pbk.FORWARD_FILES


def layer_grad_mlir(cfg):
    """The nsa dialect module of one layer's backward, marked as this script's.
    It recomputes the forward (``saved=False``), so that the check also sees
    the forward's kc and idx of the same run."""
    return pbk.layer_grad_mlir(cfg, generator="scripts/gpu/build_grad_kernels.py", saved=False)


def grad_arg_names(cfg):
    """The inputs of this script's backward: the layer's, then d_o."""
    return pbk.grad_arg_names(cfg, saved=False)


def build(cfg, out_root, bin_dir, mlir_only, runtime_lib, pipeline_options=""):
    """Writes and compiles one configuration; returns (log lines, error or None)."""
    directory = os.path.join(out_root, cfg["name"])
    os.makedirs(directory, exist_ok=True)
    layer = os.path.join(directory, "layer_grad.mlir")
    with open(layer, "w") as f:
        f.write(layer_grad_mlir(cfg))
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(dict(cfg, G=cfg["HQ"] // cfg["HKV"], args=grad_arg_names(cfg),
                       outputs=grad_output_names(cfg), function="nsa_layer_grad"), f, indent=1)
        f.write("\n")
    # Stale compiler output would be checked as if it were this build's.
    for stale in (_FILES["ptx"], _FILES["manifest"], _FILES["plan"]):
        if os.path.exists(os.path.join(directory, stale)):
            os.remove(os.path.join(directory, stale))

    nsa_opt, nsa_translate = (os.path.join(bin_dir, t) for t in ("nsa-opt", "nsa-translate"))
    try:
        if mlir_only:
            # Verifier, then the decomposition into branch grads (no GPU lowering).
            pbk._run([nsa_opt, layer, "--nsa-decompose"], "nsa-opt --nsa-decompose")
            return [], None
        pbk.compile_module(layer, directory, _FILES, nsa_opt, nsa_translate, pipeline_options)
    except pbk.BuildError as error:
        return [], str(error)
    log = []
    problems = pbk.check_grad_plan_outputs(cfg, os.path.join(directory, _FILES["plan"]))
    if problems:
        return log, "plan.json: " + "; ".join(problems)
    if runtime_lib:
        try:
            log.append(bk.validate_plan(directory, runtime_lib, cfg))
        except Exception as error:  # any refusal is this build's failure
            return log, f"plan.json does not pass the runtime's checks: {error}"
    size = os.path.getsize(os.path.join(directory, _FILES["ptx"]))
    log.append(f"kernels.ptx {size / 2**20:.2f} MiB")
    return log, None


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=sorted(SETS), default="test")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="build only this configuration (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the configurations and exit")
    parser.add_argument("--out", default=os.path.join(ROOT, ".gpu", "kernels-grad"))
    parser.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"),
                        help="where nsa-opt and nsa-translate are")
    parser.add_argument("--runtime-lib", default=os.path.join(ROOT, "build", "lib",
                                                              "libnsa_runtime.so"),
                        help="validate plans with this runtime ('' to skip)")
    parser.add_argument("--mlir-only", action="store_true",
                        help="write layer_grad.mlir and config.json, run only the verifier "
                        "and --nsa-decompose")
    parser.add_argument("--pipeline-options", default="",
                        help="options of the nsa-to-gpu pipeline, e.g. 'selected-grad-tokens=1'")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                        help="configurations compiled at once")
    args = parser.parse_args()

    configs = all_configs()
    if args.only:
        unknown = [n for n in args.only if n not in configs]
        if unknown:
            sys.exit(f"unknown configuration(s) {unknown}; --list shows them")
        chosen = [configs[n] for n in args.only]
    else:
        chosen = SETS[args.set]
    if args.list:
        for cfg in chosen:
            print(f"{cfg['name']:44s} B={cfg['B']} T={cfg['T']} HQ={cfg['HQ']} HKV={cfg['HKV']} "
                  f"Dk={cfg['Dk']} Dv={cfg['Dv']} {cfg['dtype']} {cfg['compress']}"
                  f"{'+pe' if cfg['pe'] else ''} {cfg['kv']}")
        return

    runtime_lib = args.runtime_lib if args.runtime_lib and os.path.isfile(args.runtime_lib) \
        else None
    failures = []
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = [pool.submit(build, cfg, args.out, args.bin, args.mlir_only, runtime_lib,
                               args.pipeline_options)
                   for cfg in chosen]
        for cfg, future in zip(chosen, futures):
            try:
                log, error = future.result()
            except Exception as crash:  # one configuration's crash is its own failure
                log, error = [], f"{type(crash).__name__}: {crash}"
            done = "verified (--mlir-only)" if args.mlir_only else "built"
            print(f"{cfg['name']}: {'FAILED' if error else done}", flush=True)
            for line in log:
                print(f"  {line}")
            if error:
                print(f"  {error.strip()}")
                failures.append(cfg["name"])
    print(f"{len(chosen) - len(failures)}/{len(chosen)} "
          f"{'verified' if args.mlir_only else 'built'} into {args.out}")
    if failures:
        sys.exit(f"failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds the NSA forward kernels of named configurations for the GPU check.

Runs on the compiler machine (python3 standard library only). For each
configuration it writes, under ``.gpu/kernels/<name>/``:

- ``layer.mlir``: one ``nsa.attention`` layer function ``@nsa_layer`` with the
  configuration's static shapes;
- ``config.json``: the configuration and the meaning of each input argument
  in order (``args``: ``["q", "k_cmp", ...]``), which forward_check.py reads;
- ``kernels.ptx``, ``manifest.json``, ``plan.json``: the compiler's output,
  from ``nsa-opt --nsa-to-gpu | nsa-translate --nsa-to-ptx ...``.

When the runtime library is built, every launch of the plan is then put
through the runtime's own argument checks (``nsa_plan_launch`` with
placeholder tensors), so a plan the GPU machine would refuse fails here.

    scripts/gpu/build_kernels.py --list
    scripts/gpu/build_kernels.py --set test            # the correctness matrix
    scripts/gpu/build_kernels.py --set bench           # paper-d128, T = 8K .. 64K
    scripts/gpu/build_kernels.py --only paper-d128-t8191
    scripts/gpu/build_kernels.py --set test --mlir-only   # layer.mlir + verifier only
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# SPEC.md, "Configuration": the paper's defaults.
DEFAULTS = dict(B=1, dtype="bf16", l=32, d=16, l_sel=64, n=16, init=1, local=2, w=512,
                scale=None, compress="linear", pe=True, kv="per-branch")

# SPEC.md, "Benchmark configurations": paper-d128.
PAPER_D128 = dict(B=1, HQ=64, HKV=4, Dk=128, Dv=128, dtype="bf16", compress="linear", pe=True,
                  kv="per-branch")


def _cfg(name, **fields):
    """A full configuration: DEFAULTS overridden by ``fields``."""
    return dict(DEFAULTS, name=name, **fields)


# The correctness matrix (kernels are specialised per shape, so it stays
# small): ragged T from below l (no compressed token) to 64K, G in {1, 4, 16, 32},
# Dk in {64, 128, 192} with Dv in {64, 128}, bf16 and fp16, each compressor
# form, shared and per-branch K/V, and non-default block sizes and scale.
TEST_SET = [
    # T < l: Nc = 0, the compressed branch sees nothing (o = 0, lse = -inf).
    _cfg("t31-g4-d64-bf16-mean-shared", B=2, T=31, HQ=8, HKV=2, Dk=64, Dv=64,
         compress="mean", pe=False, kv="shared"),
    _cfg("t100-g1-d64-f16-linpe-branch", B=2, T=100, HQ=4, HKV=4, Dk=64, Dv=64, dtype="f16"),
    _cfg("t1000-g4-dk128-dv64-bf16-linpe-branch", T=1000, HQ=16, HKV=4, Dk=128, Dv=64),
    _cfg("t1000-g16-dk192-dv128-f16-lin-shared", T=1000, HQ=32, HKV=2, Dk=192, Dv=128,
         dtype="f16", pe=False, kv="shared"),
    # Every block size off its default, and an explicit scale.
    _cfg("t1000-g4-d64-bf16-mean-branch-blocks", B=2, T=1000, HQ=8, HKV=2, Dk=64, Dv=64,
         compress="mean", pe=False, l=16, d=8, l_sel=32, n=8, init=2, local=2, w=100,
         scale=0.1),
    _cfg("t4001-g1-d128-bf16-mean-branch", T=4001, HQ=4, HKV=4, Dk=128, Dv=128,
         compress="mean", pe=False),
    _cfg("t4001-g16-dk192-dv128-bf16-linpe-branch", T=4001, HQ=32, HKV=2, Dk=192, Dv=128),
    # l = l_sel = d: block scores are p_cmp itself; no forced initial block.
    _cfg("t4001-g4-dk64-dv128-f16-lin-shared-blocks", T=4001, HQ=16, HKV=4, Dk=64, Dv=128,
         dtype="f16", pe=False, kv="shared", l=32, d=32, l_sel=32, n=24, init=0, local=1,
         w=1000),
    # G = 32: a token's heads fill two warps' row blocks, so selection's
    # group sum goes through scratch (tile.group_sum's general path).
    _cfg("t1000-g32-d64-bf16-linpe-branch", T=1000, HQ=64, HKV=2, Dk=64, Dv=64),
    _cfg("paper-d128-t8191", T=8191, **PAPER_D128),
    # Large T: forward_check.py samples query rows above --full-max-T.
    _cfg("t16411-g4-d128-f16-mean-shared", T=16411, HQ=32, HKV=8, Dk=128, Dv=128, dtype="f16",
         compress="mean", pe=False, kv="shared"),
    _cfg("paper-d128-t65536", T=65536, **PAPER_D128),
]

BENCH_SET = [_cfg(f"paper-d128-t{T}", T=T, **PAPER_D128) for T in (8192, 16384, 32768, 65536)]

SETS = {"test": TEST_SET, "bench": BENCH_SET}


def all_configs():
    """Every configuration by name (a name in both sets is one configuration)."""
    configs = {}
    for members in SETS.values():
        for cfg in members:
            if cfg["name"] in configs and configs[cfg["name"]] != cfg:
                raise AssertionError(f"two different configurations named {cfg['name']}")
            configs[cfg["name"]] = cfg
    return configs


# --------------------------------------------------------------------------
# The layer function
# --------------------------------------------------------------------------

# One MLIR writer serves the package's CLI (python -m nsa.build_kernels) and
# these sets: the layer function, its argument order and shapes, and SPEC's
# configuration rules come from python/nsa/build_kernels.py (stdlib only).
sys.path.insert(0, os.path.join(ROOT, "python"))
from nsa.build_kernels import arg_names, arg_shapes, check_rules  # noqa: E402
from nsa.build_kernels import layer_mlir as _package_layer_mlir  # noqa: E402


def layer_mlir(cfg):
    """The nsa dialect module of one layer, marked as this script's."""
    return _package_layer_mlir(cfg, generator="scripts/gpu/build_kernels.py")


# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------

def _load_runtime_binding():
    """python/nsa/_runtime.py loaded by path (the package __init__ needs torch)."""
    path = os.path.join(ROOT, "python", "nsa", "_runtime.py")
    spec = importlib.util.spec_from_file_location("nsa_runtime_binding", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def validate_plan(directory, runtime_lib, cfg):
    """Every launch of plan.json through the runtime's checks; a summary line."""
    binding = _load_runtime_binding()
    runtime = binding.Runtime(runtime_lib)
    plan = binding.Plan(runtime, os.path.join(directory, "plan.json"))
    launches = plan.validate(config=cfg)
    return (f"{len(launches)} launches pass the runtime's checks, buffers "
            f"{plan.buffer_bytes() / 2**20:.1f} MiB")


def run(cmd, **kwargs):
    """subprocess.run that returns (ok, stdout, stderr) instead of raising."""
    proc = subprocess.run(cmd, capture_output=True, **kwargs)
    return proc.returncode == 0, proc.stdout, proc.stderr.decode(errors="replace")


def build(cfg, out_root, bin_dir, mlir_only, runtime_lib, pipeline_options=""):
    """Writes and compiles one configuration; returns an error string or None."""
    directory = os.path.join(out_root, cfg["name"])
    os.makedirs(directory, exist_ok=True)
    layer = os.path.join(directory, "layer.mlir")
    with open(layer, "w") as f:
        f.write(layer_mlir(cfg))
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(dict(cfg, G=cfg["HQ"] // cfg["HKV"], args=arg_names(cfg)), f, indent=1)
        f.write("\n")
    # Stale compiler output would be checked as if it were this build's.
    for stale in ("kernels.ptx", "manifest.json", "plan.json"):
        if os.path.exists(os.path.join(directory, stale)):
            os.remove(os.path.join(directory, stale))

    nsa_opt, nsa_translate = (os.path.join(bin_dir, t) for t in ("nsa-opt", "nsa-translate"))
    if mlir_only:
        ok, _, err = run([nsa_opt, layer])  # parse + verify only
        return None if ok else f"nsa-opt (verifier) failed:\n{err}"
    pipeline = f"--nsa-to-gpu={pipeline_options}" if pipeline_options else "--nsa-to-gpu"
    ok, gpu_module, err = run([nsa_opt, layer, pipeline])
    if not ok:
        return f"nsa-opt --nsa-to-gpu failed:\n{err}"
    ok, _, err = run([nsa_translate, "--nsa-to-ptx",
                      f"--nsa-manifest={os.path.join(directory, 'manifest.json')}",
                      f"--nsa-plan={os.path.join(directory, 'plan.json')}",
                      "--nsa-module-file=kernels.ptx",
                      "-o", os.path.join(directory, "kernels.ptx"), "-"], input=gpu_module)
    if not ok:
        return f"nsa-translate failed:\n{err}"
    if runtime_lib:
        try:
            print(f"  {validate_plan(directory, runtime_lib, cfg)}")
        except Exception as error:  # any refusal is this build's failure
            return f"plan.json does not pass the runtime's checks: {error}"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=sorted(SETS) + ["all"], default="test")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="build only this configuration (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the configurations and exit")
    parser.add_argument("--out", default=os.path.join(ROOT, ".gpu", "kernels"))
    parser.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"),
                        help="where nsa-opt and nsa-translate are")
    parser.add_argument("--runtime-lib", default=os.path.join(ROOT, "build", "lib",
                                                              "libnsa_runtime.so"),
                        help="validate plans with this runtime ('' to skip)")
    parser.add_argument("--pipeline-options", default="",
                        help="options of the nsa-to-gpu pipeline, e.g. 'min-warps=4'")
    parser.add_argument("--mlir-only", action="store_true",
                        help="write layer.mlir and config.json, run only the verifier")
    args = parser.parse_args()

    configs = all_configs()
    if args.only:
        unknown = [n for n in args.only if n not in configs]
        if unknown:
            sys.exit(f"unknown configuration(s) {unknown}; --list shows them")
        chosen = [configs[n] for n in args.only]
    elif args.set == "all":
        chosen = list(configs.values())
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
    for cfg in chosen:
        print(f"{cfg['name']}: building", flush=True)
        error = build(cfg, args.out, args.bin, args.mlir_only, runtime_lib,
                      args.pipeline_options)
        if error:
            print(f"  FAILED: {error.strip()}")
            failures.append(cfg["name"])
    print(f"{len(chosen) - len(failures)}/{len(chosen)} built into {args.out}")
    if failures:
        sys.exit(f"failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()

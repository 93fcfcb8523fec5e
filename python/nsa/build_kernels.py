"""Builds the GPU kernels (forward and backward) of one NSA configuration and shape.

The compiler specialises kernels to static shapes, so the GPU backend of
:func:`nsa.nsa_attention` needs one prebuilt *kernel directory* per
configuration, shape and dtype. This module writes one:

- ``layer.mlir``: one ``nsa.attention`` layer function ``@nsa_layer`` with
  the configuration's static shapes; it returns ``o`` and then the forward's
  intermediates the backward takes (:data:`SAVED_NAMES`);
- ``config.json``: the configuration and the meaning of each input argument
  in order (``args``: ``["q", "k_cmp", ...]``) and of each result
  (``outputs``: ``["o", "kc", ...]``); the backend matches calls against it;
- ``kernels.ptx``, ``manifest.json``, ``plan.json``: the compiler's output,
  ``nsa-opt layer.mlir --nsa-to-gpu | nsa-translate --nsa-to-ptx ...``;
- unless ``--forward-only``, the backward the same way: ``layer_grad.mlir``
  (``@nsa_layer_grad``: the layer's inputs, the saved intermediates, then
  ``d_o``, to one ``nsa.attention_grad`` gradient per input: nothing of the
  forward is recomputed), ``kernels_grad.ptx``,
  ``manifest_grad.json``, ``plan_grad.json``; config.json's ``backward``
  says whether they exist (and the meaning of the plan's inputs and outputs).

Usage (the compiler's ``nsa-opt`` and ``nsa-translate`` must be reachable:
``--bin``, ``$NSA_BIN_DIR``, ``build/bin`` of the checkout this package sits
in, or ``PATH``)::

    python3 -m nsa.build_kernels --out DIR --B 1 --T 4096 --HQ 64 --HKV 4 \\
        --Dk 128 --Dv 128 --dtype bf16 --compress linear --pe --kv per-branch

The kernel directory is ``DIR/<name>`` (``--name``, else one derived from
the configuration). ``DIR`` must be on the backend's search path:
``$NSA_KERNEL_PATH`` (colon-separated) or ``nsa/kernels/`` in the package,
the default ``--out``. The format is that of ``scripts/gpu/build_kernels.py``,
so directories either writes serve the backend.

This file uses only the standard library and imports nothing from the rest
of the package at module level, so that scripts can load it by path.
"""

import argparse
import importlib.util
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["BACKWARD_FILES", "BuildError", "DEFAULTS", "FORWARD_FILES", "KERNEL_PATH_ENV",
           "BIN_DIR_ENV", "MATCH_FIELDS", "arg_names", "arg_shapes", "build", "build_command",
           "build_missing", "check_grad_plan_outputs", "check_rules", "compile_module",
           "config_json", "default_name", "effective_scale", "find_tools",
           "grad_arg_names",
           "grad_output_names", "grad_shapes", "has_backward", "layer_grad_mlir", "layer_mlir",
           "make_config", "main", "matches", "output_names", "package_kernel_dir", "SAVED_NAMES",
           "saved_types", "write_layer"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

#: Colon-separated directories of kernel directories the GPU backend searches
#: (before nsa/kernels/ of the package).
KERNEL_PATH_ENV = "NSA_KERNEL_PATH"
#: Where nsa-opt and nsa-translate are, when not given by --bin.
BIN_DIR_ENV = "NSA_BIN_DIR"

# SPEC.md, "Configuration": the paper's defaults (as scripts/gpu/build_kernels.py).
DEFAULTS = dict(B=1, dtype="bf16", l=32, d=16, l_sel=64, n=16, init=1, local=2, w=512,
                scale=None, compress="linear", pe=True, kv="per-branch")

#: The config.json fields a call must equal (``scale`` is compared resolved).
MATCH_FIELDS = ("B", "T", "HQ", "HKV", "Dk", "Dv", "dtype", "l", "d", "l_sel", "n", "init",
                "local", "w", "compress", "pe", "kv")
_SHAPE_FIELDS = ("B", "T", "HQ", "HKV", "Dk", "Dv")
_BLOCK_FIELDS = ("l", "d", "l_sel", "n", "init", "local", "w")
DTYPES = ("bf16", "f16")
COMPRESS = ("linear", "mean")
KV = ("shared", "per-branch")

#: The files of one compiled function in a kernel directory, by role: the
#: nsa dialect input, and nsa-translate's PTX, manifest and host plan.
FORWARD_FILES = dict(mlir="layer.mlir", ptx="kernels.ptx", cubin="kernels.cubin",
                     manifest="manifest.json", plan="plan.json")
BACKWARD_FILES = dict(mlir="layer_grad.mlir", ptx="kernels_grad.ptx", cubin="kernels_grad.cubin",
                      manifest="manifest_grad.json", plan="plan_grad.json")


class BuildError(RuntimeError):
    """A configuration is invalid, a tool is missing, or a compiler step failed."""


def package_kernel_dir() -> str:
    """``nsa/kernels`` inside the package: searched last, the default ``--out``."""
    return os.path.join(_PACKAGE_DIR, "kernels")


# --------------------------------------------------------------------------
# The configuration
# --------------------------------------------------------------------------

def default_name(cfg: Dict) -> str:
    """A directory name that spells the configuration (matching reads config.json)."""
    parts = [f"b{cfg['B']}", f"t{cfg['T']}", f"hq{cfg['HQ']}", f"hkv{cfg['HKV']}",
             f"dk{cfg['Dk']}", f"dv{cfg['Dv']}", cfg["dtype"],
             cfg["compress"] + ("-pe" if cfg["pe"] else ""), cfg["kv"],
             "l{l}-d{d}-lsel{l_sel}-n{n}-init{init}-local{local}-w{w}".format(**cfg)]
    if cfg["scale"] is not None:
        parts.append(f"scale{float(cfg['scale'])!r}")
    return "-".join(parts)


def make_config(name: Optional[str] = None, **fields) -> Dict:
    """A full configuration: :data:`DEFAULTS` overridden by ``fields``, checked.

    ``pe`` defaults to True for ``linear`` and is False for ``mean``.
    """
    cfg = dict(DEFAULTS)
    if fields.get("compress") == "mean" and fields.get("pe") is None:
        fields["pe"] = False
    cfg.update({k: v for k, v in fields.items() if v is not None or k == "scale"})
    missing = [k for k in _SHAPE_FIELDS if k not in cfg]
    if missing:
        raise BuildError(f"the configuration needs {', '.join(missing)}")
    check_rules(cfg)
    cfg["name"] = name or default_name(cfg)
    return cfg


def check_rules(cfg: Dict):
    """SPEC.md's configuration rules, so a typo fails here, not in the verifier."""
    what = cfg.get("name") or "configuration"
    for key in _SHAPE_FIELDS + _BLOCK_FIELDS:
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise BuildError(f"{what}: {key} must be an int, got {value!r}")
        if value < (0 if key == "init" else 1):
            raise BuildError(f"{what}: {key} = {value} must be "
                             f"{'>= 0' if key == 'init' else 'positive'}")
    if cfg["HQ"] % cfg["HKV"]:
        raise BuildError(f"{what}: HQ % HKV != 0 (HQ = {cfg['HQ']}, HKV = {cfg['HKV']})")
    if cfg["l"] % cfg["d"] or cfg["l_sel"] % cfg["d"]:
        raise BuildError(f"{what}: d must divide l and l_sel")
    if cfg["l"] > cfg["l_sel"] or cfg["n"] < cfg["init"] + cfg["local"]:
        raise BuildError(f"{what}: needs l <= l_sel and n >= init + local")
    if cfg["dtype"] not in DTYPES:
        raise BuildError(f"{what}: dtype must be one of {DTYPES}, got {cfg['dtype']!r}")
    if cfg["compress"] not in COMPRESS:
        raise BuildError(f"{what}: compress must be one of {COMPRESS} (the compiler has no "
                         f"'mlp' compressor), got {cfg['compress']!r}")
    if cfg["kv"] not in KV:
        raise BuildError(f"{what}: kv must be one of {KV}, got {cfg['kv']!r}")
    if cfg["compress"] == "mean" and cfg["pe"]:
        raise BuildError(f"{what}: mean compression has no PE")
    scale = cfg.get("scale")
    if scale is not None and not (isinstance(scale, (int, float)) and not isinstance(scale, bool)
                                  and math.isfinite(scale) and scale > 0):
        raise BuildError(f"{what}: scale must be finite and positive, got {scale!r}")


def effective_scale(cfg: Dict) -> float:
    """The score scale a configuration resolves to: ``scale`` or ``1/sqrt(Dk)``."""
    scale = cfg.get("scale")
    return float(scale) if scale is not None else 1.0 / math.sqrt(cfg["Dk"])


def matches(built: Dict, wanted: Dict) -> bool:
    """Whether a kernel directory's config.json ``built`` serves ``wanted``.

    Every field of :data:`MATCH_FIELDS` must be equal and the resolved scales
    agree to 1e-6 relative (the runtime's tolerance).
    """
    try:
        if any(built[k] != wanted[k] for k in MATCH_FIELDS):
            return False
        return math.isclose(effective_scale(built), effective_scale(wanted), rel_tol=1e-6)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return False


def build_command(cfg: Dict, out: Optional[str] = None) -> str:
    """The shell command that builds ``cfg``'s kernel directory (forward and
    backward) under ``out``."""
    args = ["python3", "-m", "nsa.build_kernels", "--out", out or package_kernel_dir()]
    for key in _SHAPE_FIELDS:
        args += [f"--{key}", str(cfg[key])]
    args += ["--dtype", cfg["dtype"], "--compress", cfg["compress"],
             "--pe" if cfg["pe"] else "--no-pe", "--kv", cfg["kv"]]
    for key in _BLOCK_FIELDS:
        args += [f"--{key.replace('_', '-')}", str(cfg[key])]
    if cfg.get("scale") is not None:
        args += ["--scale", repr(float(cfg["scale"]))]
    return " ".join(shlex.quote(a) for a in args)


# --------------------------------------------------------------------------
# The layer function
# --------------------------------------------------------------------------

def arg_names(cfg: Dict) -> List[str]:
    """The meaning of each input argument of @nsa_layer, in order."""
    if cfg["kv"] == "shared":
        names = ["q", "k", "v", "gates"]
    else:
        names = ["q", "k_cmp", "k_slc", "k_win", "v_cmp", "v_slc", "v_win", "gates"]
    if cfg["compress"] == "linear":
        names += ["w_k", "w_v"] + (["pe_k", "pe_v"] if cfg["pe"] else [])
    return names


def arg_shapes(cfg: Dict) -> Dict[str, List[int]]:
    """Each argument's shape, by name (SPEC.md layouts)."""
    B, T, HQ, HKV, Dk, Dv, l = (cfg[k] for k in ("B", "T", "HQ", "HKV", "Dk", "Dv", "l"))
    shapes = dict(q=[B, T, HQ, Dk], gates=[B, T, HQ, 3], w_k=[HKV, l * Dk, Dk],
                  w_v=[HKV, l * Dv, Dv], pe_k=[HKV, l, Dk], pe_v=[HKV, l, Dv])
    for name in ("k", "k_cmp", "k_slc", "k_win"):
        shapes[name] = [B, T, HKV, Dk]
    for name in ("v", "v_cmp", "v_slc", "v_win"):
        shapes[name] = [B, T, HKV, Dv]
    return shapes


def _tensor_type(shape: Sequence[int], dtype: str) -> str:
    return "tensor<" + "x".join(str(s) for s in shape) + f"x{dtype}>"


def _op_operands(cfg: Dict) -> Tuple[str, str, str]:
    """The ``keys(..) values(..)``, ``compress ..`` and ``config <..>`` parts
    that nsa.attention and nsa.attention_grad spell alike."""
    if cfg["kv"] == "shared":
        kv = "keys(%k) values(%v)"
    else:
        kv = "keys(%k_cmp, %k_slc, %k_win) values(%v_cmp, %v_slc, %v_win)"
    if cfg["compress"] == "mean":
        compress = "compress mean"
    else:
        compress = "compress linear weights(%w_k, %w_v)"
        if cfg["pe"]:
            compress += " pe(%pe_k, %pe_v)"
    config = ", ".join(f"{k} = {cfg[k]}" for k in _BLOCK_FIELDS)
    if cfg["scale"] is not None:
        config += f", scale = {float(cfg['scale'])!r}"
    return kv, compress, config


#: The forward intermediates the layer function returns after ``o`` and the
#: backward takes (``nsa.attention``'s ``saved``, in its order).
SAVED_NAMES = ("kc", "vc", "o_cmp", "lse_cmp", "idx", "o_slc", "lse_slc", "o_win", "lse_win")


def saved_types(cfg: Dict) -> Dict[str, Tuple[List[int], str]]:
    """Each saved intermediate's (shape, dtype), by name."""
    B, T, HQ, HKV, Dk, Dv = (cfg[k] for k in ("B", "T", "HQ", "HKV", "Dk", "Dv"))
    Nc = (T - cfg["l"]) // cfg["d"] + 1 if T >= cfg["l"] else 0
    dt = cfg["dtype"]
    types = dict(kc=([B, Nc, HKV, Dk], dt), vc=([B, Nc, HKV, Dv], dt),
                 idx=([B, T, HKV, cfg["n"]], "i32"))
    for branch in ("cmp", "slc", "win"):
        types[f"o_{branch}"] = ([B, T, HQ, Dv], dt)
        types[f"lse_{branch}"] = ([B, T, HQ], "f32")
    return types


def output_names(cfg: Dict) -> List[str]:
    """The meaning of each result of @nsa_layer: ``o``, then the saved intermediates."""
    return ["o"] + list(SAVED_NAMES)


def _layer_function(cfg: Dict, generator: str, function: str, op: str, inputs: List[str],
                    types: Dict[str, str], results: List[str], result_types: List[str],
                    value: str, tail: str = "") -> str:
    """The text of one layer function: ``@function`` takes ``inputs`` (names,
    typed by ``types``) and returns the results of ``op`` applied to the
    layer's operands, then ``tail`` (``value`` names the op's results)."""
    kv, compress, config = _op_operands(cfg)
    params = ",\n    ".join(f"%{n}: {types[n]}" for n in inputs)
    in_types = ",\n         ".join(types[n] for n in inputs)
    outs = ", ".join(result_types)
    count = len(results)
    returned = ", ".join(f"%{value}#{i}" for i in range(count))
    return (f"// {cfg['name']}: generated by {generator}\n"
            f"// results: {', '.join(results)}\n"
            f"func.func @{function}(\n    {params})\n    -> ({outs}) {{\n"
            f"  %{value}:{count} = {op} %q {kv} gates %gates\n"
            f"      {compress}{tail}\n"
            f"      config <{config}>\n"
            f"      : ({in_types})\n"
            f"      -> ({outs})\n"
            f"  return {returned} : {outs}\n"
            f"}}\n")


def _types(cfg: Dict) -> Dict[str, str]:
    """The MLIR tensor type of every argument, saved intermediate and d_o, by name."""
    types = {n: _tensor_type(shape, cfg["dtype"]) for n, shape in grad_shapes(cfg).items()}
    types.update((n, _tensor_type(*t)) for n, t in saved_types(cfg).items())
    types["o"] = types["d_o"]
    return types


def layer_mlir(cfg: Dict, generator: str = "python3 -m nsa.build_kernels") -> str:
    """The nsa dialect module of one layer (syntax of examples/nsa_paper.mlir):
    ``nsa.attention`` returning ``o`` and the intermediates its backward takes."""
    check_rules(cfg)
    types = _types(cfg)
    results = output_names(cfg)
    return _layer_function(cfg, generator, "nsa_layer", "nsa.attention", arg_names(cfg),
                           types, results, [types[n] for n in results], "r")


# --------------------------------------------------------------------------
# The layer's backward function
# --------------------------------------------------------------------------

def grad_arg_names(cfg: Dict, saved: bool = True) -> List[str]:
    """The meaning of each input of @nsa_layer_grad: the layer's, the forward's
    saved intermediates (unless ``saved`` is false: it recomputes them), then d_o."""
    return arg_names(cfg) + (list(SAVED_NAMES) if saved else []) + ["d_o"]


def grad_output_names(cfg: Dict) -> List[str]:
    """The meaning of each result: one gradient per layer input, in order."""
    return ["d_" + name for name in arg_names(cfg)]


def grad_shapes(cfg: Dict) -> Dict[str, List[int]]:
    """Each input's shape of @nsa_layer_grad, by name (saved ones and d_o included)."""
    shapes = arg_shapes(cfg)
    shapes.update((name, shape) for name, (shape, _) in saved_types(cfg).items())
    shapes["d_o"] = [cfg["B"], cfg["T"], cfg["HQ"], cfg["Dv"]]
    return shapes


def layer_grad_mlir(cfg: Dict, generator: str = "python3 -m nsa.build_kernels",
                    saved: bool = True) -> str:
    """The nsa dialect module of one layer's backward (test/Dialect/NSA/IR/ops.mlir
    syntax): ``nsa.attention_grad`` returns one gradient per differentiable
    input, in input order. With ``saved`` it takes the forward's intermediates
    (:data:`SAVED_NAMES`, as @nsa_layer returns them); without, it recomputes
    the forward."""
    check_rules(cfg)
    types = _types(cfg)
    tail = f"\n      saved({', '.join('%' + n for n in SAVED_NAMES)})" if saved else ""
    return _layer_function(cfg, generator, "nsa_layer_grad", "nsa.attention_grad",
                           grad_arg_names(cfg, saved), types, grad_output_names(cfg),
                           [types[n] for n in arg_names(cfg)], "g", tail + " grad %d_o")


def check_grad_plan_outputs(cfg: Dict, plan_path: str) -> List[str]:
    """Problems with a backward plan's outputs: it must return one buffer per
    gradient, each with its primal's dtype and element count (the GPU backend
    views it with the primal's shape)."""
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    shapes = arg_shapes(cfg)
    values = {v["name"]: v for v in plan["inputs"] + plan["buffers"]}
    outputs = plan.get("outputs", [])
    names = arg_names(cfg)
    problems = []
    if len(outputs) != len(names):
        problems.append(f"{len(outputs)} outputs, expected {len(names)} ({', '.join(names)})")
    if len(set(outputs)) != len(outputs):
        problems.append(f"outputs alias one buffer: {outputs}")
    inputs = {v["name"] for v in plan["inputs"]}
    for name, out in zip(names, outputs):
        spec = values.get(out)
        if spec is None or out in inputs:
            problems.append(f"d_{name} is {out!r}, not a plan buffer")
            continue
        if spec["dtype"] != cfg["dtype"] or math.prod(spec["shape"]) != math.prod(shapes[name]):
            problems.append(f"d_{name} ({out}) is {spec['dtype']} {spec['shape']}, expected "
                            f"{cfg['dtype']} {shapes[name]}")
    return problems


def config_json(cfg: Dict, backward: bool = False) -> Dict:
    """What config.json holds: the configuration, G, ``args`` and ``outputs``
    of the forward plan in order, and ``backward``: None, or the backward
    plan's file and the meaning of its inputs (``args``) and outputs
    (``outputs``) in order."""
    grad = (dict(plan=BACKWARD_FILES["plan"], args=grad_arg_names(cfg),
                 outputs=grad_output_names(cfg)) if backward else None)
    return dict(cfg, G=cfg["HQ"] // cfg["HKV"], args=arg_names(cfg),
                outputs=output_names(cfg), backward=grad)


# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------

def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK) and os.path.getsize(path) > 0


def find_tools(bin_dir: Optional[str] = None) -> Tuple[str, str]:
    """``(nsa-opt, nsa-translate)``: from ``bin_dir``, ``$NSA_BIN_DIR``, the
    checkout's ``build/bin``, or PATH.

    Raises:
        BuildError: naming every place looked at.
    """
    tools = ("nsa-opt", "nsa-translate")
    candidates = []
    if bin_dir:
        candidates.append(("--bin", bin_dir))
    elif os.environ.get(BIN_DIR_ENV):
        candidates.append((f"${BIN_DIR_ENV}", os.environ[BIN_DIR_ENV]))
    else:
        candidates.append(("the checkout", os.path.join(_PACKAGE_DIR, "..", "..", "build",
                                                        "bin")))
    for _, directory in candidates:
        paths = [os.path.join(directory, t) for t in tools]
        if all(_executable(p) for p in paths):
            return paths[0], paths[1]
    if not bin_dir and not os.environ.get(BIN_DIR_ENV):
        found = [shutil.which(t) for t in tools]
        if all(found):
            return found[0], found[1]
        candidates.append(("PATH", "PATH"))
    looked = "; ".join(f"{where} ({os.path.abspath(d) if d != 'PATH' else d})"
                       for where, d in candidates)
    raise BuildError(f"nsa-opt and nsa-translate not found as executables in: {looked}. "
                     f"Build the compiler (scripts/setup.sh) and pass --bin DIR or set "
                     f"${BIN_DIR_ENV}")


def write_layer(cfg: Dict, directory: str) -> str:
    """Writes layer.mlir into ``directory``; removes stale output.

    Returns layer.mlir's path.
    """
    os.makedirs(directory, exist_ok=True)
    # Stale compiler output would be taken for this build's; so would a
    # config.json whose kernels are not there yet: it is written last.
    stale = ["config.json", BACKWARD_FILES["mlir"]] + [
        files[k] for files in (FORWARD_FILES, BACKWARD_FILES)
        for k in ("ptx", "cubin", "manifest", "plan")]
    for name in stale:
        if os.path.exists(os.path.join(directory, name)):
            os.remove(os.path.join(directory, name))
    layer = os.path.join(directory, FORWARD_FILES["mlir"])
    with open(layer, "w", encoding="utf-8") as f:
        f.write(layer_mlir(cfg))
    return layer


def _write_config(cfg: Dict, directory: str, backward: bool, extra: Optional[Dict] = None):
    with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
        json.dump(dict(config_json(cfg, backward), **(extra or {})), f, indent=1)
        f.write("\n")


def _run(cmd: Sequence[str], what: str, **kwargs) -> bytes:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, **kwargs)
    except OSError as error:  # e.g. a tool being relinked right now
        raise BuildError(f"{what}: cannot run {cmd[0]}: {error}") from error
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        if not err:  # a crash prints nothing: say how it died
            err = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                   else "no message")
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{err}")
    return proc.stdout



def compile_module(layer: str, directory: str, files: Dict[str, str], nsa_opt: str,
                   nsa_translate: str, pipeline_options: str = "", cubin: bool = False):
    """``nsa-opt LAYER --nsa-to-gpu | nsa-translate --nsa-to-ptx`` into
    ``directory``'s ``files`` (``ptx``, ``manifest``, ``plan``: FORWARD_FILES'
    roles). With ``cubin``, nsa-translate also assembles the PTX with the CUDA
    toolkit's ptxas (``--nsa-cubin``: ``$NSA_PTXAS``, PATH, ``$CUDA_HOME/bin``,
    ``/usr/local/cuda/bin``) into ``files['cubin']``, which the manifest names
    instead (and the PTX is removed): the driver
    otherwise compiles the PTX when a process first loads it, which takes
    15 to 100 s for a backward module (measured on an H100), on every machine.
    Raises :class:`BuildError`."""
    module = files["cubin" if cubin else "ptx"]
    ptx = os.path.join(directory, files["ptx"])
    pipeline = f"--nsa-to-gpu={pipeline_options}" if pipeline_options else "--nsa-to-gpu"
    gpu_module = _run([nsa_opt, layer, pipeline], f"nsa-opt {os.path.basename(layer)} {pipeline}")
    translate = [nsa_translate, "--nsa-to-ptx",
                 f"--nsa-manifest={os.path.join(directory, files['manifest'])}",
                 f"--nsa-plan={os.path.join(directory, files['plan'])}",
                 f"--nsa-module-file={module}", "-o", ptx, "-"]
    if cubin:
        translate.append(f"--nsa-cubin={os.path.join(directory, module)}")
    _run(translate, f"nsa-translate --nsa-to-ptx ({os.path.basename(layer)})",
         input=gpu_module)
    if cubin:
        os.remove(ptx)


def _load_runtime_binding():
    """nsa._runtime, also when this file was loaded by path."""
    if __package__:
        from . import _runtime
        return _runtime
    spec = importlib.util.spec_from_file_location("nsa_runtime_binding",
                                                  os.path.join(_PACKAGE_DIR, "_runtime.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def validate_plan(directory: str, runtime_lib: str, cfg: Dict,
                  plan_file: str = FORWARD_FILES["plan"]) -> str:
    """Every launch of a plan through the runtime's checks (no GPU); a summary."""
    binding = _load_runtime_binding()
    plan = binding.Plan(binding.Runtime(runtime_lib), os.path.join(directory, plan_file))
    try:
        launches = plan.validate(config=cfg)
    finally:
        plan.manifest.close()
    return (f"{plan_file}: {len(launches)} launches pass the runtime's checks, buffers "
            f"{plan.buffer_bytes() / 2**20:.1f} MiB")


def _has_plan(directory: str, files: Dict[str, str]) -> bool:
    """The plan, its manifest and the module (PTX or cubin) are there."""
    return (all(os.path.isfile(os.path.join(directory, files[k])) for k in ("plan", "manifest"))
            and any(os.path.isfile(os.path.join(directory, files[k])) for k in ("ptx", "cubin")))


def has_backward(directory: str, built: Dict) -> bool:
    """Whether the kernel directory with config.json ``built`` has its backward plan."""
    grad = built.get("backward")
    return (isinstance(grad, dict) and isinstance(grad.get("args"), list)
            and isinstance(grad.get("outputs"), list) and _has_plan(directory, BACKWARD_FILES))


def build_missing(cfgs: Sequence[Dict], out_root: str, backward: bool = True,
                  log=print, **build_args) -> List[str]:
    """Builds each configuration into ``out_root`` unless a complete build of
    it (both plans when ``backward``) is already there; the directories.

    For scripts that need a fixed set of kernels (scripts/gpu/package.sh):
    a rerun costs nothing. ``build_args`` go to :func:`build`; plans are
    validated with :func:`default_runtime_lib` unless ``runtime_lib`` says
    otherwise.
    """
    build_args.setdefault("runtime_lib", default_runtime_lib())
    directories = []
    for cfg in cfgs:
        directory = os.path.join(out_root, cfg["name"])
        try:
            with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
                built = json.load(f)
        except (OSError, ValueError):
            built = None
        cubin = build_args.get("cubin", False)
        complete = (isinstance(built, dict) and matches(built, cfg)
                    and _has_plan(directory, FORWARD_FILES)
                    and (not backward or has_backward(directory, built))
                    and (not cubin or all(os.path.isfile(os.path.join(directory, f["cubin"]))
                                          for f in (FORWARD_FILES, BACKWARD_FILES)[:1 + backward])))
        if complete:
            log(f"{cfg['name']}: up to date")
        else:
            log(f"{cfg['name']}: building into {out_root}")
            build(cfg, out_root, log=log, backward=backward, **build_args)
        directories.append(directory)
    return directories


def default_runtime_lib() -> Optional[str]:
    """A runtime library to validate plans with: $NSA_RUNTIME_LIBRARY, the
    package's nsa/lib, or the checkout's build/lib; None if there is none."""
    for path in (os.environ.get("NSA_RUNTIME_LIBRARY"),
                 os.path.join(_PACKAGE_DIR, "lib", "libnsa_runtime.so"),
                 os.path.join(_PACKAGE_DIR, "..", "..", "build", "lib", "libnsa_runtime.so")):
        if path and os.path.isfile(path):
            return os.path.abspath(path)
    return None


def build(cfg: Dict, out_root: str, bin_dir: Optional[str] = None, mlir_only: bool = False,
          runtime_lib: Optional[str] = None, pipeline_options: str = "",
          log=None, backward: bool = True, cubin: bool = False) -> str:
    """Writes and compiles one configuration into ``out_root/<cfg['name']>``.

    ``mlir_only``: write layer.mlir (and layer_grad.mlir) and config.json
    and run only the verifier (the directory then serves no backend: it has
    no plan.json). ``runtime_lib``: when given, every launch of each plan is
    put through the runtime's own argument checks with placeholder tensors.
    ``backward``: also build the backward plan (``BACKWARD_FILES``).
    ``cubin``: assemble the kernels with ptxas (see :func:`compile_module`).

    Returns the kernel directory. Raises :class:`BuildError`.
    """
    check_rules(cfg)
    nsa_opt, nsa_translate = find_tools(bin_dir)
    directory = os.path.join(out_root, cfg["name"])
    layers = [(write_layer(cfg, directory), FORWARD_FILES)]
    if backward:
        grad_layer = os.path.join(directory, BACKWARD_FILES["mlir"])
        with open(grad_layer, "w", encoding="utf-8") as f:
            f.write(layer_grad_mlir(cfg))
        layers.append((grad_layer, BACKWARD_FILES))
    extra = {"pipeline_options": pipeline_options} if pipeline_options else None
    if mlir_only:
        for layer, _ in layers:
            _run([nsa_opt, layer], f"nsa-opt {os.path.basename(layer)} (verifier)")
        _write_config(cfg, directory, False, extra)
        return directory
    for layer, files in layers:
        compile_module(layer, directory, files, nsa_opt, nsa_translate, pipeline_options, cubin)
        if files is BACKWARD_FILES:
            problems = check_grad_plan_outputs(cfg, os.path.join(directory, files["plan"]))
            if problems:
                raise BuildError(f"{files['plan']}: " + "; ".join(problems))
        if runtime_lib:
            try:
                summary = validate_plan(directory, runtime_lib, cfg, files["plan"])
            except Exception as error:  # any refusal is this build's failure
                raise BuildError(f"{files['plan']} does not pass the runtime's checks: "
                                 f"{error}") from error
            if log:
                log(f"  {summary} ({runtime_lib})")
    _write_config(cfg, directory, backward, extra)
    return directory


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m nsa.build_kernels", description=__doc__, allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    out_default = (os.environ.get(KERNEL_PATH_ENV, "").split(os.pathsep)[0]
                   or package_kernel_dir())
    parser.add_argument("--out", default=out_default,
                        help="directory of kernel directories (default: the first entry of "
                             f"${KERNEL_PATH_ENV}, else the package's nsa/kernels: "
                             "%(default)s)")
    parser.add_argument("--name", help="the kernel directory's name (default: derived from "
                                       "the configuration)")
    shape = parser.add_argument_group("shape (SPEC.md names)")
    shape.add_argument("--B", type=int, default=DEFAULTS["B"], help="batch (default 1)")
    for key in ("T", "HQ", "HKV", "Dk"):
        shape.add_argument(f"--{key}", type=int, required=True)
    shape.add_argument("--Dv", type=int, help="default: Dk")
    shape.add_argument("--dtype", choices=DTYPES, default=DEFAULTS["dtype"])
    layer = parser.add_argument_group("layer")
    layer.add_argument("--compress", choices=COMPRESS, default=DEFAULTS["compress"])
    layer.add_argument("--pe", dest="pe", action="store_true", default=None,
                       help="intra-block position encodings pe_k, pe_v (default for linear)")
    layer.add_argument("--no-pe", dest="pe", action="store_false")
    layer.add_argument("--kv", choices=KV, default=DEFAULTS["kv"],
                       help="one K/V for all branches or one per branch (default %(default)s)")
    blocks = parser.add_argument_group("block sizes (NSAConfig; default: the paper's)")
    for key in _BLOCK_FIELDS:
        blocks.add_argument(f"--{key.replace('_', '-')}", dest=key, type=int,
                            default=DEFAULTS[key])
    blocks.add_argument("--scale", type=float, help="softmax scale (default 1/sqrt(Dk))")
    tools = parser.add_argument_group("tools")
    tools.add_argument("--bin", help=f"where nsa-opt and nsa-translate are (default: "
                                     f"${BIN_DIR_ENV}, the checkout's build/bin, PATH)")
    tools.add_argument("--runtime-lib", help="validate the plan with this runtime library "
                                             "('' to skip; default: $NSA_RUNTIME_LIBRARY, "
                                             "nsa/lib, the checkout's build/lib, when present)")
    tools.add_argument("--pipeline-options", default="",
                       help="options of the nsa-to-gpu pipeline, e.g. 'min-warps=4'")
    tools.add_argument("--mlir-only", action="store_true",
                       help="write layer.mlir (layer_grad.mlir) and config.json, run only the "
                            "verifier")
    tools.add_argument("--cubin", action="store_true",
                       help="assemble the kernels with ptxas (sm_90a) so that the GPU machine's "
                            "driver need not compile the PTX on first use (15-100 s per "
                            "backward module)")
    tools.add_argument("--forward-only", action="store_true",
                       help="skip the backward plan (faster; the directory then serves "
                            "inference only)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    fields = {k: getattr(args, k) for k in _SHAPE_FIELDS + _BLOCK_FIELDS}
    fields["Dv"] = args.Dv if args.Dv is not None else args.Dk
    try:
        if args.compress == "mean" and args.pe:
            raise BuildError("--pe is not for --compress mean (it has no parameters)")
        cfg = make_config(name=args.name, dtype=args.dtype, compress=args.compress,
                          pe=args.pe, kv=args.kv, scale=args.scale, **fields)
        runtime_lib = default_runtime_lib() if args.runtime_lib is None else args.runtime_lib
        print(f"{cfg['name']}: building into {args.out}", flush=True)
        directory = build(cfg, args.out, args.bin, args.mlir_only, runtime_lib or None,
                          args.pipeline_options, log=print, backward=not args.forward_only,
                          cubin=args.cubin)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(directory)
    searched = [os.path.abspath(p) for p in os.environ.get(KERNEL_PATH_ENV, "").split(os.pathsep)
                if p] + [package_kernel_dir()]
    if os.path.abspath(args.out) not in searched:
        print(f"note: {args.out} is not on the GPU backend's search path; add it to "
              f"${KERNEL_PATH_ENV}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

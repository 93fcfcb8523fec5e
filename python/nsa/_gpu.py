"""The GPU backend: the compiler's kernels, launched by the NSA runtime library.

The kernels are compiled per static shape and configuration (``nsa-opt
--nsa-to-gpu | nsa-translate --nsa-to-ptx``, docs/gpu.md) into a *kernel
directory*: ``config.json`` (what it was built for, and the meaning of each
input in order), ``plan.json`` (the host plan: inputs, buffers, launches,
outputs), ``manifest.json`` and ``kernels.ptx``. ``python3 -m
nsa.build_kernels`` writes one (scripts/gpu/build_kernels.py writes the same
format).

A call is served by the first kernel directory whose config.json matches its
B, T, HQ, HKV, Dk, Dv, dtype, block sizes, resolved scale, compressor kind,
PE and shared versus per-branch K/V (a shared call may also run on
per-branch kernels, given the same K/V three times). Directories are searched
in ``$NSA_KERNEL_PATH`` (colon-separated; each entry holds kernel directories
or is one), then ``nsa/kernels/`` in the package. The runtime library is
``$NSA_RUNTIME_LIBRARY``, else ``nsa/lib/libnsa_runtime.so`` in the package.
Loaded plans are cached per directory (and reloaded when its plan.json
changes).

Autograd: a call that records a graph (grad mode on and an input requiring
grad) runs the forward plan inside a ``torch.autograd.Function`` that saves
its inputs and the intermediates the forward plan returns after ``o``
(compressed K/V, each branch's o and lse, idx); its backward runs the
directory's backward plan (``plan_grad.json``: ``nsa.attention_grad`` on
those intermediates, so no forward kernel runs again) on them and ``d_o``,
and hands each gradient to the argument it belongs to
(summed where one tensor served several inputs, e.g. shared K/V on
per-branch kernels). Such a call needs a directory built with its backward
(the default of ``python3 -m nsa.build_kernels``; ``--forward-only`` skips
it), and says so, with the build command, when there is none.
"""

import ctypes
import json
import math
import os
import threading
from typing import Dict, List, Optional, Tuple

import torch

from . import _runtime
from .build_kernels import (BACKWARD_FILES, FORWARD_FILES, KERNEL_PATH_ENV, build_command,
                            has_backward, make_config, matches, package_kernel_dir,
                            saved_types, BuildError)
from .config import NSAConfig

__all__ = ["GPUBackendUnavailable", "KERNEL_PATH_ENV", "LIBRARY_NAME",
           "RUNTIME_ENV", "find_kernel_dir", "find_runtime", "kernel_search_path",
           "load_runtime", "nsa_attention", "wanted_config"]

#: File name of the runtime library built from runtime/.
LIBRARY_NAME = "libnsa_runtime.so"
#: Environment variable naming the runtime library's path.
RUNTIME_ENV = "NSA_RUNTIME_LIBRARY"
#: NSA_RUNTIME_ABI_VERSION of runtime/include/nsa_runtime.h this module speaks.
ABI_VERSION = 1
#: When true, every plan buffer is filled with NaN (integers: -7777) before
#: the launches, so that an element no kernel writes shows up in a check
#: (SPEC.md, Tolerances). For checks only: it costs a fill per buffer.
POISON_BUFFERS = False

_PACKAGE_LIB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")
#: nsa/kernels in the package: searched after $NSA_KERNEL_PATH (tests patch it).
PACKAGE_KERNEL_DIR = package_kernel_dir()

_HOW_TO_BUILD = (
    "The runtime library is built from runtime/: scripts/setup.sh builds the compiler and, "
    "with it, build/lib/" + LIBRARY_NAME + " (or alone: cmake -S runtime -B build-runtime && "
    "cmake --build build-runtime); point $" + RUNTIME_ENV + " at it or copy it into "
    + _PACKAGE_LIB_DIR + ".")
_OTHERWISE = ("Until then use backend='reference' (pure PyTorch, any device, memory "
              "quadratic in T).")

_DTYPE_NAMES = {torch.bfloat16: "bf16", torch.float16: "f16"}
_FILES = ("config.json", FORWARD_FILES["plan"], FORWARD_FILES["manifest"])


class GPUBackendUnavailable(NotImplementedError):
    """The GPU backend cannot run here; the message lists every missing piece.

    A subclass of ``NotImplementedError`` and hence of ``RuntimeError``.
    """


# --------------------------------------------------------------------------
# The runtime library
# --------------------------------------------------------------------------

def find_runtime() -> Tuple[Optional[str], List[str]]:
    """Locates the runtime library.

    Returns:
        ``(path, problems)``: the path of an existing library file (or
        ``None``) and, when there is none, why each candidate failed.
    """
    explicit = os.environ.get(RUNTIME_ENV)
    if explicit:
        if os.path.isfile(explicit):
            return explicit, []
        return None, [f"${RUNTIME_ENV} = {explicit!r} is not a file"]
    bundled = os.path.join(_PACKAGE_LIB_DIR, LIBRARY_NAME)
    if os.path.isfile(bundled):
        return bundled, []
    return None, [f"${RUNTIME_ENV} is not set", f"{bundled} does not exist"]


def _open_runtime() -> Tuple[Optional[ctypes.CDLL], Optional[str]]:
    """``(library, None)`` when the runtime loads with our ABI, else ``(None, why not)``."""
    path, problems = find_runtime()
    if path is None:
        return None, f"NSA runtime library {LIBRARY_NAME} not found ({'; '.join(problems)})"
    try:
        lib = ctypes.CDLL(path)
    except OSError as error:
        return None, f"NSA runtime library {path} does not load: {error}"
    try:
        abi_version = lib.nsa_runtime_abi_version
    except AttributeError:
        return None, f"{path} lacks nsa_runtime_abi_version: it is not the NSA runtime"
    abi_version.restype = ctypes.c_int32
    version = abi_version()
    if version != ABI_VERSION:
        return None, (f"NSA runtime library {path} has ABI version {version}, this package "
                      f"needs {ABI_VERSION} (rebuild it from the same checkout)")
    return lib, None


_checked_runtimes: Dict[str, Optional[str]] = {}


def _checked_runtime() -> Tuple[Optional[str], Optional[str]]:
    """``(path, None)`` for a runtime that loads with our ABI, else ``(None, why not)``.

    A library that passed is remembered by path (a loaded library stays loaded),
    so that a call does not reopen it.
    """
    path = find_runtime()[0]
    if path is not None and path in _checked_runtimes:
        return path, None
    lib, problem = _open_runtime()
    if lib is None:
        return None, problem
    _checked_runtimes[path] = None
    return path, None


def load_runtime() -> ctypes.CDLL:
    """Loads the runtime library and checks its ABI version.

    Raises:
        GPUBackendUnavailable: the library is missing, does not load, or
            speaks another ABI version.
    """
    lib, problem = _open_runtime()
    if lib is None:
        raise GPUBackendUnavailable(problem + ". " + _HOW_TO_BUILD + " " + _OTHERWISE)
    return lib


# --------------------------------------------------------------------------
# Kernel directories
# --------------------------------------------------------------------------

def kernel_search_path() -> List[str]:
    """Where kernel directories are looked for, in order: each entry of
    ``$NSA_KERNEL_PATH``, then the package's ``nsa/kernels``."""
    entries = [p for p in os.environ.get(KERNEL_PATH_ENV, "").split(os.pathsep) if p]
    return entries + [PACKAGE_KERNEL_DIR]


def wanted_config(q: torch.Tensor, v: torch.Tensor, cfg: NSAConfig, compress_mode: str,
                  pe: bool, kv: str) -> Dict:
    """The config.json a call needs (without ``args`` and ``G``).

    Raises:
        BuildError: the call has no compiler equivalent (``compress='mlp'``,
            a dtype other than bf16/f16).
    """
    B, T, HQ, Dk = q.shape
    HKV, Dv = v.shape[2], v.shape[3]
    if q.dtype not in _DTYPE_NAMES:
        raise BuildError(f"the GPU kernels take bf16 or f16, not {q.dtype}")
    if compress_mode not in ("linear", "mean"):
        raise BuildError(f"compress={compress_mode!r} has no GPU kernels: the compiler's "
                         f"nsa.attention compresses with 'linear' or 'mean'")
    return make_config(B=int(B), T=int(T), HQ=int(HQ), HKV=int(HKV), Dk=int(Dk), Dv=int(Dv),
                       dtype=_DTYPE_NAMES[q.dtype], l=cfg.l, d=cfg.d, l_sel=cfg.l_sel, n=cfg.n,
                       init=cfg.init, local=cfg.local, w=cfg.w, scale=cfg.scale,
                       compress=compress_mode, pe=bool(pe), kv=kv)


def describe(cfg: Dict) -> str:
    """One line naming a configuration: shape, dtype, layer, block sizes."""
    scale = "1/sqrt(Dk)" if cfg.get("scale") is None else repr(float(cfg["scale"]))
    return (f"B={cfg['B']} T={cfg['T']} HQ={cfg['HQ']} HKV={cfg['HKV']} Dk={cfg['Dk']} "
            f"Dv={cfg['Dv']} {cfg['dtype']}, compress={cfg['compress']}"
            f"{' with PE' if cfg['pe'] else ''}, {cfg['kv']} K/V, l={cfg['l']} d={cfg['d']} "
            f"l_sel={cfg['l_sel']} n={cfg['n']} init={cfg['init']} local={cfg['local']} "
            f"w={cfg['w']} scale={scale}")


def _candidates(root: str) -> List[str]:
    """``root`` itself when it is a kernel directory, else its subdirectories."""
    if os.path.isfile(os.path.join(root, "config.json")):
        return [root]
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    return [os.path.join(root, n) for n in names
            if os.path.isfile(os.path.join(root, n, "config.json"))]


def _read_config(directory: str) -> Optional[Dict]:
    try:
        with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        return None
    return cfg if isinstance(cfg, dict) else None


def find_kernel_dir(wanted: Dict, search_path: Optional[List[str]] = None,
                    backward: bool = False) -> Tuple[Optional[str], List[str]]:
    """The first kernel directory that serves ``wanted``.

    A directory serves it when its config.json :func:`matches` (a per-branch
    build also serves a shared call, as a second choice), it lists its
    ``args``, and its plan.json and manifest.json exist; with ``backward``,
    it must also have the backward plan (config.json's ``backward``,
    plan_grad.json, manifest_grad.json).

    Returns:
        ``(directory or None, notes)``: notes say why near misses (a matching
        config.json without compiler output, an unreadable config.json) were
        passed over.
    """
    search_path = kernel_search_path() if search_path is None else search_path
    preferences = [wanted]
    if wanted["kv"] == "shared":
        preferences.append(dict(wanted, kv="per-branch"))
    notes: List[str] = []
    for want in preferences:
        for root in search_path:
            for directory in _candidates(root):
                built = _read_config(directory)
                if built is None:
                    note = f"{directory}/config.json is not a JSON object"
                    if note not in notes:
                        notes.append(note)
                    continue
                if not matches(built, want):
                    continue
                missing = [f for f in _FILES if not os.path.isfile(os.path.join(directory, f))]
                if missing or not isinstance(built.get("args"), list):
                    note = (f"{directory} matches but lacks {', '.join(missing) or 'args'} "
                            f"(an --mlir-only or failed build?)")
                    if note not in notes:
                        notes.append(note)
                    continue
                if backward and not has_backward(directory, built):
                    note = (f"{directory} matches but has no backward plan (built with "
                            f"--forward-only, or by scripts/gpu/build_kernels.py?)")
                    if note not in notes:
                        notes.append(note)
                    continue
                return directory, notes
    return None, notes


# --------------------------------------------------------------------------
# Running a plan
# --------------------------------------------------------------------------

class _Launcher:
    """A loaded plan's launches with their nsa_arg arrays prepared once.

    Kernels are compiled for static shapes and the backend passes contiguous
    tensors, so every argument's dtype, shape and strides (of the view the
    kernel parameter declares, as :meth:`nsa._runtime.Plan.launch` passes it)
    are known when the plan loads; a call only writes the data pointers and
    calls ``nsa_launch``, which still checks everything (docs/runtime-abi.md,
    What a launch checks). Measured on an H200, this took a whole call
    (7 launches at T = 200, argument checks included) from 0.8 ms of host
    time, through :meth:`nsa._runtime.Plan.launch`, to 0.3 ms.
    """

    def __init__(self, plan: "_runtime.Plan", cfg: Dict):
        self.plan, self.lib = plan, plan.manifest.runtime.lib
        self.config = _runtime.config_struct(cfg)
        self.lock = threading.Lock()
        self.launches = []
        for launch in plan.launches:
            params = plan.manifest.kernels[launch["kernel"]]["params"]
            args = (_runtime.Arg * len(params))()
            slots, names = [], iter(launch["args"])
            for i, param in enumerate(params):
                if param["kind"] != "tensor":
                    if "value" not in param:
                        raise ValueError(f"{plan.path}: kernel {launch['kernel']} scalar "
                                         f"{param['name']!r} has no value rule")
                    args[i] = _runtime.Arg(kind=_runtime.ARG_AUTO)
                    continue
                name = next(names)
                value = plan.values[name]
                shape = param["shape"]
                if not all(isinstance(d, int) for d in shape):
                    shape = value["shape"]
                elif math.prod(shape) != math.prod(value["shape"]):
                    raise ValueError(f"{plan.path}: kernel {launch['kernel']} parameter "
                                     f"{param['name']!r} wants shape {shape}, but {name!r} "
                                     f"has shape {value['shape']}")
                args[i] = _runtime.tensor_arg(_runtime.HostTensor(0, value["dtype"], shape))
                slots.append((i, name))
            self.launches.append((launch["kernel"].encode(), args, slots))
        self.lifetimes = buffer_lifetimes(plan)

    def __call__(self, values: Dict[str, torch.Tensor], stream: "torch.cuda.Stream"):
        """Launches the plan on ``stream``: ``values`` holds the inputs by plan
        name; each buffer is allocated (fresh, so that a returned output is
        never overwritten by the next call) just before the first launch that
        uses it and dropped after the last one unless it is an output, so the
        caching allocator hands its memory to later buffers of the same call
        (one stream: the reuse is ordered after the kernels that read it).
        ``values`` ends with the inputs and the outputs."""
        handle = ctypes.c_void_p(stream.cuda_stream)
        runtime, manifest = self.plan.manifest.runtime, self.plan.manifest._handle
        with self.lock:  # the arrays are shared; a call fills and launches them whole
            for (kernel, args, slots), (born, dead) in zip(self.launches, self.lifetimes):
                for spec in born:
                    values[spec["name"]] = _new_buffer(spec, stream.device)
                for i, name in slots:
                    args[i].tensor.data = values[name].data_ptr()
                runtime.check(self.lib.nsa_launch(manifest, kernel, ctypes.byref(self.config),
                                                  args, len(args), handle),
                              f"kernel {kernel.decode()}")
                for name in dead:
                    del values[name]


def buffer_lifetimes(plan: "_runtime.Plan") -> List[Tuple[List[Dict], List[str]]]:
    """Per launch of ``plan``: the buffers to allocate before it (specs: those
    it is the first to use; the first launch also gets any buffer no launch
    uses) and the names to drop after it (the buffers it is the last to use,
    outputs excepted)."""
    first: Dict[str, int] = {}
    last: Dict[str, int] = {}
    for k, launch in enumerate(plan.launches):
        for name in launch["args"]:
            first.setdefault(name, k)
            last[name] = k
    lifetimes = [([], []) for _ in plan.launches]
    for spec in plan.buffers:
        name = spec["name"]
        lifetimes[first.get(name, 0)][0].append(spec)
        if name in last and name not in plan.outputs:
            lifetimes[last[name]][1].append(name)
    return lifetimes


def _new_buffer(spec: Dict, device: torch.device) -> torch.Tensor:
    buffer = torch.empty(spec["shape"], dtype=_runtime._torch_dtype(spec["dtype"]), device=device)
    if POISON_BUFFERS:
        _runtime._poison(buffer)
    return buffer


_lock = threading.Lock()
_runtimes: Dict[str, "_runtime.Runtime"] = {}
# (directory, runtime library, plan file) -> (its mtime_ns, config.json, Plan, _Launcher)
_plans: Dict[Tuple[str, str, str], Tuple[int, Dict, "_runtime.Plan", _Launcher]] = {}
# (search path, wanted config as a tuple, backward) -> directory
_lookups: Dict[Tuple, str] = {}


def _load_plan(directory: str, runtime_path: str, backward: bool = False
               ) -> Tuple[Dict, "_runtime.Plan", _Launcher]:
    """config.json, the loaded forward (or backward) Plan of ``directory`` and
    its launcher, cached (per directory, runtime library and plan; reloaded
    when the plan file changes)."""
    plan_file = (BACKWARD_FILES if backward else FORWARD_FILES)["plan"]
    plan_path = os.path.join(directory, plan_file)
    stamp = os.stat(plan_path).st_mtime_ns
    key = (os.path.realpath(directory), runtime_path, plan_file)
    with _lock:
        cached = _plans.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1:]
        runtime = _runtimes.get(runtime_path)
        if runtime is None:
            runtime = _runtimes[runtime_path] = _runtime.Runtime(runtime_path)
        with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        plan = _runtime.Plan(runtime, plan_path)
        args = _plan_args(cfg, backward)
        if len(args) != len(plan.inputs):
            raise ValueError(f"{directory}: config.json lists {len(args)} arguments of "
                             f"{plan_file}, which takes {len(plan.inputs)}")
        if backward and len(cfg["backward"]["outputs"]) != len(plan.outputs):
            raise ValueError(f"{directory}: config.json lists "
                             f"{len(cfg['backward']['outputs'])} gradients, {plan_file} "
                             f"returns {len(plan.outputs)}")
        launcher = _Launcher(plan, cfg)
        if cached is not None:
            cached[2].manifest.close()
        _plans[key] = (stamp, cfg, plan, launcher)
        return cfg, plan, launcher


def _plan_args(cfg: Dict, backward: bool) -> List[str]:
    """The meaning of each input of the forward or backward plan, in order."""
    return cfg["backward"]["args"] if backward else cfg["args"]


def _lookup(wanted: Dict, backward: bool) -> Tuple[Optional[str], List[str]]:
    """find_kernel_dir with found directories remembered (misses are not:
    a build made after a miss is found by the next call)."""
    search_path = kernel_search_path()
    key = (tuple(search_path), tuple(sorted((k, repr(v)) for k, v in wanted.items())), backward)
    directory = _lookups.get(key)
    if directory is not None and os.path.isfile(os.path.join(directory, "plan.json")):
        return directory, []
    directory, notes = find_kernel_dir(wanted, search_path, backward)
    if directory is not None:
        _lookups[key] = directory
    return directory, notes


def _kernel_problem(wanted: Optional[Dict], why_not: Optional[str], backward: bool
                    ) -> Tuple[Optional[str], Optional[str]]:
    """``(directory, None)`` or ``(None, why no kernels)`` with the build command."""
    if wanted is None:
        return None, why_not
    directory, notes = _lookup(wanted, backward)
    if directory is not None:
        return directory, None
    search_path = kernel_search_path()
    out = search_path[0]
    what = ("prebuilt GPU kernels with a backward plan (gradients are needed: grad mode is "
            "on and an input requires grad)" if backward else "prebuilt GPU kernels")
    message = (f"no {what} for this configuration ({describe(wanted)}) in "
               f"${KERNEL_PATH_ENV} or {PACKAGE_KERNEL_DIR} (searched: "
               f"{', '.join(search_path)})")
    if notes:
        message += "; passed over: " + "; ".join(notes)
    prefix = _checkout_pythonpath()
    message += (f". Build them (needs the compiler's nsa-opt and "
                f"nsa-translate: add --bin DIR unless they are in this checkout's build/bin, "
                f"$NSA_BIN_DIR or PATH) with: {prefix}{build_command(wanted, out)}")
    return None, message


def _checkout_pythonpath() -> str:
    """``PYTHONPATH=<repo>/python `` when the package runs from a source checkout."""
    python_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isfile(os.path.join(python_dir, "..", "CMakeLists.txt")):
        return f"PYTHONPATH={python_dir} "
    return ""


def _bind(directory: str, cfg: Dict, plan: "_runtime.Plan", by_meaning: Dict[str, torch.Tensor],
          backward: bool = False) -> Dict[str, torch.Tensor]:
    """The plan's inputs by name, each the tensor of its meaning (contiguous),
    checked against the plan's shape and dtype (bf16/f16 activations, f32 lse,
    i32 idx)."""
    values = {}
    for spec, meaning in zip(plan.inputs, _plan_args(cfg, backward)):
        t = by_meaning[meaning].contiguous()
        if list(t.shape) != spec["shape"] or t.dtype != _runtime._torch_dtype(spec["dtype"]):
            raise ValueError(f"{directory}: input {spec['name']} ({meaning}) must be "
                             f"{spec['dtype']} {spec['shape']}, got {t.dtype} {list(t.shape)}")
        values[spec["name"]] = t
    return values


def _run(directory: str, runtime_path: str, by_meaning: Dict[str, torch.Tensor],
         device: torch.device, backward: bool = False) -> List[torch.Tensor]:
    """Runs the forward (or backward) plan of ``directory`` on the current
    stream; its outputs in order, in the plan's shapes."""
    cfg, plan, launch = _load_plan(directory, runtime_path, backward)
    values = _bind(directory, cfg, plan, by_meaning, backward)
    with torch.cuda.device(device):
        launch(values, torch.cuda.current_stream(device))
    return [values[name] for name in plan.outputs]


class _Call:
    """One GPU call's binding: its kernel directory, and which of the distinct
    input tensors each plan input (by meaning: ``q``, ``k_cmp``, ...) reads."""

    def __init__(self, directory: str, runtime_path: str, device: torch.device,
                 slots: Dict[str, int], out_shape: Tuple[int, ...]):
        self.directory, self.runtime_path, self.device = directory, runtime_path, device
        self.slots, self.out_shape = slots, out_shape

    def by_meaning(self, tensors: Tuple[torch.Tensor, ...]) -> Dict[str, torch.Tensor]:
        return {meaning: tensors[i] for meaning, i in self.slots.items()}

    def forward(self, tensors: Tuple[torch.Tensor, ...]
                ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """The output, ``[B, T, HQ, Dv]`` (so that d_o arrives in the backward
        plan's shape), and the forward's saved intermediates by meaning
        (config.json's ``outputs`` after ``o``, in SAVED_NAMES' shapes; none
        from a directory built before the forward returned them)."""
        cfg = _load_plan(self.directory, self.runtime_path)[0]
        outputs = _run(self.directory, self.runtime_path, self.by_meaning(tensors), self.device)
        shapes = saved_types(cfg)
        saved = {name: out.view(shapes[name][0])
                 for name, out in zip(cfg.get("outputs", ["o"])[1:], outputs[1:])}
        return outputs[0].view(self.out_shape), saved

    def backward(self, tensors: Tuple[torch.Tensor, ...], saved: Dict[str, torch.Tensor],
                 d_o: torch.Tensor) -> List[Optional[torch.Tensor]]:
        """One gradient per tensor: the plan's gradients of the inputs that read
        it, summed. The backward plan reads ``saved`` where it takes the
        forward's intermediates (and recomputes them where it does not)."""
        values = dict(self.by_meaning(tensors), **saved)
        values["d_o"] = d_o.to(tensors[self.slots["q"]].dtype)
        cfg = _load_plan(self.directory, self.runtime_path, backward=True)[0]
        outputs = _run(self.directory, self.runtime_path, values, self.device, backward=True)
        grads: List[Optional[torch.Tensor]] = [None] * len(tensors)
        for name, out in zip(cfg["backward"]["outputs"], outputs):
            i = self.slots[name[len("d_"):]]
            out = out.view(tensors[i].shape)
            grads[i] = out if grads[i] is None else grads[i] + out
        return grads


class _NSAFunction(torch.autograd.Function):
    """The compiled forward with the compiled backward as its gradient."""

    @staticmethod
    def forward(ctx, call: _Call, *tensors: torch.Tensor) -> torch.Tensor:
        o, saved = call.forward(tensors)
        ctx.call, ctx.saved_names = call, list(saved)
        ctx.save_for_backward(*tensors, *saved.values())
        return o

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_o: torch.Tensor):
        stored = ctx.saved_tensors
        inputs = len(stored) - len(ctx.saved_names)
        saved = dict(zip(ctx.saved_names, stored[inputs:]))
        grads = ctx.call.backward(stored[:inputs], saved, d_o)
        return (None,) + tuple(g if needed else None
                               for g, needed in zip(grads, ctx.needs_input_grad[1:]))


def _device_problems(q: torch.Tensor) -> List[str]:
    """Why the tensors cannot run on the kernels, if they are not on CUDA."""
    if q.device.type == "cuda":
        return []
    problems = [f"the tensors are on {q.device}, the GPU backend needs CUDA tensors"]
    if not torch.cuda.is_available():
        problems.append("PyTorch sees no CUDA device or driver on this machine")
    return problems


def nsa_attention(q: torch.Tensor, k_cmp: torch.Tensor, v_cmp: torch.Tensor,
                  k_slc: torch.Tensor, v_slc: torch.Tensor, k_win: torch.Tensor,
                  v_win: torch.Tensor, g: torch.Tensor, cfg: NSAConfig, compress_mode: str,
                  w_k=None, w_v=None, pe_k: Optional[torch.Tensor] = None,
                  pe_v: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The NSA forward on the compiled kernels; ``[B, T, HQ, Dv]`` in q's dtype.

    Takes the arguments :func:`nsa.nsa_attention` has already validated (and
    resolved: shared K/V arrive as the same tensor for every branch). The
    launches are asynchronous on the current CUDA stream.

    When gradients are needed (grad mode on, an input requiring grad), the
    result's backward runs the directory's backward plan (see the module's
    docstring), so the directory must have one.

    Raises:
        GPUBackendUnavailable: listing each, the tensors are not on CUDA, the
            runtime library is missing, or no kernel directory matches (or none
            with a backward plan when gradients are needed), with the command
            that builds one.
    """
    tensors = [t for t in (q, k_cmp, v_cmp, k_slc, v_slc, k_win, v_win, g, pe_k, pe_v)
               if t is not None]
    for w in (w_k, w_v):
        if isinstance(w, torch.Tensor):
            tensors.append(w)
        elif w is not None:
            tensors.extend(w)
    grads_needed = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)

    missing = _device_problems(q)
    runtime_path, runtime_problem = _checked_runtime()
    if runtime_problem is not None:
        missing.append(runtime_problem)
    shared = k_slc is k_cmp and k_win is k_cmp and v_slc is v_cmp and v_win is v_cmp
    try:
        wanted, why_not = wanted_config(q, v_cmp, cfg, compress_mode, pe_k is not None,
                                        "shared" if shared else "per-branch"), None
    except BuildError as error:
        wanted, why_not = None, str(error)
    directory, kernel_problem = _kernel_problem(wanted, why_not, grads_needed)
    if kernel_problem is not None:
        missing.append(kernel_problem)
    if missing:
        raise GPUBackendUnavailable(
            "NSA's GPU backend is not available: "
            + "; ".join(f"({n}) {why}" for n, why in enumerate(missing, 1)) + ". "
            + (_HOW_TO_BUILD + " " if runtime_problem is not None else "") + _OTHERWISE)

    by_meaning = dict(q=q, k=k_cmp, v=v_cmp, k_cmp=k_cmp, v_cmp=v_cmp, k_slc=k_slc,
                      v_slc=v_slc, k_win=k_win, v_win=v_win, gates=g, w_k=w_k, w_v=w_v,
                      pe_k=pe_k, pe_v=pe_v)
    # The distinct tensors are the Function's inputs: one that serves several
    # plan inputs (shared K/V) gets the sum of their gradients from autograd's
    # single edge to it.
    distinct: List[torch.Tensor] = []
    slots: Dict[str, int] = {}
    for meaning in _load_plan(directory, runtime_path)[0]["args"]:
        t = by_meaning[meaning]
        i = next((j for j, seen in enumerate(distinct) if seen is t), None)
        if i is None:
            i = len(distinct)
            distinct.append(t)
        slots[meaning] = i
    call = _Call(directory, runtime_path, q.device, slots, tuple(q.shape[:3]) + (v_cmp.shape[3],))
    if grads_needed:
        return _NSAFunction.apply(call, *distinct)
    return call.forward(tuple(distinct))[0]

"""ctypes binding of the NSA kernel runtime (``runtime/include/nsa_runtime.h``).

Three layers, each usable alone:

- :class:`Runtime`: the loaded ``libnsa_runtime.so`` with typed entry points.
- :class:`Manifest`: a kernel manifest (docs/runtime-abi.md); ``launch`` and
  ``plan_launch`` raise :class:`NSARuntimeError` with the runtime's message
  on any nonzero status.
- :class:`Plan`: a compiler host plan (``plan.json``: inputs, buffers, the
  launches in order, outputs) that allocates its buffers, poisons them and
  runs every launch on the current CUDA stream.

torch is imported when present but only needed to run on tensors: the
compiler machine validates plans against the runtime's checks with
:class:`HostTensor` placeholders (``Plan.validate``), with no torch and no GPU.
This file therefore imports nothing from the rest of the package, so that
scripts can load it by path.
"""

import ctypes
import json
import math
import os
from typing import Dict, List, Mapping, Optional, Sequence, Union

try:
    import torch
except ImportError:  # the compiler machine's plan validation needs no torch
    torch = None

__all__ = ["ABI_VERSION", "Arg", "Config", "DTYPE_CODES", "HostTensor", "LaunchPlan",
           "Manifest", "NSARuntimeError", "Plan", "Runtime", "Tensor", "config_struct",
           "tensor_arg"]

#: NSA_RUNTIME_ABI_VERSION this binding mirrors; checked when the library loads.
ABI_VERSION = 1
MAX_RANK = 8
#: nsa_dtype codes by manifest spelling.
DTYPE_CODES = {"bf16": 0, "f16": 1, "f32": 2, "i32": 3, "i64": 4}
DTYPE_BF16, DTYPE_F16, DTYPE_F32, DTYPE_I32, DTYPE_I64 = range(5)
#: nsa_arg_kind codes; the manifest's scalar kinds map to I32, I64, F32.
ARG_TENSOR, ARG_I32, ARG_I64, ARG_F32, ARG_AUTO = range(5)
_SCALAR_KINDS = {"i32": ARG_I32, "i64": ARG_I64, "f32": ARG_F32}

#: Written into every plan buffer before a run, so that an element no kernel
#: writes shows up in the check (SPEC.md, Tolerances). Integers get a value no
#: kernel produces (idx is -1 or a block number).
INT_POISON = -7777

_CONFIG_INTS = ("l", "d", "l_sel", "n", "init", "local", "w")


# --------------------------------------------------------------------------
# Struct layouts (docs/runtime-abi.md, LP64; sizes checked in Runtime)
# --------------------------------------------------------------------------

class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64), ("dtype", ctypes.c_int32),
                ("rank", ctypes.c_int32), ("shape", ctypes.c_int64 * MAX_RANK),
                ("strides", ctypes.c_int64 * MAX_RANK)]


class Arg(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int32), ("reserved", ctypes.c_int32),
                ("tensor", Tensor), ("int_value", ctypes.c_int64),
                ("float_value", ctypes.c_double)]


class Config(ctypes.Structure):
    """nsa_config; all zeros is "unset", which only a null manifest field accepts."""
    _fields_ = [(name, ctypes.c_int64) for name in _CONFIG_INTS] + \
               [("scale", ctypes.c_double)] + \
               [(name, ctypes.c_int64) for name in ("G", "Dk", "Dv")] + \
               [("dtype", ctypes.c_int32), ("reserved", ctypes.c_int32)]


class LaunchPlan(ctypes.Structure):
    _fields_ = [("grid", ctypes.c_int64 * 3), ("block", ctypes.c_int32 * 3),
                ("shared_bytes", ctypes.c_int32)]


_STRUCT_SIZES = {Tensor: 144, Arg: 168, Config: 96, LaunchPlan: 40}


def config_struct(config: Optional[Mapping] = None) -> Config:
    """An nsa_config from a dict with SPEC names (missing keys stay 0).

    Accepts ``l, d, l_sel, n, init, local, w, scale, G, Dk, Dv`` and ``dtype``
    as ``"bf16"``/``"f16"``; ``G`` is derived from ``HQ``/``HKV`` and ``scale``
    from ``Dk`` when absent, so a build's config.json can be passed as is.
    """
    cfg = Config()
    if not config:
        return cfg
    for name in _CONFIG_INTS + ("Dk", "Dv"):
        if config.get(name) is not None:
            setattr(cfg, name, int(config[name]))
    if config.get("G") is not None:
        cfg.G = int(config["G"])
    elif config.get("HQ") and config.get("HKV"):
        cfg.G = int(config["HQ"]) // int(config["HKV"])
    if config.get("scale") is not None:
        cfg.scale = float(config["scale"])
    elif config.get("Dk"):
        cfg.scale = 1.0 / math.sqrt(int(config["Dk"]))
    if config.get("dtype") is not None:
        cfg.dtype = DTYPE_CODES[config["dtype"]]
    return cfg


class NSARuntimeError(RuntimeError):
    """A runtime call failed; carries the status code, its name and the message."""

    def __init__(self, status: int, name: str, message: str, what: str = ""):
        self.status, self.status_name, self.message = status, name, message
        prefix = f"{what}: " if what else ""
        super().__init__(f"{prefix}{name} ({status}): {message}")


# --------------------------------------------------------------------------
# Tensors: torch tensors or placeholders
# --------------------------------------------------------------------------

class HostTensor:
    """A stand-in for a device tensor in checks that never touch memory.

    ``nsa_plan_launch`` reads only the pointer (for null and alignment),
    dtype, shape and strides, so a fake, well-aligned address suffices.
    """

    def __init__(self, data: int, dtype: str, shape: Sequence[int]):
        self.data, self.dtype, self.shape = data, dtype, tuple(int(s) for s in shape)

    def numel(self) -> int:
        return math.prod(self.shape)

    def view(self, *shape) -> "HostTensor":
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        if math.prod(shape) != self.numel():
            raise ValueError(f"cannot view shape {list(self.shape)} as {list(shape)}")
        return HostTensor(self.data, self.dtype, shape)


def _torch_dtype_codes():
    return {torch.bfloat16: DTYPE_BF16, torch.float16: DTYPE_F16, torch.float32: DTYPE_F32,
            torch.int32: DTYPE_I32, torch.int64: DTYPE_I64}


def _torch_dtype(name: str):
    return {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32,
            "i32": torch.int32, "i64": torch.int64}[name]


def _dtype_name(t) -> str:
    """The manifest spelling of a tensor's dtype."""
    if isinstance(t, HostTensor):
        return t.dtype
    code = _torch_dtype_codes().get(t.dtype)
    if code is None:
        raise TypeError(f"the runtime has no dtype for {t.dtype}")
    return next(name for name, c in DTYPE_CODES.items() if c == code)


def tensor_arg(t) -> Arg:
    """An nsa_arg describing a torch tensor or a :class:`HostTensor`."""
    arg = Arg(kind=ARG_TENSOR)
    shape = list(t.shape)
    if len(shape) > MAX_RANK:
        raise ValueError(f"rank {len(shape)} exceeds the runtime's {MAX_RANK}")
    if isinstance(t, HostTensor):
        data, strides = t.data, [math.prod(shape[i + 1:]) for i in range(len(shape))]
    else:
        data, strides = t.data_ptr(), list(t.stride())
    arg.tensor.data, arg.tensor.rank = data, len(shape)
    arg.tensor.dtype = DTYPE_CODES[_dtype_name(t)]
    for i, (size, stride) in enumerate(zip(shape, strides)):
        arg.tensor.shape[i], arg.tensor.strides[i] = size, stride
    return arg


# --------------------------------------------------------------------------
# The library
# --------------------------------------------------------------------------

class Runtime:
    """``libnsa_runtime.so`` with argument and return types declared.

    ``lib_path`` defaults to ``$NSA_RUNTIME_LIBRARY``, then to
    ``nsa/lib/libnsa_runtime.so`` in this package (as ``nsa._gpu`` looks).
    """

    def __init__(self, lib_path: Optional[str] = None):
        if lib_path is None:
            lib_path = os.environ.get("NSA_RUNTIME_LIBRARY") or os.path.join(
                os.path.dirname(os.path.abspath(__file__)), "lib", "libnsa_runtime.so")
        self.path = lib_path
        lib = self.lib = ctypes.CDLL(lib_path)
        lib.nsa_runtime_abi_version.restype = ctypes.c_int32
        version = lib.nsa_runtime_abi_version()
        if version != ABI_VERSION:
            raise RuntimeError(f"{lib_path} has runtime ABI version {version}, this binding "
                               f"speaks {ABI_VERSION}: rebuild it from this checkout")
        for struct, size in _STRUCT_SIZES.items():
            # A layout slip would corrupt every call silently; fail here instead.
            assert ctypes.sizeof(struct) == size, (struct.__name__, ctypes.sizeof(struct))
        p, cp = ctypes.c_void_p, ctypes.c_char_p
        signatures = {
            "nsa_status_name": (cp, [ctypes.c_int32]),
            "nsa_last_error_message": (cp, []),
            "nsa_manifest_load": (ctypes.c_int32, [cp, ctypes.POINTER(p)]),
            "nsa_manifest_destroy": (None, [p]),
            "nsa_manifest_kernel_count": (ctypes.c_int32, [p, ctypes.POINTER(ctypes.c_int32)]),
            "nsa_manifest_kernel_name": (ctypes.c_int32,
                                         [p, ctypes.c_int32, ctypes.POINTER(cp)]),
            "nsa_plan_launch": (ctypes.c_int32, [p, cp, ctypes.POINTER(Config),
                                                 ctypes.POINTER(Arg), ctypes.c_int32,
                                                 ctypes.POINTER(LaunchPlan)]),
            "nsa_launch": (ctypes.c_int32, [p, cp, ctypes.POINTER(Config),
                                            ctypes.POINTER(Arg), ctypes.c_int32, p]),
        }
        for name, (restype, argtypes) in signatures.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes

    def check(self, status: int, what: str = ""):
        """Raises :class:`NSARuntimeError` with the thread's message unless status is 0."""
        if status:
            raise NSARuntimeError(status, self.lib.nsa_status_name(status).decode(),
                                  self.lib.nsa_last_error_message().decode(), what)


# --------------------------------------------------------------------------
# A manifest
# --------------------------------------------------------------------------

class Manifest:
    """A loaded kernel manifest.

    The runtime parses and validates it; the same JSON is also read here for
    what the caller needs to build a call: each kernel's parameters (which are
    tensors, which scalars have a value rule) and its configuration.
    """

    def __init__(self, runtime: Runtime, path: str):
        self.runtime, self.path = runtime, path
        handle = ctypes.c_void_p()
        runtime.check(runtime.lib.nsa_manifest_load(path.encode(), ctypes.byref(handle)),
                      f"loading {path}")
        self._handle = handle
        with open(path, encoding="utf-8") as f:
            self.kernels: Dict[str, dict] = {k["name"]: k for k in json.load(f)["kernels"]}

    def close(self):
        """Unloads the modules; the manifest is unusable afterwards."""
        if self._handle:
            self.runtime.lib.nsa_manifest_destroy(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()

    def kernel_names(self) -> List[str]:
        """The kernel names in manifest order, as the runtime reports them."""
        lib, count = self.runtime.lib, ctypes.c_int32()
        self.runtime.check(lib.nsa_manifest_kernel_count(self._handle, ctypes.byref(count)))
        names = []
        for i in range(count.value):
            name = ctypes.c_char_p()
            self.runtime.check(lib.nsa_manifest_kernel_name(self._handle, i, ctypes.byref(name)))
            names.append(name.value.decode())
        return names

    def tensor_params(self, kernel: str) -> List[dict]:
        """The kernel's tensor parameters in signature order."""
        return [p for p in self._kernel(kernel)["params"] if p["kind"] == "tensor"]

    def _kernel(self, kernel: str) -> dict:
        if kernel not in self.kernels:
            raise KeyError(f"kernel {kernel!r} is not in {self.path} "
                           f"(it has {', '.join(self.kernels)})")
        return self.kernels[kernel]

    def _args(self, kernel: str, tensors: Sequence):
        """The nsa_arg array: ``tensors`` fill the tensor parameters in order.

        Scalars are not the caller's to give: each must have a value rule,
        and is passed as NSA_ARG_AUTO so that the runtime computes it from
        the tensors' shapes (docs/runtime-abi.md, Parameters).
        """
        params = self._kernel(kernel)["params"]
        n_tensors = sum(p["kind"] == "tensor" for p in params)
        if len(tensors) != n_tensors:
            raise ValueError(f"kernel {kernel!r} takes {n_tensors} tensors, got {len(tensors)}")
        args, it = (Arg * len(params))(), iter(tensors)
        for i, p in enumerate(params):
            if p["kind"] == "tensor":
                args[i] = tensor_arg(next(it))
            elif "value" in p:
                args[i] = Arg(kind=ARG_AUTO)
            else:
                raise ValueError(f"kernel {kernel!r} scalar parameter {p['name']!r} has no "
                                 f"value rule, so a plan cannot supply it")
        return args

    def plan_launch(self, kernel: str, tensors: Sequence, config: Optional[Mapping] = None) -> dict:
        """Every runtime check of a launch, without the driver; the launch shape."""
        args, plan = self._args(kernel, tensors), LaunchPlan()
        self.runtime.check(self.runtime.lib.nsa_plan_launch(
            self._handle, kernel.encode(), ctypes.byref(config_struct(config)), args, len(args),
            ctypes.byref(plan)), f"kernel {kernel}")
        return dict(grid=list(plan.grid), block=list(plan.block), shared_bytes=plan.shared_bytes)

    def launch(self, kernel: str, tensors: Sequence, stream=None,
               config: Optional[Mapping] = None):
        """Launches ``kernel`` asynchronously on ``stream``.

        ``stream``: a ``torch.cuda.Stream``, a raw CUstream integer, or None for
        ``torch.cuda.current_stream()``. ``config``: the NSA configuration the
        caller expects (see :func:`config_struct`); None passes zeros, which
        only a kernel whose config fields are all null accepts.
        """
        if stream is None:
            stream = torch.cuda.current_stream()
        handle = getattr(stream, "cuda_stream", stream)
        args = self._args(kernel, tensors)
        self.runtime.check(self.runtime.lib.nsa_launch(
            self._handle, kernel.encode(), ctypes.byref(config_struct(config)), args, len(args),
            ctypes.c_void_p(handle)), f"kernel {kernel}")


# --------------------------------------------------------------------------
# A host plan
# --------------------------------------------------------------------------

def _poison(t):
    """Fills ``t`` with NaN (floating) or INT_POISON (integer)."""
    t.fill_(float("nan") if t.is_floating_point() else INT_POISON)


class Plan:
    """A compiled NSA function: ``plan.json`` and the manifest it names.

    ``run(inputs)`` allocates the buffers (once), poisons them, launches every
    kernel in order on the current stream and returns every value by name
    (the inputs and all buffers, in their plan shapes).
    """

    FORMAT, VERSION = "nsa-host-plan", 1

    def __init__(self, runtime: Runtime, path: str, device="cuda"):
        with open(path, encoding="utf-8") as f:
            plan = json.load(f)
        if plan.get("format") != self.FORMAT or plan.get("version") != self.VERSION:
            raise ValueError(f"{path}: not an {self.FORMAT} version {self.VERSION} file "
                             f"(format {plan.get('format')!r}, version {plan.get('version')!r})")
        self.path, self.device, self.function = path, device, plan["function"]
        self.manifest = Manifest(runtime, os.path.join(os.path.dirname(os.path.abspath(path)),
                                                       plan["manifest"]))
        self.inputs: List[dict] = plan["inputs"]
        self.buffers: List[dict] = plan["buffers"]
        self.launches: List[dict] = plan["launches"]
        self.outputs: List[str] = plan["outputs"]
        self.values: Dict[str, dict] = {v["name"]: v for v in self.inputs + self.buffers}
        self._tensors: Optional[Dict[str, object]] = None
        self._check_structure()

    def _check_structure(self):
        """Plan-level consistency the runtime cannot see: names and arities."""
        if len(self.values) != len(self.inputs) + len(self.buffers):
            raise ValueError(f"{self.path}: a value name is declared twice")
        for i, launch in enumerate(self.launches):
            params = self.manifest.tensor_params(launch["kernel"])
            unknown = [a for a in launch["args"] if a not in self.values]
            if unknown:
                raise ValueError(f"{self.path}: launch {i} ({launch['kernel']}) reads undeclared "
                                 f"values {unknown}")
            if len(params) != len(launch["args"]):
                raise ValueError(f"{self.path}: launch {i} ({launch['kernel']}) passes "
                                 f"{len(launch['args'])} values, the kernel takes "
                                 f"{len(params)} tensors")
        missing = [o for o in self.outputs if o not in self.values]
        if missing:
            raise ValueError(f"{self.path}: outputs {missing} are not declared")

    # -- binding values to kernel parameters --------------------------------

    def _as_param(self, launch: dict, position: int, t):
        """``t`` viewed with the shape the kernel parameter declares.

        A buffer may be passed under another shape of the same memory (o as
        [B,T,HKV,G,Dv] or [B,T,HQ,Dv]); a manifest with concrete shapes says
        which. Symbolic shapes are left to the runtime to check.
        """
        param = self.manifest.tensor_params(launch["kernel"])[position]
        shape = param["shape"]
        if not all(isinstance(s, int) for s in shape) or list(t.shape) == shape:
            return t
        if math.prod(shape) != t.numel():
            name = launch["args"][position]
            raise ValueError(f"kernel {launch['kernel']} parameter {param['name']!r} wants shape "
                             f"{shape}, but {name!r} has shape {list(t.shape)}")
        return t.view(shape)

    def _launch_tensors(self, launch: dict, tensors: Mapping) -> list:
        return [self._as_param(launch, i, tensors[name]) for i, name in enumerate(launch["args"])]

    def bind(self, inputs: Union[Sequence, Mapping]) -> Dict[str, object]:
        """The inputs by name (from a list in argument order or a dict), checked."""
        if not isinstance(inputs, Mapping):
            if len(inputs) != len(self.inputs):
                raise ValueError(f"{self.function} takes {len(self.inputs)} inputs, "
                                 f"got {len(inputs)}")
            inputs = {spec["name"]: t for spec, t in zip(self.inputs, inputs)}
        bound = {}
        for spec in self.inputs:
            t = inputs[spec["name"]]
            if list(t.shape) != spec["shape"] or _dtype_name(t) != spec["dtype"]:
                raise ValueError(f"input {spec['name']} must be {spec['dtype']} {spec['shape']}, "
                                 f"got {_dtype_name(t)} {list(t.shape)}")
            bound[spec["name"]] = t
        return bound

    # -- running ------------------------------------------------------------

    def allocate(self) -> Dict[str, object]:
        """The buffers (allocated on the first call, reused after)."""
        if self._tensors is None:
            self._tensors = {b["name"]: torch.empty(b["shape"], dtype=_torch_dtype(b["dtype"]),
                                                    device=self.device) for b in self.buffers}
        return self._tensors

    def buffer_bytes(self) -> int:
        sizes = {"bf16": 2, "f16": 2, "f32": 4, "i32": 4, "i64": 8}
        return sum(math.prod(b["shape"]) * sizes[b["dtype"]] for b in self.buffers)

    def run(self, inputs: Union[Sequence, Mapping], stream=None,
            config: Optional[Mapping] = None) -> Dict[str, object]:
        """Poisons every buffer, launches the plan in order; asynchronous.

        Kernel faults surface at the caller's next synchronization.
        """
        values = dict(self.bind(inputs))
        for name, t in values.items():
            # The runtime sees only addresses: a host pointer would fault on the GPU.
            if not t.is_cuda:
                raise ValueError(f"input {name} is on {t.device}; kernels need CUDA tensors")
        buffers = self.allocate()
        for t in buffers.values():
            _poison(t)
        values.update(buffers)
        self.launch(values, stream, config)
        return values

    def launch(self, values: Mapping, stream=None, config: Optional[Mapping] = None):
        """Only the launches, in order, on ``values`` (every input and buffer by name)."""
        if stream is None:
            stream = torch.cuda.current_stream()
        for launch in self.launches:
            self.manifest.launch(launch["kernel"], self._launch_tensors(launch, values),
                                 stream, config)

    def validate(self, config: Optional[Mapping] = None) -> List[dict]:
        """Runs the runtime's checks on every launch with placeholder tensors.

        No GPU, no torch: each value gets a distinct 256-byte-aligned fake
        address. Returns each launch's grid, block and shared memory.
        """
        values, address = {}, 1 << 32
        for spec in self.inputs + self.buffers:
            values[spec["name"]] = HostTensor(address, spec["dtype"], spec["shape"])
            address += (math.prod(spec["shape"]) * 8 + 511) // 256 * 256
        return [dict(launch, **self.manifest.plan_launch(
                    launch["kernel"], self._launch_tensors(launch, values), config))
                for launch in self.launches]

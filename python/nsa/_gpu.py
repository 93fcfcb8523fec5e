"""The GPU backend: loads the NSA runtime library and, later, its kernels.

The GPU path is the compiler's: ``nsa-translate`` emits PTX/cubin kernels
plus a manifest, and the C runtime ``libnsa_runtime.so`` (``runtime/``)
validates calls against that manifest and launches them through the CUDA
driver. Those kernels do not exist yet (they arrive with the forward-on-GPU
issue), so this module only locates and loads the runtime and reports
precisely what is missing; :func:`nsa_attention` always raises
:class:`GPUBackendUnavailable` for now.

The runtime library is looked up at ``$NSA_RUNTIME_LIBRARY`` when that is
set, else at ``nsa/lib/libnsa_runtime.so`` inside this package.
"""

import ctypes
import os
from typing import List, Optional, Tuple

import torch

__all__ = ["GPUBackendUnavailable", "LIBRARY_NAME", "RUNTIME_ENV", "find_runtime",
           "load_runtime", "nsa_attention"]

#: File name of the runtime library built from runtime/.
LIBRARY_NAME = "libnsa_runtime.so"
#: Environment variable naming the runtime library's path.
RUNTIME_ENV = "NSA_RUNTIME_LIBRARY"
#: NSA_RUNTIME_ABI_VERSION of runtime/include/nsa_runtime.h this module speaks.
ABI_VERSION = 1

_PACKAGE_LIB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")

_HOW_TO_BUILD = (
    "The runtime library is built from runtime/: scripts/setup.sh builds the compiler and, "
    "with it, build/lib/" + LIBRARY_NAME + " (or alone: cmake -S runtime -B build-runtime && "
    "cmake --build build-runtime); point $" + RUNTIME_ENV + " at it or copy it into "
    + _PACKAGE_LIB_DIR + ". The GPU kernels themselves are not built yet: they arrive with "
    "the forward-on-GPU issue (nsa-translate emitting PTX and a kernel manifest that the "
    "runtime loads). Until then use backend='reference' (pure PyTorch, any device, memory "
    "quadratic in T).")


class GPUBackendUnavailable(NotImplementedError):
    """The GPU backend cannot run here; the message lists every missing piece.

    A subclass of ``NotImplementedError`` and hence of ``RuntimeError``.
    """


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


def load_runtime() -> ctypes.CDLL:
    """Loads the runtime library and checks its ABI version.

    Raises:
        GPUBackendUnavailable: the library is missing, does not load, or
            speaks another ABI version.
    """
    lib, problem = _open_runtime()
    if lib is None:
        raise GPUBackendUnavailable(problem + ". " + _HOW_TO_BUILD)
    return lib


def nsa_attention(q: torch.Tensor, **_arguments) -> torch.Tensor:
    """The GPU forward; raises until the kernels exist.

    Takes the arguments :func:`nsa.nsa_attention` has already validated.

    Raises:
        GPUBackendUnavailable: always for now, listing every missing piece
            in dependency order (CUDA tensors and device, runtime library,
            kernels).
    """
    missing = []
    if q.device.type != "cuda":
        missing.append(f"the tensors are on {q.device}, the GPU backend needs CUDA tensors")
        if not torch.cuda.is_available():
            missing.append("PyTorch sees no CUDA device or driver on this machine")
    problem = _open_runtime()[1]
    if problem is not None:
        missing.append(problem)
    missing.append("no GPU kernels exist yet for any configuration")
    raise GPUBackendUnavailable(
        "NSA's GPU backend is not available: "
        + "; ".join(f"({n}) {why}" for n, why in enumerate(missing, 1))
        + ". " + _HOW_TO_BUILD)

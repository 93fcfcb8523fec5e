"""Native Sparse Attention for PyTorch.

- :func:`nsa_attention`: the NSA forward of SPEC.md with autograd, shared or
  per-branch keys and values, any GQA group size.
- :class:`NSAAttention`: the whole attention layer as an ``nn.Module``.
- :class:`NSAConfig`: block sizes and their rules.
- :mod:`nsa.reference`: the pure-PyTorch implementation of every piece
  (compression, compressed attention, block selection, selected and window
  attention, gated combination), the backend for CPUs and the oracle of tests.
- The GPU backend (:mod:`nsa._gpu`): the compiler's kernels, prebuilt per
  configuration and shape (``python3 -m nsa.build_kernels``), launched by
  ``libnsa_runtime.so``, forward and backward (autograd). When it cannot
  run it raises :class:`GPUBackendUnavailable` saying what is missing.

``nsa.build_kernels`` needs only the standard library, so that the compiler
machine can build kernels without PyTorch: without torch, ``import nsa``
and ``nsa.build_kernels`` work, and every other name of the package raises
AttributeError saying that PyTorch is missing.
"""

__version__ = "0.1.0"

try:
    import torch as _torch  # noqa: F401
except ImportError as _no_torch:
    _NO_TORCH = _no_torch

    def __getattr__(name):
        # AttributeError, not ImportError: hasattr() and the import system
        # (``from nsa import build_kernels``) must keep working.
        raise AttributeError(f"nsa.{name} needs PyTorch, which does not import here: "
                             f"{_NO_TORCH}")
else:
    from . import reference
    from ._gpu import GPUBackendUnavailable
    from .api import BACKENDS, nsa_attention
    from .config import NSAConfig
    from .module import NSAAttention, TokenCompressor
    from .reference import MLPWeights

__all__ = ["BACKENDS", "GPUBackendUnavailable", "MLPWeights", "NSAAttention", "NSAConfig",
           "TokenCompressor", "nsa_attention", "reference"]

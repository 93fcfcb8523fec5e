"""Native Sparse Attention for PyTorch.

- :func:`nsa_attention`: the NSA forward of SPEC.md with autograd, shared or
  per-branch keys and values, any GQA group size.
- :class:`NSAAttention`: the whole attention layer as an ``nn.Module``.
- :class:`NSAConfig`: block sizes and their rules.
- :mod:`nsa.reference`: the pure-PyTorch implementation of every piece
  (compression, compressed attention, block selection, selected and window
  attention, gated combination), the backend for CPUs and the oracle of tests.

The GPU backend (compiled kernels launched by ``libnsa_runtime.so``) is not
built yet; asking for it raises :class:`GPUBackendUnavailable` saying what is
missing.
"""

from . import reference
from ._gpu import GPUBackendUnavailable
from .api import BACKENDS, nsa_attention
from .config import NSAConfig
from .module import NSAAttention, TokenCompressor
from .reference import MLPWeights

__version__ = "0.1.0"

__all__ = ["BACKENDS", "GPUBackendUnavailable", "MLPWeights", "NSAAttention", "NSAConfig",
           "TokenCompressor", "nsa_attention", "reference"]

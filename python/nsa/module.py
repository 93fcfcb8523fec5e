"""``NSAAttention``: the whole NSA attention layer as an ``nn.Module``.

The layer of the paper (section 3): query, key and value projections (keys
and values separate per branch, section 3.3.3, or shared), a learnable token
compressor for keys and one for values, a gate ``g = sigmoid(Linear(x))``
with one gate per branch and query head, the three branches through
:func:`nsa.nsa_attention` (GQA with any group size), and the output
projection. No rotary or other positional encoding is applied to q and k;
a caller that wants one applies it around the projections.
"""

import math
from typing import Optional, Tuple

import torch
from torch import nn

from .api import BACKENDS, nsa_attention
from .config import NSAConfig
from . import reference
from .reference import COMPRESS_MODES, MLPWeights

__all__ = ["NSAAttention", "TokenCompressor"]


class TokenCompressor(nn.Module):
    """Learnable compression of keys or values, ``[B, T, H, D] -> [B, Nc(T), H, D]``.

    Modes (SPEC section 1):
        ``linear``: ``W [H, l*D, D]``, initialised to the block mean plus
            small noise so that training starts from ``mean`` compression.
        ``mlp``: per head ``Linear(l*D -> hidden) + GELU + Linear(hidden -> D)``
            (:class:`~nsa.reference.MLPWeights`), ``nn.Linear``'s init.
        ``mean``: no parameters.
    ``linear`` and ``mlp`` add an intra-block position encoding
    ``PE [H, l, D]`` (initialised to zero, i.e. absent) unless
    ``position_encoding=False``.
    """

    def __init__(self, num_heads: int, head_dim: int, config: NSAConfig,
                 mode: str = "linear", mlp_hidden: Optional[int] = None,
                 position_encoding: bool = True):
        super().__init__()
        if mode not in COMPRESS_MODES:
            raise ValueError(f"compress must be one of {COMPRESS_MODES}, got {mode!r}")
        self.config, self.mode = config, mode
        H, D, l = num_heads, head_dim, config.l
        for name in ("weight", "w1", "b1", "w2", "b2", "pe"):
            self.register_parameter(name, None)  # those of this mode are set below
        if mode == "linear":
            mean = torch.eye(D).repeat(l, 1) / l  # vec(block) . mean = the block average
            noise = torch.randn(H, l * D, D) * (0.1 / (l * math.sqrt(D)))
            self.weight = nn.Parameter(mean + noise)
        elif mode == "mlp":
            hidden = 2 * D if mlp_hidden is None else mlp_hidden
            self.w1 = nn.Parameter(_uniform((H, l * D, hidden), l * D))
            self.b1 = nn.Parameter(_uniform((H, hidden), l * D))
            self.w2 = nn.Parameter(_uniform((H, hidden, D), hidden))
            self.b2 = nn.Parameter(_uniform((H, D), hidden))
        if mode != "mean" and position_encoding:
            self.pe = nn.Parameter(torch.zeros(H, l, D))

    def arguments(self) -> Tuple[object, Optional[torch.Tensor]]:
        """``(W, PE)`` as :func:`nsa.nsa_attention` takes them for this mode."""
        if self.mode == "mlp":
            return MLPWeights(self.w1, self.b1, self.w2, self.b2), self.pe
        return self.weight, self.pe

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, position_encoding={self.pe is not None}"

    def forward(self, k: torch.Tensor) -> torch.Tensor:
        """The compressed ``[B, Nc(T), H, D]`` (reference implementation)."""
        w, pe = self.arguments()
        return reference.compress(k, self.config, w, pe, self.mode)


def _uniform(shape: Tuple[int, ...], fan_in: int) -> torch.Tensor:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, ``nn.Linear``'s default init."""
    bound = 1.0 / math.sqrt(fan_in)
    return torch.empty(shape).uniform_(-bound, bound)


class NSAAttention(nn.Module):
    """Native Sparse Attention layer: ``x [B, T, hidden] -> [B, T, hidden]``.

    Args:
        hidden_size: model width.
        num_q_heads: HQ.
        num_kv_heads: HKV; must divide HQ (GQA, any group size).
        head_dim_qk: Dk.
        head_dim_v: Dv (default Dk).
        config: block sizes (default: the paper's :class:`~nsa.NSAConfig`).
        shared_kv: one key and value projection for all three branches
            instead of one per branch (the paper's default is per branch).
        compress: token compressor, ``'linear'``, ``'mlp'`` or ``'mean'``.
        compress_hidden: hidden width of the ``'mlp'`` compressor (default 2*D).
        position_encoding: learn an intra-block position encoding in the
            compressor.
        bias: biases on the q/k/v/output projections (the gate always has one).
        backend: passed to :func:`nsa.nsa_attention`.
    """

    def __init__(self, hidden_size: int, num_q_heads: int, num_kv_heads: int,
                 head_dim_qk: int, head_dim_v: Optional[int] = None,
                 config: Optional[NSAConfig] = None, *, shared_kv: bool = False,
                 compress: str = "linear", compress_hidden: Optional[int] = None,
                 position_encoding: bool = True, bias: bool = False, backend: str = "auto"):
        super().__init__()
        head_dim_v = head_dim_qk if head_dim_v is None else head_dim_v
        for name, value in (("hidden_size", hidden_size), ("num_q_heads", num_q_heads),
                            ("num_kv_heads", num_kv_heads), ("head_dim_qk", head_dim_qk),
                            ("head_dim_v", head_dim_v)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if num_q_heads % num_kv_heads != 0:
            raise ValueError(f"GQA needs num_q_heads divisible by num_kv_heads "
                             f"({num_q_heads} % {num_kv_heads} != 0)")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.config = NSAConfig() if config is None else config
        if not isinstance(self.config, NSAConfig):
            raise TypeError(f"config must be an NSAConfig, got {type(self.config).__name__}")
        self.num_q_heads, self.num_kv_heads = num_q_heads, num_kv_heads
        self.head_dim_qk, self.head_dim_v = head_dim_qk, head_dim_v
        self.shared_kv, self.backend = shared_kv, backend
        kv_sets = 1 if shared_kv else 3  # (cmp, slc, win) when separate
        self.q_proj = nn.Linear(hidden_size, num_q_heads * head_dim_qk, bias=bias)
        self.k_proj = nn.Linear(hidden_size, kv_sets * num_kv_heads * head_dim_qk, bias=bias)
        self.v_proj = nn.Linear(hidden_size, kv_sets * num_kv_heads * head_dim_v, bias=bias)
        self.k_compress = TokenCompressor(num_kv_heads, head_dim_qk, self.config, compress,
                                          compress_hidden, position_encoding)
        self.v_compress = TokenCompressor(num_kv_heads, head_dim_v, self.config, compress,
                                          compress_hidden, position_encoding)
        self.gate = nn.Linear(hidden_size, num_q_heads * 3)
        self.o_proj = nn.Linear(num_q_heads * head_dim_v, hidden_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attends causally over ``x [B, T, hidden]``; returns ``[B, T, hidden]``."""
        B, T, _ = x.shape
        HQ, HKV = self.num_q_heads, self.num_kv_heads
        q = self.q_proj(x).view(B, T, HQ, self.head_dim_qk)
        k = self.k_proj(x).view(B, T, -1, HKV, self.head_dim_qk).unbind(2)
        v = self.v_proj(x).view(B, T, -1, HKV, self.head_dim_v).unbind(2)
        # The gates and compressor parameters follow the activations' dtype
        # (nsa_attention takes one dtype): under autocast the projections
        # give bf16 while the parameters stay float32; the casts are
        # differentiable, so gradients reach the float32 parameters.
        g = torch.sigmoid(self.gate(x)).view(B, T, HQ, 3).to(q.dtype)
        per_branch = {} if self.shared_kv else dict(k_slc=k[1], v_slc=v[1],
                                                    k_win=k[2], v_win=v[2])
        w_k, pe_k = (reference.cast(t, q.dtype) for t in self.k_compress.arguments())
        w_v, pe_v = (reference.cast(t, q.dtype) for t in self.v_compress.arguments())
        o = nsa_attention(q, k[0], v[0], g, **per_branch, w_k=w_k, w_v=w_v, pe_k=pe_k,
                          pe_v=pe_v, compress=self.k_compress.mode, config=self.config,
                          backend=self.backend)
        return self.o_proj(o.reshape(B, T, HQ * self.head_dim_v))

    def extra_repr(self) -> str:
        return (f"heads={self.num_q_heads}/{self.num_kv_heads}, head_dim="
                f"{self.head_dim_qk}/{self.head_dim_v}, shared_kv={self.shared_kv}, "
                f"backend={self.backend!r}, {self.config}")

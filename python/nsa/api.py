"""``nsa_attention``: the checked entry point of the NSA forward with autograd.

It validates every argument against SPEC.md (ranks, named dimensions, GQA,
compressor parameter shapes, dtypes, devices, configuration) with messages
that name the argument and the rule, resolves shared versus per-branch keys
and values, and dispatches to a backend: the pure-PyTorch reference
(:mod:`nsa.reference`, any device, autograd through PyTorch) or the
compiler's GPU kernels (:mod:`nsa._gpu`: prebuilt per shape, forward and
backward).
"""

from typing import Dict, Optional, Sequence, Tuple, Union

import torch

from . import _gpu, reference
from .config import NSAConfig
from .reference import COMPRESS_MODES, MLPWeights

__all__ = ["BACKENDS", "nsa_attention"]

#: Accepted values of ``backend``.
BACKENDS = ("auto", "reference", "gpu")

_KERNEL_DTYPES = (torch.bfloat16, torch.float16)
_REFERENCE_DTYPES = _KERNEL_DTYPES + (torch.float32, torch.float64)

Weights = Union[torch.Tensor, MLPWeights, Tuple[torch.Tensor, ...], None]


class _Dims:
    """Binds named dimensions (B, T, HQ, ...) to the first size seen.

    Later tensors must agree, and a mismatch names both arguments, e.g.
    ``'k' dimension 1 (T) is 99, but 'q' has T = 100``.
    """

    def __init__(self):
        self._sizes: Dict[str, Tuple[int, str]] = {}

    def __getitem__(self, name: str) -> int:
        return self._sizes[name][0]

    def bind(self, arg: str, x: torch.Tensor, layout: Sequence[str]):
        """Checks ``x``'s rank and binds or compares each dimension of ``layout``."""
        if x.dim() != len(layout):
            raise ValueError(
                f"'{arg}' must have rank {len(layout)} [{', '.join(layout)}], "
                f"got shape {list(x.shape)}")
        for axis, (name, size) in enumerate(zip(layout, x.shape)):
            if name not in self._sizes:
                self._sizes[name] = (size, arg)
            elif self._sizes[name][0] != size:
                known, source = self._sizes[name]
                raise ValueError(
                    f"'{arg}' dimension {axis} ({name}) is {size}, but '{source}' has "
                    f"{name} = {known}")


def _check_shape(arg: str, x: torch.Tensor, layout: Sequence[str], expected: Sequence[int]):
    """Requires ``x.shape == expected``; the message spells out ``layout``."""
    if list(x.shape) != list(expected):
        raise ValueError(
            f"'{arg}' must have shape [{', '.join(layout)}] = {list(expected)}, "
            f"got {list(x.shape)}")


def _check_compressor(side: str, D: int, w: Weights, pe: Optional[torch.Tensor], mode: str,
                      cfg: NSAConfig, HKV: int) -> Weights:
    """Validates the compressor parameters of keys (``side='k'``) or values ("v").

    Returns ``w`` as an :class:`MLPWeights` for the ``mlp`` mode.
    """
    w_arg, pe_arg = f"w_{side}", f"pe_{side}"
    if mode == "mean":
        if w is not None or pe is not None:
            raise ValueError(f"compress='mean' has no parameters: pass no '{w_arg}' or '{pe_arg}'")
        return None
    if w is None:
        raise ValueError(f"compress={mode!r} needs '{w_arg}'")
    if pe is not None:
        _check_shape(pe_arg, pe, ("HKV", "l", "D"), (HKV, cfg.l, D))
    if mode == "linear":
        if not isinstance(w, torch.Tensor):
            raise TypeError(f"'{w_arg}' must be a tensor for compress='linear', "
                            f"got {type(w).__name__}")
        _check_shape(w_arg, w, ("HKV", "l*D", "D"), (HKV, cfg.l * D, D))
        return w
    if not (isinstance(w, (tuple, list)) and len(w) == 4
            and all(isinstance(t, torch.Tensor) for t in w)):
        raise TypeError(f"'{w_arg}' must be MLPWeights(w1, b1, w2, b2) of tensors for "
                        f"compress='mlp', got {type(w).__name__}")
    w = MLPWeights(*w)
    if w.w1.dim() != 3:
        raise ValueError(f"'{w_arg}.w1' must have rank 3 [HKV, l*D, hidden], "
                         f"got shape {list(w.w1.shape)}")
    hidden = w.w1.shape[2]
    _check_shape(f"{w_arg}.w1", w.w1, ("HKV", "l*D", "hidden"), (HKV, cfg.l * D, hidden))
    _check_shape(f"{w_arg}.b1", w.b1, ("HKV", "hidden"), (HKV, hidden))
    _check_shape(f"{w_arg}.w2", w.w2, ("HKV", "hidden", "D"), (HKV, hidden, D))
    _check_shape(f"{w_arg}.b2", w.b2, ("HKV", "D"), (HKV, D))
    return w


def _resolve_backend(backend: str, device: torch.device) -> str:
    """'reference' or 'gpu': 'auto' picks the GPU for CUDA tensors."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "gpu" if device.type == "cuda" else "reference"
    return backend


def nsa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, *,
                  k_slc: Optional[torch.Tensor] = None, v_slc: Optional[torch.Tensor] = None,
                  k_win: Optional[torch.Tensor] = None, v_win: Optional[torch.Tensor] = None,
                  w_k: Weights = None, w_v: Weights = None,
                  pe_k: Optional[torch.Tensor] = None, pe_v: Optional[torch.Tensor] = None,
                  compress: str = "linear", config: Optional[NSAConfig] = None,
                  backend: str = "auto") -> torch.Tensor:
    """Native Sparse Attention forward (SPEC.md), differentiable.

    Args:
        q: ``[B, T, HQ, Dk]`` queries.
        k, v: ``[B, T, HKV, Dk]`` and ``[B, T, HKV, Dv]``: the compressed
            branch's keys and values, and those of the selected and window
            branches unless given separately (shared K/V).
        g: ``[B, T, HQ, 3]`` gates of the (compressed, selected, window)
            branches, e.g. ``sigmoid(Linear(x))``.
        k_slc, v_slc: keys and values of the selected branch (both or neither).
        k_win, v_win: keys and values of the window branch (both or neither).
        w_k, w_v: compressor weights of keys and values: ``[HKV, l*Dk, Dk]``
            and ``[HKV, l*Dv, Dv]`` for ``compress='linear'``; an
            :class:`~nsa.reference.MLPWeights` per side for ``'mlp'``; none
            for ``'mean'``.
        pe_k, pe_v: optional intra-block position encodings ``[HKV, l, Dk]``
            and ``[HKV, l, Dv]`` (both or neither; not for ``'mean'``).
        compress: ``'linear'`` (SPEC's op), ``'mean'`` or ``'mlp'``.
        config: the :class:`~nsa.NSAConfig` (default: the paper's).
        backend: ``'reference'`` (pure PyTorch), ``'gpu'`` (compiled
            kernels, prebuilt for this configuration and shape by
            ``python3 -m nsa.build_kernels`` and found in
            ``$NSA_KERNEL_PATH`` or ``nsa/kernels``; with a backward plan
            when gradients are needed), or
            ``'auto'``: the GPU for CUDA tensors, else the reference.

    Returns:
        ``[B, T, HQ, Dv]`` in q's dtype.

    Raises:
        TypeError: an argument is not a tensor (or MLPWeights), ``config``
            is not an NSAConfig, dtypes disagree, or the backend does not
            take q's dtype.
        ValueError: a shape, pairing, GQA or device rule is broken, or an
            unknown ``compress``/``backend``; the message names the argument.
        nsa._gpu.GPUBackendUnavailable: the GPU backend was chosen and
            cannot run: the tensors are not on CUDA, the runtime library
            or this shape's kernels are missing (the message has the
            command that builds them), or gradients are needed (the GPU
            backward is not available yet; use ``backend='reference'``).
    """
    cfg = NSAConfig() if config is None else config
    if not isinstance(cfg, NSAConfig):
        raise TypeError(f"'config' must be an NSAConfig, got {type(cfg).__name__}")
    if compress not in COMPRESS_MODES:
        raise ValueError(f"compress must be one of {COMPRESS_MODES}, got {compress!r}")
    named = {"q": q, "k": k, "v": v, "g": g, "k_slc": k_slc, "v_slc": v_slc,
             "k_win": k_win, "v_win": v_win, "pe_k": pe_k, "pe_v": pe_v}
    for arg, x in named.items():
        if x is not None and not isinstance(x, torch.Tensor):
            raise TypeError(f"'{arg}' must be a torch.Tensor, got {type(x).__name__}")
    paired = dict(named, w_k=w_k, w_v=w_v)
    for a, b in (("k_slc", "v_slc"), ("k_win", "v_win"), ("pe_k", "pe_v"), ("w_k", "w_v")):
        if (paired[a] is None) != (paired[b] is None):
            raise ValueError(f"'{a}' and '{b}' must be given together (or both omitted)")

    dims = _Dims()
    dims.bind("q", q, ("B", "T", "HQ", "Dk"))
    dims.bind("k", k, ("B", "T", "HKV", "Dk"))
    dims.bind("v", v, ("B", "T", "HKV", "Dv"))
    for arg in ("k_slc", "k_win"):
        if named[arg] is not None:
            dims.bind(arg, named[arg], ("B", "T", "HKV", "Dk"))
    for arg in ("v_slc", "v_win"):
        if named[arg] is not None:
            dims.bind(arg, named[arg], ("B", "T", "HKV", "Dv"))
    dims.bind("g", g, ("B", "T", "HQ", "3"))
    if g.shape[3] != 3:
        raise ValueError(f"'g' must have shape [B, T, HQ, 3] (one gate per branch), "
                         f"got {list(g.shape)}")
    HQ, HKV = dims["HQ"], dims["HKV"]
    if HKV == 0 or HQ % HKV != 0:
        raise ValueError(f"GQA needs HQ divisible by HKV: HQ = {HQ} ('q'), HKV = {HKV} ('k')")
    w_k = _check_compressor("k", dims["Dk"], w_k, pe_k, compress, cfg, HKV)
    w_v = _check_compressor("v", dims["Dv"], w_v, pe_v, compress, cfg, HKV)

    tensors = {arg: x for arg, x in named.items() if x is not None}
    for side, w in (("k", w_k), ("v", w_v)):
        if isinstance(w, MLPWeights):
            tensors.update({f"w_{side}.{field}": t for field, t in zip(w._fields, w)})
        elif w is not None:
            tensors[f"w_{side}"] = w
    for arg, x in tensors.items():
        if x.dtype != q.dtype:
            raise TypeError(f"'{arg}' has dtype {x.dtype}, but every tensor must share "
                            f"q's dtype {q.dtype}")
        if x.device != q.device:
            raise ValueError(f"'{arg}' is on {x.device}, but every tensor must be on "
                             f"q's device {q.device}")

    chosen = _resolve_backend(backend, q.device)
    allowed = _KERNEL_DTYPES if chosen == "gpu" else _REFERENCE_DTYPES
    if q.dtype not in allowed:
        raise TypeError(f"'q' has dtype {q.dtype}; backend {chosen!r} takes "
                        f"{', '.join(str(t) for t in allowed)}")

    k_slc, v_slc = (k, v) if k_slc is None else (k_slc, v_slc)
    k_win, v_win = (k, v) if k_win is None else (k_win, v_win)
    branches = dict(q=q, k_cmp=k, v_cmp=v, k_slc=k_slc, v_slc=v_slc, k_win=k_win,
                    v_win=v_win, g=g, cfg=cfg, compress_mode=compress, w_k=w_k, w_v=w_v,
                    pe_k=pe_k, pe_v=pe_v)
    if chosen == "gpu":
        return _gpu.nsa_attention(**branches)
    return reference.forward(**branches)

"""The NSA configuration (SPEC.md, "Configuration") and its validity rules.

One frozen dataclass carries the block sizes of a layer, so that every
function of the package reads them from one place. The rules are those of
SPEC.md plus the ones the compiler's ``#nsa.config`` verifier adds
(``local >= 1`` so that the block holding query t is always selected,
``init >= 0``, sizes that fit in int32, a finite positive ``scale``); a
configuration that breaks one is rejected with a ``ValueError`` naming it.
"""

import dataclasses
import math
from typing import Optional

__all__ = ["NSAConfig"]

_INT32_MAX = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class NSAConfig:
    """Block sizes of Native Sparse Attention; defaults are the paper's (sec. 4.1).

    Attributes:
        l: compression block length (tokens summarised by one compressed token).
        d: compression stride (distance between compressed blocks).
        l_sel: selection block size (``l'`` in the paper).
        n: number of selected blocks per query.
        init: number of forced initial blocks.
        local: number of forced most recent blocks (including the query's own).
        w: sliding-window length.
        scale: softmax scale; ``None`` means ``1/sqrt(Dk)``.
    """

    l: int = 32
    d: int = 16
    l_sel: int = 64
    n: int = 16
    init: int = 1
    local: int = 2
    w: int = 512
    scale: Optional[float] = None

    def __post_init__(self):
        for name in ("l", "d", "l_sel", "n", "init", "local", "w"):
            value = getattr(self, name)
            # bool is an int subclass; True as a block size is a bug, not a 1.
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f"NSAConfig.{name} must be an int, got {type(value).__name__} {value!r}")
            if value > _INT32_MAX:
                raise ValueError(f"NSAConfig.{name} = {value} must fit in int32")
        for name in ("l", "d", "l_sel", "n", "w"):
            if getattr(self, name) < 1:
                raise ValueError(f"NSAConfig.{name} must be positive, got {getattr(self, name)}")
        if self.init < 0:
            raise ValueError(f"NSAConfig.init must be >= 0, got {self.init}")
        if self.local < 1:
            raise ValueError(
                f"NSAConfig.local must be >= 1 (the block holding the query is always "
                f"selected), got {self.local}")
        if self.l % self.d != 0:
            raise ValueError(f"d must divide l (d = {self.d}, l = {self.l})")
        if self.l_sel % self.d != 0:
            raise ValueError(f"d must divide l_sel (d = {self.d}, l_sel = {self.l_sel})")
        if self.l > self.l_sel:
            raise ValueError(f"l <= l_sel is required (l = {self.l}, l_sel = {self.l_sel})")
        if self.n < self.init + self.local:
            raise ValueError(
                f"n >= init + local is required (n = {self.n}, init = {self.init}, "
                f"local = {self.local})")
        if self.scale is not None:
            if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)):
                raise ValueError(
                    f"NSAConfig.scale must be a float or None, got "
                    f"{type(self.scale).__name__} {self.scale!r}")
            if not (math.isfinite(self.scale) and self.scale > 0):
                raise ValueError(
                    f"NSAConfig.scale must be finite and positive, got {self.scale}")

    def softmax_scale(self, head_dim: int) -> float:
        """The score scale for keys of size ``head_dim``: ``scale`` or ``1/sqrt(Dk)``."""
        return float(self.scale) if self.scale is not None else 1.0 / math.sqrt(head_dim)

    def num_compressed(self, T: int) -> int:
        """``Nc(T)``: how many compressed tokens a sequence of T tokens has."""
        return 0 if T < self.l else (T - self.l) // self.d + 1

    def num_selection_blocks(self, T: int) -> int:
        """``ceil(T / l_sel)``: how many selection blocks cover T tokens."""
        return -(-T // self.l_sel)

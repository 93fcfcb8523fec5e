"""Pure-PyTorch reference of Native Sparse Attention (SPEC.md sections 1-6).

Every function follows SPEC.md literally and is differentiable with autograd,
except block selection, which runs under ``torch.no_grad`` and returns
integer block indices (SPEC section 3: the top-n set is a constant of the
backward). Tensors use the ``[B, T, H, D]`` layout; GQA allows any group size
``G = HQ / HKV``.

Precision: inputs of any floating dtype are computed in float32, and in
float64 when they are float64 (so that ``torch.autograd.gradcheck`` applies).
Attention outputs come back in the dtype of ``q``; ``lse`` stays in the
compute dtype.

Memory: this is an oracle, not a kernel. Each attention branch materialises
its score matrix and its boolean mask (``[B, HKV, G, T, S]`` scores with
``S = T`` for the selected and window branches, ``S = Nc(T)`` for the
compressed one), which is fine at the small T of tests and examples and
impossible at the T of the benchmarks (use the GPU backend there).
"""

import math
from typing import NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F

from .config import NSAConfig

__all__ = [
    "COMPRESS_MODES",
    "MLPWeights",
    "block_score_weights",
    "cast",
    "combine",
    "compress",
    "compressed_attention",
    "compute_dtype",
    "forward",
    "select_blocks",
    "selected_attention",
    "window_attention",
]

#: Token-compressor variants: SPEC's ``linear`` (W and optional PE) and
#: ``mean``, plus the wider ``mlp`` SPEC section 1 allows on top.
COMPRESS_MODES = ("linear", "mean", "mlp")


class MLPWeights(NamedTuple):
    """Per-KV-head parameters of the ``mlp`` token compressor.

    ``kc[i] = gelu(vec(block_i + PE_h) . w1_h + b1_h) . w2_h + b2_h``, i.e.
    ``Linear(l*D -> hidden) + GELU + Linear(hidden -> D)`` with separate
    weights for each KV head h.
    """

    w1: torch.Tensor  # [HKV, l*D, hidden]
    b1: torch.Tensor  # [HKV, hidden]
    w2: torch.Tensor  # [HKV, hidden, D]
    b2: torch.Tensor  # [HKV, D]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the reference computes in for inputs of ``dtype``."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def cast(x, dtype: torch.dtype):
    """``x`` (a tensor, :class:`MLPWeights` or ``None``) converted to ``dtype``."""
    if x is None:
        return None
    if isinstance(x, MLPWeights):
        return MLPWeights(*(t.to(dtype) for t in x))
    return x.to(dtype)


# --------------------------------------------------------------------------
# 1. Compression
# --------------------------------------------------------------------------

def compress(k: torch.Tensor, cfg: NSAConfig,
             W: Union[torch.Tensor, MLPWeights, None] = None,
             PE: Optional[torch.Tensor] = None,
             mode: str = "linear") -> torch.Tensor:
    """Compresses keys or values ``k [B, T, H, D]`` into ``[B, Nc(T), H, D]``.

    Compressed token i summarises positions ``[i*d, i*d + l)``.

    Args:
        k: keys or values of one branch.
        cfg: supplies ``l`` and ``d``.
        W: ``[H, l*D, D]`` for ``linear``; an :class:`MLPWeights` for ``mlp``;
            ``None`` for ``mean``.
        PE: optional ``[H, l, D]`` intra-block position encoding, added to
            every block before ``linear`` or ``mlp`` (absent means zero).
        mode: one of :data:`COMPRESS_MODES`.

    Returns:
        The compressed tensor in ``k``'s dtype.
    """
    if mode not in COMPRESS_MODES:
        raise ValueError(f"compress mode must be one of {COMPRESS_MODES}, got {mode!r}")
    if mode == "mean" and (W is not None or PE is not None):
        raise ValueError("compress mode 'mean' takes no W or PE")
    if mode != "mean" and W is None:
        raise ValueError(f"compress mode {mode!r} needs W")
    B, T, H, D = k.shape
    dt = compute_dtype(k.dtype)
    Nc = cfg.num_compressed(T)
    x = k.to(dt)
    if Nc == 0:
        blocks = x.new_zeros(B, 0, H, cfg.l, D)
    else:
        # unfold appends the window dimension: [B, Nc, H, D, l] -> [B, Nc, H, l, D].
        blocks = x.unfold(1, cfg.l, cfg.d).permute(0, 1, 2, 4, 3)
    if mode == "mean":
        return blocks.mean(dim=3).to(k.dtype)
    if PE is not None:
        blocks = blocks + PE.to(dt)
    # vec() is position-major: element (r, e) of a block lands at r*D + e.
    flat = blocks.reshape(B, Nc, H, cfg.l * D)
    if mode == "linear":
        out = torch.einsum("bnhk,hkd->bnhd", flat, W.to(dt))
    else:
        hidden = F.gelu(torch.einsum("bnhk,hkf->bnhf", flat, W.w1.to(dt)) + W.b1.to(dt))
        out = torch.einsum("bnhf,hfd->bnhd", hidden, W.w2.to(dt)) + W.b2.to(dt)
    return out.to(k.dtype)


# --------------------------------------------------------------------------
# The one masked softmax behind all three branches
# --------------------------------------------------------------------------

def _grouped_scores(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale * <q_t, k_u>`` as ``[B, HKV, G, T, S]`` in the compute dtype.

    Query head ``hq`` belongs to group ``hq // G`` and reads KV head
    ``hq // G`` (SPEC, GQA), which is what splitting HQ into (HKV, G) does.
    """
    B, T, HQ, Dk = q.shape
    HKV = k.shape[2]
    dt = compute_dtype(q.dtype)
    qg = q.to(dt).reshape(B, T, HKV, HQ // HKV, Dk).permute(0, 2, 3, 1, 4)
    kg = k.to(dt).permute(0, 2, 1, 3).unsqueeze(2)
    return scale * torch.matmul(qg, kg.transpose(-1, -2))


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
            scale: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention of each query t over the keys u with ``mask[b, h, t, u]``.

    Args:
        q: ``[B, T, HQ, Dk]``; k: ``[B, S, HKV, Dk]``; v: ``[B, S, HKV, Dv]``.
        mask: bool, broadcastable to ``[B, HKV, T, S]``.

    Returns:
        ``o [B, T, HQ, Dv]`` in q's dtype and ``lse [B, T, HQ]`` (natural log)
        in the compute dtype. A query that sees no key gets ``o = 0`` and
        ``lse = -inf``, and its gradients are zero rather than NaN: the row
        maximum is a detached constant (the result does not depend on it) and
        empty rows divide by 1 instead of 0.
    """
    B, T, HQ, _ = q.shape
    S, Dv = v.shape[1], v.shape[3]
    dt = compute_dtype(q.dtype)
    scores = _grouped_scores(q, k, scale).masked_fill(~mask.unsqueeze(2), -math.inf)
    if S == 0:
        row_max = scores.new_full(scores.shape[:-1] + (1,), -math.inf)
    else:
        row_max = scores.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max)).detach()
    weights = torch.exp(scores - row_max)
    total = weights.sum(dim=-1, keepdim=True)
    seen = total > 0
    safe_total = torch.where(seen, total, torch.ones_like(total))
    vg = v.to(dt).permute(0, 2, 1, 3).unsqueeze(2)
    o = torch.matmul(weights, vg) / safe_total
    lse = torch.where(seen, row_max + torch.log(safe_total),
                      torch.full_like(total, -math.inf)).squeeze(-1)
    o = o.permute(0, 3, 1, 2, 4).reshape(B, T, HQ, Dv).to(q.dtype)
    lse = lse.permute(0, 3, 1, 2).reshape(B, T, HQ)
    return o, lse


def _compressed_visibility(T: int, Nc: int, cfg: NSAConfig, device) -> torch.Tensor:
    """``[T, Nc]`` bool: query t sees compressed token i iff ``i*d + l - 1 <= t``."""
    t = torch.arange(T, device=device).unsqueeze(1)
    i = torch.arange(Nc, device=device).unsqueeze(0)
    return i * cfg.d + cfg.l - 1 <= t


# --------------------------------------------------------------------------
# 2. Compressed attention
# --------------------------------------------------------------------------

def compressed_attention(q: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor,
                         cfg: NSAConfig) -> Tuple[torch.Tensor, torch.Tensor]:
    """Attention of ``q [B, T, HQ, Dk]`` over the compressed ``kc, vc [B, Nc, HKV, D]``.

    Returns ``(o_cmp [B, T, HQ, Dv], lse [B, T, HQ])``; rows with no visible
    compressed token (``t < l - 1``) give ``o = 0`` and ``lse = -inf``.
    """
    mask = _compressed_visibility(q.shape[1], kc.shape[1], cfg, q.device)
    return _attend(q, kc, vc, mask[None, None], cfg.softmax_scale(q.shape[-1]))


# --------------------------------------------------------------------------
# 3. Block selection
# --------------------------------------------------------------------------

def block_score_weights(Nc: int, num_blocks: int, cfg: NSAConfig,
                        dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """``M [Nc, num_blocks]`` with ``p_slc[.., j] = sum_i p_cmp[.., i] * M[i, j]``.

    ``M[i, j]`` counts the pairs ``(m, n)``, ``0 <= m < l'/d``,
    ``0 <= n < l/d``, with ``i = (l'/d)*j + m + n - (l/d - 1)`` (SPEC section
    3, the shifted Eq. 9); indices outside ``[0, Nc)`` contribute nothing.
    For l=32, d=16, l'=64 column j holds 1,2,2,2,1 at rows 4j-1 .. 4j+3.
    """
    a, b = cfg.l_sel // cfg.d, cfg.l // cfg.d
    M = torch.zeros(Nc, num_blocks, dtype=dtype, device=device)
    j = torch.arange(num_blocks, device=device)
    for offset in range(a + b - 1):
        # Number of (m, n) pairs with m + n = offset.
        count = min(offset, a - 1) - max(0, offset - (b - 1)) + 1
        i = a * j + offset - (b - 1)
        ok = (i >= 0) & (i < Nc)
        M[i[ok], j[ok]] += count
    return M


def select_blocks(q: torch.Tensor, kc: torch.Tensor, lse: torch.Tensor,
                  cfg: NSAConfig) -> torch.Tensor:
    """The top-n selection blocks of every query and KV head (SPEC section 3).

    Args:
        q: ``[B, T, HQ, Dk]``; kc: ``[B, Nc, HKV, Dk]``; lse: ``[B, T, HQ]``,
            the compressed branch's log-sum-exp (so ``p_cmp`` is recomputed as
            ``exp(scale * <q, kc> - lse)``).

    Returns:
        ``idx [B, T, HKV, n]`` int32: the chosen blocks ranked by (forced
        first, then larger GQA-summed score, then smaller j), stored in
        ascending order and padded with -1 at the end. Not differentiable.
    """
    with torch.no_grad():
        B, T, HQ, Dk = q.shape
        Nc, HKV = kc.shape[1], kc.shape[2]
        G = HQ // HKV
        dt = compute_dtype(q.dtype)
        num_blocks = cfg.num_selection_blocks(T)
        scores = _grouped_scores(q, kc, cfg.softmax_scale(Dk))
        lse_g = lse.to(dt).reshape(B, T, HKV, G).permute(0, 2, 3, 1).unsqueeze(-1)
        visible = _compressed_visibility(T, Nc, cfg, q.device)
        p_cmp = torch.where(visible, torch.exp(scores - lse_g), torch.zeros_like(scores))
        M = block_score_weights(Nc, num_blocks, cfg, dt, q.device)
        P = torch.matmul(p_cmp, M).sum(dim=2)  # [B, HKV, T, blocks], GQA-summed (Eq. 10)

        current = (torch.arange(T, device=q.device) // cfg.l_sel).unsqueeze(1)
        j = torch.arange(num_blocks, device=q.device).unsqueeze(0)
        candidate = j <= current
        forced = candidate & ((j < cfg.init) | (j > current - cfg.local))
        key = torch.where(forced, torch.full_like(P, math.inf),
                          torch.where(candidate, P, torch.full_like(P, -math.inf)))
        # A stable descending sort keeps equal keys in ascending j: the tie-break.
        order = torch.sort(key, dim=-1, descending=True, stable=True).indices[..., :cfg.n]
        chosen = key.gather(-1, order) > -math.inf
        # Non-candidates sort to the end as `num_blocks`, then become -1.
        order = torch.where(chosen, order, torch.full_like(order, num_blocks))
        idx = order.sort(dim=-1).values
        idx = torch.where(idx == num_blocks, torch.full_like(idx, -1), idx)
        if idx.shape[-1] < cfg.n:
            idx = F.pad(idx, (0, cfg.n - idx.shape[-1]), value=-1)
        return idx.permute(0, 2, 1, 3).to(torch.int32).contiguous()


# --------------------------------------------------------------------------
# 4. Selected attention, 5. sliding window, 6. gated output
# --------------------------------------------------------------------------

def selected_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       idx: torch.Tensor, cfg: NSAConfig) -> torch.Tensor:
    """Attention of q over the causal tokens of its selected blocks.

    Args:
        q: ``[B, T, HQ, Dk]``; k: ``[B, T, HKV, Dk]``; v: ``[B, T, HKV, Dv]``.
        idx: ``[B, T, HKV, n]`` integer block indices, -1 for "none".

    Returns:
        ``o_slc [B, T, HQ, Dv]`` in q's dtype.
    """
    B, T, HKV = k.shape[0], k.shape[1], k.shape[2]
    num_blocks = cfg.num_selection_blocks(T)
    idx = idx.long()
    if idx.numel() and (idx.min() < -1 or idx.max() >= num_blocks):
        raise ValueError(
            f"idx values must lie in [-1, {num_blocks}) for T = {T} and l_sel = {cfg.l_sel}, "
            f"got [{int(idx.min())}, {int(idx.max())}]")
    # One extra column absorbs the -1 padding, then is dropped.
    slot = torch.where(idx < 0, torch.full_like(idx, num_blocks), idx)
    chosen = torch.zeros(B, T, HKV, num_blocks + 1, dtype=torch.bool, device=q.device)
    chosen.scatter_(3, slot, True)
    token_block = torch.arange(T, device=q.device) // cfg.l_sel
    in_blocks = chosen[..., :num_blocks].index_select(3, token_block)  # [B, T, HKV, T]
    t = torch.arange(T, device=q.device)
    causal = (t.unsqueeze(0) <= t.unsqueeze(1))[None, :, None, :]
    mask = (in_blocks & causal).permute(0, 2, 1, 3)
    return _attend(q, k, v, mask, cfg.softmax_scale(q.shape[-1]))[0]


def window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     cfg: NSAConfig) -> torch.Tensor:
    """Attention of query t over ``u in [max(0, t-w+1), t]``; ``[B, T, HQ, Dv]``."""
    t = torch.arange(q.shape[1], device=q.device)
    offset = t.unsqueeze(1) - t.unsqueeze(0)  # t - u
    mask = (offset >= 0) & (offset < cfg.w)
    return _attend(q, k, v, mask[None, None], cfg.softmax_scale(q.shape[-1]))[0]


def combine(g: torch.Tensor, o_cmp: torch.Tensor, o_slc: torch.Tensor,
            o_win: torch.Tensor) -> torch.Tensor:
    """``g[..., 0]*o_cmp + g[..., 1]*o_slc + g[..., 2]*o_win`` in o_cmp's dtype.

    ``g: [B, T, HQ, 3]``; the branch outputs are ``[B, T, HQ, Dv]``.
    """
    dt = compute_dtype(o_cmp.dtype)
    g = g.to(dt)
    out = g[..., 0:1] * o_cmp.to(dt) + g[..., 1:2] * o_slc.to(dt) + g[..., 2:3] * o_win.to(dt)
    return out.to(o_cmp.dtype)


def forward(q: torch.Tensor,
            k_cmp: torch.Tensor, v_cmp: torch.Tensor,
            k_slc: torch.Tensor, v_slc: torch.Tensor,
            k_win: torch.Tensor, v_win: torch.Tensor,
            g: torch.Tensor, cfg: NSAConfig, compress_mode: str = "linear",
            w_k: Union[torch.Tensor, MLPWeights, None] = None,
            w_v: Union[torch.Tensor, MLPWeights, None] = None,
            pe_k: Optional[torch.Tensor] = None,
            pe_v: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The whole NSA forward (sections 1-6) with per-branch keys and values.

    Unchecked: :func:`nsa.nsa_attention` validates the arguments and then
    calls this. Everything runs in the compute dtype, so no branch output is
    rounded to a narrow input dtype before the gated sum; the result is
    ``[B, T, HQ, Dv]`` in q's dtype.
    """
    out_dtype, dt = q.dtype, compute_dtype(q.dtype)
    q, k_cmp, v_cmp, k_slc, v_slc, k_win, v_win, g, w_k, w_v, pe_k, pe_v = (
        cast(x, dt) for x in (q, k_cmp, v_cmp, k_slc, v_slc, k_win, v_win, g,
                               w_k, w_v, pe_k, pe_v))
    # The compute dtype holds under autocast too (whose matmuls would round
    # to bf16): a layer trained under autocast gets the reference's numbers.
    with torch.autocast(device_type=q.device.type, enabled=False):
        kc = compress(k_cmp, cfg, w_k, pe_k, compress_mode)
        vc = compress(v_cmp, cfg, w_v, pe_v, compress_mode)
        o_cmp, lse = compressed_attention(q, kc, vc, cfg)
        idx = select_blocks(q, kc, lse, cfg)
        o_slc = selected_attention(q, k_slc, v_slc, idx, cfg)
        o_win = window_attention(q, k_win, v_win, cfg)
        return combine(g, o_cmp, o_slc, o_win).to(out_dtype)

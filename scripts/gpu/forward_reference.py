"""Row-wise float32 reference of the NSA forward and SPEC.md's acceptance checks.

``nsa.reference`` is the oracle, but it materialises every branch's
``[T, T]`` scores at once. Here each branch is evaluated for a chosen set of
query rows ``pos`` (all rows, or a sample at large T), in chunks whose score
matrices stay within a memory budget, by calling the same masked softmax
(``nsa.reference._attend``) with a mask built for just those rows. A query
row's result depends only on its own mask, so any subset of rows is exact.

Shapes: ``Q`` holds the chosen rows of q, ``[B, R, HQ, Dk]``; ``pos`` their
positions (an int64 tensor, sorted); keys and values are whole ``[B, S,
HKV, D]`` tensors. Everything is float32 (callers upcast).
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from nsa import reference as ref  # noqa: E402
from nsa.config import NSAConfig  # noqa: E402

#: SPEC.md, Tolerances: ||out - ref|| / ||ref|| per activation dtype.
TOLERANCE = {"bf16": 1e-2, "f16": 5e-3}
#: SPEC.md section 3: a chosen block may trail the n-th best by this much,
#: relative to the query's largest block score.
SELECTION_TIE = 1e-3
#: Score-matrix elements per chunk (x4 bytes, and _attend keeps ~3 copies).
DEFAULT_BUDGET = 1 << 26


def nsa_config(cfg: dict) -> NSAConfig:
    """The NSAConfig of a build's config.json."""
    return NSAConfig(**{k: cfg[k] for k in ("l", "d", "l_sel", "n", "init", "local", "w",
                                           "scale")})


def sample_rows(T: int, count: int, cfg: NSAConfig, seed: int, device) -> torch.Tensor:
    """Sorted query positions: the edges that break kernels, plus ``count`` random ones.

    Edges: the first rows (no compressed token yet for t < l - 1, the first
    selection blocks), the last rows (the ragged tail), and the rows around
    the first window boundary.
    """
    edges = set(range(min(T, cfg.l + cfg.l_sel + 1)))
    edges |= set(range(max(0, T - 2 * cfg.l_sel), T))
    edges |= {t for t in range(cfg.w - 2, cfg.w + 2) if 0 <= t < T}
    gen = torch.Generator().manual_seed(seed)
    picked = torch.randint(0, T, (count,), generator=gen).tolist() if T else []
    return torch.tensor(sorted(edges | set(picked)), dtype=torch.long, device=device)


def _chunks(pos, per_head_keys, budget: int, heads: int):
    """Slices of the rows ``pos`` whose score matrices stay within ``budget``.

    ``per_head_keys(first, last)`` is how many keys rows at positions
    first..last read together; a chunk grows while
    ``rows * heads * keys <= budget`` (always at least one row).
    """
    p = pos.tolist()
    chunks, start = [], 0
    while start < len(p):
        end = start + 1
        while (end < len(p) and
               (end + 1 - start) * heads * per_head_keys(p[start], p[end]) <= budget):
            end += 1
        chunks.append(slice(start, end))
        start = end
    return chunks


def _cat(parts, dim=1):
    o = torch.cat([p[0] for p in parts], dim=dim)
    lse = torch.cat([p[1] for p in parts], dim=dim)
    return o, lse


# --------------------------------------------------------------------------
# Branches
# --------------------------------------------------------------------------

def compress(x: torch.Tensor, cfg: NSAConfig, mode: str, W=None, PE=None) -> torch.Tensor:
    """Compressed keys or values of all tokens (cheap: Nc rows per head)."""
    return ref.compress(x.float(), cfg, None if W is None else W.float(),
                        None if PE is None else PE.float(), mode)


def compressed_rows(Q, pos, kc, vc, cfg: NSAConfig, scale: float, budget=DEFAULT_BUDGET):
    """(o, lse) of the compressed branch: row t sees token i iff ``i*d + l - 1 <= t``."""
    B, R, HQ, _ = Q.shape
    Nc = kc.shape[1]
    parts = []
    for s in _chunks(pos, lambda a, b: Nc, budget, B * HQ):
        i = torch.arange(Nc, device=Q.device)
        mask = (i * cfg.d + cfg.l - 1)[None, :] <= pos[s, None]
        parts.append(ref._attend(Q[:, s], kc, vc, mask[None, None], scale))
    return _cat(parts)


def block_scores_rows(Q, pos, kc, lse, cfg: NSAConfig, scale: float, budget=DEFAULT_BUDGET):
    """``P [B, HKV, R, blocks]``: SPEC Eq. 9 block scores, GQA-summed (Eq. 10).

    ``p_cmp`` is recomputed as ``exp(score - lse)`` from the given ``lse`` of
    the same rows, as the selection kernel does.
    """
    B, R, HQ, _ = Q.shape
    Nc, HKV = kc.shape[1], kc.shape[2]
    G = HQ // HKV
    T_blocks = cfg.num_selection_blocks(int(pos.max()) + 1) if R else 0
    M = ref.block_score_weights(Nc, T_blocks, cfg, torch.float32, Q.device)
    parts = []
    for s in _chunks(pos, lambda a, b: max(Nc, 1), budget, B * HQ):
        scores = ref._grouped_scores(Q[:, s], kc, scale)  # [B, HKV, G, r, Nc]
        lse_g = lse[:, s].reshape(B, -1, HKV, G).permute(0, 2, 3, 1).unsqueeze(-1)
        i = torch.arange(Nc, device=Q.device)
        visible = (i * cfg.d + cfg.l - 1)[None, :] <= pos[s, None]
        p = torch.where(visible, torch.exp(scores - lse_g), torch.zeros_like(scores))
        parts.append(torch.matmul(p, M).sum(dim=2))
    return torch.cat(parts, dim=2) if parts else Q.new_zeros(B, HKV, 0, T_blocks)


def _forced_and_candidates(pos, num_blocks, cfg: NSAConfig):
    """``[R, blocks]`` bool masks: candidate blocks and forced blocks of each row."""
    current = (pos // cfg.l_sel)[:, None]
    j = torch.arange(num_blocks, device=pos.device)[None, :]
    candidate = j <= current
    forced = candidate & ((j < cfg.init) | (j > current - cfg.local))
    return candidate, forced


def top_n_rows(P, pos, cfg: NSAConfig) -> torch.Tensor:
    """Reference ``idx [B, R, HKV, n]`` from block scores (nsa.reference's ranking)."""
    candidate, forced = _forced_and_candidates(pos, P.shape[-1], cfg)
    key = torch.where(forced, torch.full_like(P, math.inf),
                      torch.where(candidate, P, torch.full_like(P, -math.inf)))
    n = min(cfg.n, P.shape[-1])
    order = torch.sort(key, dim=-1, descending=True, stable=True).indices[..., :n]
    chosen = key.gather(-1, order) > -math.inf
    order = torch.where(chosen, order, torch.full_like(order, P.shape[-1]))
    idx = order.sort(dim=-1).values
    idx = torch.where(idx == P.shape[-1], torch.full_like(idx, -1), idx)
    if n < cfg.n:
        idx = torch.nn.functional.pad(idx, (0, cfg.n - n), value=-1)
    return idx.permute(0, 2, 1, 3).to(torch.int32)


def selection_violations(idx, P, pos, cfg: NSAConfig, tie: float = SELECTION_TIE) -> dict:
    """SPEC.md section 3's acceptance rule for the kernel's ``idx`` rows.

    ``idx [B, R, HKV, n]`` (the kernel's rows ``pos``), ``P [B, HKV, R,
    blocks]``. A (row, head) is accepted when its entries are ascending,
    distinct candidates padded with -1 at the end, their count is
    ``min(n, candidates)``, every forced block is in, and every chosen
    non-forced block's P is within ``tie * max P`` of the n-th best.

    Returns counts of bad (row, head) pairs by reason, the worst tie shortfall
    (in units of max P) and one example.
    """
    B, R, HKV, n = idx.shape
    nb = P.shape[-1]
    x = idx.permute(0, 2, 1, 3).long()  # [B, HKV, R, n]
    valid = x >= 0
    candidate, forced = _forced_and_candidates(pos, nb, cfg)
    current = (pos // cfg.l_sel)[None, None, :, None]
    bad = {}
    # Layout: valid entries strictly ascending, then only -1.
    layout = (x < -1).any(-1)
    layout |= (valid[..., 1:] & ~valid[..., :-1]).any(-1)
    layout |= (valid[..., 1:] & (x[..., 1:] <= x[..., :-1])).any(-1)
    layout |= (valid & (x > current)).any(-1)
    bad["layout"] = layout
    expected_count = torch.clamp(candidate.sum(-1), max=cfg.n)[None, None, :]
    bad["count"] = valid.sum(-1) != expected_count
    chosen = torch.zeros(B, HKV, R, nb + 1, dtype=torch.bool, device=P.device)
    slot = torch.where(valid & (x <= current), x, torch.full_like(x, nb))
    chosen.scatter_(3, slot, True)
    chosen = chosen[..., :nb]
    bad["forced_missing"] = (forced & ~chosen).any(-1)
    # The n-th best (forced rank first); -inf when every candidate fits.
    key = torch.where(forced, torch.full_like(P, math.inf),
                      torch.where(candidate, P, torch.full_like(P, -math.inf)))
    ranked = torch.sort(key, dim=-1, descending=True).values
    nth = ranked[..., cfg.n - 1:cfg.n] if nb >= cfg.n else torch.full_like(ranked[..., :1],
                                                                           -math.inf)
    top = torch.where(candidate, P, torch.zeros_like(P)).amax(-1, keepdim=True)
    free = chosen & ~forced
    shortfall = torch.where(free, (nth - P) / torch.clamp(top, min=1e-30),
                            torch.full_like(P, -math.inf))
    worst = shortfall.amax(-1) if nb else torch.zeros(B, HKV, R, device=P.device)
    # nth - P < tie * top, written so that nth = +inf (forced blocks fill all
    # n slots) rejects any free block.
    bad["score"] = (free & ~(P >= nth - tie * top)).any(-1)
    any_bad = torch.zeros_like(layout)
    for mask in bad.values():
        any_bad |= mask
    example = ""
    if any_bad.any():
        b, h, r = (int(v) for v in any_bad.nonzero()[0])
        reasons = [k for k, m in bad.items() if m[b, h, r]]
        order = torch.argsort(key[b, h, r], descending=True)
        best = sorted(int(j) for j in order[:cfg.n] if key[b, h, r, j] > -math.inf)
        example = (f"b={b} t={int(pos[r])} h={h}: {'+'.join(reasons)}; kernel "
                   f"{x[b, h, r].tolist()}, reference {best}")
    finite = worst[torch.isfinite(worst)]
    return dict(bad=int(any_bad.sum()), total=B * HKV * R,
                by_reason={k: int(m.sum()) for k, m in bad.items()},
                worst_shortfall=float(finite.max()) if finite.numel() else 0.0,
                example=example)


def selected_rows(Q, pos, k, v, idx, cfg: NSAConfig, scale: float, budget=DEFAULT_BUDGET):
    """(o, lse) over the causal tokens of the blocks in ``idx [B, R, HKV, n]``."""
    B, R, HQ, _ = Q.shape
    HKV = k.shape[2]
    parts = []
    for s in _chunks(pos, lambda a, b: b + 1, budget, B * HQ):
        S = int(pos[s].max()) + 1  # causal: later keys never matter
        nb = cfg.num_selection_blocks(S)
        x = idx[:, s].long()
        slot = torch.where((x < 0) | (x >= nb), torch.full_like(x, nb), x)
        chosen = torch.zeros(B, x.shape[1], HKV, nb + 1, dtype=torch.bool, device=Q.device)
        chosen.scatter_(3, slot, True)
        u = torch.arange(S, device=Q.device)
        in_blocks = chosen[..., :nb].index_select(3, u // cfg.l_sel)  # [B, r, HKV, S]
        causal = u[None, :] <= pos[s, None]
        mask = (in_blocks & causal[None, :, None, :]).permute(0, 2, 1, 3)
        parts.append(ref._attend(Q[:, s], k[:, :S], v[:, :S], mask, scale))
    return _cat(parts)


def window_rows(Q, pos, k, v, cfg: NSAConfig, scale: float, budget=DEFAULT_BUDGET):
    """(o, lse) over ``u in [max(0, t-w+1), t]``."""
    B, R, HQ, _ = Q.shape
    parts = []
    for s in _chunks(pos, lambda a, b: b - max(0, a - cfg.w + 1) + 1, budget, B * HQ):
        lo, hi = max(0, int(pos[s].min()) - cfg.w + 1), int(pos[s].max()) + 1
        u = torch.arange(lo, hi, device=Q.device)
        offset = pos[s, None] - u[None, :]
        mask = (offset >= 0) & (offset < cfg.w)
        parts.append(ref._attend(Q[:, s], k[:, lo:hi], v[:, lo:hi], mask[None, None], scale))
    return _cat(parts)


def combine(g, o_cmp, o_slc, o_win):
    """The gated sum in float32 (all arguments already the same rows)."""
    g = g.float()
    return g[..., 0:1] * o_cmp.float() + g[..., 1:2] * o_slc.float() + g[..., 2:3] * o_win.float()


# --------------------------------------------------------------------------
# Comparisons: each returns one result record
# --------------------------------------------------------------------------

def record(check, ok, metric, value, bound, max_abs=None, note=""):
    return dict(check=check, ok=bool(ok), metric=metric, value=value, bound=bound,
                max_abs=max_abs, note=note)


def compare_output(check, out, expected, bound):
    """SPEC's ``||out - ref|| / ||ref||``; any NaN or inf fails."""
    out, expected = out.float(), expected.float()
    nonfinite = int((~torch.isfinite(out)).sum())
    if nonfinite:
        return record(check, False, "rel_l2", math.inf, bound,
                      note=f"{nonfinite} NaN/inf elements (unwritten poison or computed)")
    err = out - expected
    ref_norm, err_norm = float(expected.norm()), float(err.norm())
    rel = err_norm / ref_norm if ref_norm > 0 else (0.0 if err_norm == 0 else math.inf)
    max_abs = float(err.abs().max()) if err.numel() else 0.0
    return record(check, rel <= bound, "rel_l2", rel, bound, max_abs)


def compare_lse(check, out, expected, bound):
    """lse: -inf exactly where the reference has it, else ``max |diff| <= bound``.

    SPEC bounds outputs, not lse; an absolute error e in lse is a relative
    error ~e in the softmax normaliser, so the output's bound is used.
    """
    out, expected = out.float(), expected.float()
    if out.isnan().any() or (out == math.inf).any():
        n = int(out.isnan().sum() + (out == math.inf).sum())
        return record(check, False, "max_abs", math.inf, bound,
                      note=f"{n} NaN/+inf elements (unwritten poison or computed)")
    empty_ref, empty_out = expected == -math.inf, out == -math.inf
    mismatch = int((empty_ref != empty_out).sum())
    if mismatch:
        return record(check, False, "max_abs", math.inf, bound,
                      note=f"{mismatch} elements disagree on -inf (attends to nothing)")
    finite = ~empty_ref
    diff = (out[finite] - expected[finite]).abs()
    max_abs = float(diff.max()) if diff.numel() else 0.0
    return record(check, max_abs <= bound, "max_abs", max_abs, bound, max_abs)


def check_written(check, t, poison: int = -7777):
    """Every element written: no NaN (float poison) / no integer poison left."""
    if t.is_floating_point():
        left = int(t.isnan().sum())
    else:
        left = int((t == poison).sum())
    return record(check, left == 0, "poison_left", left, 0,
                  note="" if not left else f"{left} of {t.numel()} elements still poison")

"""An independent, loop-by-loop float64 oracle of SPEC.md sections 1-6.

Written from SPEC.md without looking at nsa.reference's vectorised tricks:
every query position, head and block is visited by plain Python loops, the
sets each query attends to are built as explicit lists, and softmax is taken
over exactly those lists. Slow, so only for small shapes.
"""

import math

import torch


def compress(k, l, d, mode, W=None, PE=None):
    """``[B, T, H, D] -> [B, Nc, H, D]`` by SPEC section 1, one block at a time."""
    B, T, H, D = k.shape
    Nc = 0 if T < l else (T - l) // d + 1
    out = torch.zeros(B, Nc, H, D, dtype=torch.float64)
    for b in range(B):
        for i in range(Nc):
            for h in range(H):
                block = k[b, i * d:i * d + l, h].double()
                if mode == "mean":
                    out[b, i, h] = block.mean(0)
                    continue
                if PE is not None:
                    block = block + PE[h].double()
                vec = torch.stack([block[r, e] for r in range(l) for e in range(D)])
                out[b, i, h] = vec @ W[h].double()
    return out


def softmax_over(q_t, keys, values, positions, scale):
    """``(o, lse)`` of one query over the listed positions; ``(0, -inf)`` if none."""
    if not positions:
        return torch.zeros(values.shape[-1], dtype=torch.float64), -math.inf
    s = torch.stack([scale * (q_t @ keys[u]) for u in positions])
    lse = torch.logsumexp(s, 0)
    p = torch.exp(s - lse)
    o = sum(p[n] * values[u] for n, u in enumerate(positions))
    return o, float(lse)


def nsa(q, k_cmp, v_cmp, k_slc, v_slc, k_win, v_win, g, cfg, mode="linear",
        w_k=None, w_v=None, pe_k=None, pe_v=None):
    """Every branch, the selection and the gated output of SPEC sections 1-6.

    Returns a dict with ``o``, ``o_cmp``, ``lse``, ``o_slc``, ``o_win``
    (float64) and ``idx`` (int64 ``[B, T, HKV, n]``).
    """
    q, g = q.double(), g.double()
    B, T, HQ, Dk = q.shape
    HKV, Dv = v_cmp.shape[2], v_cmp.shape[3]
    G = HQ // HKV
    scale = cfg.scale if cfg.scale is not None else 1 / math.sqrt(Dk)
    kc = compress(k_cmp, cfg.l, cfg.d, mode, w_k, pe_k)
    vc = compress(v_cmp, cfg.l, cfg.d, mode, w_v, pe_v)
    Nc = kc.shape[1]
    blocks = math.ceil(T / cfg.l_sel)
    a, c = cfg.l_sel // cfg.d, cfg.l // cfg.d

    o_cmp = torch.zeros(B, T, HQ, Dv, dtype=torch.float64)
    o_slc = torch.zeros_like(o_cmp)
    o_win = torch.zeros_like(o_cmp)
    lse = torch.zeros(B, T, HQ, dtype=torch.float64)
    idx = torch.full((B, T, HKV, cfg.n), -1, dtype=torch.int64)
    for b in range(B):
        for t in range(T):
            visible = [i for i in range(Nc) if i * cfg.d + cfg.l - 1 <= t]
            for h in range(HKV):
                # Block scores, summed over the G query heads of the group.
                P = [0.0] * blocks
                for hq in range(h * G, (h + 1) * G):
                    o, lse[b, t, hq] = softmax_over(q[b, t, hq], kc[b, :, h], vc[b, :, h],
                                                    visible, scale)
                    o_cmp[b, t, hq] = o
                    p = {i: math.exp(scale * float(q[b, t, hq] @ kc[b, i, h])
                                     - float(lse[b, t, hq])) for i in visible}
                    for j in range(blocks):
                        for m in range(a):
                            for n in range(c):
                                P[j] += p.get(a * j + m + n - (c - 1), 0.0)
                current = t // cfg.l_sel
                forced = lambda j: j < cfg.init or j > current - cfg.local  # noqa: E731
                ranked = sorted(range(current + 1), key=lambda j: (not forced(j), -P[j], j))
                chosen = sorted(ranked[:cfg.n])
                idx[b, t, h, :len(chosen)] = torch.tensor(chosen)
                selected = [u for j in chosen
                            for u in range(j * cfg.l_sel, min((j + 1) * cfg.l_sel, t + 1))]
                window = list(range(max(0, t - cfg.w + 1), t + 1))
                for hq in range(h * G, (h + 1) * G):
                    o_slc[b, t, hq] = softmax_over(q[b, t, hq], k_slc[b, :, h].double(),
                                                   v_slc[b, :, h].double(), selected, scale)[0]
                    o_win[b, t, hq] = softmax_over(q[b, t, hq], k_win[b, :, h].double(),
                                                   v_win[b, :, h].double(), window, scale)[0]
    o = g[..., 0:1] * o_cmp + g[..., 1:2] * o_slc + g[..., 2:3] * o_win
    return dict(o=o, o_cmp=o_cmp, lse=lse, o_slc=o_slc, o_win=o_win, idx=idx)

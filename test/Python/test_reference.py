"""nsa.reference against SPEC.md: a brute-force oracle and targeted semantics."""

import math

import pytest
import torch
import torch.nn.functional as F

import brute_force
import nsa
from nsa import NSAConfig
from nsa import reference as R

# Selection is a real choice here (n < blocks); the tails are ragged.
SMALL = NSAConfig(l=8, d=4, l_sel=16, n=3, init=1, local=1, w=8)
# l = l' = d: block scores are the compressed probabilities themselves.
EQUAL = NSAConfig(l=4, d=4, l_sel=4, n=4, init=1, local=2, w=5)
# The paper's block sizes, with n small enough that T = 200 needs a choice.
PAPER_BLOCKS = NSAConfig(l=32, d=16, l_sel=64, n=3, init=1, local=1, w=40)


def branches(a):
    """``(q, k, v, k_slc, v_slc, k_win, v_win)`` of nsa_attention keyword arguments."""
    k_slc, v_slc = a.get("k_slc", a["k"]), a.get("v_slc", a["v"])
    k_win, v_win = a.get("k_win", a["k"]), a.get("v_win", a["v"])
    return a["q"], a["k"], a["v"], k_slc, v_slc, k_win, v_win


@pytest.mark.parametrize("cfg,T,HQ,HKV,mode,pe", [
    (SMALL, 1, 4, 2, "linear", True),
    (SMALL, 31, 4, 2, "linear", True),
    (SMALL, 33, 4, 2, "linear", False),
    (SMALL, 100, 4, 2, "linear", True),
    (SMALL, 57, 2, 2, "mean", False),
    (SMALL, 57, 4, 1, "linear", True),
    (EQUAL, 37, 4, 2, "linear", True),
    (PAPER_BLOCKS, 200, 2, 1, "linear", True),
])
def test_matches_brute_force(make_inputs, cfg, T, HQ, HKV, mode, pe):
    """Every branch, lse, idx and the gated output equal the loop oracle."""
    a = make_inputs(cfg, T, HQ=HQ, HKV=HKV, mode=mode, pe=pe)
    q, k, v, k_slc, v_slc, k_win, v_win = branches(a)
    want = brute_force.nsa(q, k, v, k_slc, v_slc, k_win, v_win, a["g"], cfg, mode,
                           a.get("w_k"), a.get("w_v"), a.get("pe_k"), a.get("pe_v"))

    kc = R.compress(k, cfg, a.get("w_k"), a.get("pe_k"), mode)
    vc = R.compress(v, cfg, a.get("w_v"), a.get("pe_v"), mode)
    o_cmp, lse = R.compressed_attention(q, kc, vc, cfg)
    idx = R.select_blocks(q, kc, lse, cfg)
    assert idx.dtype == torch.int32 and idx.shape == (1, T, HKV, cfg.n)
    assert torch.equal(idx.long(), want["idx"])
    assert torch.equal(lse, want["lse"]) or torch.allclose(lse, want["lse"], atol=1e-12)
    torch.testing.assert_close(o_cmp, want["o_cmp"], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(R.selected_attention(q, k_slc, v_slc, idx, cfg), want["o_slc"],
                               rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(R.window_attention(q, k_win, v_win, cfg), want["o_win"],
                               rtol=1e-10, atol=1e-12)
    o = nsa.nsa_attention(**a, backend="reference")
    torch.testing.assert_close(o, want["o"], rtol=1e-10, atol=1e-12)


def test_paper_block_score_weights():
    """l=32, d=16, l'=64: block j sums compressed tokens 4j-1 .. 4j+3 as 1,2,2,2,1."""
    Nc, blocks = 22, 6
    M = R.block_score_weights(Nc, blocks, NSAConfig())
    for j in range(blocks):
        want = torch.zeros(Nc)
        for offset, weight in enumerate([1, 2, 2, 2, 1]):
            if 0 <= 4 * j - 1 + offset < Nc:
                want[4 * j - 1 + offset] = weight
        assert torch.equal(M[:, j], want), j


def test_block_score_weights_equal_sizes_are_identity():
    """l = l' = d: p_slc is p_cmp itself."""
    M = R.block_score_weights(9, 9, EQUAL)
    assert torch.equal(M, torch.eye(9))


def test_compressed_branch_is_empty_before_first_block():
    """t < l - 1 sees no compressed token: o = 0, lse = -inf, and zero (not NaN) gradients."""
    q = torch.randn(2, 20, 4, 8, dtype=torch.float64, requires_grad=True)
    kc = torch.randn(2, SMALL.num_compressed(20), 2, 8, dtype=torch.float64,
                     requires_grad=True)
    vc = torch.randn(2, kc.shape[1], 2, 5, dtype=torch.float64, requires_grad=True)
    o, lse = R.compressed_attention(q, kc, vc, SMALL)
    first = SMALL.l - 1
    assert torch.equal(o[:, :first], torch.zeros_like(o[:, :first]))
    assert torch.isneginf(lse[:, :first]).all() and torch.isfinite(lse[:, first:]).all()
    (o.sum() + lse[:, first:].sum()).backward()
    for x in (q, kc, vc):
        assert torch.isfinite(x.grad).all()
    assert torch.equal(q.grad[:, :first], torch.zeros_like(q.grad[:, :first]))


@pytest.mark.parametrize("T,Nc", [(0, 0), (7, 0), (8, 1), (11, 1), (12, 2), (33, 7)])
def test_compressed_token_count(T, Nc):
    """Nc(T) = 0 if T < l else (T - l)//d + 1, for every mode."""
    k = torch.randn(1, T, 2, 3)
    assert SMALL.num_compressed(T) == Nc
    assert R.compress(k, SMALL, mode="mean").shape == (1, Nc, 2, 3)
    assert R.compress(k, SMALL, torch.randn(2, 24, 3)).shape == (1, Nc, 2, 3)


def test_linear_compression_flattens_position_major():
    """vec(block) puts element (r, e) at r*D + e; PE is added before W."""
    cfg, D = SMALL, 3
    k = torch.randn(2, 21, 2, D, dtype=torch.float64)
    PE = torch.randn(2, cfg.l, D, dtype=torch.float64)
    W = torch.zeros(2, cfg.l * D, D, dtype=torch.float64)
    W[0, 5 * D + 2, 0] = 1.0  # head 0 reads (r=5, e=2) into output dim 0
    W[1, 1 * D + 0, 2] = 2.0  # head 1 reads 2 * (r=1, e=0) into output dim 2
    kc = R.compress(k, cfg, W, PE)
    for i in range(kc.shape[1]):
        assert kc[0, i, 0, 0] == k[0, i * cfg.d + 5, 0, 2] + PE[0, 5, 2]
        assert kc[1, i, 1, 2] == 2 * (k[1, i * cfg.d + 1, 1, 0] + PE[1, 1, 0])
        assert kc[0, i, 0, 1] == 0


def test_mean_compression_and_mean_initialised_linear_agree():
    """`mean` averages each block; a W of stacked identities / l does the same."""
    k = torch.randn(1, 30, 2, 4, dtype=torch.float64)
    W = (torch.eye(4, dtype=torch.float64).repeat(SMALL.l, 1) / SMALL.l).expand(2, -1, -1)
    mean = R.compress(k, SMALL, mode="mean")
    torch.testing.assert_close(mean[0, 2, 1], k[0, 8:16, 1].mean(0))
    torch.testing.assert_close(R.compress(k, SMALL, W), mean)


def test_mlp_compression_is_a_per_head_mlp():
    """`mlp`: Linear(l*D -> hidden) + GELU + Linear(hidden -> D), separately per head."""
    H, D, hidden = 2, 3, 5
    k = torch.randn(1, 16, H, D, dtype=torch.float64)
    PE = torch.randn(H, SMALL.l, D, dtype=torch.float64)
    w = R.MLPWeights(*(torch.randn(*s, dtype=torch.float64) for s in
                       [(H, SMALL.l * D, hidden), (H, hidden), (H, hidden, D), (H, D)]))
    kc = R.compress(k, SMALL, w, PE, mode="mlp")
    for h in range(H):
        for i in range(kc.shape[1]):
            x = (k[0, i * 4:i * 4 + 8, h] + PE[h]).reshape(-1)
            want = F.gelu(x @ w.w1[h] + w.b1[h]) @ w.w2[h] + w.b2[h]
            torch.testing.assert_close(kc[0, i, h], want)


def test_compress_rejects_bad_mode_and_parameters():
    k = torch.randn(1, 16, 1, 2)
    with pytest.raises(ValueError, match="one of"):
        R.compress(k, SMALL, mode="max")
    with pytest.raises(ValueError, match="'mean' takes no W or PE"):
        R.compress(k, SMALL, torch.zeros(1, 16, 2), mode="mean")
    with pytest.raises(ValueError, match="'linear' needs W"):
        R.compress(k, SMALL)


def _one_hot_compressed(hot, T, cfg, HQ=1, HKV=1):
    """q and kc where query heads look along e0 and compressed token i has <q, kc_i> = hot[i]."""
    Nc = cfg.num_compressed(T)
    q = torch.zeros(1, T, HQ, 2, dtype=torch.float64)
    q[..., 0] = 1.0
    kc = torch.zeros(1, Nc, HKV, 2, dtype=torch.float64)
    for i, score in hot.items():
        kc[0, i, :, 0] = score
    return q, kc


def test_selection_ties_break_to_smaller_block():
    """Equal scores: forced blocks, then the smallest j."""
    cfg = NSAConfig(l=4, d=4, l_sel=4, n=4, init=1, local=1, w=4)
    q, kc = _one_hot_compressed({}, 40, cfg)  # every score 0: exact ties
    lse = R.compressed_attention(q, kc, kc, cfg)[1]
    idx = R.select_blocks(q, kc, lse, cfg)
    assert idx[0, 39, 0].tolist() == [0, 1, 2, 9]
    assert idx[0, 38, 0].tolist() == [0, 1, 2, 9]  # block 9 incomplete (P = 0), still forced
    assert idx[0, 13, 0].tolist() == [0, 1, 2, 3]


def test_selection_forces_initial_and_local_blocks_over_larger_scores():
    """Forced blocks win over any score; then the larger score wins."""
    cfg = NSAConfig(l=4, d=4, l_sel=4, n=3, init=1, local=1, w=4)
    q, kc = _one_hot_compressed({0: -30.0, 5: 30.0, 3: 20.0, 8: -30.0}, 40, cfg)
    lse = R.compressed_attention(q, kc, kc, cfg)[1]
    assert R.select_blocks(q, kc, lse, cfg)[0, 39, 0].tolist() == [0, 5, 9]
    wider = NSAConfig(l=4, d=4, l_sel=4, n=4, init=1, local=2, w=4)
    lse = R.compressed_attention(q, kc, kc, wider)[1]
    # local=2 forces 8 (despite its -30) and 9; then 5 beats 3.
    assert R.select_blocks(q, kc, lse, wider)[0, 39, 0].tolist() == [0, 5, 8, 9]


def test_selection_sums_scores_over_the_gqa_group():
    """P sums the G query heads of a KV head (Eq. 10): two weak votes beat one strong."""
    cfg = NSAConfig(l=4, d=4, l_sel=4, n=3, init=1, local=1, w=4, scale=1.0)
    T = 24
    q = torch.zeros(1, T, 3, 3, dtype=torch.float64)
    q[:, :, 0, 0] = 1.0
    q[:, :, 1, 1] = 1.0
    q[:, :, 2, 1] = 1.0
    kc = torch.zeros(1, cfg.num_compressed(T), 1, 3, dtype=torch.float64)
    kc[0, 2, 0, 0] = 8.0  # head 0 alone puts almost all its mass on block 2
    kc[0, 3, 0, 1] = 2.0  # heads 1 and 2 both lean towards block 3
    lse = R.compressed_attention(q, kc, kc, cfg)[1]
    assert R.select_blocks(q, kc, lse, cfg)[0, T - 1, 0].tolist() == [0, 3, 5]
    lse = R.compressed_attention(q[:, :, :1], kc, kc, cfg)[1]
    assert R.select_blocks(q[:, :, :1], kc, lse, cfg)[0, T - 1, 0].tolist() == [0, 2, 5]


def test_selection_pads_with_minus_one_and_sorts():
    """Fewer candidates than n: all of them, ascending, then -1s; never a repeat."""
    cfg = NSAConfig(l=8, d=4, l_sel=8, n=5, init=1, local=2, w=4)
    T = 70
    q = torch.randn(2, T, 4, 8)
    kc = torch.randn(2, cfg.num_compressed(T), 2, 8)
    lse = R.compressed_attention(q, kc, kc, cfg)[1]
    idx = R.select_blocks(q, kc, lse, cfg)
    assert idx[0, 0, 0].tolist() == [0, -1, -1, -1, -1]
    assert idx[1, 17, 1].tolist() == [0, 1, 2, -1, -1]
    for b in range(2):
        for t in range(T):
            for h in range(2):
                row = idx[b, t, h].tolist()
                chosen = [j for j in row if j >= 0]
                assert row == chosen + [-1] * (cfg.n - len(chosen))
                assert chosen == sorted(set(chosen))
                assert len(chosen) == min(cfg.n, t // cfg.l_sel + 1)
                assert t // cfg.l_sel in chosen and 0 in chosen


def test_selection_handles_fewer_blocks_than_n():
    """T shorter than n blocks: idx still has n columns."""
    q = torch.randn(1, 5, 2, 4)
    kc = torch.zeros(1, 0, 1, 4)
    lse = R.compressed_attention(q, kc, kc, NSAConfig())[1]
    idx = R.select_blocks(q, kc, lse, NSAConfig())
    assert idx.shape == (1, 5, 1, 16) and idx[0, 4, 0].tolist() == [0] + [-1] * 15


def test_window_of_one_is_the_token_itself():
    """w = 1: query t attends to u = t only, so o_win[t, hq] = v[t, hq // G]."""
    cfg = NSAConfig(l=4, d=4, l_sel=4, n=2, init=1, local=1, w=1)
    q, k, v = torch.randn(2, 9, 6, 4), torch.randn(2, 9, 3, 4), torch.randn(2, 9, 3, 5)
    o = R.window_attention(q, k, v, cfg)
    torch.testing.assert_close(o, v.repeat_interleave(2, dim=2))


def test_selected_attention_rejects_out_of_range_idx():
    q, k = torch.randn(1, 10, 1, 4), torch.randn(1, 10, 1, 4)
    idx = torch.full((1, 10, 1, 3), -1, dtype=torch.int32)
    idx[0, 3, 0, 0] = 2  # T = 10 has blocks 0 .. 1 at l_sel = 8
    with pytest.raises(ValueError, match=r"idx values must lie in \[-1, 2\)"):
        R.selected_attention(q, k, k, idx, NSAConfig(l=8, d=4, l_sel=8, n=3, w=4))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_narrow_dtypes_compute_in_float32(make_inputs, dtype):
    """bf16/f16 in, same dtype out; equal to a float32 run on the same rounded inputs."""
    a = make_inputs(SMALL, 45, dtype=dtype)
    o = nsa.nsa_attention(**a, backend="reference")
    assert o.dtype == dtype
    wide = {key: (value.float() if isinstance(value, torch.Tensor) else value)
            for key, value in a.items()}
    ref = nsa.nsa_attention(**wide, backend="reference")
    torch.testing.assert_close(o, ref.to(dtype), rtol=0, atol=0)
    q, kc = a["q"], R.compress(a["k"], SMALL, a["w_k"], a["pe_k"])
    assert kc.dtype == dtype
    assert R.compressed_attention(q, kc, kc, SMALL)[1].dtype == torch.float32


def test_gate_combination():
    """o = g0*o_cmp + g1*o_slc + g2*o_win per query head."""
    g = torch.rand(1, 3, 2, 3)
    o = [torch.randn(1, 3, 2, 4) for _ in range(3)]
    want = sum(g[..., c:c + 1] * o[c] for c in range(3))
    torch.testing.assert_close(R.combine(g, *o), want)


def test_ragged_tail_sees_exactly_its_past(make_inputs):
    """Causality: changing tokens after t leaves outputs up to t unchanged."""
    a = make_inputs(SMALL, 53)
    o = nsa.nsa_attention(**a, backend="reference")
    changed = dict(a)
    for key in ("q", "k", "v", "g", "k_slc", "v_slc", "k_win", "v_win"):
        changed[key] = a[key].clone()
        changed[key][:, 40:] = torch.randn_like(a[key][:, 40:])
    o2 = nsa.nsa_attention(**changed, backend="reference")
    assert torch.equal(o[:, :40], o2[:, :40])
    assert not torch.equal(o[:, 40:], o2[:, 40:])
    assert not math.isnan(o.sum().item())

"""Shared fixtures of the nsa Python tests: seeding and random NSA inputs."""

import pytest
import torch

import nsa


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state, so failures reproduce."""
    torch.manual_seed(0)


@pytest.fixture
def make_inputs():
    """A factory of keyword arguments for ``nsa.nsa_attention``.

    ``make_inputs(cfg, T, HQ=4, HKV=2, Dk=8, Dv=6, B=1, mode='linear',
    per_branch=True, pe=True, dtype=torch.float64, requires_grad=False)``
    returns q, k, v, g, the per-branch K/V when asked, and the compressor
    parameters of ``mode`` (``W`` scaled so compressed keys stay O(1)).
    """

    def make(cfg, T, HQ=4, HKV=2, Dk=8, Dv=6, B=1, mode="linear", per_branch=True, pe=True,
             dtype=torch.float64, requires_grad=False):
        def rand(*shape, scale=1.0):
            return (torch.randn(*shape, dtype=torch.float64) * scale).to(dtype)

        args = dict(q=rand(B, T, HQ, Dk), k=rand(B, T, HKV, Dk), v=rand(B, T, HKV, Dv),
                    g=torch.rand(B, T, HQ, 3, dtype=torch.float64).to(dtype))
        if per_branch:
            args.update(k_slc=rand(B, T, HKV, Dk), v_slc=rand(B, T, HKV, Dv),
                        k_win=rand(B, T, HKV, Dk), v_win=rand(B, T, HKV, Dv))
        if mode == "linear":
            args.update(w_k=rand(HKV, cfg.l * Dk, Dk, scale=(cfg.l * Dk) ** -0.5),
                        w_v=rand(HKV, cfg.l * Dv, Dv, scale=(cfg.l * Dv) ** -0.5))
        elif mode == "mlp":
            hidden = 5
            for side, D in (("k", Dk), ("v", Dv)):
                args[f"w_{side}"] = nsa.MLPWeights(
                    rand(HKV, cfg.l * D, hidden, scale=(cfg.l * D) ** -0.5), rand(HKV, hidden),
                    rand(HKV, hidden, D, scale=hidden ** -0.5), rand(HKV, D))
        if pe and mode != "mean":
            args.update(pe_k=rand(HKV, cfg.l, Dk, scale=0.5), pe_v=rand(HKV, cfg.l, Dv, scale=0.5))
        if requires_grad:
            for value in args.values():
                for t in (value if isinstance(value, tuple) else (value,)):
                    t.requires_grad_(True)
        return dict(args, compress=mode, config=cfg)

    return make

"""nsa.NSAConfig: the paper's defaults and one rejection per rule."""

import dataclasses
import math

import pytest

from nsa import NSAConfig


def test_defaults_are_the_papers():
    cfg = NSAConfig()
    assert (cfg.l, cfg.d, cfg.l_sel, cfg.n, cfg.init, cfg.local, cfg.w, cfg.scale) == \
        (32, 16, 64, 16, 1, 2, 512, None)
    assert cfg.softmax_scale(128) == 1 / math.sqrt(128)
    assert NSAConfig(scale=0.5).softmax_scale(128) == 0.5


@pytest.mark.parametrize("kwargs,match", [
    (dict(l=24), r"d must divide l \(d = 16, l = 24\)"),
    (dict(l=32, d=16, l_sel=72), r"d must divide l_sel \(d = 16, l_sel = 72\)"),
    (dict(l=128), r"l <= l_sel is required \(l = 128, l_sel = 64\)"),
    (dict(n=2), r"n >= init \+ local is required \(n = 2, init = 1, local = 2\)"),
    (dict(local=0), r"NSAConfig.local must be >= 1 \(the block holding the query is always "
                    r"selected\), got 0"),
    (dict(init=-1), r"NSAConfig.init must be >= 0, got -1"),
    (dict(w=0), r"NSAConfig.w must be positive, got 0"),
    (dict(l=0), r"NSAConfig.l must be positive, got 0"),
    (dict(d=-16), r"NSAConfig.d must be positive, got -16"),
    (dict(n=0), r"NSAConfig.n must be positive, got 0"),
    (dict(l_sel=0), r"NSAConfig.l_sel must be positive, got 0"),
    (dict(w=512.0), r"NSAConfig.w must be an int, got float 512.0"),
    (dict(n=True), r"NSAConfig.n must be an int, got bool True"),
    (dict(w=2**31), r"NSAConfig.w = 2147483648 must fit in int32"),
    (dict(scale=0.0), r"NSAConfig.scale must be finite and positive, got 0.0"),
    (dict(scale=-1.0), r"NSAConfig.scale must be finite and positive, got -1.0"),
    (dict(scale=math.inf), r"NSAConfig.scale must be finite and positive, got inf"),
    (dict(scale=math.nan), r"NSAConfig.scale must be finite and positive, got nan"),
    (dict(scale="0.1"), r"NSAConfig.scale must be a float or None, got str '0.1'"),
])
def test_each_rule_is_enforced(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NSAConfig(**kwargs)


def test_edge_configurations_are_valid():
    NSAConfig(l=8, d=8, l_sel=8, n=3, init=0, local=3, w=1)  # l = l' = d, n = init + local
    NSAConfig(l=16, d=4, l_sel=16, n=2, init=1, local=1, w=1, scale=1)


def test_config_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        NSAConfig().n = 4


@pytest.mark.parametrize("T,Nc,blocks", [(0, 0, 0), (1, 0, 1), (31, 0, 1), (32, 1, 1),
                                         (47, 1, 1), (48, 2, 1), (65, 3, 2), (100, 5, 2)])
def test_derived_counts(T, Nc, blocks):
    """Nc(T) = 0 if T < l else (T - l)//d + 1; selection blocks ceil(T / l')."""
    cfg = NSAConfig()
    assert cfg.num_compressed(T) == Nc
    assert cfg.num_selection_blocks(T) == blocks

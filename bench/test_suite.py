"""CPU tests of bench/suite.py's logic (no GPU): the adaptive repeat count,
the kernel configuration, one measurement's phases and errors with a fake
timer and a CPU attention, and the table and plot series."""

import os
import sys
import types

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nsa_bench  # noqa: E402
import suite  # noqa: E402


def test_repeats_fit_the_budget():
    assert suite.repeats_for(10.0, 2.0, 20, 3) == 20      # 200 would fit: capped
    assert suite.repeats_for(250.0, 2.0, 20, 3) == 8      # 2000 ms / 250 ms
    assert suite.repeats_for(3000.0, 2.0, 20, 3) == 3     # never fewer than asked
    assert suite.repeats_for(3000.0, 2.0, 20, 1) == 1
    assert suite.repeats_for(0.0, 2.0, 20, 3) == 20


def test_kernel_config_is_specs_paper_d128():
    cfg = suite.kernel_config(131072)
    assert {k: cfg[k] for k in nsa_bench.CONFIGS["paper-d128"]} == \
        nsa_bench.CONFIGS["paper-d128"]
    assert (cfg["T"], cfg["dtype"], cfg["compress"], cfg["pe"], cfg["kv"]) == (
        131072, "bf16", "linear", True, "per-branch")
    assert (cfg["l"], cfg["d"], cfg["l_sel"], cfg["n"], cfg["w"]) == (32, 16, 64, 16, 512)


def _fake_bench(calls, fail=None):
    """bench.py's interface on the CPU: float32 inputs, a causal attention,
    a timer that runs each piece once, a peak of 1.5 MiB."""
    def make_inputs(cfg, T, requires_grad):
        shapes = [(cfg["B"], cfg["HQ"], T, cfg["Dk"]), (cfg["B"], cfg["HQ"], T, cfg["Dk"]),
                  (cfg["B"], cfg["HQ"], T, cfg["Dv"])]
        return [torch.randn(*s, requires_grad=requires_grad) for s in shapes]

    def sdpa_call(backend):
        def call(q, k, v):
            calls.append(("call", torch.is_grad_enabled(), q.requires_grad))
            if fail:
                raise RuntimeError(fail + "\nsecond line")
            s = q @ k.transpose(-1, -2)
            mask = torch.ones(s.shape[-2:], dtype=torch.bool).triu(1)
            return s.masked_fill(mask, float("-inf")).softmax(-1) @ v
        return call

    def time_pieces(pieces, warmup, repeats):
        calls.append(("timed", repeats))
        for _, fn in pieces:
            fn()
        return dict(ms=4.0, host_ms=0.25, lead_short=1, pieces=None)

    def peak_mb(fn):
        fn()
        return 1.5
    return types.SimpleNamespace(make_inputs=make_inputs, sdpa_call=sdpa_call,
                                 SDPA_BACKENDS={"sdpa_cudnn": 1, "sdpa_flash": 2},
                                 time_pieces=time_pieces, peak_mb=peak_mb)


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(suite, "PAPER_D128", dict(suite.PAPER_D128, HQ=2, HKV=2, Dk=4, Dv=4))
    # d_o: float32 on the CPU, as the fake attention's output
    rand = torch.rand
    monkeypatch.setattr(torch, "randn", lambda *shape, device=None, dtype=None, **kwargs:
                        rand(*shape, **kwargs))
    return types.SimpleNamespace(budget_s=1e6, repeats=7, min_repeats=2, seed=0)


@pytest.mark.parametrize("phase,grad_mode", [("fwd", False), ("bwd", True), ("fwd_bwd", True)])
def test_measure_phases(small, phase, grad_mode):
    calls = []
    record = suite.measure("sdpa_flash", 16, phase, small, _fake_bench(calls))
    assert record.pop("first_ms") >= 0
    assert record == dict(impl="sdpa_flash", config="paper-d128", phase=phase, B=1, T=16,
                          ms=4.0, repeats=7, host_ms=0.25, peak_mem_mb=1.5,
                          notes="1 of 7 calls took the host longer to enqueue than the "
                                "GPU lead")
    forward_calls = [c for c in calls if c[0] == "call"]
    assert all(c[1:] == (grad_mode, grad_mode) for c in forward_calls)
    # bwd keeps one graph (one forward); the others run a forward per call:
    # the warm-up (which measures the peak memory) and the timed call(s).
    assert len(forward_calls) == (1 if phase == "bwd" else 2)
    assert ("timed", 7) in calls


def test_measure_records_errors(small):
    record = suite.measure("sdpa_cudnn", 16, "fwd_bwd", small,
                           _fake_bench([], fail="CUDA out of memory. Tried to allocate 4 GiB"))
    assert record == dict(impl="sdpa_cudnn", config="paper-d128", phase="fwd_bwd", B=1, T=16,
                          error="CUDA out of memory. Tried to allocate 4 GiB")


def test_predicted_time_is_quadratic_in_T():
    assert suite.predicted_ms(None, 8192) is None
    assert suite.predicted_ms(dict(T=8192, error="out of memory"), 16384) is None
    assert suite.predicted_ms(dict(T=8192, ms=100.0), 32768) == 1600.0


def test_table_and_series():
    def rec(impl, T, phase, ms, mem=100.0):
        return dict(impl=impl, config="paper-d128", phase=phase, B=1, T=T, ms=ms,
                    peak_mem_mb=mem)
    records = [rec("nsa", 8192, "fwd", 12.345), rec("sdpa_cudnn", 8192, "fwd", 1.8),
               rec("nsa", 8192, "fwd_bwd", 40.0, 2048.4),
               rec("sdpa_cudnn", 8192, "fwd_bwd", 7.7, 512.0),
               dict(impl="nsa", config="paper-d128", phase="fwd", B=1, T=16384,
                    error="no prebuilt GPU kernels")]
    lines = suite.markdown_table(records, [8192, 16384])
    assert lines[0].startswith("| T | nsa fwd ms | sdpa_cudnn fwd ms | sdpa_flash fwd ms | "
                               "nsa bwd ms |")
    assert lines[0].endswith("| nsa fwd_bwd MiB | sdpa_cudnn fwd_bwd MiB | "
                             "sdpa_flash fwd_bwd MiB |")
    assert lines[2] == ("| 8192 | 12.3 | 1.80 | - | - | - | - | 40.0 | 7.70 | - | 2048 | 512 "
                        "| - |")
    assert lines[3].startswith("| 16384 | error | - |")
    assert suite.series(records, "nsa", "fwd") == [(8192, 12.345)]
    assert suite.series(records, "nsa", "fwd_bwd", "peak_mem_mb") == [(8192, 2048.4)]

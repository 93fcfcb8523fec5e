"""CPU tests of bench.py's NSA path and bench/nsa_bench.py (no GPU needed).

    /usr/bin/python3 -m pytest -q bench/test_bench.py

The FLOP model is checked against the pure-PyTorch reference's own masks
and selection, measure_nsa end to end against a real build and the real
runtime's argument checks (launches validated, not run), and bench.py's
argument defaults and tables on synthetic records.
"""

import argparse
import json
import os
import sys
import types

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import nsa_bench  # noqa: E402

fc, fr, rt = nsa_bench._gpu_modules()
import build_kernels  # noqa: E402  (on sys.path through forward_check)
from nsa import reference as ref  # noqa: E402

RUNTIME_LIB = os.path.join(ROOT, "build", "lib", "libnsa_runtime.so")
BIN = os.path.join(ROOT, "build", "bin")


def _full(cfg):
    return dict(cfg, G=cfg["HQ"] // cfg["HKV"], args=build_kernels.arg_names(cfg))


# --------------------------------------------------------------------------
# The FLOP model
# --------------------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    dict(T=300, l=16, d=8, l_sel=16, n=6, init=1, local=2, w=40),
    dict(T=257, l=32, d=16, l_sel=64, n=3, init=1, local=1, w=100),
    dict(T=31, l=32, d=16, l_sel=64, n=16, init=1, local=2, w=512),  # no compressed token
    dict(T=200, l=16, d=16, l_sel=16, n=4, init=0, local=1, w=1),
])
def test_attended_pairs_match_reference_masks(fields):
    cfg = _full(build_kernels._cfg("model", B=1, HQ=4, HKV=2, Dk=16, Dv=16, **fields))
    q, k_cmp, k_slc, k_win, v_cmp, v_slc, v_win, g, w_k, w_v, pe_k, pe_v = \
        fc.make_inputs(cfg, "cpu", seed=1)
    c = fr.nsa_config(cfg)
    T = cfg["T"]
    kc = ref.compress(k_cmp.float(), c, w_k.float(), pe_k.float(), "linear")
    vc = ref.compress(v_cmp.float(), c, w_v.float(), pe_v.float(), "linear")
    p_cmp, p_slc, p_win = nsa_bench.attended_pairs(cfg)
    assert p_cmp == int(ref._compressed_visibility(T, kc.shape[1], c, "cpu").sum())
    _, lse = ref.compressed_attention(q.float(), kc, vc, c)
    idx = ref.select_blocks(q.float(), kc, lse, c).long()  # [B, T, HKV, n]
    t = torch.arange(T)
    for h in range(cfg["HKV"]):
        keys = 0
        for pos in range(T):
            blocks = idx[0, pos, h]
            blocks = blocks[blocks >= 0]
            keys += int(((t // cfg["l_sel"]).unsqueeze(0) == blocks.unsqueeze(1))
                        .any(0)[: pos + 1].sum())
        assert keys == p_slc, f"KV head {h}"
    offset = t.unsqueeze(1) - t.unsqueeze(0)
    assert p_win == int(((offset >= 0) & (offset < cfg["w"])).sum())


def test_flop_model_at_paper_scale_matches_docs():
    cfg = build_kernels._cfg("paper", T=65536, **build_kernels.PAPER_D128)
    flops = nsa_bench.flop_model(cfg)
    assert list(flops) == list(nsa_bench.PIECES)
    # docs/performance.md: 4.4 + 2.2 + 2.2 + 1.1 + 0.03 = ~9.9 TFLOP.
    assert flops["compressed_attention"] == pytest.approx(4.4e12, rel=0.01)
    assert flops["select_blocks"] == pytest.approx(2.2e12, rel=0.01)
    assert flops["selected_attention"] == pytest.approx(2.2e12, rel=0.05)
    assert flops["window_attention"] == pytest.approx(1.1e12, rel=0.01)
    assert flops["compress (k)"] + flops["compress (v)"] == pytest.approx(0.034e12, rel=0.02)
    assert sum(flops.values()) == pytest.approx(9.9e12, rel=0.02)


# --------------------------------------------------------------------------
# Plans: labels, bytes, builds
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kv", ["per-branch", "shared"])
def test_launch_labels_and_bytes(kv):
    cfg = _full(build_kernels._cfg("labels", T=100, HQ=8, HKV=2, Dk=32, Dv=16, kv=kv))
    plan, _ = fc.synthetic_plan(cfg)
    assert nsa_bench.launch_labels(plan, cfg) == list(nsa_bench.LABELS)
    nbytes = nsa_bench.launch_bytes(plan)
    Nc = (100 - 32) // 16 + 1
    # selected + combine: q [1,100,8,32], k [1,100,2,32], v [1,100,2,16], gates
    # [1,100,8,3], o_cmp and o_win [1,100,8,16] bf16, idx [1,100,2,n] i32 in; o_slc and
    # the output [1,100,8,16] bf16, lse_slc [1,100,8] f32 out.
    assert nbytes[-1] == (2 * (100 * 8 * 32 + 100 * 2 * 32 + 100 * 2 * 16 + 100 * 8 * 3
                               + 4 * 100 * 8 * 16) + 4 * (100 * 2 * cfg["n"] + 100 * 8))
    # compress (k): k [1,100,2,32], W [2,32*32,32], PE [2,32,32], kc [1,Nc,2,32].
    assert nbytes[0] == 2 * (100 * 2 * 32 + 2 * 1024 * 32 + 2 * 32 * 32 + Nc * 2 * 32)


def test_launch_labels_number_repeats():
    cfg = _full(build_kernels._cfg("rep", T=100, HQ=8, HKV=2, Dk=32, Dv=16))
    plan, _ = fc.synthetic_plan(cfg)
    plan["launches"].append(dict(plan["launches"][-1]))
    assert nsa_bench.launch_labels(plan, cfg)[-2:] == ["selected_attention + combine",
                                                       "selected_attention + combine#1"]


def _fake_build(root, name, **fields):
    cfg = _full(build_kernels._cfg(name, **fields))
    os.makedirs(os.path.join(root, name))
    for file, obj in (("config.json", cfg), ("plan.json", {})):
        with open(os.path.join(root, name, file), "w") as f:
            json.dump(obj, f)


def test_find_builds(tmp_path):
    root = str(tmp_path)
    for T in (8192, 8191, 16384):
        _fake_build(root, f"paper-d128-t{T}", T=T, **build_kernels.PAPER_D128)
    # Same T, other blocks: not a benchmark build.
    _fake_build(root, "a-odd-blocks", T=8192, l=16, **build_kernels.PAPER_D128)
    # Same shape and blocks under another name: the canonical name wins.
    _fake_build(root, "a-copy", T=16384, **build_kernels.PAPER_D128)
    os.makedirs(os.path.join(root, "empty"))
    builds = nsa_bench.find_builds(root, "paper-d128", [8192, 16384, 32768])
    assert builds == {8192: os.path.join(root, "paper-d128-t8192"),
                      16384: os.path.join(root, "paper-d128-t16384")}
    assert nsa_bench.find_builds(root, "paper-d192", [8192]) == {}
    assert nsa_bench.find_builds(os.path.join(root, "missing"), "paper-d128", [8192]) == {}


# --------------------------------------------------------------------------
# measure_nsa on a real build, launches checked by the runtime instead of run
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    if not (os.path.isfile(RUNTIME_LIB) and os.access(os.path.join(BIN, "nsa-opt"), os.X_OK)):
        pytest.skip("needs build/ (nsa-opt, nsa-translate, libnsa_runtime.so)")
    out = str(tmp_path_factory.mktemp("kernels"))
    cfg = build_kernels.all_configs()["t1000-g4-dk128-dv64-bf16-linpe-branch"]
    error = build_kernels.build(cfg, out, BIN, False, RUNTIME_LIB)
    if error:
        pytest.fail(error)
    return os.path.join(out, cfg["name"])


@pytest.fixture(scope="module")
def grad_build(tmp_path_factory):
    """A package build (forward and backward plans) of a small configuration."""
    if not (os.path.isfile(RUNTIME_LIB) and os.access(os.path.join(BIN, "nsa-opt"), os.X_OK)):
        pytest.skip("needs build/ (nsa-opt, nsa-translate, libnsa_runtime.so)")
    from nsa import build_kernels as pbk
    cfg = pbk.make_config(B=1, T=200, HQ=8, HKV=2, Dk=64, Dv=64)
    return pbk.build(cfg, str(tmp_path_factory.mktemp("kernels")), bin_dir=BIN,
                     runtime_lib=RUNTIME_LIB)


def _plans_checked_not_run(monkeypatch, leave_poison=False):
    """Plan.run and Manifest.launch with every runtime check and no launch;
    buffers zeroed (the output left poisoned with ``leave_poison``). Returns the
    list of checked launches."""
    checked = []

    def run(self, inputs, stream=None, config=None):  # Plan.run without the is_cuda check
        values = dict(self.bind(inputs))
        buffers = self.allocate()
        for name, t in buffers.items():
            t.fill_(float("nan") if leave_poison and name == self.outputs[0] else 0)
        values.update(buffers)
        self.launch(values, 0, config)  # a raw stream: no CUDA here
        return values

    def launch(self, kernel, tensors, stream=None, config=None):  # every runtime check
        checked.append((kernel, self.plan_launch(kernel, tensors, config)))

    monkeypatch.setattr(rt.Plan, "run", run)
    monkeypatch.setattr(rt.Manifest, "launch", launch)
    return checked


def _time_pieces(pieces, warmup, repeats, split=False):
    for _, fn in pieces:
        fn()
    return dict(ms=2.0, host_ms=0.5, lead_short=0,
                pieces={label: 0.25 for label, _ in pieces} if split else None)


def _peak_mb(fn):
    fn()
    return 12.34


@pytest.mark.parametrize("leave_poison", [False, True])
def test_measure_nsa_on_cpu(small_build, monkeypatch, leave_poison):
    checked = _plans_checked_not_run(monkeypatch, leave_poison)
    args = argparse.Namespace(seed=0, warmup=1, repeats=1)
    record = nsa_bench.measure_nsa(small_build, rt.Runtime(RUNTIME_LIB), "paper-d128", args,
                                   _time_pieces, _peak_mb, device="cpu")
    assert "error" not in record, record
    assert len(checked) == 3 * 6  # first run, whole, split
    assert record["impl"] == "nsa" and record["phase"] == "fwd" and record["T"] == 1000
    assert [k["label"] for k in record["kernels"]] == list(nsa_bench.LABELS)
    assert record["kernels_sum_ms"] == pytest.approx(6 * 0.25)
    assert record["ms"] == 2.0 and record["peak_mem_mb"] == 12.3
    cfg, _, _ = nsa_bench.describe(small_build)
    total = sum(nsa_bench.flop_model(cfg).values())
    assert record["flops"] == total
    assert record["tflops"] == round(total / 2e-3 / 1e12, 1)
    assert record["written"] is not leave_poison
    assert ("POISON LEFT in selected_attention0.2" in record["notes"]) is leave_poison
    json.dumps(record)  # the record goes into the result file as is


def test_measure_nsa_backward_takes_the_forwards_intermediates(grad_build, monkeypatch):
    """The bwd phase runs the forward plan once for its saved intermediates
    (the backward plan's inputs accept them), then times the backward plan,
    in which no forward kernel runs again."""
    checked = _plans_checked_not_run(monkeypatch)
    args = argparse.Namespace(seed=0, warmup=1, repeats=1)
    record = nsa_bench.measure_nsa(grad_build, rt.Runtime(RUNTIME_LIB), "paper-d128", args,
                                   _time_pieces, _peak_mb, device="cpu", phase="bwd")
    assert "error" not in record, record
    cfg, plan, launches = nsa_bench.describe(grad_build, "bwd")
    forward_kernels = [k for k, _ in checked if not k.startswith("nsa_layer_grad")]
    assert len(forward_kernels) == 6  # one forward run, before the backward's three
    assert len(checked) == 6 + 3 * len(plan["launches"])
    assert not set(nsa_bench.LABELS) & {info["label"] for info in launches}
    assert "saved intermediates" in record["notes"]


def test_measure_nsa_reports_refusals(small_build, monkeypatch):
    def launch(self, kernel, tensors, stream=None, config=None):
        raise rt.NSARuntimeError(3, "NSA_ERROR_SHAPE_MISMATCH", "bad shape", f"kernel {kernel}")
    monkeypatch.setattr(rt.Plan, "run", lambda self, inputs, stream=None, config=None:
                        self.launch(dict(self.bind(inputs), **self.allocate()), 0, config))
    monkeypatch.setattr(rt.Manifest, "launch", launch)
    args = argparse.Namespace(seed=0, warmup=1, repeats=1)
    record = nsa_bench.measure_nsa(small_build, rt.Runtime(RUNTIME_LIB), "paper-d128", args,
                                   None, lambda fn: fn(), device="cpu")
    assert record["error"].startswith("kernel nsa_layer_k0: NSA_ERROR_SHAPE_MISMATCH")
    assert "ms" not in record


# --------------------------------------------------------------------------
# bench.py (imported with a stand-in for torch.nn.attention on old torch)
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bench():
    try:
        import torch.nn.attention  # noqa: F401  (torch >= 2.3)
    except ImportError:
        stub = types.ModuleType("torch.nn.attention")
        stub.SDPBackend = types.SimpleNamespace(CUDNN_ATTENTION=1, FLASH_ATTENTION=2)
        stub.sdpa_kernel = None
        sys.modules["torch.nn.attention"] = stub
    import bench as module
    return module


def test_bench_arguments(bench):
    args = bench.parse_args([])
    assert args.phases == ["fwd", "bwd", "fwd_bwd"] and args.nsa_kernels is None
    assert args.impls == ["sdpa_cudnn", "sdpa_flash"] and args.lead_ms == bench.LEAD_MS
    args = bench.parse_args(["--config", "paper-d128", "--nsa-kernels", ".gpu/kernels"])
    assert args.phases == ["fwd"] and args.nsa_kernels == ".gpu/kernels"
    args = bench.parse_args(["--nsa-kernels", "k", "--phases", "fwd", "bwd", "--impls",
                             "--T", "8192", "--lead-ms", "0"])
    assert args.phases == ["fwd", "bwd"] and args.impls == [] and args.T == [8192]
    assert args.lead_ms == 0
    with pytest.raises(SystemExit):
        bench.parse_args(["--config", "nope"])


def test_bench_tables(bench):
    def dense(impl, T, ms):
        return dict(impl=impl, config="paper-d128", phase="fwd", B=1, T=T, ms=ms)
    kernels = [dict(label=label, kernel=f"k{i}", ms=1.0, flops=1e9 if i else None,
                    bytes=10**9, gbps=1000.0, **({"tflops": 1.0} if i else {}))
               for i, label in enumerate(nsa_bench.LABELS)]
    records = [dense("sdpa_cudnn", 8192, 1.8), dense("sdpa_flash", 8192, 3.3),
               dict(dense("nsa", 8192, 0.9), tflops=500.0, flops=6e9, kernels=kernels,
                    kernels_sum_ms=6.0, build="paper-d128-t8192"),
               dense("sdpa_cudnn", 16384, 7.1),
               dict(impl="nsa", config="paper-d128", phase="fwd", B=1, T=16384,
                    error="no paper-d128 build for T=16384")]
    text = "\n".join(bench.markdown_tables(records, [8192, 16384]))
    assert "| 8192 | 0.90 | 1.80 | 3.30 | 2.00x | 3.67x | 500.0 |" in text
    assert "| 16384 | - (no paper-d128 build for T=16384) | 7.10 | - | - | - | - |" in text
    assert "| compress (k) | 1.000 | 16.7% | - | - | 1000.0 |" in text
    assert "| selected_attention + combine | 1.000 | 16.7% | 1.0 | 1.0 | 1000.0 |" in text
    assert "| sum of launches | 6.000 |" in text
    assert "| whole fwd | 0.900 | | 6.0 | 500.0 | |" in text
    assert "T = 16384" not in text  # no breakdown without kernels


def test_time_pieces_with_fake_events(bench, monkeypatch):
    """The timer's bookkeeping on a simulated stream: each piece advances a
    clock, events read it; the lead spins before the start event."""
    clock = {"now": 0.0}
    sleeps = []

    class Event:
        def __init__(self, enable_timing=False):
            self.at = None

        def record(self):
            self.at = clock["now"]

        def elapsed_time(self, other):
            return other.at - self.at

    def sleep(cycles):
        sleeps.append(cycles)
        clock["now"] += cycles / 1000.0  # 1000 cycles per ms
    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(torch.cuda, "_sleep", sleep, raising=False)
    monkeypatch.setattr(bench, "_cycles_per_ms", None)
    monkeypatch.setattr(bench, "LEAD_MS", 2.0)
    calls = []

    def piece(label, ms):
        def fn():
            calls.append(label)
            clock["now"] += ms
        return (label, fn)
    pieces = [piece("a", 1.0), piece("b", 2.0), piece("a", 0.5)]
    whole = bench.time_pieces(pieces, warmup=2, repeats=5)
    assert whole["ms"] == pytest.approx(3.5) and whole["pieces"] is None
    assert calls == ["a", "b", "a"] * 7 and whole["lead_short"] == 0
    assert bench._cycles_per_ms == pytest.approx(1000.0)  # calibrated on the fake clock
    assert sleeps[-1] == 2000  # 2 ms of lead before each timed call
    split = bench.time_pieces(pieces, warmup=0, repeats=3, split=True)
    assert split["pieces"] == {"a": pytest.approx(1.5), "b": pytest.approx(2.0)}
    assert split["ms"] == pytest.approx(3.5)
    assert bench.time_ms(pieces[1][1], 0, 3) == pytest.approx(2.0)

"""The GPU backend: kernel directories, its errors, the build CLI, and (with CUDA) runs.

CPU-only machines run everything up to the launch: matching config.json
files, the messages of every missing piece, ``python3 -m nsa.build_kernels``
(through the real compiler when ``$NSA_BIN_DIR`` names it, as
test/Python/python.test does), and the runtime's checks of the plan it
writes. The tests at the end run the kernels and compare with the reference
when CUDA, the runtime library and kernels (prebuilt on ``$NSA_KERNEL_PATH``,
or built here) are all present, and are skipped otherwise.
"""

import ctypes
import json
import math
import os
import shlex
import shutil
import subprocess
import sys

import pytest
import torch

import nsa
from nsa import NSAConfig, _gpu, _runtime
from nsa import build_kernels as bk

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(nsa.__file__)))
BIN_DIR = os.environ.get(bk.BIN_DIR_ENV)


def _tools_present():
    try:
        bk.find_tools(BIN_DIR)
        return True
    except bk.BuildError:
        return False


needs_compiler = pytest.mark.skipif(not _tools_present(),
                                    reason="nsa-opt/nsa-translate not built ($NSA_BIN_DIR)")


def _runtime_library():
    """The runtime beside the compiler's tools (build/lib), else the package's."""
    candidates = [os.path.join(BIN_DIR, "..", "lib", _gpu.LIBRARY_NAME)] if BIN_DIR else []
    candidates.append(bk.default_runtime_lib())
    return next((os.path.abspath(p) for p in candidates if p and os.path.isfile(p)), None)


@pytest.fixture
def search(tmp_path, monkeypatch):
    """An empty search path: $NSA_KERNEL_PATH = tmp/path, package dir = tmp/package."""
    (tmp_path / "path").mkdir()
    (tmp_path / "package").mkdir()
    monkeypatch.setenv(_gpu.KERNEL_PATH_ENV, str(tmp_path / "path"))
    monkeypatch.setattr(_gpu, "PACKAGE_KERNEL_DIR", str(tmp_path / "package"))
    _gpu._lookups.clear()
    return tmp_path


def _fake_build(root, cfg, files=("plan.json", "manifest.json")):
    """A kernel directory with cfg's config.json and placeholder compiler output."""
    directory = os.path.join(str(root), cfg["name"])
    os.makedirs(directory)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(bk.config_json(cfg), f)
    for name in files:
        open(os.path.join(directory, name), "w").close()
    return directory


BASE = dict(B=2, T=100, HQ=8, HKV=2, Dk=64, Dv=32, dtype="bf16", compress="linear", pe=True,
            kv="per-branch")


def _wanted(**changes):
    return bk.make_config(**dict(BASE, **changes))


# --------------------------------------------------------------------------
# Matching kernel directories
# --------------------------------------------------------------------------

DECOYS = dict(B=1, T=101, HQ=4, HKV=4, Dk=32, Dv=64, dtype="f16", l=16, d=8, l_sel=32, n=8,
              init=0, local=1, w=256, scale=0.5, kv="shared")


def test_each_field_must_match(search):
    """One decoy per field, each differing from the call in that field alone."""
    wanted = _wanted()
    for field, value in DECOYS.items():
        _fake_build(search / "path", bk.make_config(name=f"decoy-{field}",
                                                    **dict(BASE, **{field: value})))
    _fake_build(search / "path", bk.make_config(name="decoy-mean",
                                                **dict(BASE, compress="mean", pe=False)))
    _fake_build(search / "path", bk.make_config(name="decoy-no-pe", **dict(BASE, pe=False)))
    assert _gpu.find_kernel_dir(wanted) == (None, [])
    good = _fake_build(search / "path", bk.make_config(name="zz-good", **BASE))
    assert _gpu.find_kernel_dir(wanted) == (good, [])


def test_scale_is_compared_resolved(search):
    """scale=None means 1/sqrt(Dk): either spelling serves the other."""
    explicit = _fake_build(search / "path",
                           bk.make_config(name="explicit", **dict(BASE, scale=0.125)))
    assert _gpu.find_kernel_dir(_wanted())[0] == explicit          # 1/sqrt(64)
    assert _gpu.find_kernel_dir(_wanted(scale=0.125 * (1 + 1e-9)))[0] == explicit
    assert _gpu.find_kernel_dir(_wanted(scale=0.126))[0] is None


def test_shared_call_prefers_shared_kernels_then_per_branch(search):
    per_branch = _fake_build(search / "path", bk.make_config(name="a-branch", **BASE))
    assert _gpu.find_kernel_dir(_wanted(kv="shared"))[0] == per_branch
    shared = _fake_build(search / "path", bk.make_config(name="b-shared",
                                                         **dict(BASE, kv="shared")))
    assert _gpu.find_kernel_dir(_wanted(kv="shared"))[0] == shared
    # Per-branch K/V cannot run on shared kernels.
    os.remove(os.path.join(per_branch, "config.json"))
    assert _gpu.find_kernel_dir(_wanted())[0] is None


def test_search_order_and_directory_entries(search, monkeypatch):
    """$NSA_KERNEL_PATH entries in order (an entry may be a kernel directory), then
    the package's nsa/kernels."""
    cfg = bk.make_config(**BASE)
    in_package = _fake_build(search / "package", cfg)
    assert _gpu.find_kernel_dir(cfg)[0] == in_package
    first, second = search / "first", search / "second"
    first.mkdir()
    second.mkdir()
    in_second = _fake_build(second, cfg)
    monkeypatch.setenv(_gpu.KERNEL_PATH_ENV, f"{first}::{second}")
    assert _gpu.kernel_search_path() == [str(first), str(second), str(search / "package")]
    assert _gpu.find_kernel_dir(cfg)[0] == in_second
    in_first = _fake_build(first, cfg)
    assert _gpu.find_kernel_dir(cfg)[0] == in_first
    monkeypatch.setenv(_gpu.KERNEL_PATH_ENV, in_second)  # a kernel directory itself
    assert _gpu.find_kernel_dir(cfg)[0] == in_second


def test_incomplete_and_broken_directories_are_passed_over(search):
    cfg = bk.make_config(**BASE)
    verifier_only = _fake_build(search / "path", dict(cfg, name="a-mlir-only"), files=())
    broken = search / "path" / "b-broken"
    broken.mkdir()
    (broken / "config.json").write_text("{ not json")
    directory, notes = _gpu.find_kernel_dir(cfg)
    assert directory is None
    assert notes == [f"{verifier_only} matches but lacks plan.json, manifest.json "
                     f"(an --mlir-only or failed build?)",
                     f"{broken}/config.json is not a JSON object"]
    good = _fake_build(search / "path", dict(cfg, name="c-good"))
    assert _gpu.find_kernel_dir(cfg)[0] == good


def test_wanted_config_from_tensors():
    q = torch.zeros(2, 100, 8, 64, dtype=torch.float16)
    v = torch.zeros(2, 100, 2, 32, dtype=torch.float16)
    cfg = NSAConfig(l=16, d=8, l_sel=32, n=8, init=2, local=2, w=100, scale=0.1)
    wanted = _gpu.wanted_config(q, v, cfg, "mean", False, "shared")
    assert wanted == bk.make_config(B=2, T=100, HQ=8, HKV=2, Dk=64, Dv=32, dtype="f16",
                                    l=16, d=8, l_sel=32, n=8, init=2, local=2, w=100, scale=0.1,
                                    compress="mean", pe=False, kv="shared")
    with pytest.raises(bk.BuildError, match=r"compress='mlp' has no GPU kernels"):
        _gpu.wanted_config(q, v, cfg, "mlp", False, "shared")


# --------------------------------------------------------------------------
# Errors of nsa_attention(..., backend='gpu')
# --------------------------------------------------------------------------

CFG = NSAConfig(l=8, d=4, l_sel=16, n=3, init=1, local=1, w=8)


def _call(make_inputs, **kwargs):
    a = make_inputs(CFG, 20, HQ=4, HKV=2, Dk=16, Dv=16, dtype=torch.bfloat16, **kwargs)
    return nsa.nsa_attention(**a, backend="gpu")


def test_no_match_names_the_configuration_and_the_build_command(make_inputs, search):
    with pytest.raises(nsa.GPUBackendUnavailable) as caught:
        _call(make_inputs, per_branch=False)
    message = str(caught.value)
    assert ("no prebuilt GPU kernels for this configuration (B=1 T=20 HQ=4 HKV=2 Dk=16 Dv=16 "
            "bf16, compress=linear with PE, shared K/V, l=8 d=4 l_sel=16 n=3 init=1 local=1 "
            "w=8 scale=1/sqrt(Dk)) in $NSA_KERNEL_PATH or " + str(search / "package")) in message
    command = message[message.index("python3 -m nsa.build_kernels"):]
    command = command[:command.index(". ")]
    assert command == (f"python3 -m nsa.build_kernels --out {search / 'path'} --B 1 --T 20 "
                       f"--HQ 4 --HKV 2 --Dk 16 --Dv 16 --dtype bf16 --compress linear --pe "
                       f"--kv shared --l 8 --d 4 --l-sel 16 --n 3 --init 1 --local 1 --w 8")
    # The command's options describe exactly the configuration that was asked for.
    args = bk._parser().parse_args(shlex.split(command)[3:])
    assert bk.make_config(B=args.B, T=args.T, HQ=args.HQ, HKV=args.HKV, Dk=args.Dk, Dv=args.Dv,
                          dtype=args.dtype, compress=args.compress, pe=args.pe, kv=args.kv,
                          scale=args.scale, **{k: getattr(args, k) for k in bk._BLOCK_FIELDS}) \
        == _gpu.wanted_config(torch.zeros(1, 20, 4, 16, dtype=torch.bfloat16),
                              torch.zeros(1, 20, 2, 16), CFG, "linear", True, "shared")


def test_build_command_spells_the_scale_and_defaults_to_the_package(monkeypatch):
    monkeypatch.delenv(_gpu.KERNEL_PATH_ENV, raising=False)
    command = bk.build_command(_wanted(scale=0.1, compress="mean", pe=False))
    assert command.startswith(f"python3 -m nsa.build_kernels --out {bk.package_kernel_dir()} ")
    assert command.endswith("--compress mean --no-pe --kv per-branch --l 32 --d 16 --l-sel 64 "
                            "--n 16 --init 1 --local 2 --w 512 --scale 0.1")


def test_mlp_compression_has_no_kernels(make_inputs, search):
    with pytest.raises(nsa.GPUBackendUnavailable,
                       match=r"compress='mlp' has no GPU kernels: the compiler's nsa.attention "
                             r"compresses with 'linear' or 'mean'"):
        _call(make_inputs, mode="mlp")


def test_gradients_need_a_backward_plan(make_inputs, search):
    """A forward-only directory serves inference, but not a call autograd
    will differentiate: that one names the backward plan and the build command."""
    wanted = _gpu.wanted_config(torch.zeros(1, 20, 4, 16, dtype=torch.bfloat16),
                                torch.zeros(1, 20, 2, 16), CFG, "linear", True, "per-branch")
    forward_only = _fake_build(search / "path", wanted)
    with pytest.raises(nsa.GPUBackendUnavailable) as caught:
        _call(make_inputs, requires_grad=True)
    message = str(caught.value)
    assert "no prebuilt GPU kernels with a backward plan (gradients are needed" in message
    assert (f"passed over: {forward_only} matches but has no backward plan (built with "
            f"--forward-only") in message
    assert "python3 -m nsa.build_kernels --out " in message and "--forward-only" not in \
        message[message.index("python3 -m nsa.build_kernels"):]
    with torch.no_grad():  # inference: the forward-only directory serves it
        with pytest.raises(nsa.GPUBackendUnavailable) as caught:
            _call(make_inputs, requires_grad=True)
    assert "no prebuilt GPU kernels" not in str(caught.value)
    assert _gpu.find_kernel_dir(wanted) == (forward_only, [])
    # config.json's backward, without its files, does not count either.
    with open(os.path.join(forward_only, "config.json"), "w") as f:
        json.dump(bk.config_json(wanted, backward=True), f)
    assert _gpu.find_kernel_dir(wanted, backward=True)[0] is None
    for name in ("plan_grad.json", "manifest_grad.json", "kernels_grad.ptx"):
        open(os.path.join(forward_only, name), "w").close()
    assert _gpu.find_kernel_dir(wanted, backward=True) == (forward_only, [])


def _fake_plans(monkeypatch, dtype=torch.float64):
    """The backend up to the launch, with _run computing each plan on the CPU:
    the forward plan as nsa.reference.forward (its saved intermediates are
    random placeholders, which the backward plan must receive unchanged), the
    backward plan as autograd of it with every plan input (k_cmp, k_slc, ...)
    an independent leaf, the way the compiled plan sees them. Returns the list
    of runs made."""
    runs, forwarded = [], {}
    dtypes = {"f32": torch.float32, "i32": torch.int32}

    def run(directory, runtime_path, by_meaning, device, backward=False):
        cfg = json.load(open(os.path.join(directory, "config.json")))
        args = cfg["backward"]["args"] if backward else cfg["args"]
        runs.append((os.path.basename(directory), backward))
        saved = [m for m in args if m in bk.SAVED_NAMES]
        assert saved == (list(bk.SAVED_NAMES) if backward else []), saved
        for m in saved:
            assert by_meaning[m].data_ptr() == forwarded[m].data_ptr(), m
        leaves = {m: by_meaning[m].detach().to(dtype).requires_grad_(m != "d_o")
                  for m in args if m not in saved}
        shared = cfg["kv"] == "shared"
        kv = {f"{s}_{b}": leaves[s if shared else f"{s}_{b}"]
              for s in ("k", "v") for b in ("cmp", "slc", "win")}
        with torch.enable_grad():
            o = nsa.reference.forward(
                leaves["q"], g=leaves["gates"], cfg=CFG, compress_mode=cfg["compress"],
                w_k=leaves.get("w_k"), w_v=leaves.get("w_v"), pe_k=leaves.get("pe_k"),
                pe_v=leaves.get("pe_v"), **kv)
            if not backward:  # plans return flat buffers
                types = bk.saved_types(cfg)
                forwarded.update(
                    (m, torch.randn(math.prod(types[m][0])).to(
                        dtypes.get(types[m][1], by_meaning["q"].dtype)))
                    for m in cfg["outputs"][1:])
                return [o.to(by_meaning["q"].dtype).flatten()] + [forwarded[m]
                                                                  for m in cfg["outputs"][1:]]
            inputs = [leaves[m] for m in cfg["args"]]
            grads = torch.autograd.grad(o, inputs, leaves["d_o"])
        return [g.to(by_meaning["q"].dtype).flatten() for g in grads]

    monkeypatch.setattr(_gpu, "_device_problems", lambda q: [])
    monkeypatch.setattr(_gpu, "_checked_runtime", lambda: ("fake-runtime", None))
    monkeypatch.setattr(_gpu, "_load_plan", lambda directory, runtime_path, backward=False: (
        json.load(open(os.path.join(directory, "config.json"))), None, None))
    monkeypatch.setattr(_gpu, "_run", run)
    return runs


@pytest.mark.parametrize("per_branch,kv", [(True, "per-branch"), (False, "shared"),
                                           (False, "per-branch")],
                         ids=["branch", "shared", "shared-on-branch-kernels"])
@pytest.mark.parametrize("mode", ["linear", "mean"])
def test_autograd_maps_every_gradient_to_its_argument(make_inputs, search, monkeypatch,
                                                      per_branch, kv, mode):
    """The GPU backend's autograd wiring with the plans run on the CPU: every
    argument of nsa_attention gets the gradient the reference backend gives
    it, shared K/V the sum over the branches that read it (also on
    per-branch kernels), and only the forward runs when no gradient is needed."""
    runs = _fake_plans(monkeypatch)
    a = make_inputs(CFG, 20, HQ=4, HKV=2, Dk=16, Dv=16, dtype=torch.bfloat16, mode=mode,
                    per_branch=per_branch, requires_grad=True)
    wanted = _gpu.wanted_config(a["q"], a["v"], CFG, mode, mode == "linear", kv)
    _fake_build(search / "path", dict(wanted, name="fwd-only"))  # passed over: no backward
    directory = os.path.join(str(search / "path"), wanted["name"])
    os.makedirs(directory)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(bk.config_json(wanted, backward=True), f)
    for name in ("plan.json", "manifest.json", "plan_grad.json", "manifest_grad.json",
                 "kernels_grad.ptx"):
        open(os.path.join(directory, name), "w").close()

    d_o = torch.randn(1, 20, 4, 16, dtype=torch.float64).to(torch.bfloat16)
    tensors = {name: t for name, t in a.items() if isinstance(t, torch.Tensor)}
    got = torch.autograd.grad(nsa.nsa_attention(**a, backend="gpu"), list(tensors.values()),
                              d_o)
    assert runs == [(wanted["name"], False), (wanted["name"], True)]
    want = torch.autograd.grad(nsa.nsa_attention(**a, backend="reference"),
                               list(tensors.values()), d_o)
    # d_pe is zero up to rounding (PE shifts every compressed key of a head
    # alike, which softmax ignores): it is held to the scale of the largest
    # gradient, which still catches another argument's gradient landing there.
    largest = max(torch.linalg.norm(w.double()) for w in want)
    for name, g, w in zip(tensors, got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, name
        scale = 1e-3 * largest if name.startswith("pe_") else torch.linalg.norm(w.double())
        assert scale > 0, name  # a zero gradient would prove nothing
        assert torch.linalg.norm((g - w).double()) <= 2e-2 * scale, name

    # Only q requires grad: the others get none; the backward still runs once.
    for t in tensors.values():
        t.requires_grad_(False)
    a["q"].requires_grad_(True)
    (g_q,) = torch.autograd.grad(nsa.nsa_attention(**a, backend="gpu"), [a["q"]], d_o)
    assert torch.equal(g_q, got[0])
    with torch.no_grad():
        nsa.nsa_attention(**a, backend="gpu")
    assert runs[2:] == [(wanted["name"], False), (wanted["name"], True),
                        (wanted["name"], False)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_no_cuda(make_inputs, search):
    with pytest.raises(nsa.GPUBackendUnavailable,
                       match=r"\(1\) the tensors are on cpu, the GPU backend needs CUDA tensors; "
                             r"\(2\) PyTorch sees no CUDA device or driver on this machine"):
        _call(make_inputs)


# --------------------------------------------------------------------------
# python3 -m nsa.build_kernels
# --------------------------------------------------------------------------

def test_layer_mlir_and_config_json(tmp_path):
    cfg = bk.make_config(name="t", B=2, T=100, HQ=8, HKV=2, Dk=64, Dv=32, dtype="f16",
                         kv="shared", compress="linear", pe=False, scale=0.1)
    layer = bk.write_layer(cfg, str(tmp_path))
    text = open(layer).read()
    assert "func.func @nsa_layer(\n    %q: tensor<2x100x8x64xf16>,\n" in text
    assert "%r:10 = nsa.attention %q keys(%k) values(%v) gates %gates" in text
    assert "compress linear weights(%w_k, %w_v)\n" in text
    assert ("config <l = 32, d = 16, l_sel = 64, n = 16, init = 1, local = 2, w = 512, "
            "scale = 0.1>") in text
    # o, then kc, vc [B, Nc = 5, HKV, D], o and lse of cmp, idx, slc, win.
    assert ("-> (tensor<2x100x8x32xf16>, tensor<2x5x2x64xf16>, tensor<2x5x2x32xf16>, "
            "tensor<2x100x8x32xf16>, tensor<2x100x8xf32>, tensor<2x100x2x16xi32>, "
            "tensor<2x100x8x32xf16>, tensor<2x100x8xf32>, tensor<2x100x8x32xf16>, "
            "tensor<2x100x8xf32>)\n") in text
    assert bk.config_json(cfg)["args"] == ["q", "k", "v", "gates", "w_k", "w_v"]
    assert bk.config_json(cfg)["outputs"] == ["o", "kc", "vc", "o_cmp", "lse_cmp", "idx",
                                              "o_slc", "lse_slc", "o_win", "lse_win"]
    assert bk.arg_names(dict(cfg, kv="per-branch", pe=True)) == [
        "q", "k_cmp", "k_slc", "k_win", "v_cmp", "v_slc", "v_win", "gates", "w_k", "w_v",
        "pe_k", "pe_v"]


def test_layer_grad_mlir():
    cfg = bk.make_config(name="t", B=2, T=100, HQ=8, HKV=2, Dk=64, Dv=32, dtype="bf16",
                         kv="per-branch", compress="linear", pe=True)
    text = bk.layer_grad_mlir(cfg)
    assert "func.func @nsa_layer_grad(\n    %q: tensor<2x100x8x64xbf16>,\n" in text
    assert "    %d_o: tensor<2x100x8x32xbf16>)\n" in text
    assert "    %kc: tensor<2x5x2x64xbf16>,\n" in text
    assert "    %idx: tensor<2x100x2x16xi32>,\n" in text
    assert ("%g:12 = nsa.attention_grad %q keys(%k_cmp, %k_slc, %k_win) values(%v_cmp, "
            "%v_slc, %v_win) gates %gates\n      compress linear weights(%w_k, %w_v) "
            "pe(%pe_k, %pe_v)\n      saved(%kc, %vc, %o_cmp, %lse_cmp, %idx, %o_slc, "
            "%lse_slc, %o_win, %lse_win) grad %d_o\n") in text
    # Without the saved intermediates it recomputes the forward.
    recomputing = bk.layer_grad_mlir(cfg, saved=False)
    assert "saved(" not in recomputing and "%kc" not in recomputing
    assert bk.grad_arg_names(cfg, saved=False) == bk.arg_names(cfg) + ["d_o"]
    assert "return %g#0, %g#1, %g#2, %g#3, %g#4, %g#5, %g#6, %g#7, %g#8, %g#9, %g#10, %g#11 :" \
        in text
    assert bk.grad_output_names(dict(cfg, kv="shared", compress="mean", pe=False)) == [
        "d_q", "d_k", "d_v", "d_gates"]


def test_grad_plan_outputs_are_checked(tmp_path):
    cfg = bk.make_config(B=1, T=20, HQ=4, HKV=2, Dk=16, Dv=16, compress="mean", kv="shared")
    plan = dict(inputs=[dict(name="arg0", dtype="bf16", shape=[1, 20, 4, 16])],
                buffers=[dict(name="a", dtype="bf16", shape=[20, 4, 16]),
                         dict(name="b", dtype="f32", shape=[1, 20, 2, 16]),
                         dict(name="c", dtype="bf16", shape=[1, 20, 2, 15])],
                outputs=["a", "b", "c", "arg0"])
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    assert bk.check_grad_plan_outputs(cfg, str(path)) == [
        "d_k (b) is f32 [1, 20, 2, 16], expected bf16 [1, 20, 2, 16]",
        "d_v (c) is bf16 [1, 20, 2, 15], expected bf16 [1, 20, 2, 16]",
        "d_gates is 'arg0', not a plan buffer"]
    path.write_text(json.dumps(dict(plan, outputs=["a", "a"])))
    assert bk.check_grad_plan_outputs(cfg, str(path)) == [
        "2 outputs, expected 4 (q, k, v, gates)", "outputs alias one buffer: ['a', 'a']",
        "d_k (a) is bf16 [20, 4, 16], expected bf16 [1, 20, 2, 16]"]


@needs_compiler
@pytest.mark.skipif(shutil.which("ptxas") is None and not os.path.isfile(
    "/usr/local/cuda/bin/ptxas"), reason="no ptxas")
def test_cubin_build(tmp_path):
    """--cubin: ptxas assembles both modules, the manifests name the cubins,
    no PTX is left to be compiled by the driver, and the directory serves."""
    cfg = bk.make_config(B=1, T=40, HQ=4, HKV=2, Dk=16, Dv=16, l=8, d=4, l_sel=16, n=3, init=1,
                         local=1, w=8)
    directory = bk.build(cfg, str(tmp_path), BIN_DIR, runtime_lib=_runtime_library(),
                         cubin=True)
    files = sorted(os.listdir(directory))
    assert "kernels.cubin" in files and "kernels_grad.cubin" in files
    assert not [f for f in files if f.endswith(".ptx")]
    for manifest, module in (("manifest.json", "kernels.cubin"),
                             ("manifest_grad.json", "kernels_grad.cubin")):
        kernels = json.load(open(os.path.join(directory, manifest)))["kernels"]
        assert {k["module"] for k in kernels} == {module}
    with open(os.path.join(directory, "kernels_grad.cubin"), "rb") as f:
        assert f.read(4) == b"\x7fELF"
    assert _gpu.find_kernel_dir(cfg, [str(tmp_path)], backward=True) == (directory, [])
    messages = []
    assert bk.build_missing([cfg], str(tmp_path), cubin=True, log=messages.append) == [directory]
    assert messages == [f"{cfg['name']}: up to date"]


@pytest.mark.parametrize("fields,message", [
    (dict(HQ=6, HKV=4), r"HQ % HKV != 0"),
    (dict(l=24), r"d must divide l and l_sel"),
    (dict(compress="mlp"), r"the compiler has no 'mlp' compressor"),
    (dict(compress="mean", pe=True), r"mean compression has no PE"),
    (dict(dtype="f32"), r"dtype must be one of \('bf16', 'f16'\)"),
    (dict(local=0), r"local = 0 must be positive"),
])
def test_bad_configurations(fields, message):
    with pytest.raises(bk.BuildError, match=message):
        bk.make_config(**dict(BASE, **fields))


def test_missing_tools_are_named(tmp_path):
    with pytest.raises(bk.BuildError, match=r"nsa-opt and nsa-translate not found as "
                                            r"executables in: --bin \(.*empty\)"):
        bk.find_tools(str(tmp_path / "empty"))
    assert bk.main(["--out", str(tmp_path), "--T", "100", "--HQ", "4", "--HKV", "4",
                    "--Dk", "64", "--bin", str(tmp_path / "empty")]) == 1
    assert not os.listdir(tmp_path)


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "nsa.build_kernels", *args],
                          capture_output=True, text=True, env=env)


@needs_compiler
def test_cli_mlir_only(tmp_path):
    """--mlir-only: layer.mlir passes the verifier; the directory serves no backend."""
    proc = _cli("--out", str(tmp_path), "--name", "v", "--T", "31", "--HQ", "8", "--HKV", "2",
                "--Dk", "64", "--compress", "mean", "--kv", "shared", "--mlir-only")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path / "v")) == ["config.json", "layer.mlir",
                                                  "layer_grad.mlir"]
    built = json.load(open(tmp_path / "v" / "config.json"))
    assert built["backward"] is None
    assert built["pe"] is False and built["Dv"] == 64 and built["args"] == ["q", "k", "v",
                                                                           "gates"]
    assert _gpu.find_kernel_dir(bk.make_config(**{k: built[k] for k in bk.MATCH_FIELDS}),
                                [str(tmp_path)])[0] is None


@needs_compiler
def test_cli_builds_kernels_the_backend_finds_and_the_runtime_accepts(make_inputs, search,
                                                                     monkeypatch):
    """The CLI through nsa-opt --nsa-to-gpu and nsa-translate at T = 100; the backend
    matches the directory to a call, and the runtime checks every launch of its plan."""
    out = search / "path"
    cfg = NSAConfig(l=8, d=4, l_sel=16, n=3, init=1, local=1, w=8)
    a = make_inputs(cfg, 100, HQ=8, HKV=2, Dk=16, Dv=32, B=2, dtype=torch.bfloat16)
    with pytest.raises(nsa.GPUBackendUnavailable) as caught:
        nsa.nsa_attention(**a, backend="gpu")
    message = str(caught.value)
    command = message[message.index("python3 -m nsa.build_kernels"):]
    command = shlex.split(command[:command.index(". ")])
    assert command[:5] == ["python3", "-m", "nsa.build_kernels", "--out", str(out)]
    runtime = _runtime_library()
    extra = ["--runtime-lib", runtime] if runtime else ["--runtime-lib", ""]
    if BIN_DIR:
        extra += ["--bin", BIN_DIR]
    proc = _cli(*command[3:], *extra)
    assert proc.returncode == 0, proc.stderr
    (name,) = os.listdir(out)
    directory = str(out / name)
    assert proc.stdout.strip().splitlines()[-1] == directory
    assert sorted(os.listdir(directory)) == ["config.json", "kernels.ptx", "kernels_grad.ptx",
                                             "layer.mlir", "layer_grad.mlir", "manifest.json",
                                             "manifest_grad.json", "plan.json",
                                             "plan_grad.json"]
    if runtime:
        assert "plan.json: 6 launches pass the runtime's checks" in proc.stdout
        assert "plan_grad.json: " in proc.stdout

    wanted = _gpu.wanted_config(a["q"], a["v"], cfg, "linear", True, "per-branch")
    assert _gpu.find_kernel_dir(wanted) == (directory, [])
    built = json.load(open(os.path.join(directory, "config.json")))
    plan = json.load(open(os.path.join(directory, "plan.json")))
    shapes = bk.arg_shapes(built)
    assert [(i["name"], i["shape"], i["dtype"]) for i in plan["inputs"]] == [
        (f"arg{n}", shapes[meaning], "bf16") for n, meaning in enumerate(built["args"])]
    # o: a buffer of [2, 100, 8, 32]'s size (the selected launch writes it grouped,
    # [2, 100, 2, 4, 32]: the same memory).
    assert [math.prod(b["shape"]) for b in plan["buffers"] if b["name"] == plan["outputs"][0]] == [
        2 * 100 * 8 * 32]
    # The forward returns o and its saved intermediates, each a buffer of its size.
    assert built["outputs"] == ["o"] + list(bk.SAVED_NAMES)
    sizes = {b["name"]: (math.prod(b["shape"]), b["dtype"]) for b in plan["buffers"]}
    types = bk.saved_types(built)
    assert [sizes[name] for name in plan["outputs"][1:]] == [
        (math.prod(types[m][0]), types[m][1]) for m in bk.SAVED_NAMES]
    # The backward: layer inputs, the saved intermediates, then d_o; one
    # gradient per input with its size; no forward kernel runs again.
    assert built["backward"] == dict(plan="plan_grad.json",
                                     args=built["args"] + list(bk.SAVED_NAMES) + ["d_o"],
                                     outputs=["d_" + m for m in built["args"]])
    grad_plan = json.load(open(os.path.join(directory, "plan_grad.json")))
    assert grad_plan["manifest"] == "manifest_grad.json"
    assert json.load(open(os.path.join(directory, "manifest_grad.json")))["kernels"][0][
        "module"] == "kernels_grad.ptx"
    grad_shapes = bk.grad_shapes(built)
    assert [(i["shape"], i["dtype"]) for i in grad_plan["inputs"]] == [
        (grad_shapes[meaning], types.get(meaning, (None, "bf16"))[1])
        for meaning in built["backward"]["args"]]
    forward_labels = {"compress", "compressed_attention", "select_blocks",
                      "selected_attention", "window_attention"}
    assert not forward_labels & {launch["label"] for launch in grad_plan["launches"]}
    assert bk.check_grad_plan_outputs(built, os.path.join(directory, "plan_grad.json")) == []

    if runtime is None:
        return
    # The backend's own loading path (cached Plan), checked by the runtime with
    # placeholder tensors, and the call then lacks only CUDA.
    monkeypatch.setenv(_gpu.RUNTIME_ENV, runtime)
    loaded_cfg, loaded, launcher = _gpu._load_plan(directory, runtime)
    assert _gpu._load_plan(directory, runtime)[1] is loaded
    assert len(loaded.validate(config=loaded_cfg)) == len(plan["launches"])
    grad_loaded = _gpu._load_plan(directory, runtime, backward=True)[1]
    assert grad_loaded is not loaded and grad_loaded.function == "nsa_layer_grad"
    assert len(grad_loaded.validate(config=loaded_cfg)) == len(grad_plan["launches"])
    # The launcher's prepared arguments pass the runtime's checks too (fake,
    # aligned addresses; nsa_plan_launch stops before the driver).
    lib = loaded.manifest.runtime.lib
    for k, (kernel, args, slots) in enumerate(launcher.launches):
        for i, _ in slots:
            args[i].tensor.data = 1 << 32
        launch_plan = _runtime.LaunchPlan()
        loaded.manifest.runtime.check(lib.nsa_plan_launch(
            loaded.manifest._handle, kernel, ctypes.byref(launcher.config), args, len(args),
            ctypes.byref(launch_plan)))
        assert kernel.decode() == plan["launches"][k]["kernel"]
    assert [name for _, _, slots in launcher.launches for _, name in slots] == [
        name for launch in plan["launches"] for name in launch["args"]]
    # Buffer lifetimes: each buffer lives from before its first launch to after
    # its last, outputs to the end; the backward's peak is below its total.
    for p, total_only in ((loaded, False), (grad_loaded, True)):
        sizes = {b["name"]: math.prod(b["shape"]) for b in p.buffers}
        inputs = {i["name"] for i in p.inputs}
        live, peak = set(), 0
        for launch, (born, dead) in zip(p.launches, _gpu.buffer_lifetimes(p)):
            live |= {b["name"] for b in born}
            assert set(launch["args"]) - inputs <= live, launch["kernel"]
            peak = max(peak, sum(sizes[n] for n in live))
            assert set(dead) <= set(launch["args"]) and not set(dead) & set(p.outputs)
            live -= set(dead)
        assert live == set(p.outputs) - inputs
        if total_only:
            assert peak < sum(sizes.values())
    # The backward plan binds the saved intermediates in their own dtypes (f32
    # lse, i32 idx) and refuses one in another, naming it.
    by_meaning = {m: torch.zeros(grad_shapes[m], dtype=_runtime._torch_dtype(
        types.get(m, (None, "bf16"))[1])) for m in built["backward"]["args"]}
    bound = _gpu._bind(directory, loaded_cfg, grad_loaded, by_meaning, backward=True)
    assert [bound[i["name"]].dtype for i in grad_plan["inputs"]] == [
        by_meaning[m].dtype for m in built["backward"]["args"]]
    by_meaning["lse_slc"] = by_meaning["lse_slc"].to(torch.bfloat16)
    with pytest.raises(ValueError, match=r"\(lse_slc\) must be f32 \[2, 100, 8\], got "
                                         r"torch.bfloat16 \[2, 100, 8\]"):
        _gpu._bind(directory, loaded_cfg, grad_loaded, by_meaning, backward=True)
    if not torch.cuda.is_available():
        with pytest.raises(nsa.GPUBackendUnavailable) as caught:
            nsa.nsa_attention(**a, backend="gpu")
        assert str(caught.value) == (
            "NSA's GPU backend is not available: (1) the tensors are on cpu, the GPU backend "
            "needs CUDA tensors; (2) PyTorch sees no CUDA device or driver on this machine. "
            "Until then use backend='reference' (pure PyTorch, any device, memory quadratic "
            "in T).")


# --------------------------------------------------------------------------
# On a GPU: the kernels against the reference
# --------------------------------------------------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

GPU_CASES = [
    # (name, NSAConfig fields, B, T, HQ, HKV, Dk, Dv, dtype, mode, per_branch, pe)
    ("t100-g1-f16-linpe-branch", {}, 2, 100, 4, 4, 64, 64, torch.float16, "linear", True,
     True),
    ("t100-g1-f16-linpe-shared-on-branch", {}, 2, 100, 4, 4, 64, 64, torch.float16, "linear",
     False, True),
    ("t31-g4-bf16-mean-shared", {}, 2, 31, 8, 2, 64, 64, torch.bfloat16, "mean", False, False),
    ("t1000-g4-bf16-mean-blocks", dict(l=16, d=8, l_sel=32, n=8, init=2, local=2, w=100,
                                       scale=0.1),
     2, 1000, 8, 2, 64, 64, torch.bfloat16, "mean", True, False),
    ("t1000-g4-dk128-dv64-bf16-lin-shared", {}, 1, 1000, 16, 4, 128, 64, torch.bfloat16,
     "linear", False, False),
]


def _ensure_kernels(wanted, tmp_path, monkeypatch):
    """Skips unless kernels for ``wanted`` are on the search path or can be built."""
    if _gpu.find_kernel_dir(wanted)[0] is not None:
        return
    if not _tools_present():
        pytest.skip(f"no kernels for {bk.default_name(wanted)} on $NSA_KERNEL_PATH and no "
                    f"compiler to build them")
    built = bk.build(wanted, str(tmp_path), BIN_DIR)
    monkeypatch.setenv(_gpu.KERNEL_PATH_ENV, os.pathsep.join(
        [os.path.dirname(built)] + [p for p in os.environ.get(_gpu.KERNEL_PATH_ENV, "").split(
            os.pathsep) if p]))


def _rel_l2(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30)).item()


@needs_cuda
@pytest.mark.parametrize("case", GPU_CASES, ids=[c[0] for c in GPU_CASES])
def test_gpu_matches_reference(case, make_inputs, tmp_path, monkeypatch):
    name, fields, B, T, HQ, HKV, Dk, Dv, dtype, mode, per_branch, pe = case
    if _gpu.find_runtime()[0] is None:
        pytest.skip("no runtime library ($NSA_RUNTIME_LIBRARY)")
    cfg = NSAConfig(**fields)
    torch.manual_seed(0)
    a = make_inputs(cfg, T, HQ=HQ, HKV=HKV, Dk=Dk, Dv=Dv, B=B, mode=mode,
                    per_branch=per_branch, pe=pe, dtype=dtype)
    a = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in a.items()}
    kv = "shared" if not per_branch else "per-branch"
    wanted = _gpu.wanted_config(a["q"], a["v"], cfg, mode, pe, kv)
    if name.endswith("shared-on-branch"):
        # Only per-branch kernels: the shared call must run on them.
        wanted = dict(wanted, kv="per-branch", name=bk.default_name(dict(wanted,
                                                                         kv="per-branch")))
        monkeypatch.setattr(_gpu, "PACKAGE_KERNEL_DIR", str(tmp_path / "none"))
        monkeypatch.setenv(_gpu.KERNEL_PATH_ENV, os.pathsep.join(
            p for p in os.environ.get(_gpu.KERNEL_PATH_ENV, "").split(os.pathsep) if p))
    _ensure_kernels(wanted, tmp_path, monkeypatch)
    _gpu._lookups.clear()
    chosen = _gpu.find_kernel_dir(_gpu.wanted_config(a["q"], a["v"], cfg, mode, pe, kv))[0]
    assert json.load(open(os.path.join(chosen, "config.json")))["kv"] == wanted["kv"]

    out = nsa.nsa_attention(**a, backend="gpu")
    again = nsa.nsa_attention(**a, backend="gpu")  # the cached plan; fresh buffers
    torch.cuda.synchronize()
    expected = nsa.nsa_attention(**a, backend="reference")
    assert out.shape == (B, T, HQ, Dv) and out.dtype == dtype and out.is_cuda
    assert torch.isfinite(out.float()).all()
    assert torch.equal(out, again) and out.data_ptr() != again.data_ptr()
    error = _rel_l2(out, expected)
    print(f"{name}: rel_l2 {error:.2e}, max_abs {(out.float() - expected.float()).abs().max():.2e}")
    assert error < 2e-2, error


@needs_cuda
def test_gpu_layer_inference(tmp_path, monkeypatch):
    """NSAAttention(backend='gpu') under no_grad equals the reference layer; training raises."""
    if _gpu.find_runtime()[0] is None:
        pytest.skip("no runtime library ($NSA_RUNTIME_LIBRARY)")
    cfg = NSAConfig()
    m = nsa.NSAAttention(256, 8, 2, 64, 64, cfg, backend="gpu").cuda().to(torch.bfloat16)
    with torch.no_grad():
        m.k_compress.pe.normal_(0, 0.1)
        m.v_compress.pe.normal_(0, 0.1)
    x = torch.randn(1, 200, 256, device="cuda", dtype=torch.bfloat16)
    q = torch.zeros(1, 200, 8, 64, dtype=torch.bfloat16)
    wanted = _gpu.wanted_config(q, torch.zeros(1, 200, 2, 64), cfg, "linear", True,
                                "per-branch")
    _ensure_kernels(wanted, tmp_path, monkeypatch)
    with torch.no_grad():
        y = m(x)
        m.backend = "reference"
        expected = m(x)
        m.backend = "gpu"
    assert _rel_l2(y, expected) < 2e-2
    with pytest.raises(nsa.GPUBackendUnavailable, match=r"^backward on the GPU backend"):
        m(x)

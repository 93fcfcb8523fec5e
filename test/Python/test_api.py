"""nsa.nsa_attention: argument checking, backends, and autograd (gradcheck)."""

import shutil
import subprocess

import pytest
import torch

import nsa
from nsa import NSAConfig, _gpu, api
from nsa import reference as R

CFG = NSAConfig(l=8, d=4, l_sel=16, n=3, init=1, local=1, w=8)
# Small enough for gradcheck; n = 3 of up to 5 blocks leaves real choices.
GRAD = NSAConfig(l=8, d=4, l_sel=8, n=3, init=1, local=1, w=6)


# --------------------------------------------------------------------------
# Argument errors: each names the argument and the rule
# --------------------------------------------------------------------------

def _reshape(key, *shape):
    return lambda a: a.update({key: torch.randn(*shape, dtype=a["q"].dtype)})


ERRORS = [
    # (mutation of the valid arguments, exception, message pattern)
    (_reshape("q", 1, 20, 32), ValueError,
     r"'q' must have rank 4 \[B, T, HQ, Dk\], got shape \[1, 20, 32\]"),
    (_reshape("k", 2, 20, 2, 8), ValueError, r"'k' dimension 0 \(B\) is 2, but 'q' has B = 1"),
    (_reshape("v", 1, 21, 2, 6), ValueError, r"'v' dimension 1 \(T\) is 21, but 'q' has T = 20"),
    (_reshape("v", 1, 20, 1, 6), ValueError, r"'v' dimension 2 \(HKV\) is 1, but 'k' has HKV = 2"),
    (_reshape("k", 1, 20, 2, 7), ValueError, r"'k' dimension 3 \(Dk\) is 7, but 'q' has Dk = 8"),
    (_reshape("v_slc", 1, 20, 2, 5), ValueError,
     r"'v_slc' dimension 3 \(Dv\) is 5, but 'v' has Dv = 6"),
    (_reshape("k_win", 1, 19, 2, 8), ValueError, r"'k_win' dimension 1 \(T\) is 19"),
    (_reshape("g", 1, 20, 4, 2), ValueError, r"'g' must have shape \[B, T, HQ, 3\]"),
    (_reshape("g", 1, 20, 3, 3), ValueError, r"'g' dimension 2 \(HQ\) is 3, but 'q' has HQ = 4"),
    (lambda a: a.update(q=torch.randn(1, 20, 3, 8, dtype=torch.float64),
                        g=torch.rand(1, 20, 3, 3, dtype=torch.float64)),
     ValueError, r"GQA needs HQ divisible by HKV: HQ = 3 \('q'\), HKV = 2 \('k'\)"),
    (_reshape("w_k", 2, 8 * 8, 7), ValueError,
     r"'w_k' must have shape \[HKV, l\*D, D\] = \[2, 64, 8\], got \[2, 64, 7\]"),
    (_reshape("w_v", 2, 6 * 6, 6), ValueError,
     r"'w_v' must have shape \[HKV, l\*D, D\] = \[2, 48, 6\]"),
    (_reshape("pe_v", 2, 4, 6), ValueError, r"'pe_v' must have shape \[HKV, l, D\] = \[2, 8, 6\]"),
    (lambda a: a.pop("v_slc"), ValueError, r"'k_slc' and 'v_slc' must be given together"),
    (lambda a: a.pop("k_win"), ValueError, r"'k_win' and 'v_win' must be given together"),
    (lambda a: a.pop("pe_k"), ValueError, r"'pe_k' and 'pe_v' must be given together"),
    (lambda a: [a.pop(key) for key in ("w_k", "w_v")], ValueError,
     r"compress='linear' needs 'w_k'"),
    (lambda a: a.update(compress="mean"), ValueError,
     r"compress='mean' has no parameters: pass no 'w_k' or 'pe_k'"),
    (lambda a: a.update(compress="mlp"), TypeError, r"'w_k' must be MLPWeights\(w1, b1, w2, b2\)"),
    (lambda a: a.update(w_k=R.MLPWeights(*[torch.zeros(1)] * 4)), TypeError,
     r"'w_k' must be a tensor for compress='linear'"),
    (lambda a: a.update(compress="max"), ValueError,
     r"compress must be one of \('linear', 'mean', 'mlp'\), got 'max'"),
    (lambda a: a.update(backend="cuda"), ValueError,
     r"backend must be one of \('auto', 'reference', 'gpu'\), got 'cuda'"),
    (lambda a: a.update(config={"l": 8}), TypeError, r"'config' must be an NSAConfig, got dict"),
    (lambda a: a.update(q=a["q"].tolist()), TypeError, r"'q' must be a torch.Tensor, got list"),
    (lambda a: a.update(k=a["k"].float()), TypeError,
     r"'k' has dtype torch.float32, but every tensor must share q's dtype torch.float64"),
    (lambda a: a.update(pe_v=a["pe_v"].half()), TypeError, r"'pe_v' has dtype torch.float16"),
    (lambda a: a.update(v=a["v"].to("meta")), ValueError,
     r"'v' is on meta, but every tensor must be on q's device cpu"),
]


@pytest.mark.parametrize("mutate,error,match", ERRORS)
def test_argument_errors(make_inputs, mutate, error, match):
    a = make_inputs(CFG, 20)
    mutate(a)
    with pytest.raises(error, match=match):
        nsa.nsa_attention(**a)


def test_mlp_weight_shapes_are_checked(make_inputs):
    a = make_inputs(CFG, 20, mode="mlp")
    w = a["w_v"]
    a["w_v"] = w._replace(b1=torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"'w_v.b1' must have shape \[HKV, hidden\] = \[2, 5\]"):
        nsa.nsa_attention(**a)
    a["w_v"] = w._replace(w1=torch.zeros(2, 48, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"'w_v.w1' must have rank 3 \[HKV, l\*D, hidden\]"):
        nsa.nsa_attention(**a)
    a["w_v"] = w._replace(b2=w.b2.float())
    with pytest.raises(TypeError, match=r"'w_v.b2' has dtype torch.float32"):
        nsa.nsa_attention(**a)


@pytest.mark.parametrize("dtype", [torch.int32, torch.bool])
def test_non_float_dtypes_are_rejected(make_inputs, dtype):
    a = make_inputs(CFG, 20, mode="mean", per_branch=False)
    a = {key: (value.to(dtype) if isinstance(value, torch.Tensor) else value)
         for key, value in a.items()}
    takes = r"torch.bfloat16, torch.float16, torch.float32, torch.float64"
    with pytest.raises(TypeError, match=r"'q' has dtype .*; backend 'reference' takes " + takes):
        nsa.nsa_attention(**a)


# --------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------

def test_gpu_backend_takes_only_bf16_and_f16(make_inputs):
    a = make_inputs(CFG, 20, dtype=torch.float32)
    with pytest.raises(TypeError, match=r"backend 'gpu' takes torch.bfloat16, torch.float16"):
        nsa.nsa_attention(**a, backend="gpu")


def test_gpu_backend_says_what_is_missing(make_inputs, monkeypatch, tmp_path):
    """backend='gpu' on CPU tensors, without a runtime or kernels: every missing piece."""
    monkeypatch.delenv(_gpu.RUNTIME_ENV, raising=False)
    monkeypatch.delenv(_gpu.KERNEL_PATH_ENV, raising=False)
    monkeypatch.setattr(_gpu, "PACKAGE_KERNEL_DIR", str(tmp_path))
    if _gpu.find_runtime()[0] is not None:
        pytest.skip("a runtime library is installed in the package")
    a = make_inputs(CFG, 20, dtype=torch.bfloat16)
    with pytest.raises(nsa.GPUBackendUnavailable) as caught:
        nsa.nsa_attention(**a, backend="gpu")
    assert isinstance(caught.value, NotImplementedError)
    assert isinstance(caught.value, RuntimeError)
    message = str(caught.value)
    for piece in ("(1) the tensors are on cpu, the GPU backend needs CUDA tensors",
                  "NSA runtime library libnsa_runtime.so not found ($NSA_RUNTIME_LIBRARY "
                  "is not set;", "nsa/lib/libnsa_runtime.so does not exist",
                  "no prebuilt GPU kernels for this configuration", "python3 -m nsa.build_kernels",
                  "scripts/setup.sh", "build/lib/libnsa_runtime.so", "backend='reference'"):
        assert piece in message, piece


def test_runtime_library_path_errors(tmp_path, monkeypatch):
    monkeypatch.setenv(_gpu.RUNTIME_ENV, str(tmp_path / "missing.so"))
    with pytest.raises(nsa.GPUBackendUnavailable,
                       match=r"NSA_RUNTIME_LIBRARY = '.*missing.so' is not a file\). "
                             r"The runtime library is built"):
        _gpu.load_runtime()
    junk = tmp_path / "libnsa_runtime.so"
    junk.write_text("not an ELF file")
    monkeypatch.setenv(_gpu.RUNTIME_ENV, str(junk))
    with pytest.raises(nsa.GPUBackendUnavailable, match=r"libnsa_runtime.so does not load: "):
        _gpu.load_runtime()


def _shared_library(tmp_path, c_source):
    """Compiles ``c_source`` into a shared library in tmp_path; returns its path."""
    source = tmp_path / "fake.c"
    source.write_text(c_source)
    library = tmp_path / "libfake.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return str(library)


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
@pytest.mark.parametrize("c_source,problem", [
    ("int nsa_runtime_abi_version(void) { return 7; }",
     r"has ABI version 7, this package needs 1 \(rebuild it from the same checkout\)"),
    ("int unrelated(void) { return 0; }",
     r"libfake.so lacks nsa_runtime_abi_version: it is not the NSA runtime"),
])
def test_runtime_library_must_be_the_nsa_runtime(tmp_path, monkeypatch, c_source, problem):
    monkeypatch.setenv(_gpu.RUNTIME_ENV, _shared_library(tmp_path, c_source))
    with pytest.raises(nsa.GPUBackendUnavailable, match=problem):
        _gpu.load_runtime()


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_loaded_runtime_leaves_only_the_kernels(make_inputs, tmp_path, monkeypatch):
    """A runtime of the right ABI loads; the backend then names only what is left."""
    library = _shared_library(tmp_path, "int nsa_runtime_abi_version(void) { return 1; }")
    monkeypatch.setenv(_gpu.RUNTIME_ENV, library)
    monkeypatch.setenv(_gpu.KERNEL_PATH_ENV, str(tmp_path / "kernels"))
    _gpu.load_runtime()
    a = make_inputs(CFG, 20, dtype=torch.bfloat16)
    with pytest.raises(nsa.GPUBackendUnavailable,
                       match=r"no prebuilt GPU kernels for this configuration") as caught:
        nsa.nsa_attention(**a, backend="gpu")
    assert "libnsa_runtime.so not found" not in str(caught.value)
    assert "The runtime library is built" not in str(caught.value)


def test_auto_backend_picks_gpu_only_for_cuda_tensors(make_inputs):
    assert api._resolve_backend("auto", torch.device("cuda", 0)) == "gpu"
    assert api._resolve_backend("auto", torch.device("cpu")) == "reference"
    a = make_inputs(CFG, 30, dtype=torch.float32)
    assert torch.equal(nsa.nsa_attention(**a), nsa.nsa_attention(**a, backend="reference"))


# --------------------------------------------------------------------------
# Semantics of the arguments
# --------------------------------------------------------------------------

def test_shared_kv_is_per_branch_kv_repeated(make_inputs):
    a = make_inputs(CFG, 41, per_branch=False)
    shared = nsa.nsa_attention(**a)
    repeated = nsa.nsa_attention(**a, k_slc=a["k"], v_slc=a["v"], k_win=a["k"], v_win=a["v"])
    assert torch.equal(shared, repeated)


def test_each_branch_reads_its_own_kv(make_inputs):
    """Changing the window's keys changes only the window branch."""
    a = make_inputs(CFG, 41)
    base = nsa.nsa_attention(**a)
    no_window = dict(a, g=a["g"] * torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))
    changed = dict(no_window, k_win=torch.randn_like(a["k_win"]))
    assert torch.equal(nsa.nsa_attention(**no_window), nsa.nsa_attention(**changed))
    assert not torch.equal(base, nsa.nsa_attention(**dict(a, k_win=changed["k_win"])))


def test_strided_inputs_and_empty_sequences(make_inputs):
    a = make_inputs(CFG, 27)
    strided = dict(a, q=a["q"].transpose(1, 2).contiguous().transpose(1, 2))
    assert not strided["q"].is_contiguous()
    assert torch.equal(nsa.nsa_attention(**a), nsa.nsa_attention(**strided))
    empty = make_inputs(CFG, 0, B=2)
    assert nsa.nsa_attention(**empty).shape == (2, 0, 4, 6)


def test_default_config_is_the_papers(make_inputs):
    a = make_inputs(NSAConfig(), 70, mode="mean", per_branch=False)
    del a["config"]
    assert torch.equal(nsa.nsa_attention(**a), nsa.nsa_attention(**a, config=NSAConfig()))


# --------------------------------------------------------------------------
# Autograd: gradcheck in float64, with the selection held fixed
# --------------------------------------------------------------------------

def _selection(a):
    """idx of the arguments ``a``, recomputed from their (possibly perturbed) values."""
    cfg = a["config"]
    kc = R.compress(a["k"], cfg, a.get("w_k"), a.get("pe_k"), a["compress"])
    lse = R.compressed_attention(a["q"], kc, kc, cfg)[1]
    return R.select_blocks(a["q"], kc, lse, cfg)


def _gradcheck(a, names):
    """gradcheck of nsa_attention w.r.t. ``names`` ("w_k.w1" for an MLP field).

    Finite differences must not move the selection (SPEC: top-n indices are
    constants of the backward), so every evaluation asserts that idx is
    unchanged: a failure then says "selection changed", not "bad gradient".
    """
    idx = _selection(a)
    assert (idx[..., 1:] > idx[..., :-1]).any()  # non-trivial selection

    def arguments(values):
        args = dict(a)
        for name, value in zip(names, values):
            if "." in name:
                side, field = name.split(".")
                args[side] = args[side]._replace(**{field: value})
            else:
                args[name] = value
        return args

    def f(*values):
        args = arguments(values)
        assert torch.equal(_selection(args), idx), "a perturbation changed the selection"
        return nsa.nsa_attention(**args, backend="reference")

    inputs = []
    for name in names:
        value = a[name] if "." not in name else getattr(a[name.split(".")[0]], name.split(".")[1])
        inputs.append(value.detach().clone().requires_grad_(True))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradcheck_shared_kv_with_compression_parameters(make_inputs):
    a = make_inputs(GRAD, 36, HQ=2, HKV=1, Dk=4, Dv=3, per_branch=False)
    _gradcheck(a, ["q", "k", "v", "g", "w_k", "w_v", "pe_k", "pe_v"])


def test_gradcheck_per_branch_kv_gqa(make_inputs):
    a = make_inputs(GRAD, 29, HQ=4, HKV=1, Dk=3, Dv=2)
    _gradcheck(a, ["q", "k", "v", "k_slc", "v_slc", "k_win", "v_win", "g"])


def test_gradcheck_mean_and_mlp_compression(make_inputs):
    a = make_inputs(GRAD, 26, HQ=2, HKV=2, Dk=3, Dv=2, mode="mean", per_branch=False)
    _gradcheck(a, ["q", "k", "v"])
    a = make_inputs(GRAD, 26, HQ=2, HKV=1, Dk=2, Dv=2, mode="mlp", per_branch=False)
    _gradcheck(a, ["w_k.w1", "w_k.b1", "w_v.w2", "w_v.b2", "pe_k"])

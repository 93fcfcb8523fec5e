"""nsa.NSAAttention: the whole layer, its parameters, training step and state."""

import io

import pytest
import torch

import nsa
from nsa import NSAConfig
from nsa import reference as R

CFG = NSAConfig(l=8, d=4, l_sel=16, n=3, init=1, local=1, w=12)


def layer(HQ=4, HKV=2, **kwargs):
    return nsa.NSAAttention(32, HQ, HKV, 8, 6, CFG, **kwargs)


@pytest.mark.parametrize("HQ,HKV", [(4, 4), (4, 2), (8, 2)])  # G = 1, 2, 4
@pytest.mark.parametrize("compress,shared_kv", [("linear", False), ("linear", True),
                                                ("mlp", False), ("mean", True)])
def test_forward_backward_reaches_every_parameter(HQ, HKV, compress, shared_kv):
    m = layer(HQ, HKV, compress=compress, shared_kv=shared_kv, bias=True)
    x = torch.randn(2, 45, 32)
    y = m(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    y.square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_parameter_layout():
    """Per-branch K/V projections, compressor W [HKV, l*D, D] and PE [HKV, l, D], 3 gates/head."""
    m = layer()
    shapes = {name: tuple(p.shape) for name, p in m.named_parameters()}
    assert shapes == {
        "q_proj.weight": (4 * 8, 32),
        "k_proj.weight": (3 * 2 * 8, 32),
        "v_proj.weight": (3 * 2 * 6, 32),
        "k_compress.weight": (2, CFG.l * 8, 8),
        "k_compress.pe": (2, CFG.l, 8),
        "v_compress.weight": (2, CFG.l * 6, 6),
        "v_compress.pe": (2, CFG.l, 6),
        "gate.weight": (4 * 3, 32),
        "gate.bias": (4 * 3,),
        "o_proj.weight": (32, 4 * 6),
    }
    shared = layer(shared_kv=True, compress="mean")
    assert shared.k_proj.weight.shape == (2 * 8, 32)
    assert not any("compress" in name for name, _ in shared.named_parameters())
    mlp = layer(compress="mlp", compress_hidden=7, position_encoding=False)
    assert mlp.k_compress.w1.shape == (2, CFG.l * 8, 7) and mlp.k_compress.pe is None


def test_linear_compressor_starts_near_the_block_mean():
    c = nsa.TokenCompressor(2, 8, CFG)
    k = torch.randn(1, 40, 2, 8)
    mean = R.compress(k, CFG, mode="mean")
    out = c(k)
    assert out.shape == mean.shape
    assert (out - mean).norm() < 0.2 * mean.norm()


def test_forward_is_the_functional_op_on_the_projections():
    """The layer is q/k/v projections + sigmoid gates + nsa_attention + output projection."""
    m = layer()
    x = torch.randn(1, 30, 32)
    q = m.q_proj(x).view(1, 30, 4, 8)
    k = m.k_proj(x).view(1, 30, 3, 2, 8)
    v = m.v_proj(x).view(1, 30, 3, 2, 6)
    g = torch.sigmoid(m.gate(x)).view(1, 30, 4, 3)
    o = nsa.nsa_attention(q, k[:, :, 0], v[:, :, 0], g, k_slc=k[:, :, 1], v_slc=v[:, :, 1],
                          k_win=k[:, :, 2], v_win=v[:, :, 2], w_k=m.k_compress.weight,
                          w_v=m.v_compress.weight, pe_k=m.k_compress.pe,
                          pe_v=m.v_compress.pe, config=CFG, backend="reference")
    torch.testing.assert_close(m(x), m.o_proj(o.reshape(1, 30, 24)))


def test_layer_is_causal():
    m = layer()
    x = torch.randn(1, 50, 32)
    y = m(x)
    x2 = x.clone()
    x2[:, 37:] = torch.randn(1, 13, 32)
    assert torch.equal(m(x2)[:, :37], y[:, :37])


@pytest.mark.parametrize("compress", ["linear", "mlp"])
def test_state_dict_round_trip(tmp_path, compress):
    m = layer(compress=compress)
    with torch.no_grad():  # move PE away from its zero init so that it matters
        m.k_compress.pe.normal_()
    x = torch.randn(2, 35, 32)
    y = m(x)
    path = tmp_path / "nsa.pt"
    torch.save(m.state_dict(), path)
    torch.manual_seed(123)
    fresh = layer(compress=compress)
    assert not torch.equal(fresh(x), y)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert torch.equal(fresh(x), y)
    buffer = io.BytesIO()
    torch.save(m, buffer)  # the whole module pickles too
    buffer.seek(0)
    assert torch.equal(torch.load(buffer, weights_only=False)(x), y)


def test_a_few_training_steps_reduce_the_loss():
    m = layer()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    x, target = torch.randn(2, 40, 32), torch.randn(2, 40, 32)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = (m(x) - target).square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(num_kv_heads=3), ValueError,
     r"GQA needs num_q_heads divisible by num_kv_heads \(4 % 3 != 0\)"),
    (dict(num_kv_heads=0), ValueError, r"num_kv_heads must be a positive int, got 0"),
    (dict(head_dim_qk=8.0), ValueError, r"head_dim_qk must be a positive int, got 8.0"),
    (dict(compress="conv"), ValueError, r"compress must be one of \('linear', 'mean', 'mlp'\)"),
    (dict(backend="triton"), ValueError, r"backend must be one of"),
    (dict(config=(32, 16)), TypeError, r"config must be an NSAConfig, got tuple"),
])
def test_constructor_errors(kwargs, error, match):
    args = dict(hidden_size=32, num_q_heads=4, num_kv_heads=2, head_dim_qk=8)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        nsa.NSAAttention(**args)


def test_gpu_backend_module_raises_clearly(monkeypatch, tmp_path):
    """Without CUDA, runtime or kernels the GPU backend says what is missing;
    training asks for kernels with a backward plan."""
    monkeypatch.delenv(nsa._gpu.RUNTIME_ENV, raising=False)
    monkeypatch.setenv(nsa._gpu.KERNEL_PATH_ENV, str(tmp_path))
    m = layer(backend="gpu").to(torch.bfloat16)
    x = torch.randn(1, 20, 32, dtype=torch.bfloat16)
    with pytest.raises(nsa.GPUBackendUnavailable,
                       match=r"GPU backend is not available: \(1\) the tensors are on cpu.*"
                             r"no prebuilt GPU kernels with a backward plan \(gradients are "
                             r"needed.*python3 -m nsa.build_kernels --out " + str(tmp_path)):
        m(x)
    with torch.no_grad():
        with pytest.raises(nsa.GPUBackendUnavailable,
                           match=r"GPU backend is not available: \(1\) the tensors are on "
                                 r"cpu.*no prebuilt GPU kernels for this configuration"):
            m(x)


def test_bf16_layer_runs_on_the_reference():
    m = layer().to(torch.bfloat16)
    y = m(torch.randn(1, 33, 32, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()


def test_layer_under_autocast_keeps_float32_parameters():
    """Under bf16 autocast the projections give bf16 while the compressor's
    parameters stay float32: the layer casts them (the GPU backend takes one
    dtype), and their gradients arrive in float32."""
    m = layer()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(torch.randn(2, 40, 32))
    assert y.dtype == torch.bfloat16
    y.float().square().sum().backward()
    for name, p in m.named_parameters():
        assert p.dtype == torch.float32 and p.grad is not None, name
        assert p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), name
    assert m.k_compress.weight.grad.abs().sum() > 0


def test_reference_computes_in_float32_under_autocast():
    """Autocast would round the reference's matmuls to bf16; it computes in
    float32 regardless (its documented compute dtype)."""
    def rand(*shape):
        return torch.randn(*shape).to(torch.bfloat16)
    args = dict(q=rand(1, 40, 4, 8), k=rand(1, 40, 2, 8), v=rand(1, 40, 2, 6),
                g=torch.rand(1, 40, 4, 3).to(torch.bfloat16), compress="mean", config=CFG,
                backend="reference")
    plain = nsa.nsa_attention(**args)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(nsa.nsa_attention(**args), plain)

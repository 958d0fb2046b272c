"""Tests of the femc module with torch tensors, and of the custom ops of
examples/torch_op (torch.library.custom_op: opcheck, torch.compile, a
carried state, layers). Skipped when PyTorch is not installed; the custom op
tests need PyTorch >= 2.4 (ctest's python.torch runs them with the
interpreter FEMC_TORCH_PYTHON, e.g. bench/.venv's)."""

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed for this Python: the torch "
    "tests need it (e.g. bench/.venv/bin/python -m pytest)")
if not hasattr(torch.library, "custom_op"):
    pytest.skip(f"PyTorch {torch.__version__} has no torch.library.custom_op "
                f"(needs >= 2.4)", allow_module_level=True)

import importlib.util  # noqa: E402
import os  # noqa: E402

import femc  # noqa: E402
import fem_reference  # noqa: E402
import fem_op  # noqa: E402  (examples/torch_op/fem_op.py)


def _load_check():
    """examples/torch_op/check.py, for its PyTorch reference formulation."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "examples", "torch_op", "check.py")
    spec = importlib.util.spec_from_file_location("torch_op_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


torch_check = _load_check()


def make_inputs(B, T, H, dk, dv, Hkv=None, seed=0):
    Hkv = Hkv or H
    gen = torch.Generator().manual_seed(seed)
    normal = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    return [normal(B, T, H, dk), normal(B, T, Hkv, dk), normal(B, T, Hkv, dv),
            torch.rand(H * dv, generator=gen) * 3 - 1,
            normal(B, T, H, dv), normal(B, T, H, dv)]


@pytest.fixture(scope="module")
def causal(kernels_lib):
    return femc.load(kernels_lib).kernel("softmax_causal")


@pytest.fixture(scope="module")
def op(kernels_lib):
    return fem_op.register(kernels_lib, "softmax_causal",
                           op_name="test_softmax_causal")


def test_tensors_are_not_copied():
    t = torch.randn(3, 4, 5)
    assert femc._data_pointer(t) == t.data_ptr()
    view = t[1]
    assert femc._data_pointer(view) == view.data_ptr()


def test_launch_on_tensors_writes_in_place(causal):
    inputs = make_inputs(2, 30, 4, 16, 8, Hkv=2)
    out = torch.full((2, 30, 4, 8), float("nan"))
    address = out.data_ptr()
    causal(*inputs, out)
    assert out.data_ptr() == address and torch.isfinite(out).all()
    # numpy views of the same memory give the same result.
    numpy_out = causal.run(**dict(zip(
        ("q", "k", "v", "beta_raw", "lam", "gate"),
        (t.numpy() for t in inputs))))
    assert np.array_equal(out.numpy(), numpy_out)
    ref = fem_reference.softmax_fem(*(t.numpy() for t in inputs))
    assert np.abs(out.numpy() - ref).max() <= 1e-4 * np.abs(ref).max()


def test_torch_errors_name_the_argument(causal):
    inputs = make_inputs(1, 8, 2, 8, 8)
    out = torch.empty(1, 8, 2, 8)
    bad = list(inputs)
    bad[2] = bad[2].double()
    with pytest.raises(femc.Error, match=r"argument 'v' \(#2\).*float64"):
        causal(*bad, out)
    bad = list(inputs)
    bad[0] = bad[0].transpose(1, 2)
    with pytest.raises(femc.Error, match=r"argument 'q' \(#0\)"):
        causal(*bad, out)


def test_lazy_negation_views_are_refused(causal):
    # torch._neg_view's negative bit does not travel through DLPack: the
    # kernel read lam without its sign (0.96 off) before it was refused.
    inputs = make_inputs(1, 8, 2, 8, 8)
    out = torch.empty(1, 8, 2, 8)
    bad = list(inputs)
    bad[4] = torch._neg_view(bad[4])
    assert bad[4].is_neg()
    with pytest.raises(TypeError, match=r"argument 'lam' \(#4\).*negative "
                       r"bit.*resolve_neg\(\)"):
        causal(*bad, out)
    bad[4] = bad[4].resolve_neg()
    causal(*bad, out)
    want = torch.empty(1, 8, 2, 8)
    causal(*inputs[:4], -inputs[4], inputs[5], want)
    assert torch.equal(out, want)


def test_reference_formulation_matches_numpy():
    inputs = make_inputs(2, 20, 4, 8, 8, Hkv=2, seed=4)
    ref_torch = torch_check.fem_reference(*(t.double() for t in inputs))
    ref_numpy = fem_reference.softmax_fem(*(t.numpy() for t in inputs))
    assert np.abs(ref_torch.numpy() - ref_numpy).max() <= 1e-12


def test_custom_op_matches_torch_reference(op):
    assert op is torch.ops.femc.test_softmax_causal
    inputs = make_inputs(2, 50, 4, 16, 16, Hkv=2, seed=9)
    with torch.no_grad():
        out = torch.ops.femc.test_softmax_causal(*inputs)
    assert out.shape == (2, 50, 4, 16) and out.dtype == torch.float32
    ref = torch_check.fem_reference(*(t.double() for t in inputs))
    assert (out.double() - ref).abs().max() <= 1e-4 * ref.abs().max()


def test_custom_op_does_not_copy_contiguous_inputs(op):
    kernel = fem_op.get_kernel("test_softmax_causal")
    inputs = make_inputs(1, 12, 2, 8, 8)
    args = fem_op.launch_arguments(kernel, inputs)
    assert [a.data_ptr() for a in args[:6]] == [t.data_ptr() for t in inputs]
    assert [femc._data_pointer(a) for a in args[:6]] == \
        [t.data_ptr() for t in inputs]
    assert args[6].shape == (1, 12, 2, 8)


def test_custom_op_accepts_non_contiguous_inputs(op):
    inputs = make_inputs(1, 12, 2, 8, 8, seed=2)
    expected = op(*inputs)
    q = inputs[0].transpose(1, 2).contiguous().transpose(1, 2)
    assert not q.is_contiguous()
    assert torch.equal(op(q, *inputs[1:]), expected)


def test_custom_op_errors(op):
    inputs = make_inputs(1, 8, 2, 8, 8)
    bad = list(inputs)
    bad[1] = bad[1].double()
    with pytest.raises(femc.Error, match=r"argument 'k' \(#1\)"):
        op(*bad)
    with pytest.raises(RuntimeError, match=r"argument 'q' has rank 3, "
                       r"expected 4 \(B,T,H,dk\)"):
        torch.compile(op, fullgraph=True)(inputs[0][0], *inputs[1:])


def test_custom_op_has_no_backward(op):
    """Forward on tensors that require grad works (an nn.Module's
    parameters); a gradient through the op is refused, when it is asked."""
    inputs = make_inputs(1, 8, 2, 8, 8)
    grad = [t.clone().requires_grad_() for t in inputs]
    out = op(*grad)
    assert out.requires_grad and torch.equal(out.detach(), op(*inputs))
    with pytest.raises(RuntimeError, match=r"femc::test_softmax_causal: "
                       r"backward is not supported"):
        out.sum().backward()
    with torch.no_grad():
        assert torch.equal(op(*grad), op(*inputs))


def test_custom_op_cannot_be_registered_twice(op, kernels_lib):
    with pytest.raises(RuntimeError, match="already registered"):
        fem_op.register(kernels_lib, "softmax_causal",
                        op_name="test_softmax_causal")


def test_opcheck(op):
    """torch.library.opcheck's schema, autograd registration, fake tensor
    and AOT dispatch (dynamic shapes) tests pass."""
    inputs = make_inputs(2, 20, 4, 16, 8, Hkv=2, seed=3)
    result = torch.library.opcheck(op, inputs)
    assert result == {name: "SUCCESS" for name in (
        "test_schema", "test_autograd_registration", "test_faketensor",
        "test_aot_dispatch_dynamic")}
    # With inputs that require grad the autograd registration is checked
    # too; the AOT dispatch test then asks for a gradient, which femc does
    # not have.
    grad = [t.clone().requires_grad_() for t in inputs]
    assert torch.library.opcheck(op, grad, test_utils=(
        "test_schema", "test_autograd_registration", "test_faketensor")) == {
        name: "SUCCESS" for name in (
            "test_schema", "test_autograd_registration", "test_faketensor")}
    with pytest.raises(Exception, match="backward is not supported"):
        torch.library.opcheck(op, grad, test_utils="test_aot_dispatch_dynamic")
    # The custom op object answers opcheck too.
    custom = fem_op.get_custom_op("test_softmax_causal")
    assert torch.library.opcheck(custom, inputs,
                                 test_utils="test_faketensor") == \
        {"test_faketensor": "SUCCESS"}


def test_fake_tensor_outputs(op):
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(t) for t in make_inputs(3, 17, 4, 16, 8,
                                                         Hkv=2)]
        out = op(*fake)
    assert out.shape == (3, 17, 4, 8) and out.dtype == torch.float32
    assert out.device == torch.device("cpu")


class ReadBlock(torch.nn.Module):
    """A small model around the op: projections, the read, a residual."""

    def __init__(self, op, H, dk, dv, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.op, self.H, self.dk, self.dv = op, H, dk, dv
        d = H * dk
        self.qkv = torch.nn.Linear(d, 2 * d + H * dv)
        self.beta_raw = torch.nn.Parameter(torch.rand(H * dv, generator=gen))
        self.out = torch.nn.Linear(H * dv, d)

    def forward(self, x, lam, gate):
        B, T, _ = x.shape
        q, k, v = self.qkv(x).split(
            [self.H * self.dk, self.H * self.dk, self.H * self.dv], dim=-1)
        shape = (B, T, self.H, -1)
        read = self.op(q.reshape(shape), k.reshape(shape), v.reshape(shape),
                       self.beta_raw, lam, gate)
        return x + self.out(read.reshape(B, T, -1))


def test_torch_compile_fullgraph_matches_eager(op):
    torch.manual_seed(0)
    model = ReadBlock(op, H=4, dk=16, dv=8)
    compiled = torch.compile(model, fullgraph=True, dynamic=True)
    for B, T in ((2, 24), (1, 41)):                 # dynamic extents
        x = torch.randn(B, T, 64)
        lam, gate = torch.randn(B, T, 4, 8), torch.randn(B, T, 4, 8)
        eager = model(x, lam, gate)
        out = compiled(x, lam, gate)
        assert out.shape == (B, T, 64)
        torch.testing.assert_close(out, eager, rtol=1e-5, atol=1e-5)
        with torch.no_grad():
            torch.testing.assert_close(compiled(x, lam, gate), eager,
                                       rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="backward is not supported"):
        compiled(x, lam, gate).sum().backward()


# A gla read with a carried state (docs/user-guide.md, Segments).
STATE_MODEL = """
func.func @gla_step(%q: tensor<?x?x2x8xf32>, %k: tensor<?x?x2x8xf32>,
                    %v: tensor<?x?x2x8xf32>, %b: tensor<16xf32>,
                    %l: tensor<?x?x2x8xf32>, %g: tensor<?x?x2x8xf32>,
                    %d: tensor<?x?x2xf32>, %s: tensor<?x2x8x28xf32>)
    -> (tensor<?x?x2x8xf32>, tensor<?x2x8x28xf32>) {
  %out, %next = fem.mixer gla q(%q : tensor<?x?x2x8xf32>)
      k(%k : tensor<?x?x2x8xf32>) v(%v : tensor<?x?x2x8xf32>)
      beta_raw(%b : tensor<16xf32>) lam(%l : tensor<?x?x2x8xf32>)
      gate(%g : tensor<?x?x2x8xf32>) decay(%d : tensor<?x?x2xf32>)
      state(%s : tensor<?x2x8x28xf32>)
      -> tensor<?x?x2x8xf32>, tensor<?x2x8x28xf32>
  return %out, %next : tensor<?x?x2x8xf32>, tensor<?x2x8x28xf32>
}
"""


def test_state_kernel_op(femc_bin, tmp_path):
    """A scan read with a carried state returns (out, state_out); two
    segments give the one-shot result; opcheck and torch.compile pass."""
    model = tmp_path / "gla_step.mlir"
    model.write_text(STATE_MODEL)
    femc.compile(model, tmp_path / "lib", femc=femc_bin)
    op = fem_op.register(str(tmp_path / "lib" / "gla_step.so"),
                         op_name="test_gla_step")
    B, T = 2, 30
    q, k, v, lam, gate = make_inputs(B, T, 2, 8, 8, seed=6)[:3] + \
        make_inputs(B, T, 2, 8, 8, seed=7)[4:]
    beta_raw = torch.rand(16) * 3 - 1
    decay = torch.randn(B, T, 2)
    zero = torch.zeros(B, 2, 8, 28)
    full, state = op(q, k, v, beta_raw, lam, gate, decay, zero)
    assert full.shape == (B, T, 2, 8) and state.shape == (B, 2, 8, 28)
    cut = 13
    part = lambda t, s: t[:, s]  # noqa: E731
    first, mid = op(*(part(t, slice(None, cut)) for t in (q, k, v)), beta_raw,
                    *(part(t, slice(None, cut)) for t in (lam, gate, decay)),
                    zero)
    second, last = op(*(part(t, slice(cut, None)) for t in (q, k, v)),
                      beta_raw, *(part(t, slice(cut, None))
                                  for t in (lam, gate, decay)), mid)
    torch.testing.assert_close(torch.cat([first, second], 1), full,
                               rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(last, state, rtol=1e-4, atol=1e-4)
    args = (q, k, v, beta_raw, lam, gate, decay, zero)
    assert set(torch.library.opcheck(op, args).values()) == {"SUCCESS"}
    compiled = torch.compile(lambda *a: op(*a), fullgraph=True)
    out, st = compiled(*args)
    assert torch.equal(out, full) and torch.equal(st, state)


LAYER_CONFIG = dict(n_embd=32, n_head=2, conv_hidden=16, prior_type="softmax")


@pytest.fixture(scope="module")
def imported_layer(femc_bin, tmp_path_factory):
    """A random softmax FreeEnergyMixer layer with a mask, through
    femc.import_layer and femc."""
    from layer_cases import make_params
    out = tmp_path_factory.mktemp("torch_layer")
    params = make_params(LAYER_CONFIG, seed=8)
    layer = femc.import_layer(params, str(out), config=LAYER_CONFIG,
                              name="torch_layer", mask=True)
    femc.compile(layer.mlir, out / "lib", femc=femc_bin)
    return str(out / "lib" / "torch_layer.so"), params


def test_layer_op_matches_the_layer_reference(imported_layer, kernels_lib):
    from femc import layer_reference
    from layer_cases import make_inputs as layer_inputs
    library, params = imported_layer
    layer = fem_op.Layer(library, params, op_name="test_torch_layer")
    assert layer.op is torch.ops.femc.test_torch_layer
    assert layer.takes_mask
    # The parameters under schema names (state_dict names made identifiers).
    names = fem_op.schema_names("test_torch_layer")
    assert names[:2] == ["x", "attention_mask"]
    assert "W_q_weight" in names and "W_q.weight" in layer.param_names
    x, mask = layer_inputs(LAYER_CONFIG, 2, 19, seed=4, masked=True)
    with torch.no_grad():
        y = layer(torch.from_numpy(x), torch.from_numpy(mask))
    assert y.shape == (2, 19, 32)
    ref = layer_reference.forward(params, LAYER_CONFIG, x, mask)
    assert np.abs(y.double().numpy() - ref).max() <= 1e-4 * np.abs(ref).max()
    # opcheck on the op, torch.compile on the module.
    args = (torch.from_numpy(x), torch.from_numpy(mask), *layer.params)
    assert set(torch.library.opcheck(layer.op, args).values()) == \
        {"SUCCESS"}
    compiled = torch.compile(layer, fullgraph=True)
    x2 = torch.randn(1, 7, 32)
    torch.testing.assert_close(compiled(x2), layer(x2), rtol=0, atol=0)
    with pytest.raises(ValueError, match="'softmax_causal' is not a layer"):
        fem_op.Layer(kernels_lib, params, "softmax_causal", "test_not_layer")
    assert not hasattr(torch.ops.femc, "test_not_layer")
    with pytest.raises(KeyError, match="W_q.weight"):
        fem_op.Layer(library, {k: v for k, v in params.items()
                               if k != "W_q.weight"}, op_name="test_layer2")


def test_layer_library_registers_its_layer(femc_bin, tmp_path):
    """examples/fem_layer_torch.mlir: the library holds the layer and its
    FEM read kernel; register() picks the layer; the fake output is
    (B, T, n_embd)."""
    model = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "examples", "fem_layer_torch.mlir")
    femc.compile(model, tmp_path, femc=femc_bin)
    op = fem_op.register(str(tmp_path / "fem_layer_torch.so"),
                         op_name="test_fem_layer_torch")
    kernel = fem_op.get_kernel("test_fem_layer_torch")
    assert kernel.layer and kernel.name == "fem_layer_torch"
    gen = torch.Generator().manual_seed(1)
    args = [torch.randn(2, 12, 256, generator=gen), torch.ones(2, 12)]
    for arg in kernel.args[2:]:
        if arg["role"] == "input":
            args.append(0.05 * torch.randn(*arg["shape"], generator=gen))
    out = op(*args)
    assert out.shape == (2, 12, 256) and torch.isfinite(out).all()
    assert np.array_equal(out.numpy(), kernel.run(**{
        a["name"]: t.numpy() for a, t in zip(kernel.args, args)}))
    assert set(torch.library.opcheck(op, args).values()) == {"SUCCESS"}

"""Tests of the femc module with torch tensors, and of the custom op of
examples/torch_op. Skipped when PyTorch is not installed."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

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
    grad = [t.clone().requires_grad_() for t in inputs]
    with pytest.raises(RuntimeError, match="no backward"):
        op(*grad)
    with torch.no_grad():
        assert torch.equal(op(*grad), op(*inputs))


def test_custom_op_cannot_be_registered_twice(op, kernels_lib):
    with pytest.raises(RuntimeError, match="already registered"):
        fem_op.register(kernels_lib, "softmax_causal",
                        op_name="test_softmax_causal")

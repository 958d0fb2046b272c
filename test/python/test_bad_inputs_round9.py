"""Bad inputs, round 9 (docs/bad-inputs.md): the PyTorch op with tensors on
two devices, and what kernel.run says about a carried state. Numpy; the
torch cases skip without PyTorch (ctest runs this file under python.pytest
and, with PyTorch, under python.torch)."""

import numpy as np
import pytest

import femc

B, T, H, D = 1, 8, 2, 16


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    q, k, v, lam, gate = [rng.standard_normal((B, T, H, D)).astype(np.float32)
                          for _ in range(5)]
    beta = np.full(H * D, 0.5, np.float32)
    return [q, k, v, beta, lam, gate]


def test_run_docstring_says_state_none_is_the_empty_state():
    # Round 8 made state=None the empty state; the docstring still said only
    # that the state "may be left out".
    doc = femc.Kernel.run.__doc__
    assert "'state' may be left out or given as None: the empty, all-zero " \
        "state" in doc


# --- the PyTorch op (examples/torch_op/fem_op.py) ------------------------------

@pytest.fixture(scope="module")
def op(kernels_lib):
    torch = pytest.importorskip("torch")
    if not hasattr(torch.library, "custom_op"):
        pytest.skip("PyTorch < 2.4 has no torch.library.custom_op")
    import fem_op  # examples/torch_op, on sys.path by conftest.py
    return fem_op.register(kernels_lib, "softmax_causal",
                           op_name="round9_softmax_causal")


def test_torch_op_with_a_meta_tensor_among_cpu_tensors(op, kernels_lib):
    # Was: one meta tensor among CPU tensors dispatched to the op's fake
    # implementation (Meta outranks CPU), which returned torch.empty on the
    # CPU: an output never written, handed back as the result (a silent
    # garbage answer).
    import torch
    args = [torch.from_numpy(a) for a in _inputs()]
    args[1] = args[1].to("meta")
    with pytest.raises(RuntimeError) as e:
        op(*args)
    assert str(e.value) == (
        "femc::round9_softmax_causal: argument 'k' is on meta but argument "
        "'q' is on cpu; pass every tensor on one device (femc ops run on CPU "
        "tensors)")
    # Every tensor on meta is shape propagation: a meta result.
    meta = op(*[a.to("meta") for a in args])
    assert meta.device.type == "meta" and tuple(meta.shape) == (B, T, H, D)
    # On the CPU it computes what the kernel does.
    cpu = [torch.from_numpy(a) for a in _inputs()]
    kernel = femc.load(kernels_lib)["softmax_causal"]
    np.testing.assert_array_equal(
        op(*cpu).numpy(), kernel.run(**dict(zip(
            ["q", "k", "v", "beta_raw", "lam", "gate"], _inputs()))))


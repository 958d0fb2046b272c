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



# --- bfloat16 kernels from numpy (ml_dtypes) -------------------------------------

@pytest.fixture(scope="module")
def bf16_kernel(femc_bin, tmp_path_factory):
    import os
    import subprocess
    model = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "tune", "Inputs", "lowp_small.mlir")
    out = tmp_path_factory.mktemp("lowp")
    subprocess.run([femc_bin, model, "-o", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return femc.load(str(out / "lowp_small.so"))["softmax_bf16"]


def test_run_of_a_bfloat16_kernel_without_ml_dtypes(bf16_kernel, monkeypatch):
    # Was numpy's bare "TypeError: data type 'bfloat16' not understood" from
    # allocating the output, naming neither the kernel nor the output. Since
    # round 13 float32 inputs are refused first, naming the input and the
    # ways numpy can pass bfloat16 (test_bad_inputs_round13.py has the
    # output's TypeError, for torch inputs).
    import sys
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # import fails
    inputs = dict(zip(["q", "k", "v", "beta_raw", "lam", "gate"], _inputs()))
    with pytest.raises(femc.Error) as e:
        bf16_kernel.run(**inputs)
    assert str(e.value).startswith(
        "kernel 'softmax_bf16': argument 'q' (#0): expected dtype bfloat16, "
        "got float32; numpy has no bfloat16: pass an ml_dtypes.bfloat16 "
        "array (a.astype(ml_dtypes.bfloat16); pip install ml_dtypes), a "
        "numpy uint16 array of the bit patterns (femc.bfloat16_bits(a)")


def test_ml_dtypes_bfloat16_arrays_are_the_kernels_bits(bf16_kernel):
    # Was: "ndarray of dtype bfloat16 ('<V2'), which DLPack cannot describe"
    # for every ml_dtypes array (JAX's arrays convert to them), and run()
    # allocated such an array for the output and refused it.
    ml_dtypes = pytest.importorskip("ml_dtypes")
    import fem_reference  # examples/embed_python: the float64 reference
    names = ["q", "k", "v", "beta_raw", "lam", "gate"]
    arrays = dict(zip(names, [a.astype(ml_dtypes.bfloat16)
                              for a in _inputs(3)]))
    out = bf16_kernel.run(**arrays)
    assert out.dtype == ml_dtypes.bfloat16 and out.shape == (B, T, H, D)
    ref = fem_reference.softmax_fem(*[arrays[n].astype(np.float64)
                                      for n in names])
    # bfloat16 storage: 8 bits of mantissa in the output's rounding.
    assert np.max(np.abs(out.astype(np.float64) - ref)) <= \
        2 ** -7 * np.max(np.abs(ref))
    # A preallocated ml_dtypes output gets the same bits.
    again = np.empty((B, T, H, D), ml_dtypes.bfloat16)
    bf16_kernel(*[arrays[n] for n in names], again)
    np.testing.assert_array_equal(again.view(np.uint16), out.view(np.uint16))
    # The same bits as through torch, when torch is there.
    try:
        import torch
    except ImportError:
        return
    tensors = [torch.from_numpy(arrays[n].view(np.int16)).view(torch.bfloat16)
               for n in names]
    result = torch.empty(B, T, H, D, dtype=torch.bfloat16)
    bf16_kernel(*tensors, result)
    np.testing.assert_array_equal(result.view(torch.int16).numpy(),
                                  out.view(np.int16))

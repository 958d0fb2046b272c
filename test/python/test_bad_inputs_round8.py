"""Bad inputs, round 8 (docs/bad-inputs.md): arrays whose meaning DLPack
does not carry (masked arrays, torch outputs that require grad), kernels
called in the wrong form, and autograd told about the launches' in-place
writes. Numpy; the torch cases skip without PyTorch (ctest runs this file
under python.pytest and, with PyTorch, under python.torch)."""

import numpy as np
import pytest

import femc

B, T, H, D = 1, 8, 2, 16


@pytest.fixture(scope="module")
def kernel(kernels_lib):
    return femc.load(kernels_lib)["softmax_causal"]


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    q, k, v, lam, gate = [rng.standard_normal((B, T, H, D)).astype(np.float32)
                          for _ in range(5)]
    beta = np.full(H * D, 0.5, np.float32)
    return dict(q=q, k=k, v=v, beta_raw=beta, lam=lam, gate=gate)


# --- masked arrays ------------------------------------------------------------

def test_masked_input_is_refused(kernel):
    # Was: the data passed without its mask, the masked elements read as
    # values (a silent wrong answer: the result equal to the unmasked one).
    inputs = _inputs()
    inputs["k"] = np.ma.masked_array(inputs["k"], mask=inputs["k"] > 1)
    with pytest.raises(TypeError, match=r"^kernel 'softmax_causal': argument "
                       r"'k' \(#1\): a numpy masked array \(numpy.ma."
                       r"MaskedArray\), whose mask DLPack and the buffer "
                       r"protocol do not pass: the kernel would read every "
                       r"element, masked ones included, as values; pass "
                       r"a.filled\(value\)"):
        kernel.run(**inputs)
    # A mask with nothing masked is refused alike: the type says a mask
    # matters.
    plain = _inputs()
    args = list(plain.values()) + [np.empty((B, T, H, D), np.float32)]
    args[0] = np.ma.masked_array(args[0])
    with pytest.raises(TypeError, match=r"argument 'q' \(#0\): a numpy masked"):
        kernel(*args)


def test_masked_output_is_refused(kernel):
    inputs = _inputs()
    out = np.ma.masked_array(np.zeros((B, T, H, D), np.float32), mask=True)
    with pytest.raises(TypeError, match=r"argument 'out' \(#6\): a numpy "
                       r"masked array .* the kernel would write every element "
                       r"and leave the mask as it is; pass a plain array "
                       r"\(numpy.ma.getdata\(a\) writes its data\)$"):
        kernel(*inputs.values(), out)
    assert not out.data.any()
    # The data itself is an ordinary array.
    kernel(*inputs.values(), np.ma.getdata(out))
    np.testing.assert_array_equal(out.data, kernel.run(**inputs))


# --- the call forms -----------------------------------------------------------

def test_run_with_positional_arrays_names_the_form(kernel):
    # Was nanobind's "run(): incompatible function arguments. The following
    # argument types are supported: 1. run(self, **inputs) -> object".
    inputs = _inputs()
    with pytest.raises(TypeError) as e:
        kernel.run(*inputs.values())
    assert str(e.value) == (
        "kernel 'softmax_causal': run() takes the inputs by name, "
        "run(q=..., k=..., v=..., beta_raw=..., lam=..., gate=...), got 6 "
        "positional arguments; to pass every array in order, outputs "
        "included, call kernel(*arrays) or kernel.launch(*arrays)")
    q = inputs.pop("q")
    with pytest.raises(TypeError, match=r"got 1 positional argument;"):
        kernel.run(q, **inputs)


def test_launch_with_a_keyword_array_names_the_form(kernel):
    inputs = _inputs()
    out = np.empty((B, T, H, D), np.float32)
    for call in (kernel, kernel.launch):
        with pytest.raises(TypeError) as e:
            call(*inputs.values(), out=out)
        assert str(e.value) == (
            "kernel 'softmax_causal': launch() takes the arrays in order, "
            "inputs then outputs, as launch(q, k, v, beta_raw, lam, gate, "
            "out), and the keyword max_threads only; got the keyword 'out' "
            "(run(name=array, ...) takes the inputs by name)")
    with pytest.raises(TypeError) as e:
        kernel.launch(list(inputs.values()) + [out])
    assert str(e.value) == (
        "kernel 'softmax_causal': launch() takes the arrays as separate "
        "arguments, launch(q, k, v, beta_raw, lam, gate, out), got one "
        "list; unpack it: launch(*arrays)")
    with pytest.raises(TypeError, match=r"^kernel 'softmax_causal': "
                       r"max_threads must be an int, got float$"):
        kernel(*inputs.values(), out, max_threads=2.0)
    # The keyword itself still works, with its range check.
    kernel(*inputs.values(), out, max_threads=1)
    np.testing.assert_array_equal(out, kernel.run(**inputs))
    with pytest.raises(ValueError, match=r"max_threads is -1"):
        kernel(*inputs.values(), out, max_threads=-1)


def test_module_indexed_by_something_else_than_a_name(kernels_lib):
    # Was nanobind's "__getitem__(): incompatible function arguments".
    lib = femc.load(kernels_lib)
    for key, shown in ((0, "int 0"), (b"softmax_causal",
                                      "bytes b'softmax_causal'")):
        for lookup in (lib.__getitem__, lib.kernel):
            with pytest.raises(TypeError) as e:
                lookup(key)
            assert str(e.value) == (
                f"femc.Module: kernels are looked up by name, e.g. "
                f"module['softmax_causal'], got {shown} (kernels: "
                f"'softmax_causal', 'softmax_full_mask')")
    assert lib["softmax_causal"].name == "softmax_causal"


# --- torch --------------------------------------------------------------------

def _torch_args(torch):
    """The inputs as torch tensors, and an output tensor."""
    return [torch.from_numpy(a) for a in _inputs().values()], \
        torch.empty(B, T, H, D)


def test_torch_output_that_requires_grad(kernel):
    torch = pytest.importorskip("torch")
    args, ref = _torch_args(torch)
    kernel(*args, ref)
    # Was: written outside autograd without a word (the grad-mode write
    # torch itself refuses for a leaf that requires grad).
    out = torch.zeros(B, T, H, D, requires_grad=True)
    with pytest.raises(TypeError) as e:
        kernel(*args, out)
    assert str(e.value) == (
        "kernel 'softmax_causal': argument 'out' (#6): a torch tensor that "
        "requires grad, which the kernel would write outside autograd (no "
        "gradient flows through a launch); write it under torch.no_grad(), "
        "pass out.detach(), or use the PyTorch op "
        "(examples/torch_op/fem_op.py) for a result in the graph")
    assert not out.detach().any()
    with torch.no_grad():
        kernel(*args, out)
    assert torch.equal(out.detach(), ref)
    out2 = torch.zeros(B, T, H, D, requires_grad=True)
    kernel(*args, out2.detach())
    assert torch.equal(out2.detach(), ref)


def test_torch_output_saved_for_backward_then_written(kernel):
    # A tensor saved by autograd and then overwritten by a launch: the
    # backward used the new values without a word (the version counter was
    # not bumped); now it raises torch's in-place modification error.
    torch = pytest.importorskip("torch")
    args, out = _torch_args(torch)
    w = torch.ones(B, T, H, D, requires_grad=True)
    y = (w * out).sum()  # saves out for w's gradient
    version = out._version
    kernel(*args, out)
    assert out._version > version
    with pytest.raises(RuntimeError, match="modified by an inplace "
                       "operation"):
        y.backward()


def test_torch_masked_tensor_is_refused(kernel):
    torch = pytest.importorskip("torch")
    masked = pytest.importorskip("torch.masked")
    args, out = _torch_args(torch)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MaskedTensor is a prototype
        args[2] = masked.masked_tensor(args[2], args[2] > 0)
    # Was: "data is NULL but the tensor has 256 elements".
    with pytest.raises(TypeError, match=r"^kernel 'softmax_causal': argument "
                       r"'v' \(#2\): a torch MaskedTensor, whose mask DLPack "
                       r"does not pass: the kernel would read every element, "
                       r"masked ones included, as values; pass "
                       r"t.to_tensor\(value\)"):
        kernel(*args, out)


# --- a scan kernel's state=None -----------------------------------------------

LINEAR_STATE = """
func.func @linear_state(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) state(%state : tensor<?x?x?x28xf32>) {causal} -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}
"""


def test_state_none_is_the_empty_state(femc_bin, tmp_path):
    # Was: "argument 'state' (#6): expected an array supporting DLPack or
    # the buffer protocol (...), got NoneType", while leaving state out
    # meant the empty state.
    model = tmp_path / "linear_state.mlir"
    model.write_text(LINEAR_STATE)
    kernel = femc.compile(str(model), str(tmp_path / "out"), femc=femc_bin)[
        "linear_state"]
    rng = np.random.default_rng(3)
    shape = (1, 5, 2, 8)
    inputs = {n: rng.standard_normal(shape).astype(np.float32)
              for n in ("q", "k", "v", "lam", "gate")}
    inputs["beta_raw"] = np.zeros(16, np.float32)
    out, state = kernel.run(**inputs, state=None)
    out0, state0 = kernel.run(**inputs)
    out1, state1 = kernel.run(**inputs, state=np.zeros((1, 2, 8, 28),
                                                       np.float32))
    np.testing.assert_array_equal(out, out0)
    np.testing.assert_array_equal(state, state0)
    np.testing.assert_array_equal(out, out1)
    np.testing.assert_array_equal(state, state1)

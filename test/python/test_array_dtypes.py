"""Arrays whose dtype DLPack cannot describe (python/src/FemcModule.cpp).

A numpy array in non-native byte order ('>f4'), of dtype object, long
double or strings is still an array: the TypeError says which dtype it has,
why it cannot be passed without a copy and which dtype the kernel takes.
It used to say "expected an array supporting DLPack or the buffer
protocol (numpy.ndarray, torch.Tensor, ...), got ndarray", which told the
caller to pass what they had passed. Nothing runs; the output is untouched.
docs/bad-inputs.md lists the messages.
"""

import numpy as np
import pytest

import femc
from test_scans import make_inputs, scan_lib, scans  # noqa: F401 (fixtures)

BIG_ENDIAN = ("of dtype '>f4' (float32 in non-native byte order), which "
              "DLPack and the buffer protocol cannot pass without a copy; "
              "the kernel takes float32 (convert it with "
              "numpy.ascontiguousarray(a, dtype=numpy.float32))")


@pytest.mark.parametrize("kernel_name, name", [
    ("linear", "q"), ("gla_state", "decay"), ("aft", "k"), ("ssm", "A"),
    ("ssm_state", "state")])
def test_big_endian_input_through_run(scans, kernel_name, name):
    kernel = scans.kernel(kernel_name)
    inputs = make_inputs(kernel, 1, 5, 2, 16)
    if name == "state":
        ks = kernel.args[[a["name"] for a in kernel.args].index("state")]
        inputs["state"] = np.zeros((1, 2, 16, ks["shape"][3]), np.float32)
    inputs[name] = inputs[name].astype(">f4")
    index = [a["name"] for a in kernel.args].index(name)
    with pytest.raises(TypeError) as info:
        kernel.run(**inputs)
    assert str(info.value) == (
        f"kernel '{kernel_name}': argument '{name}' (#{index}): "
        f"ndarray {BIG_ENDIAN}")


@pytest.mark.parametrize("dtype, shown", [
    (object, "of dtype object ('|O'), which DLPack cannot describe"),
    (np.longdouble, "of dtype float128 ('<f16'), which DLPack cannot "
                    "describe"),
    ("U1", "of dtype str32 ('<U1'), which DLPack cannot describe"),
])
def test_dtype_dlpack_cannot_describe(scans, dtype, shown):
    kernel = scans.kernel("gla")
    inputs = make_inputs(kernel, 1, 5, 2, 16)
    inputs["decay"] = inputs["decay"].astype(dtype)
    with pytest.raises(TypeError) as info:
        kernel.run(**inputs)
    assert str(info.value) == (
        f"kernel 'gla': argument 'decay' (#6): ndarray {shown}; the "
        "kernel takes float32 (convert it with numpy.ascontiguousarray(a, "
        "dtype=numpy.float32))")


def test_big_endian_output_through_launch(scans):
    # Destination passing: a big-endian output array is refused the same
    # way and left as it was.
    kernel = scans.kernel("linear")
    inputs = make_inputs(kernel, 1, 5, 2, 16)
    out = np.full((1, 5, 2, 16), 7, ">f4")
    with pytest.raises(TypeError) as info:
        kernel(*inputs.values(), out)
    assert str(info.value) == (
        f"kernel 'linear': argument 'out' (#6): ndarray {BIG_ENDIAN}")
    assert (out == 7).all()


def test_not_an_array_keeps_its_message(scans):
    kernel = scans.kernel("linear")
    inputs = make_inputs(kernel, 1, 5, 2, 16)
    inputs["beta_raw"] = [1.0] * 32
    with pytest.raises(TypeError) as info:
        kernel.run(**inputs)
    assert str(info.value) == (
        "kernel 'linear': argument 'beta_raw' (#3): expected an array "
        "supporting DLPack or the buffer protocol (numpy.ndarray, "
        "torch.Tensor, ...), got list")


def test_native_copy_runs_and_matches(scans):
    # The conversion the message suggests gives the same output as the
    # native array.
    kernel = scans.kernel("gla")
    inputs = make_inputs(kernel, 1, 5, 2, 16)
    expected = kernel.run(**inputs)
    swapped = dict(inputs, decay=inputs["decay"].astype(">f4"))
    swapped["decay"] = np.ascontiguousarray(swapped["decay"],
                                            dtype=np.float32)
    np.testing.assert_array_equal(kernel.run(**swapped), expected)

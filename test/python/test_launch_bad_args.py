"""Bad launch arguments of the Python module that are not the arrays
themselves (python/src/FemcModule.cpp): each is a ValueError naming the
kernel and the value, never a TypeError from the binding layer or a
message in the C API's words."""

import numpy as np
import pytest

import femc


@pytest.fixture(scope="module")
def kernel(kernels_lib):
    return femc.load(kernels_lib).kernel("softmax_causal")


def _arrays(kernel):
    arrays = []
    for a in kernel.args:
        shape = [1 if s is None else s for s in a["shape"]]
        arrays.append(np.zeros(shape, np.float32))
    return arrays


@pytest.mark.parametrize("value", [-1, 2**31, 2**40, 2**70, -2**70])
def test_max_threads_out_of_range(kernel, value):
    # Was: -1 -> femc.Error "options->max_threads is -1"; 2**40 and 2**70 ->
    # TypeError "incompatible function arguments".
    with pytest.raises(ValueError) as info:
        kernel(*_arrays(kernel), max_threads=value)
    assert str(info.value) == (
        f"kernel 'softmax_causal': max_threads is {value}, expected 0 (all "
        "of the context's threads) or a positive limit up to 2147483647")


def test_max_threads_in_range_runs(kernel):
    arrays = _arrays(kernel)
    for value in (0, 1, 2**31 - 1):
        kernel(*arrays, max_threads=value)
        kernel.launch(*arrays, max_threads=value)

"""Objects that offer DLPack but fail at it (python/src/FemcModule.cpp).

A capsule already consumed, or an object whose __dlpack__() raises or
returns something that is not a capsule, used to get "expected an array
supporting DLPack or the buffer protocol (numpy.ndarray, torch.Tensor,
...), got PyCapsule" (or the class name), hiding the producer's own error.
The TypeError now says what went wrong. Nothing runs; the output is
untouched. docs/bad-inputs.md lists the messages.
"""

import numpy as np
import pytest

from test_scans import make_inputs, scan_lib, scans  # noqa: F401 (fixtures)

PREFIX = ("kernel 'linear': argument 'q' (#0): expected an array supporting "
          "DLPack or the buffer protocol (numpy.ndarray, torch.Tensor, ...), "
          "got ")


class Raises:
    def __dlpack__(self, **kwargs):
        raise RuntimeError("the device is gone")

    def __dlpack_device__(self):
        return (1, 0)


class ReturnsInt:
    def __dlpack__(self, **kwargs):
        return 5

    def __dlpack_device__(self):
        return (1, 0)


def _launch(kernel, q):
    inputs = make_inputs(kernel, 1, 5, 2, 16)
    inputs["q"] = q
    out = np.full((1, 5, 2, 16), 7, np.float32)
    kernel(*inputs.values(), out)
    return out


@pytest.mark.parametrize("make, found", [
    (lambda q: Raises(),
     "an object whose __dlpack__() raised RuntimeError: the device is gone"),
    (lambda q: ReturnsInt(),
     "an object whose __dlpack__() returned int, not a DLPack capsule"),
])
def test_failing_producer_is_named(scans, make, found):
    kernel = scans.kernel("linear")
    q = make_inputs(kernel, 1, 5, 2, 16)["q"]
    with pytest.raises(TypeError) as info:
        _launch(kernel, make(q))
    assert str(info.value) == PREFIX + found


def test_consumed_capsule_is_named(scans):
    kernel = scans.kernel("linear")
    q = make_inputs(kernel, 1, 5, 2, 16)["q"]
    capsule = q.__dlpack__()
    _launch(kernel, capsule)  # a fresh capsule passes its array
    with pytest.raises(TypeError) as info:
        _launch(kernel, capsule)
    assert str(info.value) == PREFIX + (
        "a DLPack capsule that was already consumed (a capsule passes its "
        "array once; pass the array itself)")

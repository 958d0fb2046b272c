"""bfloat16 bit patterns in plain numpy, for users without ml_dtypes.

numpy has no bfloat16 dtype. A bfloat16 kernel argument also takes a numpy
``uint16`` array of the bit patterns (the upper 16 bits of each float32, as
fem-run's ``'<u2'`` files hold them); these two functions make and read
such arrays. With the ml_dtypes package, ``a.astype(ml_dtypes.bfloat16)``
does the same. See docs/python.md.
"""

import numpy as _np

__all__ = ["bfloat16_bits", "bfloat16_values"]


def bfloat16_bits(a):
    """The bfloat16 bit patterns of ``a`` as a C-contiguous numpy uint16 array.

    Each value is rounded to the nearest bfloat16, ties to even (what
    ml_dtypes and torch do); values beyond bfloat16's range become +-Inf and
    a NaN stays a (quiet) NaN of its sign. ``a`` is anything numpy converts
    to a real float array (a float16/float32/float64 array, a list, ...).
    """
    x = _np.asarray(a)
    if x.dtype.kind not in "fiub":
        raise TypeError(
            "femc.bfloat16_bits: expected real numbers (a float or integer "
            "array), got an array of dtype %s" % x.dtype)
    u = _np.ascontiguousarray(x, dtype=_np.float32).view(_np.uint32)
    rounded = (u + _np.uint32(0x7FFF) + ((u >> 16) & _np.uint32(1))) >> 16
    nan = (u & _np.uint32(0x7FFFFFFF)) > _np.uint32(0x7F800000)
    quiet = (u >> 16) | _np.uint32(0x0040)
    return _np.ascontiguousarray(
        _np.where(nan, quiet, rounded).astype(_np.uint16))


def bfloat16_values(bits):
    """The float32 values of bfloat16 bit patterns (a numpy uint16 array,
    e.g. what a bfloat16 kernel's ``run()`` returns for uint16 inputs);
    exact: every bfloat16 is a float32."""
    b = _np.asarray(bits)
    if b.dtype != _np.uint16:
        raise TypeError(
            "femc.bfloat16_values: expected a numpy uint16 array of "
            "bfloat16 bit patterns, got dtype %s" % b.dtype)
    return (b.astype(_np.uint32) << 16).view(_np.float32)

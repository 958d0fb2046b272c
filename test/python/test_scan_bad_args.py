"""Issue 8's bad inputs of the scan priors through the femc Python module.

A state of the wrong shape, rank, dtype or memory order, a decay or ssm
operand of the wrong shape or dtype, aft with dk not dividing dv, a mask
passed to a prior that takes none: each raises (femc.Error from libfemrt's
launch checks, TypeError for an argument the kernel does not have) with a
message naming the argument, and the kernels of test/python/scan_kernels.mlir
(dynamic B, T, H, dv) run nothing. docs/bad-inputs.md lists the messages.
"""

import numpy as np
import pytest

import femc
from test_scans import make_inputs, scan_lib, scans  # noqa: F401 (fixtures)


def refused(kernel, error, message, **inputs):
    with pytest.raises(error) as info:
        kernel.run(**inputs)
    assert message in str(info.value)


@pytest.mark.parametrize("state, message", [
    (np.zeros((1, 3, 16, 28), np.float32),
     "argument 'state' (#7) dimension 1 (H) is 3 but argument 'q' has H = 2"),
    (np.zeros((1, 2, 16, 27), np.float32),
     "argument 'state' (#7): dimension 3 (Ks) must be 28, got 27"),
    (np.zeros((1, 2, 16), np.float32),
     "argument 'state' (#7): expected rank 4 (B,H,dv,Ks), got rank 3"),
    (np.zeros((1, 2, 16, 28), np.float64),
     "argument 'state' (#7): expected dtype float32, got float64"),
    (np.asfortranarray(np.zeros((1, 2, 16, 28), np.float32)),
     "argument 'state' (#7): strides (1, 1, 2, 32) are not compact row-major"),
])
def test_bad_state(scans, state, message):
    kernel = scans.kernel("gla_state")
    refused(kernel, femc.Error, message, **make_inputs(kernel, 1, 5, 2, 16),
            state=state)


@pytest.mark.parametrize("decay, message", [
    (np.zeros((1, 5, 3), np.float32),
     "argument 'decay' (#6) dimension 2 (H) is 3 but argument 'q' has H = 2"),
    (np.zeros((1, 4, 2), np.float32),
     "argument 'decay' (#6) dimension 1 (T) is 4 but argument 'q' has T = 5"),
    (np.zeros((1, 5, 2), np.float64),
     "argument 'decay' (#6): expected dtype float32, got float64"),
    (np.zeros((1, 5, 2), np.int32),
     "argument 'decay' (#6): expected dtype float32, got int32"),
])
def test_bad_decay(scans, decay, message):
    kernel = scans.kernel("gla_state")
    inputs = make_inputs(kernel, 1, 5, 2, 16)
    inputs["decay"] = decay
    refused(kernel, femc.Error, message, **inputs)


@pytest.mark.parametrize("name, array, message", [
    ("A", np.zeros((48, 4), np.float32),
     "argument 'A' (#5) dimension 0 (E) is 48 but argument 'beta_raw' has "
     "E = 32"),
    ("Bs", np.zeros((1, 5, 5), np.float32),
     "argument 'Bs' (#6): dimension 2 (N) must be 4, got 5 (shape (1, 5, 5))"),
    ("delta", np.zeros((1, 5, 32), np.float16),
     "argument 'delta' (#4): expected dtype float32, got float16"),
    ("D", np.zeros((33,), np.float32),
     "argument 'D' (#8) dimension 0 (E) is 33 but argument 'beta_raw' has "
     "E = 32"),
])
def test_bad_ssm_operand(scans, name, array, message):
    kernel = scans.kernel("ssm_state")
    inputs = make_inputs(kernel, 1, 5, 2, 16)
    inputs[name] = array
    refused(kernel, femc.Error, message, **inputs)


def test_aft_needs_dk_to_divide_twice_dv(scans):
    # dv = 12 is accepted (8 divides 24); dv = 10 is not.
    kernel = scans.kernel("aft_state")
    refused(kernel, femc.Error,
            "prior 'aft' needs dk to divide the read width 2 * dv, found "
            "dk = 8 (argument 'q') and dv = 10",
            **make_inputs(kernel, 1, 5, 2, 10))


@pytest.mark.parametrize("name", ["gla_state", "aft", "ssm"])
def test_mask_for_a_prior_without_one(scans, name):
    kernel = scans.kernel(name)
    refused(kernel, TypeError,
            f"kernel '{name}' has no input called 'mask' (inputs: ",
            **make_inputs(kernel, 1, 5, 2, 16),
            mask=np.ones((1, 5), np.bool_))

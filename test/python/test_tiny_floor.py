"""F's tiny floor where the read is exactly 1 (v = 0, e.g. zero-initialised
value weights): beta*F = log(R(e^(beta V~)) + tiny) = log(1 + tiny), so
F = tiny/beta and out = g*lambda*tiny/beta, 1e-38..1e-32 (semantics.md §3)
for softmax and linear. The epilogues dropped the floor term (it lies below
e^-80 of log Z there) and returned exactly 0: relative error 1 against
max|out| at every beta (gla's and aft's outputs have larger terms of their
own there, checked alike). They now add tiny to beta*F (passes/cpu/Builder.h,
kTiny). Checked against spec_ref.py (float64) at 1e-5 max|out|.
"""

import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import spec_ref  # noqa: E402
from mixer_text import mixer_kernel  # noqa: E402

T4 = "tensor<?x?x?x?xf32>"
T3 = "tensor<?x?x?xf32>"
# name: (prior, causal, extra operands)
KERNELS = {
    "softmax_full": ("softmax", False),
    "softmax_causal": ("softmax", True),
    "linear_full": ("linear", False),
    "linear_causal": ("linear", True),
    "gla": ("gla", True),
    "aft": ("aft", True),
}


def _kernel(name, prior, causal):
    return mixer_kernel(
        name, prior, extra=[("decay", T3)] if prior == "gla" else (),
        attrs="{causal}" if causal and prior in ("softmax", "linear") else "")


@pytest.fixture(scope="module")
def lib(compile_model):
    return compile_model(
        "tiny_floor", "".join(_kernel(n, *c) for n, c in KERNELS.items()))


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("beta_raw", [0.0, -30.0, -10.0, 5.0])
@pytest.mark.parametrize("T", [1, 50])
def test_zero_values_read_tiny_over_beta(lib, name, beta_raw, T):
    prior, causal = KERNELS[name]
    rng = np.random.default_rng(3)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    H, dk, dv = 2, 8, 16
    inp = dict(q=f(2, T, H, dk), k=f(2, T, H, dk),
               v=np.zeros((2, T, H, dv), np.float32),
               beta_raw=np.full(H * dv, beta_raw, np.float32),
               lam=f(2, T, H, dv), gate=f(2, T, H, dv))
    if prior == "gla":
        inp["decay"] = f(2, T, H)
    out = lib.kernel(name).run(**inp).astype(np.float64)
    ref = spec_ref.fem_read(prior, inp, causal=causal)["out"]
    scale = np.abs(ref).max()
    # softmax and linear: R(1) = 1, so out is only the floor's; gla (whose
    # R(1) < 1) and aft (log q-hat / beta) add terms of their own.
    assert 0 < scale and (scale < 1e-30 or prior in ("gla", "aft"))
    worst = np.abs(out - ref).max() / scale
    assert worst <= 1e-5, f"max|out - ref| = {worst:.3g} max|ref|"

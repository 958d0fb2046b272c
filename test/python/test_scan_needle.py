"""One late outlier among equal values, through the causal scans (linear,
gla, aft, ssm): the scan side of test_needle.py (helper C's `scan_needle`
draw, spec_fuzz.py; docs/semantics.md "The shift of the scan reads").

Every key of a channel holds the same value but one, d/beta away, at row
t0. Each row's exact F is then 0 before t0 and ~log(1 + (e^d - 1)/t) / beta
after it: far below the values, so a rounding of log Z that the t equal
keys repeat instead of averaging out shows in full. With the whole
launch's max as the shift, the rows before t0 summed X = e^-d of one sign
(up to 757 float32 ulps of the outlier at T = 4096) and the rows after it
X - 1 = e^-d - 1 of one sign (1000x the tolerance for aft at T = 4096).
The rows of each chunk now take the centred tilt of the keys seen up to the
chunk's end (ChunkShift, passes/cpu/ScanRead.h), and a split launch's
segments start from the range their first row has seen.

Checked against spec_ref.py (float64) at the documented tolerance,
1e-4 max|out| (max|out| is ~1.6e-4 here, the tolerance 1.6e-8 absolute:
half an ulp of the values), unsplit and split into 2 and 4 segments
(FEMC_SCAN_SEGMENTS, read at each launch: docs/runtime.md); the rows of the
chunks before t0's within 2 ulps of the outlier unsplit.
"""

import numpy as np
import pytest

import spec_ref
from test_scans import scan_lib, scans  # noqa: F401 (fixtures)

ULP = 2.0 ** -24


def _inputs(prior, T, t0, d, dv=4, beta_raw=0.5413):
    """v = 0 (ssm: -30, squashed to ~0) but row t0: d / beta (ssm: 0, 1/2
    after the squash); q = k = 1 (equal weights), lam 30 (out = F), gate
    0 (g = 1)."""
    beta = np.log1p(np.exp(beta_raw)) + 1e-6
    low, high = (-30.0, 0.0) if prior == "ssm" else (0.0, d / beta)
    x = {"v": np.full((1, T, 1, dv), low)}
    x["v"][:, t0] = high
    if prior != "ssm":
        x["q"] = np.ones((1, T, 1, 8))
        x["k"] = np.ones((1, T, 1, 8))
    x["beta_raw"] = np.full(dv, beta_raw)
    x["lam"] = np.full((1, T, 1, dv), 30.0)
    x["gate"] = np.zeros((1, T, 1, dv))
    if prior == "gla":
        x["decay"] = np.full((1, T, 1), -10.0)
    if prior == "ssm":
        x["delta"] = np.full((1, T, dv), 0.999)
        x["A"] = np.full((dv, 4), -1e-6)
        x["Bs"] = np.ones((1, T, 4))
        x["Cs"] = np.ones((1, T, 4))
        x["D"] = np.full(dv, 1e-6)
    return {n: a.astype(np.float32) for n, a in x.items()}


CASES = [(T, t0, d) for T, t0s in ((257, (250, 100)), (1031, (1024, 700)))
         for t0 in t0s for d in (0.5, 3.0, -3.0)] + [(4096, 4000, 0.5)]


@pytest.mark.parametrize("segments", [1, 2, 4])
@pytest.mark.parametrize("prior", ["linear", "gla", "aft", "ssm"])
def test_scan_needle(scans, monkeypatch, prior, segments):
    monkeypatch.setenv("FEMC_SCAN_SEGMENTS", str(segments))
    kernel = scans.kernel(prior)
    worst = []
    for T, t0, d in CASES:
        x = _inputs(prior, T, t0, d)
        out = kernel.run(**x).astype(np.float64)
        ref = spec_ref.fem_read(prior, x, causal=True)["out"]
        err = np.abs(out - ref)
        worst.append((err.max() / np.abs(ref).max() / 1e-4, T, t0, d))
        if segments == 1:
            # The chunks (64 rows) before t0's read X - 1 = 0 exactly.
            outlier = 0.5 if prior == "ssm" else abs(d) / 1.0
            before = err[:, : t0 // 64 * 64].max() / (ULP * outlier)
            assert before <= 2.0, (
                f"T={T} t0={t0} d={d}: rows before the outlier's chunk off "
                f"by {before:.3g} ulps of it")
    ratio, T, t0, d = max(worst)
    # A split launch hands each segment the running range of the segments
    # before it (docs/semantics.md, "A launch split into segments"); with
    # the whole run's range a segment centring its carried sums rounded F
    # to ~u/beta: up to 4.9x here (112-1000x before the centring).
    bound = 1.0
    assert ratio <= bound, (
        f"{prior}, {segments} segment(s): T={T} t0={t0} d={d} off by "
        f"{ratio:.3g} x the tolerance 1e-4 max|out| (bound {bound})")

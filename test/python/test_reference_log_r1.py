"""The float64 Python readings (spec_ref.py, spec_adversarial_ref.py) where
log R(1) is near 0 and the output is far below 1: F = (log R(1) + log mean
X + M)/β carries any rounding of log R(1) divided by β, against an output
of the values' size.

Two cases, both checked against the limit the formulas reach when every
β·Ṽ is ~1e-30 (so e^(β·Ṽ) = 1 + β·Ṽ to 1e-30 and F is log R(1)/β plus the
X channels' weighted mean of Ṽ, to relative 1e-30):

* aft with every q equal (p equal, q̂ = 1, log q̂ = 0 exactly in real
  arithmetic), W = 2·dv = 6 and 8, dk | dv and dk ∤ dv: spec_ref took
  log q̂ = log u − log ‖u‖ + ½·log W, 1e-16 off 0 where log sqrt(W) and
  ½·log W round apart (W = 6, 8): F was 1e-16/β against values of 1e-30
  (relative error 1 of max|out|); spec_adversarial_ref took log of the
  rounded q̂·Σκ/den (1e14 of max|out| at W = 18, 32, 64). Both now form
  log q̂ = log u − ½·log(Σu²/W), 0 exactly for equal p.
* gla with φ(q), φ(k) ~ 1e9 (Σw ~ 1e20, log R(1) = −log1p(1e-5/Σw) ~
  −1e-25) and values of 1e-30 to 1e-25: spec_adversarial_ref took
  log(Σw/(Σw + 1e-5)), a rounded quotient whose log is 1e-16 off
  (1.0 of max|out|); now −log1p(1e-5/Σw), as spec_ref and the C++ reference.

The C++ reference (reference/Reference.cpp) already agreed with the limit
in both (checked through fem-run --check in test_reference_tiny_spread.py).
"""

import numpy as np
import pytest

import spec_adversarial_ref as sar
import spec_ref

TOL = 1e-9  # of max|F|; both readings were off by 1 or more before
TINY = 2.0 ** -126


def _softplus(x):
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def _inputs(rng, prior, B, T, H, dk, dv, scale_v, qk=1.0):
    f = lambda *s: rng.standard_normal(s)
    x = {"q": f(B, T, H, dk), "k": f(B, T, H, dk),
         "v": scale_v * f(B, T, H, dv),
         "beta_raw": rng.uniform(-0.5, 3.0, H * dv),
         "lam": f(B, T, H, dv), "gate": f(B, T, H, dv)}
    if prior == "aft":
        x["q"] = np.full((B, T, H, dk), 0.3)  # every p equal: q̂ = 1
    if prior == "gla":
        x["q"] = qk * np.abs(x["q"])
        x["k"] = qk * np.abs(x["k"])
        x["decay"] = f(B, T, H)
    # float32 inputs, as a kernel gets them
    return {n: a.astype(np.float32).astype(np.float64) for n, a in x.items()}


def _limit_aft(x, eps=1e-6):
    """F at β·Ṽ ~ 1e-30 with q̂ = 1: the X channels' κ-weighted running
    mean of Ṽ (no clip: |v| ≪ cap/β) plus tiny/β. Channel c of the X
    half reads q/k channel (dv + c) mod dk."""
    k, v = x["k"], x["v"]
    B, T, H, dk = k.shape
    dv = v.shape[-1]
    iota = (dv + np.arange(dv)) % dk
    kx = k[..., iota]  # (B, T, H, dv)
    kappa = np.exp(kx - kx.max(axis=1, keepdims=True)) + eps
    beta = (_softplus(x["beta_raw"]) + eps).reshape(H, dv)
    return (np.cumsum(kappa * v, axis=1) / np.cumsum(kappa, axis=1)
            + TINY / beta)


def _limit_gla(x, eps=1e-6):
    """F at β·Ṽ ~ 1e-30: log R(1)/β + the weights' mean of Ṽ, with
    log R(1) = −log1p(1e-5/Σw) and w_ts = e^(C_t − C_s)·⟨φ(q_t), φ(k_s)⟩,
    plus tiny/β (R(1) = 1 − 1e-25)."""
    q, k, v, decay = x["q"], x["k"], x["v"], x["decay"]
    B, T, H, dk = q.shape
    phi = lambda a: np.maximum(a, 0.0) + eps
    C = np.clip(np.cumsum(-(np.maximum(decay, 0.0) + eps), axis=1), -60, 50)
    beta = (_softplus(x["beta_raw"]) + eps).reshape(H, -1)
    F = np.empty(v.shape)
    for b in range(B):
        for h in range(H):
            w = phi(q[b, :, h]) @ phi(k[b, :, h]).T  # (T, S)
            w = np.tril(w * np.exp(C[b, :, h, None] - C[b, None, :, h]))
            sw = w.sum(-1, keepdims=True)
            F[b, :, h] = (w @ v[b, :, h]) / sw \
                - np.log1p(1e-5 / sw) / beta[h] + TINY / beta[h]
    return F


def _check(prior, x, want):
    scale = np.abs(want).max()
    for name, F in (("spec_ref", spec_ref.fem_read(prior, x)["F"]),
                    ("spec_adversarial_ref", sar.read(prior, x)["F"])):
        err = np.abs(F - want).max() / scale
        assert err <= TOL, f"{name}: max|F - limit| = {err:.3g} x max|F|"


@pytest.mark.parametrize("dv,dk", [(3, 2), (3, 3), (4, 8), (4, 4), (4, 2),
                                   (9, 6), (16, 32), (32, 64)])
def test_aft_equal_q(dv, dk):
    rng = np.random.default_rng(dv * 100 + dk)
    x = _inputs(rng, "aft", 2, 29, 2, dk, dv, 1e-30)
    _check("aft", x, _limit_aft(x))


@pytest.mark.parametrize("scale_v", [1e-30, 1e-25])
def test_gla_tiny_log_r1(scale_v):
    rng = np.random.default_rng(11)
    x = _inputs(rng, "gla", 2, 31, 2, 8, 5, scale_v, qk=1e9)
    _check("gla", x, _limit_gla(x))

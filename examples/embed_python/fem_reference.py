"""A float64 numpy implementation of the softmax FEM read.

This is the kernel-level Free Energy Mixer with the softmax prior as
docs/semantics.md (shared/design/semantics.md) defines it, written for
clarity: every step is one vectorised numpy expression over whole tensors,
in float64, so it is a reference for femc's float32 kernels (tolerance
1e-4 * max|reference|). It forms the T x S attention matrix, so keep T
moderate (a few thousand at most).

Layout bthd: q (B,T,H,dk), k (B,S,Hkv,dk), v (B,S,Hkv,dv), beta_raw (E=H*dv),
lam and gate (B,T,H,dv), optional mask (B,S) (non-zero keeps a key);
result (B,T,H,dv).
"""

import numpy as np

TINY = 2.0 ** -126  # float32's smallest normal


def softplus(x):
    """log(1 + e^x), without overflow."""
    return np.logaddexp(0.0, x)


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def softmax_fem(q, k, v, beta_raw, lam, gate, mask=None, causal=True,
                cap=40.0, eps=1e-6, scale=None):
    """Returns out (B,T,H,dv) as float64; see the module docstring.

    mask is femc's key-padding mask: masked keys get no weight and do not
    enter the shift M; a query that sees no key gets out = 0.
    """
    q, k, v, beta_raw, lam, gate = (
        np.asarray(a, dtype=np.float64) for a in (q, k, v, beta_raw, lam, gate))
    B, T, H, dk = q.shape
    _, S, Hkv, dv = v.shape
    if H % Hkv:
        raise ValueError(f"H = {H} is not a multiple of Hkv = {Hkv}")
    if causal and S != T:
        raise ValueError("a causal read needs S == T")

    # Grouped heads: query head h reads key/value head h // (H // Hkv).
    k = np.repeat(k, H // Hkv, axis=2)                   # (B,S,H,dk)
    v = np.repeat(v, H // Hkv, axis=2)                   # (B,S,H,dv)

    # Which keys each query sees: (B,1,T,S), broadcast over heads.
    visible = np.ones((B, 1, T, S), dtype=bool)
    if causal:
        visible &= np.tril(np.ones((T, S), dtype=bool))
    if mask is not None:
        visible &= np.asarray(mask, dtype=bool)[:, None, None, :]

    # 1. Temperature, clip, shift, tilt (per flat channel e = h*dv + c).
    beta = (softplus(beta_raw) + eps).reshape(1, 1, H, dv)
    v_clip = np.clip(v, -cap / beta, cap / beta)         # V~
    bv = beta * v_clip
    if mask is not None:                                 # masked keys: no part in M
        keep = np.asarray(mask, dtype=bool)[:, :, None, None]
        bv_max = np.where(keep, bv, -np.inf).max(axis=1, keepdims=True)
        M = np.where(np.isfinite(bv_max), bv_max, 0.0)   # all masked: M = 0
    else:
        M = bv.max(axis=1, keepdims=True)                # over all keys (quirk)
    X = np.exp(bv - M)                                   # (B,S,H,dv)

    # 2. One softmax read of [V~ | X] (B,S,H,2dv).
    U = np.concatenate([v_clip, X], axis=-1)
    scale = 1.0 / np.sqrt(dk) if scale is None else scale
    logits = np.einsum("bthd,bshd->bhts", q, k) * scale  # (B,H,T,S)
    logits = np.where(visible, logits, -np.inf)
    row_max = logits.max(axis=-1, keepdims=True)
    seen = np.isfinite(row_max)                          # the query sees a key
    weights = np.exp(logits - np.where(seen, row_max, 0.0))
    weights /= np.where(seen, weights.sum(axis=-1, keepdims=True), 1.0)
    R = np.einsum("bhts,bshc->bthc", weights, U)         # (B,T,H,2dv)
    mu, Z = R[..., :dv], R[..., dv:]

    # 3. Free-energy read, with the exact log restore.
    with np.errstate(divide="ignore"):
        log_Z = np.where(Z > 0, np.log(np.where(Z > 0, Z, 1.0)), -np.inf)
    F = (np.logaddexp(log_Z, np.log(TINY) - M) + M) / beta

    # 4. Gates and output.
    lam_s = sigmoid(lam)
    g = softplus(gate) + eps
    g = g / np.maximum(np.linalg.norm(g, axis=-1, keepdims=True), 1e-5) \
        * np.sqrt(dv)
    out = g * ((1.0 - lam_s) * mu + lam_s * F)

    # A query that sees no key reads nothing.
    seen_bthc = np.transpose(seen, (0, 2, 1, 3))         # (B,T,H,1)
    return np.where(seen_bthc, out, 0.0)

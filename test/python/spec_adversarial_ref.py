"""A second independent float64 reading of /work/shared/design/semantics.md.

Written for the numerics red team (test/python/spec_adversarial.py) from the
specification text alone, without importing or reading spec_ref.py,
reference/ or python/femc/layer_reference.py, so that it can disagree with
all of them. Every function quotes the sentence it implements.

Two things differ on purpose from a literal transcription, both exact in
real arithmetic:

* The free energy. §3: F = [logaddexp(log Z, log(tiny) − M) + M] / β
  = (1/β)·log(R(e^(β·Ṽ)) + tiny). M cancels, so this file takes the
  shift m = β·max Ṽ over the keys the read may see and forms
  log R(e^(β·Ṽ − m)) from its two exact parts, log R(1) and
  log(mean of X under the weights), the mean taken as log1p(mean of
  expm1(β·Ṽ − m)) where it is above 1/2. A double log Z divided by
  β ≈ 1e-6 would otherwise carry 1e-10 relative error, no better than
  float32 after the division for |v| of 1e4.
* The reads are written as explicit weights w_ts (T × S matrices), so
  every prior is the same R(U)_t = Σ_s w_ts·U_s / den_t (aft per channel,
  ssm from its scan), and R(1) = Σ_s w_ts / den_t.

Where the page is silent, the choice is femc's documented reading
(docs/semantics.md, "Choices femc made"), marked SILENT below:
grouped heads, the mask for the scan priors, a row with no visible key.

Entry point: `read(prior, x, causal=True, mask=None, scale=None, eps=1e-6,
cap=40.0)`, x a dict of float64 arrays in the page's `bthd` layout, returns
dict(out, mu, F, M) in float64.
"""

import numpy as np

# "Constants: eps = 1e-6, cap = 40, tiny = 2^-126"
TINY = 2.0 ** -126


def softplus(x):
    """"softplus(x) = log(1 + e^x) (= x for x > 20 in float32)"."""
    x = np.asarray(x, np.float64)
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def sigmoid(x):
    x = np.asarray(x, np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def kv_head(H, Hkv):
    """SILENT: query head h reads kv head h // (H / Hkv) (docs/semantics.md,
    "Grouped heads", consecutive groups)."""
    assert H % Hkv == 0, (H, Hkv)
    return np.arange(H) // (H // Hkv)


# ------------------------------------------------------------- §2 weights
# Each returns (w, den): w (B, H, T, S) weights, den (B, H, T) the
# denominators, with R(U)_t = Σ_s w_ts U_s / den_t. aft has its own form.


def _visible(B, T, S, causal, mask):
    """"visible s: s ≤ t if causal, all s otherwise"; §5: "masked keys are
    excluded from every sum and max"."""
    vis = np.ones((B, T, S), bool)
    if causal:
        vis &= np.arange(S)[None, :] <= np.arange(T)[:, None]
    if mask is not None:
        vis &= np.asarray(mask, bool)[:, None, :]
    return vis


def _per_query_head(k, H):
    """(B, S, Hkv, d) -> (B, H, S, d) through the grouped-head map."""
    return np.transpose(k[:, :, kv_head(H, k.shape[2]), :], (0, 2, 1, 3))


def weights_softmax(q, k, causal, mask, scale):
    """"ℓ_ts = ⟨q_t, k_s⟩ / sqrt(dk) (the scale uses dk, not the value
    width)"; "α_t = softmax of ℓ_t over visible s"."""
    B, T, H, dk = q.shape
    S = k.shape[1]
    sc = 1.0 / np.sqrt(dk) if scale is None else scale
    qh = np.transpose(q, (0, 2, 1, 3))
    kh = _per_query_head(k, H)
    logits = np.einsum("bhtd,bhsd->bhts", qh, kh) * sc
    vis = _visible(B, T, S, causal, mask)[:, None]
    logits = np.where(vis, logits, -np.inf)
    top = logits.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    w = np.where(vis, np.exp(logits - top), 0.0)
    den = w.sum(-1)
    return w, den


def _phi(x, eps):
    """"φ(x) = relu(x) + eps"."""
    return np.maximum(x, 0.0) + eps


def weights_linear(q, k, causal, mask, eps):
    """"w_ts = ⟨φ(q_t), φ(k_s)⟩ over visible s; R(U)_t = Σ_s w_ts U_s /
    max(Σ_s w_ts, eps)"."""
    B, T, H, dk = q.shape
    S = k.shape[1]
    qh = np.transpose(_phi(q, eps), (0, 2, 1, 3))
    kh = _per_query_head(_phi(k, eps), H)
    w = np.einsum("bhtd,bhsd->bhts", qh, kh)
    w = np.where(_visible(B, T, S, causal, mask)[:, None], w, 0.0)
    return w, np.maximum(w.sum(-1), eps)


def gla_log_decay(decay, eps):
    """"a_t = −(relu(decay_t) + eps) per (b,t,h); C_t = clamp(Σ_{u≤t} a_u,
    −60, 50) (inclusive cumulative sum)". Returns C (B, H, T)."""
    a = -(np.maximum(decay, 0.0) + eps)
    C = np.clip(np.cumsum(a, axis=1), -60.0, 50.0)
    return np.transpose(C, (0, 2, 1))


def weights_gla(q, k, decay, eps):
    """"gla (always causal (quirk): the causal flag is ignored)";
    "w_ts = exp(C_t − C_s)·⟨φ(q_t), φ(k_s)⟩ for s ≤ t; R(U)_t =
    Σ_s w_ts U_s / (Σ_s w_ts + 1e-5) (added, not a clamp)"."""
    B, T, H, dk = q.shape
    w, _ = weights_linear(q, k, True, None, eps)
    C = gla_log_decay(decay, eps)
    diff = C[:, :, :, None] - C[:, :, None, :]
    causal = np.arange(T)[None, :] <= np.arange(T)[:, None]
    w = w * np.exp(np.where(causal, diff, 0.0))
    return w, w.sum(-1) + 1e-5


def ssm_weights(delta, A, Bs, Cs, D, H):
    """The scan as weights. "x_t[e,n] = exp(Δ_t[e]·A[e,n])·x_{t−1}[e,n] +
    Δ_t[e]·Bs_t[n]·U_t[e]; y_t[e] = Σ_n Cs_t[n]·x_t[e,n] + D[e]·U_t[e]"
    unrolls to y_t[e] = Σ_{s≤t} w_ts[e]·U_s[e] with
    w_ts[e] = Σ_n Cs_t[n]·exp(A[e,n]·Σ_{s<u≤t} Δ_u[e])·Δ_s[e]·Bs_s[n]
    + [s = t]·D[e]. Returns w (B, E, T, S); "R(U)_t = y_t / max(y¹_t, eps)"
    is then Σ_s w_ts U_s / max(Σ_s w_ts, eps)."""
    B, T, E = delta.shape
    # cumulative Δ: P_t = Σ_{u≤t} Δ_u, Σ_{s<u≤t} Δ_u = P_t − P_s
    P = np.cumsum(delta, axis=1)  # (B, T, E)
    span = P[:, :, None, :] - P[:, None, :, :]  # (B, t, s, E)
    causal = (np.arange(T)[None, :] <= np.arange(T)[:, None])
    span = np.where(causal[None, :, :, None], span, 0.0)
    w = np.zeros((B, T, T, E))
    for n in range(A.shape[1]):
        decay = np.exp(span * A[None, None, None, :, n])
        w += (Cs[:, :, None, n, None] * decay
              * (delta * Bs[:, :, n, None])[:, None, :, :])
    w = np.where(causal[None, :, :, None], w, 0.0)
    idx = np.arange(T)
    w[:, idx, idx, :] += D[None, None, :]
    return np.transpose(w, (0, 3, 1, 2))  # (B, E, T, S)


# ------------------------------------------------------------- §1 and §3


def _free_energy(beta, shift, log_r1, mean_x, mean_xm1):
    """§3 from its exact parts: log Z = log R(1) + log(mean X), where
    mean X = Σ w X / Σ w. F = (1/β)·log(e^shift·Z + tiny). `log_r1` is
    log R(1) itself, formed by the caller without rounding near 0 (gla's
    −log1p(1e-5/Σw), aft's log q̂ from u = p/max p): log of a rounded
    ratio near 1 is 1e-16 off, which 1/β carries into F against outputs
    that may be far smaller (values of 1e-30)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_mean = np.where(mean_x > 0.5, np.log1p(mean_xm1),
                            np.log(np.maximum(mean_x, 0.0)))
        log_z = log_r1 + log_mean
        # logaddexp(log Z, log(tiny) − m) + m
        lse = np.logaddexp(log_z, np.log(TINY) - shift) + shift
    return lse / beta


def read(prior, x, causal=True, mask=None, scale=None, eps=1e-6, cap=40.0):
    """The kernel of semantics.md for `prior` on the float64 inputs `x`."""
    v = np.asarray(x["v"], np.float64)
    lam, gate = x["lam"], x["gate"]
    B, T, H, dv = lam.shape
    if prior in ("gla", "aft", "ssm"):
        causal = True  # "always causal (quirk)"
        mask = None  # SILENT: the scan priors take no key mask
    # §2 ssm: "the value stream is squashed first: v ← sigmoid(v) before
    # the clip"
    if prior == "ssm":
        v = sigmoid(v)
        vh = v  # (B, T, H, dv): ssm has no keys, one value per query head
    else:
        vh = v[:, :, kv_head(H, v.shape[2]), :]  # (B, S, H, dv)
    S = vh.shape[1]
    # §1 "β[e] = softplus(beta_raw[e]) + eps"
    beta = (softplus(x["beta_raw"]) + eps).reshape(H, dv)
    # §1 "Ṽ = clamp(v, −cap/β, +cap/β)"
    Vt = np.clip(vh, -cap / beta, cap / beta)
    bV = beta * Vt
    # §1 "M[b,h,c] = max over all key positions s of β·Ṽ[b,s,h,c]"; §5
    # masked keys have "no effect on M"; SILENT: M = 0 with no key.
    keep = (np.ones((B, S), bool) if mask is None
            else np.asarray(mask, bool))
    M = np.where(keep[:, :, None, None], bV, -np.inf).max(axis=1)
    M = np.where(np.isfinite(M), M, 0.0)  # (B, H, dv)

    if prior == "aft":
        mu, F = _read_aft(x, Vt, bV, beta, eps)
    else:
        if prior == "softmax":
            w, den = weights_softmax(x["q"], x["k"], causal, mask, scale)
        elif prior == "linear":
            w, den = weights_linear(x["q"], x["k"], causal, mask, eps)
        elif prior == "gla":
            w, den = weights_gla(x["q"], x["k"], x["decay"], eps)
        if prior == "ssm":
            we = ssm_weights(x["delta"], x["A"], x["Bs"], x["Cs"], x["D"], H)
            # (B, E, T, S) -> per channel weights (B, H, dv, T, S)
            w = we.reshape(B, H, dv, T, T)
            wsum = w.sum(-1)
            den = np.maximum(wsum, eps)
            Uv = np.transpose(Vt, (0, 2, 3, 1))  # (B, H, dv, S)
            mu, F = _finish(w, wsum, den, Uv, bV, beta, per_channel=True)
            mu = np.transpose(mu, (0, 3, 1, 2))
            F = np.transpose(F, (0, 3, 1, 2))
        else:
            Uv = np.transpose(Vt, (0, 2, 1, 3))  # (B, H, S, dv)
            wsum = w.sum(-1)
            mu, F = _finish(w, wsum, den, Uv, bV, beta, per_channel=False,
                            gla=prior == "gla")
            mu = np.transpose(mu, (0, 2, 1, 3))  # (B, T, H, dv)
            F = np.transpose(F, (0, 2, 1, 3))
        if prior in ("softmax", "linear"):
            # SILENT (docs/semantics.md, "Row with no visible key"): a row
            # with no visible key has μ = 0, F = 0, out = 0.
            empty = ~_visible(B, T, S, causal, mask).any(-1)  # (B, T)
            mu = np.where(empty[:, :, None, None], 0.0, mu)
            F = np.where(empty[:, :, None, None], 0.0, F)

    # §4 "λ = sigmoid(lam); g⁺ = softplus(gate) + eps; g = g⁺ /
    # max(‖g⁺‖₂, 1e-5) · sqrt(dv)"; "out = g ⊙ ((1 − λ) ⊙ μ + λ ⊙ F)"
    lm = sigmoid(lam)
    gp = softplus(gate) + eps
    norm = np.sqrt((gp * gp).sum(-1, keepdims=True))
    g = gp / np.maximum(norm, 1e-5) * np.sqrt(dv)
    out = g * ((1.0 - lm) * mu + lm * F)
    return {"out": out, "mu": mu, "F": F, "M": M[:, None]}


def _log_r1(wsum, den, gla):
    """log R(1) = log(Σw / den): gla's den = Σw + 1e-5, so −log1p(1e-5/Σw)
    (log of the rounded quotient is 1e-16 off, and F gains it / β: 1.0 of
    max|out| with q, k ~ 1e9 and values of 1e-30 before 2026-12-03); the
    other reads' quotient is exactly 1 where nothing clamps."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if gla:
            return np.where(wsum > 0, -np.log1p(1e-5 / np.where(
                wsum > 0, wsum, 1.0)), -np.inf)
        return np.log(wsum / den)


def _finish(w, wsum, den, Uv, bV, beta, per_channel, gla=False):
    """μ = R(Ṽ) and F from the weights. per_channel: w is (B, H, dv, T, S)
    and Uv (B, H, dv, S) (ssm); else w is (B, H, T, S), Uv (B, H, S, dv).
    The shift for the exact form is the max of β·Ṽ over each row's
    weighted keys (any shift gives the same F, §3)."""
    if per_channel:
        bVc = np.transpose(bV, (0, 2, 3, 1))  # (B, H, dv, S)
        live = w != 0
        shift = np.where(live, bVc[:, :, :, None, :], -np.inf).max(-1)
        shift = np.where(np.isfinite(shift), shift, 0.0)  # (B, H, dv, T)
        z = bVc[:, :, :, None, :] - shift[..., None]
        z = np.where(live, z, 0.0)
        safe = np.where(wsum > 0, wsum, 1.0)
        mean_x = (w * np.exp(z)).sum(-1) / safe
        mean_xm1 = (w * np.expm1(z)).sum(-1) / safe
        mu = np.einsum("bhcts,bhcs->bhct", w, Uv) / den
        betac = beta[None, :, :, None]
        F = _free_energy(betac, shift, _log_r1(wsum, den, gla), mean_x,
                         mean_xm1)
        return mu, F
    bVh = np.transpose(bV, (0, 2, 1, 3))  # (B, H, S, dv)
    live = (w != 0)[..., None]  # (B, H, T, S, 1)
    shift = np.where(live, bVh[:, :, None, :, :], -np.inf).max(3)
    shift = np.where(np.isfinite(shift), shift, 0.0)  # (B, H, T, dv)
    z = np.where(live, bVh[:, :, None, :, :] - shift[:, :, :, None, :], 0.0)
    safe = np.where(wsum > 0, wsum, 1.0)[..., None]
    mean_x = np.einsum("bhts,bhtsc->bhtc", w, np.exp(z)) / safe
    mean_xm1 = np.einsum("bhts,bhtsc->bhtc", w, np.expm1(z)) / safe
    mu = np.einsum("bhts,bhsc->bhtc", w, Uv) / den[..., None]
    F = _free_energy(beta[None, :, None, :], shift,
                     _log_r1(wsum, den, gla)[..., None], mean_x,
                     mean_xm1)
    return mu, F


def _read_aft(x, Vt, bV, beta, eps):
    """"The read runs over the concatenated width W = 2·dv; channel j uses
    q/k channel ι(j) = j mod dk (tiled, not interleaved). p_t[j] =
    softplus(q_t[ι(j)]) + eps; q̂_t = p_t / max(‖p_t‖₂, 1e-5) · sqrt(W)
    (norm over all W entries); kmax[j] = max over all s of k_s[ι(j)];
    κ_s[j] = exp(k_s[ι(j)] − kmax[j]) + eps; out_t[j] = q̂_t[j] ·
    Σ_{s≤t} κ_s[j]·U_s[j] / max(Σ_{s≤t} κ_s[j], eps)"."""
    q, k = np.asarray(x["q"], np.float64), np.asarray(x["k"], np.float64)
    B, T, H, dk = q.shape
    dv = Vt.shape[3]
    W = 2 * dv
    # The page requires dk | dv; the formulas need only dk | W (femc
    # accepts dk | 2·dv, docs/semantics.md), where the two halves read
    # different q/k channels: every quantity below is kept W wide.
    assert W % dk == 0, "aft requires dk | 2·dv"
    iota = np.arange(W) % dk
    p = softplus(q[..., iota]) + eps  # (B, T, H, W)
    qhat = p / np.maximum(np.sqrt((p * p).sum(-1, keepdims=True)),
                          1e-5) * np.sqrt(W)
    kh = k[:, :, kv_head(H, k.shape[2]), :][..., iota]  # (B, S, H, W)
    kmax = kh.max(axis=1, keepdims=True)
    kappa = np.exp(kh - kmax) + eps
    # channel j < dv reads Ṽ[j] with κ[j]; channel dv + c reads X[c] with
    # κ[dv + c] (the same q/k channel as c where dk | dv)
    kap_v, kap_x = kappa[..., :dv], kappa[..., dv:]
    tri = (np.arange(T)[None, :] <= np.arange(T)[:, None]).astype(float)
    wsum_v = np.einsum("ts,bshc->bthc", tri, kap_v)
    mu = (qhat[..., :dv] * np.einsum("ts,bshc->bthc", tri, kap_v * Vt)
          / np.maximum(wsum_v, eps))
    # Z_t[c] = q̂_t[dv + c] · Σ κ X / den: exact parts with a per-row shift
    # (the running max of β·Ṽ over s ≤ t)
    wsum = np.einsum("ts,bshc->bthc", tri, kap_x)
    den = np.maximum(wsum, eps)
    shift = np.maximum.accumulate(bV, axis=1)  # (B, T, H, dv)
    z = bV[:, None, :, :, :] - shift[:, :, None, :, :]  # (B, t, s, H, dv)
    z = np.where(tri[None, :, :, None, None] > 0, z, 0.0)
    wts = tri[None, :, :, None, None] * kap_x[:, None]
    mean_x = (wts * np.exp(z)).sum(2) / wsum
    mean_xm1 = (wts * np.expm1(z)).sum(2) / wsum
    # log R(1) = log q̂ + log(Σκ / den), log q̂ from p = m·u (m = max p):
    # log u − ½·log(Σu²/W), exactly 0 where every p of the row is equal
    # (log of the rounded q̂ is 1e-16 off 0, which 1/β carries into F:
    # 1e14 of max|out| at values of 1e-30 before 2026-12-03); below the
    # norm's floor log(p/1e-5) + ½·log W
    m = p.max(-1, keepdims=True)
    u = p / m
    usq = (u * u).sum(-1, keepdims=True)
    with np.errstate(divide="ignore"):
        log_qhat = np.where(m * np.sqrt(usq) >= 1e-5,
                            np.log(u) - 0.5 * np.log(usq / W),
                            np.log(p / 1e-5) + 0.5 * np.log(W))
        log_r1 = log_qhat[..., dv:] + np.log(wsum / den)
    F = _free_energy(beta[None, None], shift, log_r1, mean_x, mean_xm1)
    return mu, F

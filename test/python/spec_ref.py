"""An independent float64 reading of /work/shared/design/semantics.md.

Written from the specification text alone (sections 1 to 5), without
looking at femc's kernels, reference/Reference.cpp or
python/femc/layer_reference.py, so that a misreading those share shows up
as a disagreement with this file. Every block names the section and the
sentence it implements. Where the page is silent (grouped-head mapping, the
`bhtd` layout, what a mask means for the scan priors, rows with no visible
key), the choice is femc's documented reading (docs/semantics.md) and the
comment says so.

Entry point: `fem_read(prior, inputs, causal=..., mask=..., layout=...,
group=...)` -> dict(out, mu, F, M), all float64, `out` in the input layout.
"""

import numpy as np

# "Constants: eps = 1e-6, cap = 40, tiny = 2^-126"
EPS = 1e-6
CAP = 40.0
TINY = 2.0 ** -126
# gla: "R(U)_t = Σ_s w_ts U_s / (Σ_s w_ts + 1e-5) (added, not a clamp)"
GLA_DEN_ADD = 1e-5
# gla: "C_t = clamp(Σ_{u≤t} a_u, −60, 50)"
GLA_C_LO, GLA_C_HI = -60.0, 50.0
# aft and §4: "max(‖p_t‖₂, 1e-5)", "max(‖g⁺‖₂, 1e-5)"
NORM_FLOOR = 1e-5

PRIORS = ("softmax", "linear", "gla", "aft", "ssm")


def softplus(x):
    """softplus(x) = log(1 + e^x) (= x for x > 20, as the page states)."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def sigmoid(x):
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _to_bthd(x, layout):
    """Kernel tensors with a head axis: `bthd` is the page's layout; `bhtd`
    (femc's other layout, docs/semantics.md) swaps t and h."""
    if layout == "bthd":
        return x
    if layout == "bhtd":
        return np.swapaxes(x, 1, 2)
    raise ValueError(f"unknown layout {layout!r}")


def _from_bthd(x, layout):
    return _to_bthd(x, layout)


def _kv_head_of(H, Hkv, group):
    """Query head h reads kv head kv(h). The page says only "Hkv = H unless
    grouped"; femc's reading (docs/semantics.md) is consecutive groups,
    h // (H / Hkv) ("blocked"); "strided" is h % Hkv."""
    if H % Hkv:
        raise ValueError(f"H={H} is not a multiple of Hkv={Hkv}")
    h = np.arange(H)
    return h // (H // Hkv) if group == "blocked" else h % Hkv


# ---------------------------------------------------------------- section 2
# Each read takes U of shape (B, S, H, W) (W = 2·dv, [Ṽ | X]) and returns
# R(U) of shape (B, T, H, W). `keep` (B, S) is femc's key mask (§5).


def _visible(T, S, causal, keep):
    """(B, T, S) boolean: key s is visible from query t."""
    vis = np.ones((keep.shape[0], T, S), dtype=bool)
    if causal:
        vis &= np.tril(np.ones((T, S), dtype=bool))[None]
    return vis & keep[:, None, :]


def read_softmax(q, k, U, causal, keep):
    # "ℓ_ts = ⟨q_t, k_s⟩ / sqrt(dk) (the scale uses dk, not the value width)"
    dk = q.shape[-1]
    logits = np.einsum("bthc,bshc->bhts", q, k) / np.sqrt(dk)
    vis = _visible(q.shape[1], k.shape[1], causal, keep)[:, None]
    # "visible s: s ≤ t if causal, all s otherwise; α_t = softmax of ℓ_t"
    logits = np.where(vis, logits, -np.inf)
    row_max = logits.max(axis=-1, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    w = np.where(vis, np.exp(logits - row_max), 0.0)
    den = w.sum(axis=-1, keepdims=True)
    # A row with no visible key (all keys masked) reads 0 (femc's reading).
    alpha = np.where(den > 0, w / np.where(den > 0, den, 1.0), 0.0)
    # "R(U)_t = Σ_s α_ts U_s"
    return np.einsum("bhts,bshw->bthw", alpha, U)


def phi(x):
    # "φ(x) = relu(x) + eps"
    return np.maximum(x, 0.0) + EPS


def read_linear(q, k, U, causal, keep):
    # "w_ts = ⟨φ(q_t), φ(k_s)⟩ over visible s"
    w = np.einsum("bthc,bshc->bhts", phi(q), phi(k))
    vis = _visible(q.shape[1], k.shape[1], causal, keep)[:, None]
    w = np.where(vis, w, 0.0)
    # "R(U)_t = Σ_s w_ts U_s / max(Σ_s w_ts, eps)"
    den = np.maximum(w.sum(axis=-1), EPS)  # (B, H, T)
    num = np.einsum("bhts,bshw->bthw", w, U)
    return num / np.transpose(den, (0, 2, 1))[..., None]


def read_gla(q, k, U, decay, keep):
    # "always causal (quirk): the causal flag is ignored"
    B, T, H, _ = q.shape
    # "a_t = −(relu(decay_t) + eps) per (b,t,h)"
    a = -(np.maximum(decay, 0.0) + EPS)
    # "C_t = clamp(Σ_{u≤t} a_u, −60, 50) (inclusive cumulative sum)"
    C = np.clip(np.cumsum(a, axis=1), GLA_C_LO, GLA_C_HI)  # (B, T, H)
    Ch = np.transpose(C, (0, 2, 1))  # (B, H, T)
    diff = Ch[:, :, :, None] - Ch[:, :, None, :]  # C_t − C_s
    vis = _visible(T, T, True, keep)[:, None]
    # "w_ts = exp(C_t − C_s)·⟨φ(q_t), φ(k_s)⟩ for s ≤ t"
    dot = np.einsum("bthc,bshc->bhts", phi(q), phi(k))
    w = np.where(vis, np.exp(np.where(vis, diff, 0.0)) * dot, 0.0)
    # "R(U)_t = Σ_s w_ts U_s / (Σ_s w_ts + 1e-5) (added, not a clamp)"
    den = w.sum(axis=-1) + GLA_DEN_ADD
    num = np.einsum("bhts,bshw->bthw", w, U)
    return num / np.transpose(den, (0, 2, 1))[..., None]


def read_aft(q, k, U, keep):
    # "always causal (quirk)"; dk | W: the authors' _aft_read_expand tiles
    # q/k r = W / dk times over the concatenated width W = 2 dv
    dk = q.shape[-1]
    W = U.shape[-1]
    if W % dk:
        raise ValueError(f"aft needs dk | 2 dv (dk={dk}, dv={W // 2})")
    # "channel j uses q/k channel ι(j) = j mod dk (tiled, not interleaved)"
    iota = np.arange(W) % dk
    qj = q[..., iota]  # (B, T, H, W)
    kj = k[..., iota]
    # "p_t[j] = softplus(q_t[ι(j)]) + eps;
    #  q̂_t = p_t / max(‖p_t‖₂, 1e-5) · sqrt(W) (norm over all W entries)"
    p = softplus(qj) + EPS
    norm = np.sqrt((p * p).sum(axis=-1, keepdims=True))
    qhat = p / np.maximum(norm, NORM_FLOOR) * np.sqrt(W)
    # "kmax[j] = max over all s of k_s[ι(j)] (quirk)" (femc's mask: masked
    # keys take no part in the max, §5 "no effect on ... max")
    km = keep[:, :, None, None]
    kmax = np.where(km, kj, -np.inf).max(axis=1, keepdims=True)
    kmax = np.where(np.isfinite(kmax), kmax, 0.0)
    # "κ_s[j] = exp(k_s[ι(j)] − kmax[j]) + eps" (masked keys: weight 0)
    kappa = np.where(km, np.exp(np.minimum(kj - kmax, 0.0)) + EPS, 0.0)
    # "out_t[j] = q̂_t[j] · Σ_{s≤t} κ_s[j]·U_s[j] / max(Σ_{s≤t} κ_s[j], eps)"
    num = np.cumsum(kappa * U, axis=1)
    den = np.maximum(np.cumsum(kappa, axis=1), EPS)
    return qhat * num / den


def read_ssm(U, delta, A, Bs, Cs, D, keep):
    """"per flat channel e and state n < N:
    x_t[e,n] = exp(Δ_t[e]·A[e,n])·x_{t−1}[e,n] + Δ_t[e]·Bs_t[n]·U_t[e];
    y_t[e] = Σ_n Cs_t[n]·x_t[e,n] + D[e]·U_t[e];
    R(U)_t = y_t / max(y¹_t, eps)" with y¹ the same scan on U ≡ 1.

    U is (B, T, H, W) with W = 2·dv: column c < dv is channel e = h·dv + c
    of Ṽ, column dv + c the same channel of X (same Δ, A, D).
    femc's mask for ssm (docs/semantics.md): a masked position feeds
    nothing into the state (its Δ·Bs·U term and its D·U term are dropped);
    the decay exp(Δ·A) still applies."""
    B, T, H, W = U.shape
    dv = W // 2
    E = H * dv
    N = A.shape[1]
    # (B, T, E, 2): stream axis last
    Ue = U.reshape(B, T, H, 2, dv).transpose(0, 1, 2, 4, 3).reshape(B, T, E, 2)
    ones = np.ones_like(Ue[..., :1])
    Ue = np.concatenate([Ue, ones], axis=-1)  # third stream: U ≡ 1
    m = keep.astype(np.float64)[:, :, None, None]  # (B, T, 1, 1)
    Ue = Ue * m
    x = np.zeros((B, E, N, 3))
    y = np.empty((B, T, E, 3))
    for t in range(T):
        dA = np.exp(delta[:, t, :, None] * A[None])  # (B, E, N)
        inp = (delta[:, t, :, None] * Bs[:, t, None, :])[..., None] * Ue[:, t, :, None, :]
        x = dA[..., None] * x + inp
        y[:, t] = np.einsum("bn,benk->bek", Cs[:, t], x) + D[None, :, None] * Ue[:, t]
    R = y[..., :2] / np.maximum(y[..., 2:3], EPS)  # (B, T, E, 2)
    return R.reshape(B, T, H, dv, 2).transpose(0, 1, 2, 4, 3).reshape(B, T, H, W)


# ------------------------------------------------------------ sections 1-4


def fem_read(prior, inp, causal=True, mask=None, layout="bthd",
             group="blocked", empty_rows="zero"):
    """The kernel: inputs by the page's names (numpy arrays in `layout`;
    `mask` (B, S), nonzero = keep, or None) -> dict of float64 arrays:
    out (in `layout`), mu, F (bthd, per query head), M (B, 1, H, dv).

    `empty_rows`: a query row that sees no key (softmax/linear with a mask
    that hides every key up to t) is outside the page, whose reference has
    no mask (§5). "zero" is femc's reading (docs/semantics.md, "Row with no
    visible key"): μ = F = out = 0. "formula" applies §2-§3 literally: for
    linear R = 0/max(0, eps) = 0, so μ = 0, Z = 0, log Z = −inf and
    F = log(tiny)/β; for softmax α = 0/0 (NaN, as torch gives)."""
    if prior not in PRIORS:
        raise ValueError(f"unknown prior {prior!r}")
    f64 = lambda n: np.asarray(inp[n], dtype=np.float64)
    lam = _to_bthd(f64("lam"), layout)
    gate = _to_bthd(f64("gate"), layout)
    B, T, H, dv = lam.shape
    v = _to_bthd(f64("v"), layout)  # (B, S, Hkv, dv)
    if prior == "ssm":
        Hkv = H
        S = T
    else:
        q = _to_bthd(f64("q"), layout)
        k = _to_bthd(f64("k"), layout)
        S, Hkv = k.shape[1], k.shape[2]
        kvh = _kv_head_of(H, Hkv, group)
        k = k[:, :, kvh]
        v = v[:, :, kvh]  # now per query head: (B, S, H, dv)
    keep = (np.ones((B, S), dtype=bool) if mask is None
            else np.asarray(mask).astype(bool))

    # §2 ssm: "the value stream is squashed first: v ← sigmoid(v) before
    # the clip"
    if prior == "ssm":
        v = sigmoid(v)

    # §1 "β[e] = softplus(beta_raw[e]) + eps, broadcast over (b, t)"
    beta = (softplus(f64("beta_raw")) + EPS).reshape(1, 1, H, dv)
    # "Clip: Ṽ = clamp(v, −cap/β, +cap/β) elementwise"
    vt = np.clip(v, -CAP / beta, CAP / beta)
    bv = beta * vt
    # "Shift: M[b,h,c] = max over all key positions s of β·Ṽ[b,s,h,c]"
    # (femc's mask: masked keys have "no effect on M", §5)
    km = keep[:, :, None, None]
    M = np.where(km, bv, -np.inf).max(axis=1, keepdims=True)
    M = np.where(np.isfinite(M), M, 0.0)  # all keys masked: M = 0
    # "Tilt: X = exp(β·Ṽ − M)"
    X = np.exp(np.minimum(bv - M, 0.0))
    # masked positions never enter a read; zero them so no inf/nan leaks
    vt = np.where(km, vt, 0.0)
    X = np.where(km, X, 0.0)
    U = np.concatenate([vt, X], axis=-1)  # "[Ṽ | X] on the channel axis"

    # §2 "One set of weights w_ts reads both streams"
    if prior == "softmax":
        R = read_softmax(q, k, U, causal, keep)
    elif prior == "linear":
        R = read_linear(q, k, U, causal, keep)
    elif prior == "gla":
        R = read_gla(q, k, U, _to_bthd3(f64("decay"), layout), keep)
    elif prior == "aft":
        R = read_aft(q, k, U, keep)
    else:
        R = read_ssm(U, f64("delta"), f64("A"), f64("Bs"), f64("Cs"),
                     f64("D"), keep)
    mu, Z = R[..., :dv], R[..., dv:]
    if prior in ("softmax", "linear"):
        seen = _visible(T, S, causal, keep).any(axis=-1)  # (B, T)
        empty = ~seen[:, :, None, None]
        if empty_rows == "formula" and prior == "softmax":
            mu = np.where(empty, np.nan, mu)
            Z = np.where(empty, np.nan, Z)

    # §3 "F_t = [ logaddexp(log Z_t, log(tiny) − M) + M ] / β,
    #  with log Z_t taken as −inf where Z_t ≤ 0"
    with np.errstate(divide="ignore", invalid="ignore"):
        logZ = np.where(Z > 0, np.log(np.where(Z > 0, Z, 1.0)), -np.inf)
    F = (np.logaddexp(logZ, np.log(TINY) - M) + M) / beta

    # §4 "λ = sigmoid(lam); g⁺ = softplus(gate) + eps;
    #  g = g⁺ / max(‖g⁺‖₂, 1e-5) · sqrt(dv) (norm over the dv channels);
    #  out = g ⊙ ((1 − λ) ⊙ μ + λ ⊙ F)"
    lmb = sigmoid(lam)
    gp = softplus(gate) + EPS
    g = gp / np.maximum(np.sqrt((gp * gp).sum(-1, keepdims=True)),
                        NORM_FLOOR) * np.sqrt(dv)
    out = g * ((1.0 - lmb) * mu + lmb * F)
    if prior in ("softmax", "linear") and empty_rows == "zero":
        mu = np.where(empty, 0.0, mu)
        F = np.where(empty, 0.0, F)
        out = np.where(empty, 0.0, out)
    return {"out": _from_bthd(out, layout), "mu": mu, "F": F, "M": M}


def _to_bthd3(x, layout):
    """decay (B,T,H) in bthd; (B,H,T) in bhtd."""
    return x if layout == "bthd" else np.swapaxes(x, 1, 2)

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
    """1/(1 + e^-x), as e^x/(1 + e^x) below 0: relative accuracy in the
    tail (0.5·(1 + tanh(x/2)) rounds to 0 below x = -37, where float32's
    sigmoid is still 1e-16 and ssm's v ← sigmoid(v) carries the output)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


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


# A function of the logits (B, H, T, S) that read_softmax applies when set:
# spec_fuzz.py's logit_sensitivity perturbs them by float32-sized errors.
LOGIT_NOISE = None


def read_softmax(q, k, U, causal, keep, scale=None):
    """R(U) and log R(1) (B, T, H, 1): 0 wherever a key is visible, since
    the weights α_t sum to one (taken as exactly 0, not log Σα, whose float64
    rounding 1/β would turn into 1e-16/β of F)."""
    # "ℓ_ts = ⟨q_t, k_s⟩ / sqrt(dk) (the scale uses dk, not the value width)"
    # (femc's `scale` attribute replaces 1/sqrt(dk), docs/semantics.md)
    dk = q.shape[-1]
    scale = 1.0 / np.sqrt(dk) if scale is None else scale
    logits = np.einsum("bthc,bshc->bhts", q, k) * scale
    if LOGIT_NOISE is not None:  # spec_fuzz.logit_sensitivity only
        logits = LOGIT_NOISE(logits)
    vis = _visible(q.shape[1], k.shape[1], causal, keep)[:, None]
    # "visible s: s ≤ t if causal, all s otherwise; α_t = softmax of ℓ_t"
    logits = np.where(vis, logits, -np.inf)
    # A row with no visible key (all keys masked) reads 0 (femc's reading);
    # every other row is torch's softmax, NaN included: a NaN logit makes
    # the row max NaN, and a row max of +inf (or -inf over visible keys)
    # gives e^(inf - inf) = NaN weights (docs/bad-inputs.md, "NaN, Inf and
    # huge values"; reference/Reference.cpp).
    has = vis.any(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        row_max = np.where(has, logits.max(axis=-1, keepdims=True), 0.0)
        w = np.where(vis, np.exp(logits - row_max), 0.0)
        den = w.sum(axis=-1, keepdims=True)
        alpha = np.where(has, w / np.where(has, den, 1.0), 0.0)
    # "R(U)_t = Σ_s α_ts U_s"
    R = np.einsum("bhts,bshw->bthw", alpha, U)
    logR1 = np.where(np.transpose(has, (0, 2, 1, 3)), 0.0, -np.inf)
    return R, logR1


def _log_ratio(num, den):
    """log(num / den) for num, den >= 0 (-inf where num = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(num > 0, np.log(np.where(num > 0, num, 1.0))
                        - np.log(np.where(den > 0, den, 1.0)), -np.inf)


def phi(x, eps=EPS):
    # "φ(x) = relu(x) + eps"
    return np.maximum(x, 0.0) + eps


def read_linear(q, k, U, causal, keep, eps=EPS):
    """R(U) and log R(1) = log(Σw / max(Σw, eps)): exactly 0 where Σw ≥ eps."""
    # "w_ts = ⟨φ(q_t), φ(k_s)⟩ over visible s"
    w = np.einsum("bthc,bshc->bhts", phi(q, eps), phi(k, eps))
    vis = _visible(q.shape[1], k.shape[1], causal, keep)[:, None]
    w = np.where(vis, w, 0.0)
    # "R(U)_t = Σ_s w_ts U_s / max(Σ_s w_ts, eps)"
    sw = np.transpose(w.sum(axis=-1), (0, 2, 1))[..., None]  # (B, T, H, 1)
    den = np.maximum(sw, eps)
    num = np.einsum("bhts,bshw->bthw", w, U)
    return num / den, np.where(sw >= eps, 0.0, _log_ratio(sw, eps))


def read_gla(q, k, U, decay, keep, eps=EPS):
    """R(U) and log R(1) = log(Σw / (Σw + 1e-5)) = −log1p(1e-5 / Σw)."""
    # "always causal (quirk): the causal flag is ignored"
    B, T, H, _ = q.shape
    # "a_t = −(relu(decay_t) + eps) per (b,t,h)"
    a = -(np.maximum(decay, 0.0) + eps)
    # "C_t = clamp(Σ_{u≤t} a_u, −60, 50) (inclusive cumulative sum)"
    C = np.clip(np.cumsum(a, axis=1), GLA_C_LO, GLA_C_HI)  # (B, T, H)
    Ch = np.transpose(C, (0, 2, 1))  # (B, H, T)
    diff = Ch[:, :, :, None] - Ch[:, :, None, :]  # C_t − C_s
    vis = _visible(T, T, True, keep)[:, None]
    # "w_ts = exp(C_t − C_s)·⟨φ(q_t), φ(k_s)⟩ for s ≤ t"
    dot = np.einsum("bthc,bshc->bhts", phi(q, eps), phi(k, eps))
    w = np.where(vis, np.exp(np.where(vis, diff, 0.0)) * dot, 0.0)
    # "R(U)_t = Σ_s w_ts U_s / (Σ_s w_ts + 1e-5) (added, not a clamp)"
    sw = np.transpose(w.sum(axis=-1), (0, 2, 1))[..., None]  # (B, T, H, 1)
    num = np.einsum("bhts,bshw->bthw", w, U)
    with np.errstate(divide="ignore"):
        logR1 = np.where(sw > 0, -np.log1p(GLA_DEN_ADD / np.where(
            sw > 0, sw, 1.0)), -np.inf)
    return num / (sw + GLA_DEN_ADD), logR1


def read_aft(q, k, U, keep, width, eps=EPS):
    """R(U) and log R(1) = log q̂ + log(Σκ / max(Σκ, eps)). `width` is the
    concatenated width W = 2·dv the page's read runs over (U may carry more
    columns: each column c reads q/k channel c mod W mod dk)."""
    # "always causal (quirk)"; dk | W: the authors' _aft_read_expand tiles
    # q/k r = W / dk times over the concatenated width W = 2 dv
    dk = q.shape[-1]
    W = width
    if W % dk:
        raise ValueError(f"aft needs dk | 2 dv (dk={dk}, dv={W // 2})")
    # "channel j uses q/k channel ι(j) = j mod dk (tiled, not interleaved)"
    iota = np.arange(W) % dk
    qj = q[..., iota]  # (B, T, H, W)
    kj = k[..., iota]
    # "p_t[j] = softplus(q_t[ι(j)]) + eps;
    #  q̂_t = p_t / max(‖p_t‖₂, 1e-5) · sqrt(W) (norm over all W entries)"
    # taken as p = m·u with m = max p: ‖p‖ = m·‖u‖, so that equal p give
    # u = 1, ‖u‖² = W and log q̂ = log u − ½·log(‖u‖²/W) = 0 exactly (1/β
    # amplifies its rounding; log u − log ‖u‖ + ½·log W, as this read took
    # it before 2026-12-03, is 1e-16 off 0 where log sqrt(W) and ½·log W
    # round apart, W = 6 or 8: F = 1e-16/β against values of 1e-30)
    p = softplus(qj) + eps
    m = p.max(axis=-1, keepdims=True)
    u = p / m
    usq = (u * u).sum(axis=-1, keepdims=True)
    unorm = np.sqrt(usq)
    norm = np.maximum(m * unorm, NORM_FLOOR)
    qhat = p / norm * np.sqrt(W)
    log_qhat = np.where(m * unorm >= NORM_FLOOR,
                        np.log(u) - 0.5 * np.log(usq / W),
                        np.log(p) - np.log(NORM_FLOOR) + 0.5 * np.log(W))
    # "kmax[j] = max over all s of k_s[ι(j)] (quirk)" (femc's mask: masked
    # keys take no part in the max, §5 "no effect on ... max")
    km = keep[:, :, None, None]
    kmax = np.where(km, kj, -np.inf).max(axis=1, keepdims=True)
    kmax = np.where(np.isfinite(kmax), kmax, 0.0)
    # "κ_s[j] = exp(k_s[ι(j)] − kmax[j]) + eps" (masked keys: weight 0)
    kappa = np.where(km, np.exp(np.minimum(kj - kmax, 0.0)) + eps, 0.0)
    # "out_t[j] = q̂_t[j] · Σ_{s≤t} κ_s[j]·U_s[j] / max(Σ_{s≤t} κ_s[j], eps)"
    den_raw = np.cumsum(kappa, axis=1)
    den = np.maximum(den_raw, eps)
    logR1 = log_qhat + np.where(den_raw >= eps, 0.0,
                                _log_ratio(den_raw, eps))
    reps = U.shape[-1] // W
    col = lambda a: np.concatenate([a] * reps, axis=-1)
    num = np.cumsum(col(kappa) * U, axis=1)
    return col(qhat) * num / col(den), col(logR1)


def read_ssm(U, delta, A, Bs, Cs, D, keep, dv, eps=EPS):
    """"per flat channel e and state n < N:
    x_t[e,n] = exp(Δ_t[e]·A[e,n])·x_{t−1}[e,n] + Δ_t[e]·Bs_t[n]·U_t[e];
    y_t[e] = Σ_n Cs_t[n]·x_t[e,n] + D[e]·U_t[e];
    R(U)_t = y_t / max(y¹_t, eps)" with y¹ the same scan on U ≡ 1.

    U is (B, T, H, n·dv), n streams of dv channels: column j·dv + c of
    stream j is channel e = h·dv + c (same Δ, A, D). Returns R(U) with a
    last stream R(1) = y¹ / max(y¹, eps), and log R(1) (B, T, H, dv).
    femc's mask for ssm (docs/semantics.md): a masked position feeds
    nothing into the state (its Δ·Bs·U term and its D·U term are dropped);
    the decay exp(Δ·A) still applies."""
    B, T, H, W = U.shape
    n = W // dv
    E = H * dv
    N = A.shape[1]
    # (B, T, E, n): stream axis last
    Ue = U.reshape(B, T, H, n, dv).transpose(0, 1, 2, 4, 3).reshape(B, T, E, n)
    ones = np.ones_like(Ue[..., :1])
    Ue = np.concatenate([Ue, ones], axis=-1)  # a last stream: U ≡ 1
    m = keep.astype(np.float64)[:, :, None, None]  # (B, T, 1, 1)
    Ue = Ue * m
    x = np.zeros((B, E, N, n + 1))
    y = np.empty((B, T, E, n + 1))
    for t in range(T):
        dA = np.exp(delta[:, t, :, None] * A[None])  # (B, E, N)
        inp = (delta[:, t, :, None] * Bs[:, t, None, :])[..., None] * Ue[:, t, :, None, :]
        x = dA[..., None] * x + inp
        y[:, t] = np.einsum("bn,benk->bek", Cs[:, t], x) + D[None, :, None] * Ue[:, t]
    y1 = y[..., n:]
    R = y / np.maximum(y1, eps)  # (B, T, E, n + 1): R(1) last
    logR1 = np.where(y1 >= eps, 0.0, _log_ratio(y1, eps)).reshape(B, T, H, dv)
    R = R.reshape(B, T, H, dv, n + 1).transpose(0, 1, 2, 4, 3)
    return R.reshape(B, T, H, W + dv), logR1


# ------------------------------------------------------------ sections 1-4


def fem_read(prior, inp, causal=True, mask=None, layout="bthd",
             group="blocked", empty_rows="zero", eps=EPS, cap=CAP,
             scale=None):
    """The kernel: inputs by the page's names (numpy arrays in `layout`;
    `mask` (B, S), nonzero = keep, or None) -> dict of float64 arrays:
    out (in `layout`), mu, F (bthd, per query head), M (B, 1, H, dv).

    `eps`, `cap` and `scale` are the page's constants eps = 1e-6, cap = 40
    and softmax's 1/sqrt(dk), which femc's kernels take as attributes
    (docs/dialect.md); every eps of the page is the one `eps`.

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
    beta = (softplus(f64("beta_raw")) + eps).reshape(1, 1, H, dv)
    # "Clip: Ṽ = clamp(v, −cap/β, +cap/β) elementwise"
    vt = np.clip(v, -cap / beta, cap / beta)
    bv = beta * vt
    # "Shift: M[b,h,c] = max over all key positions s of β·Ṽ[b,s,h,c]"
    # (femc's mask: masked keys have "no effect on M", §5)
    km = keep[:, :, None, None]
    M = np.where(km, bv, -np.inf).max(axis=1, keepdims=True)
    # all keys masked: M = 0; a NaN value (or β) makes M NaN, as torch's
    # max, so every row of that channel is NaN (docs/semantics.md, "NaN
    # and Inf")
    M = np.where(km.any(axis=1, keepdims=True), M, 0.0)
    # "Tilt: X = exp(β·Ṽ − M)"; also X − 1 = expm1(β·Ṽ − M) (below)
    X = np.exp(np.minimum(bv - M, 0.0))
    Xm1 = np.expm1(np.minimum(bv - M, 0.0))
    # masked positions never enter a read; zero them so no inf/nan leaks
    vt = np.where(km, vt, 0.0)
    X = np.where(km, X, 0.0)
    Xm1 = np.where(km, Xm1, 0.0)
    # "[Ṽ | X] on the channel axis" as the page reads it, and the same
    # read of X − 1 and of 1 (R is linear in U): log Z below is taken as
    # log R(1) + log(R(X)/R(1)), or + log1p(R(X − 1)/R(1)) where the mean
    # of X is above 1/2, so that Z's float64 rounding (1e-16 absolute near
    # Z = 1) is not what 1/β amplifies at tiny β. The weights of softmax,
    # linear and gla do not depend on the column: one column of ones;
    # aft's do (ι(j)): [Ṽ | X], [Ṽ | X − 1] and [1 | 1] keep its channel
    # map in blocks of 2·dv; ssm adds its own U ≡ 1 stream.
    one = np.where(km, 1.0, 0.0) * np.ones_like(vt)
    if prior == "aft":
        U = np.concatenate([vt, X, vt, Xm1, one, one], axis=-1)
    elif prior == "ssm":
        U = np.concatenate([vt, X, Xm1], axis=-1)
    else:
        U = np.concatenate([vt, X, Xm1, one[..., :1]], axis=-1)

    # §2 "One set of weights w_ts reads both streams"
    if prior == "softmax":
        R, logR1 = read_softmax(q, k, U, causal, keep, scale)
    elif prior == "linear":
        R, logR1 = read_linear(q, k, U, causal, keep, eps)
    elif prior == "gla":
        R, logR1 = read_gla(q, k, U, _to_bthd3(f64("decay"), layout), keep,
                            eps)
    elif prior == "aft":
        R, logR1 = read_aft(q, k, U, keep, 2 * dv, eps)
        logR1 = logR1[..., dv:2 * dv]  # the X channels' log R(1)
    else:
        R, logR1 = read_ssm(U, f64("delta"), f64("A"), f64("Bs"), f64("Cs"),
                            f64("D"), keep, dv, eps)
    mu, Z = R[..., :dv], R[..., dv:2 * dv]
    if prior == "aft":
        RXm1, R1 = R[..., 3 * dv:4 * dv], R[..., 5 * dv:]
    else:
        RXm1, R1 = R[..., 2 * dv:3 * dv], R[..., 3 * dv:]
    if prior in ("softmax", "linear"):
        seen = _visible(T, S, causal, keep).any(axis=-1)  # (B, T)
        empty = ~seen[:, :, None, None]
        if empty_rows == "formula" and prior == "softmax":
            mu = np.where(empty, np.nan, mu)
            Z = np.where(empty, np.nan, Z)

    # §3 "F_t = [ logaddexp(log Z_t, log(tiny) − M) + M ] / β,
    #  with log Z_t taken as −inf where Z_t ≤ 0"
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = (Z > 0) & (R1 > 0)
        R1s = np.where(pos, R1, 1.0)
        meanX = np.where(pos, Z, 1.0) / R1s
        meanXm1 = np.where(pos, RXm1, 0.0) / R1s
        logZ = np.where(pos, logR1 + np.where(meanX < 0.5, np.log(meanX),
                                              np.log1p(meanXm1)), -np.inf)
        logZ = np.where(np.isnan(Z), np.nan, logZ)
    F = (np.logaddexp(logZ, np.log(TINY) - M) + M) / beta

    # §4 "λ = sigmoid(lam); g⁺ = softplus(gate) + eps;
    #  g = g⁺ / max(‖g⁺‖₂, 1e-5) · sqrt(dv) (norm over the dv channels);
    #  out = g ⊙ ((1 − λ) ⊙ μ + λ ⊙ F)"
    lmb = sigmoid(lam)
    gp = softplus(gate) + eps
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

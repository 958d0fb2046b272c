"""A second independent float64 reading of the whole FEM layer.

Written from shared/design/semantics.md sections 1-7 alone (the authors'
fem.py consulted only where the text leaves a choice open, noted inline),
without looking at femc's importer, femc.layer_reference, reference/Layer.cpp
or test/python/spec_layer_ref.py: where this file and those agree they agree
by reading the same text, not by sharing code.

forward(state, config, x, mask=None) -> y (B, T, n_embd), float64.

- state: mapping parameter name -> array, the module's state_dict names.
- config: the FreeEnergyMixerConfig fields as given (defaults filled in
  here); the sizes are taken from the parameter shapes (section 7: "a
  checkpoint's shapes fix them anyway").
- x: (B, T, n_embd); mask: (B, T) or None, 1 keeps a position (it scales K
  and V, section 7 step 2; fractional values scale them).

Every step is float64; the float32 constants of the text (tiny = 2^-126)
are kept as the text states them.
"""

import math

import numpy as np

TINY = 2.0 ** -126
LN_EPS = 1e-5


def _flag(cfg, key, default):
    value = cfg.get(key, default)
    return default if value is None else value


def softplus(x):
    # log(1 + e^x) without overflow; the text's "= x for x > 20 in float32"
    # differs from this by log1p(e^-20) ~ 2e-9, below every tolerance.
    return np.logaddexp(0.0, x)


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def linear(state, name, x):
    """nn.Linear: y = x W^T + b, W (out, in); the bias when the state has it."""
    w = np.asarray(state[name + ".weight"], np.float64)
    y = x @ w.T
    b = state.get(name + ".bias")
    if b is not None:
        y = y + np.asarray(b, np.float64)
    return y


def layer_norm(state, name, x):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + LN_EPS)
    y = y * np.asarray(state[name + ".weight"], np.float64)
    b = state.get(name + ".bias")
    if b is not None:
        y = y + np.asarray(b, np.float64)
    return y


def split(z, H):
    B, T, W = z.shape
    return z.reshape(B, T, H, W // H)


# ------------------------------------------------------------ TDC


def tdc_half(state, prefix, x, norm_first):
    """One TimeDecayConditionLayer (section 7, TDC): (B, T, D) -> (B, T, W)."""
    xh = layer_norm(state, prefix + "norm", x) if norm_first else x
    s = softplus(linear(state, prefix + "shortcut", xh)) + 1e-8
    h = s.shape[-1]
    s = s / np.maximum(np.sqrt((s * s).sum(-1, keepdims=True)), 1e-8) * \
        math.sqrt(h)
    f = linear(state, prefix + "x_f", xh)
    a = -softplus(linear(state, prefix + "in_f", xh))
    c = np.cumsum(a, axis=1)                                   # (B, T, h)
    # r_t = sum_{s<=t} f_s exp(c_t - logaddexp(c_s, ln 1e-12)): the text's
    # stable form, same value as e^{c_t} sum f_s / (e^{c_s} + 1e-12).
    lse = np.logaddexp(c, math.log(1e-12))                     # (B, T, h)
    T = x.shape[1]
    r = np.zeros_like(f)
    for t in range(T):
        w = np.exp(c[:, t:t + 1, :] - lse[:, :t + 1, :])       # (B, t+1, h)
        r[:, t, :] = (w * f[:, :t + 1, :]).sum(axis=1)
    out = s * layer_norm(state, prefix + "ln", r)
    return out @ np.asarray(state[prefix + "out_proj"], np.float64)


def tdc(state, cfg, x):
    norm_first = bool(_flag(cfg, "conv_norm_first", True))
    out = tdc_half(state, "tdc.fwd.", x, norm_first)
    if bool(_flag(cfg, "conv_bidirectional", False)):
        # bwd also runs forward in time (quirk).
        out = out + tdc_half(state, "tdc.bwd.", x, norm_first)
    return out


# ------------------------------------------------------------ RoPE


def rope(z, theta):
    """Section 6 on (B, T, H, dk): frequencies repeated ("half"), partners
    interleaved (2i, 2i+1)."""
    B, T, H, dk = z.shape
    half = dk // 2
    inv = theta ** (-2.0 * np.arange(half) / dk)               # (dk/2,)
    j = np.arange(dk)
    ang = np.arange(T)[:, None] * inv[j % half][None, :]      # (T, dk)
    cos = np.cos(ang)[None, :, None, :]
    sin = np.sin(ang)[None, :, None, :]
    rot = np.empty_like(z)
    rot[..., 0::2] = -z[..., 1::2]
    rot[..., 1::2] = z[..., 0::2]
    return z * cos + rot * sin


# ------------------------------------------------------------ prior reads
# Each read takes U (B, T, H, W) and returns R(U) (B, T, H, W).


def read_softmax(q, k, U, causal):
    dk = q.shape[-1]
    logits = np.einsum("bthc,bshc->bhts", q, k) / math.sqrt(dk)
    T = q.shape[1]
    if causal:
        vis = np.tril(np.ones((T, T), bool))
        logits = np.where(vis[None, None], logits, -np.inf)
    logits = logits - logits.max(axis=-1, keepdims=True)
    w = np.exp(logits)
    w = w / w.sum(axis=-1, keepdims=True)
    return np.einsum("bhts,bshw->bthw", w, U)


def phi(z, eps):
    return np.maximum(z, 0.0) + eps


def read_linear(q, k, U, causal, eps):
    w = np.einsum("bthc,bshc->bhts", phi(q, eps), phi(k, eps))
    if causal:
        T = q.shape[1]
        w = w * np.tril(np.ones((T, T)))[None, None]
    num = np.einsum("bhts,bshw->bthw", w, U)
    den = w.sum(axis=-1).transpose(0, 2, 1)[..., None]         # (B, T, H, 1)
    return num / np.maximum(den, eps)


def read_gla(q, k, U, decay, eps):
    """decay (B, T, H) logits; always causal (quirk)."""
    a = -(np.maximum(decay, 0.0) + eps)
    C = np.clip(np.cumsum(a, axis=1), -60.0, 50.0)              # (B, T, H)
    T = q.shape[1]
    dot = np.einsum("bthc,bshc->bhts", phi(q, eps), phi(k, eps))
    Ch = C.transpose(0, 2, 1)                                   # (B, H, T)
    diff = Ch[:, :, :, None] - Ch[:, :, None, :]                # C_t - C_s
    vis = np.tril(np.ones((T, T), bool))[None, None]
    w = np.where(vis, np.exp(np.where(vis, diff, 0.0)) * dot, 0.0)
    num = np.einsum("bhts,bshw->bthw", w, U)
    den = w.sum(axis=-1).transpose(0, 2, 1)[..., None]
    return num / (den + 1e-5)


def read_aft(q, k, U, eps):
    """rnn_softmax; always causal (quirk). The read's width W is U's."""
    B, T, H, W = U.shape
    dk = q.shape[-1]
    assert W % dk == 0, "aft needs dk | read width"
    idx = np.arange(W) % dk
    p = softplus(q[..., idx]) + eps                             # (B,T,H,W)
    norm = np.sqrt((p * p).sum(-1, keepdims=True))
    qh = p / np.maximum(norm, 1e-5) * math.sqrt(W)
    kk = k[..., idx]
    kmax = kk.max(axis=1, keepdims=True)                        # over all s
    kappa = np.exp(kk - kmax) + eps
    num = np.cumsum(kappa * U, axis=1)
    den = np.maximum(np.cumsum(kappa, axis=1), eps)
    return qh * num / den


def ssm_scan(U, delta, A, Bs, Cs, D):
    """U, delta (B, T, E'); A (E', N); Bs, Cs (B, T, N); D (E')."""
    B, T, E = U.shape
    x = np.zeros((B, E, A.shape[1]))
    y = np.empty_like(U)
    for t in range(T):
        dA = np.exp(delta[:, t, :, None] * A[None])
        x = dA * x + (delta[:, t, :] * U[:, t, :])[:, :, None] * \
            Bs[:, t, None, :]
        y[:, t] = (x * Cs[:, t, None, :]).sum(-1) + D[None] * U[:, t]
    return y


def read_ssm(U, delta, A, Bs, Cs, D, eps):
    """U (B, T, H, W) with W = dv or 2 dv: the halves of the channel axis
    share flat channel e's delta, A and D (the reference scans [V~ | X] as
    two E-wide streams)."""
    B, T, H, W = U.shape
    E = delta.shape[-1]
    dv = E // H
    halves = []
    for part in range(W // dv):
        Up = U[..., part * dv:(part + 1) * dv].reshape(B, T, E)
        y = ssm_scan(Up, delta, A, Bs, Cs, D)
        halves.append(y)
    ones = ssm_scan(np.ones((B, T, E)), delta, A, Bs, Cs, D)
    outs = [(y / np.maximum(ones, eps)).reshape(B, T, H, dv) for y in halves]
    return np.concatenate(outs, axis=-1)


# ------------------------------------------------------------ the layer


def forward(state, cfg, x, mask=None):
    state = {k: np.asarray(v, np.float64) for k, v in state.items()}
    x = np.asarray(x, np.float64)
    prior = str(_flag(cfg, "prior_type", "softmax")).lower()
    H = int(cfg["n_head"])
    eps = float(_flag(cfg, "eps", 1e-6))
    cap = float(_flag(cfg, "value_logexp_cap", 40.0))
    causal = bool(_flag(cfg, "causal", True))
    use_temp = bool(_flag(cfg, "use_temperature", True))
    use_lse = bool(_flag(cfg, "use_lse", True))
    branch = use_temp or use_lse
    use_gate = bool(_flag(cfg, "use_outer_gate", True))
    use_rope = bool(_flag(cfg, "use_rope", True))
    use_conv = bool(_flag(cfg, "use_conv", True))
    theta = float(_flag(cfg, "rope_theta", 10000.0))
    B, T, _ = x.shape
    E = state["W_v.weight"].shape[0]
    dv = E // H

    # 1. projections
    V = split(linear(state, "W_v", x), H)
    Q = K = None
    if prior != "mamba":
        Q = split(linear(state, "W_q", x), H)
        K = split(linear(state, "W_k", x), H)
    dk = 0 if Q is None else Q.shape[-1]

    # 2. the mask scales K and V (not Q)
    if mask is not None:
        m = np.asarray(mask, np.float64)[:, :, None, None]
        V = V * m
        if K is not None:
            K = K * m

    # 3. time-decay conditioning
    s_lam = s_gate = None
    if use_conv:
        o = tdc(state, cfg, x)
        i = 0
        s_v = o[..., i:i + E]; i += E
        s_q = o[..., i:i + H * dk]; i += H * dk
        s_k = o[..., i:i + H * dk]; i += H * dk
        if branch:
            s_lam = o[..., i:i + E]; i += E
        if use_gate:
            s_gate = o[..., i:i + E]; i += E
        V = V * (1.0 + split(s_v, H))
        if Q is not None:
            Q = Q * (1.0 + split(s_q, H))
            K = K * (1.0 + split(s_k, H))

    # 4. RoPE
    if use_rope and Q is not None:
        Q, K = rope(Q, theta), rope(K, theta)

    # 5. lambda and the outer gate
    lam = None
    if branch:
        lam = linear(state, "W_lambda", x)
        if s_lam is not None:
            lam = lam * (1.0 + s_lam)
        lam = sigmoid(split(lam, H))
    g = None
    if use_gate:
        gl = linear(state, "W_gate", x)
        if s_gate is not None:
            gl = gl * (1.0 + s_gate)
        gp = softplus(split(gl, H)) + eps
        nrm = np.sqrt((gp * gp).sum(-1, keepdims=True))
        g = gp / np.maximum(nrm, 1e-5) * math.sqrt(dv)

    # 6. mamba's squash, temperature, clip, shift, tilt
    if prior == "mamba":
        V = sigmoid(V)
    if branch:
        if use_temp:
            beta = softplus(state["_beta_param"]) + eps          # (E,)
            beta = beta.reshape(1, 1, H, dv)
            lim = cap / beta
            Vt = np.clip(V, -lim, lim)
        else:
            beta = np.ones((1, 1, H, dv))
            Vt = V                                               # no clip
        bv = beta * Vt
        M = bv.max(axis=1, keepdims=True)                        # all t
        X = np.exp(bv - M)
        U = np.concatenate([Vt, X], axis=-1)
    else:
        U = V

    # 7. the prior read
    if prior == "softmax":
        R = read_softmax(Q, K, U, causal)
    elif prior == "linear":
        R = read_linear(Q, K, U, causal, eps)
    elif prior == "gla":
        decay = linear(state, "W_decay", x)                      # (B, T, H)
        R = read_gla(Q, K, U, decay, eps)
    elif prior == "rnn_softmax":
        R = read_aft(Q, K, U, eps)
    elif prior == "mamba":
        N = state["A_log"].shape[1]
        p = linear(state, "W_p", x)
        delta = np.exp(-softplus(p[..., :E]))
        Bs = softplus(p[..., E:E + N]) + eps
        Cs = softplus(p[..., E + N:E + 2 * N]) + eps
        A = -softplus(state["A_log"])
        Dd = softplus(state["D_diag"]) + eps
        R = read_ssm(U, delta, A, Bs, Cs, Dd, eps)
    else:
        raise ValueError(f"unknown prior_type {prior!r}")

    if branch:
        mu, Z = R[..., :dv], R[..., dv:]
        with np.errstate(divide="ignore"):
            logZ = np.where(Z > 0, np.log(np.where(Z > 0, Z, 1.0)), -np.inf)
        F = (np.logaddexp(logZ, math.log(TINY) - M) + M) / beta
        out = (1.0 - lam) * mu + lam * F
    else:
        out = R
    if g is not None:
        out = g * out
    return linear(state, "W_o", out.reshape(B, T, E))

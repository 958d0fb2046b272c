"""An independent float64 reading of semantics.md section 7: the whole layer.

Written from /work/shared/design/semantics.md (sections 1-7) alone, with the
parameter names and flag meanings confirmed against the authors' public
FreeEnergyMixer module; it shares no code with femc's own layer references
(reference/Layer.cpp, python/femc/layer_reference.py) so that a misreading
they share shows up as a disagreement (test/python/spec_layers.py).

forward(state, config, x, mask=None) -> y, everything in float64:
  state   mapping of state_dict names -> arrays (the module's own names);
  config  the FreeEnergyMixerConfig fields (missing ones take the module's
          defaults); the sizes E, dk, the TDC widths come from the shapes.
"""

import math

import numpy as np

DEFAULTS = {
    "causal": True, "bias": True, "use_temperature": True, "use_lse": True,
    "use_outer_gate": True, "use_rope": True, "rope_theta": 10000.0,
    "value_logexp_cap": 40.0, "eps": 1e-6, "use_conv": True,
    "conv_norm_first": True, "conv_bidirectional": False, "ssm_rank": 16,
    "prior_type": "softmax",
}
TINY = 2.0 ** -126      # section 3: float32's smallest normal
LN_EPS = 1e-5           # nn.LayerNorm's default eps (section 7, TDC)


def softplus(x):
    return np.logaddexp(0.0, x)


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def linear(state, name, x):
    """nn.Linear: y = x W^T + b, W (out, in); the bias when the state has it."""
    y = x @ np.asarray(state[name + ".weight"], np.float64).T
    if name + ".bias" in state:
        y = y + np.asarray(state[name + ".bias"], np.float64)
    return y


def layer_norm(state, name, x, eps=LN_EPS):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    y = y * np.asarray(state[name + ".weight"], np.float64)
    if name + ".bias" in state:
        y = y + np.asarray(state[name + ".bias"], np.float64)
    return y


def normalize(x, eps):
    """F.normalize over the last axis: x / max(||x||_2, eps)."""
    return x / np.maximum(np.sqrt((x * x).sum(axis=-1, keepdims=True)), eps)


def split(x, H):
    B, T, W = x.shape
    return x.reshape(B, T, H, W // H)


def merge(x):
    B, T, H, d = x.shape
    return x.reshape(B, T, H * d)


# ------------------------------------------------------------ TDC (section 7)


def tdc_direction(state, prefix, x, cfg):
    xh = layer_norm(state, prefix + "norm", x) if cfg["conv_norm_first"] else x
    h = state[prefix + "in_f.weight"].shape[0]
    s = softplus(linear(state, prefix + "shortcut", xh)) + 1e-8
    s = normalize(s, 1e-8) * math.sqrt(h)
    f = linear(state, prefix + "x_f", xh)
    a = -softplus(linear(state, prefix + "in_f", xh))
    c = np.cumsum(a, axis=1)                       # inclusive, per channel
    # r_t = exp(c_t) sum_{s<=t} f_s / (exp(c_s) + 1e-12), in the stable form
    # sum_{s<=t} f_s exp(c_t - logaddexp(c_s, ln 1e-12)) (section 7).
    w = np.exp(-np.logaddexp(c, math.log(1e-12)))  # <= 1e12
    r = np.exp(c) * np.cumsum(f * w, axis=1)
    r = layer_norm(state, prefix + "ln", r)
    return (s * r) @ np.asarray(state[prefix + "out_proj"], np.float64)


def tdc(state, x, cfg):
    out = tdc_direction(state, "tdc.fwd.", x, cfg)
    if cfg["conv_bidirectional"]:
        # bwd also runs forward in time (quirk)
        out = out + tdc_direction(state, "tdc.bwd.", x, cfg)
    return out


# ----------------------------------------------------------- RoPE (section 6)


def rope(x, theta):
    B, T, H, dk = x.shape
    i = np.arange(dk // 2, dtype=np.float64)
    inv_freq = theta ** (-2.0 * i / dk)
    j = np.arange(dk)
    angle = np.arange(T, dtype=np.float64)[:, None] * inv_freq[j % (dk // 2)]
    cos = np.cos(angle)[None, :, None, :]
    sin = np.sin(angle)[None, :, None, :]
    rot = np.empty_like(x)
    rot[..., 0::2] = -x[..., 1::2]
    rot[..., 1::2] = x[..., 0::2]
    return x * cos + rot * sin


# ------------------------------------------------------- priors (section 2)


def causal_mask(T):
    return np.tril(np.ones((T, T), dtype=bool))


def read_softmax(q, k, u, causal):
    dk = q.shape[-1]
    logits = np.einsum("bthc,bshc->bhts", q, k) / math.sqrt(dk)
    if causal:
        logits = np.where(causal_mask(q.shape[1]), logits, -np.inf)
    logits = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(logits)
    p = p / p.sum(axis=-1, keepdims=True)
    return np.einsum("bhts,bshc->bthc", p, u)


def read_linear(q, k, u, causal, eps):
    w = np.einsum("bthc,bshc->bhts", np.maximum(q, 0) + eps,
                  np.maximum(k, 0) + eps)
    if causal:
        w = w * causal_mask(q.shape[1])
    num = np.einsum("bhts,bshc->bthc", w, u)
    den = w.sum(axis=-1).transpose(0, 2, 1)[..., None]
    return num / np.maximum(den, eps)


def read_gla(q, k, u, decay, eps):
    a = -(np.maximum(decay, 0) + eps)                # (B,T,H)
    C = np.clip(np.cumsum(a, axis=1), -60.0, 50.0)
    C = C.transpose(0, 2, 1)                         # (B,H,T)
    T = q.shape[1]
    diff = C[:, :, :, None] - C[:, :, None, :]
    diff = np.where(causal_mask(T), diff, -np.inf)   # always causal (quirk)
    w = np.exp(diff) * np.einsum("bthc,bshc->bhts", np.maximum(q, 0) + eps,
                                 np.maximum(k, 0) + eps)
    num = np.einsum("bhts,bshc->bthc", w, u)
    den = w.sum(axis=-1).transpose(0, 2, 1)[..., None]
    return num / (den + 1e-5)


def read_aft(q, k, u, eps):
    dk = q.shape[-1]
    W = u.shape[-1]
    assert W % dk == 0, f"aft: dk {dk} must divide the read width {W}"
    iota = np.arange(W) % dk
    p = softplus(q[..., iota]) + eps
    qh = normalize(p, 1e-5) * math.sqrt(W)
    kr = k[..., iota]
    kappa = np.exp(kr - kr.max(axis=1, keepdims=True)) + eps  # all s (quirk)
    num = np.cumsum(kappa * u, axis=1)
    den = np.maximum(np.cumsum(kappa, axis=1), eps)
    return qh * num / den


def scan_ssm(u, delta, A, Bs, Cs, D):
    """u, delta (B,T,E); A (E,N); Bs, Cs (B,T,N); D (E) -> y (B,T,E)."""
    Bn, T, E = u.shape
    x = np.zeros((Bn, E, A.shape[1]))
    y = np.empty_like(u)
    for t in range(T):
        dA = np.exp(delta[:, t, :, None] * A[None])
        x = dA * x + (delta[:, t, :, None] * Bs[:, t, None, :] *
                      u[:, t, :, None])
        y[:, t] = (x * Cs[:, t, None, :]).sum(-1) + D * u[:, t]
    return y


# ---------------------------------------------------------- the whole layer


def config_with_defaults(config):
    cfg = dict(DEFAULTS)
    cfg.update({k: v for k, v in config.items() if v is not None})
    cfg["prior_type"] = cfg["prior_type"].lower()
    return cfg


def forward(state, config, x, mask=None):
    cfg = config_with_defaults(config)
    state = {k: np.asarray(v, np.float64) for k, v in state.items()}
    x = np.asarray(x, np.float64)
    prior = cfg["prior_type"]
    eps = float(cfg["eps"])
    H = int(cfg["n_head"])
    E = state["W_v.weight"].shape[0]
    dv = E // H
    Bn, T, _ = x.shape
    branch = cfg["use_temperature"] or cfg["use_lse"]

    # 1. projections
    V = split(linear(state, "W_v", x), H)
    Q = K = None
    if prior != "mamba":
        Q = split(linear(state, "W_q", x), H)
        K = split(linear(state, "W_k", x), H)
    dk = Q.shape[-1] if Q is not None else 0

    # 2. the mask multiplies K and V (not Q)
    if mask is not None:
        m = np.asarray(mask, np.float64)[:, :, None, None]
        V = V * m
        if K is not None:
            K = K * m

    # 3. time-decay conditioning
    s_lam = s_gate = None
    if cfg["use_conv"]:
        o = tdc(state, x, cfg)
        i = 0
        V = V * (1 + split(o[..., i:i + E], H))
        i += E
        if Q is not None:
            Q = Q * (1 + split(o[..., i:i + H * dk], H))
            K = K * (1 + split(o[..., i + H * dk:i + 2 * H * dk], H))
        i += 2 * H * dk
        if branch:
            s_lam = o[..., i:i + E]
            i += E
        if cfg["use_outer_gate"]:
            s_gate = o[..., i:i + E]
            i += E
        # a gla part of width H follows and is ignored (quirk)

    # 4. RoPE
    if cfg["use_rope"] and Q is not None:
        Q = rope(Q, float(cfg["rope_theta"]))
        K = rope(K, float(cfg["rope_theta"]))

    # 5. lambda and the outer gate
    lam = gate = None
    if branch:
        lam = linear(state, "W_lambda", x)
        if s_lam is not None:
            lam = lam * (1 + s_lam)
        lam = split(sigmoid(lam), H)
    if cfg["use_outer_gate"]:
        g = linear(state, "W_gate", x)
        if s_gate is not None:
            g = g * (1 + s_gate)
        g = split(softplus(g) + eps, H)
        gate = normalize(g, 1e-5) * math.sqrt(dv)

    # 6. mamba squash; temperature, clip, shift, tilt
    if prior == "mamba":
        V = sigmoid(V)
    if branch:
        if cfg["use_temperature"]:
            beta = split((softplus(state["_beta_param"]) + eps)[None, None],
                         H)                            # (1,1,H,dv)
            lim = float(cfg["value_logexp_cap"]) / beta
            Vt = np.clip(V, -lim, lim)
        else:
            beta = np.ones((1, 1, H, dv))
            Vt = V
        bv = beta * Vt
        M = bv.max(axis=1, keepdims=True)              # all t (quirk)
        X = np.exp(bv - M)
        U = np.concatenate([Vt, X], axis=-1)
    else:
        U = V

    # 7. the prior read
    if prior == "softmax":
        R = read_softmax(Q, K, U, cfg["causal"])
    elif prior == "linear":
        R = read_linear(Q, K, U, cfg["causal"], eps)
    elif prior == "gla":
        R = read_gla(Q, K, U, linear(state, "W_decay", x), eps)
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
        norm = np.maximum(scan_ssm(np.ones((Bn, T, E)), delta, A, Bs, Cs, Dd),
                          eps)
        halves = [Vt, X] if branch else [V]
        R = np.concatenate(
            [split(scan_ssm(merge(h), delta, A, Bs, Cs, Dd) / norm, H)
             for h in halves], axis=-1)
    else:
        raise ValueError(f"unknown prior_type {prior!r}")

    if branch:
        mu, Z = R[..., :dv], R[..., dv:]
        with np.errstate(divide="ignore"):
            logZ = np.where(Z > 0, np.log(np.maximum(Z, 0)), -np.inf)
        F = (np.logaddexp(logZ, math.log(TINY) - M) + M) / beta
        out = (1 - lam) * mu + lam * F
    else:
        out = R
    if gate is not None:
        out = gate * out
    return linear(state, "W_o", merge(out))

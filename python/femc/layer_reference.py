"""A float64 numpy implementation of one whole FEM layer (docs/semantics.md §7).

``forward(params, config, x, attention_mask=None)`` computes what the
authors' ``FreeEnergyMixer.forward`` computes, from the module's
``state_dict`` (a mapping name -> array, PyTorch layouts) and its
configuration (a mapping of FreeEnergyMixerConfig fields), in double
precision: projections, the key/value mask, the time-decay conditioning
(use_conv) with its 1e-12 floor in the stable form, RoPE in the module's
mixed convention, the gates, the clip/shift/tilt, the prior read, the log
restore and the output projection.

It is written independently of femc's compiled layers (femc.importer emits
MLIR) and of the C++ reference, to check both. Sequences are read with
O(T^2) sums: use it for checks, not for speed. Needs numpy only.
"""

import math

import numpy as np

from .layer_config import (resolve_config, rope_inv_freq, tdc_branches,
                           tdc_hidden)

__all__ = ["forward"]

TINY = 2.0 ** -126


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps) * weight
    return y + bias if bias is not None else y


def _normalize(x, eps):
    norm = np.sqrt((x * x).sum(axis=-1, keepdims=True))
    return x / np.maximum(norm, eps)


class _Params:
    def __init__(self, params):
        self.p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}

    def __getitem__(self, name):
        return self.p[name]

    def get(self, name):
        return self.p.get(name)

    def linear(self, x, name):
        y = x @ self.p[name + ".weight"].T
        b = self.p.get(name + ".bias")
        return y + b if b is not None else y


def _tdc_branch(P, prefix, x, norm_first, hidden):
    xh = (_layer_norm(x, P[prefix + "norm.weight"], P.get(prefix + "norm.bias"))
          if norm_first else x)
    s = _softplus(P.linear(xh, prefix + "shortcut")) + 1e-8
    s = _normalize(s, 1e-8) * math.sqrt(hidden)
    f = P.linear(xh, prefix + "x_f")
    a = -_softplus(P.linear(xh, prefix + "in_f"))
    c = np.cumsum(a, axis=1)                              # (B,T,h)
    # r_t = exp(c_t) * sum_{s<=t} f_s / (exp(c_s) + 1e-12), in the stable
    # form sum_{s<=t} f_s * exp(c_t - logaddexp(c_s, ln 1e-12)).
    den = np.logaddexp(c, math.log(1e-12))                # (B,T,h)
    T = x.shape[1]
    w = np.exp(c[:, :, None, :] - den[:, None, :, :])     # (B,t,s,h)
    w = w * np.tril(np.ones((T, T)))[None, :, :, None]
    r = np.einsum("btsh,bsh->bth", w, f)
    u = s * _layer_norm(r, P[prefix + "ln.weight"], P.get(prefix + "ln.bias"))
    return u @ P[prefix + "out_proj"]


def _rope(x, theta):
    B, T, H, d = x.shape
    inv = rope_inv_freq(theta, d)          # theta^(-2i/d), float64
    ang = np.arange(T, dtype=np.float64)[:, None] * np.concatenate([inv, inv])
    cos = np.cos(ang)[None, :, None, :]
    sin = np.sin(ang)[None, :, None, :]
    rot = np.empty_like(x)
    rot[..., 0::2] = -x[..., 1::2]
    rot[..., 1::2] = x[..., 0::2]
    return x * cos + rot * sin


def _read(kind, cfg, P, x, Q, K, U):
    """The prior read R(U) of U (B,T,H,W) for one of the module's priors."""
    B, T, H, W = U.shape
    eps = cfg["eps"]
    tri = np.tril(np.ones((T, T)))
    if kind == "softmax":
        dk = Q.shape[-1]
        logits = np.einsum("bthd,bshd->bhts", Q, K) / math.sqrt(dk)
        if cfg["causal"]:
            logits = np.where(tri[None, None] > 0, logits, -np.inf)
        logits -= logits.max(axis=-1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=-1, keepdims=True)
        return np.einsum("bhts,bshw->bthw", p, U)
    if kind in ("linear", "gla"):
        q = np.maximum(Q, 0) + eps
        k = np.maximum(K, 0) + eps
        w = np.einsum("bthd,bshd->bhts", q, k)
        if kind == "gla":
            a = -(np.maximum(P.linear(x, "W_decay"), 0) + eps)   # (B,T,H)
            c = np.clip(np.cumsum(a, axis=1), -60, 50)
            c = c.transpose(0, 2, 1)                               # (B,H,T)
            w = w * np.exp(c[:, :, :, None] - c[:, :, None, :]) * tri
            num = np.einsum("bhts,bshw->bthw", w, U)
            den = w.sum(axis=-1).transpose(0, 2, 1)[..., None] + 1e-5
            return num / den
        if cfg["causal"]:
            w = w * tri
        num = np.einsum("bhts,bshw->bthw", w, U)
        den = w.sum(axis=-1).transpose(0, 2, 1)[..., None]
        return num / np.maximum(den, eps)
    if kind == "rnn_softmax":
        dk = Q.shape[-1]
        r = W // dk
        q = np.tile(Q, (1, 1, 1, r))
        k = np.tile(K, (1, 1, 1, r))
        qp = _softplus(q) + eps
        qp = _normalize(qp, 1e-5) * math.sqrt(W)
        kexp = np.exp(k - k.max(axis=1, keepdims=True)) + eps
        num = np.cumsum(kexp * U, axis=1)
        den = np.maximum(np.cumsum(kexp, axis=1), eps)
        return qp * num / den
    if kind == "mamba":
        E = cfg["fem_dim"]
        R = cfg["ssm_rank"]
        dv = cfg["d_v"]
        p = P.linear(x, "W_p")
        delta = np.exp(-_softplus(p[:, :, :E]))                 # (B,T,E)
        Bs = _softplus(p[:, :, E:E + R]) + eps
        Cs = _softplus(p[:, :, E + R:E + 2 * R]) + eps
        A = -_softplus(P["A_log"])                             # (E,N)
        Dd = _softplus(P["D_diag"]) + eps

        def scan(u):                                           # (B,T,E)
            state = np.zeros((B, E, R))
            out = np.empty((B, T, E))
            for t in range(T):
                dA = np.exp(delta[:, t, :, None] * A[None])
                state = dA * state + (delta[:, t, :, None] * Bs[:, t, None, :]
                                      * u[:, t, :, None])
                out[:, t] = (state * Cs[:, t, None, :]).sum(-1) + Dd * u[:, t]
            return out

        norm = np.maximum(scan(np.ones((B, T, E))), eps)
        parts = []
        for i in range(W // dv):
            u = U[..., i * dv:(i + 1) * dv].reshape(B, T, E)
            parts.append((scan(u) / norm).reshape(B, T, H, dv))
        return np.concatenate(parts, axis=-1)
    raise ValueError(f"unknown prior_type {kind!r}")


def forward(params, config, x, attention_mask=None):
    """y (B,T,n_embd) = FreeEnergyMixer(config) with ``params`` applied to
    x (B,T,n_embd), in float64; attention_mask (B,T), nonzero keeps."""
    cfg = resolve_config(dict(config)) if "fem_prior" not in config else config
    P = _Params(params)
    x = np.asarray(x, dtype=np.float64)
    B, T, _ = x.shape
    H, E, dk, dv = cfg["n_head"], cfg["fem_dim"], cfg["d_k"], cfg["d_v"]
    kind = cfg["prior_type"]
    eps = cfg["eps"]

    def split(y, d):
        return y.reshape(B, T, H, d)

    V = split(P.linear(x, "W_v"), dv)
    Q = K = None
    if kind != "mamba":
        Q = split(P.linear(x, "W_q"), dk)
        K = split(P.linear(x, "W_k"), dk)
    if attention_mask is not None:
        m = np.asarray(attention_mask).astype(np.float64)[:, :, None, None]
        V = V * m
        if K is not None:
            K = K * m
    s_lam = s_gate = None
    if cfg["use_conv"]:
        h = tdc_hidden(cfg)
        o = sum(_tdc_branch(P, f"tdc.{br}.", x, cfg["conv_norm_first"], h)
                for br in tdc_branches(cfg))
        i = 0
        V = V * (1 + split(o[..., i:i + E], dv)); i += E
        if Q is not None:
            Q = Q * (1 + split(o[..., i:i + H * dk], dk))
            K = K * (1 + split(o[..., i + H * dk:i + 2 * H * dk], dk))
        i += 2 * H * dk
        if cfg["use_temperature"] or cfg["use_lse"]:
            s_lam = split(o[..., i:i + E], dv); i += E
        if cfg["use_outer_gate"]:
            s_gate = split(o[..., i:i + E], dv); i += E
    if cfg["use_rope"] and Q is not None:
        Q = _rope(Q, cfg["rope_theta"])
        K = _rope(K, cfg["rope_theta"])
    lam = None
    if cfg["use_temperature"] or cfg["use_lse"]:
        lam = split(P.linear(x, "W_lambda"), dv)
        if s_lam is not None:
            lam = lam * (1 + s_lam)
        lam = _sigmoid(lam)
    gate = None
    if cfg["use_outer_gate"]:
        gate = split(P.linear(x, "W_gate"), dv)
        if s_gate is not None:
            gate = gate * (1 + s_gate)
        gate = _softplus(gate) + eps
        gate = _normalize(gate, 1e-5) * math.sqrt(dv)
    if kind == "mamba":
        V = _sigmoid(V)
    if cfg["use_temperature"] or cfg["use_lse"]:
        if cfg["use_temperature"]:
            beta = (_softplus(P["_beta_param"]) + eps).reshape(H, dv)
            lim = cfg["value_logexp_cap"] / beta
            Vc = np.clip(V, -lim, lim)
        else:
            beta = np.ones((H, dv))
            Vc = V
        vt = beta * Vc
        M = vt.max(axis=1, keepdims=True)
        X = np.exp(vt - M)
        out = _read(kind, cfg, P, x, Q, K, np.concatenate([Vc, X], axis=-1))
        mu, Z = out[..., :dv], out[..., dv:]
        with np.errstate(divide="ignore"):
            logz = np.where(Z > 0, np.log(np.maximum(Z, 0)), -np.inf)
        F = (np.logaddexp(logz, math.log(TINY) - M) + M) / beta
        mixed = (1 - lam) * mu + lam * F
    else:
        mixed = _read(kind, cfg, P, x, Q, K, V)
    if gate is not None:
        mixed = gate * mixed
    return P.linear(mixed.reshape(B, T, E), "W_o")

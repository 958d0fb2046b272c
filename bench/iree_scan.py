"""IREE rows for the scan priors' bench (bench/scan_bench.py): the authors'
formulation of linear, gla and aft exactly as bench/scan_child.py writes it
in PyTorch, exported with torch.export, imported by the FX importer that
iree-base-compiler ships (torch-dialect MLIR) and compiled by IREE for
llvm-cpu with the host CPU's features (bench/iree_peer.py); ssm as a JAX
lax.scan of the same recurrence, through StableHLO (scan_child's ssm is a
Python loop over time, which torch.export would unroll into 3*T steps).

    scan_child.py iree PRIOR DIR REPS   (calls iree_row below)

DIR holds what fem-run wrote (--save-inputs, --output out=DIR/femc.npy);
the answer has scan_child.ref's keys: median_ms, min_ms (one warm-up call,
then REPS timed calls), diff (max|IREE - femc| / max|femc|), and compile_s.
"""
import math
import os

CAP, EPS, TINY = 40.0, 1e-6, 2.0 ** -126


def torch_formulation(prior, names):
    """scan_child's PyTorch formulation of prior as a function of the inputs
    in the order of names."""
    import scan_child
    ref = {"linear": lambda x: scan_child.ref_linear(x, False),
           "gla": lambda x: scan_child.ref_linear(x, True),
           "aft": scan_child.ref_aft}[prior]
    return lambda *xs: ref(dict(zip(names, xs)))


def jax_ssm(v, beta_raw, lam_l, gate_l, delta, A, Bs, Cs, D):
    """design/semantics.md's ssm read (Mamba's selective scan on V~, X and
    the ones of the normaliser) with jax.lax.scan over time; the inputs as
    fem-run saves them (delta (B,T,E), A (E,N), Bs/Cs (B,T,N), D (E))."""
    import jax
    import jax.numpy as jnp
    B, T, H, dv = v.shape
    E = H * dv
    u = jax.nn.sigmoid(v).reshape(B, T, E)
    beta = jax.nn.softplus(beta_raw) + EPS                          # (E)
    vt = jnp.clip(u, -CAP / beta, CAP / beta)
    m = (beta * vt).max(axis=1, keepdims=True)                      # (B,1,E)
    xs = jnp.exp(beta * vt - m)
    streams = jnp.stack([vt, xs, jnp.ones_like(vt)], axis=-1)       # (B,T,E,3)

    def step(state, inp):                                           # state (B,E,N,3)
        d_t, b_t, c_t, s_t = inp        # (B,E), (B,N), (B,N), (B,E,3)
        da = jnp.exp(d_t[:, :, None] * A)[..., None]                # (B,E,N,1)
        state = da * state + (d_t[:, :, None, None] * b_t[:, None, :, None]
                              * s_t[:, :, None, :])
        y = jnp.einsum("benk,bn->bek", state, c_t) + D[:, None] * s_t
        return state, y
    init = jnp.zeros((B, E, A.shape[1], 3), v.dtype)
    seq = tuple(jnp.moveaxis(a, 1, 0) for a in (delta, Bs, Cs, streams))
    _, ys = jax.lax.scan(step, init, seq)                           # (T,B,E,3)
    ys = jnp.moveaxis(ys, 0, 1)
    den = jnp.maximum(ys[..., 2], EPS)
    mu, z = ys[..., 0] / den, ys[..., 1] / den
    logz = jnp.where(z > 0, jnp.log(jnp.where(z > 0, z, 1.0)), -jnp.inf)
    f = (jnp.logaddexp(logz, math.log(TINY) - m) + m) / beta
    lam = jax.nn.sigmoid(lam_l).reshape(B, T, E)
    gp = jax.nn.softplus(gate_l) + EPS
    g = gp / jnp.maximum(jnp.linalg.norm(gp, axis=-1, keepdims=True), 1e-5) * math.sqrt(dv)
    return g * ((1 - lam) * mu + lam * f).reshape(B, T, H, dv)


def iree_row(prior, d, reps):
    import numpy as np
    import iree_peer
    import scan_child
    try:
        iree_peer.versions()
    except ImportError as e:
        return {"error": f"IREE not installed ({e})"}
    names = scan_child.NAMES[prior]
    args = [np.load(os.path.join(d, n + ".npy")) for n in names]
    try:
        if prior == "ssm":
            vmfb, info = iree_peer.compile_jax(jax_ssm, args)
        else:
            vmfb, info = iree_peer.compile_torch(torch_formulation(prior, names), args)
        run = iree_peer.Runner(vmfb)
        dev = run.upload(args)
        med, mn = scan_child.timed(lambda: run(*dev), reps)
        out = run(*dev).to_host().astype(np.float64)
    except ImportError as e:
        return {"error": f"not installed ({e})"}
    except Exception as e:  # the row says why, in one line
        return {"error": f"{type(e).__name__}: {iree_peer.error_line(e)}"}
    femc = np.load(os.path.join(d, "femc.npy")).astype(np.float64)
    return {"median_ms": med * 1e3, "min_ms": mn * 1e3,
            "diff": float(np.abs(out - femc).max()) / max(float(np.abs(femc).max()), 1e-30),
            "compile_s": info["compile_s"]}

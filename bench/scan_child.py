"""One measurement of bench/scan_bench.py in a child process of its own
(bench/.venv/bin/python: PyTorch 2.x and numpy from PyPI), so that a
reference that runs out of memory costs only its own row. The last line of
stdout is one JSON object.

    scan_child.py rates REPS            same-run SGEMM (2048^3, numpy and
                                        torch) and memory-copy rates
    scan_child.py ref PRIOR DIR REPS    time the reference formulation of
                                        PRIOR in PyTorch on DIR's inputs and
                                        compare it with DIR/femc.npy
    scan_child.py iree PRIOR DIR REPS   the same formulation compiled by IREE
                                        for llvm-cpu (bench/iree_scan.py)

DIR holds what fem-run wrote with --save-inputs (layout bthd) and --output.
The formulations follow docs/semantics.md literally, as the FEM authors'
PyTorch code computes them: linear and gla materialise the T x T weights,
aft runs cumulative sums over the concatenated width 2*dv, ssm runs the
selective scan of Mamba's reference (selective_scan_ref: a Python loop over
time) once per stream (V~, X and the ones of the normaliser).
"""
import json
import math
import os
import statistics
import sys
import time

CAP, EPS, TINY = 40.0, 1e-6, 2.0 ** -126
N_MM = 2048
COPY_MIB = 256


def timed(fn, reps, warm=True):
    if warm:
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def ncores():
    return len(os.sched_getaffinity(0))


def rates(reps):
    import numpy as np
    import torch
    torch.set_num_threads(ncores())
    res = {}
    flop = 2.0 * N_MM ** 3
    a = np.random.default_rng(0).standard_normal((N_MM, N_MM), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((N_MM, N_MM), dtype=np.float32)
    res["numpy_sgemm"] = flop / timed(lambda: a @ b, reps)[0] / 1e9
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    res["torch_sgemm"] = flop / timed(lambda: ta @ tb, reps)[0] / 1e9
    # Copy: bytes read + bytes written per second, large enough to miss the
    # caches (numpy: one thread; torch: all cores).
    n = COPY_MIB * 2 ** 20 // 4
    src = np.ones(n, dtype=np.float32)
    dst = np.empty_like(src)
    res["numpy_copy"] = 2 * src.nbytes / timed(lambda: np.copyto(dst, src), reps)[0] / 1e9
    ts, td = torch.from_numpy(src), torch.from_numpy(dst)
    res["torch_copy"] = 2 * src.nbytes / timed(lambda: td.copy_(ts), reps)[0] / 1e9
    res["torch"] = torch.__version__
    res["threads"] = torch.get_num_threads()
    return res


# --------------------------------------------------------------------------
# The reference formulations (float32, as the authors run them).

def load(d, names):
    import numpy as np
    import torch
    return {n: torch.from_numpy(np.load(os.path.join(d, n + ".npy"))) for n in names}


def softplus(x):
    import torch
    return torch.nn.functional.softplus(x)


def streams(x, H, dv, squash=False):
    """beta (H, dv), V~ and X (B, H, T, dv), M (B, H, 1, dv) from v (B,T,H,dv)."""
    import torch
    v = x["v"].permute(0, 2, 1, 3)
    if squash:
        v = torch.sigmoid(v)
    beta = (softplus(x["beta_raw"]) + EPS).reshape(1, H, 1, dv)
    vt = torch.maximum(torch.minimum(v, CAP / beta), -CAP / beta)
    m = (beta * vt).amax(dim=2, keepdim=True)
    return beta, vt, torch.exp(beta * vt - m), m


def finish(x, beta, m, mu, z, dv):
    """The log restore and the gate: out (B, T, H, dv)."""
    import torch
    logz = torch.where(z > 0, torch.log(torch.clamp(z, min=0) + (z <= 0)), -math.inf)
    f = (torch.logaddexp(logz, math.log(TINY) - m) + m) / beta
    lam = torch.sigmoid(x["lam"].permute(0, 2, 1, 3))
    gp = softplus(x["gate"].permute(0, 2, 1, 3)) + EPS
    g = gp / torch.clamp(gp.norm(dim=-1, keepdim=True), min=1e-5) * math.sqrt(dv)
    return (g * ((1 - lam) * mu + lam * f)).permute(0, 2, 1, 3)


def ref_linear(x, gla):
    import torch
    q = x["q"].permute(0, 2, 1, 3)
    k = x["k"].permute(0, 2, 1, 3)
    B, H, T, dk = q.shape
    dv = x["v"].shape[-1]
    beta, vt, xs, m = streams(x, H, dv)
    u = torch.cat([vt, xs], dim=-1)
    w = (torch.relu(q) + EPS) @ (torch.relu(k) + EPS).transpose(-1, -2)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    if gla:
        a = -(torch.relu(x["decay"].permute(0, 2, 1)) + EPS)        # (B, H, T)
        c = torch.clamp(torch.cumsum(a, dim=-1), -60.0, 50.0)
        diff = (c.unsqueeze(-1) - c.unsqueeze(-2)).masked_fill(~causal, -math.inf)
        w = w * torch.exp(diff)
        r = (w @ u) / (w.sum(-1, keepdim=True) + 1e-5)
    else:
        w = w.masked_fill(~causal, 0.0)
        r = (w @ u) / torch.clamp(w.sum(-1, keepdim=True), min=EPS)
    return finish(x, beta, m, r[..., :dv], r[..., dv:], dv)


def ref_aft(x):
    import torch
    q = x["q"].permute(0, 2, 1, 3)
    k = x["k"].permute(0, 2, 1, 3)
    B, H, T, dk = q.shape
    dv = x["v"].shape[-1]
    W = 2 * dv
    beta, vt, xs, m = streams(x, H, dv)
    u = torch.cat([vt, xs], dim=-1)
    qw = q.repeat(1, 1, 1, W // dk)          # channel j uses q/k channel j mod dk
    kw = k.repeat(1, 1, 1, W // dk)
    p = softplus(qw) + EPS
    qhat = p / torch.clamp(p.norm(dim=-1, keepdim=True), min=1e-5) * math.sqrt(W)
    kappa = torch.exp(kw - kw.amax(dim=2, keepdim=True)) + EPS
    num = torch.cumsum(kappa * u, dim=2)
    den = torch.cumsum(kappa, dim=2)
    r = qhat * num / torch.clamp(den, min=EPS)
    return finish(x, beta, m, r[..., :dv], r[..., dv:], dv)


def selective_scan_ref(u, delta, A, Bs, Cs, D):
    """Mamba's reference scan: u, delta (B, E, L); A (E, N); Bs, Cs (B, N, L);
    D (E). Returns y (B, E, L)."""
    import torch
    delta_a = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    delta_b_u = torch.einsum("bdl,bnl,bdl->bdln", delta, Bs, u)
    xs = torch.zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for i in range(u.shape[2]):
        xs = delta_a[:, :, i] * xs + delta_b_u[:, :, i]
        ys.append(torch.einsum("bdn,bn->bd", xs, Cs[:, :, i]))
    return torch.stack(ys, dim=2) + u * D.unsqueeze(-1)


def ref_ssm(x):
    import torch
    B, T, H, dv = x["v"].shape
    beta, vt, xs, m = streams(x, H, dv, squash=True)
    flat = lambda s: s.permute(0, 1, 3, 2).reshape(B, H * dv, T)     # (B, E, T)
    unflat = lambda y: y.reshape(B, H, dv, T).permute(0, 1, 3, 2)    # (B, H, T, dv)
    delta = x["delta"].permute(0, 2, 1)
    bs, cs = x["Bs"].permute(0, 2, 1), x["Cs"].permute(0, 2, 1)
    scan = lambda s: selective_scan_ref(s, delta, x["A"], bs, cs, x["D"])
    mu, z, one = scan(flat(vt)), scan(flat(xs)), scan(torch.ones(B, H * dv, T))
    den = torch.clamp(one, min=EPS)
    return finish(x, beta, m, unflat(mu / den), unflat(z / den), dv)


NAMES = {
    "linear": ("q", "k", "v", "beta_raw", "lam", "gate"),
    "gla": ("q", "k", "v", "beta_raw", "lam", "gate", "decay"),
    "aft": ("q", "k", "v", "beta_raw", "lam", "gate"),
    "ssm": ("v", "beta_raw", "lam", "gate", "delta", "A", "Bs", "Cs", "D"),
}


def ref(prior, d, reps):
    import numpy as np
    import torch
    torch.set_num_threads(ncores())
    x = load(d, NAMES[prior])
    fn = {"linear": lambda: ref_linear(x, False), "gla": lambda: ref_linear(x, True),
          "aft": lambda: ref_aft(x), "ssm": lambda: ref_ssm(x)}[prior]
    with torch.no_grad():
        out = fn()                      # the warm-up call
        med, mn = timed(fn, reps, warm=False)
    femc = np.load(os.path.join(d, "femc.npy")).astype(np.float64)
    diff = float(np.abs(out.double().numpy() - femc).max())
    return {"median_ms": med * 1e3, "min_ms": mn * 1e3,
            "diff": diff / max(float(np.abs(femc).max()), 1e-30)}


def main(argv):
    if argv[1] == "rates":
        return rates(int(argv[2]))
    if argv[1] == "ref":
        return ref(argv[2], argv[3], int(argv[4]))
    if argv[1] == "iree":
        import iree_scan
        return iree_scan.iree_row(argv[2], argv[3], int(argv[4]))
    raise SystemExit(f"unknown mode {argv[1]}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv)), flush=True)

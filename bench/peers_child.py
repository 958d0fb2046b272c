"""One measurement of bench/run_bench.py, run in a child process of its own
(normally with bench/.venv/bin/python, which has PyTorch 2.x, JAX, IREE and
numpy from PyPI), so that a peer that fails to import, crashes or runs out of
memory costs only its own row. The last line of stdout is one JSON object.

    peers_child.py sgemm REPS                 same-run matmul rates (2048^3)
    peers_child.py sgemm_numpy_only REPS      numpy's alone (any numpy)
    peers_child.py torch_kernels              torch's matmul/SDPA calls, for
                                              MKL_VERBOSE/ONEDNN_VERBOSE
    peers_child.py ref DIR CAUSAL             float64 reference -> DIR/ref.npy
    peers_child.py err DIR FILE.npy           max|FILE - ref| / max|ref|
    peers_child.py row NAME DIR CAUSAL REPS   time one peer on DIR's inputs
                                              (the iree_* rows: bench/iree_peer.py)

DIR holds the inputs fem-run wrote with --save-inputs (q, k, v, beta_raw, lam,
gate; layout bthd), so every row computes on exactly femc's inputs.
Only numpy is needed for info/sgemm/ref/err; each row imports its framework.
"""
import json
import math
import os
import statistics
import sys
import time

CAP, EPS, TINY = 40.0, 1e-6, 2.0 ** -126
N_MM = 2048
BF16_SMALL, BF16_SLOW = 512, 20.0
INPUTS = ("q", "k", "v", "beta_raw", "lam", "gate")


class TooOld(Exception):
    """A peer framework is there but older than the bench supports."""


def timed(fn, reps):
    """One warm-up call (compiles for JAX), then reps timed calls: (median, min) s."""
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def ncores():
    return len(os.sched_getaffinity(0))


def load(d):
    import numpy as np
    return {n: np.load(os.path.join(d, n + ".npy")) for n in INPUTS}


# --------------------------------------------------------------------------
# The float64 reference (design/semantics.md, softmax prior), numpy only.

def reference(x, causal):
    import numpy as np
    q, k, v = (x[n].astype(np.float64) for n in ("q", "k", "v"))
    B, T, H, dk = q.shape
    S, dv = k.shape[1], v.shape[3]
    sp = lambda z: np.where(z > 20, z, np.log1p(np.exp(np.minimum(z, 20))))
    beta = (sp(x["beta_raw"].astype(np.float64)) + EPS).reshape(H, dv)
    vc = np.clip(v, -CAP / beta, CAP / beta)
    M = (beta * vc).max(axis=1, keepdims=True)                  # (B,1,H,dv)
    X = np.exp(beta * vc - M)
    vals = np.concatenate([vc, X], axis=-1)                     # (B,S,H,2dv)
    r = np.empty((B, T, H, 2 * dv))
    mask = np.triu(np.ones((T, S), bool), 1) if causal else None
    for b in range(B):
        for h in range(H):
            s = q[b, :, h, :] @ k[b, :, h, :].T / math.sqrt(dk)
            if causal:
                s[mask] = -np.inf
            s -= s.max(axis=1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(axis=1, keepdims=True)
            r[b, :, h, :] = s @ vals[b, :, h, :]
    mu, Z = r[..., :dv], r[..., dv:]
    with np.errstate(divide="ignore"):
        logZ = np.where(Z > 0, np.log(np.where(Z > 0, Z, 1.0)), -np.inf)
    F = (np.logaddexp(logZ, math.log(TINY) - M) + M) / beta
    lam = 1.0 / (1.0 + np.exp(-x["lam"].astype(np.float64)))
    gp = sp(x["gate"].astype(np.float64)) + EPS
    g = gp / np.maximum(np.linalg.norm(gp, axis=-1, keepdims=True), 1e-5) * math.sqrt(dv)
    return g * ((1 - lam) * mu + lam * F)


def load_output(path):
    """An output .npy as float64: fem-run writes bfloat16 as its raw bit
    patterns ('<u2'), the upper half of a float32."""
    import numpy as np
    out = np.load(path)
    if out.dtype == np.uint16:
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out.astype(np.float64)


def rel_err(out, d):
    import numpy as np
    ref = np.load(os.path.join(d, "ref.npy"))
    out = np.asarray(out, dtype=np.float64)
    if out.shape != ref.shape:
        return {"err": None, "why": f"output shape {out.shape}, expected {ref.shape}"}
    if not np.isfinite(out).all():
        return {"err": None, "why": f"{int((~np.isfinite(out)).sum())} non-finite outputs"}
    return {"err": float(np.abs(out - ref).max() / np.abs(ref).max())}


# --------------------------------------------------------------------------
# PyTorch 2.x: the reference formulation (one read of [V~ | X], width 2*dv),
# the same with two flash-eligible SDPA calls of width dk, and eager
# matmul + softmax + matmul. Only the attention part runs in `dt`; the FEM
# pre- and post-processing stays float32, as in the authors' code.

def torch_row(kind, dt_name, x, causal, reps):
    import torch
    import torch.nn.functional as F
    if int(torch.__version__.split(".")[0]) < 2:
        raise TooOld(f"PyTorch {torch.__version__} is older than 2.x "
                     f"(bench/requirements.txt pins the version the bench uses)")
    torch.set_num_threads(ncores())
    dt = getattr(torch, dt_name)
    q, k, v, lam_l, gate_l = (torch.from_numpy(x[n]) for n in ("q", "k", "v", "lam", "gate"))
    B, T, H, dk = q.shape
    dv = v.shape[3]
    beta = (F.softplus(torch.from_numpy(x["beta_raw"])) + EPS).view(1, 1, H, dv)

    def attend(qt, kt, vt):
        if kind == "eager":
            s = torch.matmul(qt, kt.transpose(-1, -2)) / math.sqrt(dk)
            if causal:
                s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
            return torch.matmul(torch.softmax(s, dim=-1), vt)
        return F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)

    def read():
        lim = CAP / beta
        vc = torch.maximum(torch.minimum(v, lim), -lim)
        bv = beta * vc
        M = bv.amax(dim=1, keepdim=True)
        vin = torch.cat([vc, torch.exp(bv - M)], dim=-1)
        qt, kt = q.transpose(1, 2).to(dt), k.transpose(1, 2).to(dt)
        if kind == "split":
            o = torch.cat([attend(qt, kt, u.transpose(1, 2).to(dt))
                           for u in (vin[..., :dv], vin[..., dv:])], dim=-1)
        else:
            o = attend(qt, kt, vin.transpose(1, 2).to(dt))
        o = o.transpose(1, 2).float()
        mu, z = o[..., :dv], o[..., dv:]
        fm = (torch.logaddexp(torch.log(z), math.log(TINY) - M) + M) / beta
        lam = torch.sigmoid(lam_l)
        g = F.normalize(F.softplus(gate_l) + EPS, dim=-1, eps=1e-5) * math.sqrt(dv)
        return g * ((1 - lam) * mu + lam * fm)

    info = {"threads": torch.get_num_threads(), "version": torch.__version__}
    if kind != "eager":
        # Which SDPA backend runs: on the CPU the dispatcher takes flash
        # whenever flash accepts the call, so ask flash alone.
        from torch.nn.attention import SDPBackend, sdpa_kernel
        width = dv if kind == "split" else 2 * dv
        qs = torch.zeros(1, H, 16, dk, dtype=dt)
        vs = torch.zeros(1, H, 16, width, dtype=dt)
        try:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    F.scaled_dot_product_attention(qs, qs, vs, is_causal=causal)
            info["backend"] = "flash"
        except RuntimeError:
            info["backend"] = "math (flash needs value width = key width)" \
                if width != dk else "math (flash refused)"
    with torch.no_grad():
        med, mn = timed(read, reps)
        out = read().numpy()
    return med, mn, out, info


# --------------------------------------------------------------------------
# JAX: jit of the reference formulation, and jax.nn.dot_product_attention
# (over [V~ | X] if it accepts a value width of 2*dv, else two calls).

def jax_read(kind, causal, H, dk, dv, T):
    """The FEM read (design/semantics.md, softmax prior) as a JAX function of
    (q, k, v, beta_raw, lam, gate); kind "ref" is the reference formulation
    (scores, mask, softmax, one contraction with [V~ | X]), which the IREE
    row compiles too."""
    import jax
    import jax.numpy as jnp

    def read(q, k, v, beta_raw, lam_l, gate_l):
        b4 = (jax.nn.softplus(beta_raw) + EPS).reshape(1, 1, H, dv)
        lim = CAP / b4
        vc = jnp.clip(v, -lim, lim)
        bv = b4 * vc
        M = bv.max(axis=1, keepdims=True)
        vin = jnp.concatenate([vc, jnp.exp(bv - M)], axis=-1)
        if kind == "ref":
            s = jnp.einsum("bthd,bshd->bhts", q, k) / math.sqrt(dk)
            if causal:
                s = jnp.where(jnp.tril(jnp.ones((T, T), bool)), s, -jnp.inf)
            o = jnp.einsum("bhts,bshe->bthe", jax.nn.softmax(s, axis=-1), vin)
        elif kind == "dpa":
            o = jax.nn.dot_product_attention(q, k, vin, is_causal=causal)
        else:  # dpa2
            o = jnp.concatenate([jax.nn.dot_product_attention(q, k, u, is_causal=causal)
                                 for u in (vin[..., :dv], vin[..., dv:])], axis=-1)
        mu, z = o[..., :dv], o[..., dv:]
        fm = (jnp.logaddexp(jnp.log(z), math.log(TINY) - M) + M) / b4
        lam = jax.nn.sigmoid(lam_l)
        sp = jax.nn.softplus(gate_l) + EPS
        g = sp / jnp.maximum(jnp.linalg.norm(sp, axis=-1, keepdims=True), 1e-5) * math.sqrt(dv)
        return g * ((1 - lam) * mu + lam * fm)
    return read


def read_dims(x):
    B, T, H, dk = x["q"].shape
    return H, dk, x["v"].shape[3], T


def jax_row(kind, x, causal, reps):
    import jax
    import jax.numpy as jnp
    import numpy as np
    f = jax.jit(jax_read(kind, causal, *read_dims(x)))
    args = tuple(jnp.asarray(x[n]) for n in INPUTS)
    med, mn = timed(lambda: f(*args).block_until_ready(), reps)
    return med, mn, np.asarray(f(*args)), {"version": jax.__version__,
                                           "threads": "XLA default (all cores)"}


# --------------------------------------------------------------------------
# IREE: the JAX reference formulation exported to StableHLO, compiled by
# IREE for llvm-cpu (host CPU) and run by iree.runtime on all cores
# (bench/iree_peer.py). Compiled before the timing, as femc's library is.

def iree_row(kind, x, causal, reps):
    import iree_peer
    try:
        ver = iree_peer.versions()
    except ImportError as e:
        raise ImportError(f"IREE: {e}") from None
    args = [x[n] for n in INPUTS]
    vmfb, info = iree_peer.compile_jax(jax_read(kind, causal, *read_dims(x)), args)
    run = iree_peer.Runner(vmfb)
    dev = run.upload(args)
    med, mn = timed(lambda: run(*dev), reps)
    info.update({"version": ver["compiler"], "threads": run.threads})
    return med, mn, run(*dev).to_host(), info


ROWS = {
    "torch_vx_f32": lambda x, c, r: torch_row("vx", "float32", x, c, r),
    "torch_split_f32": lambda x, c, r: torch_row("split", "float32", x, c, r),
    "torch_eager_f32": lambda x, c, r: torch_row("eager", "float32", x, c, r),
    "jax_ref_f32": lambda x, c, r: jax_row("ref", x, c, r),
    "jax_dpa_f32": lambda x, c, r: jax_row("dpa", x, c, r),
    "jax_dpa2_f32": lambda x, c, r: jax_row("dpa2", x, c, r),
    "iree_ref_f32": lambda x, c, r: iree_row("ref", x, c, r),
    "torch_vx_bf16": lambda x, c, r: torch_row("vx", "bfloat16", x, c, r),
    "torch_split_bf16": lambda x, c, r: torch_row("split", "bfloat16", x, c, r),
}


# --------------------------------------------------------------------------
# Matmul rates and which kernels run.

def openblas_info():
    """numpy's OpenBLAS: version and the core kernel it selected."""
    import numpy as np
    a = np.ones((64, 64), np.float32)
    a @ a
    try:
        import threadpoolctl
        for i in threadpoolctl.threadpool_info():
            if i.get("user_api") == "blas":
                return {"lib": os.path.basename(i["filepath"]), "api": i["internal_api"],
                        "version": i.get("version"), "core": i.get("architecture"),
                        "threads": i.get("num_threads")}
    except ImportError:
        pass
    import ctypes
    for line in open("/proc/self/maps"):
        path = line.split()[-1]
        if "blas" in path or "lapack" in path:
            try:
                lib = ctypes.CDLL(path)
                lib.openblas_get_corename.restype = ctypes.c_char_p
                lib.openblas_get_config.restype = ctypes.c_char_p
                cfg = lib.openblas_get_config().decode()
                return {"lib": path, "api": "openblas",
                        "version": cfg.split()[1] if cfg.startswith("OpenBLAS") else cfg,
                        "core": lib.openblas_get_corename().decode(),
                        "threads": lib.openblas_get_num_threads()}
            except (OSError, AttributeError):
                continue
    return {"lib": "unknown", "core": "unknown"}


def sgemm(reps, numpy_only=False):
    res = {}
    flop = 2.0 * N_MM ** 3
    try:
        import numpy as np
        a = np.random.default_rng(0).standard_normal((N_MM, N_MM), dtype=np.float32)
        b = np.random.default_rng(1).standard_normal((N_MM, N_MM), dtype=np.float32)
        med, _ = timed(lambda: a @ b, reps)
        res["numpy_f32"] = {"gflops": flop / med / 1e9, "blas": openblas_info(),
                            "numpy": np.__version__}
    except Exception as e:  # report, never stop the bench
        res["numpy_f32"] = {"error": f"{type(e).__name__}: {e}"}
    if numpy_only:
        return res
    try:
        import torch
        torch.set_num_threads(ncores())
        ta = torch.randn(N_MM, N_MM)
        tb = torch.randn(N_MM, N_MM)
        med, _ = timed(lambda: ta @ tb, reps)
        res["torch_f32"] = {"gflops": flop / med / 1e9, "threads": torch.get_num_threads()}
        n = bf16_matmul_size(torch)
        ha, hb = ta[:n, :n].bfloat16(), tb[:n, :n].bfloat16()
        med, _ = timed(lambda: ha @ hb, reps)
        res["torch_bf16"] = {"gflops": 2.0 * n ** 3 / med / 1e9, "n": n,
                             "threads": torch.get_num_threads()}
    except Exception as e:
        res.setdefault("torch_f32", {"error": f"{type(e).__name__}: {e}"})
        res["torch_bf16"] = {"error": f"{type(e).__name__}: {e}"}
    try:
        import jax
        import jax.numpy as jnp
        ja = jax.random.normal(jax.random.PRNGKey(0), (N_MM, N_MM), jnp.float32)
        jb = jax.random.normal(jax.random.PRNGKey(1), (N_MM, N_MM), jnp.float32)
        f = jax.jit(lambda a, b: a @ b)
        med, _ = timed(lambda: f(ja, jb).block_until_ready(), reps)
        res["jax_f32"] = {"gflops": flop / med / 1e9, "dot": xla_dot_impl(f, ja, jb)}
    except Exception as e:
        res["jax_f32"] = {"error": f"{type(e).__name__}: {e}"}
    return res


def bf16_matmul_size(torch):
    """N_MM, or BF16_SMALL where torch's bf16 matmul runs below BF16_SLOW
    GFLOP/s at BF16_SMALL^3 (CPUs without AVX512-BF16 or AMX, e.g. Zen 2:
    1.4 GFLOP/s, a scalar loop; 12 s a call at 2048^3)."""
    a = torch.randn(BF16_SMALL, BF16_SMALL).bfloat16()
    med, _ = timed(lambda: a @ a, 1)
    return BF16_SMALL if 2.0 * BF16_SMALL ** 3 / med / 1e9 < BF16_SLOW else N_MM


def xla_dot_impl(f, a, b):
    """What XLA:CPU compiled the f32 dot into (a library fusion or its own loop)."""
    import re
    txt = f.lower(a, b).compile().as_text()
    m = re.search(r'"kind":"(__[a-z_]+)"', txt) or re.search(r'custom_call_target="([^"]+)"', txt)
    if m:
        return {"__ynn_fusion": "YNNPACK fusion", "__xnn_fusion": "XNNPACK fusion",
                "__onednn_fusion": "oneDNN fusion"}.get(m.group(1), m.group(1))
    return "XLA:CPU dot emitter (Eigen)" if " dot(" in txt else "unknown"


def torch_kernels():
    """Run with MKL_VERBOSE=1 ONEDNN_VERBOSE=1: which library and ISA path run
    torch's f32 matmul, bf16 matmul and flash SDPA. The caller parses the
    libraries' verbose lines; this prints the summary torch itself knows."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(ncores())
    print("@@ f32 matmul", flush=True)
    a = torch.randn(256, 256)
    a @ a
    print("@@ bf16 matmul", flush=True)
    h = a.bfloat16()
    h @ h
    for dt in (torch.float32, torch.bfloat16):
        print(f"@@ {dt} flash sdpa", flush=True)
        qs = torch.randn(1, 8, 256, 64, dtype=dt)
        F.scaled_dot_product_attention(qs, qs, qs, is_causal=True)
    print("@@ end", flush=True)
    cfg = torch.__config__.show()
    keep = [ln.strip(" -") for ln in cfg.splitlines()
            if any(w in ln for w in ("Math Kernel", "MKL-DNN", "CPU capability", "OpenMP"))]
    blas = [kv for kv in cfg.replace(",", "\n").split() if kv.startswith(("BLAS_INFO", "USE_MKLDNN="))]
    return {"version": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "config": keep, "blas": blas}


def main(argv):
    what = argv[1]
    if what == "sgemm":
        return sgemm(int(argv[2]))
    if what == "sgemm_numpy_only":
        return sgemm(int(argv[2]), numpy_only=True)["numpy_f32"]
    if what == "torch_kernels":
        return torch_kernels()
    if what == "ref":
        import numpy as np
        t0 = time.perf_counter()
        ref = reference(load(argv[2]), argv[3] == "1")
        np.save(os.path.join(argv[2], "ref.npy"), ref)
        return {"seconds": time.perf_counter() - t0}
    if what == "err":
        return rel_err(load_output(argv[3]), argv[2])
    if what == "row":
        name, d, causal, reps = argv[2], argv[3], argv[4] == "1", int(argv[5])
        try:
            med, mn, out, info = ROWS[name](load(d), causal, reps)
        except ImportError as e:
            return {"error": f"not installed ({e})"}
        except TooOld as e:
            return {"error": str(e)}
        except Exception as e:  # the peer refused the call: say why, in one line
            msg = (str(e).strip().splitlines() or [""])[0]
            return {"error": f"{type(e).__name__}: {msg}"}
        res = {"median_ms": med * 1e3, "min_ms": mn * 1e3, "info": info}
        res.update(rel_err(out, d))
        return res
    raise SystemExit(f"peers_child.py: unknown measurement '{what}'")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv)), flush=True)

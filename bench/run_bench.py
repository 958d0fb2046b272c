#!/usr/bin/python3
"""femc benchmark: the fused femc kernel, the same FEM read computed the
reference's way in PyTorch eager, and this machine's SGEMM rate measured with
OpenBLAS, side by side in one run.

    bench/run.sh                     # installs what it needs, builds, runs
    bench/run_bench.py --T 512,1024 --reps 5 --no-memory

FLOPs per launch = (2*T^2*dk + 4*T^2*dv) * B * H, halved when causal (the
score contraction plus the [V | X] contraction of width 2*dv).
"""
import argparse
import os
import re
import subprocess
import sys
import time

B, H, DK, DV = 1, 8, 64, 64


def flops(T, causal):
    f = (2.0 * T * T * DK + 4.0 * T * T * DV) * B * H
    return f / 2 if causal else f


def blas_env():
    # OpenBLAS' core-type overrides slow current builds down (docs/env); the
    # measurement of the machine's peak runs without them.
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    return env


SGEMM_SNIPPET = r"""
import time, numpy as np
n = 2048
a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
a @ b
best = 1e30
for _ in range(5):
    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
blas = "unknown"
for line in open("/proc/self/maps"):
    path = line.split()[-1]
    if "openblas" in path or "libblas" in path:
        blas = path; break
print(f"{2.0 * n ** 3 / best / 1e9:.1f} {blas}")
"""

TORCH_SNIPPET = r"""
import os, sys, time, math, torch
torch.set_num_threads(os.cpu_count())
T, causal, reps = int(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
B, H, DK, DV = 1, 8, 64, 64
g = torch.Generator().manual_seed(0)
q = torch.randn(B, T, H, DK, generator=g); k = torch.randn(B, T, H, DK, generator=g)
v = torch.randn(B, T, H, DV, generator=g); beta_raw = torch.rand(H * DV, generator=g) * 3 - 1
lam = torch.randn(B, T, H, DV, generator=g); gate = torch.randn(B, T, H, DV, generator=g)
eps, cap = 1e-6, 40.0
def fem():
    # The reference formulation: concatenate [V~ | X] and read once.
    beta = (torch.nn.functional.softplus(beta_raw) + eps).view(1, 1, H, DV)
    vc = torch.maximum(torch.minimum(v, cap / beta), -cap / beta)
    M = (beta * vc).amax(dim=1, keepdim=True)
    X = torch.exp(beta * vc - M)
    vals = torch.cat([vc, X], dim=-1).transpose(1, 2)            # B,H,T,2dv
    s = torch.matmul(q.transpose(1, 2), k.transpose(1, 2).transpose(-1, -2)) / math.sqrt(DK)
    if causal:
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    r = torch.matmul(torch.softmax(s, dim=-1), vals).transpose(1, 2)   # B,T,H,2dv
    mu, Z = r[..., :DV], r[..., DV:]
    logZ = torch.where(Z > 0, torch.log(Z), torch.full_like(Z, float("-inf")))
    F = (torch.logaddexp(logZ, math.log(2.0 ** -126) - M) + M) / beta
    lmb = torch.sigmoid(lam)
    gp = torch.nn.functional.softplus(gate) + eps
    gn = gp / gp.norm(dim=-1, keepdim=True).clamp_min(1e-5) * math.sqrt(DV)
    return gn * ((1 - lmb) * mu + lmb * F)
with torch.no_grad():
    fem()
    times = []
    for _ in range(reps):
        t = time.perf_counter(); fem(); times.append(time.perf_counter() - t)
times.sort()
print(f"{times[len(times) // 2] * 1e3:.3f} {torch.__version__} {torch.get_num_threads()}")
"""


def run(cmd, env=None):
    return subprocess.run(cmd, check=True, capture_output=True, text=True,
                          env=env).stdout


def femc_time(fem_run, lib, kernel, T, reps):
    out = run([fem_run, lib, "--kernel", kernel, "--dim", f"B={B}",
               "--dim", f"T={T}", "--bench", str(reps)])
    m = re.search(r"median ([0-9.]+) ms", out)
    return float(m.group(1))


def peak_rss_mib(cmd):
    """Peak resident set of one run of cmd, in MiB (measured by a fresh
    Python process whose only child is cmd)."""
    probe = ("import resource, subprocess, sys; "
             "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    return int(run([sys.executable, "-c", probe] + cmd)) / 1024.0


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(root, "build"))
    p.add_argument("--T", default="512,1024,2048,4096,8192")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the T = 32768 memory measurement")
    a = p.parse_args()
    femc = os.path.join(a.build, "bin", "femc")
    fem_run = os.path.join(a.build, "bin", "fem-run")
    out_dir = os.path.join(a.build, "bench")
    env = dict(os.environ, FEMC_INCLUDE_DIR=os.path.join(root, "runtime", "include"))
    subprocess.run([femc, os.path.join(root, "bench", "kernels.mlir"), "-o", out_dir],
                   check=True, capture_output=True, env=env)
    lib = os.path.join(out_dir, "kernels.so")

    sgemm, blas = run([sys.executable, "-c", SGEMM_SNIPPET], env=blas_env()).split()
    sgemm = float(sgemm)
    print(f"machine: {os.cpu_count()} cores; SGEMM (numpy float32 2048^3, {blas}): "
          f"{sgemm:.1f} GFLOP/s")
    torch_info = None
    header = (f"{'T':>6} {'causal':>6} | {'femc ms':>9} {'GFLOP/s':>8} {'% SGEMM':>8} | "
              f"{'torch ms':>9} {'GFLOP/s':>8} {'speedup':>8}")
    rows = []
    for causal in (True, False):
        for T in [int(t) for t in a.T.split(",")]:
            ms = femc_time(fem_run, lib, "fem_causal" if causal else "fem_full", T, a.reps)
            gf = flops(T, causal) / ms / 1e6
            tms = None
            if not a.no_torch:
                try:
                    o = run([sys.executable, "-c", TORCH_SNIPPET, str(T), "1" if causal else "0",
                             str(max(1, min(a.reps, 3)))], env=blas_env()).split()
                    tms, torch_info = float(o[0]), (o[1], o[2])
                except (subprocess.CalledProcessError, ValueError) as e:
                    print(f"torch reference failed at T={T}: {e}", file=sys.stderr)
            rows.append((T, causal, ms, gf, tms))
            tcol = (f"{tms:9.2f} {flops(T, causal) / tms / 1e6:8.1f} {tms / ms:7.1f}x"
                    if tms else f"{'-':>9} {'-':>8} {'-':>8}")
            if len(rows) == 1:
                print(header)
                print("-" * len(header))
            print(f"{T:6d} {'yes' if causal else 'no':>6} | {ms:9.2f} {gf:8.1f} "
                  f"{100 * gf / sgemm:7.1f}% | {tcol}", flush=True)
    if torch_info:
        print(f"torch {torch_info[0]} eager, {torch_info[1]} threads, BLAS: OpenBLAS "
              f"(libopenblas0-pthread), not Debian's reference netlib BLAS")
    target = [r for r in rows if r[0] == 4096 and r[1]]
    if target:
        pct = 100 * target[0][3] / sgemm
        print(f"target: femc >= 50% of SGEMM at T=4096 causal: {pct:.1f}% "
              f"({'met' if pct >= 50 else 'NOT met'})")

    if not a.no_memory:
        T = 32768
        io = 6 * B * T * H * DV * 4 / 2 ** 20  # q, k, v, lam, gate, out
        base = peak_rss_mib([fem_run, lib, "--kernel", "fem_causal", "--dim", "B=1",
                             "--dim", "T=64"])
        print(f"memory at T={T} causal (one launch, ~{flops(T, True) / (max(r[3] for r in rows) * 1e9):.0f} s) ...",
              flush=True)
        peak = peak_rss_mib([fem_run, lib, "--kernel", "fem_causal", "--dim", "B=1",
                             "--dim", f"T={T}"])
        extra = peak - base - io
        print(f"memory: peak RSS {peak:.0f} MiB = process at T=64 {base:.0f} MiB + inputs and "
              f"outputs {io:.0f} MiB + {extra:.1f} MiB extra (target <= 64 MiB: "
              f"{'met' if extra <= 64 else 'NOT met'})")


if __name__ == "__main__":
    main()

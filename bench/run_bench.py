#!/usr/bin/python3
"""femc benchmark: the fused femc kernel against the strongest peers this
machine has, side by side in one table from one run, each peer checked
against a float64 reference on femc's own inputs, with the same run's matmul
rates (and which BLAS kernels produced them) as the yardstick.

    bench/run.sh                           # venv + build + run (docs/benchmarks.md)
    bench/run_bench.py --T 1024,4096 --reps 5 --modes causal,full --no-memory

Rows (B=1, H=8, dk=dv=64): femc f32 and femc bf16 (fem-run --bench; bf16 on
AMX tiles where the CPU has AMX-BF16, on the f32 row's inputs rounded to
bf16); where the CPU has AVX512-BF16, femc bf16 on vdpbf16ps dot products
(--target=x86-64-v4+bf16dot, an opt-in read); PyTorch 2.x SDPA over
[V~ | X] (value width 2*dv, one call), two flash SDPA calls of width dk, eager
matmul+softmax+matmul; JAX jit of the reference formulation and
jax.nn.dot_product_attention; IREE (llvm-cpu, host CPU) compiling the JAX
reference formulation's StableHLO (bench/iree_peer.py); PyTorch bf16 SDPA
over [V~ | X] and two flash calls. The peers run with bench/.venv/bin/python
(bench/requirements.txt); a peer that is missing or refuses the shapes is
printed as unavailable, with the reason.

FLOPs per launch (every row, the same nominal count) =
(2*T^2*dk + 4*T^2*dv) * B * H, halved when causal: the score contraction
plus the [V~ | X] contraction of width 2*dv.
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys

B, H, DK, DV = 1, 8, 64, 64
N_MM = 2048
TOL_F32 = 1e-4   # docs/semantics.md: float32 against float64, relative to max|ref|
# bf16 keeps 8 significant bits (unit roundoff 2^-9 = 2e-3): scores from bf16
# q and k err by about 2*2^-9*|score|, a few percent of a softmax weight at the
# largest scores, and the error grows with T (0.3 % at T = 1024, 0.8 % at
# T = 4096 full on the bench's inputs). Wrong computations err far more: at
# T = 1024 causal, no mask gives 95 %, the scale 1/sqrt(2*dv) 16 %.
TOL_BF16 = 3e-2

# (child name, label, dtype); the label's {backend} is filled from the run.
IREE_LABEL = "IREE llvm-cpu of the JAX reference (StableHLO)"
PEERS = [
    ("torch_vx_f32", "PyTorch SDPA over [V|X] ({backend})", "f32"),
    ("torch_split_f32", "PyTorch 2 SDPA calls, V and X ({backend})", "f32"),
    ("torch_eager_f32", "PyTorch eager matmul+softmax+matmul", "f32"),
    ("jax_ref_f32", "JAX jit of the reference formulation", "f32"),
    ("jax_dpa_f32", "JAX dot_product_attention over [V|X]", "f32"),
    ("jax_dpa2_f32", "JAX 2 dot_product_attention calls", "f32"),
    ("iree_ref_f32", IREE_LABEL, "f32"),
    ("torch_vx_bf16", "PyTorch SDPA over [V|X] ({backend})", "bf16"),
    ("torch_split_bf16", "PyTorch 2 SDPA calls, V and X ({backend})", "bf16"),
]

# Intel family 6 / AMD family numbers of common x86 server parts, for the
# machine line only (the kernel may report a generic model name under a VM).
INTEL_MODELS = {85: "Skylake-SP/Cascade Lake", 106: "Ice Lake-SP", 143: "Sapphire Rapids",
                207: "Emerald Rapids", 173: "Granite Rapids", 175: "Sierra Forest",
                151: "Alder Lake", 183: "Raptor Lake", 158: "Coffee Lake"}
AMD_FAMILIES = {23: "Zen/Zen 2", 25: "Zen 3/Zen 4", 26: "Zen 5"}
ISA_FLAGS = [("avx2", "AVX2"), ("fma", "FMA"), ("avx512f", "AVX-512F"),
             ("avx512_bf16", "AVX512-BF16"), ("avx512_fp16", "AVX512-FP16"),
             ("avx_vnni", "AVX-VNNI"), ("avx512_vnni", "AVX512-VNNI"),
             ("amx_tile", "AMX-TILE"), ("amx_bf16", "AMX-BF16"), ("amx_int8", "AMX-INT8")]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "XLA_FLAGS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# OpenBLAS cores without AVX2 kernels: on an AVX2 or AVX-512 CPU they mean the
# library did not recognise the CPU (Debian's 0.3.21 on Emerald Rapids: Prescott).
PRE_AVX2_CORES = {"katmai", "coppermine", "northwood", "prescott", "banias", "core2", "penryn",
                  "dunnington", "nehalem", "atom", "sandybridge", "opteron", "barcelona",
                  "bobcat", "bulldozer", "piledriver", "nano"}


def core_note(core, isa):
    if str(core).lower() in PRE_AVX2_CORES and "AVX2" in isa:
        return " <- a pre-AVX2 kernel on this AVX2 CPU: OpenBLAS did not recognise the CPU"
    return ""


def flops(T, causal):
    f = (2.0 * T * T * DK + 4.0 * T * T * DV) * B * H
    return f / 2 if causal else f


def peer_env():
    # OpenBLAS' core-type overrides (set on some hosts for Debian's old
    # OpenBLAS) slow a current numpy down: the peers run without them.
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    return env


def child(python, args, env=None, timeout=900):
    """Run bench/peers_child.py; its last stdout line is JSON. Returns
    (dict, stdout). A failure becomes {"error": reason}."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers_child.py")
    if not python or not os.path.exists(python):
        return {"error": f"no Python at {python} (bench/run.sh creates bench/.venv)"}, ""
    try:
        p = subprocess.run([python, script] + [str(a) for a in args], capture_output=True,
                           text=True, env=env or peer_env(), timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}, ""
    lines = p.stdout.strip().splitlines()
    if p.returncode == 0 and lines:
        try:
            return json.loads(lines[-1]), p.stdout
        except ValueError:
            pass
    err = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    why = err[-1].strip() if err else f"exit status {p.returncode}"
    if p.returncode < 0:
        why = f"killed by signal {-p.returncode}" + (f" ({why})" if err else "")
    return {"error": why}, p.stdout


def run(cmd, env=None):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout


# --------------------------------------------------------------------------
# The machine.

def machine():
    info = {}
    try:
        for line in open("/proc/cpuinfo"):
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if k in ("model name", "cpu family", "model", "flags", "vendor_id") and k not in info:
                info[k] = v
    except OSError:
        pass
    name = info.get("model name", "unknown CPU")
    fam, mod = int(info.get("cpu family", 0) or 0), int(info.get("model", 0) or 0)
    vendor = info.get("vendor_id", "")
    kind = (INTEL_MODELS.get(mod) if vendor == "GenuineIntel" and fam == 6
            else AMD_FAMILIES.get(fam) if vendor == "AuthenticAMD" else None)
    flags = set(info.get("flags", "").split())
    isa = [label for flag, label in ISA_FLAGS if flag in flags]
    used = len(os.sched_getaffinity(0))
    hv = " (virtual machine)" if "hypervisor" in flags else ""
    return (f"{name}, family {fam} model {mod}" + (f" ({kind})" if kind else "") + hv,
            used, os.cpu_count(), isa)


def busy_fraction(seconds=1.0):
    """Share of all CPUs busy (anyone's) over a short window: OpenMP-threaded
    peers slow down many times when another process competes for a core."""
    import time

    def snap():
        f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return sum(f), f[3] + f[4]  # total, idle + iowait
    try:
        t0, i0 = snap()
        time.sleep(seconds)
        t1, i1 = snap()
        return 1.0 - (i1 - i0) / max(t1 - t0, 1)
    except (OSError, ValueError, IndexError):
        return None


def busy_line(when):
    b = busy_fraction()
    if b is None:
        return f"load {when}: unknown"
    warn = ("" if b < 0.10 else "  WARNING: other processes use the CPUs; the peers' "
            "OpenMP threads slow down many times under competition: rerun on a quiet machine")
    return f"load {when}: {100 * b:.0f}% of the CPUs busy over 1 s{warn}"


class OthersMeter:
    """CPU time that processes other than this bench and its children used
    while the table ran, as a share of all CPUs (from /proc/stat)."""

    def __init__(self):
        import time
        self.t = time.monotonic()
        self.stat, self.own = self.snap(), self.own_cpu()

    @staticmethod
    def snap():
        try:
            f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
            return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")  # busy seconds, all CPUs
        except (OSError, ValueError, IndexError):
            return None

    @staticmethod
    def own_cpu():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def line(self):
        import time
        wall = time.monotonic() - self.t
        now = self.snap()
        if now is None or self.stat is None or wall <= 0:
            return "other processes during the rows: unknown"
        others = max(0.0, (now - self.stat) - (self.own_cpu() - self.own))
        share = others / (wall * (os.cpu_count() or 1))
        warn = ("" if share < 0.05 else "  WARNING: results disturbed; rerun on a quiet machine")
        return (f"other processes during the rows: {100 * share:.1f}% of the CPUs over "
                f"{wall:.0f} s{warn}")


def git_rev(root):
    try:
        rev = run(["git", "-C", root, "rev-parse", "--short", "HEAD"]).strip()
        dirty = run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"]).strip()
        return rev + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def torch_kernel_lines(python):
    """Which library/ISA path runs torch's matmuls and flash SDPA, from the
    libraries' own verbose output (MKL_VERBOSE, ONEDNN_VERBOSE)."""
    env = dict(peer_env(), MKL_VERBOSE="1", ONEDNN_VERBOSE="1")
    res, out = child(python, ["torch_kernels"], env=env, timeout=300)
    if "error" in res:
        return None, res["error"]
    mkl_path = None
    isa = None
    sections, cur = {}, None
    for ln in out.splitlines():
        if ln.startswith("@@ "):
            cur = ln[3:].strip()
            sections[cur] = []
            continue
        if ln.startswith("MKL_VERBOSE") and ("oneMKL" in ln or "Intel(R) MKL" in ln):
            # "oneMKL 2024.0 Update 2 Product build ... Intel(R) Advanced Vector
            # Extensions 512 (Intel(R) AVX-512) ... (Intel(R) AMX) with INT8 and BF16"
            ver = re.search(r"(oneMKL|Intel\(R\) MKL) ([0-9.]+( Update \d+)?)", ln)
            isas = re.findall(r"\(Intel\(R\) ([A-Za-z0-9-]+)\)", ln)
            mkl_path = (f"oneMKL {ver.group(2) if ver else '?'}, CPU dispatch "
                        f"{' + '.join(isas) or ln[12:]}")
            continue
        if ln.startswith("onednn_verbose") and ",isa:" in ln:
            isa = ln.split(",isa:", 1)[1].strip()
        if cur is None:
            continue
        if ln.startswith("MKL_VERBOSE ") and "(" in ln:
            sections[cur].append("MKL " + ln.split()[1].split("(")[0])
        elif ln.startswith("onednn_verbose") and ",exec," in ln:
            f = ln.split(",")
            if f[2] == "primitive":
                sections[cur].append(f"oneDNN {f[6]}")
            elif f[2] == "ukernel":
                sections[cur].append(f"oneDNN {f[5]} ukernel")
    summary = {k: ", ".join(sorted(set(v))) or "ATen's own loops (no MKL/oneDNN call seen)"
               for k, v in sections.items() if k != "end"}
    return {"torch": res, "mkl": mkl_path, "onednn_isa": isa, "paths": summary}, None


# --------------------------------------------------------------------------

INPUTS = ("q", "k", "v", "beta_raw", "lam", "gate")


def femc_bench(fem_run, lib, kernel, T, reps, d, dtype="f32"):
    """Times one femc kernel with fem-run. The f32 kernel generates the
    inputs (seed 0) and saves them in d for every other row; the bf16 kernel
    reads those files (fem-run rounds them to bf16, nearest even, as the
    PyTorch bf16 rows do) and writes its output as d/femc_bf16.npy."""
    os.makedirs(d, exist_ok=True)
    if dtype == "f32":
        io = ["--seed", "0", "--save-inputs", d, "--output", f"out={d}/femc.npy"]
    else:
        io = [a for n in INPUTS for a in ("--input", f"{n}={d}/{n}.npy")]
        io += ["--output", f"out={d}/femc_{dtype}.npy"]
    out = run([fem_run, lib, "--kernel", kernel, "--dim", f"B={B}", "--dim", f"T={T}"]
              + io + ["--bench", str(reps)])
    m = re.search(r"on (\d+) threads: median ([0-9.]+) ms, min ([0-9.]+) ms", out)
    if not m:
        raise RuntimeError(f"fem-run printed no timing:\n{out}")
    return float(m.group(2)), float(m.group(3)), int(m.group(1))


def peak_rss_mib(cmd):
    """Peak resident set of one run of cmd, in MiB (measured by a fresh
    Python process whose only child is cmd)."""
    probe = ("import resource, subprocess, sys; "
             "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    return int(run([sys.executable, "-c", probe] + cmd)) / 1024.0


def fmt_err(res, tol):
    e = res.get("err")
    if e is None:
        return f"{'-':>9}  WRONG ({res.get('why', 'no output')})", False
    ok = e <= tol
    return f"{e:9.1e}  {'ok' if ok else 'WRONG'} (tol {tol:.0e})", ok


def bf16_target_lines(rows, femc_bf16):
    """Issue 10's targets, from the measured rows: at T = 4096 causal femc
    bf16 >= 1.5x the best PyTorch bf16 row (checked rows only); on any host
    femc bf16 no slower than femc f32 (every T and mode measured)."""
    lines = []
    if (4096, True) in femc_bf16:
        bms = femc_bf16[(4096, True)][0]
        torch = [res["median_ms"] for T, mode, lab, dt, _, res, _, is_femc in rows
                 if T == 4096 and mode == "causal" and dt == "bf16" and not is_femc
                 and lab.startswith("PyTorch") and "median_ms" in res
                 and res.get("err") is not None and res["err"] <= TOL_BF16]
        if torch:
            x = min(torch) / bms
            lines.append(f"target: femc bf16 >= 1.5x the best PyTorch bf16 row at T=4096 causal: "
                         f"{x:.2f}x ({min(torch):.1f} ms / {bms:.1f} ms; "
                         f"{'met' if x >= 1.5 else 'NOT met'})")
    for (T, causal), (bms, fms) in sorted(femc_bf16.items()):
        lines.append(f"target: femc bf16 no slower than femc f32 at T={T} "
                     f"{'causal' if causal else 'full'}: {bms:.1f} ms vs {fms:.1f} ms "
                     f"({'met' if bms <= fms else 'NOT met'})")
    return lines


def cpu_flags():
    """The CPU's flags from /proc/cpuinfo (empty where there is none)."""
    try:
        return set(next((ln.split(":", 1)[1].split() for ln in open("/proc/cpuinfo")
                         if ln.startswith("flags")), []))
    except OSError:
        return set()


def bf16_path():
    """How this host's femc bf16 kernels compute (the bench compiles for
    --target=host): AMX tiles where the CPU has AMX-BF16."""
    return ", AMX tiles" if {"amx_tile", "amx_bf16"} <= cpu_flags() else ""


BF16_PATH = bf16_path()
# The opt-in bf16 read on AVX512-BF16 dot products (docs/benchmarks.md, "bf16
# dot products"): its own library, and its row only where the CPU runs it.
BF16_DOT_TARGET = "x86-64-v4+bf16dot"
BF16_DOT_LABEL = "femc (fem-run, {threads} threads, bf16 dot products)"


def bf16_yardstick(bf16_rate, sgemm, slow):
    """(rate, name) for the bf16 rows' % mm: torch's bf16 matmul rate, or the
    SGEMM one where that matmul has no fast path (slow: measured small, as on
    CPUs without AVX512-BF16 or AMX, where it is a scalar loop at ~1% of
    SGEMM while bf16 kernels that widen to f32 run at f32 FMA speed)."""
    return (sgemm, "SGEMM") if slow and sgemm else (bf16_rate, "bf16 matmul")


def iree_lines(rows):
    """How the IREE rows were compiled and run: one line per IREE version,
    command and worker count, with the compile time of each T and mask."""
    seen = {}
    for T, mode, lab, dt, _, res, _, _ in rows:
        info = res.get("info", {})
        if not lab.startswith("IREE") or "command" not in info:
            continue
        key = (info["version"], info["command"], info["threads"])
        seen.setdefault(key, []).append(f"T={T} {mode} {info['compile_s']:.1f} s")
    return [f"IREE {ver} (iree-base-compiler/-runtime): {cmd}; iree.runtime local-task, "
            f"{threads} workers; compile (not timed): {', '.join(times)}"
            for (ver, cmd, threads), times in seen.items()]


def bf16_dot_missing(flags):
    """Why the dot-product row cannot run on a CPU with these flags, or ""."""
    for flag, name in (("avx512f", "AVX-512F"), ("avx512bw", "AVX-512BW"),
                       ("avx512vl", "AVX-512VL"), ("avx512_bf16", "AVX512-BF16")):
        if flag not in flags:
            return f"this CPU has no {name} (the read needs {BF16_DOT_TARGET})"
    return ""


def bf16_dot_lines(femc_dot):
    """The dot-product read against femc f32 and the default bf16 read, per
    T and mode: information, not a target (the read is opt-in because it is
    slower than f32 FMAs on Intel cores, docs/benchmarks.md)."""
    return [f"bf16 dot products (--target={BF16_DOT_TARGET}) at T={T} "
            f"{'causal' if causal else 'full'}: {dms:.1f} ms, femc f32 {fms:.1f} ms "
            f"({dms / fms:.2f}x its time), femc bf16 {bms:.1f} ms"
            for (T, causal), (dms, fms, bms) in sorted(femc_dot.items())]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(root, "build"))
    p.add_argument("--T", default="1024,4096", help="sequence lengths (default 1024,4096)")
    p.add_argument("--modes", default="causal",
                   help="causal, full or causal,full (default causal)")
    p.add_argument("--reps", type=int, default=5, help="timed launches per row (median, min)")
    p.add_argument("--python", default=os.path.join(root, "bench", ".venv", "bin", "python"),
                   help="the peers' Python (default bench/.venv/bin/python)")
    p.add_argument("--peers", default=",".join(n for n, _, _ in PEERS),
                   help="peer rows to run (default all): " + ", ".join(n for n, _, _ in PEERS))
    p.add_argument("--no-peers", action="store_true", help="femc, its check and SGEMM only")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the T = 32768 memory measurement")
    a = p.parse_args()
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("causal", "full")]
    if bad or not modes:
        p.error(f"--modes: expected causal, full or causal,full, got '{a.modes}'")
    try:
        Ts = [int(t) for t in a.T.split(",")]
    except ValueError:
        p.error(f"--T: expected comma-separated integers, got '{a.T}'")
    if any(t < 1 for t in Ts) or a.reps < 1:
        p.error("--T and --reps must be positive")
    wanted = [n for n in a.peers.split(",") if n]
    unknown = [n for n in wanted if n not in [q[0] for q in PEERS]]
    if unknown:
        p.error(f"--peers: unknown row {', '.join(unknown)}")
    peers = [] if a.no_peers else [q for q in PEERS if q[0] in wanted]
    py = a.python if os.path.exists(a.python) else None

    femc = os.path.join(a.build, "bin", "femc")
    fem_run = os.path.join(a.build, "bin", "fem-run")
    out_dir = os.path.join(a.build, "bench")
    env = dict(os.environ, FEMC_INCLUDE_DIR=os.path.join(root, "runtime", "include"))
    subprocess.run([femc, os.path.join(root, "bench", "kernels.mlir"), "-o", out_dir],
                   check=True, capture_output=True, env=env)
    lib = os.path.join(out_dir, "kernels.so")
    dot_missing = bf16_dot_missing(cpu_flags())
    dot_lib = os.path.join(out_dir, "bf16dot", "kernels.so")
    if not dot_missing:
        subprocess.run([femc, os.path.join(root, "bench", "kernels.mlir"),
                        f"--target={BF16_DOT_TARGET}", "-o", os.path.dirname(dot_lib)],
                       check=True, capture_output=True, env=env)

    # ---- the machine and the threads
    cpu, used, online, isa = machine()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"date:    {now}; femc {git_rev(root)}; B={B} H={H} dk={DK} dv={DV}; "
          f"median of {a.reps} timed runs after one warm-up")
    print(f"machine: {cpu}")
    print(f"         {used} cores used of {online} online; ISA: {' '.join(isa) or 'none found'}")
    tv = ", ".join(f"{v}={os.environ[v]}" for v in THREAD_VARS if v in os.environ)
    print(f"threads: femc all {used} (fem-run default); torch set_num_threads({used}); IREE "
          f"local-task with {used} workers; numpy OpenBLAS and XLA default (all cores); "
          f"environment: {tv or 'no thread variables set'}"
          + ("; OPENBLAS_CORETYPE/L2_SIZE unset for the peers"
             if any(v in os.environ for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")) else ""))
    print(busy_line("before the run"))
    if py is None and peers:
        print(f"peers:   unavailable: no Python at {a.python} (bench/run.sh creates bench/.venv "
              f"from bench/requirements.txt)")

    # ---- the same run's matmul rates and which kernels produced them
    print(f"\nmatmul {N_MM}^3, same run (rate at the median of {max(a.reps, 5)}):")
    mm = child(py, ["sgemm", max(a.reps, 5)])[0] if py else {"error": "no peers' Python"}
    rates = {}
    if "error" in mm:
        print(f"  peers' matmuls unavailable: {mm['error']}")
        mm = {}
    nf = mm.get("numpy_f32", {})
    if "gflops" in nf:
        bl = nf["blas"]
        rates["numpy"] = nf["gflops"]
        print(f"  f32  numpy {nf['numpy']} / {bl.get('api', '?')} {bl.get('version', '?')}, "
              f"core {bl.get('core')}, {bl.get('threads')} threads "
              f"({os.path.basename(str(bl.get('lib')))}): {nf['gflops']:.1f} GFLOP/s"
              f"{core_note(bl.get('core'), isa)}")
    elif nf:
        print(f"  f32  numpy: unavailable: {nf['error']}")
    kern, kerr = torch_kernel_lines(py) if py else (None, "no peers' Python")
    tf = mm.get("torch_f32", {})
    if "gflops" in tf:
        rates["torch"] = tf["gflops"]
        path = (f"{kern['paths'].get('f32 matmul', '?')}; {kern['mkl']}" if kern
                else f"kernel unknown: {kerr}")
        print(f"  f32  torch {kern['torch']['version'] if kern else ''} matmul, "
              f"{tf['threads']} threads ({path}): {tf['gflops']:.1f} GFLOP/s")
    elif tf:
        print(f"  f32  torch: unavailable: {tf['error']}")
    jf = mm.get("jax_f32", {})
    if "gflops" in jf:
        rates["JAX"] = jf["gflops"]
        print(f"  f32  JAX jit matmul (XLA:CPU, {jf['dot']}): {jf['gflops']:.1f} GFLOP/s")
    elif jf:
        print(f"  f32  JAX: unavailable: {jf['error']}")
    tb = mm.get("torch_bf16", {})
    bf16_rate = tb.get("gflops")
    if bf16_rate:
        path = kern["paths"].get("bf16 matmul", "?") if kern else f"kernel unknown: {kerr}"
        size = (f" at {tb['n']}^3 (the bf16 matmul has no fast path on this CPU)"
                if tb.get("n", N_MM) != N_MM else "")
        print(f"  bf16 torch matmul{size} ({path}): {bf16_rate:.1f} GFLOP/s")
    elif tb:
        print(f"  bf16 torch: unavailable: {tb['error']}")
    if kern:
        t = kern["torch"]
        print(f"  torch {t['version']}: CPU capability {t['cpu_capability']}, "
              f"{' '.join(t['blas'])}; oneDNN ISA: {kern['onednn_isa']}")
        for dt in ("torch.float32", "torch.bfloat16"):
            print(f"  torch flash SDPA {dt[6:]}: {kern['paths'].get(dt + ' flash sdpa', '?')}")
    # Debian's numpy, which the old bench used as the yardstick: context only.
    deb = child("/usr/bin/python3", ["sgemm_numpy_only", max(a.reps, 5)])[0] \
        if os.path.exists("/usr/bin/python3") else {"error": "no /usr/bin/python3"}
    sgemm = max(rates.values()) if rates else None
    best = max(rates, key=rates.get) if rates else None
    if sgemm:
        print(f"  best f32 rate: {sgemm:.1f} GFLOP/s ({best})")
    # ---- Debian numpy (context only)
    if "gflops" in deb:
        bl = deb["blas"]
        print(f"  not a peer: Debian's numpy {deb['numpy']} / OpenBLAS {bl.get('version')}, core "
              f"{bl.get('core')}: {deb['gflops']:.1f} GFLOP/s (the old bench's yardstick)"
              f"{core_note(bl.get('core'), isa)}")
    if not sgemm and "gflops" in deb:
        sgemm, best = deb["gflops"], "Debian numpy"
        print(f"  SGEMM rate for the f32 rows: {sgemm:.1f} GFLOP/s (Debian's numpy, for want of "
              f"the peers' venv: far below the machine's rate if its core is the wrong one)")

    # ---- the rows (measured first, printed as one table at the end, so that
    # every percentage uses the same yardstick)
    print(f"\nmeasuring (progress on stderr) ...", flush=True)
    meter = OthersMeter()
    rows, femc_rows, femc_bf16, femc_dot = [], {}, {}, {}
    for mode in modes:
        causal = mode == "causal"
        for T in Ts:
            d = os.path.join(out_dir, f"{mode}_T{T}")
            fl = flops(T, causal)
            fms, fmin, fthreads = femc_bench(fem_run, lib, "fem_causal" if causal else "fem_full",
                                             T, a.reps, d)
            ref_py = py if py else "/usr/bin/python3"
            ref = child(ref_py, ["ref", d, int(causal)])[0]
            fres = (child(ref_py, ["err", d, os.path.join(d, "femc.npy")])[0]
                    if "error" not in ref else {"err": None, "why": "no reference: " + ref["error"]})
            femc_rows[(T, causal)] = fl / fms / 1e6
            rows.append((T, mode, f"femc (fem-run, {fthreads} threads)", "f32", fl,
                         {"median_ms": fms, "min_ms": fmin, **fres}, fms, True))
            print(f"bench: T={T} {mode}: femc {fms:.2f} ms", file=sys.stderr, flush=True)
            # femc bf16 on the same inputs: the speed-up column of the bf16
            # peers is against it.
            bms, bmin, bthreads = femc_bench(
                fem_run, lib, "fem_causal_bf16" if causal else "fem_full_bf16", T, a.reps, d,
                "bf16")
            bres = (child(ref_py, ["err", d, os.path.join(d, "femc_bf16.npy")])[0]
                    if "error" not in ref else {"err": None, "why": "no reference: " + ref["error"]})
            femc_bf16[(T, causal)] = (bms, fms)
            rows.append((T, mode, f"femc (fem-run, {bthreads} threads{BF16_PATH})", "bf16", fl,
                         {"median_ms": bms, "min_ms": bmin, **bres}, bms, True))
            print(f"bench: T={T} {mode}: femc bf16 {bms:.2f} ms", file=sys.stderr, flush=True)
            # The opt-in dot-product read on the same inputs; its femc x
            # column is the default bf16 read's speed-up against it.
            if dot_missing:
                rows.append((T, mode, BF16_DOT_LABEL.format(threads=bthreads), "bf16", fl,
                             {"error": dot_missing}, bms, False))
            else:
                dms, dmin, dthreads = femc_bench(
                    fem_run, dot_lib, "fem_causal_bf16" if causal else "fem_full_bf16", T,
                    a.reps, d, "bf16dot")
                dres = (child(ref_py, ["err", d, os.path.join(d, "femc_bf16dot.npy")])[0]
                        if "error" not in ref
                        else {"err": None, "why": "no reference: " + ref["error"]})
                femc_dot[(T, causal)] = (dms, fms, bms)
                rows.append((T, mode, BF16_DOT_LABEL.format(threads=dthreads), "bf16", fl,
                             {"median_ms": dms, "min_ms": dmin, **dres}, bms, False))
                print(f"bench: T={T} {mode}: femc bf16 dot products {dms:.2f} ms",
                      file=sys.stderr, flush=True)
            for name, label, dt in peers:
                if py is None:
                    res = {"error": f"no Python at {a.python}"}
                elif "error" in ref:
                    res = {"error": "no float64 reference to check against: " + ref["error"]}
                else:
                    res = child(py, ["row", name, d, int(causal), a.reps])[0]
                info = res.get("info", {})
                lab = (label.format(backend=info["backend"].split(" (")[0]) if "backend" in info
                       else label.replace(" ({backend})", ""))
                rows.append((T, mode, lab, dt, fl, res, bms if dt == "bf16" else fms, False))
                print(f"bench: T={T} {mode}: {lab} {dt}: "
                      + (f"{res['median_ms']:.2f} ms" if "median_ms" in res else res["error"]),
                      file=sys.stderr, flush=True)
    others = meter.line()

    # ---- the matmuls again: the machine's rate is the better of the two
    if py:
        mm2 = child(py, ["sgemm", max(a.reps, 5)])[0]
        f32_after = [mm2[k]["gflops"] for k in ("numpy_f32", "torch_f32", "jax_f32")
                     if "gflops" in mm2.get(k, {})]
        bf16_after = mm2.get("torch_bf16", {}).get("gflops")
        if f32_after or bf16_after:
            print(f"matmul again after the rows: best f32 "
                  + (f"{max(f32_after):.1f}" if f32_after else "-") + " GFLOP/s, bf16 "
                  + (f"{bf16_after:.1f}" if bf16_after else "-") + " GFLOP/s")
        if f32_after and max(f32_after) > (sgemm or 0) and rates:
            sgemm = max(f32_after)
        if bf16_after and bf16_after > (bf16_rate or 0):
            bf16_rate = bf16_after
    bf16_yard, bf16_name = bf16_yardstick(bf16_rate, sgemm, tb.get("n", N_MM) != N_MM)
    if sgemm or bf16_rate:
        print("yardsticks (the higher of before and after): SGEMM "
              + (f"{sgemm:.1f}" if sgemm else "-") + " GFLOP/s, bf16 matmul "
              + (f"{bf16_rate:.1f}" if bf16_rate else "-") + " GFLOP/s"
              + ("" if bf16_name == "bf16 matmul" else
                 "; bf16 rows against SGEMM (torch's bf16 matmul has no fast path here)"))

    # ---- the table
    hdr = (f"{'T':>5} {'mask':>6}  {'row':<46} {'dtype':>5} {'median ms':>10} {'min ms':>9} "
           f"{'GFLOP/s':>8} {'% mm':>6} {'femc x':>7}  {'err':>9}  check")
    print(f"\n% mm: f32 rows against the SGEMM yardstick, bf16 rows against the {bf16_name} "
          f"one. femc x: femc's speed-up (row median / femc median of the same dtype)."
          f"\nerr: "
          f"max|out - ref| / max|ref|, ref = float64 reference on femc's inputs.\n")
    print(hdr)
    print("-" * len(hdr))
    for T, mode, lab, dt, fl, res, fms, is_femc in rows:
        if "error" in res:
            print(f"{T:5d} {mode:>6}  {lab:<46} {dt:>5}  unavailable: {res['error']}")
            continue
        ms = res["median_ms"]
        g = fl / ms / 1e6
        rate = bf16_yard if dt == "bf16" else sgemm
        pct = f"{100 * g / rate:5.1f}%" if rate else f"{'-':>6}"
        ecol, ok = fmt_err(res, TOL_BF16 if dt == "bf16" else TOL_F32)
        sp = f"{'1.00x':>7}" if is_femc else (f"{ms / fms:6.2f}x" if ok else f"{'n/a':>7}")
        print(f"{T:5d} {mode:>6}  {lab:<46} {dt:>5} {ms:10.2f} {res['min_ms']:9.2f} "
              f"{g:8.1f} {pct} {sp}  {ecol}")
    print(others)
    print("\nFLOPs per launch (all rows) = (2*T^2*dk + 4*T^2*dv)*B*H, halved when causal.")
    for line in bf16_target_lines(rows, femc_bf16):
        print(line)
    for line in bf16_dot_lines(femc_dot):
        print(line)
    for line in iree_lines(rows):
        print(line)
    if (4096, True) in femc_rows and sgemm:
        pct = 100 * femc_rows[(4096, True)] / sgemm
        print(f"target: femc >= 50% of the SGEMM yardstick at T=4096 causal: {pct:.1f}% "
              f"({'met' if pct >= 50 else 'NOT met'})")

    if not a.no_memory:
        T = 32768
        io = 6 * B * T * H * DV * 4 / 2 ** 20  # q, k, v, lam, gate, out
        base = peak_rss_mib([fem_run, lib, "--kernel", "fem_causal", "--dim", "B=1",
                             "--dim", "T=64"])
        peak = peak_rss_mib([fem_run, lib, "--kernel", "fem_causal", "--dim", "B=1",
                             "--dim", f"T={T}"])
        extra = peak - base - io
        print(f"memory at T={T} causal, femc: peak RSS {peak:.0f} MiB = process at T=64 "
              f"{base:.0f} MiB + inputs and outputs {io:.0f} MiB + {extra:.1f} MiB extra "
              f"(target <= 64 MiB: {'met' if extra <= 64 else 'NOT met'})")


if __name__ == "__main__":
    main()

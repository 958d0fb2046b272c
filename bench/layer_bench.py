#!/usr/bin/env python3
"""Whole FEM layers: femc against PyTorch eager and against SGEMM + femc's read.

One process, one table (docs/benchmarks.md, "Layers"). The bench layer is
issue 11's: B = 1, n_embd = 1024, 16 heads, dk = dv = 64, softmax prior,
causal, nn.Linear projections with biases (q, k, v, lambda, gate and the
output), weights in PyTorch's (out, in) layout, heads split by reshapes; no
RoPE and no mask. For each T the four calls

  femc layer     the compiled layer, loaded with the femc Python module
                 (build/python) and run on its pool (all cores);
  PyTorch eager  the same layer in PyTorch 2.x eager fp32: six nn.Linear
                 and the FEM read the reference's way with two flash SDPA
                 calls (one per half of the value panel [V~ | X]);
  SGEMM          the six projections as torch.nn.functional.linear (fp32);
  femc read      the layer's FEM read alone (kernel <layer>_fem0) on the
                 layer's own q, k, v, lambda and gate;

are timed interleaved, round after round (each round starts one call later
than the one before, and --gap-ms of sleep separates the calls), so that
the machine's drift hits every column alike. It reports each call's median
and minimum, the median over rounds of the per-round ratios PyTorch / femc
layer (target >= 2) and femc layer / (SGEMM + femc read) (target <= 1.25)
with their range, and per call the CPU time of this process's threads
(from /proc/self/task/*/schedstat), split into the threads of the library
being timed and the others (PyTorch's OpenMP workers spinning during a
femc call show there), the time its threads waited for a CPU, and the CPU
other processes used (from /proc/stat). femc's layer output is checked
against PyTorch's in the same run (max |y_femc - y_torch| / max |y_torch|),
and so is its read. It also times examples/fem_layer.mlir (D = 256,
4 heads, per-head weights, RoPE) and its read, interleaved the same way.

Without PyTorch (bench/.venv, which bench/run.sh makes, has it) the
PyTorch, SGEMM and check columns say so and the femc calls still run. Run
it on a quiet machine, e.g. under the build lock:

    bench/.venv/bin/python bench/layer_bench.py [--T 1024 4096] [--reps 7]
"""
import argparse
import math
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAP, EPS, TINY = 40.0, 1e-6, 2.0 ** -126
USER_HZ = os.sysconf("SC_CLK_TCK")


def layer_mlir(name, D, H, d):
    """The bench layer in the authors' layouts (cf. test/integration/Inputs/
    layer_natural.mlir, which LayerTest checks against the double layer)."""
    E = H * d
    lines = [
        "#x = affine_map<(m, n, k) -> (m, k)>",
        "#w = affine_map<(m, n, k) -> (n, k)>",
        "#y = affine_map<(m, n, k) -> (m, n)>",
        "#bias = affine_map<(m, n) -> (n)>",
        "#id2 = affine_map<(m, n) -> (m, n)>",
        f"func.func private @linear(%x: tensor<?x{D}xf32>, %w: tensor<{E}x{D}xf32>,",
        f"                          %b: tensor<{E}xf32>) -> tensor<?x{E}xf32> {{",
        "  %c0 = arith.constant 0 : index",
        f"  %M = tensor.dim %x, %c0 : tensor<?x{D}xf32>",
        f"  %e = tensor.empty(%M) : tensor<?x{E}xf32>",
        "  %init = linalg.generic {indexing_maps = [#bias, #id2], iterator_types = [\"parallel\", \"parallel\"]}",
        f"      ins(%b : tensor<{E}xf32>) outs(%e : tensor<?x{E}xf32>) {{",
        "    ^bb0(%a: f32, %o: f32):",
        "      linalg.yield %a : f32",
        f"  }} -> tensor<?x{E}xf32>",
        "  %y = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = [\"parallel\", \"parallel\", \"reduction\"]}",
        f"      ins(%x, %w : tensor<?x{D}xf32>, tensor<{E}x{D}xf32>) outs(%init : tensor<?x{E}xf32>) {{",
        "    ^bb0(%a: f32, %b2: f32, %acc: f32):",
        "      %m = arith.mulf %a, %b2 : f32",
        "      %s = arith.addf %acc, %m : f32",
        "      linalg.yield %s : f32",
        f"  }} -> tensor<?x{E}xf32>",
        f"  return %y : tensor<?x{E}xf32>",
        "}",
        f"func.func @{name}(",
        f"    %x: tensor<?x?x{D}xf32> {{fem.name = \"x\", fem.dims = \"B,T,D\"}},",
    ]
    params = []
    for p in ("q", "k", "v", "lambda", "gate", "o"):
        params.append(f"    %w{p}: tensor<{E}x{D}xf32> {{fem.name = \"W_{p}.weight\", fem.dims = \"E,D\"}},")
        params.append(f"    %b{p}: tensor<{E}xf32> {{fem.name = \"W_{p}.bias\", fem.dims = \"E\"}},")
    lines += params
    lines += [
        f"    %beta_raw: tensor<{E}xf32> {{fem.name = \"_beta_param\", fem.dims = \"E\"}})",
        f"    -> (tensor<?x?x{D}xf32> {{fem.name = \"y\", fem.dims = \"B,T,D\"}}) {{",
        "  %c0 = arith.constant 0 : index",
        "  %c1 = arith.constant 1 : index",
        f"  %B = tensor.dim %x, %c0 : tensor<?x?x{D}xf32>",
        f"  %T = tensor.dim %x, %c1 : tensor<?x?x{D}xf32>",
        f"  %x2 = tensor.collapse_shape %x [[0, 1], [2]] : tensor<?x?x{D}xf32> into tensor<?x{D}xf32>",
    ]
    t4 = f"tensor<?x?x{H}x{d}xf32>"
    lin = f"(tensor<?x{D}xf32>, tensor<{E}x{D}xf32>, tensor<{E}xf32>) -> tensor<?x{E}xf32>"
    for p in ("q", "k", "v", "lambda", "gate"):
        lines.append(f"  %{p}2 = func.call @linear(%x2, %w{p}, %b{p}) : {lin}")
        lines.append(f"  %{p} = tensor.expand_shape %{p}2 [[0, 1], [2, 3]] output_shape [%B, %T, {H}, {d}] : tensor<?x{E}xf32> into {t4}")
    lines += [
        f"  %o = fem.mixer softmax q(%q : {t4}) k(%k : {t4}) v(%v : {t4})",
        f"      beta_raw(%beta_raw : tensor<{E}xf32>) lam(%lambda : {t4}) gate(%gate : {t4}) {{causal}} -> {t4}",
        f"  %o2 = tensor.collapse_shape %o [[0, 1], [2, 3]] : {t4} into tensor<?x{E}xf32>",
        f"  %y2 = func.call @linear(%o2, %wo, %bo) : {lin}",
        f"  %y = tensor.expand_shape %y2 [[0, 1], [2]] output_shape [%B, %T, {D}] : tensor<?x{E}xf32> into tensor<?x?x{D}xf32>",
        f"  return %y : tensor<?x?x{D}xf32>",
        "}",
    ]
    return "\n".join(lines) + "\n"


# --- per-call accounting ----------------------------------------------------

def _task_stats():
    """{tid: (ns on a CPU, ns waiting for one)} of this process's threads."""
    stats = {}
    base = "/proc/self/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/schedstat") as f:
                run_ns, wait_ns, _ = f.read().split()
        except (OSError, ValueError):
            continue  # a thread that ended, or no schedstats in this kernel
        stats[int(tid)] = (int(run_ns), int(wait_ns))
    return stats


def _system_busy_ms():
    """CPU time all processes have used since boot (/proc/stat), ms."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    return (sum(v[:8]) - idle) * 1000.0 / USER_HZ


class Accounting:
    """Times calls and splits the CPU time of this process's threads by the
    library that started them ("femc" or "torch"; the calling thread is
    "main"), so that a call's own CPU time and the other library's (e.g.
    OpenMP workers still spinning after a PyTorch call) are told apart."""

    def __init__(self):
        self.owner = {tid: "main" if tid == os.getpid() else "other"
                      for tid in _task_stats()}

    def claim(self, lib):
        """Gives the threads nobody owns yet to lib (e.g. a pool started
        by femc.load)."""
        for tid in _task_stats():
            self.owner.setdefault(tid, lib)

    def call(self, lib, fn):
        s0, b0 = _task_stats(), _system_busy_ms()
        t0 = time.perf_counter()
        fn()
        wall = (time.perf_counter() - t0) * 1e3
        s1, b1 = _task_stats(), _system_busy_ms()
        cpu = {"main": 0.0, "femc": 0.0, "torch": 0.0, "other": 0.0}
        wait = 0.0
        for tid, (run1, wait1) in s1.items():
            run0, wait0 = s0.get(tid, (0, 0))
            # A thread first seen now was started by this call's library.
            group = self.owner.setdefault(tid, lib)
            cpu[group] += (run1 - run0) / 1e6
            wait += (wait1 - wait0) / 1e6
        total = sum(cpu.values())
        return {
            "wall": wall,
            "own": cpu["main"] + cpu[lib],
            "foreign": max(0.0, total - cpu["main"] - cpu[lib]),
            "wait": wait,
            # /proc/stat counts in clock ticks (10 ms): a coarse estimate.
            "others": max(0.0, (b1 - b0) - total),
        }


# --- the calls ----------------------------------------------------------------

def make_inputs(T, D, H, d, seed=0):
    """x, the six (W, b) pairs in nn.Linear's layout and init, beta_raw."""
    import numpy as np
    E = H * d
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, T, D), dtype=np.float32)
    lin = []
    for fan_in, fan_out in [(D, E)] * 5 + [(E, D)]:
        bound = 1.0 / math.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        lin.append((w, b))
    beta_raw = rng.standard_normal(E, dtype=np.float32)
    return x, lin, beta_raw


def torch_calls(x, lin, beta_raw, H, d, threads):
    """(layer, sgemm, read) closures of PyTorch eager on the same arrays (no
    copies: torch.from_numpy), or raises ImportError."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    _, T, D = x.shape
    E = H * d
    tx = torch.from_numpy(x)
    tw = [(torch.from_numpy(w), torch.from_numpy(b)) for w, b in lin]
    beta = (F.softplus(torch.from_numpy(beta_raw)) + EPS).view(1, 1, H, d)

    def read(q, k, v, lam_l, gate_l):
        lim = CAP / beta
        vc = torch.maximum(torch.minimum(v, lim), -lim)
        bv = beta * vc
        M = bv.amax(dim=1, keepdim=True)
        qt, kt = q.transpose(1, 2), k.transpose(1, 2)
        mu = F.scaled_dot_product_attention(qt, kt, vc.transpose(1, 2), is_causal=True)
        z = F.scaled_dot_product_attention(qt, kt, torch.exp(bv - M).transpose(1, 2),
                                           is_causal=True)
        mu, z = mu.transpose(1, 2), z.transpose(1, 2)
        fm = (torch.logaddexp(torch.log(z), math.log(TINY) - M) + M) / beta
        lam = torch.sigmoid(lam_l)
        gt = F.normalize(F.softplus(gate_l) + EPS, dim=-1, eps=1e-5) * math.sqrt(d)
        return gt * ((1 - lam) * mu + lam * fm)

    def layer():
        with torch.no_grad():
            q, k, v, lam, gate = (F.linear(tx, w, b).view(1, T, H, d) for w, b in tw[:5])
            o = read(q, k, v, lam, gate)
            return F.linear(o.reshape(1, T, E), *tw[5])

    xs = tx.view(T, D)
    os_ = torch.randn(T, E, generator=torch.Generator().manual_seed(1))

    def sgemm():
        with torch.no_grad():
            for w, b in tw[:5]:
                F.linear(xs, w, b)
            F.linear(os_, *tw[5])

    def read_np(q, k, v, lam, gate):
        with torch.no_grad():
            return read(*(torch.from_numpy(a) for a in (q, k, v, lam, gate))).numpy()

    return layer, sgemm, read_np, torch.__version__, torch.get_num_threads()


def rel_diff(a, ref):
    import numpy as np
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(a - ref)) / max(np.max(np.abs(ref)), 1e-30))


def summarize(samples):
    walls = [s["wall"] for s in samples]
    med = lambda k: statistics.median(s[k] for s in samples)  # noqa: E731
    return {"median": statistics.median(walls), "min": min(walls),
            "spread": max(walls) / min(walls), "own": med("own"),
            "foreign": med("foreign"), "wait": med("wait"), "others": med("others")}


def ratio_cell(values):
    return (f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
            if values else "")


def interleave(acct, calls, reps, warmup, gap):
    """Runs each (name, lib, fn) of calls once per round, `warmup` rounds
    untimed, then `reps` timed rounds, the round r starting at call r mod
    len(calls). Returns ({name: [sample per round]}, {name: first call ms})."""
    first = {}
    for _ in range(warmup):
        for name, lib, fn in calls:
            first.setdefault(name, acct.call(lib, fn)["wall"])
            time.sleep(gap)
    samples = {name: [] for name, _, _ in calls}
    n = len(calls)
    for r in range(reps):
        for j in range(n):
            name, lib, fn = calls[(r + j) % n]
            samples[name].append(acct.call(lib, fn))
            time.sleep(gap)
    return samples, first


def random_args(kernel, dims, rng):
    """Inputs and outputs of kernel from its argument list: dynamic extents
    from dims (by name), values N(0, 1) / sqrt of the last extent."""
    import numpy as np
    arrays = []
    for a in kernel.args:
        shape = []
        for name, ext in zip(a["dims"], a["shape"]):
            if ext is None:
                if name not in dims:
                    raise RuntimeError(f"{kernel.name}: argument '{a['name']}' has a dynamic "
                                       f"extent '{name}' that the bench does not set")
                ext = dims[name]
            shape.append(ext)
        if a["role"] == "output":
            arrays.append(np.empty(shape, np.float32))
        else:
            scale = 1.0 / math.sqrt(shape[-1]) if shape else 1.0
            arrays.append((rng.standard_normal(shape) * scale).astype(np.float32))
    return arrays


LAYER, TORCH, SGEMM, READ = "femc layer", "PyTorch eager", "SGEMM (6 proj.)", "femc read"


def round_ratios(samples):
    """Per round: (PyTorch / femc layer, femc layer / (SGEMM + femc read)),
    from the walls of the same round; [] without the PyTorch columns."""
    if TORCH not in samples:
        return []
    return [(t["wall"] / l["wall"], l["wall"] / (s["wall"] + r["wall"]))
            for l, t, s, r in zip(samples[LAYER], samples[TORCH], samples[SGEMM],
                                  samples[READ])]


def print_tables(results, reps, per_round):
    """results: (T, {call: [sample per round]}, {call: first ms}, check or
    None) per block of interleaved calls."""
    print()
    print("| T | call | median ms | min ms | max/min | own CPU ms | other lib CPU ms "
          "| run-queue wait ms | other procs CPU ms | first call ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for T, samples, first, _ in results:
        for name, ss in samples.items():
            s = summarize(ss)
            print(f"| {T} | {name} | {s['median']:.1f} | {s['min']:.1f} | {s['spread']:.2f} "
                  f"| {s['own']:.1f} | {s['foreign']:.1f} | {s['wait']:.1f} "
                  f"| {s['others']:.0f} | {first.get(name, float('nan')):.1f} |")
    print()
    print("| T | PyTorch / femc layer | femc layer / (SGEMM + femc read) "
          "| layer: max rel diff to PyTorch | read: max rel diff to PyTorch |")
    print("|---|---|---|---|---|")
    for T, samples, _, check in results:
        if check is None:
            continue  # the example's block
        ratios = round_ratios(samples)
        if ratios:
            cells = [ratio_cell([p for p, _ in ratios]), ratio_cell([q for _, q in ratios]),
                     f"{check['layer']:.1e}", f"{check['read']:.1e}"]
        else:
            cells = ["no torch"] * 4
        print(f"| {T} | " + " | ".join(cells) + " |")
    if not per_round:
        return
    print()
    for T, samples, _, _ in results:
        names = list(samples)
        ratios = round_ratios(samples)
        extra = ["PyTorch / femc layer", "layer / (SGEMM + read)"] if ratios else []
        print(f"| T = {T}: round | " + " | ".join(names + extra) + " |")
        print("|---" * (len(names) + len(extra) + 1) + "|")
        for r in range(reps):
            cells = [f"{samples[n][r]['wall']:.1f}" for n in names]
            if ratios:
                cells += [f"{ratios[r][0]:.2f}", f"{ratios[r][1]:.2f}"]
            print(f"| {r + 1} | " + " | ".join(cells) + " |")
        print()


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Columns: median and min wall ms of the timed rounds; max/min: their "
               "spread; own CPU: ms of CPU of the calling thread and the timed "
               "library's threads; other lib CPU: the other library's threads during "
               "the call; run-queue wait: ms this process's threads were runnable "
               "but not running; other procs: CPU ms of other processes (/proc/stat, "
               "10 ms ticks). Ratios are medians of per-round ratios (range).")
    ap.add_argument("--T", type=int, nargs="+", default=[1024, 4096], help="sequence lengths")
    ap.add_argument("--reps", type=int, default=7, help="timed rounds per T (default 7)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed rounds first (default 1; their first time of each call "
                         "is the first call column)")
    ap.add_argument("--gap-ms", type=float, default=30.0,
                    help="sleep between two calls, so that PyTorch's OpenMP workers "
                         "stop spinning before the next call (default 30)")
    ap.add_argument("--threads", type=int, default=0,
                    help="femc pool threads and PyTorch threads (0: all cores)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"),
                    help="where femc is (default build/bin)")
    ap.add_argument("--python", default=os.path.join(ROOT, "build", "python"),
                    help="where the femc Python module is (default build/python)")
    ap.add_argument("--no-example", action="store_true", help="skip examples/fem_layer.mlir")
    ap.add_argument("--no-torch", action="store_true",
                    help="time femc only, even when PyTorch is installed")
    ap.add_argument("--per-round", action="store_true",
                    help="also print every round's times and ratios")
    ap.add_argument("--matmul-precision", default="auto",
                    choices=["auto", "f32", "bf16x3", "bf16x6"],
                    help="femc --matmul-precision for the projections (auto: bf16x6 "
                         "on AMX-BF16 hosts, else f32; docs/layers.md)")
    a = ap.parse_args(argv)
    for flag, value, least in (("--reps", a.reps, 1), ("--warmup", a.warmup, 0),
                               ("--gap-ms", a.gap_ms, 0), ("--threads", a.threads, 0)):
        if value < least:
            ap.error(f"{flag} must be at least {least}, got {value:g}")
    if min(a.T) < 1:
        ap.error(f"--T: every T must be at least 1, got {min(a.T)}")
    try:
        import numpy as np
    except ImportError as e:
        sys.exit(f"layer_bench: needs numpy ({e}); run it with bench/.venv/bin/python "
                 "or /usr/bin/python3")
    sys.path.insert(0, a.python)
    try:
        import femc
    except ImportError as e:
        sys.exit(f"layer_bench: cannot import the femc Python module from {a.python} "
                 f"({e}); build it with `scripts/build.sh femc_python` (docs/python.md)")
    threads = a.threads or len(os.sched_getaffinity(0))
    femc_exe = os.path.join(a.bin, "femc")
    D, H, d = 1024, 16, 64
    gap = a.gap_ms / 1e3
    acct = Accounting()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "bench_layer.mlir")
        with open(src, "w") as f:
            f.write(layer_mlir("bench_layer", D, H, d))
        mod = femc.compile(src, tmp, matmul_precision=a.matmul_precision, femc=femc_exe,
                           threads=threads)
        layer_k, read_k = mod.kernel("bench_layer"), mod.kernel("bench_layer_fem0")
        acct.claim("femc")
        ex = None
        if not a.no_example:
            ex = femc.compile(os.path.join(ROOT, "examples", "fem_layer.mlir"), tmp,
                              matmul_precision=a.matmul_precision, femc=femc_exe,
                              threads=threads)
            acct.claim("femc")
        torch_note = "PyTorch: not used (--no-torch)" if a.no_torch else ""
        print(f"# Layers: B=1, n_embd={D}, {H} heads, dk=dv={d}, softmax causal; "
              f"{len(os.sched_getaffinity(0))} cores; {mod.producer} ({mod.target}, "
              f"--matmul-precision={a.matmul_precision}, {mod.num_threads} pool threads)")
        print(f"# {a.reps} timed rounds per T after {a.warmup} warm-up; calls interleaved, "
              f"{a.gap_ms:g} ms apart; load at start {os.getloadavg()[0]:.2f} "
              f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
        results = []
        for T in a.T:
            x, lin, beta_raw = make_inputs(T, D, H, d)
            args = [x] + [t for wb in lin for t in wb] + [beta_raw]
            y = np.empty((1, T, D), np.float32)
            x2 = x.reshape(T, D)
            proj = [(x2 @ w.T + b).reshape(1, T, H, d) for w, b in lin[:5]]
            o = np.empty((1, T, H, d), np.float32)
            calls = [(LAYER, "femc", lambda: layer_k(*args, y))]
            tl = None
            if not a.no_torch:
                try:
                    tl = torch_calls(x, lin, beta_raw, H, d, threads)
                    acct.claim("torch")
                except ImportError as e:
                    torch_note = f"PyTorch: not installed ({e})"
            if tl:
                t_layer, t_sgemm, t_read, tver, tthr = tl
                torch_note = f"PyTorch {tver} eager fp32, {tthr} threads"
                calls += [(TORCH, "torch", t_layer), (SGEMM, "torch", t_sgemm)]
            calls.append((READ, "femc", lambda: read_k(*proj[:3], beta_raw, *proj[3:], o)))
            samples, first = interleave(acct, calls, a.reps, a.warmup, gap)
            check = {}
            if tl:
                check["layer"] = rel_diff(y, t_layer().numpy())
                check["read"] = rel_diff(o, t_read(*proj))
            results.append((T, samples, first, check))
            if ex:
                ek, erk = ex.kernel("fem_layer"), ex.kernel("fem_layer_fem0")
                rng = np.random.default_rng(0)
                eargs = random_args(ek, {"B": 1, "T": T}, rng)
                rargs = random_args(erk, {"B": 1, "T": T}, rng)
                ecalls = [("examples/fem_layer.mlir layer", "femc", lambda: ek(*eargs)),
                          ("examples/fem_layer.mlir read", "femc", lambda: erk(*rargs))]
                es, efirst = interleave(acct, ecalls, a.reps, a.warmup, gap)
                results.append((T, es, efirst, None))
            sys.stdout.flush()
        print(f"# {torch_note}; load at end {os.getloadavg()[0]:.2f}")
        print_tables(results, a.reps, a.per_round)
    return 0


if __name__ == "__main__":
    sys.exit(main())

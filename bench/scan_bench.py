#!/usr/bin/python3
"""femc's scan priors (linear, gla, aft, ssm) in one table from one run:
time per token as T grows, effective rates against the same run's SGEMM and
memory-copy rates, peak extra memory, and the authors' formulation in
PyTorch 2.x where it fits in memory (docs/benchmarks.md, "Scan priors").

    bench/scan_bench.sh                      # build femc + fem-run, then this
    bench/scan_bench.py --T 1024,4096 --reps 3 --priors linear,gla --no-ref

Shapes: B=1, H=8, dk=dv=64 (ssm: E=H*dv=512 channels, N=16), kernels in
bench/scan_kernels.mlir compiled with femc's default tiles.

Effective FLOPs (linear, gla) = B*H*T*(C*dk + 2*C*dv + 8*dk*dv) with C = 64:
the matmul work of the chunked form (intra-chunk scores and weights times
[V~ | X], both causal halves, plus the state read and the state update),
the same count whatever chunk the kernel uses.
Bytes (aft, ssm) = every input and output read or written once.
After the rows, one line per prior against issue 8's targets: growth from
the first to the last T, % of SGEMM or of the copy rate over the Ts, the
range of extra memory, PyTorch / femc at T = 4096.
"""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys

B, H, DK, DV, N_SSM = 1, 8, 64, 64, 16
E = H * DV
C_NOMINAL = 64
PRIORS = {  # prior: kernel name in bench/scan_kernels.mlir
    "linear": "linear_causal", "gla": "gla", "aft": "aft", "ssm": "ssm"}
MIB = 2.0 ** 20


def flops(prior, T):
    if prior not in ("linear", "gla"):
        return None
    return B * H * T * (C_NOMINAL * DK + 2 * C_NOMINAL * DV + 8 * DK * DV)


def io_bytes(prior, T):
    """Inputs and outputs of one launch, in bytes (f32)."""
    btd = B * T * H * DV * 4
    if prior == "ssm":
        # v, lam, gate, out; delta (B,T,E); Bs, Cs (B,T,N); A (E,N), beta_raw, D (E)
        return 4 * btd + B * T * E * 4 + 2 * B * T * N_SSM * 4 + (E * N_SSM + 2 * E) * 4
    extra = B * T * H * 4 if prior == "gla" else 0  # decay
    return 6 * btd + E * 4 + extra                   # q k v lam gate out, beta_raw


def ref_bytes(prior, T):
    """The largest intermediates of the PyTorch formulation, in bytes."""
    if prior in ("linear", "gla"):
        return B * H * T * T * 4 * (4 if prior == "gla" else 2)
    if prior == "aft":
        return B * H * T * 2 * DV * 4 * 8
    return 2 * B * E * T * N_SSM * 4  # delta_a and delta_b_u


GROWTH_MAX, SGEMM_MIN, REF_MIN, REF_T = 1.15, 30.0, 10.0, 4096  # issue 8's targets


def rate_pct(prior, T, med, sgemm, copy):
    """(rate, unit, % of the yardstick or None): effective GFLOP/s against
    SGEMM (linear, gla) or GB/s against the copy rate (aft, ssm)."""
    fl = flops(prior, T)
    if fl:
        rate = fl / med / 1e6
        return rate, "GFLOP/s", 100 * rate / sgemm if sgemm else None
    rate = io_bytes(prior, T) / med / 1e6
    return rate, "GB/s", 100 * rate / copy if copy else None


def growth(r0, r1):
    """Time per token of row r1 over that of row r0 (rows as summary() takes
    them): with per-round medians, the median of each round's own ratio
    (the rows of a round ran seconds apart), else the ratio of the rows'
    medians."""
    (t0, m0), (t1, m1) = (r0[1], r0[2]), (r1[1], r1[2])
    if len(r0) > 8 and len(r1) > 8 and len(r0[8]) == len(r1[8]):
        return statistics.median((b / t1) / (a / t0) for a, b in zip(r0[8], r1[8]))
    return (m1 / t1) / (m0 / t0)


def summary(rows, sgemm, copy):
    """One line per prior against issue 8's targets: growth of the time per
    token from the first to the last T, % of the yardstick over the Ts, the
    largest extra memory, and PyTorch / femc at T = REF_T. rows: (prior, T,
    median ms, min ms, threads, extra MiB, ref, iree[, per-round medians]) as
    main() collects; with per-round medians the growth is the median of the
    rounds' own growths, and a ref's paired_x (the median of the rounds'
    PyTorch / femc) is its ratio."""
    hdr = (f"{'prior':<6} {'growth':>15} {'% SGEMM / % copy':>22} {'extra MiB':>11} "
           f"{'PyTorch x @' + str(REF_T):>16}")
    out = [hdr, "-" * len(hdr)]
    for prior in dict.fromkeys(r[0] for r in rows):
        mine = sorted((r for r in rows if r[0] == prior), key=lambda r: r[1])
        t0, t1 = mine[0][1], mine[-1][1]
        if len(mine) > 1:
            g = growth(mine[0], mine[-1])
            mark = "met" if g <= GROWTH_MAX else "NOT met"
            grow = f"{g:.2f}x {mark}" if t0 == 1024 and t1 == 65536 else \
                f"{g:.2f}x {t0}->{t1}"
        else:
            grow = "-"
        pcts = [rate_pct(prior, r[1], r[2], sgemm, copy) for r in mine]
        unit = pcts[0][1]
        if all(p[2] is not None for p in pcts):
            lo, hi = min(p[2] for p in pcts), max(p[2] for p in pcts)
            pct = f"{lo:.1f}-{hi:.1f}% " + ("SGEMM" if unit == "GFLOP/s" else "copy")
            if unit == "GFLOP/s":
                pct += " met" if lo >= SGEMM_MIN else " NOT met"
        else:
            pct = "-"
        extra = f"{min(r[5] for r in mine):.1f}..{max(r[5] for r in mine):.1f}"
        at = [r for r in mine if r[1] == REF_T]
        if at and "median_ms" in at[0][6]:
            x = at[0][6].get("paired_x", at[0][6]["median_ms"] / at[0][2])
            ref = f"{x:.1f}x " + ("met" if x >= REF_MIN else "NOT met")
        else:
            ref = "-"
        out.append(f"{prior:<6} {grow:>15} {pct:>22} {extra:>11} {ref:>16}")
    return out


def run(cmd, env=None):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout


def child(python, args, timeout=1800):
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scan_child.py")
    if not python or not os.path.exists(python):
        return {"error": f"no Python at {python} (bench/run.sh creates bench/.venv)"}
    try:
        p = subprocess.run([python, script] + [str(a) for a in args], capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = p.stdout.strip().splitlines()
    if p.returncode == 0 and lines:
        try:
            return json.loads(lines[-1])
        except ValueError:
            pass
    err = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    why = err[-1].strip() if err else f"exit status {p.returncode}"
    if p.returncode < 0:
        why = f"killed by signal {-p.returncode}"
    return {"error": why}


def femc_run(fem_run, lib, kernel, T, reps, d=None):
    """(median ms, min ms, threads, peak RSS MiB) of fem-run --bench, the RSS
    measured by a fresh Python whose only child is fem-run."""
    cmd = [fem_run, lib, "--kernel", kernel, "--dim", f"B={B}", "--dim", f"T={T}",
           "--seed", "0", "--bench", str(reps)]
    if d:
        os.makedirs(d, exist_ok=True)
        cmd += ["--save-inputs", d, "--output", f"out={d}/femc.npy"]
    probe = ("import resource, subprocess, sys; "
             "p = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True); "
             "print(p.stdout); print('maxrss', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = run([sys.executable, "-c", probe] + cmd)
    m = re.search(r"on (\d+) threads: median ([0-9.]+) ms, min ([0-9.]+) ms", out)
    rss = re.search(r"maxrss (\d+)", out)
    if not m or not rss:
        raise RuntimeError(f"fem-run printed no timing:\n{out}")
    return float(m.group(2)), float(m.group(3)), int(m.group(1)), int(rss.group(1)) / 1024.0


def parse_list(p, text, what, conv=int):
    try:
        vals = [conv(t) for t in text.split(",") if t.strip()]
    except ValueError:
        p.error(f"--{what}: expected a comma-separated list, got '{text}'")
    if not vals:
        p.error(f"--{what}: empty")
    return vals


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(root, "build"))
    p.add_argument("--T", default="1024,4096,16384,65536", help="sequence lengths")
    p.add_argument("--priors", default="linear,gla,aft,ssm")
    p.add_argument("--reps", type=int, default=3,
                   help="timed femc launches per row and round (median)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds over all rows (default 3): each times every row once, "
                        "so the rows of a round share the machine's speed of the moment")
    p.add_argument("--ref-reps", type=int, default=2,
                   help="timed PyTorch calls per row and round")
    p.add_argument("--ref-max-gib", type=float, default=4.0,
                   help="run the PyTorch formulation only where its largest "
                        "intermediates fit in this many GiB (default 4)")
    p.add_argument("--ref-max-steps", type=int, default=4096,
                   help="ssm: run the reference's Python loop over time (three "
                        "scans of T steps) only up to this T (default 4096)")
    p.add_argument("--no-ref", action="store_true", help="femc and the yardsticks only")
    p.add_argument("--python", default=os.path.join(root, "bench", ".venv", "bin", "python"))
    a = p.parse_args()
    Ts = parse_list(p, a.T, "T")
    priors = [x.strip() for x in a.priors.split(",") if x.strip()]
    bad = [x for x in priors if x not in PRIORS]
    if bad or not priors:
        p.error(f"--priors: expected some of {','.join(PRIORS)}, got '{a.priors}'")
    if (any(t < 1 for t in Ts) or a.reps < 1 or a.rounds < 1 or a.ref_reps < 1
            or a.ref_max_steps < 0):
        p.error("--T, --reps, --rounds and --ref-reps must be positive, --ref-max-steps "
                "non-negative")

    femc = os.path.join(a.build, "bin", "femc")
    fem_run = os.path.join(a.build, "bin", "fem-run")
    out_dir = os.path.join(a.build, "bench_scan")
    env = dict(os.environ, FEMC_INCLUDE_DIR=os.path.join(root, "runtime", "include"))
    run([femc, os.path.join(root, "bench", "scan_kernels.mlir"), "-o", out_dir], env=env)
    lib = os.path.join(out_dir, "scan_kernels.so")
    manifest = json.load(open(os.path.join(out_dir, "scan_kernels.json")))
    tiles = {k["name"]: k.get("tiles", {}) for k in manifest.get("kernels", [])}

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from run_bench import OthersMeter, busy_line, git_rev, machine
    cpu, used, online, isa = machine()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"date:    {now}; femc {git_rev(root)}; B={B} H={H} dk={DK} dv={DV} "
          f"(ssm E={E} N={N_SSM}); femc: median of {a.rounds} rounds, each the median "
          f"of {a.reps} launches after one warm-up")
    print(f"machine: {cpu}; {used} cores used of {online}; ISA: {' '.join(isa)}")
    print("tiles:   " + ", ".join(
        f"{pr} q={tiles.get(k, {}).get('q')} k={tiles.get(k, {}).get('k')} "
        f"vec={tiles.get(k, {}).get('vec')}" for pr, k in PRIORS.items() if pr in priors))
    print(busy_line("before the run"))

    py = a.python if os.path.exists(a.python) else None
    before = child(py, ["rates", 5]) if py else {"error": f"no Python at {a.python}"}
    if "error" in before:
        print(f"yardsticks unavailable: {before['error']}")

    meter = OthersMeter()
    # The rows are timed in rounds: each round launches every row once
    # (fem-run --bench REPS, and the PyTorch formulation right after its
    # femc row), so a machine whose speed drifts over minutes moves every
    # row of a round alike. A row's time is the median of its rounds';
    # growth and PyTorch / femc are medians of the per-round ratios.
    base = {prior: femc_run(fem_run, lib, PRIORS[prior], 64, 1)[3] for prior in priors}
    cells = {}
    for rnd in range(a.rounds):
        for prior in priors:
            for T in Ts:
                cell = cells.setdefault((prior, T), {"meds": [], "mins": [], "refs": []})
                first = rnd == 0
                fits = ref_bytes(prior, T) <= a.ref_max_gib * 2 ** 30
                short = prior != "ssm" or T <= a.ref_max_steps
                want_ref = not a.no_ref and py is not None and fits and short
                d = os.path.join(out_dir, f"{prior}_T{T}") if want_ref and first else None
                med, mn, threads, rss = femc_run(fem_run, lib, PRIORS[prior], T, a.reps, d)
                cell["meds"].append(med)
                cell["mins"].append(mn)
                cell["threads"] = threads
                cell["extra"] = max(cell.get("extra", -1e30),
                                    rss - base[prior] - io_bytes(prior, T) / MIB)
                print(f"scan bench: round {rnd + 1}/{a.rounds}: {prior} T={T}: femc "
                      f"{med:.2f} ms", file=sys.stderr, flush=True)
                if want_ref:
                    r = child(py, ["ref", prior, os.path.join(out_dir, f"{prior}_T{T}"),
                                   a.ref_reps])
                    cell["refs"].append(r)
                    if "median_ms" in r:
                        print(f"scan bench: round {rnd + 1}/{a.rounds}: {prior} T={T}: "
                              f"PyTorch {r['median_ms']:.1f} ms", file=sys.stderr, flush=True)
                    if first:
                        cell["iree"] = child(py, ["iree", prior, d, a.ref_reps])
                cell["want_ref"] = want_ref
                cell["why"] = (fits, short)
    rows = []
    for prior in priors:
        for T in Ts:
            cell = cells[(prior, T)]
            med, mn = statistics.median(cell["meds"]), min(cell["mins"])
            threads, extra, want_ref = cell["threads"], cell["extra"], cell["want_ref"]
            fits, short = cell["why"]
            if want_ref:
                ok = [(r, m) for r, m in zip(cell["refs"], cell["meds"]) if "median_ms" in r]
                if ok:
                    ref = {"median_ms": statistics.median(r["median_ms"] for r, _ in ok),
                           "diff": max(r["diff"] for r, _ in ok),
                           "paired_x": statistics.median(r["median_ms"] / m for r, m in ok)}
                else:
                    ref = cell["refs"][0]
                iree = cell.get("iree", {"error": "not run"})
            elif a.no_ref:
                ref = {"error": "--no-ref"}
            elif py is None:
                ref = {"error": "no bench venv"}
            elif not fits:
                ref = {"error": f"needs {ref_bytes(prior, T) / 2 ** 30:.0f} GiB > "
                                f"--ref-max-gib {a.ref_max_gib:g}"}
            else:
                ref = {"error": f"Python loop of 3 x {T} steps: T > --ref-max-steps "
                                f"{a.ref_max_steps}"}
            if not want_ref:
                iree = ref
            rows.append((prior, T, med, mn, threads, extra, ref, iree, cell["meds"]))
    others = meter.line()
    after = child(py, ["rates", 5]) if py else {"error": "no Python"}

    def best(key):
        vals = [r[k] for r in (before, after) for k in r if k.endswith(key)
                and isinstance(r[k], float)]
        return max(vals) if vals else None
    sgemm, copy = best("_sgemm"), best("_copy")
    for when, r in (("before", before), ("after", after)):
        if "error" not in r:
            print(f"yardsticks {when} the rows: SGEMM 2048^3 numpy {r['numpy_sgemm']:.1f}, "
                  f"torch {r['torch_sgemm']:.1f} GFLOP/s; copy 256 MiB numpy (1 thread) "
                  f"{r['numpy_copy']:.1f}, torch ({r['threads']} threads) "
                  f"{r['torch_copy']:.1f} GB/s")
    print("yardsticks (best of the above): SGEMM "
          + (f"{sgemm:.1f} GFLOP/s" if sgemm else "-") + ", copy "
          + (f"{copy:.1f} GB/s" if copy else "-"))

    hdr = (f"{'prior':<6} {'T':>6} {'median ms':>10} {'min ms':>9} {'ns/token':>9} "
           f"{'x 1k':>5} {'rate':>14} {'% yard':>7} {'extra MiB':>9} "
           f"{'PyTorch ms':>11} {'femc x':>7} {'diff':>8} "
           f"{'IREE ms':>9} {'femc x':>7} {'diff':>8}")
    print("\nrate: effective GFLOP/s (linear, gla; % of SGEMM) or GB/s (aft, ssm; % of copy).")
    print("x 1k: time per token / that at the first T (the median over rounds of each "
          "round's own ratio). extra MiB: fem-run's peak RSS minus fem-run at T=64 minus "
          "inputs and outputs.")
    print("PyTorch: the authors' formulation in float32 (median of "
          f"{a.ref_reps} calls in each round, right after the row's femc launches; the "
          "median over rounds); femc x: the median over rounds of PyTorch / femc in the "
          "same round; diff: max|PyTorch - femc| / max|femc|.")
    print("IREE: the same formulation compiled by IREE for llvm-cpu, host CPU "
          "(bench/iree_scan.py; ssm: a jax.lax.scan of the recurrence), all cores, "
          "first round only; diff as for PyTorch.")
    print("Against the targets below: growth is the median of each round's own growth.\n")
    print(hdr)
    print("-" * len(hdr))
    first = {}
    for row in rows:
        prior, T, med, mn, threads, extra, ref, iree, _ = row
        per_tok = med * 1e6 / T
        first.setdefault(prior, row)
        rate, unit, share = rate_pct(prior, T, med, sgemm, copy)
        rcol = f"{rate:7.1f} GFLOP/s" if unit == "GFLOP/s" else f"{rate:10.1f} GB/s"
        pct = f"{share:6.1f}%" if share is not None else f"{'-':>7}"
        if "median_ms" in ref:
            x = ref.get("paired_x", ref["median_ms"] / med)
            rc = f"{ref['median_ms']:11.1f} {x:6.1f}x {ref['diff']:8.1e}"
        else:
            rc = f"  {ref['error']}"
        if "median_ms" in iree:
            rc += (f" {iree['median_ms']:9.1f} {iree['median_ms'] / med:6.1f}x "
                   f"{iree['diff']:8.1e}")
        elif iree is not ref:
            rc += f"  IREE: {iree['error']}"
        print(f"{prior:<6} {T:6d} {med:10.2f} {mn:9.2f} {per_tok:9.1f} "
              f"{growth(first[prior], row):5.2f} {rcol:>14} {pct} {extra:9.1f} {rc}")
    print(others)
    print(f"\nfemc on {rows[0][4] if rows else '?'} threads (fem-run default).")
    print(f"\nAgainst issue 8's targets (growth <= {GROWTH_MAX}x per token from 1k to "
          f"64k; linear, gla >= {SGEMM_MIN:g} % of SGEMM; aft, ssm: % of the copy rate, "
          f"no target; extra memory independent of T; PyTorch >= {REF_MIN:g}x at "
          f"T = {REF_T}):")
    for line in summary(rows, sgemm, copy):
        print(line)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The GPU benchmark as one table, from a scripts/gpu-check.sh log.

    python3 bench/gpu_table.py GPU-CHECK.LOG [--peak TFLOPS]

gpu-check.sh runs femc's bf16 kernels (fem-run --bench; also built with
--tile-q=128, the 'femc q128' rows) and PyTorch on the
same shapes (SDPA's flash kernel with dv = dk, and the FEM read the
reference's way: one SDPA over [V | exp(beta V - M)], then the free energy
and the gate) and logs one row each; this joins them per shape, beside the
GPU's dense bf16 peak, and marks issue 12's targets:

  peak   femc's FLOP rate >= 50 % of the dense bf16 peak (T >= 4096, not causal)
  ref    femc >= 2x faster than the reference formulation
  flash  femc within 1.5x of flash SDPA's time

FLOPs are benchmarks.md's for every column: (2 T^2 dk + 4 T^2 dv) B H,
halved when causal. The femc time is the back-to-back time per launch (the
device's time), as PyTorch's are CUDA-event times of back-to-back calls.
The peak comes from the GPU's name (--peak overrides; unknown: '?').
Standard library only: it runs on the GPU machine after gpu-check.sh.
"""
import argparse
import re
import sys

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors'
# data sheets, by a substring of the name nvidia-smi prints.
PEAKS = [
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("A10", 125.0),
]

SHAPE = r"bf16 d=(?P<d>\d+)(?P<causal> causal)? B=(?P<B>\d+) T=(?P<T>\d+)"
FEMC = re.compile(r"^\s*femc(?: (?P<variant>q\d+))?\s*\| " + SHAPE + r" \| (?P<rest>.*)$")
FEMC_B2B = re.compile(r"back to back (?P<ms>[\d.]+) ms per launch")
TORCH = re.compile(r"^\s*torch \| " + SHAPE +
                   r" \| SDPA flash (?P<flash>[\d.]+) ms .*; FEM reference formulation (?P<ref>[\d.]+) ms")
DEVICE = re.compile(r"^cuda:0 (?P<name>.+?) \(compute capability")


def peak_for(name):
    for key, tflops in PEAKS:
        if key in name:
            return tflops
    return None


def flops(d, causal, B, T, H=16):
    f = (2 * T * T * d + 4 * T * T * d) * B * H
    return f / 2 if causal else f


def parse(lines):
    """{shape: {'femc': ms, 'femc q128': ms, 'flash': ms, 'ref': ms}} and the
    device name ('femc qN': the rows of femc --tile-q=N)."""
    rows, device = {}, None
    for line in lines:
        m = DEVICE.match(line.strip())
        if m and device is None:
            device = m["name"]
        for pattern, kind in ((FEMC, "femc"), (TORCH, "torch")):
            m = pattern.match(line)
            if not m:
                continue
            key = (int(m["d"]), bool(m["causal"]), int(m["B"]), int(m["T"]))
            row = rows.setdefault(key, {})
            if kind == "femc":
                b2b = FEMC_B2B.search(m["rest"])
                if b2b:
                    variant = m["variant"]
                    row["femc" + (" " + variant if variant else "")] = float(b2b["ms"])
            else:
                row["flash"] = float(m["flash"])
                row["ref"] = float(m["ref"])
    return rows, device


def table(rows, peak):
    head = ("| d | causal | B | T | tile-q | femc ms | TFLOP/s | % peak | reference ms"
            " | reference / femc | flash SDPA ms | femc / flash | targets |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    lines = []
    for key in sorted(rows):
        r = rows[key]
        variants = sorted(v for v in r if v.startswith("femc"))
        for variant in variants or ["femc"]:
            lines.append((key, variant.split(" q")[1] if " q" in variant else "default",
                          r.get(variant), r))
    for key, tile_q, femc, r in lines:
        d, causal, B, T = key
        tflops = flops(d, causal, B, T) / (femc * 1e-3) / 1e12 if femc else None
        pct = 100 * tflops / peak if tflops and peak else None
        vs_ref = r["ref"] / femc if femc and "ref" in r else None
        vs_flash = femc / r["flash"] if femc and "flash" in r else None
        marks = []
        if pct is not None and T >= 4096 and not causal:
            marks.append("peak " + ("met" if pct >= 50 else "no"))
        if vs_ref is not None:
            marks.append("ref " + ("met" if vs_ref >= 2 else "no"))
        if vs_flash is not None:
            marks.append("flash " + ("met" if vs_flash <= 1.5 else "no"))

        def fmt(x, spec, suffix=""):
            return "-" if x is None else format(x, spec) + suffix
        out.append(f"| {d} | {'yes' if causal else 'no'} | {B} | {T} | {tile_q} | {fmt(femc, '.3f')}"
                   f" | {fmt(tflops, '.1f')} | {fmt(pct, '.1f')} | {fmt(r.get('ref'), '.3f')}"
                   f" | {fmt(vs_ref, '.2f', 'x')} | {fmt(r.get('flash'), '.3f')}"
                   f" | {fmt(vs_flash, '.1f', 'x')} | {', '.join(marks) or '-'} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="The GPU benchmark of a scripts/gpu-check.sh log as one table.")
    ap.add_argument("log", help="gpu-check.log")
    ap.add_argument("--peak", type=float,
                    help="the GPU's dense bf16 peak in TFLOP/s (default: by its name)")
    a = ap.parse_args(argv)
    if a.peak is not None and not a.peak > 0:
        ap.error(f"--peak must be positive, got {a.peak}")
    try:
        with open(a.log, encoding="utf-8", errors="replace") as f:
            rows, device = parse(f)
    except OSError as e:
        print(f"gpu_table: cannot read {a.log}: {e.strerror}", file=sys.stderr)
        return 1
    if not rows:
        print(f"gpu_table: no bench rows in {a.log}", file=sys.stderr)
        return 1
    peak = a.peak if a.peak is not None else (peak_for(device) if device else None)
    print(f"device: {device or '?'}; dense bf16 peak: "
          + (f"{peak:g} TFLOP/s" + ("" if a.peak is not None else " (by name)")
             if peak else "? (unknown GPU: give --peak)"))
    print(table(rows, peak))
    return 0


if __name__ == "__main__":
    sys.exit(main())

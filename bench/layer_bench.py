#!/usr/bin/env python3
"""Whole FEM layers: femc against PyTorch eager and against SGEMM + femc's read.

One run, one table (docs/benchmarks.md, "Layers"). The bench layer is issue
11's: B = 1, n_embd = 1024, 16 heads, dk = dv = 64, softmax prior, causal,
nn.Linear projections with biases (q, k, v, lambda, gate and the output),
weights in PyTorch's (out, in) layout, heads split by reshapes; no RoPE and
no mask. For each T it times

  femc layer     the compiled layer (fem-run --bench, all cores);
  femc read      the layer's FEM read alone (kernel <layer>_fem0);
  SGEMM          the six projections as torch.nn.functional.linear (fp32,
                 all cores) in this run;
  PyTorch eager  the same layer in PyTorch 2.x eager fp32: six nn.Linear
                 and the FEM read the reference's way with two flash SDPA
                 calls (one per half of the value panel [V~ | X]);

and reports femc layer / (SGEMM + femc read) (target <= 1.25) and PyTorch /
femc layer (target >= 2). It also times examples/fem_layer.mlir (D = 256,
4 heads, per-head weights, RoPE) and its read at the same T.

Without bench/.venv (bench/run.sh makes it) the PyTorch and SGEMM columns
say so and the femc columns still run. Run it on a quiet machine:

    bench/.venv/bin/python bench/layer_bench.py [--T 1024 4096] [--reps 5]
"""
import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAP, EPS, TINY = 40.0, 1e-6, 2.0 ** -126


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


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}{p.stdout}")
    return p.stdout


def fem_run_ms(fem_run, lib, kernel, T, reps, threads):
    out = run([fem_run, lib, "--kernel", kernel, "--dim", "B=1", "--dim", f"T={T}",
               "--bench", str(reps), "--threads", str(threads)])
    m = re.search(r"median ([0-9.]+) ms", out)
    if not m:
        raise RuntimeError(f"fem-run printed no median:\n{out}")
    return float(m.group(1))


def timed(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def torch_layer(T, D, H, d, reps):
    """(eager layer ms, six-projection SGEMM ms, threads, version)."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    E = H * d
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, T, D, generator=g)
    lins = [torch.nn.Linear(D, E) for _ in range(5)] + [torch.nn.Linear(E, D)]
    beta = (F.softplus(torch.randn(E, generator=g)) + EPS).view(1, 1, H, d)

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
        q, k, v, lam, gate = (l(x).view(1, T, H, d) for l in lins[:5])
        o = read(q, k, v, lam, gate)
        return lins[5](o.reshape(1, T, E))

    xs = x.view(T, D)
    os_ = torch.randn(T, E, generator=g)

    def sgemm():
        for l in lins[:5]:
            F.linear(xs, l.weight, l.bias)
        F.linear(os_, lins[5].weight, lins[5].bias)

    with torch.no_grad():
        return timed(layer, reps), timed(sgemm, reps), torch.get_num_threads(), torch.__version__


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--T", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="femc threads (0: all cores)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"),
                    help="where femc and fem-run are")
    ap.add_argument("--no-example", action="store_true", help="skip examples/fem_layer.mlir")
    ap.add_argument("--matmul-precision", default="auto",
                    choices=["auto", "f32", "bf16x3", "bf16x6"],
                    help="femc --matmul-precision for the projections (auto: bf16x6 "
                         "on AMX-BF16 hosts, else f32; docs/layers.md)")
    a = ap.parse_args(argv)
    femc, fem_run = os.path.join(a.bin, "femc"), os.path.join(a.bin, "fem-run")
    D, H, d = 1024, 16, 64
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "bench_layer.mlir")
        with open(src, "w") as f:
            f.write(layer_mlir("bench_layer", D, H, d))
        mp = "--matmul-precision=" + a.matmul_precision
        run([femc, mp, src, "-o", tmp])
        lib = os.path.join(tmp, "bench_layer.so")
        ex = None
        if not a.no_example:
            run([femc, mp, os.path.join(ROOT, "examples", "fem_layer.mlir"), "-o", tmp])
            ex = os.path.join(tmp, "fem_layer.so")
        print(f"# Layers: B=1, n_embd={D}, {H} heads, dk=dv={d}, softmax causal; "
              f"{len(os.sched_getaffinity(0))} cores, {a.reps} reps (median ms)")
        print("| layer | T | femc layer | femc read | SGEMM (6 proj.) | SGEMM + read | "
              "layer / (SGEMM + read) | PyTorch eager | PyTorch / femc |")
        print("|---|---|---|---|---|---|---|---|---|")
        for T in a.T:
            lay = fem_run_ms(fem_run, lib, "bench_layer", T, a.reps, a.threads)
            rd = fem_run_ms(fem_run, lib, "bench_layer_fem0", T, a.reps, a.threads)
            try:
                pt, sg, thr, ver = torch_layer(T, D, H, d, a.reps)
                cells = [f"{sg:.1f}", f"{sg + rd:.1f}", f"{lay / (sg + rd):.2f}",
                         f"{pt:.1f} (torch {ver}, {thr} thr.)", f"{pt / lay:.2f}"]
            except ImportError as e:
                cells = ["no torch", "", "", f"no torch ({e})", ""]
            print(f"| bench (1024, 16x64) | {T} | {lay:.1f} | {rd:.1f} | " + " | ".join(cells) + " |")
            if ex:
                el = fem_run_ms(fem_run, ex, "fem_layer", T, a.reps, a.threads)
                er = fem_run_ms(fem_run, ex, "fem_layer_fem0", T, a.reps, a.threads)
                print(f"| examples/fem_layer.mlir (256, 4x64, RoPE) | {T} | {el:.1f} | {er:.1f} "
                      f"| | | | | |")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

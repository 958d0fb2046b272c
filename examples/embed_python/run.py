#!/usr/bin/python3
"""Compile a FEM model with femc, run it from Python, check it.

    PYTHONPATH=build/python FEMC=build/bin/femc \\
        python3 examples/embed_python/run.py [--femc PATH] [--model FILE.mlir]
                                             [--B 2] [--T 256] [--seed 0]
                                             [--threads N] [--out DIR]

1. compiles the model (default examples/softmax_fem.mlir) with femc (from
   --femc, else $FEMC, else `femc` on PATH, else build/bin/femc);
2. loads NAME.so with the femc module and runs its kernel on seeded numpy
   inputs (kernel.run allocates the output; the destination-passing call
   kernel(..., out) writes into a given array);
3. prints a checksum of out (its sum, %.6e) and the largest error against
   the float64 numpy implementation in fem_reference.py.

Exit status: 0 when max|out - ref| <= 1e-4 * max|ref| (docs/semantics.md),
1 when it is not (or the output is not finite), 2 on a usage or setup error.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import fem_reference  # noqa: E402

try:
    import femc
except ImportError as error:
    sys.exit(f"run.py: cannot import femc ({error}); build it with "
             f"`ninja -C build femc_python` and set PYTHONPATH=build/python")


def find_femc(given):
    candidates = [given, os.environ.get("FEMC"), shutil.which("femc"),
                  os.path.join(ROOT, "build", "bin", "femc")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    sys.exit("run.py: no femc found: pass --femc PATH or set FEMC")


def compile_model(femc_path, model, out_dir):
    """Runs femc; returns the path of the kernel library it wrote."""
    subprocess.run([femc_path, model, "-o", out_dir], check=True)
    name = os.path.splitext(os.path.basename(model))[0]
    return os.path.join(out_dir, name + ".so")


def make_inputs(kernel, B, T, seed):
    """Seeded inputs for a bthd softmax kernel: N(0,1) for q, k, v, lam and
    gate, U(-1, 2) for beta_raw (beta from 0.3 to 2.1). Static extents come
    from the kernel, B and T from the arguments; dynamic head sizes are 8 and
    64 (E = H * dv)."""
    rng = np.random.default_rng(seed)
    extents = {"B": B, "T": T, "S": T}
    for arg in kernel.args:
        for name, size in zip(arg["dims"], arg["shape"]):
            if size is not None:
                extents.setdefault(name, size)
    extents.setdefault("H", 8)
    extents.setdefault("Hkv", extents["H"])
    extents.setdefault("dk", 64)
    extents.setdefault("dv", 64)
    extents.setdefault("E", extents["H"] * extents["dv"])
    inputs = {}
    for arg in kernel.args:
        if arg["role"] != "input":
            continue
        shape = tuple(extents[d] for d in arg["dims"])
        if arg["name"] == "beta_raw":
            inputs["beta_raw"] = rng.uniform(-1.0, 2.0, shape).astype(np.float32)
        else:
            inputs[arg["name"]] = rng.standard_normal(shape, dtype=np.float32)
    return inputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--femc", help="the femc compiler (default: $FEMC)")
    parser.add_argument("--model",
                        default=os.path.join(ROOT, "examples", "softmax_fem.mlir"))
    parser.add_argument("--B", type=int, default=2)
    parser.add_argument("--T", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="kernel threads (default: one per core)")
    parser.add_argument("--out", help="keep femc's files in this folder")
    args = parser.parse_args()

    femc_path = find_femc(args.femc)
    with tempfile.TemporaryDirectory(prefix="embed_python-") as tmp:
        out_dir = args.out or tmp
        library = compile_model(femc_path, args.model, out_dir)

        module = femc.load(library, threads=args.threads)
        if len(module.kernels) != 1:
            sys.exit(f"run.py: {library} has kernels {module.kernels}; "
                     f"this example expects one")
        kernel = module.kernel(module.kernels[0])
        print(f"{kernel.name}: {kernel.description}")
        for arg in kernel.args:
            print(f"  {arg['role']:6} {arg['name']:8} {arg['dtype']} "
                  f"{arg['shape']} ({','.join(arg['dims'])})")

        inputs = make_inputs(kernel, args.B, args.T, args.seed)
        start = time.perf_counter()
        out = kernel.run(**inputs)           # allocates out (numpy)
        elapsed = time.perf_counter() - start

        # Destination-passing: the same kernel writing into our array.
        out2 = np.full_like(out, np.nan)
        kernel(*[inputs[a["name"]] for a in kernel.args
                 if a["role"] == "input"], out2)

    if "mask" in inputs:
        sys.exit("run.py: the reference here covers kernels without a mask")
    # The kernel's structured fields (kernel ABI v2) say what it computes;
    # kernel.description is for humans only.
    if kernel.prior != "softmax" or kernel.layout != "bthd":
        sys.exit(f"run.py: the reference here covers softmax kernels in "
                 f"layout bthd; {kernel.name} has prior {kernel.prior}, "
                 f"layout {kernel.layout}")
    ref = fem_reference.softmax_fem(
        inputs["q"], inputs["k"], inputs["v"], inputs["beta_raw"],
        inputs["lam"], inputs["gate"],
        causal=kernel.causal, scale=kernel.scale, cap=kernel.cap,
        eps=kernel.eps)

    checksum = float(out.sum(dtype=np.float64))
    max_ref = float(np.abs(ref).max())
    max_err = float(np.abs(out.astype(np.float64) - ref).max())
    tolerance = 1e-4 * max_ref
    same = np.array_equal(out, out2)
    print(f"out {out.shape} {out.dtype}: {elapsed * 1e3:.2f} ms")
    print(f"checksum {checksum:.6e}")
    print(f"max |out - ref| = {max_err:.3e}, max |ref| = {max_ref:.3e}, "
          f"tolerance {tolerance:.3e}")
    print(f"run() and the destination-passing call agree: {same}")
    ok = np.isfinite(out).all() and max_err <= tolerance and same
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

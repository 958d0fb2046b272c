#!/usr/bin/env python3
"""A needle among many keys, on a device (test/gpu-run/CMakeLists.txt).

Every value is 0 but those of one key, which are --v-scale; the key mask (when
the kernel has one) keeps every key. The output is then tiny (about v-scale /
S) beside a free energy that selects the needle, and a read that rounds X or
l in 16 bits, or tilts by an uncentred shift, loses it: the tensor-core bf16
read erred 0.64 of max|out| this way before it took X as hi + lo bf16
(docs/gpu.md). The generated q, k, beta_raw, lam and gate stay as fem-run
makes them; fem-run --check compares with the double-precision reference.

  needle.py FEM_RUN LIBRARY --layout bhtd|bthd --needle K --v-scale X
            --tolerance TOL [--device cuda|cpu] -- FEM-RUN OPTIONS (--dim ...)

Exit status: fem-run's (0 pass, 3 check failed, 4 no CUDA device: a skip),
4 also when numpy is missing (said on stdout), 1 on a usage error.
"""
import argparse
import os
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fem_run")
    ap.add_argument("library")
    ap.add_argument("--layout", choices=("bhtd", "bthd"), required=True)
    ap.add_argument("--needle", type=int, required=True,
                    help="the key that holds the values (may be negative: from the end)")
    ap.add_argument("--v-scale", type=float, required=True)
    ap.add_argument("--tolerance", required=True)
    ap.add_argument("--device", default="cuda")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a = ap.parse_args(argv[:cut])
    rest = argv[cut + 1:]  # fem-run's own options, e.g. --dim B=1 --dim T=16
    try:
        import numpy as np
    except ImportError:
        print("needle: skipped: numpy is not importable by", sys.executable)
        return 4

    with tempfile.TemporaryDirectory(prefix="femc-needle-") as tmp:
        base = [a.fem_run, a.library, "--device", a.device] + rest
        # The generated inputs, saved (the run itself checks them too).
        r = subprocess.run(base + ["--save-inputs", tmp])
        if r.returncode != 0:
            return r.returncode
        vpath = os.path.join(tmp, "v.npy")
        v = np.load(vpath)
        keys = v.shape[2] if a.layout == "bhtd" else v.shape[1]
        k = a.needle if a.needle >= 0 else keys + a.needle
        if not 0 <= k < keys:
            print(f"needle: key {a.needle} outside the {keys} keys", file=sys.stderr)
            return 1
        needle = np.zeros(v.shape, np.float32)
        if a.layout == "bhtd":
            needle[:, :, k, :] = a.v_scale
        else:
            needle[:, k, :, :] = a.v_scale
        np.save(vpath, needle)  # fem-run rounds a float file to v's format
        mpath = os.path.join(tmp, "mask.npy")
        if os.path.exists(mpath):
            np.save(mpath, np.ones(np.load(mpath).shape, np.int8))
        print(f"needle: v = 0 but key {k} of {keys}, {a.v_scale}; every key kept",
              flush=True)
        r = subprocess.run(base + ["--inputs", tmp, "--check",
                                   "--tolerance", a.tolerance])
        return r.returncode


if __name__ == "__main__":
    sys.exit(main())

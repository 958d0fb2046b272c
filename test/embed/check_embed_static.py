#!/usr/bin/python3
"""Runs examples/embed_c's embed_static and checks what it computed.

    check_embed_static.py EMBED_STATIC [--B 2] [--T 100] [--seed 1]

embed_static makes its inputs with a 64-bit LCG (see embed_static.c), runs
the linked softmax_fem kernel through libfemrt and through the serial entry
point (and fails unless both agree bit for bit), prints the checksum and
writes the output. This script makes the same inputs with the same LCG,
computes the softmax FEM read in float64 (examples/embed_python/
fem_reference.py), and checks

  - every element: max |out - ref| <= 1e-4 * max |ref| (docs/semantics.md);
  - the printed checksum: |checksum - sum(ref)| <= 1e-4 * sum |ref|;
  - that the program does not load libfemrt.so (it links libfemrt.a).

Exit status 0 on success, 1 on any failure.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "examples", "embed_python"))
import fem_reference  # noqa: E402

H, DK, DV = 8, 64, 64
MASK64 = (1 << 64) - 1


def lcg_uniform(seed, count):
    """count draws of embed_static.c's lcgNext(), as float64."""
    state = seed
    out = np.empty(count, dtype=np.float64)
    a, c = 6364136223846793005, 1442695040888963407
    for i in range(count):
        state = (state * a + c) & MASK64
        out[i] = (state >> 40) / 16777216.0
    return out


def make_inputs(B, T, seed):
    tokens = B * T * H * DK
    u = lcg_uniform(seed, 5 * tokens + H * DV)
    pos = 0

    def take(n, scale, shift, shape):
        nonlocal pos
        x = (scale * u[pos:pos + n] + shift).astype(np.float32)
        pos += n
        return x.reshape(shape)

    shape = (B, T, H, DK)
    q = take(tokens, 4.0, -2.0, shape)
    k = take(tokens, 4.0, -2.0, shape)
    v = take(tokens, 4.0, -2.0, shape)
    beta_raw = take(H * DV, 3.0, -1.0, (H * DV,))
    lam = take(tokens, 2.0, -1.0, shape)
    gate = take(tokens, 2.0, -1.0, shape)
    return q, k, v, beta_raw, lam, gate


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("program")
    parser.add_argument("--B", type=int, default=2)
    parser.add_argument("--T", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, "out.f32")
        run = subprocess.run([args.program, str(args.B), str(args.T),
                              str(args.seed), out_path],
                             capture_output=True, text=True)
        print(run.stdout + run.stderr, end="")
        if run.returncode != 0:
            print(f"FAIL: {args.program} exited with {run.returncode}")
            return 1
        out = np.fromfile(out_path, dtype=np.float32)
    checksums = [line.split("checksum")[1].strip()
                 for line in run.stdout.splitlines() if "checksum" in line]
    if len(checksums) != 1:
        print("FAIL: no checksum line in the output")
        return 1
    checksum = float(checksums[0])

    ref = fem_reference.softmax_fem(*make_inputs(args.B, args.T, args.seed))
    if out.size != ref.size:
        print(f"FAIL: {out.size} output elements, expected {ref.size}")
        return 1
    out = out.reshape(ref.shape).astype(np.float64)
    max_ref = np.abs(ref).max()
    max_err = np.abs(out - ref).max()
    print(f"max |out - ref| = {max_err:.3e}, max |ref| = {max_ref:.3e}")
    if not max_err <= 1e-4 * max_ref:
        failures.append("the output differs from the float64 reference")

    ref_sum, abs_sum = ref.sum(), np.abs(ref).sum()
    print(f"checksum {checksum:.6e}, reference {ref_sum:.6e}")
    if not abs(checksum - ref_sum) <= 1e-4 * abs_sum:
        failures.append("the checksum differs from the reference's")

    readelf = shutil.which("readelf")
    if readelf:
        dynamic = subprocess.run([readelf, "-d", args.program],
                                 capture_output=True, text=True).stdout
        if "libfemrt" in dynamic:
            failures.append("the program needs libfemrt.so")

    for failure in failures:
        print(f"FAIL: {failure}")
    if not failures:
        print("PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

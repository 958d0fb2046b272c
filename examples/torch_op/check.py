#!/usr/bin/python3
"""Check torch.ops.femc.softmax_fem against the FEM authors' formulation.

    PYTHONPATH=build/python FEMC=build/bin/femc \\
        python3 examples/torch_op/check.py [--femc PATH] [--library NAME.so]
                                           [--B 2] [--T 200] [--seed 0]
                                           [--vectors DIR]

Compiles examples/softmax_fem.mlir with femc (--femc, else $FEMC, else
`femc` on PATH, else build/bin/femc) unless --library names a compiled one,
registers it as a PyTorch custom op (fem_op.py), runs it on seeded torch
tensors and compares it with `fem_reference`, the softmax FEM read written in
PyTorch the way its authors write it, evaluated in float64. With --vectors
(e.g. test/data/vectors/softmax_causal) the reference itself is first checked
against the authors' own output.

Exit status: 0 when max|op - ref| <= 1e-4 * max|ref|; 1 when not; 77 when
PyTorch is not installed or older than 2.4 (no
torch.library.custom_op; ctest's SKIP_RETURN_CODE); 2 on a setup error
(a bad option, a library or vectors folder that cannot be read, femc
failing, a kernel that refuses the inputs), with a one-line message.
"""

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77

try:
    import torch
    import torch.nn.functional as F
except ImportError as error:
    print(f"SKIP: PyTorch is not installed ({error})")
    sys.exit(SKIP)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def fem_reference(q, k, v, beta_raw, lam, gate, causal=True, cap=40.0,
                  eps=1e-6):
    """The softmax FEM read as the authors' PyTorch computes it (bthd), in
    the dtype of the inputs: one read of the concatenation [V~ | X]."""
    B, T, H, dk = q.shape
    S, Hkv, dv = v.shape[1:]
    if Hkv != H:                                           # grouped heads
        k = k.repeat_interleave(H // Hkv, dim=2)
        v = v.repeat_interleave(H // Hkv, dim=2)
    beta = (F.softplus(beta_raw) + eps).view(1, 1, H, dv)  # temperature
    v_clip = torch.maximum(torch.minimum(v, cap / beta), -cap / beta)
    M = (beta * v_clip).amax(dim=1, keepdim=True)          # over ALL keys
    X = torch.exp(beta * v_clip - M)
    U = torch.cat([v_clip, X], dim=-1)                     # [V~ | X]
    scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(dk)
    if causal:
        future = torch.ones(T, S, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    attn = scores.softmax(dim=-1)
    R = torch.einsum("bhts,bshc->bthc", attn, U)           # one matmul
    mu, Z = R[..., :dv], R[..., dv:]
    log_Z = torch.where(Z > 0, torch.log(Z), torch.full_like(Z, -math.inf))
    F_read = (torch.logaddexp(log_Z, math.log(2.0 ** -126) - M) + M) / beta
    lam_s = torch.sigmoid(lam)
    g = F.softplus(gate) + eps
    g = g / g.norm(dim=-1, keepdim=True).clamp_min(1e-5) * math.sqrt(dv)
    return g * ((1 - lam_s) * mu + lam_s * F_read)


def find_femc(given):
    for path in (given, os.environ.get("FEMC"), shutil.which("femc"),
                 os.path.join(ROOT, "build", "bin", "femc")):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    print("check.py: no femc found: pass --femc PATH or set FEMC")
    sys.exit(2)


def _count(text):
    """A positive whole number (argparse type of --B and --T)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, found {value}")
    return value


def _setup_error(message):
    print(f"check.py: error: {message}")
    return 2


# The float64 reference holds B*H*T*T scores (and as many weights): more
# than this many bytes is refused before anything is allocated.
REFERENCE_BYTES = 4 << 30


def check_vectors(directory):
    """The reference against the authors' own output (their float32)."""
    import numpy as np
    load = lambda name: torch.from_numpy(  # noqa: E731
        np.load(os.path.join(directory, name + ".npy"))).double()
    ref = fem_reference(*(load(n) for n in
                          ("q", "k", "v", "beta_raw", "lam", "gate")))
    authors = load("out")
    rel = ((ref - authors).abs().max() / authors.abs().max()).item()
    print(f"reference vs the authors' vectors ({directory}): relative "
          f"error {rel:.3e}")
    return rel <= 1e-4


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--femc")
    parser.add_argument("--library", help="a compiled softmax_fem.so")
    parser.add_argument("--B", type=_count, default=2)
    parser.add_argument("--T", type=_count, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vectors", help="a softmax_causal vectors folder")
    args = parser.parse_args()
    H = 8
    scores = args.B * H * args.T * args.T * 8
    if scores > REFERENCE_BYTES:
        return _setup_error(
            f"--B {args.B} --T {args.T}: the float64 reference would hold "
            f"B*H*T*T scores of {scores:.3g} bytes (at most "
            f"{REFERENCE_BYTES:.3g}); use a smaller B or T")
    try:
        torch.manual_seed(args.seed)
    except (RuntimeError, OverflowError, ValueError) as error:
        return _setup_error(f"--seed {args.seed}: {error}")

    if args.vectors:
        try:
            agrees = check_vectors(args.vectors)
        except (OSError, ValueError, RuntimeError, IndexError) as error:
            return _setup_error(f"--vectors {args.vectors}: {error}")
        if not agrees:
            print("FAIL: the PyTorch reference does not reproduce the "
                  "vectors")
            return 1

    sys.path.insert(0, HERE)
    try:
        import femc
        import fem_op
    except ImportError as error:       # PyTorch < 2.4: no custom_op
        print(f"SKIP: {error}")
        return SKIP

    with tempfile.TemporaryDirectory(prefix="torch_op-") as tmp:
        library = args.library
        if not library:
            model = os.path.join(ROOT, "examples", "softmax_fem.mlir")
            femc_path = find_femc(args.femc)
            try:
                subprocess.run([femc_path, model, "-o", tmp], check=True,
                               stdout=subprocess.DEVNULL)
            except (OSError, subprocess.CalledProcessError) as error:
                return _setup_error(f"compiling {model} with {femc_path} "
                                    f"failed ({error})")
            library = os.path.join(tmp, "softmax_fem.so")
        try:
            op = fem_op.register(library, "softmax_fem")
        except (femc.Error, ValueError, KeyError, TypeError) as error:
            return _setup_error(f"--library {library}: {error}")
    print(f"registered torch.ops.femc.softmax_fem: "
          f"{fem_op.get_kernel('softmax_fem').description}")

    B, T, d = args.B, args.T, 64
    q, k, v, lam, gate = (torch.randn(B, T, H, d) for _ in range(5))
    beta_raw = torch.rand(H * d) * 3 - 1                   # U(-1, 2)
    inputs = (q, k, v, beta_raw, lam, gate)

    # Through the dispatcher, as a model would call it (op is
    # torch.ops.femc.softmax_fem).
    try:
        with torch.no_grad():
            out = op(*inputs)
    except femc.Error as error:
        return _setup_error(f"the kernel refused the inputs: {error}")
    ref = fem_reference(*(t.double() for t in inputs))

    max_ref = ref.abs().max().item()
    max_err = (out.double() - ref).abs().max().item()
    tolerance = 1e-4 * max_ref
    print(f"out {tuple(out.shape)} {out.dtype}, checksum "
          f"{out.double().sum().item():.6e}")
    print(f"max |op - ref| = {max_err:.3e}, max |ref| = {max_ref:.3e}, "
          f"tolerance {tolerance:.3e}")
    ok = bool(torch.isfinite(out).all()) and max_err <= tolerance
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

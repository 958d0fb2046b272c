#!/usr/bin/python3
"""Writes the seed corpora of test/fuzz/corpus/ from the repository's own
examples and tests (run from anywhere; needs numpy for the .npy seeds).

  fem_opt, femc_driver: examples/*.mlir and each `// -----` piece of the
      .mlir tests in test/dialect and test/passes, plus a few pieces with a
      `// fuzz:` options line;
  npy: small .npy files of every dtype the reader accepts, 0-d, empty, v2.0
      and v3.0 headers, and a few it must refuse.
The femrt_launch seeds are byte programs kept by hand (see docs/fuzzing.md).
Existing seed files of the same name are overwritten; others are kept.
"""
import io
import os
import re
import struct

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
corpus = os.path.join(root, "test", "fuzz", "corpus")


def pieces(path):
    text = open(path).read()
    text = "\n".join(l for l in text.splitlines() if not l.startswith("// RUN:"))
    for i, piece in enumerate(re.split(r"^// -----\s*$", text, flags=re.M)):
        if "func.func" in piece or "module" in piece:
            yield i, piece.strip() + "\n"


def write(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(d, name), mode) as f:
        f.write(data)


def mlir_seeds():
    sources = [os.path.join(root, "examples", f)
               for f in sorted(os.listdir(os.path.join(root, "examples")))
               if f.endswith(".mlir")]
    for sub in ("dialect", "passes"):
        d = os.path.join(root, "test", sub)
        sources += [os.path.join(d, f) for f in sorted(os.listdir(d))
                    if f.endswith(".mlir")]
    for path in sources:
        stem = os.path.splitext(os.path.basename(path))[0]
        group = os.path.basename(os.path.dirname(path))
        for i, piece in pieces(path):
            name = f"{group}-{stem}-{i}.mlir"
            write("fem_opt", name, piece)
            if "fem.mixer" in piece or "fem.fused_read" in piece:
                write("femc_driver", name, piece)
    example = open(os.path.join(root, "examples", "softmax_fem.mlir")).read()
    for opts in ("target=avx512 vec=16", "target=generic tile-q=16 tile-k=8",
                 "tile-q=7 tile-k=0 vec=3"):
        name = "options-" + re.sub(r"[^a-z0-9]+", "-", opts) + ".mlir"
        write("fem_opt", name, f"// fuzz: {opts}\n{example}")
        write("femc_driver", name, f"// fuzz: {opts}\n{example}")


def npy_seeds():
    import numpy as np
    arrays = {
        "f4-2x3": np.arange(6, dtype="<f4").reshape(2, 3),
        "f8-3": np.array([1.5, -2.0, np.inf], dtype="<f8"),
        "f2-4": np.array([1, 0.5, -0.0, 65504], dtype="<f2"),
        "b1-2x2": np.array([[True, False], [False, True]]),
        "i1-3": np.array([-1, 0, 7], dtype="i1"),
        "u1-3": np.array([0, 1, 255], dtype="u1"),
        "i4-2": np.array([1, -2], dtype="<i4"),
        "i8-2": np.array([1, -2], dtype="<i8"),
        "f4-0d": np.array(3.25, dtype="<f4"),
        "f4-empty": np.zeros((0, 4), dtype="<f4"),
    }
    for name, a in arrays.items():
        buf = io.BytesIO()
        np.save(buf, a)
        write("npy", name + ".npy", buf.getvalue())
    # Version 2.0 and 3.0 headers (4-byte header length).
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
    for major in (2, 3):
        h = header.encode()
        pad = (-(12 + len(h) + 1)) % 64
        h = h + b" " * pad + b"\n"
        data = b"\x93NUMPY" + bytes([major, 0]) + struct.pack("<I", len(h)) + h
        write("npy", f"v{major}-f4-2.npy", data + struct.pack("<2f", 1.0, 2.0))
    # Refused: big-endian, Fortran order, object dtype, truncated data.
    buf = io.BytesIO()
    np.save(buf, np.arange(3, dtype=">f4"))
    write("npy", "bad-big-endian.npy", buf.getvalue())
    buf = io.BytesIO()
    np.save(buf, np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    write("npy", "bad-fortran.npy", buf.getvalue())
    buf = io.BytesIO()
    np.save(buf, np.arange(8, dtype="<f4"))
    write("npy", "bad-truncated.npy", buf.getvalue()[:-5])


if __name__ == "__main__":
    mlir_seeds()
    npy_seeds()

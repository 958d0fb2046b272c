"""A random numerical fuzzer of femc's kernels: seeded random problems of
every prior against test/python/spec_ref.py, the independent float64
reading of /work/shared/design/semantics.md.

Each case is a dict of parameters (JSON): the kernel, the extents, a data
seed and the knobs its inputs are drawn with. A case is drawn from
(seed, index), so `--seed S --index I` replays it while the generator is
unchanged, and `--params JSON` replays it for good (FIXED_CASES holds the
regressions that way). What it draws:

* T from 1 to ~3000: 1-3, primes, the edges of the scan chunks (8, 16,
  64) and softmax tiles (16, 192, 384) and of the runtime's own split of
  long launches (1024), odd lengths; S != T for non-causal softmax/linear;
  B, H, grouped heads (Hkv | H), dk != dv from 1 to ~80 (channel blocks and
  their rests), aft's dk | 2·dv;
* the kernels: every prior, causal and not (gla, aft, ssm must stay
  causal), key masks, `bthd` and `bhtd`, default and small tiles, f32/f16/
  bf16 storage, ssm N = 1, 2, 4, 8, 16, carried states (segments, decode
  steps) and launches split by the runtime (FEMC_SCAN_SEGMENTS), dynamic
  and static extents;
* masks: padding at the start, middle, end, random densities, a batch with
  every key padded, every key of every batch padded, one key, masked keys
  holding |v| = 1e30 and |k| = 1e3;
* beta_raw from -30 to 30 (constant, uniform ranges, both ends in one
  head), |v| from 1e-3 to 1e4, values on the clip's edge ±cap/β, |q.k|
  up to a hard max, q and k < 0 (φ = eps), λ and gate logits at ±30, at
  softplus's edges and at 1e20, gla decays saturating C at -60, ssm steps
  and rates at their extremes, aft keys over ±100; beta_raw at ±1e4;
* the mixer's `cap` (1e-5 to 43), `eps` (1e-12 to 1) and softmax `scale`
  off their defaults (dynamic kernels and random static ones), and femc's
  tile options (--tile-q, --tile-k, --vec) on every other static round;
* since 2026-12-03 (`_widen`, its own generator: other draws unchanged):
  long narrow non-causal softmax/linear cases (T = S = 2048 to 8192, B = H
  = 1, beta·sigma_v from 1e-3 to 0.5), v = 0 exactly, ssm v around -50 to
  -1e3 (sigmoid underflows); `--wide-only` draws the first alone.

The kernels come from three libraries, each compiled once with every extent
dynamic, so thousands of random shapes run per compile: spec_matrix.py's
(FEMC_SPEC_KERNELS), spec_adversarial.py's (FEMC_SPEC_ADVERSARIAL_KERNELS)
and this file's own (spec_fuzz_kernels.mlir, FEMC_SPEC_FUZZ_KERNELS: bhtd
with small tiles and states, other tiles, vec = 4, ssm N = 2 and 8, states
with other dk, f16/bf16 states). `--static K` adds K kernels with random
static extents per round (compiled by femc, cached by their text).

The comparison: max|femc - spec| <= tol · max|spec| (docs/semantics.md,
"Tolerance": 1e-4 for f32, 2e-3 for f16, 1e-2 for bf16, the reference
computed on the rounded inputs; f16 results beyond 65504 must be ±Inf);
a segment's rows against the reference on the prefix up to its end.
`--cref P` also runs `fem-run --check` (the double C++ reference) on a
fraction P of the one-shot cases.

Every failure prints one line with the reproducer and the case:

    FAIL seed=7 index=42 linear_causal_mask_f32 T=129 ...: <error>
      repro: python3 test/python/spec_fuzz.py --params '{...}'

Run: ctest's python.spec_fuzz (a short seeded run plus FIXED_CASES), or
scripts/fuzz.sh spec [SECONDS] (docs/fuzzing.md), or by hand:

    PYTHONPATH=build/python /usr/bin/python3 test/python/spec_fuzz.py \\
        --time 600 --seed 1
    /usr/bin/python3 test/python/spec_fuzz.py --write-kernels
"""

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import spec_adversarial as adv  # noqa: E402  (kernels, knobs, compare)
import spec_matrix as sm  # noqa: E402  (its kernels, storage)
import spec_ref  # noqa: E402

TOLERANCE = adv.TOLERANCE
FUZZ_MLIR = os.path.join(HERE, "spec_fuzz_kernels.mlir")
PER_POS = ("q", "k", "v", "lam", "gate", "decay", "delta", "Bs", "Cs")
HEADED = ("q", "k", "v", "lam", "gate", "decay")  # bhtd swaps t and h
SCANS = ("linear", "gla", "aft", "ssm")

# ---------------------------------------------------------------- kernels


def _fuzz_kernels():
    """The kernels the other two libraries lack."""
    K = adv.Kernel
    ks = []
    # bhtd with small tiles, every prior
    ks += [K("softmax", True, mask=True, tiles=(16, 16, 8), layout="bhtd"),
           K("softmax", False, mask=True, tiles=(16, 16, 8), layout="bhtd"),
           K("linear", True, mask=True, tiles=(8, 8, 8), layout="bhtd"),
           K("linear", False, mask=True, tiles=(8, 8, 8), layout="bhtd"),
           K("gla", tiles=(8, 8, 8), layout="bhtd"),
           K("aft", tiles=(8, 8, 8), layout="bhtd"),
           K("ssm", N=2, tiles=(8, 8, 8), layout="bhtd")]
    # other tiles and vec = 4
    ks += [K("softmax", True, mask=True, tiles=(48, 32, 8)),
           K("softmax", False, mask=True, tiles=(32, 16, 4)),
           K("linear", True, mask=True, tiles=(16, 16, 8)),
           K("linear", False, tiles=(32, 8, 4)),
           K("gla", tiles=(32, 16, 8)),
           K("aft", tiles=(16, 32, 8)),
           K("ssm", N=8, tiles=(16, 16, 8)),
           K("ssm", N=2)]
    # states with other dk / N, layouts, default tiles
    ks += [K("linear", True, state=True, dk=1),
           K("linear", False, state=True, dk=8, layout="bhtd"),
           K("gla", state=True, dk=8),
           K("gla", state=True, dk=3, tiles=(8, 8, 8), layout="bhtd"),
           K("aft", state=True, dk=2),
           K("aft", state=True, dk=1, tiles=(8, 8, 8)),
           K("aft", state=True, dk=6, tiles=(8, 8, 8), layout="bhtd"),
           K("ssm", state=True, N=2, layout="bhtd"),
           K("ssm", state=True, N=8, tiles=(16, 16, 8))]
    # f16 / bf16: bhtd and states
    for dtype in ("f16", "bf16"):
        ks += [K("softmax", False, mask=True, dtype=dtype, layout="bhtd"),
               K("linear", True, mask=True, dtype=dtype, layout="bhtd",
                 tiles=(8, 8, 8)),
               K("gla", dtype=dtype, layout="bhtd"),
               K("aft", dtype=dtype, layout="bhtd"),
               K("ssm", dtype=dtype, N=4, layout="bhtd"),
               K("linear", True, dtype=dtype, state=True, dk=4,
                 tiles=(8, 8, 8)),
               K("gla", dtype=dtype, state=True, dk=4, tiles=(8, 8, 8)),
               K("ssm", dtype=dtype, state=True, N=4, tiles=(8, 8, 8))]
    # the `cap`, `eps` and `scale` attributes away from their defaults
    # (docs/dialect.md, "Attribute ranges": cap in [1e-5, 43], eps in
    # [1e-30, 1e30]; the draws keep eps <= 1 and beta >= 1e-12, where the
    # float64 reading stays exact, see spec_ref.py)
    ks += [K("softmax", True, mask=True, cap=1e-5, eps=1e-10, scale=0.01),
           K("softmax", False, mask=True, cap=43.0, eps=0.3, scale=3.0,
             tiles=(16, 16, 8)),
           K("softmax", True, cap=2.0, eps=1e-8, layout="bhtd"),
           K("linear", True, mask=True, cap=0.5, eps=1e-3),
           K("linear", False, mask=True, cap=43.0, eps=1e-12,
             tiles=(8, 8, 8)),
           K("linear", True, state=True, dk=4, cap=5.0, eps=1e-4,
             tiles=(8, 8, 8)),
           K("gla", cap=43.0, eps=1e-8),
           K("gla", cap=2.0, eps=0.1, tiles=(8, 8, 8), layout="bhtd"),
           K("gla", state=True, dk=4, cap=1e-3, eps=1e-10, tiles=(8, 8, 8)),
           K("aft", cap=43.0, eps=1e-9),
           K("aft", cap=0.01, eps=1.0, tiles=(8, 8, 8)),
           K("aft", state=True, dk=2, cap=20.0, eps=1e-7),
           K("ssm", N=16, cap=43.0, eps=1e-8),
           K("ssm", N=1, cap=1e-3, eps=0.05, tiles=(8, 8, 8)),
           K("ssm", state=True, N=2, cap=43.0, eps=1e-10, tiles=(8, 8, 8))]
    return ks


FUZZ_KERNELS = _fuzz_kernels()


def kernels_text():
    return ("// Generated by test/python/spec_fuzz.py --write-kernels: the "
            "kernels of the\n// numerical fuzzer that spec_kernels.mlir and "
            "spec_adversarial_kernels.mlir lack.\n\n"
            + "\n".join(k.mlir() for k in FUZZ_KERNELS))


def _matrix_kernels():
    """spec_matrix.py's kernels (spec_kernels.mlir) as adv.Kernel."""
    out = []
    for prior, causal, mask, layout, dtype in sm._variants():
        k = adv.Kernel(prior, causal, mask=mask, dtype=dtype, layout=layout,
                       N=sm.N_STATE)
        k.name = sm._kernel_name(prior, causal, mask, layout, dtype)
        out.append(k)
    return out


# library key -> (environment variable, model, build dir name, kernels)
LIBRARIES = {
    "matrix": ("FEMC_SPEC_KERNELS", sm.KERNELS_MLIR, "spec_kernels",
               _matrix_kernels()),
    "adversarial": ("FEMC_SPEC_ADVERSARIAL_KERNELS", adv.KERNELS_MLIR,
                    "spec_adversarial", list(adv.KERNELS.values())),
    "fuzz": ("FEMC_SPEC_FUZZ_KERNELS", FUZZ_MLIR, "spec_fuzz",
             FUZZ_KERNELS),
}


def _tool(env, name):
    path = os.environ.get(env) or os.path.join(ROOT, "build", "bin", name)
    if not os.access(path, os.X_OK):
        sys.exit(f"spec_fuzz.py: {name} not found (set {env})")
    return path


def _cache_dir():
    d = os.environ.get("FEMC_SPEC_FUZZ_CACHE") or os.path.join(
        tempfile.gettempdir(), f"femc-spec-fuzz-{os.getuid()}")
    os.makedirs(d, exist_ok=True)
    return d


def compile_text(femc_bin, text, stem, options=()):
    """Compiles a model text with femc (and its `options`) into the cache
    (keyed by the text, the options and the femc binary); returns the
    library's path."""
    st = os.stat(femc_bin)
    key = hashlib.sha256(f"{femc_bin}:{st.st_mtime_ns}:{st.st_size}\n"
                         f"{list(options)}{text}".encode()).hexdigest()[:16]
    out = os.path.join(_cache_dir(), f"{stem}-{key}")
    lib = os.path.join(out, f"{stem}.so")
    if not os.path.isfile(lib):
        os.makedirs(out, exist_ok=True)
        model = os.path.join(out, f"{stem}.mlir")
        with open(model, "w") as f:
            f.write(text)
        env = dict(os.environ)
        env.setdefault("FEMC_INCLUDE_DIR",
                       os.path.join(ROOT, "runtime", "include"))
        r = subprocess.run([femc_bin, model, "-o", out, *options],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"femc failed on {model}:\n{r.stderr}")
    return lib


def library_path(key, femc_bin):
    env, model, dirname, _ = LIBRARIES[key]
    path = os.environ.get(env)
    if path:
        if not os.path.isfile(path):
            sys.exit(f"spec_fuzz.py: {env}={path} does not exist")
        return path
    stem = os.path.splitext(os.path.basename(model))[0]
    built = os.path.join(ROOT, "build", "test", "python", dirname,
                         f"{stem}.so")
    with open(model) as f:
        text = f.read()
    if os.path.isfile(built) and os.path.getmtime(built) >= os.path.getmtime(
            model):
        return built
    return compile_text(femc_bin, text, stem)


class Context:
    """The loaded libraries, the tools, a scratch folder."""

    def __init__(self, libraries=tuple(LIBRARIES)):
        import femc  # build/python

        self.femc = femc
        self.femc_bin = _tool("FEMC", "femc")
        self.fem_run_bin = _tool("FEM_RUN", "fem-run")
        self.kernels = {}  # name -> (Kernel, library path, module)
        self.compile_s = 0.0
        for key in libraries:
            t0 = time.time()
            path = library_path(key, self.femc_bin)
            self.compile_s += time.time() - t0
            self.add_library(path, LIBRARIES[key][3])
        self.workdir = tempfile.mkdtemp(prefix="spec-fuzz-")

    def add_library(self, path, kernels):
        module = self.femc.load(path)
        for k in kernels:
            self.kernels[k.name] = (k, path, module)

    def add_static(self, kernels, options=()):
        """Compiles kernels with static extents (one library, cached), with
        femc's `options` (e.g. --tile-q)."""
        t0 = time.time()
        text = "".join(k.mlir() + "\n" for k in kernels)
        stem = "static_" + hashlib.sha256(
            f"{list(options)}{text}".encode()).hexdigest()[:8]
        path = compile_text(self.femc_bin, text, stem, options)
        self.compile_s += time.time() - t0
        self.add_library(path, kernels)
        return time.time() - t0


# ---------------------------------------------------------------- drawing

PRIMES = [5, 7, 11, 13, 17, 31, 37, 61, 97, 127, 131, 191, 193, 251, 257,
          383, 389, 509, 521, 1021, 1031, 1543, 2053, 3001]
EDGES = [8, 9, 15, 16, 17, 63, 64, 65, 127, 128, 129, 192, 193, 255, 256,
         384, 385, 1023, 1024, 1025, 2048, 2049]
# elements of the float64 reference's largest (B, H, T, S) array
REF_BUDGET = 3e6


def _draw_T(rng):
    r = rng.random()
    if r < 0.15:
        return int(rng.integers(1, 4))
    if r < 0.4:
        return int(rng.choice(PRIMES))
    if r < 0.65:
        return int(rng.choice(EDGES))
    return int(np.exp(rng.uniform(0.0, np.log(3000.0)))) | 1


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _pick(rng, items):
    return items[int(rng.integers(len(items)))]


def draw_case(rng, kern, max_T=3000, wide_T=8192, only=None):
    """The parameters of one random case for kernel `kern` (JSON-able).
    The draws added on 2026-12-03 (`_widen`) come from a generator of their
    own, seeded with the case's data seed, so that every other draw of a
    case is what it was before; `wide_T` bounds their sequences (0: none),
    `only` (a name of DRAWS) draws that one whenever the kernel can."""
    prior = kern.prior
    keyed = prior in ("softmax", "linear")
    p = {"kernel": kern.name, "seed": int(rng.integers(2 ** 31))}
    if getattr(kern, "random_static", False):
        # how to compile it, so that --params replays it anywhere
        p["compile"] = dict(prior=prior, causal=kern.causal,
                            mask=kern.mask, dtype=kern.dtype,
                            tiles=kern.tiles, N=kern.N,
                            shape=list(kern.shape), layout=kern.layout)
        p["compile"].update(attrs(kern))
        if getattr(kern, "femc_options", None):
            p["femc_options"] = list(kern.femc_options)
    if kern.shape:
        B, T, H, Hkv, dk, dv = kern.shape
    else:
        T = min(_draw_T(rng), max_T)
        if kern.state:
            T = max(T, 2)
        S = T
        if keyed and not kern.causal and not kern.state and rng.random() < .4:
            S = min(_draw_T(rng), max_T)
        per_head = T * S if prior in ("softmax", "linear", "gla") else T * 8
        # heads and batch within the reference's budget
        cap_bh = max(1, int(REF_BUDGET / max(per_head, 1)))
        B = int(rng.integers(1, 4))
        B = max(1, min(B, cap_bh))
        Hkv = 1 if prior == "ssm" else int(_pick(rng, [1, 1, 2, 3]))
        H = Hkv * int(_pick(rng, [1, 1, 2, 4]))
        while B * H > cap_bh and H > 1:
            H //= 2
            Hkv = max(1, min(Hkv, H)) if prior != "ssm" else 1
            while H % Hkv:
                Hkv -= 1
        if prior == "ssm":
            Hkv = H  # no keys: v has the query heads
        dv = int(_pick(rng, [1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 24, 31, 32,
                             33, 40, 63, 64, 65, 80]))
        if T * H * dv > 4e5 and prior == "ssm":
            dv = max(1, int(4e5 // (T * H)))
        if kern.dk is not None:
            dk = kern.dk
            if prior == "aft":  # dk | 2 dv
                unit = dk // math.gcd(dk, 2)
                dv = unit * max(1, round(dv / unit))
        elif prior == "aft":
            dk = int(_pick(rng, _divisors(2 * dv)))
        elif prior == "ssm":
            dk = 1
        else:
            dk = int(_pick(rng, [1, 2, 3, 4, 5, 8, 13, 16, 32, 33, 64, 65,
                                 80]))
        p["S"] = S
    if kern.shape:
        p["S"] = T
    p.update(B=B, T=T, H=H, Hkv=Hkv, dk=dk, dv=dv)
    # temperatures
    r = rng.random()
    if r < 0.3:
        lo, hi = sorted(rng.uniform(-30.0, 30.0, 2))
        p["beta"] = ["uniform", round(lo, 2), round(hi, 2)]
    elif r < 0.6:
        p["beta"] = ["const", float(_pick(rng, [-30.0, -20.0, -14.0, -5.0,
                                                -1.0, 0.0, 1.0, 3.0, 8.0,
                                                20.0, 30.0, -1e4, -100.0,
                                                -60.0, 50.0, 100.0, 1e3,
                                                1e4]))]
    elif r < 0.75:
        p["beta"] = ["two", float(_pick(rng, [-100.0, -30.0, -14.0, -3.0])),
                     float(_pick(rng, [3.0, 8.0, 30.0, 100.0]))]
    else:
        p["beta"] = ["uniform", -1.0, 2.0]
    # values
    r = rng.random()
    if r < 0.6:
        p["v"] = ["normal", float(10.0 ** rng.uniform(-3.0, 4.0))]
    elif r < 0.8:
        p["v"] = ["logspread", -3.0, float(rng.uniform(0.0, 4.0))]
    else:
        p["v"] = ["clip_edge"]
    if prior != "ssm":
        p["qk"] = float(10.0 ** rng.uniform(-2.0, 1.5))
    p["lam"] = float(_pick(rng, [1.0, 1.0, 3.0, 10.0]))
    p["gate"] = float(_pick(rng, [1.0, 1.0, 3.0, 10.0]))
    tweaks = []
    if rng.random() < 0.25:
        tweaks.append(_pick(rng, ["big_logits", "gate_edges", "huge_gate"]))
    if prior != "ssm" and rng.random() < 0.15:
        tweaks.append("qk_negative")
    extra = {"gla": ["gla_saturate_at_once", "gla_saturate_midway",
                     "gla_decay_off", "gla_decay_wide"],
             "aft": ["aft_key_spread"],
             "ssm": ["ssm_extreme", "ssm_slow"]}.get(prior, [])
    if extra and rng.random() < 0.5:
        tweaks.append(_pick(rng, extra))
    p["tweaks"] = tweaks
    if kern.mask:
        r = rng.random()
        if r < 0.15:
            p["mask"] = None
        else:
            p["mask"] = _pick(rng, [["start"], ["middle"], ["holes_and_empty"],
                                    ["one_key"], ["random", 0.9],
                                    ["random", 0.5], ["random", 0.1],
                                    ["all"], ["prefix"]])
        p["hide"] = bool(rng.random() < 0.3)
    if kern.state:
        n = int(rng.integers(1, min(T, 6) + 1))
        if rng.random() < 0.2:
            n = min(T, int(rng.integers(2, 9)))  # decode steps at the end
            cuts = list(range(T - n + 1, T))
        else:
            cuts = sorted(set(int(c) for c in rng.integers(1, T, n - 1)))
        bounds = [0] + cuts + [T]
        p["segments"] = [b - a for a, b in zip(bounds, bounds[1:]) if b > a]
    if prior in SCANS and rng.random() < 0.25:
        p["split"] = int(rng.integers(2, 7))
    _widen(p, kern, wide_T, only)
    return p


# the long non-causal draw: T = S from WIDE_T (8192 in one of ten), its
# float64 reference's (B, H, T, S) arrays up to WIDE_REF_BUDGET elements
WIDE_T = (2048, 3001, 4096)
WIDE_REF_BUDGET = 8192 * 8192
# ssm values around these means: sigmoid(v) underflows float32 below -87
# (normal) and -103 (subnormal), float64 below -745
SSM_LOW_V = (-1e3, -745.0, -110.0, -104.0, -90.0, -50.0)


def can_draw(draw, kern):
    """Whether `_widen` can draw `draw` (a name of DRAWS) for kern."""
    return {"wide": wide_kernel(kern), "span_edge": wide_kernel(kern),
            "needle": kern.prior in ("softmax", "linear"),
            "scan_needle": scan_needle_kernel(kern),
            "ssm_low_v": kern.prior == "ssm", "zero_v": True}[draw]


def scan_needle_kernel(kern):
    """Whether `_widen` can draw `scan_needle` for kern: the causal scans
    (causal linear; gla, aft and ssm, which are always causal)."""
    return kern.prior in ("gla", "aft", "ssm") or (kern.prior == "linear"
                                                   and kern.causal)


def wide_kernel(kern):
    """Whether `_widen` can draw kern's long non-causal case."""
    return (kern.prior in ("softmax", "linear") and not kern.causal
            and not kern.state and not kern.shape)


def _widen(p, kern, wide_T=8192, only=None):
    """The draws of 2026-12-03 (docs/fuzzing.md, "What it draws"), from a
    generator seeded with (the case's data seed, 0x5eed): p's other draws
    stay as they were.

    * one non-causal softmax or linear case in twenty (dynamic extents, no
      state) is long and narrow: T = S in WIDE_T, B = H = Hkv = 1, dv <= 16,
      a constant beta_raw in [-30, 30] and v ~ N(m, sigma^2) with
      beta·sigma from 1e-3 to 0.5 (m = 0, or ±3 or ±30 sigma): where
      beta·Ṽ spans little, F is near the values' mean and far from their
      max, which the shift M/beta cancels against (C-to-B.md, 2026-12-03:
      1.06e-4 at S = 4096, beta·sigma = 0.12);
    * one case in a hundred (any other) has v = 0 exactly (zero-initialised
      weights): mu = 0 and F = log(1 + tiny)/beta;
    * one ssm case in ten has v around a mean in SSM_LOW_V, where sigmoid(v)
      underflows (part of the values, with the larger spreads);
    * (later that day, a generator of their own again, so that the draws
      above stay as they were) one softmax or linear case in thirty is a
      needle (`_needle`), one other centred case in thirty sits at the
      edges of the centred tilt's window (`_span_edge`).

    `only` (a name of DRAWS) draws that one whenever the kernel can."""
    side = np.random.default_rng([p["seed"], 0x5EED])
    prior = kern.prior
    eps = kern.eps if kern.eps is not None else spec_ref.EPS
    if (wide_kernel(kern) and wide_T > 0
            and ((side.random() < 0.05 and only is None) or only == "wide")):
        long = side.random() < 0.1
        choices = [t for t in WIDE_T if t <= wide_T] or [wide_T]
        T = int(_pick(side, choices))
        if long and 8192 <= wide_T and 8192 ** 2 <= WIDE_REF_BUDGET:
            T = 8192
        p.update(S=T, B=1, T=T, H=1, Hkv=1,
                 dk=min(p["dk"], 16 if T > 4096 else 32),
                 dv=int(_pick(side, [1, 2, 3, 4, 5, 8, 16])))
        beta_raw = round(float(side.uniform(-30.0, 30.0)), 2)
        p["beta"] = ["const", beta_raw]
        beta = float(spec_ref.softplus(beta_raw)) + eps
        sigma = float(10.0 ** side.uniform(-3.0, math.log10(0.5))) / beta
        if side.random() < 1.0 / 3.0:
            mean = sigma * float(_pick(side, [-30.0, -3.0, 3.0, 30.0]))
            p["v"] = ["shifted", mean, sigma]
        else:
            p["v"] = ["normal", sigma]
        p["draw"] = "wide"
        return
    if (side.random() < 0.01 and only is None) or only == "zero_v":
        p["v"] = ["normal", 0.0]
        p["draw"] = "zero_v"
        return
    if prior == "ssm" and ((side.random() < 0.1 and only is None)
                           or only == "ssm_low_v"):
        mean = float(_pick(side, SSM_LOW_V))
        spread = float(_pick(side, [0.0, 1e-3, 0.1, 1.0]))
        p["v"] = ["shifted", mean, abs(mean) * spread]
        p["draw"] = "ssm_low_v"
        return
    side = np.random.default_rng([p["seed"], 0x5EED, 2])
    if prior in ("softmax", "linear") and (
            (only is None and side.random() < 1.0 / 30.0)
            or only == "needle"):
        _needle(p, kern, side, wide_T)
    elif wide_kernel(kern) and (
            (only is None and side.random() < 1.0 / 30.0)
            or only == "span_edge"):
        _span_edge(p, kern, side, wide_T)
    elif only == "scan_needle" and scan_needle_kernel(kern):
        # only when asked for (`--draw scan_needle`): never in the default
        # mix, so that every seed's cases (ctest's too) stay as they were
        _scan_needle(p, kern, np.random.default_rng([p["seed"], 0x5EED, 3]))


# the draws `--draw` can force (`_widen`)
DRAWS = ("wide", "zero_v", "ssm_low_v", "needle", "span_edge",
         "scan_needle")
# scan_needle: sequence lengths (the quadratic references, causal linear
# and gla, stop at SCAN_NEEDLE_QUAD_T), and ssm's levels and needles in v
# (before the sigmoid: 9.4e-14, 2.1e-9, 4.5e-5, 6.7e-3 against 0.05 to 1)
SCAN_NEEDLE_T = (64, 257, 1031, 1543, 2049, 4096)
SCAN_NEEDLE_QUAD_T = 1543
SSM_NEEDLE_LEVEL = (-30.0, -20.0, -10.0, -5.0)
SSM_NEEDLE_V = (0.0, 3.0, -3.0, 10.0)
# a needle's offset and the values' common level, in units of 1/beta
NEEDLE_D = (0.3, 0.7, 1.0, 1.5, -0.8, -3.0, 11.9, 12.1, 30.0)
NEEDLE_LEVEL = (0.0, 0.0, 0.0, 0.5, -2.0, "cap")
# beta·(max - min) around the centred tilt's window (kCentredRange = 12)
# and the narrow test (ln 2)
SPAN_EDGE = (0.69, 0.7, 3.0, 11.9, 11.99, 12.0, 12.01, 12.1)


def _long_narrow(p, kern, side, wide_T, short=(257, 1031)):
    """T = S long (WIDE_T up to wide_T, 8192 in one of ten) or `short`,
    B = H = Hkv = 1, dv <= 16, for non-causal kernels that can take it."""
    choices = [t for t in WIDE_T if t <= wide_T] + list(short)
    T = int(_pick(side, choices))
    if side.random() < 0.1 and 8192 <= wide_T:
        T = 8192
    p.update(S=T, B=1, T=T, H=1, Hkv=1,
             dk=min(p["dk"], 16 if T > 4096 else 32),
             dv=int(_pick(side, [1, 2, 3, 4, 5, 8, 16])))


def _needle(p, kern, side, wide_T):
    """A needle: every value of a channel at one level c0/beta but for n
    keys (n = 1 to 3: random, the last, the first) at (c0 + d)/beta, beta
    the channel's (that of the first query head reading it). F and mu are
    then ~d/S above the level: the output is small next to the values'
    spread, and a read whose float32 log Z carries a fixed rounding (the
    same term e^(beta v - shift) for S - 1 keys does not average) misses
    it by ~u·S. A third of the non-causal ones are long (`_long_narrow`).
    c0 = "cap" puts the level 0.1 below the clip, the needle beyond it."""
    if wide_kernel(kern) and wide_T > 0 and side.random() < 1.0 / 3.0:
        _long_narrow(p, kern, side, wide_T)
    level = _pick(side, NEEDLE_LEVEL)
    p["v"] = ["needle", level if level == "cap" else float(level),
              float(_pick(side, NEEDLE_D)), int(_pick(side, [1, 1, 1, 2, 3])),
              _pick(side, ["random", "random", "last", "first"])]
    p["draw"] = "needle"


def _scan_needle(p, kern, side):
    """The needle (`_needle`) on the causal scans (`--draw scan_needle`
    only): rows before a late outlying value see only the level, where
    the exact output is the level (0 mostly), and the scans shift by the
    whole sequence's max (docs/semantics.md, "Known limit (outputs far
    below the values' resolution)"). Dynamic kernels without a state get
    T from SCAN_NEEDLE_T and B = H = Hkv = 1 (from 1031 on; gla and causal
    linear up to SCAN_NEEDLE_QUAD_T); the others keep their T, segments
    and splits. q and k as drawn. ssm: v at a level of SSM_NEEDLE_LEVEL
    but for the needles at SSM_NEEDLE_V (in v, before the sigmoid), A, Δ
    and D of `ssm_slow` (the state never forgets) in half the cases."""
    if not kern.shape and not kern.state:
        quad = kern.prior in ("linear", "gla")
        T = int(_pick(side, [t for t in SCAN_NEEDLE_T
                             if not quad or t <= SCAN_NEEDLE_QUAD_T]))
        p.update(T=T, S=T)
        if T > 1000:
            p.update(B=1, H=1, Hkv=1)
        if kern.prior == "ssm":
            p["dv"] = min(p["dv"], 16)
    n = int(_pick(side, [1, 1, 1, 2, 3]))
    where = _pick(side, ["random", "random", "late", "last", "first"])
    if kern.prior == "ssm":
        p["v"] = ["ssm_needle", float(_pick(side, SSM_NEEDLE_LEVEL)),
                  float(_pick(side, SSM_NEEDLE_V)), n, where]
        if side.random() < 0.5 and "ssm_slow" not in p["tweaks"]:
            p["tweaks"] = [t for t in p["tweaks"] if t != "ssm_extreme"]
            p["tweaks"].append("ssm_slow")
    else:
        level = _pick(side, NEEDLE_LEVEL)
        p["v"] = ["needle", level if level == "cap" else float(level),
                  float(_pick(side, NEEDLE_D)), n, where]
    p["draw"] = "scan_needle"


def _span_edge(p, kern, side, wide_T):
    """The centred tilt's edges (non-causal softmax and linear, no state):
    beta·(max - min) from SPAN_EDGE (just below, on and above 12 and ln 2),
    one key pinned at each end, the others uniform, bunched at the bottom
    or at the top; the values' level at 0 (mean 0), 5/beta, or at the clip
    (max on +cap/beta, half the range beyond it, min on -cap/beta), so
    that the centre's clip(mean) and the clipped span decide; a constant
    beta_raw in [-30, 30]; T = S long or 257/1031 (`_long_narrow`)."""
    _long_narrow(p, kern, side, wide_T)
    p["beta"] = ["const", round(float(side.uniform(-30.0, 30.0)), 2)]
    p["v"] = ["span", float(_pick(side, SPAN_EDGE)),
              _pick(side, ["zero", "zero", "offset", "clip_hi", "clip_over",
                           "clip_lo"]),
              _pick(side, ["uniform", "low", "high"])]
    p["draw"] = "span_edge"


# input knobs that take the drawn inputs (bthd, float64) and edit them


def _beta(x, eps=spec_ref.EPS):
    return spec_ref.softplus(x["beta_raw"]) + eps


def v_clip_edge(rng, x, cap=spec_ref.CAP, eps=spec_ref.EPS):
    """Values a hair inside, on and outside ±cap/β of their channel (β of
    the first query head that reads each kv head), and far outside."""
    B, S, Hkv, dv = x["v"].shape
    H = x["lam"].shape[2]
    bound = cap / _beta(x, eps).reshape(H, dv)[:: H // Hkv]
    rel = rng.choice([-1e-6, -1e-7, 0.0, 1e-7, 1e-6, -0.5, 1.0],
                     x["v"].shape)
    x["v"] = bound * (1.0 + rel) * rng.choice([-1.0, 1.0], x["v"].shape)


def v_structured(p, x, cap=spec_ref.CAP, eps=spec_ref.EPS):
    """The values of the "needle" and "span" draws (`_needle`,
    `_span_edge`), in units of 1/beta of each channel (beta of the first
    query head that reads each kv head), from a generator of their own."""
    rng = np.random.default_rng([p["seed"], 0x7E])
    B, S, Hkv, dv = x["v"].shape
    H = x["lam"].shape[2]
    inv = 1.0 / _beta(x, eps).reshape(H, dv)[:: H // Hkv]  # (Hkv, dv)
    if p["v"][0] in ("needle", "ssm_needle"):
        _, level, d, n, where = p["v"]
        if p["v"][0] == "ssm_needle":  # v itself (before the sigmoid)
            c0, d, inv = level, d - level, 1.0
        else:
            c0 = cap - 0.1 if level == "cap" else level
        units = np.full((B, S, Hkv, dv), c0)
        for b in range(B):
            if where == "last":
                at = np.arange(max(S - n, 0), S)
            elif where == "first":
                at = np.arange(min(n, S))
            elif where == "late":  # in the last tenth: long rows before
                lo = min(S - 1, (9 * S) // 10)
                at = lo + rng.choice(S - lo, min(n, S - lo), replace=False)
            else:
                at = rng.choice(S, min(n, S), replace=False)
            units[b, at] += d
    else:
        _, span, level, shape = p["v"]
        u = rng.random((B, S, Hkv, dv))
        if shape == "low":
            u = u ** 8
        elif shape == "high":
            u = 1.0 - u ** 8
        u[:, 0], u[:, -1] = 0.0, 1.0  # the span exactly (S >= 2)
        base = {"zero": -span / 2.0, "offset": 5.0, "clip_hi": cap - span,
                "clip_over": cap - span / 2.0, "clip_lo": -cap}[level]
        units = base + span * u
    x["v"] = units * inv


def gla_decay_off(rng, x):
    """decay logits < 0 everywhere: a = -eps, C stays near 0."""
    x["decay"] = -np.abs(x["decay"]) * 10.0 - 1.0


def gla_decay_wide(rng, x):
    """decay logits from -5 to 80: some rows saturate at once, some never."""
    x["decay"] = rng.uniform(-5.0, 80.0, x["decay"].shape)


TWEAKS = {name: getattr(adv, name) for name in (
    "big_logits", "gate_edges", "huge_gate", "qk_negative",
    "gla_saturate_at_once", "gla_saturate_midway", "aft_key_spread",
    "ssm_extreme", "ssm_slow")}
TWEAKS.update(v_clip_edge=v_clip_edge, gla_decay_off=gla_decay_off,
              gla_decay_wide=gla_decay_wide)


def _mask(spec, rng, B, S):
    kind = spec[0]
    if kind == "random":
        return rng.random((B, S)) < spec[1]
    if kind == "all":
        return np.zeros((B, S), bool)
    if kind == "prefix":  # the first j keys of each batch, j up to S
        m = np.ones((B, S), bool)
        for b in range(B):
            m[b, : int(rng.integers(0, S + 1))] = False
        return m
    return getattr(adv, "mask_" + kind)(rng, B, S)


def draw_inputs(p, kern):
    """float64 inputs by name (bthd), and the mask or None."""
    rng = np.random.default_rng(p["seed"])
    B, T, S, H, Hkv = p["B"], p["T"], p["S"], p["H"], p["Hkv"]
    dk, dv = p["dk"], p["dv"]
    E = H * dv
    n = lambda *s: rng.standard_normal(s)
    x = {}
    if kern.prior != "ssm":
        x["q"] = n(B, T, H, dk) * p["qk"]
        x["k"] = n(B, S, Hkv, dk) * p["qk"]
    vshape = (B, S, Hkv, dv)
    kind = p["v"][0]
    if kind == "normal":
        x["v"] = n(*vshape) * p["v"][1]
    elif kind == "shifted":  # N(mean, sigma^2)
        x["v"] = p["v"][1] + n(*vshape) * p["v"][2]
    elif kind == "logspread":
        x["v"] = (10.0 ** rng.uniform(p["v"][1], p["v"][2], vshape)
                  * rng.choice([-1.0, 1.0], vshape))
    else:
        x["v"] = n(*vshape)
    kind = p["beta"][0]
    if kind == "uniform":
        x["beta_raw"] = rng.uniform(p["beta"][1], p["beta"][2], E)
    elif kind == "const":
        x["beta_raw"] = np.full(E, float(p["beta"][1]))
    else:
        x["beta_raw"] = np.where(rng.random(E) < 0.5, p["beta"][1],
                                 p["beta"][2])
    x["lam"] = n(B, T, H, dv) * p["lam"]
    x["gate"] = n(B, T, H, dv) * p["gate"]
    if kern.prior == "gla":
        x["decay"] = n(B, T, H)
    if kern.prior == "ssm":
        N = kern.N
        sp = spec_ref.softplus
        x["delta"] = np.exp(-sp(n(B, T, E)))
        x["A"] = -sp(n(E, N))
        x["Bs"] = sp(n(B, T, N)) + 1e-6
        x["Cs"] = sp(n(B, T, N)) + 1e-6
        x["D"] = sp(n(E)) + 1e-6
    if p["v"][0] == "clip_edge":
        v_clip_edge(rng, x, **{n: a for n, a in attrs(kern).items()
                               if n != "scale"})
    elif p["v"][0] in ("needle", "span", "ssm_needle"):
        v_structured(p, x, **{n: a for n, a in attrs(kern).items()
                              if n != "scale"})
    for name in p.get("tweaks", []):
        TWEAKS[name](rng, x)
    mask = None
    if kern.mask:
        mask = (np.ones((B, S), bool) if p.get("mask") is None
                else _mask(p["mask"], rng, B, S))
        if p.get("hide"):
            gone = ~mask[:, :, None, None]
            x["v"] = np.where(gone, rng.choice([-1e30, 1e30, 3e4],
                                               x["v"].shape), x["v"])
            x["k"] = np.where(gone, 1e3 * rng.standard_normal(x["k"].shape),
                              x["k"])
    if kern.dtype == "f16":
        # inputs the format holds (beyond 65504 f16 rounds to Inf)
        x = {k: np.clip(a, -6e4, 6e4) for k, a in x.items()}
    return x, mask


# ---------------------------------------------------------------- running


def _storage(kern, x, mask, t0=None, t1=None):
    """The kernel's arguments: per-position tensors cut to [t0, t1), in the
    kernel's dtype and layout."""
    st = {}
    for name, val in x.items():
        if t0 is not None and name in PER_POS:
            val = val[:, t0:t1]
        if kern.layout == "bhtd" and name in HEADED:
            val = np.swapaxes(val, 1, 2)
        st[name] = adv.store(val, kern.dtype)[0]
    if mask is not None:
        m = mask if t0 is None else mask[:, t0:t1]
        st["mask"] = np.ascontiguousarray(m, np.uint8)
    return st


def _from_layout(kern, out):
    out = np.asarray(out, np.float64)
    return np.swapaxes(out, 1, 2) if kern.layout == "bhtd" else out


def _fem_run(ctx, kern, lib, storage, split, check=None):
    """Runs the kernel with fem-run (bf16 travels as its bits): (out, state
    or None, the CompletedProcess)."""
    d = ctx.workdir
    cmd = [ctx.fem_run_bin, lib, "--kernel", kern.name]
    for name, arr in storage.items():
        path = os.path.join(d, f"{name}.npy")
        np.save(path, arr)
        cmd += ["--input", f"{name}={path}"]
    outs = {"out": os.path.join(d, "out.npy")}
    if kern.state:
        outs["state_out"] = os.path.join(d, "state_out.npy")
    for name, path in outs.items():
        if os.path.exists(path):
            os.unlink(path)
        cmd += ["--output", f"{name}={path}"]
    if check is not None:
        cmd += ["--check", "--tolerance", str(check)]
    env = dict(os.environ)
    if split:
        env["FEMC_SCAN_SEGMENTS"] = str(split)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0 and check is None:
        raise RuntimeError(f"fem-run failed ({r.returncode}): "
                           f"{(r.stdout + r.stderr).strip()[-2000:]}")
    if check is not None:
        return None, None, r
    out = np.load(outs["out"])
    out = (sm._bf16_to_f64(out) if kern.dtype == "bf16"
           else out.astype(np.float64))
    state = np.load(outs["state_out"]) if kern.state else None
    return out, state, r


def _launch(ctx, kern, lib, module, storage, split):
    if kern.dtype == "bf16":
        out, state, _ = _fem_run(ctx, kern, lib, storage, split)
        return out, state
    res = adv._launch(module.kernel(kern.name), storage, split)
    if kern.state:
        return np.asarray(res[0], np.float64), res[1]
    out = res[0] if isinstance(res, tuple) else res
    return np.asarray(out, np.float64), None


def _reference(kern, exact, mask, t1=None):
    if t1 is not None:
        exact = {n: (a[:, :t1] if n in PER_POS else a)
                 for n, a in exact.items()}
        mask = None if mask is None else mask[:, :t1]
    return spec_ref.fem_read(kern.prior, exact, causal=kern.causal,
                             mask=mask, **attrs(kern))["out"]


def attrs(kern):
    """The kernel's cap, eps and scale (the reference's keywords)."""
    return {n: getattr(kern, n) for n in ("cap", "eps", "scale")
            if getattr(kern, n, None) is not None}


def run_case(ctx, p, cref=False):
    """(error relative to max|ref| over the tolerance's scale, message)."""
    kern, lib, module = ctx.kernels[p["kernel"]]
    x, mask = draw_inputs(p, kern)
    exact = {n: adv.store(a, kern.dtype)[1] for n, a in x.items()}
    split = p.get("split")
    if p.get("segments"):
        outs, state, t0 = [], None, 0
        # causal linear, gla and ssm rows see no later key and M cancels:
        # one reference over the whole sequence; aft (kmax) and non-causal
        # linear see keys up to the segment's end: the prefix's reference
        whole = None
        if not (kern.prior == "aft" or (kern.prior == "linear"
                                        and not kern.causal)):
            whole = _reference(kern, exact, mask)
        refs = []
        for length in p["segments"]:
            t1 = t0 + length
            st = _storage(kern, x, mask, t0, t1)
            if state is not None:
                st["state"] = state
            elif kern.dtype == "bf16":
                # fem-run draws a missing input at random: the empty state
                ks = {"linear": 4 + 3 * p["dk"], "gla": 4 + 3 * p["dk"],
                      "aft": 12, "ssm": 3 + 3 * kern.N}[kern.prior]
                st["state"] = np.zeros((p["B"], p["H"], p["dv"], ks),
                                       np.float32)
            out, state = _launch(ctx, kern, lib, module, st, split)
            outs.append(_from_layout(kern, out))
            ref = whole if whole is not None else _reference(kern, exact,
                                                             mask, t1)
            refs.append(ref[:, t0:t1])
            t0 = t1
        out, want = np.concatenate(outs, 1), np.concatenate(refs, 1)
    else:
        st = _storage(kern, x, mask)
        out, _ = _launch(ctx, kern, lib, module, st, split)
        out = _from_layout(kern, out)
        want = _reference(kern, exact, mask)
    if out.shape != want.shape:
        return np.inf, f"shape {out.shape}, the reference's {want.shape}"
    if not np.isfinite(want).all():
        return np.inf, "the reference is not finite (a generator defect)"
    err, msg = adv.compare(out, want, kern.dtype)
    # fem-run --check counts an f16 result beyond 65504 (±Inf, as
    # docs/semantics.md says) as a mismatch with the finite reference
    overflow = kern.dtype == "f16" and np.abs(want).max() > 65504.0
    if (cref and err <= TOLERANCE[kern.dtype] and not p.get("segments")
            and not overflow):
        st = _storage(kern, x, mask)
        _, _, r = _fem_run(ctx, kern, lib, st, split,
                           check=TOLERANCE[kern.dtype])
        if r.returncode != 0:
            return np.inf, ("fem-run --check (the C++ reference) failed: "
                            + (r.stdout + r.stderr).strip()[-600:])
    return err, msg


def describe(p):
    keys = ("B", "T", "S", "H", "Hkv", "dk", "dv")
    s = " ".join(f"{k}={p[k]}" for k in keys if k in p)
    s += f" beta={p['beta']} v={p['v']}"
    if "qk" in p:
        s += f" qk={p['qk']:.3g}"
    for k in ("tweaks", "mask", "hide", "segments", "split", "femc_options"):
        if p.get(k):
            s += f" {k}={p[k]}"
    return s


# ------------------------------------------------------------ the fuzzer


# the attributes' draws: both ends of cap's range and eps up to 1 (with
# beta_raw down to -1e4 beta is eps itself; eps >= 1e-12 keeps F = log Z/beta
# within the float64 reference's reach, spec_ref.py)
CAPS = [1e-5, 1e-3, 0.1, 1.0, 5.0, 20.0, 40.0, 43.0]
EPSS = [1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 0.3, 1.0]
# femc's tile options (they override a kernel's #fem.tiles): tile-q and
# tile-k multiples of 2·vec
FEMC_OPTIONS = [[], ["--vec=4"], ["--tile-q=8", "--tile-k=8", "--vec=4"],
                ["--tile-q=24", "--tile-k=8", "--vec=4"],
                ["--tile-q=16", "--tile-k=16", "--vec=8"],
                ["--tile-q=48", "--tile-k=32", "--vec=8"],
                ["--tile-q=128", "--tile-k=16", "--vec=8"]]


def random_static_kernels(rng, n):
    """Kernels with random static extents (B, T, H, Hkv, dk, dv)."""
    ks = []
    for _ in range(n):
        prior = _pick(rng, ["softmax", "linear", "gla", "aft", "ssm"])
        keyed = prior in ("softmax", "linear")
        T = min(_draw_T(rng), 600)
        Hkv = 1 if prior == "ssm" else int(_pick(rng, [1, 2]))
        H = Hkv * int(_pick(rng, [1, 2, 3]))
        dv = int(_pick(rng, [1, 3, 8, 12, 16, 33, 64]))
        dk = (int(_pick(rng, _divisors(2 * dv))) if prior == "aft"
              else 1 if prior == "ssm" else int(_pick(rng, [1, 4, 7, 16, 64])))
        B = int(rng.integers(1, 3))
        if prior == "ssm":
            Hkv = H
        layout = _pick(rng, ["bthd", "bhtd"])
        tiles = None
        if rng.random() < 0.5:
            tiles = (16, 16, 8) if prior == "softmax" else (8, 8, 8)
        extra = {}
        if rng.random() < 0.4:  # cap, eps (and scale) off their defaults
            extra = dict(cap=float(_pick(rng, CAPS)),
                         eps=float(_pick(rng, EPSS)))
            if prior == "softmax" and rng.random() < 0.5:
                extra["scale"] = float(_pick(rng, [1e-3, 0.1, 0.7, 4.0]))
        ks.append(adv.Kernel(prior, bool(rng.random() < 0.7) or not keyed,
                             mask=keyed and bool(rng.random() < 0.5),
                             dtype=_pick(rng, ["f32", "f32", "f16"]),
                             tiles=tiles, N=int(_pick(rng, [1, 4, 16])),
                             shape=(B, T, H, Hkv, dk, dv), layout=layout,
                             **extra))
    for k in ks:
        k.random_static = True
    # distinct names (a random pair may coincide)
    return list({k.name: k for k in ks}.values())


class Stats:
    def __init__(self):
        self.cases = self.failures = 0
        self.known = {}
        self.seconds = 0.0
        self.by_prior = {}
        # per draw (p["draw"]: wide, zero_v, ssm_low_v; plain for the rest):
        # [cases, the largest error over the tolerance, its case's label],
        # KNOWN cases left out
        self.draws = {}

    def note(self, p, ratio, label):
        d = self.draws.setdefault(p.get("draw", "plain"), [0, -1.0, ""])
        d[0] += 1
        if ratio > d[1]:
            d[1:] = [ratio, label]

    def line(self, compile_s):
        rate = self.cases / self.seconds if self.seconds else 0.0
        per = ", ".join(f"{k} {v}" for k, v in sorted(self.by_prior.items()))
        kn = ", ".join(f"{k} {v}" for k, v in sorted(self.known.items()))
        dr = "; ".join(f"{k} {n}, max err/tol {r:.3g} ({lab})"
                       for k, (n, r, lab) in sorted(self.draws.items()))
        return (f"spec_fuzz: {self.cases} case(s) in {self.seconds:.1f} s "
                f"({rate:.1f}/s; compiles {compile_s:.1f} s), "
                f"{self.failures} failure(s) [{per}]"
                + (f", known: {kn}" if kn else "")
                + (f"; draws: {dr}" if dr else ""))


def check_one(ctx, p, stats, label, cref=False, out=sys.stdout,
              strict=False):
    """Runs one case; prints a one-line reproducer when it fails. Returns
    True when it passed."""
    t0 = time.time()
    if p["kernel"] not in ctx.kernels and "compile" in p:
        c = dict(p["compile"])
        c["shape"] = tuple(c["shape"])
        c["tiles"] = tuple(c["tiles"]) if c["tiles"] else None
        k = adv.Kernel(**c)
        k.random_static = True
        k.femc_options = p.get("femc_options", [])
        ctx.add_static([k], k.femc_options)
    kern = ctx.kernels[p["kernel"]][0]
    cref = cref and p.get("cref", True)  # False: see FIXED_CASES
    try:
        err, msg = run_case(ctx, p, cref=cref)
    except Exception as e:  # a refused launch, a crash of fem-run
        err, msg = np.inf, f"{type(e).__name__}: {e}"
    stats.seconds += time.time() - t0
    stats.cases += 1
    stats.by_prior[kern.prior] = stats.by_prior.get(kern.prior, 0) + 1
    tol = TOLERANCE[kern.dtype]
    kn = None if err <= tol or strict else known(p, kern, err)
    if not kn:  # KNOWN cases are counted apart
        stats.note(p, err / tol, label)
    if err <= tol:
        return True
    if kn:
        stats.known[kn[0]] = stats.known.get(kn[0], 0) + 1
        print(f"KNOWN {kn[0]} {label} {p['kernel']} {describe(p)}: {msg}",
              file=out)
        return True
    stats.failures += 1
    print(f"FAIL {label} {p['kernel']} {describe(p)}: {msg} "
          f"(tolerance {tol:g})", file=out)
    print(f"  repro: python3 test/python/spec_fuzz.py --params "
          f"'{json.dumps(p, separators=(',', ':'))}'", file=out, flush=True)
    return False


def fuzz(ctx, seed, *, cases=None, seconds=None, static=0, static_cases=4,
         cref=0.0, max_T=3000, stats=None, kernels=None, out=sys.stdout,
         strict=False, start=0, verbose=False, wide_T=8192,
         only=None):
    """Draws and runs cases from `seed` until `cases` ran or `seconds`
    passed (wall clock, compiles included). Case `index` draws its kernel
    and parameters from the generator seeded with (seed, index). With
    `static`, the cases come in rounds of static·static_cases + 64: round
    r first compiles `static` kernels with random static extents (drawn
    from (seed, 2^30, r)) and runs `static_cases` cases on each, then 64
    on the dynamic kernels; so a case's index alone says what it runs."""
    stats = stats or Stats()
    began = time.time()
    names = sorted(kernels) if kernels else sorted(ctx.kernels)
    if only:
        names = [n for n in names if can_draw(only, ctx.kernels[n][0])]
    per_round = static * static_cases + 64
    index, end = start, None if cases is None else start + cases
    compiled_round, statics = None, []

    def done():
        return ((end is not None and index >= end)
                or (seconds is not None and time.time() - began >= seconds))

    while not done():
        rnd, pos = divmod(index, per_round)
        if static and compiled_round != rnd:
            srng = np.random.default_rng([seed, 1 << 30, rnd])
            statics = random_static_kernels(srng, static)
            # every other round: femc's tile options over the library
            options = (_pick(srng, FEMC_OPTIONS) if srng.random() < 0.5
                       else [])
            for k in statics:
                k.femc_options = options
            try:
                ctx.add_static(statics, options)
            except RuntimeError as e:
                print(f"FAIL static kernels of round {rnd}: {e}", file=out,
                      flush=True)
                stats.failures += 1
                return stats
            compiled_round = rnd
        rng = np.random.default_rng([seed, index])
        if pos < static * static_cases and statics:
            name = statics[pos // static_cases % len(statics)].name
        else:
            name = names[int(rng.integers(len(names)))]
        p = draw_case(rng, ctx.kernels[name][0], max_T=max_T,
                      wide_T=wide_T, only=only)
        if verbose:  # a crash (a signal) leaves this as the last line
            print(f"case seed={seed} index={index}: "
                  f"{json.dumps(p, separators=(',', ':'))}", file=out,
                  flush=True)
        check_one(ctx, p, stats, f"seed={seed} index={index}",
                  cref=bool(rng.random() < cref), out=out, strict=strict)
        index += 1
    return stats


def _beta_min(p):
    """The smallest beta_raw a case draws."""
    kind, *args = p["beta"]
    return float(args[0])


# Open defects (reported to the kernels' owners) and documented float32
# limits, as (id, predicate(params, kernel), why). A failing case that
# matches one is printed as KNOWN and does not fail the run (--strict
# counts it); a fix shows up as KNOWN cases that pass, so the entry goes.
KNOWN = (
    ("softmax-f32-logits",
     lambda p, k, err: (k.prior == "softmax" and _logit_scale(p, k) >= 300.0
                        and err <= 10.0 * logit_sensitivity(p, k)),
     "softmax logits of several hundred: their float32 rounding "
     "(ulp(|q.k|)) moves the weights by more than 1e-4 (docs/semantics.md, "
     "\"Tolerance\"); the error within ten times what two-ulp errors in "
     "every logit move the reference by (logit_sensitivity)"),
    ("float32-range",
     lambda p, k, err: _x_underflows(p, k),
     "linear, gla, aft: weights times X = e^(beta V~ - P) below float32's "
     "range (docs/semantics.md, \"Known limit (float32 range)\"): a kernel "
     "whose 2 cap - 32 - ln(eps) exceeds 95 (eps below 1.6e-18 at cap 43; "
     "the fuzzer draws none), values spanning the clip"),
    ("needle-shift",
     lambda p, k, err: _needle_shift(p, k, err),
     "docs/semantics.md, \"Known limit (outputs far below the values' "
     "resolution)\": a needle (every value equal but one to three keys) in "
     "softmax or linear (or, with --draw scan_needle, the causal scans; "
     "ssm's ssm_low_v draw, whose sigmoid(v) at v ~ -50 is carried by a "
     "few keys), whose output is ~d/S or 0 while the values are d: "
     "float32 sums of X carry ~u of log Z (causal rows after the needle; "
     "zero-weight needles) against it; only where the absolute error is "
     "within 64 ulps of the largest clipped |v| (b3f4578 removed the "
     "centred e^z - 1 and the causal rows before the needle: 46 -> 44 "
     "of seed 7001's needle draws; 998b01b centres causal softmax per "
     "query tile on the mean of the keys it sees, which leaves rows whose "
     "exact output is ~0 at a few ulps of that mean: the needle's tile "
     "before it, rows that give it no weight; seed 8101: 79 of 4210 causal "
     "softmax needle draws, docs/fuzzing.md)"),
    ("ssm-eps-float32",
     lambda p, k, err: k.prior == "ssm" and "ssm_extreme" in p.get("tweaks", ())
     and (_beta_min(p) <= -8.0 or p.get("draw") == "ssm_low_v"),
     "ssm with D = 1e-6 stored as float32 (9.99999997e-7 < eps) and tiny "
     "Bs, Cs, delta: max(y1, eps) clamps in the float64 reading and not in "
     "float32 (eps itself is float32 there); 3e-9 relative, times 1/beta "
     "(docs/semantics.md, \"Known limit (ssm at eps)\"); also at any beta "
     "where the values are sigmoid(v) of v <= -50 (the ssm_low_v draw: "
     "outputs of 1e-22 next to log(y1/eps)/beta = 1e-10, seed 8501)"),
    ("ssm-below-float32",
     lambda p, k, err: k.prior == "ssm" and p.get("draw") == "ssm_low_v"
     and p["v"][1] <= -87.0,
     "ssm values whose sigmoid is below float32's normal range (v <= -87: "
     "docs/semantics.md, \"Known limit (ssm values below -87)\"): the "
     "float64 readings keep digits float32 cannot (outputs of 1e-29 and "
     "less; fem-run --check, which has no floor below float32's range, "
     "fails them outright; seed 8501)"),
)


def _needle_shift(p, kern, err):
    """KNOWN needle-shift: a `needle` draw of softmax or linear, a
    `scan_needle` draw, or an ssm `ssm_low_v` draw, whose absolute error
    (err times max|ref|) is at most 64 float32 ulps of the largest clipped
    |v| a visible key holds (ssm: of sigmoid(v)). ssm_low_v's sigmoid(v)
    at v ~ -50 ± 5 spans e^-75 to e^-25: a few keys carry the channel,
    whose shift M/beta the scan's F cancels against (seed 8501 index 136:
    out 1.2e-14 = 1.1e-3 of the channel's max, 4.2 ulps of it off,
    1.03x the tolerance)."""
    if not ((p.get("draw") == "needle"
             and kern.prior in ("softmax", "linear"))
            or p.get("draw") == "scan_needle"
            or (p.get("draw") == "ssm_low_v" and kern.prior == "ssm")):
        return False
    x, mask = draw_inputs(p, kern)
    exact = {n: adv.store(a, kern.dtype)[1] for n, a in x.items()}
    want = _reference(kern, exact, mask)
    cap = kern.cap if kern.cap is not None else spec_ref.CAP
    eps = kern.eps if kern.eps is not None else spec_ref.EPS
    H, Hkv = p["H"], p["Hkv"]
    beta = _beta(exact, eps).reshape(H, p["dv"])
    v = exact["v"][:, :, np.arange(H) // (H // Hkv)]  # (B, S, H, dv)
    if kern.prior == "ssm":  # the values the read sees
        v = spec_ref.sigmoid(v)
    v = np.abs(np.clip(v, -cap / beta, cap / beta))
    if mask is not None:
        v = np.where(mask[:, :, None, None], v, 0.0)
    return err * _judged_scale(want, kern.dtype) <= (64.0 * 2.0 ** -24
                                                   * float(v.max()))


def _judged_scale(want, dtype):
    """The max|ref| that adv.compare divides by: f16 leaves out results
    beyond the format (they must be ±Inf) and has a floor of one subnormal
    step; the err a case reports is relative to this."""
    tol = TOLERANCE[dtype]
    a = np.abs(want)
    if dtype == "f16":
        a = np.where(a <= adv.F16_MAX * (1.0 - tol), a, 0.0)
    scale = max(float(a.max()), 1e-30)
    if dtype == "f16":
        scale = max(scale, 2.0 ** -24 / tol)
    return scale


def _x_underflows(p, kern):
    """linear/gla/aft's float32 range limit: the reads' shift P lies up to
    32 below M (docs/semantics.md, "Arithmetic"), so X reaches
    e^-(2 cap - 32) and the weights eps (φ = eps, κ = eps): w·X reaches
    eps·e^-(2 cap - 32); beyond e^-95 it is a subnormal with fewer than 11
    bits, or 0. Only where the case's β·Ṽ spans nearly 2·cap in some
    channel. (Before the shift moved off M, the bound was 2 cap - ln(eps)
    > 95: 107 such cases of campaign 5201, up to 0.41·max|out|.)"""
    if kern.prior not in ("linear", "gla", "aft"):
        return False
    cap = kern.cap if kern.cap is not None else spec_ref.CAP
    eps = kern.eps if kern.eps is not None else spec_ref.EPS
    if 2.0 * cap - 32.0 - math.log(eps) <= 95.0:
        return False
    x, mask = draw_inputs(p, kern)
    H, Hkv = p["H"], p["Hkv"]
    beta = _beta(x, eps).reshape(H, p["dv"])
    v = x["v"][:, :, np.arange(H) // (H // Hkv)]  # (B, S, H, dv)
    bv = beta * np.clip(v, -cap / beta, cap / beta)
    if mask is not None:
        keep = mask[:, :, None, None]
        lo = np.where(keep, bv, np.inf).min(axis=1)
        hi = np.where(keep, bv, -np.inf).max(axis=1)
    else:
        lo, hi = bv.min(axis=1), bv.max(axis=1)
    return bool(np.nanmax(np.where(hi > lo, hi - lo, 0.0)) >= 2.0 * cap
                - 10.0)


def _logit_scale(p, kern=None):
    """About the largest |logit| a softmax case draws: q.k/sqrt(dk) is s^2
    for entries N(0, s^2), 9·s^2·sqrt(dk) with q, k < 0 everywhere."""
    s = p.get("qk", 1.0)
    # the `scale` attribute times sqrt(dk): 1 for the default 1/sqrt(dk)
    scale = getattr(kern, "scale", None)
    sc = 1.0 if scale is None else scale * math.sqrt(p["dk"])
    if "qk_negative" in p.get("tweaks", ()):
        return 9.0 * s * s * math.sqrt(p["dk"]) * sc
    return 3.0 * s * s * sc


def logit_sensitivity(p, kern, trials=2):
    """How far (relative to max|ref|, as adv.compare) the float64
    reference moves when every logit q.k·scale carries a relative error of
    N(0, 2^-22), about two float32 ulps: what float32 scores alone cost,
    semantics.md's "Known limit (softmax logits of several hundred)". The
    largest of `trials` draws; the whole sequence (segments as one)."""
    x, mask = draw_inputs(p, kern)
    exact = {n: adv.store(a, kern.dtype)[1] for n, a in x.items()}
    want = _reference(kern, exact, mask)
    rng = np.random.default_rng(54321)
    worst = 0.0
    try:
        spec_ref.LOGIT_NOISE = lambda s: s * (
            1.0 + 2.0 ** -22 * rng.standard_normal(s.shape))
        for _ in range(trials):
            moved = _reference(kern, exact, mask)
            if not np.isfinite(moved).all():
                return np.inf
            worst = max(worst, adv.compare(moved, want, kern.dtype)[0])
    finally:
        spec_ref.LOGIT_NOISE = None
    return worst


def known(p, kern, err):
    """The KNOWN entry a failing case with error `err` matches, or None."""
    for kid, match, why in KNOWN:
        if match(p, kern, err):
            return kid, why
    return None


# Regressions: cases the fuzzer found, fixed since (each a params dict).
# Seed 5201 (2026-12-02): a softmax rescale e^(m - m') below e^-88 flushed to
# 0 (logits 232 then 320, X = 1 then e^-86: 1e-3 max|out|); ssm rows with
# y1 < eps lost R(1) in log1p(R(X - 1) + R(1) - 1) (eps 0.05: 1.5e-4 and
# 1.5e-4); gla's float32 running sum drifted 1e-3 before the -60 clamp
# (eps 0.1, T = 1021: 1.06e-4).
# Seed 5201 indices 64, 118 and 131 (KNOWN float32-range until 2026-12-03):
# aft at cap 43, eps 1e-9 (0.41 and, split in 6, 0.271 max|out|) and gla at
# cap 43, eps 1e-8 (1.48e-3): rows whose visible keys all sit near the floor
# of X = e^(beta V~ - M) lost eps·X below float32's range; the scan reads'
# shift P = M - h now keeps X in [e^-free, e^32] (2.4e-7, 2e-7, 6.4e-7).
FIXED_CASES = [
    {'kernel': 'softmax_full_mask_t16x16x8_cap43_eps0p3_sc3_f32',
     'seed': 1724211502,
     'S': 257,
     'B': 3,
     'T': 257,
     'H': 6,
     'Hkv': 3,
     'dk': 8,
     'dv': 12,
     'beta': ['uniform', 21.91, 25.47],
     'v': ['clip_edge'],
     'qk': 3.0483102921030607,
     'lam': 1.0,
     'gate': 3.0,
     'tweaks': [],
     'mask': ['random', 0.9],
     'hide': True},
    {'kernel': 'ssm_causal_t8x8x8_N1_cap0p001_eps0p05_f32',
     'seed': 1286954221,
     'S': 1,
     'B': 3,
     'T': 1,
     'H': 1,
     'Hkv': 1,
     'dk': 1,
     'dv': 80,
     'beta': ['uniform', -1.0, 2.0],
     'v': ['normal', 0.032382999116347046],
     'lam': 1.0,
     'gate': 10.0,
     'tweaks': ['ssm_extreme']},
    {'kernel': 'ssm_causal_t8x8x8_N1_cap0p001_eps0p05_f32',
     'seed': 33759531,
     'S': 363,
     'B': 2,
     'T': 363,
     'H': 4,
     'Hkv': 4,
     'dk': 1,
     'dv': 16,
     'beta': ['const', -5.0],
     'v': ['normal', 0.34844615253571987],
     'lam': 1.0,
     'gate': 3.0,
     'tweaks': ['ssm_extreme']},
    {'kernel': 'gla_causal_bhtd_t8x8x8_cap2_eps0p1_f32',
     'seed': 1952170623,
     'S': 1021,
     'B': 1,
     'T': 1021,
     'H': 1,
     'Hkv': 1,
     'dk': 1,
     'dv': 32,
     'beta': ['const', -1.0],
     'v': ['normal', 5.133479233273182],
     'qk': 0.0581512391383229,
     'lam': 3.0,
     'gate': 10.0,
     'tweaks': ['gla_decay_off']},
    {'kernel': 'aft_causal_cap43_eps1em09_f32', 'seed': 2076729342, 'S': 193,
     'B': 1, 'T': 193, 'H': 1, 'Hkv': 1, 'dk': 1, 'dv': 4,
     'beta': ['const', 8.0], 'v': ['clip_edge'], 'qk': 0.6638323835384681,
     'lam': 1.0, 'gate': 1.0, 'tweaks': ['aft_key_spread']},
    {'kernel': 'gla_causal_cap43_eps1em08_f32', 'seed': 1042116437,
     'S': 1031, 'B': 1, 'T': 1031, 'H': 2, 'Hkv': 2, 'dk': 3, 'dv': 40,
     'beta': ['uniform', 5.15, 10.86], 'v': ['normal', 221.5058488584019],
     'qk': 0.18082167284993453, 'lam': 3.0, 'gate': 10.0, 'tweaks': []},
    {'kernel': 'aft_causal_cap43_eps1em09_f32', 'seed': 1019593512, 'S': 81,
     'B': 3, 'T': 81, 'H': 2, 'Hkv': 1, 'dk': 64, 'dv': 64,
     'beta': ['two', -14.0, 100.0], 'v': ['clip_edge'],
     'qk': 0.09407579065347983, 'lam': 10.0, 'gate': 3.0,
     'tweaks': ['qk_negative', 'aft_key_spread'], 'split': 6},
    # ssm with every v near -50 (2026-12-03, the ssm_low_v draw): sigmoid(v)
    # = e^-50 carries the whole output (1e-21), which spec_ref's sigmoid as
    # 0.5·(1 + tanh(v/2)) rounded to 0 (8.6e8·max|ref|); now e^v/(1 + e^v).
    # Also through fem-run --check: the C++ reference's F lost X − 1 of
    # 1e-22 in float64 there (log of a double Z = 1: F = max Ṽ, 0.755·max|ref|)
    # until it formed log Z = log R(1) + log1p(R(X − 1)/R(1)) for every prior.
    {'kernel': 'ssm_causal_nomask_bthd_f32', 'seed': 5050, 'S': 67, 'B': 2,
     'T': 67, 'H': 2, 'Hkv': 2, 'dk': 1, 'dv': 5, 'beta': ['const', 0.0],
     'v': ['shifted', -50.0, 0.5], 'lam': 1.0, 'gate': 1.0, 'tweaks': []},
    # An f16 ssm output of 1.55e-38 (v = -1000: sigmoid(v) = 0, out the tiny
    # floor's g*lambda*tiny/beta) stored as f16 0: fem-run --check judged it
    # purely relatively (1, FAIL) before it took f16's absolute floor of
    # 2^-24 (seed 5301 --static 4 index 1952).
    {'kernel': 'ssm_causal_t8x8x8_N4_f16', 'seed': 619857342, 'S': 1543,
     'B': 2, 'T': 1543, 'H': 4, 'Hkv': 4, 'dk': 1, 'dv': 3,
     'beta': ['const', 1.0], 'v': ['shifted', -1000.0, 0.0], 'lam': 10.0,
     'gate': 10.0, 'tweaks': [], 'draw': 'ssm_low_v'},
]


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Random numerical fuzzer of femc's kernels against "
        "spec_ref.py (docs/fuzzing.md, \"The numerical fuzzer\").")
    ap.add_argument("--seed", type=int, default=None,
                    help="the run's seed (default: from the clock)")
    ap.add_argument("--time", type=float, default=None,
                    help="stop after this many seconds")
    ap.add_argument("--cases", type=int, default=None,
                    help="stop after this many cases")
    ap.add_argument("--index", type=int, default=None,
                    help="replay case INDEX of --seed only")
    ap.add_argument("--start", type=int, default=0,
                    help="the first case index of the run (default 0)")
    ap.add_argument("--verbose", action="store_true",
                    help="print every case's parameters before it runs")
    ap.add_argument("--params", default=None,
                    help="replay one case given as its JSON parameters")
    ap.add_argument("--fixed", action="store_true",
                    help="run FIXED_CASES (the regressions) first")
    ap.add_argument("--static", type=int, default=0, metavar="K",
                    help="compile K kernels with random static extents per "
                    "round (default 0)")
    ap.add_argument("--cref", type=float, default=0.0, metavar="P",
                    help="also run fem-run --check on a fraction P of the "
                    "cases (default 0)")
    ap.add_argument("--max-T", type=int, default=3000,
                    help="the longest sequence drawn (default 3000)")
    ap.add_argument("--max-wide-T", type=int, default=8192,
                    help="the longest sequence of the long non-causal draw "
                    "(2048, 3001, 4096, 8192; default 8192, 0 turns it off)")
    ap.add_argument("--wide-only", action="store_true",
                    help="draw only the long non-causal case (non-causal "
                    "softmax and linear kernels, T = S from 2048 to 8192, "
                    "beta*sigma_v from 1e-3 to 0.5); replay with the same "
                    "option")
    ap.add_argument("--draw", choices=DRAWS, default=None,
                    help="draw only this case kind (docs/fuzzing.md, "
                    "\"What it draws\"), on the kernels that can take it; "
                    "replay with the same option (--wide-only is --draw "
                    "wide)")
    ap.add_argument("--strict", action="store_true",
                    help="count failures that match KNOWN (open defects, "
                    "float32 limits) as failures")
    ap.add_argument("--kernel", action="append", default=None,
                    help="draw only for this kernel (repeatable)")
    ap.add_argument("--write-kernels", action="store_true",
                    help=f"write {os.path.relpath(FUZZ_MLIR, ROOT)} and exit")
    a = ap.parse_args(argv)
    if a.wide_only:
        if a.draw not in (None, "wide"):
            ap.error("--wide-only is --draw wide")
        a.draw = "wide"
    if a.write_kernels:
        with open(FUZZ_MLIR, "w") as f:
            f.write(kernels_text())
        return 0
    with open(FUZZ_MLIR) as f:
        if f.read() != kernels_text():
            print("spec_fuzz.py: test/python/spec_fuzz_kernels.mlir is stale:"
                  " run python3 test/python/spec_fuzz.py --write-kernels",
                  file=sys.stderr)
            return 2
    ctx = Context()
    stats = Stats()
    if a.params:
        p = json.loads(a.params)
        ok = check_one(ctx, p, stats, "params", cref=a.cref > 0,
                       strict=a.strict)
        print(stats.line(ctx.compile_s))
        return 0 if ok else 1
    seed = a.seed if a.seed is not None else int(time.time()) % 1000000
    if a.index is not None:  # the same case as in the run (same --static)
        fuzz(ctx, seed, cases=1, static=a.static, cref=a.cref, max_T=a.max_T,
             stats=stats, kernels=a.kernel, strict=a.strict, start=a.index,
             verbose=True, wide_T=a.max_wide_T, only=a.draw)
        print(stats.line(ctx.compile_s))
        return 0 if stats.failures == 0 else 1
    if a.fixed:
        for i, p in enumerate(FIXED_CASES):
            check_one(ctx, p, stats, f"fixed[{i}]", cref=True,
                      strict=True)
    if a.cases is None and a.time is None:
        a.cases = 100
    print(f"spec_fuzz: seed {seed}, {len(ctx.kernels)} kernels", flush=True)
    fuzz(ctx, seed, cases=a.cases, seconds=a.time, static=a.static,
         cref=a.cref, max_T=a.max_T, stats=stats, kernels=a.kernel,
         strict=a.strict, start=a.start, verbose=a.verbose,
         wide_T=a.max_wide_T, only=a.draw)
    print(stats.line(ctx.compile_s))
    return 0 if stats.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The paper's three settings as femc blocks around an imported FEM layer.

Each block is one public function whose FEM layer is emitted by femc's
importer (femc.importer.LayerEmitter, docs/semantics.md section 7, the
authors' FreeEnergyMixer with its default flags: time-decay conditioning,
RoPE, temperature, free-energy read and outer gate):

  lm_block_softmax, lm_block_gla      a causal language-model block:
      h = x + FEM(RMSNorm(x)); y = h + fc2(silu(fc1(RMSNorm(h))))
  vision_block_softmax, vision_block_linear   a non-causal vision block
      over image patches (ViT style, conv_bidirectional):
      x = patch_embed(patches); h = x + FEM(LN(x)); y = h + MLP(LN(h))
      with the GELU (tanh form) MLP
  forecast_block_ssm                  a time-series forecasting block:
      x = embed(series); h = x + FEM_ssm(RMSNorm(x));
      h2 = h + MLP(RMSNorm(h)); y = head(h2)  (next-step values per channel)

Arguments are named like a PyTorch model's state_dict ("attn.W_q.weight",
"mlp.fc1.weight", ...), PyTorch layouts (Linear weight (out, in)).

  python3 examples/make_blocks.py                 # (re)write examples/*.mlir
  python3 examples/make_blocks.py --check --femc build/bin/femc
      # generate, check the committed examples are current, compile each,
      # run it with random parameters and compare with a float64 numpy
      # block (femc.layer_reference for the FEM layer) within 1e-4 max|y|
  ... --check --bench 1024 4096                   # also time B=1 at each T

Needs numpy and the femc Python package (PYTHONPATH=build/python).
docs/layers-examples.md shows the blocks and their timings.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict

import numpy as np

import femc
from femc import layer_reference
from femc.importer import (Emitter, LayerEmitter, Ops, ScalarBody,
                           check_layer, prologue, tensor_type)
from femc.layer_config import expected_parameters, resolve_config

HERE = os.path.dirname(os.path.abspath(__file__))
TOL = 1e-4
RMS_EPS = 1e-6
LN_EPS = 1e-5

BLOCKS = OrderedDict([
    ("lm_block_softmax", dict(
        kind="lm", mlp=4,
        fem=dict(n_embd=256, n_head=4, prior_type="softmax"))),
    ("lm_block_gla", dict(
        kind="lm", mlp=4,
        fem=dict(n_embd=256, n_head=4, prior_type="gla"))),
    ("vision_block_softmax", dict(
        kind="vision", mlp=4, patch=16 * 16 * 3,
        fem=dict(n_embd=192, n_head=3, prior_type="softmax", causal=False,
                 conv_bidirectional=True))),
    ("vision_block_linear", dict(
        kind="vision", mlp=4, patch=16 * 16 * 3,
        fem=dict(n_embd=192, n_head=3, prior_type="linear", causal=False,
                 conv_bidirectional=True))),
    ("forecast_block_ssm", dict(
        kind="forecast", mlp=2, channels=7,
        fem=dict(n_embd=128, n_head=4, prior_type="mamba", ssm_rank=16))),
])


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------

def block_parameters(spec):
    """name -> shape of every parameter of a block, in argument order."""
    D = spec["fem"]["n_embd"]
    F = spec["mlp"] * D
    params = OrderedDict()
    kind = spec["kind"]
    if kind == "vision":
        params["patch_embed.weight"] = (D, spec["patch"])
        params["patch_embed.bias"] = (D,)
    if kind == "forecast":
        params["embed.weight"] = (D, spec["channels"])
        params["embed.bias"] = (D,)
    params["norm1.weight"] = (D,)
    if kind == "vision":
        params["norm1.bias"] = (D,)
    cfg = resolve_config(dict(spec["fem"]))
    for name, shape in expected_parameters(cfg).items():
        params["attn." + name] = shape
    params["norm2.weight"] = (D,)
    if kind == "vision":
        params["norm2.bias"] = (D,)
    params["mlp.fc1.weight"] = (F, D)
    params["mlp.fc1.bias"] = (F,)
    params["mlp.fc2.weight"] = (D, F)
    params["mlp.fc2.bias"] = (D,)
    if kind == "forecast":
        params["head.weight"] = (spec["channels"], D)
        params["head.bias"] = (spec["channels"],)
    return params


def input_width(spec):
    return {"lm": spec["fem"]["n_embd"], "vision": spec.get("patch"),
            "forecast": spec.get("channels")}[spec["kind"]]


def random_parameters(spec, seed):
    rng = np.random.default_rng(seed)
    out = OrderedDict()
    for name, shape in block_parameters(spec).items():
        fan_in = shape[-1] if len(shape) == 2 else 1
        if name.endswith("_beta_param"):
            v = rng.uniform(-1.0, 2.5, shape)
        elif name.endswith("A_log"):
            v = rng.uniform(-1.0, 1.5, shape)
        elif name.endswith("out_proj"):
            v = 0.3 * rng.standard_normal(shape)
        elif "norm" in name and name.endswith("weight") or \
                name.endswith("ln.weight"):
            v = 1.0 + 0.1 * rng.standard_normal(shape)
        elif len(shape) == 2:
            v = rng.standard_normal(shape) / math.sqrt(fan_in)
        else:
            v = 0.1 * rng.standard_normal(shape)
        out[name] = v.astype(np.float32)
    return out


# ---------------------------------------------------------------------------
# Emitting a block
# ---------------------------------------------------------------------------

def _rms_norm(ops, src, width, wname):
    """x / sqrt(mean(x^2) + eps) * w over the last axis."""
    def sq(a):
        b = ScalarBody()
        return b.lines, b.v(f"math.fma {a[0]}, {a[0]}, {a[1]} : f32")
    ssq = ops.row_sum(src, width, sq)
    ty = tensor_type("?", "?", width)

    def norm(a):
        b = ScalarBody()
        ms = b.add(b.mul(a[1], b.c(1.0 / width)), b.c(RMS_EPS))
        r = b.v(f"math.rsqrt {ms} : f32")
        return b.lines, b.mul(b.mul(a[0], r), a[2])
    return ops.e.generic(
        ("b", "t", "k"), ["parallel"] * 3,
        [(src, ty, ["b", "t", "k"]), (ssq, tensor_type("?", "?"), ["b", "t"]),
         (ops.arg[wname], tensor_type(width), ["k"])],
        (ops.e.empty(ty), ty, ["b", "t", "k"]), norm)


def _elementwise(ops, width, inputs, fn):
    ty = tensor_type("?", "?", width)
    return ops.e.generic(
        ("b", "t", "k"), ["parallel"] * 3,
        [(v, ty, ["b", "t", "k"]) for v in inputs],
        (ops.e.empty(ty), ty, ["b", "t", "k"]), fn)


def _add(ops, width, a, b):
    def body(args):
        s = ScalarBody()
        return s.lines, s.add(args[0], args[1])
    return _elementwise(ops, width, [a, b], body)


def _activation(ops, width, src, kind):
    def silu(a):
        b = ScalarBody()
        e = b.v(f"math.exp {b.v(f'arith.negf {a[0]} : f32')} : f32")
        return b.lines, b.div(a[0], b.add(b.c(1.0), e))

    def gelu(a):
        # 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), with
        # 1 + tanh(u) = 2 / (1 + exp(-2u)).
        b = ScalarBody()
        x = a[0]
        x3 = b.mul(b.mul(x, x), x)
        u = b.mul(b.c(math.sqrt(2.0 / math.pi)),
                  b.v(f"math.fma {x3}, {b.c(0.044715)}, {x} : f32"))
        e = b.v(f"math.exp {b.mul(u, b.c(-2.0))} : f32")
        return b.lines, b.div(x, b.add(b.c(1.0), e))
    return _elementwise(ops, width, [src], silu if kind == "silu" else gelu)


def emit_block(name, spec):
    """The block's function (text)."""
    D = spec["fem"]["n_embd"]
    F = spec["mlp"] * D
    kind = spec["kind"]
    shapes = block_parameters(spec)
    e = Emitter()
    ops = Ops(e)
    in_w = input_width(spec)
    xty = tensor_type("?", "?", in_w)
    x_dims = "B,T,D" if kind == "lm" else "B,T,C"
    args = [f'%x: {xty} {{fem.name = "x", fem.dims = "{x_dims}"}}']
    values = {}
    for i, (pname, shape) in enumerate(shapes.items()):
        values[pname] = f"%p{i}"
        args.append(f"%p{i}: {tensor_type(*shape)} "
                    f"{{fem.name = {json.dumps(pname)}}}")
    ops.bind(values, dict(shapes))
    prologue(e, "%x", xty)

    h = "%x"
    if kind == "vision":
        h = ops.linear_flat(h, in_w, "patch_embed", D)
    elif kind == "forecast":
        h = ops.linear_flat(h, in_w, "embed", D)
    if kind == "vision":
        n1 = ops.layer_norm(h, D, "norm1.weight", "norm1.bias")
    else:
        n1 = _rms_norm(ops, h, D, "norm1.weight")
    cfg = resolve_config(dict(spec["fem"]))
    fem_names = [k for k in shapes if k.startswith("attn.")]
    layer = LayerEmitter(cfg, [k[5:] for k in fem_names], False, emitter=e,
                         x=n1)
    layer.bind({k[5:]: values[k] for k in fem_names},
               {k[5:]: shapes[k] for k in fem_names})
    a = layer.body()
    h = _add(ops, D, h, a)
    if kind == "vision":
        n2 = ops.layer_norm(h, D, "norm2.weight", "norm2.bias")
    else:
        n2 = _rms_norm(ops, h, D, "norm2.weight")
    m = ops.linear_flat(n2, D, "mlp.fc1", F)
    m = _activation(ops, F, m, "gelu" if kind == "vision" else "silu")
    m = ops.linear_flat(m, F, "mlp.fc2", D)
    h = _add(ops, D, h, m)
    out_w = D
    if kind == "forecast":
        h = ops.linear_flat(h, D, "head", spec["channels"])
        out_w = spec["channels"]
    yty = tensor_type("?", "?", out_w)
    e.op(f"return {h} : {yty}")
    # x is (B, T, D) for the LM block, (B, T, C) patches or channels for
    # the others; y is (B, T, D), or (B, T, C) forecasts.
    dims = "B,T,C" if kind == "forecast" else "B,T,D"
    head = (f"func.func @{name}(\n    " + ",\n    ".join(args) +
            f")\n    -> ({yty} {{fem.name = \"y\", fem.dims = \"{dims}\"}}) {{")
    doc = {
        "lm": "a causal language-model block: h = x + FEM(RMSNorm(x)); "
              "y = h + fc2(silu(fc1(RMSNorm(h))))",
        "vision": "a non-causal vision block over image patches: "
                  "x = patch_embed(patches); h = x + FEM(LN(x)); "
                  "y = h + fc2(gelu(fc1(LN(h))))",
        "forecast": "a time-series forecasting block: x = embed(series); "
                    "h = x + FEM(RMSNorm(x)); h = h + fc2(silu(fc1("
                    "RMSNorm(h)))); y = head(h), the next value of each "
                    "channel",
    }[kind]
    fem = ", ".join(f"{k}={v}" for k, v in spec["fem"].items())
    header = (f"// {name}: {doc}.\n"
              f"// FEM layer: the authors' FreeEnergyMixer({fem}), default "
              "flags otherwise\n"
              "// (docs/semantics.md section 7), emitted by femc's importer.\n"
              "// GENERATED by examples/make_blocks.py; do not edit. "
              "docs/layers-examples.md.\n"
              f"//   femc examples/{name}.mlir -o out\n"
              f"//   fem-run out/{name}.so --kernel {name} --dim B=1 --dim T=256 "
              "--bench 3\n")
    return header + head + "\n" + "\n".join(e.lines) + "\n}\n"


# ---------------------------------------------------------------------------
# The float64 reference of a block
# ---------------------------------------------------------------------------

def reference(spec, params, x):
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    x = np.asarray(x, np.float64)

    def lin(v, n):
        return v @ p[n + ".weight"].T + p[n + ".bias"]

    def rms(v, n):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + RMS_EPS) * \
            p[n + ".weight"]

    def ln(v, n):
        mu = v.mean(-1, keepdims=True)
        var = ((v - mu) ** 2).mean(-1, keepdims=True)
        return (v - mu) / np.sqrt(var + LN_EPS) * p[n + ".weight"] + \
            p[n + ".bias"]

    def silu(v):
        return v / (1 + np.exp(-v))

    def gelu(v):
        return 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) *
                                      (v + 0.044715 * v ** 3)))
    kind = spec["kind"]
    h = x
    if kind == "vision":
        h = lin(h, "patch_embed")
    elif kind == "forecast":
        h = lin(h, "embed")
    norm = ln if kind == "vision" else rms
    fem_params = {k[5:]: v for k, v in p.items() if k.startswith("attn.")}
    h = h + layer_reference.forward(fem_params, spec["fem"], norm(h, "norm1"))
    act = gelu if kind == "vision" else silu
    h = h + lin(act(lin(norm(h, "norm2"), "mlp.fc1")), "mlp.fc2")
    if kind == "forecast":
        h = lin(h, "head")
    return h


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

def generate(out_dir):
    paths = []
    for name, spec in BLOCKS.items():
        # The FEM layer's own parameters pass the importer's checks.
        params = random_parameters(spec, 0)
        check_layer({k[5:]: v for k, v in params.items()
                     if k.startswith("attn.")}, dict(spec["fem"]))
        path = os.path.join(out_dir, name + ".mlir")
        with open(path, "w", encoding="utf-8") as f:
            f.write(emit_block(name, spec))
        paths.append(path)
    return paths


def check(femc_bin, work, bench, threads):
    failures = 0
    for name, spec in BLOCKS.items():
        path = os.path.join(work, name + ".mlir")
        committed = os.path.join(HERE, name + ".mlir")
        with open(path) as f, open(committed) as g:
            if f.read() != g.read():
                print(f"{name}: examples/{name}.mlir is not what "
                      "make_blocks.py generates; rerun python3 "
                      "examples/make_blocks.py")
                failures += 1
                continue
        t0 = time.perf_counter()
        lib = os.path.join(work, "lib_" + name)
        r = subprocess.run([femc_bin, committed, "-o", lib],
                           capture_output=True, text=True)
        if r.returncode:
            print(f"{name}: femc failed:\n{r.stderr}")
            failures += 1
            continue
        t_compile = time.perf_counter() - t0
        kernel = femc.load(os.path.join(lib, name + ".so")).kernel(name)
        params = random_parameters(spec, 1)
        rng = np.random.default_rng(2)
        worst = 0.0
        # T = 130 runs past the kernels' tiles (64 keys, 192 query rows
        # split over the pool's workers) and the TDC's scan chunks.
        for B, T in ((2, 37), (1, 1), (1, 130)):
            x = rng.standard_normal((B, T, input_width(spec))).astype(
                np.float32)
            y = kernel.run(x=x, **params)
            ref = reference(spec, params, x)
            err = float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))
            worst = max(worst, err)
        status = "PASS" if worst <= TOL else "FAIL"
        failures += status == "FAIL"
        line = (f"{name}: max |y - ref| / max |ref| = {worst:.2e} "
                f"(tolerance {TOL:g}) {status}; compile {t_compile:.1f} s")
        for T in bench:
            x = rng.standard_normal((1, T, input_width(spec))).astype(
                np.float32)
            kernel.run(x=x, **params)
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                kernel.run(x=x, **params)
                times.append(time.perf_counter() - t0)
            line += f"; T={T}: {min(times) * 1e3:.1f} ms"
        print(line, flush=True)
    return failures


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=HERE,
                    help="where to write the .mlir files (default: examples/)")
    ap.add_argument("--check", action="store_true",
                    help="generate into a temporary folder, check that "
                    "examples/*.mlir are current, compile, run and compare")
    ap.add_argument("--femc", default="femc", help="the femc compiler")
    ap.add_argument("--bench", type=int, nargs="*", default=[],
                    metavar="T", help="with --check: time B=1 at these T")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        femc.set_num_threads(args.threads)
    if not args.check:
        for p in generate(args.out):
            print("wrote", p)
        return 0
    with tempfile.TemporaryDirectory() as work:
        generate(work)
        failures = check(args.femc, work, args.bench, args.threads)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

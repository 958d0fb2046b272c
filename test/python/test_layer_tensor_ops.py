"""Tensor ops in a layer body (docs/layers.md, "What a layer body may
contain") beyond the importer's linalg.generic form: element-wise arith and
math ops on whole tensors (`arith.mulf %a, %b : tensor<...>`, which stopped
bufferization with "op was not bufferized" before the layer pipeline ran
convert-elementwise-to-linalg) and linalg.softmax (which failed in the LLVM
translation before fem-decompose-aggregates). Each layer's output is checked
against the same FEM read compiled as a kernel, the other ops in numpy, and
the layer must leave its inputs as they were (an element-wise op's
destination is its first operand: bufferized in place, it overwrote the
caller's k and q before fem-layer-inputs-read-only).
"""

import numpy as np

import femc

SHAPE = "tensor<?x?x4x64xf32>"

READ = f"""
  %out = fem.mixer softmax q(%q : {SHAPE}) k(%k : {SHAPE}) v(%v : {SHAPE})
      beta_raw(%beta_raw : tensor<256xf32>) lam(%lam : {SHAPE})
      gate(%gate : {SHAPE}) {{causal}} -> {SHAPE}"""

ARGS = (f"%q: {SHAPE}, %k: {SHAPE}, %v: {SHAPE}, %beta_raw: tensor<256xf32>, "
        f"%lam: {SHAPE}, %gate: {SHAPE}")

KERNEL = f"""
func.func @fem_read({ARGS}) -> {SHAPE} {{{READ}
  return %out : {SHAPE}
}}
"""

# The read's output squared, plus exp of the query times the gate; the keys
# k*k + q and the values softmax(v) over each head's 64 channels (ops before
# the mixer).
NAMED = ", ".join(
    f"%{n}: {t} {{fem.name = \"{n}\", fem.dims = \"{d}\"}}"
    for n, t, d in (("q", SHAPE, "B,T,H,d"), ("k", SHAPE, "B,T,H,d"),
                    ("v", SHAPE, "B,T,H,d"), ("beta_raw", "tensor<256xf32>", "E"),
                    ("lam", SHAPE, "B,T,H,d"), ("gate", SHAPE, "B,T,H,d")))

LAYER = f"""
func.func @layer({NAMED}) -> ({SHAPE} {{fem.dims = "B,T,H,d"}}) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %q, %c0 : {SHAPE}
  %T = tensor.dim %q, %c1 : {SHAPE}
  %empty = tensor.empty(%B, %T) : {SHAPE}
  %vs = linalg.softmax dimension(3) ins(%v : {SHAPE}) outs(%empty : {SHAPE})
      -> {SHAPE}
  %ks = arith.mulf %k, %k : {SHAPE}
  %k2 = arith.addf %ks, %q : {SHAPE}
  %out = fem.mixer softmax q(%q : {SHAPE}) k(%k2 : {SHAPE}) v(%vs : {SHAPE})
      beta_raw(%beta_raw : tensor<256xf32>) lam(%lam : {SHAPE})
      gate(%gate : {SHAPE}) {{causal}} -> {SHAPE}
  %sq = arith.mulf %out, %out : {SHAPE}
  %e = math.exp %q : {SHAPE}
  %eg = arith.mulf %e, %gate : {SHAPE}
  %y = arith.addf %sq, %eg : {SHAPE}
  return %y : {SHAPE}
}}
"""


def _compile(tmp_path, name, text, femc_bin):
    src = tmp_path / f"{name}.mlir"
    src.write_text(text)
    return femc.compile(str(src), str(tmp_path / name), femc=femc_bin)


def test_tensor_ops_in_a_layer(tmp_path, femc_bin):
    read = _compile(tmp_path, "fem_read", KERNEL, femc_bin).kernel("fem_read")
    layer = _compile(tmp_path, "layer", LAYER, femc_bin).kernel("layer")
    assert layer.layer
    rng = np.random.default_rng(7)
    for B, T in ((1, 1), (2, 37), (1, 200)):
        q, k, v, gate = (rng.standard_normal((B, T, 4, 64), dtype=np.float32)
                         for _ in range(4))
        lam = rng.uniform(0, 1, (B, T, 4, 64)).astype(np.float32)
        beta_raw = rng.uniform(-1, 2, 256).astype(np.float32)
        k2 = k * k + q
        e = np.exp(v.astype(np.float64) - v.max(-1, keepdims=True))
        vs = (e / e.sum(-1, keepdims=True)).astype(np.float32)
        mixed = read.run(q=q, k=k2, v=vs, beta_raw=beta_raw, lam=lam,
                         gate=gate)
        want = mixed * mixed + np.exp(q) * gate
        inputs = dict(q=q, k=k, v=v, beta_raw=beta_raw, lam=lam, gate=gate)
        saved = {n: a.copy() for n, a in inputs.items()}
        got = layer.run(**inputs)
        assert got.shape == want.shape
        # The layer never writes its caller's arrays (k*k and q's exp have
        # k and q as destinations: fem-layer-inputs-read-only), so a second
        # call gives the same output.
        for n, a in inputs.items():
            np.testing.assert_array_equal(a, saved[n], err_msg=n)
        np.testing.assert_array_equal(layer.run(**inputs), got)
        # Same read; exp, the softmax and the products round differently
        # from numpy's by an ulp or two, and the read carries that through
        # (a wrong axis or a lost op is off by O(1)).
        np.testing.assert_allclose(got, want, rtol=1e-5,
                                   atol=1e-5 * np.abs(want).max())


# A layer returning one of its arguments (the read's output unused): the
# result is a copy the caller owns (bufferization.clone, lowered by
# convert-bufferization-to-memref; it used to fail in the LLVM translation).
RETURNS_ARG = f"""
func.func @returns_arg({NAMED}) -> ({SHAPE} {{fem.dims = "B,T,H,d"}}) {{{READ}
  return %v : {SHAPE}
}}
"""


def test_a_layer_returning_its_argument(tmp_path, femc_bin):
    layer = _compile(tmp_path, "returns_arg", RETURNS_ARG,
                     femc_bin).kernel("returns_arg")
    rng = np.random.default_rng(3)
    q, k, v, lam, gate = (rng.standard_normal((2, 5, 4, 64), dtype=np.float32)
                          for _ in range(5))
    beta_raw = rng.uniform(-1, 2, 256).astype(np.float32)
    got = layer.run(q=q, k=k, v=v, beta_raw=beta_raw, lam=lam, gate=gate)
    np.testing.assert_array_equal(got, v)
    assert not np.shares_memory(got, v)

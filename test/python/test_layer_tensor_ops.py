"""Element-wise arith and math ops on whole tensors in a layer body
(docs/layers.md, "What a layer body may contain"): `arith.mulf %a, %b :
tensor<...>` is legal MLIR, and femc's layer pipeline turns it into a
linalg.generic loop stage (convert-elementwise-to-linalg) instead of stopping
in bufferization with "op was not bufferized". The layer's output is checked
against the same FEM read compiled as a kernel, with the element-wise ops
applied in numpy.
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

# The read's output squared, plus exp of the query, times the gate; the
# query's exp also feeds the read's keys (an op before the mixer).
NAMED = ", ".join(
    f"%{n}: {t} {{fem.name = \"{n}\", fem.dims = \"{d}\"}}"
    for n, t, d in (("q", SHAPE, "B,T,H,d"), ("k", SHAPE, "B,T,H,d"),
                    ("v", SHAPE, "B,T,H,d"), ("beta_raw", "tensor<256xf32>", "E"),
                    ("lam", SHAPE, "B,T,H,d"), ("gate", SHAPE, "B,T,H,d")))

LAYER = f"""
func.func @layer({NAMED}) -> ({SHAPE} {{fem.dims = "B,T,H,d"}}) {{
  %ks = arith.mulf %k, %k : {SHAPE}
  %k2 = arith.addf %ks, %q : {SHAPE}
  %out = fem.mixer softmax q(%q : {SHAPE}) k(%k2 : {SHAPE}) v(%v : {SHAPE})
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


def test_elementwise_tensor_ops_in_a_layer(tmp_path, femc_bin):
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
        mixed = read.run(q=q, k=k2, v=v, beta_raw=beta_raw, lam=lam,
                         gate=gate)
        want = mixed * mixed + np.exp(q) * gate
        got = layer.run(q=q, k=k, v=v, beta_raw=beta_raw, lam=lam,
                        gate=gate)
        assert got.shape == want.shape
        # Same read, same inputs; exp and the products may round differently
        # from numpy's by an ulp or two.
        np.testing.assert_allclose(got, want, rtol=2e-6,
                                   atol=2e-6 * np.abs(want).max())

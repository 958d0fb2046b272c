// A kernel-level FEM read with the gla prior (docs/semantics.md): linear
// attention with a per-step decay a_t = -(relu(decay_t) + eps), always
// causal, 4 heads with dk = 32 and dv = 64, any batch size and length.
// `decay` (B,T,H) holds the decay logits.
//
//   femc examples/gla_fem.mlir -o out/
//   fem-run out/gla_fem.so --dim B=2 --dim T=1000 --check
func.func @gla_fem(%q: tensor<?x?x4x32xf32>, %k: tensor<?x?x4x32xf32>,
                   %v: tensor<?x?x4x64xf32>, %beta_raw: tensor<256xf32>,
                   %lam: tensor<?x?x4x64xf32>, %gate: tensor<?x?x4x64xf32>,
                   %decay: tensor<?x?x4xf32>) -> tensor<?x?x4x64xf32> {
  %out = fem.mixer gla q(%q : tensor<?x?x4x32xf32>)
      k(%k : tensor<?x?x4x32xf32>) v(%v : tensor<?x?x4x64xf32>)
      beta_raw(%beta_raw : tensor<256xf32>) lam(%lam : tensor<?x?x4x64xf32>)
      gate(%gate : tensor<?x?x4x64xf32>) decay(%decay : tensor<?x?x4xf32>)
      -> tensor<?x?x4x64xf32>
  return %out : tensor<?x?x4x64xf32>
}

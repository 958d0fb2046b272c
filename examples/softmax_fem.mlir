// A kernel-level FEM read with the softmax prior (docs/semantics.md):
// causal, layout bthd, 8 heads of width 64, any batch size and length.
// Operands are named and ordered as in semantics.md.
//
//   femc examples/softmax_fem.mlir -o out/
//   fem-run out/softmax_fem.so --dim B=1 --dim T=1024 --check
func.func @softmax_fem(%q: tensor<?x?x8x64xf32>, %k: tensor<?x?x8x64xf32>,
                       %v: tensor<?x?x8x64xf32>, %beta_raw: tensor<512xf32>,
                       %lam: tensor<?x?x8x64xf32>, %gate: tensor<?x?x8x64xf32>)
    -> tensor<?x?x8x64xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x8x64xf32>)
      k(%k : tensor<?x?x8x64xf32>) v(%v : tensor<?x?x8x64xf32>)
      beta_raw(%beta_raw : tensor<512xf32>) lam(%lam : tensor<?x?x8x64xf32>)
      gate(%gate : tensor<?x?x8x64xf32>) {causal} -> tensor<?x?x8x64xf32>
  return %out : tensor<?x?x8x64xf32>
}

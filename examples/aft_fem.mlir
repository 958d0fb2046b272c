// A kernel-level FEM read with the aft prior (the reference's rnn_softmax,
// docs/semantics.md): a per-channel causal softmax over keys scaled by the
// normalised query; channel j of [V | X] (width 2 dv) uses q/k channel
// j mod dk, so dk must divide 2 dv. 4 heads with dk = 16 and dv = 64, any
// batch size and length.
//
//   femc examples/aft_fem.mlir -o out/
//   fem-run out/aft_fem.so --dim B=2 --dim T=1000 --check
func.func @aft_fem(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x4x16xf32>,
                   %v: tensor<?x?x4x64xf32>, %beta_raw: tensor<256xf32>,
                   %lam: tensor<?x?x4x64xf32>, %gate: tensor<?x?x4x64xf32>)
    -> tensor<?x?x4x64xf32> {
  %out = fem.mixer aft q(%q : tensor<?x?x4x16xf32>)
      k(%k : tensor<?x?x4x16xf32>) v(%v : tensor<?x?x4x64xf32>)
      beta_raw(%beta_raw : tensor<256xf32>) lam(%lam : tensor<?x?x4x64xf32>)
      gate(%gate : tensor<?x?x4x64xf32>) -> tensor<?x?x4x64xf32>
  return %out : tensor<?x?x4x64xf32>
}

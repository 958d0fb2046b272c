// Two kernels of different priors in one model, for per-kernel tuning
// (test/tune/fem-apply-tuning.test).
func.func @linear_small(%q: tensor<?x?x2x16xf32>, %k: tensor<?x?x2x16xf32>,
                        %v: tensor<?x?x2x16xf32>, %beta_raw: tensor<32xf32>,
                        %lam: tensor<?x?x2x16xf32>, %gate: tensor<?x?x2x16xf32>)
    -> tensor<?x?x2x16xf32> {
  %out = fem.mixer linear q(%q : tensor<?x?x2x16xf32>)
      k(%k : tensor<?x?x2x16xf32>) v(%v : tensor<?x?x2x16xf32>)
      beta_raw(%beta_raw : tensor<32xf32>) lam(%lam : tensor<?x?x2x16xf32>)
      gate(%gate : tensor<?x?x2x16xf32>) {causal} -> tensor<?x?x2x16xf32>
  return %out : tensor<?x?x2x16xf32>
}
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

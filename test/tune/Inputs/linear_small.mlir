// A small linear-prior kernel for fem-tune's tests: 2 heads of width 16.
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

func.func @cap_positive(%q: tensor<1x8x4x16xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{attribute 'cap' must lie in [1e-05, 43], found -1}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%q : tensor<1x8x4x16xf32>)
      beta_raw(%b : tensor<64xf32>) lam(%q : tensor<1x8x4x16xf32>) gate(%q : tensor<1x8x4x16xf32>) {cap = -1.0 : f64} -> tensor<1x8x4x16xf32>
  return
}

func.func @eps_nan(%q: tensor<1x8x4x16xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{attribute 'eps' must lie in [1e-30, 1e+30], found nan}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%q : tensor<1x8x4x16xf32>)
      beta_raw(%b : tensor<64xf32>) lam(%q : tensor<1x8x4x16xf32>) gate(%q : tensor<1x8x4x16xf32>) {eps = 0x7FF8000000000000 : f64} -> tensor<1x8x4x16xf32>
  return
}

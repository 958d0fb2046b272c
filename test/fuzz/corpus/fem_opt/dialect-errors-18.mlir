func.func @eps_too_small(%q: tensor<1x8x4x16xf32>) {
  // expected-error @+1 {{attribute 'eps' must lie in [1e-30, 1e+30], found 1e-31}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) {eps = 1.0e-31 : f64} -> !fem.prior<softmax, 1x4x8x8>
  return
}

func.func @eps_positive(%q: tensor<1x8x4x16xf32>) {
  // expected-error @+1 {{attribute 'eps' must lie in [1e-30, 1e+30], found 0}}
  %p = fem.prior linear q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) {eps = 0.0 : f64} -> !fem.prior<linear, 1x4x8x8>
  return
}

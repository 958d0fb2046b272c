func.func @negative_linear(%q: tensor<1x8x1x8xf32>, %b: tensor<8xf32>) -> tensor<1x8x1x8xf32> {
  // expected-error @+1 {{fem-tile: prior 'linear' cannot be tiled yet; this version tiles the softmax prior}}
  %0 = fem.mixer linear q(%q : tensor<1x8x1x8xf32>) k(%q : tensor<1x8x1x8xf32>)
      v(%q : tensor<1x8x1x8xf32>) beta_raw(%b : tensor<8xf32>) lam(%q : tensor<1x8x1x8xf32>)
      gate(%q : tensor<1x8x1x8xf32>) {causal} -> tensor<1x8x1x8xf32>
  return %0 : tensor<1x8x1x8xf32>
}

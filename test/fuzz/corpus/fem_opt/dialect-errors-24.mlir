func.func @scale_only_softmax(%q: tensor<1x8x4x16xf32>) {
  // expected-error @+1 {{attribute 'scale' is only valid for prior 'softmax', found prior 'linear'}}
  %p = fem.prior linear q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) {scale = 0.5 : f64} -> !fem.prior<linear, 1x4x8x8>
  return
}

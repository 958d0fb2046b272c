func.func @prior_kind_mismatch(%q: tensor<1x8x4x16xf32>) {
  // expected-error @+1 {{result type must be a prior of kind 'softmax', found 'linear'}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) -> !fem.prior<linear, 1x4x8x8>
  return
}

func.func @prior_result_extent(%q: tensor<1x8x4x16xf32>) {
  // expected-error @+1 {{result dimension 1 (H) must be 4 to match operand 'q', found 8}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) -> !fem.prior<softmax, 1x8x8x8>
  return
}

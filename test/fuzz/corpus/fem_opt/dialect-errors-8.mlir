func.func @decay_only_for_gla(%q: tensor<1x8x4x16xf32>, %d: tensor<1x8x4xf32>) {
  // expected-error @+1 {{operand 'decay' is not used by prior 'softmax'}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) decay(%d : tensor<1x8x4xf32>) -> !fem.prior<softmax, 1x4x8x8>
  return
}

func.func @grouped_heads(%q: tensor<1x8x4x16xf32>, %k: tensor<1x8x3x16xf32>) {
  // expected-error @+1 {{the number of query heads H = 4 (operand 'q') must be a multiple of the number of key/value heads Hkv = 3 (operand 'k')}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%k : tensor<1x8x3x16xf32>) -> !fem.prior<softmax, 1x4x8x8>
  return
}

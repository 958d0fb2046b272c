func.func @batch(%q: tensor<2x8x4x16xf32>, %k: tensor<3x8x4x16xf32>) {
  // expected-error @+1 {{operand 'k' dimension 0 (B) must be 2 to match operand 'q', found 3}}
  %p = fem.prior softmax q(%q : tensor<2x8x4x16xf32>) k(%k : tensor<3x8x4x16xf32>) -> !fem.prior<softmax, 2x4x8x8>
  return
}

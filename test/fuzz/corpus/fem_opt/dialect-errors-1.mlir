func.func @head_dim(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x4x32xf32>) {
  // expected-error @+1 {{operand 'k' dimension 3 (dk) must be 16 to match operand 'q', found 32}}
  %p = fem.prior softmax q(%q : tensor<2x8x4x16xf32>) k(%k : tensor<2x8x4x32xf32>) -> !fem.prior<softmax, 2x4x8x8>
  return
}

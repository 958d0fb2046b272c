func.func @causal_needs_same_length(%q: tensor<2x8x4x16xf32>, %k: tensor<2x9x4x16xf32>) {
  // expected-error @+1 {{operand 'k' dimension 1 (T) must be 8 to match operand 'q', found 9}}
  %p = fem.prior softmax q(%q : tensor<2x8x4x16xf32>) k(%k : tensor<2x9x4x16xf32>) {causal} -> !fem.prior<softmax, 2x4x8x8>
  return
}

func.func @element_types(%q: tensor<1x8x4x16xf32>, %k: tensor<1x8x4x16xf16>) {
  // expected-error @+1 {{operand 'k' has element type 'f16', expected 'f32' (the element type of 'q')}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%k : tensor<1x8x4x16xf16>) -> !fem.prior<softmax, 1x4x8x8>
  return
}

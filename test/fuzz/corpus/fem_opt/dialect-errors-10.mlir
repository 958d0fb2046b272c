func.func @mask_shape(%q: tensor<1x8x4x16xf32>, %m: tensor<2x8xi1>) {
  // expected-error @+1 {{operand 'mask' dimension 0 (B) must be 1 to match operand 'q', found 2}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) mask(%m : tensor<2x8xi1>) -> !fem.prior<softmax, 1x4x8x8>
  return
}

func.func @mask_not_for_gla(%q: tensor<1x8x4x16xf32>, %d: tensor<1x8x4xf32>, %m: tensor<1x8xi1>) {
  // expected-error @+1 {{operand 'mask' is not used by prior 'gla'}}
  %p = fem.prior gla q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) mask(%m : tensor<1x8xi1>) decay(%d : tensor<1x8x4xf32>) -> !fem.prior<gla, 1x4x8x8>
  return
}

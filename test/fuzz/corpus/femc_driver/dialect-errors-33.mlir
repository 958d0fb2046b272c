func.func @fused_mask_prior(%q: tensor<1x8x4x16xf32>, %d: tensor<1x8x4xf32>, %b: tensor<64xf32>, %m: tensor<1x8xi1>) {
  %p = fem.prior gla q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) decay(%d : tensor<1x8x4xf32>) -> !fem.prior<gla, 1x4x8x8>
  // expected-error @+1 {{operand 'mask' is not used by prior 'gla'}}
  %o = fem.fused_read %p, %q, %b, %q, %q mask(%m : tensor<1x8xi1>) : !fem.prior<gla, 1x4x8x8>, tensor<1x8x4x16xf32>,
      tensor<64xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32> -> tensor<1x8x4x16xf32>
  return
}

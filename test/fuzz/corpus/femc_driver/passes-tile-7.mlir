// Reads that were not fused cannot be compiled.
func.func @negative_unfused(%q: tensor<1x8x4x16xf32>, %v: tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) {causal}
      -> !fem.prior<softmax, 1x4x8x8>
  // expected-error @+1 {{fem-tile: 'fem.expect' was not fused into a fem.fused_read}}
  %mu = fem.expect %p, %v : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32> -> tensor<1x8x4x16xf32>
  return %mu : tensor<1x8x4x16xf32>
}

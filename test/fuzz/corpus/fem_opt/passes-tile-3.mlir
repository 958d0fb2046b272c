func.func @negative_not_kernel_level(%q: tensor<1x8x1x8xf32>, %b: tensor<8xf32>) -> tensor<1x8x1x8xf32> {
  // expected-error @+1 {{fem-tile: function @negative_not_kernel_level is not a kernel-level function: found 'arith.addf'}}
  %x = arith.addf %q, %q : tensor<1x8x1x8xf32>
  %0 = fem.mixer softmax q(%x : tensor<1x8x1x8xf32>) k(%q : tensor<1x8x1x8xf32>)
      v(%q : tensor<1x8x1x8xf32>) beta_raw(%b : tensor<8xf32>) lam(%q : tensor<1x8x1x8xf32>)
      gate(%q : tensor<1x8x1x8xf32>) -> tensor<1x8x1x8xf32>
  return %0 : tensor<1x8x1x8xf32>
}

func.func @lse_result_type(%q: tensor<1x8x4x16xf32>, %x: tensor<1x8x4x16xf32>, %m: tensor<1x4x16xf32>, %b: tensor<64xf32>) {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) -> !fem.prior<softmax, 1x4x8x8>
  // expected-error @+1 {{operand 'out' has element type 'bf16', expected 'f32' (the element type of 'beta_raw')}}
  %f = fem.lse %p, %x, %m, %b : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32>, tensor<1x4x16xf32>, tensor<64xf32> -> tensor<1x8x4x16xbf16>
  return
}

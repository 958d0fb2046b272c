func.func @lse_element_type(%q: tensor<1x8x4x16xf32>, %x: tensor<1x8x4x16xbf16>, %m: tensor<1x4x16xf32>, %b: tensor<64xf32>) {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) -> !fem.prior<softmax, 1x4x8x8>
  // expected-error @+1 {{result element type 'f32' must match operand 'tilted' element type 'bf16'}}
  %f = fem.lse %p, %x, %m, %b : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xbf16>, tensor<1x4x16xf32>, tensor<64xf32> -> tensor<1x8x4x16xf32>
  return
}

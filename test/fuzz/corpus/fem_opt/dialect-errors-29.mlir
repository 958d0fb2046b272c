func.func @expect_element_type(%q: tensor<1x8x4x16xf32>, %vt: tensor<1x8x4x16xf32>) {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) -> !fem.prior<softmax, 1x4x8x8>
  // expected-error @+1 {{result element type 'f16' must match operand 'values' element type 'f32'}}
  %mu = fem.expect %p, %vt : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32> -> tensor<1x8x4x16xf16>
  return
}

func.func @expect_values(%q: tensor<1x8x4x16xf32>, %vt: tensor<1x9x4x16xf32>) {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) -> !fem.prior<softmax, 1x4x8x8>
  // expected-error @+1 {{operand 'values' dimension 1 (S) must be 8 to match operand 'prior', found 9}}
  %mu = fem.expect %p, %vt : !fem.prior<softmax, 1x4x8x8>, tensor<1x9x4x16xf32> -> tensor<1x8x4x16xf32>
  return
}

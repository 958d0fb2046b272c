func.func @beta_length(%q: tensor<1x8x4x16xf32>, %v: tensor<1x8x4x16xf32>, %b: tensor<60xf32>) {
  // expected-error @+1 {{E (operand 'beta_raw') must equal H * dv = 4 * 16 = 64, found 60}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%v : tensor<1x8x4x16xf32>)
      beta_raw(%b : tensor<60xf32>) lam(%v : tensor<1x8x4x16xf32>) gate(%v : tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32>
  return
}

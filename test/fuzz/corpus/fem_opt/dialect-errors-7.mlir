func.func @gla_needs_decay(%q: tensor<1x8x4x16xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{prior 'gla' requires operand 'decay'}}
  %0 = fem.mixer gla q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%q : tensor<1x8x4x16xf32>)
      beta_raw(%b : tensor<64xf32>) lam(%q : tensor<1x8x4x16xf32>) gate(%q : tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32>
  return
}

func.func @aft_dk_divides_dv(%q: tensor<1x8x4x16xf32>, %v: tensor<1x8x4x24xf32>, %b: tensor<96xf32>) {
  // expected-error @+1 {{prior 'aft' requires dk to divide dv, found dk = 16 and dv = 24}}
  %0 = fem.mixer aft q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%v : tensor<1x8x4x24xf32>)
      beta_raw(%b : tensor<96xf32>) lam(%v : tensor<1x8x4x24xf32>) gate(%v : tensor<1x8x4x24xf32>) -> tensor<1x8x4x24xf32>
  return
}

func.func @scale_overflows_f32(%q: tensor<1x8x4x16xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{attribute 'scale' must lie in [1.17549435e-38, 3.40282347e+38], found 3.5e+38}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%q : tensor<1x8x4x16xf32>)
      beta_raw(%b : tensor<64xf32>) lam(%q : tensor<1x8x4x16xf32>) gate(%q : tensor<1x8x4x16xf32>) {scale = 3.5e38 : f64} -> tensor<1x8x4x16xf32>
  return
}

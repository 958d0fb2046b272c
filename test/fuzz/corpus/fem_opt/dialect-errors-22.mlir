func.func @scale_too_small(%q: tensor<1x8x4x16xf32>) {
  // expected-error @+1 {{attribute 'scale' must lie in [1.17549435e-38, 3.40282347e+38], found 1e-39}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) {scale = 1.0e-39 : f64} -> !fem.prior<softmax, 1x4x8x8>
  return
}

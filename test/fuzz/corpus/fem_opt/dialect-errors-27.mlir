func.func @tilt_shift_shape(%v: tensor<1x8x4x16xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{result 'shift' dimension 2 (dv) must be 16 to match operand 'v', found 8}}
  %c, %x, %m = fem.tilt %v, %b : tensor<1x8x4x16xf32>, tensor<64xf32>
      -> tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x4x8xf32>
  return
}

// f16 and bf16 element types are accepted (f32 accumulation is the lowering's job).
// CHECK-LABEL: func.func @half_types
//       CHECK:   fem.mixer softmax {{.*}} -> tensor<1x8x2x8xf16>
//       CHECK:   fem.mixer softmax {{.*}} -> tensor<1x8x2x8xbf16>
func.func @half_types(%h: tensor<1x8x2x8xf16>, %bh: tensor<16xf16>,
                      %g: tensor<1x8x2x8xbf16>, %bg: tensor<16xbf16>)
    -> (tensor<1x8x2x8xf16>, tensor<1x8x2x8xbf16>) {
  %0 = fem.mixer softmax q(%h : tensor<1x8x2x8xf16>) k(%h : tensor<1x8x2x8xf16>)
      v(%h : tensor<1x8x2x8xf16>) beta_raw(%bh : tensor<16xf16>) lam(%h : tensor<1x8x2x8xf16>)
      gate(%h : tensor<1x8x2x8xf16>) -> tensor<1x8x2x8xf16>
  %1 = fem.mixer softmax q(%g : tensor<1x8x2x8xbf16>) k(%g : tensor<1x8x2x8xbf16>)
      v(%g : tensor<1x8x2x8xbf16>) beta_raw(%bg : tensor<16xbf16>) lam(%g : tensor<1x8x2x8xbf16>)
      gate(%g : tensor<1x8x2x8xbf16>) -> tensor<1x8x2x8xbf16>
  return %0, %1 : tensor<1x8x2x8xf16>, tensor<1x8x2x8xbf16>
}

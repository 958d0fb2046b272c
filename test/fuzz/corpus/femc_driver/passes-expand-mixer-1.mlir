// Non-causal reads keep a separate key extent S; bhtd puts heads second.
// CHECK-LABEL: func.func @expand_cross_bhtd
//       CHECK:   fem.prior softmax {{.*}} {layout = #fem.layout<bhtd>} -> !fem.prior<softmax, 2x4x8x12>
//       CHECK:   fem.tilt {{.*}} -> tensor<2x4x12x16xf32>, tensor<2x4x12x16xf32>, tensor<2x4x16xf32>
func.func @expand_cross_bhtd(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x12x16xf32>,
    %b: tensor<64xf32>, %l: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %0 = fem.mixer softmax q(%q : tensor<2x4x8x16xf32>) k(%k : tensor<2x4x12x16xf32>)
      v(%k : tensor<2x4x12x16xf32>) beta_raw(%b : tensor<64xf32>) lam(%l : tensor<2x4x8x16xf32>)
      gate(%l : tensor<2x4x8x16xf32>) {layout = #fem.layout<bhtd>} -> tensor<2x4x8x16xf32>
  return %0 : tensor<2x4x8x16xf32>
}

// The ssm prior squashes its values, so its tilt is marked `squash`.
// CHECK-LABEL: func.func @expand_ssm
//       CHECK:   fem.prior ssm delta
//       CHECK:   fem.tilt {{.*}} {squash}
func.func @expand_ssm(%v: tensor<1x8x4x16xf32>, %b: tensor<64xf32>, %delta: tensor<1x8x64xf32>,
    %A: tensor<64x8xf32>, %Bs: tensor<1x8x8xf32>, %D: tensor<64xf32>) -> tensor<1x8x4x16xf32> {
  %0 = fem.mixer ssm v(%v : tensor<1x8x4x16xf32>) beta_raw(%b : tensor<64xf32>)
      lam(%v : tensor<1x8x4x16xf32>) gate(%v : tensor<1x8x4x16xf32>)
      delta(%delta : tensor<1x8x64xf32>) A(%A : tensor<64x8xf32>) Bs(%Bs : tensor<1x8x8xf32>)
      Cs(%Bs : tensor<1x8x8xf32>) D(%D : tensor<64xf32>) -> tensor<1x8x4x16xf32>
  return %0 : tensor<1x8x4x16xf32>
}

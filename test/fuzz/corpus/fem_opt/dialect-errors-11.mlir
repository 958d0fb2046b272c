func.func @ssm_without_keys(%q: tensor<1x8x4x16xf32>, %delta: tensor<1x8x64xf32>, %A: tensor<64x8xf32>, %Bs: tensor<1x8x8xf32>, %D: tensor<64xf32>) {
  // expected-error @+1 {{operand 'q' is not used by prior 'ssm'}}
  %p = fem.prior ssm q(%q : tensor<1x8x4x16xf32>) delta(%delta : tensor<1x8x64xf32>) A(%A : tensor<64x8xf32>)
      Bs(%Bs : tensor<1x8x8xf32>) Cs(%Bs : tensor<1x8x8xf32>) D(%D : tensor<64xf32>) -> !fem.prior<ssm, 1x4x8x8>
  return
}

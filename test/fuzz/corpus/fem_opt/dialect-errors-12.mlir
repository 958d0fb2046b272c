func.func @ssm_state_size(%delta: tensor<1x8x64xf32>, %A: tensor<64x8xf32>, %Bs: tensor<1x8x8xf32>, %Cs: tensor<1x8x4xf32>, %D: tensor<64xf32>) {
  // expected-error @+1 {{operand 'Cs' dimension 2 (N) must be 8 to match operand 'A', found 4}}
  %p = fem.prior ssm delta(%delta : tensor<1x8x64xf32>) A(%A : tensor<64x8xf32>)
      Bs(%Bs : tensor<1x8x8xf32>) Cs(%Cs : tensor<1x8x4xf32>) D(%D : tensor<64xf32>) -> !fem.prior<ssm, 1x8x8x8>
  return
}

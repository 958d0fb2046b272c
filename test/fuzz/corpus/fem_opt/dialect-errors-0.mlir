// Every verifier message of the fem dialect, one case each.

func.func @rank(%q: tensor<2x8x4xf32>, %k: tensor<2x8x4x16xf32>) {
  // expected-error @+1 {{operand 'q' must have rank 4 (B,T,H,dk), found rank 3}}
  %p = fem.prior softmax q(%q : tensor<2x8x4xf32>) k(%k : tensor<2x8x4x16xf32>) -> !fem.prior<softmax, 2x4x8x8>
  return
}

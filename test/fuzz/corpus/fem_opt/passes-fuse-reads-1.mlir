// Reads of two different priors must stay apart.
// CHECK-LABEL: func.func @negative_fuse_different_priors
//   CHECK-COUNT-2: fem.prior
//       CHECK:   fem.expect
//       CHECK:   fem.lse
//       CHECK:   fem.gate
//   CHECK-NOT:   fem.fused_read
func.func @negative_fuse_different_priors(%q: tensor<1x8x4x16xf32>, %v: tensor<1x8x4x16xf32>,
    %b: tensor<64xf32>) -> tensor<1x8x4x16xf32> {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) {causal}
      -> !fem.prior<softmax, 1x4x8x8>
  %p2 = fem.prior softmax q(%v : tensor<1x8x4x16xf32>) k(%v : tensor<1x8x4x16xf32>) {causal}
      -> !fem.prior<softmax, 1x4x8x8>
  %c, %x, %s = fem.tilt %v, %b : tensor<1x8x4x16xf32>, tensor<64xf32>
      -> tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x4x16xf32>
  %mu = fem.expect %p, %c : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32> -> tensor<1x8x4x16xf32>
  %f = fem.lse %p2, %x, %s, %b : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32>,
      tensor<1x4x16xf32>, tensor<64xf32> -> tensor<1x8x4x16xf32>
  %o = fem.gate %mu, %f, %v, %v : tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// Reads of values from two different tilts stay apart.
// CHECK-LABEL: func.func @negative_fuse_two_tilts
//   CHECK-NOT:   fem.fused_read
func.func @negative_fuse_two_tilts(%q: tensor<1x8x4x16xf32>, %v: tensor<1x8x4x16xf32>,
    %b: tensor<64xf32>) -> tensor<1x8x4x16xf32> {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) {causal}
      -> !fem.prior<softmax, 1x4x8x8>
  %c, %x, %s = fem.tilt %v, %b : tensor<1x8x4x16xf32>, tensor<64xf32>
      -> tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x4x16xf32>
  %c2, %x2, %s2 = fem.tilt %q, %b : tensor<1x8x4x16xf32>, tensor<64xf32>
      -> tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x4x16xf32>
  %mu = fem.expect %p, %c : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32> -> tensor<1x8x4x16xf32>
  %f = fem.lse %p, %x2, %s2, %b : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32>,
      tensor<1x4x16xf32>, tensor<64xf32> -> tensor<1x8x4x16xf32>
  %o = fem.gate %mu, %f, %v, %v : tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

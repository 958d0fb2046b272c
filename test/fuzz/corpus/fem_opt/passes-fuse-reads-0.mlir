// Both reads of one prior and the gate become a single fused read.
// CHECK-LABEL: func.func @fuse_expect_and_lse
//       CHECK:   %[[P:.*]] = fem.prior softmax
//       CHECK:   %[[R:.*]] = fem.fused_read %[[P]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} mask(%{{.*}} : tensor<1x8xi1>) {tiles = #fem.tiles<q = 16, k = 16, vec = 8>}
//   CHECK-NOT:   fem.expect
//   CHECK-NOT:   fem.lse
//   CHECK-NOT:   fem.gate
//       CHECK:   return %[[R]]
func.func @fuse_expect_and_lse(%q: tensor<1x8x4x16xf32>, %v: tensor<1x8x4x16xf32>,
    %b: tensor<64xf32>, %m: tensor<1x8xi1>) -> tensor<1x8x4x16xf32> {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>)
      mask(%m : tensor<1x8xi1>) {causal, fem.tiles = #fem.tiles<q = 16, k = 16, vec = 8>}
      -> !fem.prior<softmax, 1x4x8x8>
  %c, %x, %s = fem.tilt %v, %b mask(%m : tensor<1x8xi1>) : tensor<1x8x4x16xf32>, tensor<64xf32>
      -> tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x4x16xf32>
  %mu = fem.expect %p, %c : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32> -> tensor<1x8x4x16xf32>
  %f = fem.lse %p, %x, %s, %b : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32>,
      tensor<1x4x16xf32>, tensor<64xf32> -> tensor<1x8x4x16xf32>
  %o = fem.gate %mu, %f, %v, %v : tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

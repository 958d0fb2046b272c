// RUN: fem-opt %s -split-input-file -fem-fuse-reads | FileCheck %s --enable-var-scope

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

// -----

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

// -----

// A tilt whose shift ignores other keys than the prior does cannot be fused.
// CHECK-LABEL: func.func @negative_fuse_mask_mismatch
//   CHECK-NOT:   fem.fused_read
func.func @negative_fuse_mask_mismatch(%q: tensor<1x8x4x16xf32>, %v: tensor<1x8x4x16xf32>,
    %b: tensor<64xf32>, %m: tensor<1x8xi1>) -> tensor<1x8x4x16xf32> {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>)
      mask(%m : tensor<1x8xi1>) {causal} -> !fem.prior<softmax, 1x4x8x8>
  %c, %x, %s = fem.tilt %v, %b : tensor<1x8x4x16xf32>, tensor<64xf32>
      -> tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x4x16xf32>
  %mu = fem.expect %p, %c : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32> -> tensor<1x8x4x16xf32>
  %f = fem.lse %p, %x, %s, %b : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32>,
      tensor<1x4x16xf32>, tensor<64xf32> -> tensor<1x8x4x16xf32>
  %o = fem.gate %mu, %f, %v, %v : tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

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

// RUN: fem-opt %s -split-input-file -fem-expand-mixer | FileCheck %s --enable-var-scope

// A softmax mixer expands into the five ops of the read; the tilt sees the
// prior's key mask and the tiles stay on the prior.
// CHECK-LABEL: func.func @expand_softmax
//  CHECK-SAME:   (%[[Q:.*]]: tensor<?x?x4x16xf32>, %[[K:.*]]: tensor<?x?x2x16xf32>, %[[V:.*]]: tensor<?x?x2x16xf32>, %[[B:.*]]: tensor<64xf32>, %[[L:.*]]: tensor<?x?x4x16xf32>, %[[G:.*]]: tensor<?x?x4x16xf32>, %[[M:.*]]: tensor<?x?xi1>)
//       CHECK:   %[[P:.*]] = fem.prior softmax q(%[[Q]] : {{.*}}) k(%[[K]] : {{.*}}) mask(%[[M]] : {{.*}}) {causal, fem.tiles = #fem.tiles<q = 32, k = 32, vec = 8>} -> !fem.prior<softmax, ?x4x?x?>
//       CHECK:   %[[C:.*]], %[[X:.*]], %[[SH:.*]] = fem.tilt %[[V]], %[[B]] mask(%[[M]] : tensor<?x?xi1>) : tensor<?x?x2x16xf32>, tensor<64xf32> -> tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x4x16xf32>
//       CHECK:   %[[MU:.*]] = fem.expect %[[P]], %[[C]]
//       CHECK:   %[[F:.*]] = fem.lse %[[P]], %[[X]], %[[SH]], %[[B]]
//       CHECK:   %[[O:.*]] = fem.gate %[[MU]], %[[F]], %[[L]], %[[G]]
//       CHECK:   return %[[O]]
//   CHECK-NOT:   fem.mixer
func.func @expand_softmax(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>,
    %v: tensor<?x?x2x16xf32>, %b: tensor<64xf32>, %l: tensor<?x?x4x16xf32>,
    %g: tensor<?x?x4x16xf32>, %m: tensor<?x?xi1>) -> tensor<?x?x4x16xf32> {
  %0 = fem.mixer softmax q(%q : tensor<?x?x4x16xf32>) k(%k : tensor<?x?x2x16xf32>)
      v(%v : tensor<?x?x2x16xf32>) beta_raw(%b : tensor<64xf32>) lam(%l : tensor<?x?x4x16xf32>)
      gate(%g : tensor<?x?x4x16xf32>) mask(%m : tensor<?x?xi1>)
      {causal, tiles = #fem.tiles<q = 32, k = 32, vec = 8>} -> tensor<?x?x4x16xf32>
  return %0 : tensor<?x?x4x16xf32>
}

// -----

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

// -----

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

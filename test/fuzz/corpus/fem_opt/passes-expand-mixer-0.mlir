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

// Dynamic batch and sequence extents round-trip through every op.
// CHECK-LABEL: func.func @expanded_softmax_dynamic
//       CHECK:   %[[P:.*]] = fem.prior softmax q(%{{.*}} : tensor<?x?x4x16xf32>) k(%{{.*}} : tensor<?x?x2x16xf32>) mask(%{{.*}} : tensor<?x?xi1>) {causal, scale = 2.500000e-01 : f64} -> !fem.prior<softmax, ?x4x?x?>
//       CHECK:   %[[C:.*]], %[[X:.*]], %[[M:.*]] = fem.tilt %{{.*}}, %{{.*}} mask(%{{.*}} : tensor<?x?xi1>) {cap = 3.000000e+01 : f64}
//       CHECK:   %[[MU:.*]] = fem.expect %[[P]], %[[C]]
//       CHECK:   %[[F:.*]] = fem.lse %[[P]], %[[X]], %[[M]], %{{.*}}
//       CHECK:   fem.gate %[[MU]], %[[F]], %{{.*}}, %{{.*}} : tensor<?x?x4x16xf32>
func.func @expanded_softmax_dynamic(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>,
    %v: tensor<?x?x2x16xf32>, %beta_raw: tensor<64xf32>, %lam: tensor<?x?x4x16xf32>,
    %gate: tensor<?x?x4x16xf32>, %mask: tensor<?x?xi1>) -> tensor<?x?x4x16xf32> {
  %p = fem.prior softmax q(%q : tensor<?x?x4x16xf32>) k(%k : tensor<?x?x2x16xf32>)
      mask(%mask : tensor<?x?xi1>) {causal, scale = 0.25 : f64} -> !fem.prior<softmax, ?x4x?x?>
  %vt, %x, %m = fem.tilt %v, %beta_raw mask(%mask : tensor<?x?xi1>) {cap = 30.0 : f64}
      : tensor<?x?x2x16xf32>, tensor<64xf32>
      -> tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x4x16xf32>
  %mu = fem.expect %p, %vt : !fem.prior<softmax, ?x4x?x?>, tensor<?x?x4x16xf32> -> tensor<?x?x4x16xf32>
  %f = fem.lse %p, %x, %m, %beta_raw : !fem.prior<softmax, ?x4x?x?>, tensor<?x?x4x16xf32>,
      tensor<?x4x16xf32>, tensor<64xf32> -> tensor<?x?x4x16xf32>
  %out = fem.gate %mu, %f, %lam, %gate : tensor<?x?x4x16xf32>
  return %out : tensor<?x?x4x16xf32>
}

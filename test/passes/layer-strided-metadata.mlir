// RUN: fem-opt %s -split-input-file -fem-layer-strided-metadata | FileCheck %s --enable-var-scope
// RUN: fem-opt %s -split-input-file -fem-layer-strided-metadata -lower-affine -finalize-memref-to-llvm -convert-arith-to-llvm -convert-func-to-llvm -reconcile-unrealized-casts | FileCheck %s --check-prefix=LLVM

// nn.Linear's (B*T, H*d) split into (B, T, H, d): two dynamic extents in one
// reassociation group (upstream expand-strided-metadata crashes here). The
// extents come from output_shape, the strides from the source's.
// CHECK-LABEL: func.func @split_two_dynamic
//  CHECK-SAME: (%[[A:.*]]: memref<?x128xf32>, %[[B:.*]]: index, %[[T:.*]]: index)
//       CHECK:   %[[BASE:.*]], %{{.*}}, %{{.*}}:2, %{{.*}}:2 = memref.extract_strided_metadata %[[A]]
//       CHECK:   %[[S0:.*]] = arith.muli %[[T]], %{{.*}}
//       CHECK:   memref.reinterpret_cast %[[BASE]] to offset: [0], sizes: [%[[B]], %[[T]], 2, 64], strides: [%[[S0]], 128, 64, 1]
//   CHECK-NOT:   memref.expand_shape
// LLVM-LABEL: llvm.func @split_two_dynamic
//   LLVM-NOT:  unrealized_conversion_cast
func.func @split_two_dynamic(%a: memref<?x128xf32>, %B: index, %T: index) -> memref<?x?x2x64xf32>
    attributes {fem.layer = "split"} {
  %e = memref.expand_shape %a [[0, 1], [2, 3]] output_shape [%B, %T, 2, 64] : memref<?x128xf32> into memref<?x?x2x64xf32>
  return %e : memref<?x?x2x64xf32>
}

// -----

// The merge back (B, T, H, d) -> (B, T, H*d) and a split with one dynamic
// extent per group: the upstream patterns.
// CHECK-LABEL: func.func @merge_and_split
//   CHECK-NOT:   memref.collapse_shape
//   CHECK-NOT:   memref.expand_shape
//       CHECK:   return
// LLVM-LABEL: llvm.func @merge_and_split
func.func @merge_and_split(%a: memref<?x?x2x64xf32>, %b: memref<?x128xf32>, %T: index)
    -> (memref<?x?x128xf32>, memref<?x2x64xf32>) attributes {fem.layer = "merge"} {
  %c = memref.collapse_shape %a [[0], [1], [2, 3]] : memref<?x?x2x64xf32> into memref<?x?x128xf32>
  %e = memref.expand_shape %b [[0], [1, 2]] output_shape [%T, 2, 64] : memref<?x128xf32> into memref<?x2x64xf32>
  return %c, %e : memref<?x?x128xf32>, memref<?x2x64xf32>
}

// -----

// negative_: functions that are not layers are left alone.
// CHECK-LABEL: func.func @negative_not_a_layer
//       CHECK:   memref.expand_shape
func.func @negative_not_a_layer(%a: memref<?x128xf32>, %B: index, %T: index) -> memref<?x?x2x64xf32> {
  %e = memref.expand_shape %a [[0, 1], [2, 3]] output_shape [%B, %T, 2, 64] : memref<?x128xf32> into memref<?x?x2x64xf32>
  return %e : memref<?x?x2x64xf32>
}

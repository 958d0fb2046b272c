// RUN: fem-opt %s -split-input-file -fem-lower-copies | FileCheck %s --enable-var-scope
// RUN: fem-opt %s -split-input-file -fem-lower-copies -convert-vector-to-llvm -convert-scf-to-cf -finalize-memref-to-llvm -convert-arith-to-llvm -convert-cf-to-llvm -convert-func-to-llvm -reconcile-unrealized-casts | FileCheck %s --check-prefix=LLVM

// tensor.insert_slice of a (B, T, 2, 12) value into the last dimension of a
// (B, T, 2, 24) buffer, bufferized: a copy into a strided window. Without
// the pass the LLVM lowering calls memrefCopy (no femc library links it).
// Unit innermost strides: 256-bit vector rows, then the rest element-wise.
// CHECK-LABEL: func.func @into_window
//  CHECK-SAME: (%[[SRC:.*]]: memref<?x?x2x12xf32>, %[[DST:.*]]: memref<?x?x2x24xf32>)
//       CHECK:   %[[W:.*]] = memref.subview %[[DST]]
//   CHECK-NOT:   memref.copy
//       CHECK:   scf.for %[[I:.*]] =
//       CHECK:     scf.for %[[J:.*]] =
//       CHECK:       scf.for %[[H:.*]] =
//       CHECK:         %[[REST:.*]] = arith.remui
//       CHECK:         %[[WHOLE:.*]] = arith.subi %{{.*}}, %[[REST]]
//       CHECK:         scf.for %[[C:.*]] = %{{.*}} to %[[WHOLE]] step %c8
//       CHECK:           %[[V:.*]] = vector.load %[[SRC]][%[[I]], %[[J]], %[[H]], %[[C]]] : memref<?x?x2x12xf32>, vector<8xf32>
//       CHECK:           vector.store %[[V]], %[[W]][%[[I]], %[[J]], %[[H]], %[[C]]]
//       CHECK:         scf.for %[[E:.*]] = %[[WHOLE]] to
//       CHECK:           %[[X:.*]] = memref.load %[[SRC]][%[[I]], %[[J]], %[[H]], %[[E]]]
//       CHECK:           memref.store %[[X]], %[[W]][%[[I]], %[[J]], %[[H]], %[[E]]]
// LLVM-LABEL: llvm.func @into_window
//   LLVM-NOT:   memrefCopy
//       LLVM:   llvm.return
func.func @into_window(%src: memref<?x?x2x12xf32>, %dst: memref<?x?x2x24xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = memref.dim %src, %c0 : memref<?x?x2x12xf32>
  %T = memref.dim %src, %c1 : memref<?x?x2x12xf32>
  %w = memref.subview %dst[0, 0, 0, 12] [%B, %T, 2, 12] [1, 1, 1, 1] : memref<?x?x2x24xf32> to memref<?x?x2x12xf32, strided<[?, 48, 24, 1], offset: 12>>
  memref.copy %src, %w : memref<?x?x2x12xf32> to memref<?x?x2x12xf32, strided<[?, 48, 24, 1], offset: 12>>
  return
}

// -----

// A column (innermost stride 24): element by element.
// CHECK-LABEL: func.func @column
//   CHECK-NOT:   memref.copy
//   CHECK-NOT:   vector.load
//       CHECK:   scf.for
//       CHECK:     memref.load
//       CHECK:     memref.store
// LLVM-LABEL: llvm.func @column
//   LLVM-NOT:   memrefCopy
//       LLVM:   llvm.return
func.func @column(%src: memref<?x24xf32>, %dst: memref<?x1xf32, strided<[24, 24], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %n = memref.dim %src, %c0 : memref<?x24xf32>
  %col = memref.subview %src[0, 3] [%n, 1] [1, 1] : memref<?x24xf32> to memref<?x1xf32, strided<[24, 1], offset: 3>>
  memref.copy %col, %dst : memref<?x1xf32, strided<[24, 1], offset: 3>> to memref<?x1xf32, strided<[24, 24], offset: ?>>
  return
}

// -----

// Copies the LLVM lowering does with one memcpy (identity layouts, a static
// contiguous window) stay memref.copy.
// CHECK-LABEL: func.func @left_alone
//       CHECK:   memref.copy %{{.*}}, %{{.*}} : memref<?x8xf32> to memref<?x8xf32>
//       CHECK:   memref.copy %{{.*}}, %{{.*}} : memref<2x8xf32, strided<[8, 1], offset: 16>> to memref<2x8xf32>
//   CHECK-NOT:   scf.for
// LLVM-LABEL: llvm.func @left_alone
//   LLVM-NOT:   memrefCopy
//       LLVM:   llvm.return
func.func @left_alone(%a: memref<?x8xf32>, %b: memref<?x8xf32>, %s: memref<4x8xf32>, %d: memref<2x8xf32>) {
  memref.copy %a, %b : memref<?x8xf32> to memref<?x8xf32>
  %w = memref.subview %s[2, 0] [2, 8] [1, 1] : memref<4x8xf32> to memref<2x8xf32, strided<[8, 1], offset: 16>>
  memref.copy %w, %d : memref<2x8xf32, strided<[8, 1], offset: 16>> to memref<2x8xf32>
  return
}

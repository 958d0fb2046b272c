// RUN: fem-opt %s -split-input-file | fem-opt -split-input-file | FileCheck %s --check-prefix=ROUND
// RUN: fem-opt %s -split-input-file -fem-lower-scans-to-cpu | FileCheck %s --enable-var-scope

// fem.scan_read round-trips with the operands of each scan prior, and each
// prior's emitter (passes/cpu/Read*.cpp) expands it into loops and vectors
// whose scratch is sized by the tiles and head dims, never by T (T = 4096).

// ROUND-LABEL: func.func @linear_wg
//       ROUND:   fem.scan_read linear q(%{{.*}} : memref<1x4096x2x16xf32>) k(
//  ROUND-SAME:     out(%{{.*}} : memref<1x4096x2x16xf32>) at(
//  ROUND-SAME:     {causal, tiles = #fem.tiles<q = 64, k = 16, vec = 8>}
// CHECK-LABEL: func.func @linear_wg
//   CHECK-NOT:   memref.alloc{{.*}}4096
//       CHECK:   memref.alloc() {alignment = 64 : i64} : memref<64x64xf32>
//       CHECK:   scf.for
//       CHECK:     vector.fma
//   CHECK-NOT:   memref.alloc{{.*}}4096
//       CHECK:   memref.dealloc
//   CHECK-NOT:   fem.
func.func @linear_wg(%q: memref<1x4096x2x16xf32>, %k: memref<1x4096x2x16xf32>, %v: memref<1x4096x2x16xf32>, %b: memref<32xf32>, %l: memref<1x4096x2x16xf32>, %g: memref<1x4096x2x16xf32>, %o: memref<1x4096x2x16xf32>, %x: index, %y: index, %z: index) {
  fem.scan_read linear q(%q : memref<1x4096x2x16xf32>) k(%k : memref<1x4096x2x16xf32>) v(%v : memref<1x4096x2x16xf32>) beta_raw(%b : memref<32xf32>) lam(%l : memref<1x4096x2x16xf32>) gate(%g : memref<1x4096x2x16xf32>) out(%o : memref<1x4096x2x16xf32>) at(%x, %y, %z) {causal, tiles = #fem.tiles<q = 64, k = 16, vec = 8>}
  return
}

// -----

// gla reads its decay logits (B,T,H) and exponentiates log-decay
// differences only.
// ROUND-LABEL: func.func @gla_wg
//       ROUND:   fem.scan_read gla {{.*}} decay(%{{.*}} : memref<?x?x2xf32>)
// CHECK-LABEL: func.func @gla_wg
//       CHECK:   math.exp
//   CHECK-NOT:   fem.
func.func @gla_wg(%q: memref<?x?x2x8xf32>, %k: memref<?x?x2x8xf32>, %v: memref<?x?x2x16xf32>, %b: memref<32xf32>, %l: memref<?x?x2x16xf32>, %g: memref<?x?x2x16xf32>, %d: memref<?x?x2xf32>, %o: memref<?x?x2x16xf32>, %x: index, %y: index, %z: index) {
  fem.scan_read gla q(%q : memref<?x?x2x8xf32>) k(%k : memref<?x?x2x8xf32>) v(%v : memref<?x?x2x16xf32>) beta_raw(%b : memref<32xf32>) lam(%l : memref<?x?x2x16xf32>) gate(%g : memref<?x?x2x16xf32>) decay(%d : memref<?x?x2xf32>) out(%o : memref<?x?x2x16xf32>) at(%x, %y, %z) {tiles = #fem.tiles<q = 32, k = 16, vec = 8>}
  return
}

// -----

// aft gathers the q/k channel j mod dk of every value channel.
// CHECK-LABEL: func.func @aft_wg
//       CHECK:   vector.gather
//   CHECK-NOT:   fem.
func.func @aft_wg(%q: memref<?x?x?x4xf32>, %k: memref<?x?x?x4xf32>, %v: memref<?x?x?x16xf32>, %b: memref<?xf32>, %l: memref<?x?x?x16xf32>, %g: memref<?x?x?x16xf32>, %o: memref<?x?x?x16xf32>, %x: index, %y: index, %z: index) {
  fem.scan_read aft q(%q : memref<?x?x?x4xf32>) k(%k : memref<?x?x?x4xf32>) v(%v : memref<?x?x?x16xf32>) beta_raw(%b : memref<?xf32>) lam(%l : memref<?x?x?x16xf32>) gate(%g : memref<?x?x?x16xf32>) out(%o : memref<?x?x?x16xf32>) at(%x, %y, %z) {layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

// ssm: no q/k; the state is N x Bc per stream (N dynamic here).
// ROUND-LABEL: func.func @ssm_wg
//       ROUND:   fem.scan_read ssm v(
//  ROUND-SAME:     delta(%{{.*}} : memref<?x?x32xf32>) A(%{{.*}} : memref<32x?xf32>) Bs(
// CHECK-LABEL: func.func @ssm_wg
//       CHECK:   memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<3x?x8xf32>
//   CHECK-NOT:   fem.
func.func @ssm_wg(%v: memref<?x?x2x16xf32>, %b: memref<32xf32>, %l: memref<?x?x2x16xf32>, %g: memref<?x?x2x16xf32>, %delta: memref<?x?x32xf32>, %A: memref<32x?xf32>, %Bs: memref<?x?x?xf32>, %Cs: memref<?x?x?xf32>, %D: memref<32xf32>, %o: memref<?x?x2x16xf32>, %x: index, %y: index, %z: index) {
  fem.scan_read ssm v(%v : memref<?x?x2x16xf32>) beta_raw(%b : memref<32xf32>) lam(%l : memref<?x?x2x16xf32>) gate(%g : memref<?x?x2x16xf32>) delta(%delta : memref<?x?x32xf32>) A(%A : memref<32x?xf32>) Bs(%Bs : memref<?x?x?xf32>) Cs(%Cs : memref<?x?x?xf32>) D(%D : memref<32xf32>) out(%o : memref<?x?x2x16xf32>) at(%x, %y, %z) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

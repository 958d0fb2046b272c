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

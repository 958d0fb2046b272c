// RUN: fem-opt %s -split-input-file -verify-diagnostics -fem-lower-to-cpu

// The key mask is read as bytes (the check the CPU and GPU lowerings share,
// passes/cpu/Builder.h verifyMaskBytes).
func.func @bits_wg(%q: memref<?x?x4x16xf32>, %k: memref<?x?x4x16xf32>, %v: memref<?x?x4x16xf32>,
                   %b: memref<64xf32>, %l: memref<?x?x4x16xf32>, %g: memref<?x?x4x16xf32>,
                   %m: memref<?x?xi1>, %o: memref<?x?x4x16xf32>, %x: index, %y: index, %z: index)
    attributes {fem.kernel = "bits"} {
  // expected-error @+1 {{fem-lower-to-cpu: the key mask must be i8 bytes in memory, found 'memref<?x?xi1>'}}
  fem.tile_read softmax q(%q : memref<?x?x4x16xf32>) k(%k : memref<?x?x4x16xf32>)
      v(%v : memref<?x?x4x16xf32>) beta_raw(%b : memref<64xf32>) lam(%l : memref<?x?x4x16xf32>)
      gate(%g : memref<?x?x4x16xf32>) mask(%m : memref<?x?xi1>) out(%o : memref<?x?x4x16xf32>)
      at(%x, %y, %z) {tiles = #fem.tiles<q = 64, k = 32, vec = 8>}
  return
}

// -----

// Float operands are f32, f16 or bf16 memrefs with the identity layout.
func.func @strided_wg(%q: memref<?x?x4x16xf32, strided<[?, ?, 32, 1]>>, %k: memref<?x?x4x16xf32>, %v: memref<?x?x4x16xf32>,
                      %b: memref<64xf32>, %l: memref<?x?x4x16xf32>, %g: memref<?x?x4x16xf32>,
                      %o: memref<?x?x4x16xf32>, %x: index, %y: index, %z: index)
    attributes {fem.kernel = "strided"} {
  // expected-error @+1 {{fem-lower-to-cpu: expects f32, f16 or bf16 memrefs with the identity layout, found 'memref<?x?x4x16xf32, strided<[?, ?, 32, 1]>>'}}
  fem.tile_read softmax q(%q : memref<?x?x4x16xf32, strided<[?, ?, 32, 1]>>) k(%k : memref<?x?x4x16xf32>)
      v(%v : memref<?x?x4x16xf32>) beta_raw(%b : memref<64xf32>) lam(%l : memref<?x?x4x16xf32>)
      gate(%g : memref<?x?x4x16xf32>) out(%o : memref<?x?x4x16xf32>)
      at(%x, %y, %z) {tiles = #fem.tiles<q = 64, k = 32, vec = 8>}
  return
}

// RUN: fem-opt %s -split-input-file -verify-diagnostics -fem-lower-to-cpu

// The bf16 reads (AVX512-BF16 dot products, AMX tiles) check their operands
// with one function (verifyBf16ReadOperands, passes/cpu/ReadSoftmaxAmx.cpp):
// bf16 memrefs with the identity layout and a key mask of i8 bytes.
module attributes {fem.target_features = "+avx512f,+avx512bf16,+fem-bf16-dot"} {
func.func @dot_strided_wg(%q: memref<?x?x4x16xbf16, strided<[?, ?, 32, 1]>>, %k: memref<?x?x4x16xbf16>, %v: memref<?x?x4x16xbf16>,
                          %b: memref<64xbf16>, %l: memref<?x?x4x16xbf16>, %g: memref<?x?x4x16xbf16>,
                          %o: memref<?x?x4x16xbf16>, %x: index, %y: index, %z: index)
    attributes {fem.kernel = "dot_strided"} {
  // expected-error @+1 {{fem-lower-to-cpu: the AVX512-BF16 read expects bf16 memrefs with the identity layout, found 'memref<?x?x4x16xbf16, strided<[?, ?, 32, 1]>>'}}
  fem.tile_read softmax q(%q : memref<?x?x4x16xbf16, strided<[?, ?, 32, 1]>>) k(%k : memref<?x?x4x16xbf16>)
      v(%v : memref<?x?x4x16xbf16>) beta_raw(%b : memref<64xbf16>) lam(%l : memref<?x?x4x16xbf16>)
      gate(%g : memref<?x?x4x16xbf16>) out(%o : memref<?x?x4x16xbf16>)
      at(%x, %y, %z) {tiles = #fem.tiles<q = 64, k = 32, vec = 16>}
  return
}
}

// -----

module attributes {fem.target_features = "+avx512f,+avx512bf16,+fem-bf16-dot"} {
func.func @dot_bits_wg(%q: memref<?x?x4x16xbf16>, %k: memref<?x?x4x16xbf16>, %v: memref<?x?x4x16xbf16>,
                       %b: memref<64xbf16>, %l: memref<?x?x4x16xbf16>, %g: memref<?x?x4x16xbf16>,
                       %m: memref<?x?xi1>, %o: memref<?x?x4x16xbf16>, %x: index, %y: index, %z: index)
    attributes {fem.kernel = "dot_bits"} {
  // expected-error @+1 {{fem-lower-to-cpu: the key mask must be i8 bytes in memory, found 'memref<?x?xi1>'}}
  fem.tile_read softmax q(%q : memref<?x?x4x16xbf16>) k(%k : memref<?x?x4x16xbf16>)
      v(%v : memref<?x?x4x16xbf16>) beta_raw(%b : memref<64xbf16>) lam(%l : memref<?x?x4x16xbf16>)
      gate(%g : memref<?x?x4x16xbf16>) mask(%m : memref<?x?xi1>) out(%o : memref<?x?x4x16xbf16>)
      at(%x, %y, %z) {tiles = #fem.tiles<q = 64, k = 32, vec = 16>}
  return
}
}

// -----

module attributes {fem.target_features = "+avx512f,+avx512bf16,+amx-tile,+amx-bf16"} {
func.func @amx_strided_wg(%q: memref<?x?x4x16xbf16>, %k: memref<?x?x4x16xbf16, strided<[?, ?, 32, 1]>>, %v: memref<?x?x4x16xbf16>,
                          %b: memref<64xbf16>, %l: memref<?x?x4x16xbf16>, %g: memref<?x?x4x16xbf16>,
                          %o: memref<?x?x4x16xbf16>, %x: index, %y: index, %z: index)
    attributes {fem.kernel = "amx_strided"} {
  // expected-error @+1 {{fem-lower-to-cpu: the AMX read expects bf16 memrefs with the identity layout, found 'memref<?x?x4x16xbf16, strided<[?, ?, 32, 1]>>'}}
  fem.tile_read softmax q(%q : memref<?x?x4x16xbf16>) k(%k : memref<?x?x4x16xbf16, strided<[?, ?, 32, 1]>>)
      v(%v : memref<?x?x4x16xbf16>) beta_raw(%b : memref<64xbf16>) lam(%l : memref<?x?x4x16xbf16>)
      gate(%g : memref<?x?x4x16xbf16>) out(%o : memref<?x?x4x16xbf16>)
      at(%x, %y, %z) {tiles = #fem.tiles<q = 64, k = 32, vec = 16>}
  return
}
}

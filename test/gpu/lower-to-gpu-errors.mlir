// RUN: fem-opt %s -split-input-file -verify-diagnostics -fem-lower-to-gpu
// RUN: not fem-opt %s -split-input-file -fem-lower-to-gpu=sm=75 2>&1 | FileCheck %s --check-prefix=SM

// SM: error: fem-lower-to-gpu: unsupported compute capability 75, expected 80 or 90

// The kernel is specialised for static head widths.
func.func @dyn_wg(%q: memref<?x?x4x?xf32>, %k: memref<?x?x4x?xf32>, %v: memref<?x?x4x16xf32>,
                  %b: memref<64xf32>, %l: memref<?x?x4x16xf32>, %g: memref<?x?x4x16xf32>,
                  %o: memref<?x?x4x16xf32>, %x: index, %y: index, %z: index)
    attributes {fem.kernel = "dyn"} {
  // expected-error @+1 {{fem-lower-to-gpu: the GPU kernel is specialised for a static dk between 1 and 256, found a dynamic extent}}
  fem.tile_read softmax q(%q : memref<?x?x4x?xf32>) k(%k : memref<?x?x4x?xf32>)
      v(%v : memref<?x?x4x16xf32>) beta_raw(%b : memref<64xf32>) lam(%l : memref<?x?x4x16xf32>)
      gate(%g : memref<?x?x4x16xf32>) out(%o : memref<?x?x4x16xf32>)
      at(%x, %y, %z) {tiles = #fem.tiles<q = 64, k = 32, vec = 8>}
  return
}

// -----

func.func @wide_wg(%q: memref<?x?x1x16xf32>, %k: memref<?x?x1x16xf32>, %v: memref<?x?x1x512xf32>,
                   %b: memref<512xf32>, %l: memref<?x?x1x512xf32>, %g: memref<?x?x1x512xf32>,
                   %o: memref<?x?x1x512xf32>, %x: index, %y: index, %z: index)
    attributes {fem.kernel = "wide"} {
  // expected-error @+1 {{fem-lower-to-gpu: the GPU kernel is specialised for a static dv between 1 and 256, found 512}}
  fem.tile_read softmax q(%q : memref<?x?x1x16xf32>) k(%k : memref<?x?x1x16xf32>)
      v(%v : memref<?x?x1x512xf32>) beta_raw(%b : memref<512xf32>) lam(%l : memref<?x?x1x512xf32>)
      gate(%g : memref<?x?x1x512xf32>) out(%o : memref<?x?x1x512xf32>)
      at(%x, %y, %z) {tiles = #fem.tiles<q = 64, k = 32, vec = 8>}
  return
}

// -----

// The key mask is read as bytes.
func.func @bits_wg(%q: memref<?x?x4x16xf32>, %k: memref<?x?x4x16xf32>, %v: memref<?x?x4x16xf32>,
                   %b: memref<64xf32>, %l: memref<?x?x4x16xf32>, %g: memref<?x?x4x16xf32>,
                   %m: memref<?x?xi1>, %o: memref<?x?x4x16xf32>, %x: index, %y: index, %z: index)
    attributes {fem.kernel = "bits"} {
  // expected-error @+1 {{fem-lower-to-gpu: the key mask must be i8 bytes in memory, found 'memref<?x?xi1>'}}
  fem.tile_read softmax q(%q : memref<?x?x4x16xf32>) k(%k : memref<?x?x4x16xf32>)
      v(%v : memref<?x?x4x16xf32>) beta_raw(%b : memref<64xf32>) lam(%l : memref<?x?x4x16xf32>)
      gate(%g : memref<?x?x4x16xf32>) mask(%m : memref<?x?xi1>) out(%o : memref<?x?x4x16xf32>)
      at(%x, %y, %z) {tiles = #fem.tiles<q = 64, k = 32, vec = 8>}
  return
}

// -----

// Layers are not lowered for GPUs yet.
// expected-error @+1 {{fem-lower-to-gpu: layer function '@block_layer' has no GPU lowering yet; compile its FEM kernels as kernel-level functions}}
func.func @block_layer(%x: memref<4xf32>) attributes {fem.layer = "block"} {
  return
}

// -----

// Host code is not a GPU kernel.
// expected-error @+1 {{fem-lower-to-gpu: function '@helper' is not a workgroup function of fem-tile (one fem.tile_read and a fem.kernel name); the GPU target compiles only FEM kernels}}
func.func @helper(%x: memref<4xf32>) {
  return
}

// -----

// expected-error @+1 {{fem-lower-to-gpu: found no fem.tile_read to lower (run fem-tile first)}}
module {
}

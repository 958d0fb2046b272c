func.func @tile_read_kind(%m: memref<1x8x4x16xf32>, %b: memref<64xf32>, %i: index) {
  // expected-error @+1 {{tiles only the key-based priors 'softmax' and 'linear', found prior 'aft'}}
  fem.tile_read aft q(%m : memref<1x8x4x16xf32>) k(%m : memref<1x8x4x16xf32>) v(%m : memref<1x8x4x16xf32>)
      beta_raw(%b : memref<64xf32>) lam(%m : memref<1x8x4x16xf32>) gate(%m : memref<1x8x4x16xf32>)
      out(%m : memref<1x8x4x16xf32>) at(%i, %i, %i) {tiles = #fem.tiles<q = 16, k = 16, vec = 8>}
  return
}
